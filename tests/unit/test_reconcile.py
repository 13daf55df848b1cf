"""Reconciliation's pure rules: Kraken's REST objects in, new local orders and fills out.

The REST objects follow Kraken's documented OpenOrders / TradesHistory examples (prices
and volumes as strings, times as exact JSON numbers, which ``codec.loads_exact`` decodes
to ``Decimal``).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from bot.core.errors import ProtocolError
from bot.execution.orders import Fill, Order, OrderState, apply_execution, new_order
from bot.execution.reconcile import (
    OrderIndex,
    match_orders,
    missed_fills,
    plan,
    recorded,
    report_for,
    still_short,
    trades_start_ns,
    unseen,
)
from bot.execution.rest_answers import parse_order, parse_orders, parse_trades
from bot.execution.venue import ExchangeOrder
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import ExecutionReport
from bot.sim.pairs import default_instruments

S = OrderState
NS = 1_000_000_000
T0 = 1_688_666_000 * NS
TABLE: InstrumentTable = default_instruments()
BTC = TABLE["BTC/USD"]
TXID = "OQCLML-BW3P3-BUCMWZ"
CID = "0123456789abcdef0123456789abcdef"


def kraken_order(**changes: Any) -> dict[str, Any]:
    """Kraken's documented OpenOrders entry (one partly filled limit buy)."""
    raw: dict[str, Any] = {
        "refid": None,
        "userref": 0,
        "cl_ord_id": CID,
        "status": "open",
        "opentm": Decimal("1688666559.8974"),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "30010.0",
            "price2": "0", "leverage": "none", "order": "buy 1.25000000 XBTUSD @ limit 30010.0",
            "close": "",
        },
        "vol": "1.25000000",
        "vol_exec": "0.37500000",
        "cost": "11253.7",
        "fee": "0.00000",
        "price": "30010.0",
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    }  # fmt: skip
    raw.update(changes)
    return raw


def kraken_trade(**changes: Any) -> dict[str, Any]:
    """Kraken's documented TradesHistory entry."""
    raw: dict[str, Any] = {
        "ordertxid": TXID,
        "postxid": "TKH2SE-M7IF5-CFI7LT",
        "pair": "XXBTZUSD",
        "time": Decimal("1688667796.8802"),
        "type": "buy",
        "ordertype": "limit",
        "price": "30010.00000",
        "cost": "600.20000",
        "fee": "0.96000",
        "vol": "0.02000000",
        "margin": "0.00000",
        "misc": "",
        "trade_id": 39482674,
        "maker": True,
    }
    raw.update(changes)
    return raw


def local(cid: str = CID, **changes: Any) -> Order:
    order = new_order(
        cl_ord_id=cid, instrument=BTC, side="buy", order_type="limit", qty=BTC.qty("1.25"),
        price=BTC.price("30010.0"), strategy="s", now_ns=T0,
    )  # fmt: skip
    return dataclasses.replace(order, **changes)


def ex_order(**changes: Any) -> ExchangeOrder:
    return parse_order(TXID, kraken_order(**changes), TABLE)


def renamed(ex: ExchangeOrder, txid: str) -> ExchangeOrder:
    return dataclasses.replace(ex, order_id=txid)


# ---------------------------------------------------------------------- parsing


def test_a_documented_order_parses_exactly() -> None:
    ex = ex_order()
    assert (ex.order_id, ex.cl_ord_id, ex.status, ex.symbol) == (TXID, CID, "open", "BTC/USD")
    assert (ex.qty, ex.filled, ex.cost) == (Decimal("1.25"), Decimal("0.375"), Decimal("11253.7"))
    assert ex.limit_price == Decimal("30010.0") and ex.avg_price == Decimal("30010.0")
    assert ex.opened_ns == 1_688_666_559_897_400_000 and ex.closed_ns is None and ex.is_open
    closed = ex_order(status="closed", closetm=Decimal("1688667000.5"), reason="")
    assert closed.closed_ns == 1_688_667_000_500_000_000 and not closed.is_open
    untouched = ex_order(vol_exec="0.00000000", price="0.0")
    assert untouched.avg_price is None
    assert ex_order(cl_ord_id=None).cl_ord_id is None
    assert parse_order(TXID, kraken_order(descr={**kraken_order()["descr"], "pair": "NOPE"}),
                       TABLE).symbol is None  # fmt: skip
    both = parse_orders({TXID: kraken_order(), "O2": kraken_order(cl_ord_id=None)}, TABLE)
    assert [o.order_id for o in both] == [TXID, "O2"]


@pytest.mark.parametrize(
    "changes",
    [{"status": "weird"}, {"vol": 1.25}, {"vol": True}, {"vol": "lots"}, {"descr": None},
     {"vol_exec": "NaN"}],
)  # fmt: skip
def test_an_untrustworthy_order_is_a_protocol_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        ex_order(**changes)


