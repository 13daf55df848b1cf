"""``bot.strategy.context._OpenHandles``: the desk's open orders, counted as they come and go."""

from __future__ import annotations

from bot.execution.orders import new_order
from bot.kraken.instruments import Instrument
from bot.strategy import OrderHandle
from bot.strategy.context import _OpenHandles

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)


def handle(cid: str, inst: Instrument, strategy: str) -> OrderHandle:
    return OrderHandle(
        new_order(
            cl_ord_id=cid, instrument=inst, side="buy", order_type="limit", qty=1, price=1,
            strategy=strategy, now_ns=0,
        )
    )  # fmt: skip


def test_counts_follow_adds_and_pops_and_match_a_scan() -> None:
    open_ = _OpenHandles()
    made = [
        handle("a", BTC, "mm"), handle("b", BTC, "mm"), handle("c", ETH, "mm"),
        handle("d", BTC, "grid"),
    ]  # fmt: skip
    for h in made:
        open_.add(h)
    open_.add(made[0])  # again: counted once
    assert open_.per_symbol == {"BTC/USD": 3, "ETH/USD": 1}
    assert open_.per_strategy == {"mm": 3, "grid": 1}
    assert open_.pop("b") is made[1] and open_.pop("b") is None and open_.pop("zz") is None
    assert open_.pop("c") is made[2]
    assert open_.per_symbol == {"BTC/USD": 2}  # no zero entries left behind
    assert open_.per_strategy == {"mm": 1, "grid": 1}
    scan: dict[str, int] = {}
    for h in open_.values():
        scan[h.symbol] = scan.get(h.symbol, 0) + 1
    assert scan == open_.per_symbol
    assert open_.get("a") is made[0] and open_.get("c") is None


def test_same_ignores_only_the_stamps() -> None:
    import dataclasses

    from bot.execution.orders import Order, OrderState
    from bot.strategy.context import _same

    base = handle("a", BTC, "mm").order
    assert _same(base, base)
    assert _same(base, dataclasses.replace(base, created_ns=5, updated_ns=9))
    other_values: dict[str, object] = {
        "state": OrderState.NEW, "order_id": "OX", "reason": "r", "cancel_pending": True,
        "filled_qty": 1, "price": 2, "qty": 3, "strategy": "x",
    }  # fmt: skip
    names = {f.name for f in dataclasses.fields(Order)}
    assert other_values.keys() <= names
    for name, value in other_values.items():
        assert not _same(base, dataclasses.replace(base, **{name: value})), name
