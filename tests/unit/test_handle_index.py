"""``bot.strategy.handles``: one handle per order, found again by ``cl_ord_id``; the open
orders' counts the pre-trade stage reads are the engine's (``OrderIndex``, tested in
``test_reconcile``)."""

from __future__ import annotations

import dataclasses

from bot.execution.orders import Order, OrderState, new_order
from bot.kraken.instruments import Instrument
from bot.strategy import OrderHandle
from bot.strategy.handles import HandleIndex, same

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)


def handle(cid: str, inst: Instrument, strategy: str) -> OrderHandle:
    return OrderHandle(
        new_order(
            cl_ord_id=cid, instrument=inst, side="buy", order_type="limit", qty=1, price=1,
            strategy=strategy, now_ns=0,
        )
    )  # fmt: skip


def test_handles_follow_their_orders_from_open_to_done() -> None:
    index = HandleIndex(recent_done=2)
    made = [
        handle("a", BTC, "mm"), handle("b", BTC, "mm"), handle("c", ETH, "mm"),
        handle("d", BTC, "grid"),
    ]  # fmt: skip
    for h in made:
        index.add(h)
    assert index.open("mm") == made[:3] and index.open(symbol="BTC/USD") == [
        made[0],
        made[1],
        made[3],
    ]
    assert index.open("mm", "ETH/USD") == [made[2]]
    done = dataclasses.replace(made[1].order, state=OrderState.CANCELED)
    assert index.update(done) is made[1] and made[1].state is OrderState.CANCELED
    assert made[1] not in index.open() and index.get("b") is made[1]  # recently done: kept
    for h in (made[2], made[3]):
        index.update(dataclasses.replace(h.order, state=OrderState.FILLED))
    assert index.get("b") is None and index.get("c") is made[2]  # only the last 2 done
    assert index.open() == [made[0]]


def test_an_order_never_seen_gets_a_handle() -> None:
    index = HandleIndex()
    adopted = dataclasses.replace(handle("e", BTC, "mm").order, state=OrderState.NEW)
    h = index.update(adopted)
    assert index.get("e") is h and h.order is adopted and index.open() == [h]
    assert index.update(adopted) is h  # the same handle from then on


def test_same_ignores_only_the_stamps() -> None:
    base = handle("a", BTC, "mm").order
    assert same(base, base)
    assert same(base, dataclasses.replace(base, created_ns=5, updated_ns=9))
    other_values: dict[str, object] = {
        "state": OrderState.NEW, "order_id": "OX", "reason": "r", "cancel_pending": True,
        "filled_qty": 1, "price": 2, "qty": 3, "strategy": "x",
    }  # fmt: skip
    names = {f.name for f in dataclasses.fields(Order)}
    assert other_values.keys() <= names
    for name, value in other_values.items():
        assert not same(base, dataclasses.replace(base, **{name: value})), name