def test_a_documented_trade_parses_exactly() -> None:
    (trade,) = parse_trades({"trades": {"THVRQM-33VKH-UCI7BS": kraken_trade()}, "count": 1})
    assert trade.exec_id == "THVRQM-33VKH-UCI7BS" and trade.order_id == TXID
    assert (trade.price, trade.qty, trade.cost) == (
        Decimal("30010"),
        Decimal("0.02"),
        Decimal("600.2"),
    )
    assert trade.ts_ns == 1_688_667_796_880_200_000 and trade.maker is True
    assert trade.trade_id == "39482674"
    with pytest.raises(ProtocolError):
        parse_trades({"count": 0})


# ---------------------------------------------------------------------- reports


@pytest.mark.parametrize(
    ("status", "vol_exec", "expected"),
    [
        ("pending", "0", S.PENDING_NEW),
        ("open", "0", S.NEW),
        ("open", "0.375", S.PARTIALLY_FILLED),
        ("closed", "1.25", S.FILLED),
        ("canceled", "0.375", S.CANCELED),
        ("expired", "0", S.EXPIRED),
    ],
)
def test_each_rest_status_maps_onto_the_transition_table(
    status: str, vol_exec: str, expected: OrderState
) -> None:
    order = local(state=S.UNKNOWN)
    ex = ex_order(status=status, vol_exec=vol_exec, cost="0")
    new = apply_execution(order, report_for(order, ex), now_ns=T0 + 1)
    assert new.state is expected and new.order_id == TXID
    assert new.filled_qty == BTC.qty(vol_exec)


def test_quantities_and_prices_merge_only_when_they_differ_or_an_amend_was_in_flight() -> None:
    order = local(state=S.NEW, order_id=TXID)
    same = report_for(order, ex_order(vol_exec="0"))
    assert same.exec_type is None and same.order_qty is None
    restated = report_for(order, ex_order(vol="1.00000000", vol_exec="0"))
    assert restated.exec_type == "restated" and restated.order_qty == Decimal("1.0")
    pending = dataclasses.replace(order, amend_pending=True)
    amended = apply_execution(pending, report_for(pending, ex_order(vol_exec="0")), now_ns=T0)
    assert not amended.amend_pending and amended.price == BTC.price("30010.0")


# ---------------------------------------------------------------------- matching and plans


def test_matching_is_by_txid_then_by_cl_ord_id_only_without_a_txid() -> None:
    with_id = local("a" * 32, order_id=TXID)
    blind = local("b" * 32)
    other_txid = local("c" * 32, order_id="OTHER-TXID")
    exchange = [
        ex_order(),
        renamed(ex_order(cl_ord_id="b" * 32), "OB"),
        renamed(ex_order(cl_ord_id="c" * 32), "OC"),
    ]
    m = match_orders([with_id, blind, other_txid], exchange)
    assert [(o.cl_ord_id[0], e.order_id) for o, e in m.found] == [("a", TXID), ("b", "OB")]
    assert [o.cl_ord_id[0] for o in m.missing] == ["c"]  # never by cl_ord_id once a txid is known
    assert [e.order_id for e in m.unmatched] == ["OC"]
    assert [
        o.cl_ord_id[0] for o in unseen([with_id, blind, other_txid], exchange[:1], txid=False)
    ] == ["b"]


def test_a_blind_order_matches_its_cl_ord_id_echoed_in_either_uuid_form() -> None:
    """Kraken keeps a UUID ``cl_ord_id`` as a number: whichever form it prints, parsing
    gives the bot's 32-hex form, and a blind order (no txid) is found by it."""
    hyphenated = "01234567-89AB-CDEF-0123-456789ABCDEF"
    for echoed in (hyphenated, hyphenated.lower(), CID.upper(), CID):
        ex = ex_order(cl_ord_id=echoed)
        assert ex.cl_ord_id == CID
        m = match_orders([local()], [ex])
        assert [e.order_id for _, e in m.found] == [TXID] and m.unmatched == ()
    free_text = ex_order(cl_ord_id="My-Order-7")
    assert free_text.cl_ord_id == "My-Order-7"  # text is compared as text


def test_the_open_order_wins_over_a_closed_one_with_the_same_cl_ord_id() -> None:
    old = renamed(ex_order(status="canceled"), "OLD")
    live = renamed(ex_order(status="open"), "LIVE")
    for exchange in ([old, live], [live, old]):
        (found,) = match_orders([local()], exchange).found
        assert found[1].order_id == "LIVE"


def plan_of(orders: list[Order], exchange: list[ExchangeOrder], **kwargs: Any) -> Any:
    kwargs.setdefault("ages_s", {})
    kwargs.setdefault("grace_s", 5.0)
    kwargs.setdefault("recorded_qty", {})
    return plan(orders, exchange, now_ns=T0 + 10 * NS, **kwargs)


