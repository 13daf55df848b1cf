"""The Futures simulator's pure exchange: order types, positions, margin, funding.

Liquidity comes from market-account orders placed with ``apply_market``, so every price
and quantity below is known: PF_XBTUSD has tick 0.5 (scaled 5, precision 1) and sizes of
four decimals (1 = 0.0001 contract).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.sim.futures.contracts import default_contracts
from bot.sim.futures.engine import FuturesExchange, SendRequest
from bot.sim.market_data import MarketAdd

T0 = 1_700_000_000_000_000_000
S = "PF_XBTUSD"
ONE = 10_000  # one contract
D = Decimal


def px(text: str) -> int:
    return int(D(text) * 10)


def exchange(balance: str = "100000", **kwargs: object) -> FuturesExchange:
    ex = FuturesExchange(default_contracts([S]), seed=1, **kwargs)  # type: ignore[arg-type]
    ex.add_account("a", D(balance))
    ex.add_account("b", D(balance))
    ex.apply_market(
        [
            MarketAdd(S, 1, "buy", px("64999.5"), ONE),
            MarketAdd(S, 2, "buy", px("64999"), 2 * ONE),
            MarketAdd(S, 3, "sell", px("65000.5"), ONE),
            MarketAdd(S, 4, "sell", px("65001"), 2 * ONE),
        ],
        T0,
    )
    return ex


def send(ex: FuturesExchange, account: str = "a", **kwargs: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {"symbol": S, "side": "buy", "order_type": "lmt", "size": ONE}
    fields.update(kwargs)
    return ex.send_order(account, SendRequest(**fields), T0)  # type: ignore[arg-type]


def test_limit_rests_then_fills_as_maker() -> None:
    ex = exchange()
    out = send(ex, limit_price=px("64990"), cli_ord_id="c1")
    assert out.status == "placed" and [e.kind for e in out.report.events] == ["PLACE"]
    assert [(u.reason, u.is_cancel) for u in out.report.updates] == [
        ("new_placed_order_by_user", False)
    ]
    taker = send(ex, "b", side="sell", order_type="ioc", limit_price=px("64990"), size=4 * ONE)
    assert taker.status == "placed"
    fills = {f.account: f for f in taker.report.fills}
    assert fills["a"].fill_type == "maker" and fills["b"].fill_type == "taker"
    assert ex.positions("a")[S].qty == ONE and ex.positions("b")[S].qty == -4 * ONE
    # maker fee 0.02% of 64990, taker 0.05% of its notional
    assert ex.accounts["a"].balance == D("100000") - D("12.998")
    assert [u.reason for u in taker.report.updates if u.account == "a"] == ["full_fill"]


def test_post_only_refused_when_it_would_trade() -> None:
    ex = exchange()
    out = send(ex, order_type="post", limit_price=px("65000.5"))
    assert out.status == "postWouldExecute"
    assert [(e.kind, e.reason) for e in out.report.events] == [("REJECT", "POST_WOULD_EXECUTE")]
    assert ex.open_orders("a") == []
    assert send(ex, order_type="post", limit_price=px("65000"), cli_ord_id="p").status == "placed"


def test_ioc_fok_and_market() -> None:
    ex = exchange()
    none = send(ex, order_type="ioc", limit_price=px("64000"))
    assert none.status == "iocWouldNotExecute"
    fok = send(ex, order_type="fok", limit_price=px("65000.5"), size=2 * ONE)
    assert fok.status == "iocWouldNotExecute" and ex.positions("a") == {}
    partial = send(ex, order_type="ioc", limit_price=px("65000.5"), size=2 * ONE)
    assert partial.status == "placed" and ex.positions("a")[S].qty == ONE
    assert ex.open_orders("a") == []  # the rest was cancelled, not rested
    market = send(ex, order_type="mkt", size=ONE)
    assert market.status == "placed"
    execution = market.report.events[0]
    assert execution.kind == "EXECUTION" and execution.price == px("65001")
    # 1% protection around the mark (the mid of 64999 / 65001 = 65000): limit 65650
    assert execution.order.limit_price == px("65650") and execution.order.kind == "ioc"


def test_reduce_only_is_cut_to_the_position_or_refused() -> None:
    ex = exchange()
    assert send(ex, side="sell", limit_price=px("66000"), reduce_only=True).status == (
        "wouldNotReducePosition"
    )
    send(ex, order_type="ioc", limit_price=px("65000.5"), size=ONE)  # long 1
    out = send(ex, side="sell", limit_price=px("66000"), size=3 * ONE, reduce_only=True)
    assert out.status == "placed"
    assert out.report.events[0].reduced_quantity == 2 * ONE
    assert ex.open_orders("a")[0].qty == ONE
    # The position goes away: the reduce-only order goes with it.
    closing = send(ex, side="sell", order_type="ioc", limit_price=px("64999.5"), size=ONE)
    assert closing.status == "placed" and ex.positions("a") == {}
    assert ex.open_orders("a") == []
    assert ("would_not_reduce_position", True) in [
        (u.reason, u.is_cancel) for u in closing.report.updates
    ]


def test_self_fill_client_ids_and_validation() -> None:
    ex = exchange()
    assert send(ex, side="sell", limit_price=px("65000"), cli_ord_id="x").status == "placed"
    assert send(ex, limit_price=px("65000")).status == "selfFill"
    assert send(ex, limit_price=px("60000"), cli_ord_id="x").status == "clientOrderIdAlreadyExist"
    assert send(ex, limit_price=px("60000"), cli_ord_id="y" * 101).status == "clientOrderIdTooLong"
    assert send(ex, limit_price=px("64990") + 1).status == "invalidPrice"
    assert send(ex, order_type="lmt").status == "invalidPrice"
    assert send(ex, order_type="stp").status == "invalidPrice"
    assert send(ex, order_type="trailing_stop").status == "invalidOrderType"
    assert send(ex, side="long", limit_price=px("60000")).status == "invalidSide"
    assert send(ex, size=0, limit_price=px("60000")).status == "invalidSize"


def test_margin_and_maximum_position() -> None:
    ex = exchange(balance="100")
    # 1 contract at 65000 needs 2% = 1300 USD of initial margin.
    assert send(ex, limit_price=px("64000")).status == "insufficientAvailableFunds"
    assert send(ex, limit_price=px("64000"), size=100).status == "placed"  # 0.01: 12.80
    rich = exchange(balance="100000000")
    assert send(rich, limit_price=px("60000"), size=501 * ONE).status == "maxPositionViolation"


def test_stop_triggers_on_the_last_price_and_enters_as_limit() -> None:
    ex = exchange()
    out = send(
        ex,
        side="buy",
        order_type="stp",
        stop_price=px("65001"),
        limit_price=px("65010"),
        cli_ord_id="s1",
    )
    assert out.status == "placed" and out.report.events[0].order.is_trigger
    assert ex.open_orders("a")[0].ws_type == "stop"
    # b buys at 65001: the last trade reaches the stop.
    trade = send(ex, "b", order_type="ioc", limit_price=px("65001"), size=2 * ONE)
    reasons = [u.reason for u in trade.report.updates if u.account == "a"]
    assert reasons[0] == "stop_order_triggered"
    # It entered as a buy limit at 65010 and took the 65001 ask that was left.
    assert ex.positions("a")[S].qty == ONE
    assert [(f.price, f.fill_type) for f in ex.fills("a")] == [(px("65001"), "taker")]
    assert ex.open_orders("a") == []


def test_take_profit_without_limit_becomes_a_market_order() -> None:
    ex = exchange()
    send(ex, order_type="ioc", limit_price=px("65000.5"), size=ONE)  # long 1 at 65000.5
    out = send(
        ex,
        side="sell",
        order_type="take_profit",
        stop_price=px("64000"),
        reduce_only=True,
        trigger_signal="mark",
    )
    # A sell take-profit triggers at or above the stop: the mark (65000) already is.
    assert out.status == "placed"
    assert ex.positions("a") == {}
    assert "stop_order_triggered" in [u.reason for u in out.report.updates]


def test_edit_keeps_priority_on_shrink_and_moves_on_price() -> None:
    ex = exchange()
    first = send(ex, limit_price=px("64990"), size=2 * ONE, cli_ord_id="e1")
    send(ex, "b", limit_price=px("64990"), size=ONE)
    shrink = ex.edit_order("a", T0, cli_ord_id="e1", size=ONE)
    assert shrink.status == "edited" and shrink.report.events[0].kind == "EDIT"
    queue = ex.book(S).queue("bid", px("64990"))
    assert [o.account for o in queue] == ["a", "b"]
    moved = ex.edit_order("a", T0, order_id=first.order_id, limit_price=px("64990") - 5)
    assert moved.status == "edited"
    assert ex.edit_order("a", T0, order_id="nope", size=ONE).status == "orderForEditNotFound"
    assert ex.edit_order("a", T0, cli_ord_id="e1", stop_price=px("1")).status == (
        "orderForEditNotAStop"
    )
    crossing = ex.edit_order("a", T0, cli_ord_id="e1", limit_price=px("65001"))
    assert crossing.status == "edited"
    assert [e.kind for e in crossing.report.events][-1] == "EXECUTION"
    assert [f.fill_type for f in crossing.report.fills if f.account == "a"] == ["takerAfterEdit"]


def test_cancel_statuses_and_cancel_all() -> None:
    ex = exchange()
    placed = send(ex, limit_price=px("64000"), cli_ord_id="k1")
    send(ex, limit_price=px("64000"), cli_ord_id="k2")
    assert ex.cancel_order("a", T0, cli_ord_id="k1").status == "cancelled"
    assert ex.cancel_order("a", T0, order_id=placed.order_id).status == "notFound"
    filled = send(ex, order_type="ioc", limit_price=px("65000.5"), size=ONE, cli_ord_id="k3")
    assert ex.cancel_order("a", T0, order_id=filled.order_id).status == "filled"
    everything = ex.cancel_all("a", T0, reason="dead_man_switch")
    assert everything.status == "cancelled" and len(everything.cancelled) == 1
    assert [u.reason for u in everything.report.updates] == ["dead_man_switch"]
    assert ex.cancel_all("a", T0).status == "noOrdersToCancel"


def test_pnl_is_realised_on_reduction_and_funding_accrues() -> None:
    ex = exchange(funding_rate=D("0.001"), funding_interval_s=3600)
    send(ex, order_type="ioc", limit_price=px("65000.5"), size=ONE)  # long 1 at 65000.5
    start = ex.accounts["a"].balance
    ex.advance(T0)  # starts the funding clock
    ex.advance(T0 + 3600 * 10**9)  # one charge: 0.1% of 1 * mark (65000) paid by the long
    assert ex.positions("a")[S].unrealized_funding == D("-65.00000000")
    view = ex.margin("a")
    assert view.unrealized_funding == D("-65")
    # Sell it back at 64999.5: PnL -1, the accrued funding realised, taker fee paid.
    send(ex, side="sell", order_type="ioc", limit_price=px("64999.5"), size=ONE)
    fee = D("64999.5") * D("0.0005")
    assert ex.accounts["a"].balance == start - 1 - 65 - fee
    assert ex.positions("a") == {}


def test_flipping_a_position_opens_the_rest_at_the_fill_price() -> None:
    ex = exchange()
    send(ex, order_type="ioc", limit_price=px("65000.5"), size=ONE)
    send(ex, side="sell", order_type="ioc", limit_price=px("64999"), size=3 * ONE)
    pos = ex.positions("a")[S]
    assert pos.qty == -2 * ONE and pos.entry == D("64999")


@pytest.mark.parametrize("signal", ["mark", "index", "last"])
def test_trigger_signals(signal: str) -> None:
    ex = exchange()
    out = send(ex, side="sell", order_type="stp", stop_price=px("60000"), trigger_signal=signal)
    assert out.status == "placed" and len(ex.open_orders("a")) == 1
