"""The risk gate: each limit at its boundary, states, the loss kill switch, scopes, counters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import load_config_text
from bot.core.clock import FakeClock
from bot.core.errors import RiskError
from bot.execution.commands import PlaceOrder
from bot.execution.pnl import NS_PER_DAY, PositionBook, utc_day
from bot.execution.risk import (
    REASONS,
    RiskContext,
    RiskDecision,
    RiskGate,
    RiskLimits,
    TradingState,
)
from bot.kraken.instruments import Instrument
from tests.unit.risk_commands import amend_cmd, cancel_cmd, place_cmd

D = Decimal
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)
MID = RiskContext(mids={"BTC/USD": D("50000.0"), "ETH/USD": D("2000.00")})
# 2023-11-14 23:00:00 UTC
START = (utc_day(1_700_000_000 * 10**9) + 1) * NS_PER_DAY - 3600 * 10**9


def make_gate(
    limits: RiskLimits | None = None, **per_strategy: RiskLimits
) -> tuple[FakeClock, PositionBook, RiskGate]:
    clock = FakeClock(start_ns=START)
    book = PositionBook(clock)
    return clock, book, RiskGate(clock, book, limits, per_strategy)


def order(
    side: str = "buy",
    qty: str = "0.01",
    price: str | None = "50000.0",
    strategy: str = "mm",
    inst: Instrument = BTC,
) -> PlaceOrder:
    return place_cmd(
        strategy,
        inst,
        side,  # type: ignore[arg-type]
        inst.qty(qty),
        None if price is None else inst.price(price),
    )


def fill(book: PositionBook, side: str, qty: str, price: str, strategy: str = "mm") -> None:
    book.apply_fill(
        "BTC/USD",
        BTC,
        side,  # type: ignore[arg-type]
        BTC.qty(qty),
        BTC.price(price),
        strategy=strategy,
    )


def rejected(decision: RiskDecision, reason: str) -> bool:
    return not decision.accepted and decision.reason == reason


# -- each limit at its boundary ----------------------------------------------------------


def test_max_order_qty_boundary() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_qty=D("0.01")))
    assert gate.check(order(qty="0.01"), MID).accepted
    decision = gate.check(order(qty="0.01000001"), MID)
    assert rejected(decision, "max_order_qty")
    assert decision.error is not None and "0.01000001" in decision.error.detail


def test_max_notional_boundary() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_notional=D(500)))
    assert gate.check(order(qty="0.01", price="50000.0"), MID).accepted
    assert rejected(gate.check(order(qty="0.01", price="50000.1"), MID), "max_notional")
    assert rejected(gate.check(order(qty="0.01000001", price="50000.0"), MID), "max_notional")


def test_market_order_notional_is_estimated_at_the_far_side_of_the_band() -> None:
    limits = RiskLimits(max_order_notional=D(510), price_band_pct=D(2))
    _, _, gate = make_gate(limits)
    # a buy at mid × 1.02 = 51000 per BTC: 0.01 BTC is 510
    assert gate.check(order("buy", "0.01", None), MID).accepted
    assert rejected(gate.check(order("buy", "0.01000001", None), MID), "max_notional")
    # a sell at the mid: 0.0102 BTC is 510
    assert gate.check(order("sell", "0.0102", None), MID).accepted
    assert rejected(gate.check(order("sell", "0.01020001", None), MID), "max_notional")


def test_market_order_without_band_is_estimated_at_the_mid() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_notional=D(500)))
    assert gate.check(order("buy", "0.01", None), MID).accepted
    assert rejected(gate.check(order("buy", "0.01000001", None), MID), "max_notional")


def test_no_mid() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_notional=D(500)))
    assert rejected(gate.check(order(price=None), RiskContext()), "no_mid")
    assert gate.check(order(), RiskContext()).accepted  # priced, no band: needs no mid
    _, _, gate = make_gate(RiskLimits(price_band_pct=D(5)))
    assert rejected(gate.check(order(), RiskContext()), "no_mid")
    assert rejected(gate.check(order(price=None), RiskContext()), "no_mid")
    _, _, gate = make_gate()
    assert gate.check(order(price=None), RiskContext()).accepted


@pytest.mark.parametrize(
    ("price", "ok"),
    [("52500.0", True), ("52500.1", False), ("47500.0", True), ("47499.9", False)],
)
def test_price_band_boundary(price: str, ok: bool) -> None:
    _, _, gate = make_gate(RiskLimits(price_band_pct=D(5)))
    decision = gate.check(order(price=price), MID)
    assert decision.accepted is ok
    if not ok:
        assert decision.reason == "price_band"


def test_max_position_boundary_and_reductions() -> None:
    _, book, gate = make_gate(RiskLimits(max_position={"BTC": D("0.05")}))
    assert gate.check(order(qty="0.05"), MID).accepted
    assert rejected(gate.check(order(qty="0.05000001"), MID), "max_position")
    assert rejected(gate.check(order("sell", "0.05000001"), MID), "max_position")
    fill(book, "buy", "0.08", "50000.0")  # already past the cap
    assert gate.check(order("sell", "0.01"), MID).accepted  # shrinks it
    assert gate.check(order("sell", "0.13"), MID).accepted  # to -0.05
    assert rejected(gate.check(order("sell", "0.13000001"), MID), "max_position")
    assert rejected(gate.check(order("buy", "0.00000001"), MID), "max_position")
    # another asset has no cap
    assert gate.check(order(qty="100", price="2000.00", inst=ETH), MID).accepted


def test_max_open_orders_boundary() -> None:
    _, _, gate = make_gate(RiskLimits(max_open_orders=2))
    assert gate.check(order(), RiskContext(MID.mids, {"mm": 1})).accepted
    decision = gate.check(order(), RiskContext(MID.mids, {"mm": 1, "other": 1}))
    assert rejected(decision, "max_open_orders")
    total_given = RiskContext(MID.mids, {"mm": 0}, open_orders_total=2)
    assert rejected(gate.check(order(), total_given), "max_open_orders")


def test_order_rate_window_slides() -> None:
    clock, _, gate = make_gate(RiskLimits(max_orders_per_minute=3))
    for _ in range(3):
        assert gate.check(order(), MID).accepted
        clock.advance(10)
    # orders at t = 0, 10, 20; now t = 30
    assert rejected(gate.check(order(), MID), "order_rate")
    clock.advance(29.5)  # t = 59.5: the first still counts
    assert rejected(gate.check(order(), MID), "order_rate")
    assert gate.orders_in_window() == 3
    clock.advance(0.5)  # t = 60: the first has left the window
    assert gate.check(order(), MID).accepted
    assert rejected(gate.check(order(), MID), "order_rate")  # rejections were not counted
    clock.advance(10)  # t = 70: the one at 10 leaves
    assert gate.check(order(), MID).accepted
    assert gate.orders_in_window() == 3


def test_cancels_do_not_count_towards_the_rate() -> None:
    _, _, gate = make_gate(RiskLimits(max_orders_per_minute=1))
    assert gate.check(cancel_cmd("mm"), MID).accepted
    assert gate.check(order(), MID).accepted
    assert gate.check(cancel_cmd("mm", "BTC/USD", "abc"), MID).accepted


def test_amends_count_towards_the_rate() -> None:
    _, _, gate = make_gate(RiskLimits(max_orders_per_minute=2))
    price = BTC.price("50000.0")
    assert gate.check(order(), MID).accepted
    assert gate.check(amend_cmd("mm", BTC, "buy", 1, price, new_qty=2), MID).accepted
    assert rejected(gate.check(amend_cmd("mm", BTC, "buy", 2, price, new_qty=3), MID), "order_rate")


# -- per-strategy and global limits ------------------------------------------------------


def test_strategy_limits_apply_to_the_strategy_only() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_qty=D(1)), mm=RiskLimits(max_order_qty=D("0.1")))
    decision = gate.check(order(qty="0.5"), MID)
    assert rejected(decision, "max_order_qty")
    assert decision.error is not None and "strategy mm" in decision.error.detail
    assert gate.check(order(qty="0.5", strategy="other"), MID).accepted
    decision = gate.check(order(qty="1.5", strategy="other"), MID)
    assert rejected(decision, "max_order_qty")
    assert decision.error is not None and decision.error.detail.startswith("bot:")


def test_global_open_orders_bind_even_when_the_strategy_has_room() -> None:
    _, _, gate = make_gate(RiskLimits(max_open_orders=3), mm=RiskLimits(max_open_orders=10))
    ctx = RiskContext(MID.mids, {"mm": 1, "other": 2})
    assert rejected(gate.check(order(), ctx), "max_open_orders")
    _, _, gate = make_gate(RiskLimits(max_open_orders=10), mm=RiskLimits(max_open_orders=1))
    assert rejected(gate.check(order(), ctx), "max_open_orders")
    assert gate.check(order(strategy="other"), ctx).accepted


def test_strategy_position_is_its_own_and_the_bots_is_the_total() -> None:
    limits = RiskLimits(max_position={"BTC": D(1)})
    _, book, gate = make_gate(limits, mm=RiskLimits(max_position={"BTC": D("0.5")}))
    fill(book, "buy", "0.5", "50000.0", strategy="other")
    fill(book, "buy", "0.4", "50000.0", strategy="mm")
    assert gate.check(order(qty="0.1"), MID).accepted  # mm: 0.5, bot: 1.0
    assert rejected(gate.check(order(qty="0.10000001"), MID), "max_position")
    fill(book, "buy", "0.1", "50000.0", strategy="other")  # the bot is at 1.0
    decision = gate.check(order(qty="0.01"), MID)
    assert rejected(decision, "max_position")
    assert decision.error is not None and decision.error.detail.startswith("bot:")


def test_strategy_order_rate_is_counted_per_strategy() -> None:
    _, _, gate = make_gate(
        RiskLimits(max_orders_per_minute=3), mm=RiskLimits(max_orders_per_minute=1)
    )
    assert gate.check(order(), MID).accepted
    assert rejected(gate.check(order(), MID), "order_rate")
    assert gate.check(order(strategy="b"), MID).accepted
    assert gate.check(order(strategy="c"), MID).accepted
    assert rejected(gate.check(order(strategy="d"), MID), "order_rate")
    assert gate.orders_in_window("mm") == 1 and gate.orders_in_window() == 3


# -- states ------------------------------------------------------------------------------


def test_reducing_passes_only_reducing_orders() -> None:
    _, book, gate = make_gate()
    fill(book, "buy", "1", "50000.0")
    t = gate.reduce_only("manual", "operator")
    assert (t.from_state, t.to_state, t.cancel_orders) == ("active", "reducing", False)
    assert gate.state is TradingState.REDUCING
    decision = gate.check(order("sell", "0.5"), MID)
    assert decision.accepted and decision.is_reduce
    assert gate.check(order("sell", "1"), MID).accepted  # to flat
    assert rejected(gate.check(order("sell", "1.00000001"), MID), "reducing_only")  # flips
    assert rejected(gate.check(order("buy", "0.1"), MID), "reducing_only")
    assert rejected(gate.check(order("buy", "1", inst=ETH, price="2000.00"), MID), "reducing_only")
    assert gate.check(cancel_cmd("mm"), MID).accepted
    gate.resume()
    decision = gate.check(order("buy", "0.1"), MID)
    assert decision.accepted and not decision.is_reduce


def test_reducing_a_short_and_a_strategy_of_its_own() -> None:
    _, book, gate = make_gate()
    fill(book, "sell", "1", "50000.0", strategy="mm")
    fill(book, "buy", "3", "50000.0", strategy="other")
    gate.reduce_only("manual", strategy="mm")
    assert gate.strategy_state("mm") is TradingState.REDUCING
    assert gate.state is TradingState.ACTIVE
    # mm's own position is short 1: a buy reduces it, though the bot is long 2
    decision = gate.check(order("buy", "1"), MID)
    assert decision.accepted and not decision.is_reduce
    assert rejected(gate.check(order("sell", "0.1"), MID), "reducing_only")
    assert gate.check(order("sell", "0.1", strategy="other"), MID).accepted


def test_halted_passes_only_cancels() -> None:
    _, book, gate = make_gate()
    fill(book, "buy", "1", "50000.0")
    t = gate.halt("manual", "operator pressed the button")
    assert t.to_state is TradingState.HALTED and t.cancel_orders
    assert t.log_fields()["scope"] == "*"
    assert rejected(gate.check(order("sell", "0.5"), MID), "halted")  # even reducing
    amend = amend_cmd("mm", BTC, "buy", BTC.qty("0.01"), BTC.price("50000.0"), new_qty=1)
    assert rejected(gate.check(amend, MID), "halted")
    assert gate.check(cancel_cmd("mm"), MID).accepted
    t = gate.resume("manual")
    assert (t.from_state, t.to_state) == ("halted", "active")
    assert gate.check(order(), MID).accepted


def test_a_halted_strategy_leaves_the_others_trading() -> None:
    _, _, gate = make_gate()
    t = gate.halt("manual", strategy="mm", cancel=False)
    assert t.strategy == "mm" and not t.cancel_orders
    assert rejected(gate.check(order(), MID), "halted")
    assert gate.check(order(strategy="other"), MID).accepted
    gate.reduce_only("manual")
    assert gate.strategy_state("other") is TradingState.REDUCING
    assert gate.strategy_state("mm") is TradingState.HALTED


# -- the daily loss limit ----------------------------------------------------------------


def test_realised_loss_past_the_limit_halts_and_asks_for_cancels() -> None:
    _, book, gate = make_gate(RiskLimits(daily_loss_limit=D(100)))
    fill(book, "buy", "1", "50000.0")
    fill(book, "sell", "1", "49900.0")  # exactly -100: at the boundary
    assert gate.evaluate() == ()
    assert gate.check(order(), MID).accepted
    fill(book, "buy", "0.001", "50000.0")
    fill(book, "sell", "0.001", "49999.9")  # -100.0001
    decision = gate.check(order(), MID)
    assert rejected(decision, "daily_loss")
    (t,) = decision.transitions
    assert t.strategy is None and t.to_state is TradingState.HALTED and t.cancel_orders
    assert t.reason == "daily_loss" and "-100.0001" in t.detail
    assert gate.state is TradingState.HALTED
    assert rejected(gate.check(order(), MID), "halted")
    assert gate.check(cancel_cmd("mm"), MID).accepted


def test_unrealised_loss_from_a_mark_move_halts() -> None:
    _, book, gate = make_gate(RiskLimits(daily_loss_limit=D(100)))
    fill(book, "buy", "1", "50000.0")
    book.mark("BTC/USD", D("49900.0"))
    assert gate.evaluate() == ()
    book.mark("BTC/USD", D("49899.95"))  # a mid has one more decimal than the price
    (t,) = gate.evaluate()
    assert t.cancel_orders and gate.state is TradingState.HALTED


def test_loss_halt_is_latched_for_the_day_and_rearms_the_next() -> None:
    clock, book, gate = make_gate(RiskLimits(daily_loss_limit=D(100)))
    fill(book, "buy", "1", "50000.0")
    fill(book, "sell", "1", "49800.0")
    assert len(gate.evaluate()) == 1
    assert gate.evaluate() == ()  # already halted for today
    gate.reduce_only("manual", "flatten by hand")
    assert gate.evaluate() == ()  # the human decided; the same day's loss does not re-halt
    gate.resume()
    assert gate.check(order(), MID).accepted
    clock.advance(3600)  # past midnight: a new day, a new budget
    assert book.daily_pnl("USD") == 0
    assert gate.evaluate() == ()
    fill(book, "buy", "1", "50000.0")
    fill(book, "sell", "1", "49899.9")
    assert rejected(gate.check(order(), MID), "daily_loss")


def test_a_halt_survives_midnight_until_a_human_resumes() -> None:
    clock, book, gate = make_gate(RiskLimits(daily_loss_limit=D(100)))
    fill(book, "buy", "1", "50000.0")
    fill(book, "sell", "1", "49800.0")
    gate.evaluate()
    clock.advance(3600)
    assert gate.evaluate() == ()
    assert rejected(gate.check(order(), MID), "halted")


def test_strategy_loss_limit_halts_that_strategy_only() -> None:
    _, book, gate = make_gate(
        RiskLimits(daily_loss_limit=D(1000)), mm=RiskLimits(daily_loss_limit=D(50))
    )
    fill(book, "buy", "1", "50000.0", strategy="other")
    fill(book, "sell", "1", "50100.0", strategy="other")  # +100
    fill(book, "buy", "1", "50000.0")
    fill(book, "sell", "1", "49940.0")  # mm: -60; the bot: +40
    decision = gate.check(order(strategy="other"), MID)
    assert decision.accepted
    (t,) = decision.transitions  # the caller cancels mm's orders
    assert t.strategy == "mm" and t.cancel_orders
    assert gate.state is TradingState.ACTIVE
    assert gate.strategy_state("mm") is TradingState.HALTED
    assert rejected(gate.check(order(), MID), "halted")


# -- amends, invalid intents, errors, counters, config ---------------------------------


def test_amends_are_checked_with_their_new_qty_and_price() -> None:
    limits = RiskLimits(max_order_qty=D("0.1"), price_band_pct=D(5), max_open_orders=1)
    _, _, gate = make_gate(limits)
    ctx = RiskContext(MID.mids, {"mm": 1})  # at the open-order limit: amends add none
    far = BTC.price("40000.0")
    base = amend_cmd("mm", BTC, "buy", BTC.qty("0.01"), far)
    assert gate.check(base, ctx).accepted  # price unchanged: the band is not re-checked
    assert gate.check(amend_cmd("mm", BTC, "buy", 1, far, new_qty=BTC.qty("0.1")), ctx).accepted
    amend = amend_cmd("mm", BTC, "buy", 1, far, new_qty=BTC.qty("0.10000001"))
    assert rejected(gate.check(amend, ctx), "max_order_qty")
    amend = amend_cmd("mm", BTC, "buy", 1, far, new_price=BTC.price("52500.1"))
    assert rejected(gate.check(amend, ctx), "price_band")
    amend = amend_cmd("mm", BTC, "buy", 1, far, new_price=BTC.price("52500.0"))
    assert gate.check(amend, ctx).accepted
    filled = amend_cmd("mm", BTC, "buy", 10, far, new_qty=5, filled_qty=5)
    assert rejected(gate.check(filled, ctx), "invalid")


def test_amend_in_reducing_counts_only_what_is_left_to_fill() -> None:
    _, book, gate = make_gate()
    fill(book, "buy", "1", "50000.0")
    gate.reduce_only("manual")
    price = BTC.price("50000.0")
    amend = amend_cmd("mm", BTC, "sell", BTC.qty("1"), price, new_qty=BTC.qty("1.5"))
    assert rejected(gate.check(amend, MID), "reducing_only")
    partly = amend_cmd(
        "mm", BTC, "sell", BTC.qty("1"), price, new_qty=BTC.qty("1.5"), filled_qty=BTC.qty("0.5")
    )
    assert gate.check(partly, MID).accepted


def test_invalid_intents() -> None:
    _, _, gate = make_gate()
    assert rejected(gate.check(place_cmd("mm", BTC, "buy", 0, 1), MID), "invalid")
    assert rejected(gate.check(place_cmd("mm", BTC, "buy", 1, 0), MID), "invalid")
    assert rejected(gate.check(place_cmd("mm", BTC, "hold", 1, 1), MID), "invalid")  # type: ignore[arg-type]


def test_rejections_are_errors_to_return_or_raise() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_qty=D("0.01")))
    decision = gate.check(order(qty="1"), MID)
    assert isinstance(decision.error, RiskError) and decision.error.reason == "max_order_qty"
    with pytest.raises(RiskError, match="max_order_qty"):
        decision.raise_if_rejected()
    gate.check(order(), MID).raise_if_rejected()  # accepted: nothing raised


def test_rejections_are_counted_per_reason_and_strategy() -> None:
    _, _, gate = make_gate(RiskLimits(max_order_qty=D("0.01"), price_band_pct=D(1)))
    gate.check(order(qty="1"), MID)
    gate.check(order(qty="1", strategy="b"), MID)
    gate.check(order(price="1.0"), MID)
    gate.check(order(), RiskContext())
    gate.check(order(), MID)
    counts = gate.rejections()
    assert set(counts) == set(REASONS)
    assert counts["max_order_qty"] == 2 and counts["price_band"] == 1 and counts["no_mid"] == 1
    assert sum(counts.values()) == 4
    assert gate.rejections_by_strategy() == {
        ("mm", "max_order_qty"): 1,
        ("b", "max_order_qty"): 1,
        ("mm", "price_band"): 1,
        ("mm", "no_mid"): 1,
    }
    assert gate.accepted == 1
    expected = {"invalid", "daily_loss", "halted", "reducing_only", "max_order_qty", "no_mid"}
    expected |= {"price_band", "max_notional", "max_position", "max_open_orders", "order_rate"}
    assert set(REASONS) == expected


def test_from_config_uses_global_and_merged_strategy_limits() -> None:
    config = load_config_text(
        "risk:\n"
        "  max_order_qty: 1\n"
        "  max_position: {BTC: 2}\n"
        "strategies:\n"
        "  - name: mm\n"
        "    class: x:Y\n"
        "    symbols: [BTC/USD]\n"
        "    risk: {max_order_qty: 0.1}\n",
        "t.yaml",
        {},
    )
    clock = FakeClock(start_ns=START)
    gate = RiskGate.from_config(config, clock, PositionBook(clock))
    assert rejected(gate.check(order(qty="0.2"), MID), "max_order_qty")
    assert gate.check(order(qty="0.2", strategy="other"), MID).accepted
    assert rejected(gate.check(order(qty="2.1", strategy="other"), MID), "max_order_qty")
    gate.positions.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1.95"), BTC.price("50000.0"))
    assert rejected(gate.check(order(qty="0.1"), MID), "max_position")


def test_each_strategy_keeps_its_own_scopes_across_checks() -> None:
    # The gate builds each strategy's scopes once: they must never leak between strategies.
    clock, _, gate = make_gate(
        RiskLimits(max_order_qty=D("1"), max_orders_per_minute=3),
        tight=RiskLimits(max_order_qty=D("0.1"), max_orders_per_minute=1),
    )
    for _ in range(2):
        assert rejected(gate.check(order(qty="0.5", strategy="tight")), "max_order_qty")
        assert gate.check(order(qty="0.5", strategy="free"), MID).accepted
    assert gate.check(order(qty="0.05", strategy="tight"), MID).accepted
    assert rejected(gate.check(order(qty="0.05", strategy="tight"), MID), "order_rate")
    assert gate.orders_in_window("tight") == 1
    assert gate.orders_in_window() == 3  # the bot's window counts every accepted order
    assert rejected(gate.check(order(qty="0.05", strategy="free"), MID), "order_rate")
    clock.advance(61.0)
    assert gate.check(order(qty="0.05", strategy="free"), MID).accepted