def test_absent_orders_wait_out_the_grace_period_then_are_lost_never_guessed() -> None:
    young, old = local("7" * 32, state=S.UNKNOWN), local("8" * 32, state=S.UNKNOWN)
    leftover = local("9" * 32)  # PENDING_NEW after a restart
    known = local("6" * 32, state=S.NEW, order_id="OKNOWN")
    p = plan_of([young, old, leftover, known], [], ages_s={young.cl_ord_id: 1.0})
    assert p.waiting == (young.cl_ord_id,)
    assert p.lost == (old.cl_ord_id, leftover.cl_ord_id)
    assert [(o.cl_ord_id, o.state) for o in p.changed] == [
        (old.cl_ord_id, S.LOST),
        (leftover.cl_ord_id, S.LOST),
    ]
    assert p.vanished == (known.cl_ord_id,)  # Kraken had it: alert, leave it alone
    assert p.foreign == () and p.short_of_fills == ()
    exactly_at_grace = plan_of([young], [], ages_s={young.cl_ord_id: 5.0})
    assert exactly_at_grace.lost == (young.cl_ord_id,)


def test_a_plan_applies_the_exchange_once_and_is_idempotent() -> None:
    order = local(state=S.NEW, order_id=TXID)
    first = plan_of([order], [ex_order()], recorded_qty={CID: BTC.qty("0.375")})
    (moved,) = first.changed
    assert moved.state is S.PARTIALLY_FILLED and moved.filled_qty == BTC.qty("0.375")
    assert first.short_of_fills == ()  # the fills are recorded already
    again = plan_of([moved], [ex_order()], recorded_qty={CID: BTC.qty("0.375")})
    assert again.changed == () and again.lost == () and again.waiting == ()


def test_fills_not_recorded_make_an_order_short() -> None:
    order = local(state=S.NEW, order_id=TXID)
    p = plan_of([order], [ex_order(status="closed", vol_exec="1.25")],
                recorded_qty={CID: BTC.qty("0.375")})  # fmt: skip
    (short,) = p.short_of_fills
    assert short.state is S.FILLED and short.filled_qty == BTC.qty("1.25")


def test_foreign_open_orders_are_reported_not_adopted() -> None:
    ours = local(state=S.NEW, order_id=TXID)
    theirs = renamed(ex_order(cl_ord_id=None), "OWEBUI")
    closed = renamed(ex_order(status="closed", cl_ord_id="f" * 32), "OOLD")
    p = plan_of([ours], [ex_order(vol_exec="0"), theirs, closed])
    assert [e.order_id for e in p.foreign] == ["OWEBUI"]  # closed foreign ones: no matter
    assert all(o.cl_ord_id == CID for o in p.changed)


def test_a_lost_order_seen_open_is_revived() -> None:
    lost = local(state=S.LOST)
    (revived,) = plan_of([lost], [ex_order(vol_exec="0")]).changed
    assert revived.state is S.NEW and revived.order_id == TXID


# ---------------------------------------------------------------------- fills


def a_fill(exec_id: str, qty: str, ts_ns: int, cid: str = CID) -> Fill:
    return Fill(
        exec_id=exec_id, trade_id="1", cl_ord_id=cid, order_id=TXID, symbol="BTC/USD",
        side="buy", price=BTC.price("30010"), qty=BTC.qty(qty), price_precision=1,
        qty_precision=8, cost=Decimal(0), fee=Decimal(0), fee_asset="USD", liquidity="m",
        ts_ns=ts_ns,
    )  # fmt: skip


def test_recorded_fills_are_summed_per_order_once_each() -> None:
    mine, other = local(), local("e" * 32)
    fills = [a_fill("T1", "0.1", 5), a_fill("T2", "0.2", 9), a_fill("T1", "0.1", 5),
             a_fill("T3", "0.4", 7, "z" * 32)]  # fmt: skip
    known = recorded(fills, [mine, other])
    assert known.qty == {CID: BTC.qty("0.3")} and known.last_ns == {CID: 9}
    assert known.exec_ids == {"T1", "T2"}
    full = dataclasses.replace(mine, filled_qty=BTC.qty("0.5"))
    assert still_short([full], known, [])
    assert not still_short([full], known, [a_fill("T4", "0.2", 11)])


def test_trades_start_at_the_last_recorded_fill_or_the_order_minus_a_margin() -> None:
    a, b = local("a" * 32), local("b" * 32, created_ns=T0 + 100 * NS)
    assert trades_start_ns([a, b], {}, margin_ns=60 * NS) == T0 - 60 * NS
    later = {a.cl_ord_id: T0 + 500 * NS}
    assert trades_start_ns([a, b], later, margin_ns=60 * NS) == T0 + 40 * NS
    assert trades_start_ns([], {}, margin_ns=60 * NS) == 0


def test_missed_fills_are_ours_new_oldest_first_and_once() -> None:
    order = local(state=S.FILLED, order_id=TXID)
    trades = parse_trades(
        {
            "trades": {
                "T-LATE": kraken_trade(time=Decimal("1688667900"), vol="0.5", maker=False),
                "T-EARLY": kraken_trade(),
                "T-KNOWN": kraken_trade(),
                "T-FOREIGN": kraken_trade(ordertxid="OFOREIGN"),
                "T-AVG": kraken_trade(price="30010.04", time=Decimal("1688667999")),
            },
            "count": 5,
        }
    )
    fills = missed_fills(trades + trades[:1], {TXID: order}, TABLE, frozenset({"T-KNOWN"}))
    assert [f.exec_id for f in fills] == ["T-EARLY", "T-LATE", "T-AVG"]
    early = fills[0]
    assert (early.cl_ord_id, early.symbol, early.side, early.order_id) == (
        CID,
        "BTC/USD",
        "buy",
        TXID,
    )
    assert (early.price, early.qty) == (BTC.price("30010"), BTC.qty("0.02"))
    assert (early.fee, early.fee_asset, early.liquidity) == (Decimal("0.96"), "USD", "m")
    assert fills[1].liquidity == "t"
    # A consolidated taker price finer than the pair (precision 1) is kept exact.
    assert (fills[2].price, fills[2].price_precision) == (3001004, 2)
    assert (early.price_precision, fills[1].price_precision) == (1, 1)


# ---------------------------------------------------------------------- the index


def test_the_index_finds_sparse_reports_by_txid_and_holds_early_ones() -> None:
    index = OrderIndex()
    order = local()
    assert index.put(order) == []
    early = ExecutionReport(exec_type="new", order_status="new", order_id=TXID)
    assert index.owner(early) is None
    index.hold(early)
    index.hold(ExecutionReport(exec_type="new", cl_ord_id="x" * 32))  # named: never held
    assert index.put(dataclasses.replace(order, order_id=TXID)) == [early]
    assert index.owner(early) == CID
    assert index.owner(ExecutionReport(cl_ord_id=CID)) == CID
    assert index.put(dataclasses.replace(order, order_id=TXID)) == []  # handed back once
    assert [o.cl_ord_id for o in index.open("BTC/USD")] == [CID] and index.open("ETH/USD") == []


def test_the_index_bounds_held_reports_and_done_orders() -> None:
    index = OrderIndex(max_done=2, max_held=2)
    for txid in ("O1", "O2", "O3"):
        index.hold(ExecutionReport(order_id=txid))
    opened = local("e" * 32, state=S.NEW)
    index.put(opened)
    done = [local(f"{i}" * 32, state=S.CANCELED, order_id=f"O{i}") for i in range(1, 4)]
    for order in done:
        index.put(order)
    assert set(index.orders) == {opened.cl_ord_id, done[1].cl_ord_id, done[2].cl_ord_id}
    assert index.owner(ExecutionReport(order_id="O1")) is None  # forgotten with its order
    index.touched[done[1].cl_ord_id] = 1.0
    index.put(local("5" * 32, state=S.FILLED))
    assert done[1].cl_ord_id not in index.touched


def test_the_index_counts_open_orders_by_symbol_and_strategy_as_they_change() -> None:
    """What the pre-trade stage reads on every command: kept in step with each ``put``
    (open to done and back, a LOST order revived), never a scan."""
    index = OrderIndex(max_done=1)

    def counts() -> tuple[dict[str, int], dict[str, int], int]:
        return dict(index.open_per_symbol), dict(index.open_per_strategy), index.open_total

    a = dataclasses.replace(local("a" * 32, state=S.NEW), strategy="mm")
    b = dataclasses.replace(local("b" * 32), strategy="grid", symbol="ETH/USD")
    index.put(a)
    index.put(b)
    index.put(dataclasses.replace(a, state=S.PARTIALLY_FILLED))  # open to open: no change
    assert counts() == ({"BTC/USD": 1, "ETH/USD": 1}, {"mm": 1, "grid": 1}, 2)
    index.put(dataclasses.replace(a, state=S.FILLED))
    assert counts() == ({"ETH/USD": 1}, {"grid": 1}, 1)
    lost = dataclasses.replace(b, state=S.LOST)
    index.put(lost)
    assert counts() == ({}, {}, 0)
    index.put(dataclasses.replace(lost, state=S.NEW))  # the exchange had it after all
    assert counts() == ({"ETH/USD": 1}, {"grid": 1}, 1)
    scan: dict[str, int] = {}
    for order in index.open():
        scan[order.symbol] = scan.get(order.symbol, 0) + 1
    assert scan == index.open_per_symbol and len(index.open()) == index.open_total
