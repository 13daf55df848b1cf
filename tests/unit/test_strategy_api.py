"""bot.strategy, bot.strategy.runner, bot.strategy.testing: the plugin API, safe dispatch,
halting, timers, latency, and the harness users drive their own strategies with."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

import bot.strategy
from bot.core.clock import FakeClock
from bot.core.errors import BotError, ConfigError
from bot.core.log import configure_logging, reset_logging
from bot.execution.commands import AmendOrder, CancelOrder, PlaceOrder
from bot.execution.orders import OrderState, new_order
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import Trade, TradeFrame
from bot.market.book import BookView
from bot.strategy import (
    HANDLERS,
    BookSnapshot,
    FillEvent,
    InstrumentInfo,
    InvalidIntent,
    OrderHandle,
    Params,
    PriceLevel,
    Strategy,
    StrategyError,
    TickerEvent,
    TradeEvent,
    ceil_price,
    check_price,
    check_qty,
    checked_amend,
    checked_order,
    floor_price,
    floor_qty,
    params_class_of,
)
from bot.strategy.runner import RunnerState, StrategyRunner, Timers, check_metric_name
from bot.strategy.testing import DEFAULT_INSTRUMENTS, FakeContext, StrategyHarness

D = Decimal
BTC = DEFAULT_INSTRUMENTS[0]
TICKED = Instrument(
    "XBT/EUR", "XBT", "EUR", price_precision=2, qty_precision=4, price_increment=5,
    qty_increment=10, qty_min=100, cost_min=D(5),
)  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()


# --------------------------------------------------------------------------- numbers


def test_prices_and_quantities_are_checked_against_the_instrument() -> None:
    assert check_price(TICKED, D("100.05")) == 10005
    assert check_qty(TICKED, D("0.0120")) == 120
    cases: list[tuple[Any, str, str]] = [
        (
            lambda: check_price(TICKED, D("100.07")),
            "price_tick",
            "price 100.07 is off the tick 0.05",
        ),
        (lambda: check_price(TICKED, D("100.001")), "price_precision", "more than 2 decimals"),
        (lambda: check_price(TICKED, 100.05), "price", "price must be a Decimal, got float"),
        (lambda: check_price(TICKED, D(0)), "price", "price must be positive, got 0"),
        (lambda: check_price(TICKED, D("NaN")), "price_precision", "price NaN"),
        (lambda: check_qty(TICKED, D("0.0125")), "qty_lot", "qty 0.0125 is off the lot 0.0010"),
        (lambda: check_qty(TICKED, D("0.0050")), "qty_min", "below the minimum 0.0100"),
        (lambda: check_qty(TICKED, D("-1")), "qty", "qty must be positive"),
        (lambda: check_qty(TICKED, True), "qty", "got bool"),
    ]
    for call, reason, text in cases:
        with pytest.raises(InvalidIntent) as info:
            call()
        assert info.value.reason == reason
        assert text in str(info.value)
        assert str(info.value).startswith(f"{reason}: XBT/EUR: ")
        assert isinstance(info.value, StrategyError | BotError)


def test_rounding_to_the_tick_and_the_lot() -> None:
    assert floor_price(TICKED, D("100.0999")) == D("100.05")
    assert ceil_price(TICKED, D("100.0001")) == D("100.05")
    assert ceil_price(TICKED, D("100.05")) == D("100.05")
    assert floor_qty(TICKED, D("0.01999")) == D("0.0190")
    assert floor_price(BTC, D("29974.995")) == D("29974.9")
    assert ceil_price(BTC, D("29974.901")) == D("29975.0")


def test_place_rules() -> None:
    assert checked_order(BTC, "buy", D("0.01"), D(30000)) == (1_000_000, 300_000)
    ctx = FakeContext("s", ("BTC/USD",))  # the command a context builds from it
    handle = ctx.place("BTC/USD", "buy", D("0.01"), D(30000))
    (place,) = ctx.commands
    assert isinstance(place, PlaceOrder) and place.cl_ord_id == handle.cl_ord_id
    assert (place.strategy, place.symbol, place.side, place.order_type) == (
        "s", "BTC/USD", "buy", "limit"
    )  # fmt: skip
    assert (place.qty, place.price, place.time_in_force, place.post_only) == (
        D("0.01"), D(30000), "GTC", False
    )  # fmt: skip
    q, p = checked_order(BTC, "sell", 1, order_type="market")
    assert p is None and q == BTC.qty(1)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"side": "long"}, "side must be 'buy' or 'sell'"),
        ({"price": None}, "a limit order needs a price"),
        ({"order_type": "market"}, "a market order takes no price"),
        ({"order_type": "stop"}, "order_type must be limit or market"),
        ({"time_in_force": "GTD"}, "time_in_force must be GTC or IOC"),
        ({"qty": D("0.0001"), "price": D(1)}, "cost 0.0001 is below the minimum 0.5"),
    ]
    for change, text in bad:
        args: dict[str, Any] = {"side": "buy", "qty": D("0.01"), "price": D(30000)} | change
        with pytest.raises(InvalidIntent, match=re.escape(text)):
            checked_order(BTC, **args)


def test_amend_rules() -> None:
    order = new_order(
        cl_ord_id="c1", instrument=BTC, side="buy", order_type="limit", qty=2_000_000,
        price=300_000, strategy="s", now_ns=0,
    )  # fmt: skip
    assert checked_amend(order, BTC, None, D("30001.5")) == (None, BTC.price("30001.5"))
    with pytest.raises(InvalidIntent, match="amend needs a qty or a price"):
        checked_amend(order, BTC, None, None)
    filled = dataclasses.replace(order, filled_qty=1_000_000)
    with pytest.raises(InvalidIntent, match=r"amended qty 0\.01 must exceed the filled 0\.01"):
        checked_amend(filled, BTC, D("0.01"), None)


# --------------------------------------------------------------------------- views


def test_order_handle_is_a_live_decimal_view() -> None:
    order = new_order(
        cl_ord_id="c1", instrument=BTC, side="sell", order_type="limit", qty=2_000_000,
        price=300_005, strategy="s", now_ns=0,
    )  # fmt: skip
    handle = OrderHandle(order)
    assert (handle.qty, handle.price, handle.filled, handle.state) == (
        D("0.02"),
        D("30000.5"),
        D(0),
        OrderState.PENDING_NEW,
    )
    assert handle.is_open and not handle.is_live and not handle.is_done
    from bot.execution.orders import transition

    handle.update(transition(order, OrderState.PARTIALLY_FILLED, now_ns=1, filled_qty=500_000))
    assert handle.state is OrderState.PARTIALLY_FILLED and handle.is_live
    assert (handle.filled, handle.remaining) == (D("0.005"), D("0.015"))
    other = new_order(
        cl_ord_id="c2", instrument=BTC, side="sell", order_type="limit", qty=1, price=1,
        strategy="s", now_ns=0,
    )  # fmt: skip
    with pytest.raises(BotError, match="handle c1 updated with c2"):
        handle.update(other)


def test_strategies_get_every_number_of_an_instrument_as_a_decimal() -> None:
    """``ctx.instrument`` is ``InstrumentInfo``: tick, lot and minimums in Decimal beside
    ``cost_min`` (one unit), and the rounding helpers take it as they take the daemon's."""
    info = InstrumentInfo.of(TICKED)
    assert (info.price_increment, info.qty_increment) == (D("0.05"), D("0.0010"))
    assert (info.qty_min, info.cost_min) == (D("0.0100"), D(5))
    assert (info.price_precision, info.qty_precision, info.status) == (2, 4, "online")
    numbers = (info.price_increment, info.qty_increment, info.qty_min, info.cost_min)
    assert all(type(n) is Decimal for n in numbers)
    for value in (D("100.0999"), D("100.05"), D("0.01")):
        assert floor_price(info, value) == floor_price(TICKED, value)
        assert ceil_price(info, value) == ceil_price(TICKED, value)
        assert floor_qty(info, value) == floor_qty(TICKED, value)
    ctx = FakeContext("s", ["BTC/USD"])
    got = ctx.instrument("BTC/USD")
    assert got == InstrumentInfo.of(BTC) and got.qty_min == D("0.0001")
    assert {"OrderState", "Side", "InstrumentInfo"} <= set(bot.strategy.__all__)
    assert bot.strategy.OrderState is OrderState


def test_book_snapshot_wraps_the_int_view_in_decimals() -> None:
    view = BookView(
        "BTC/USD", True, "t", 1,
        bids=((300_000, 300_000_000), (299_990, 100_000_000)),
        asks=((300_100, 100_000_000), (300_200, 50_000_000), (300_300, 1)),
    )  # fmt: skip
    book = BookSnapshot(view, InstrumentInfo.of(BTC))
    assert book.best_bid() == PriceLevel(D("30000.0"), D("3"))
    assert book.best_ask() == PriceLevel(D("30010.0"), D("1"))
    assert book.mid() == D("30005")
    assert book.microprice() == D("30007.5")  # (30000·1 + 30010·3) / 4
    assert book.spread() == D(10)
    assert book.spread_bps() == D(10) / D(30005) * 10_000
    bids, asks = book.top(2)
    assert [level.price for level in bids] == [D(30000), D(29999)]
    assert [level.price for level in asks] == [D(30010), D(30020)]
    assert len(book.asks()) == 3
    assert book.size_to_price("ask", D("30020")) == D("1.5")
    assert book.size_to_price("bid", D("29999.5")) == D(3)
    assert book.size_to_price("bid", D("30000.1")) == D(0)
    with pytest.raises(StrategyError):
        book.size_to_price("both", D(1))  # type: ignore[arg-type]
    assert not book.is_crossed() and book.valid
    empty = BookSnapshot(BookView("BTC/USD", False, "", 1, (), ()), InstrumentInfo.of(BTC))
    assert empty.mid() is None and empty.best_bid() is None and empty.spread_bps() is None


class _NoParams(Strategy[Params]):
    pass


class _MyParams(Params):
    size: Decimal


class _Mine(Strategy[_MyParams]):
    pass


class _Sub(_Mine):
    pass


class _Explicit(Strategy[Any]):
    params_class = _MyParams


def test_params_base_is_frozen_and_strict_and_classes_are_inferred() -> None:
    assert params_class_of(_Mine) is _MyParams
    assert params_class_of(_Sub) is _MyParams
    assert params_class_of(_Explicit) is _MyParams
    assert params_class_of(_NoParams) is Params
    params = _MyParams(size=D("0.1"))
    with pytest.raises(ValidationError):
        params.size = D(1)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _MyParams(size=D(1), sise=2)  # type: ignore[call-arg]
    assert HANDLERS == (
        "on_start", "on_book", "on_trade", "on_ticker", "on_order", "on_fill", "on_timer",
        "on_book_invalid", "on_book_valid", "on_params", "on_stop",
    )  # fmt: skip


# --------------------------------------------------------------------------- the runner


class Recorder(Strategy[Params]):
    """Records every handler call; raises from the handlers named in ``fail``."""

    fail: frozenset[str] = frozenset()

    def __init__(self, ctx: Any, params: Params) -> None:
        super().__init__(ctx, params)
        self.calls: list[tuple[Any, ...]] = []

    def _rec(self, *args: Any) -> None:
        self.calls.append(args)
        if args[0] in self.fail:
            raise ZeroDivisionError(f"boom in {args[0]}")

    def on_start(self) -> None:
        self._rec("on_start")

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        self._rec("on_book", symbol, book)

    def on_trade(self, symbol: str, trade: TradeEvent) -> None:
        self._rec("on_trade", symbol, trade)

    def on_ticker(self, symbol: str, ticker: TickerEvent) -> None:
        self._rec("on_ticker", symbol, ticker)

    def on_order(self, order: OrderHandle) -> None:
        self._rec("on_order", order.state)

    def on_fill(self, order: OrderHandle, fill: FillEvent) -> None:
        self._rec("on_fill", fill.price, fill.qty, fill.maker)

    def on_timer(self, name: str) -> None:
        self._rec("on_timer", name, self.ctx.monotonic())

    def on_book_invalid(self, symbol: str) -> None:
        self._rec("on_book_invalid", symbol)

    def on_book_valid(self, symbol: str) -> None:
        self._rec("on_book_valid", symbol)

    def on_params(self, params: Params) -> None:
        self._rec("on_params", params)
        super().on_params(params)

    def on_stop(self) -> None:
        self._rec("on_stop")


class BookFailer(Recorder):
    fail = frozenset({"on_book"})


def names(strategy: Recorder) -> list[str]:
    return [call[0] for call in strategy.calls]


def test_every_handler_is_dispatched_with_decimal_events() -> None:
    h = StrategyHarness(Recorder, symbols=("BTC/USD", "ETH/USD"))
    h.quote("30000", "30010", bid_qty="2")
    h.trade("30005.5", "0.25", side="sell", symbol="ETH/USD")
    h.ticker("30000", "30010", last="30004")
    h.book_invalid()
    h.book_valid()
    order = h.strategy.ctx.place("BTC/USD", "buy", D("0.01"), D("29000"))
    h.settle()
    h.fill(order, "0.004", maker=False)
    h.ctx.set_timer("tick", 1)
    h.advance(1)
    h.set_params(Params())
    h.stop()
    assert names(h.strategy) == [
        "on_start", "on_book", "on_trade", "on_ticker", "on_book_invalid", "on_book_valid",
        "on_order", "on_fill", "on_order", "on_timer", "on_params", "on_stop",
    ]  # fmt: skip
    calls = h.strategy.calls
    book = calls[1][2]
    assert calls[1][1] == "BTC/USD" and book.best_bid() == (D(30000), D(2))
    trade = calls[2][2]
    assert (trade.symbol, trade.side, trade.price, trade.qty) == (
        "ETH/USD",
        "sell",
        D("30005.5"),
        D("0.25"),
    )
    assert calls[3][2].last == D(30004)
    assert calls[6][1] is OrderState.NEW
    assert calls[7][1:] == (D(29000), D("0.004"), False)
    assert calls[8][1] is OrderState.PARTIALLY_FILLED
    assert h.ctx.position("BTC/USD") == D("0.004")
    assert h.ctx.book("BTC/USD") is not None and not h.ctx.book("BTC/USD").valid  # type: ignore[union-attr]
    assert h.runner.state is RunnerState.STOPPED


def test_events_outside_the_strategy_or_its_lifetime_are_dropped() -> None:
    h = StrategyHarness(Recorder, start=False)
    h.quote("30000", "30010")  # before start
    h.start()
    h.start()  # once only
    h.runner.book(BookView("ETH/USD", True, "", 2, ((1, 1),), ((2, 1),)))  # not its symbol
    h.runner.book_invalid("ETH/USD")
    h.stop()
    h.quote("30000", "30010")  # after stop
    h.stop()
    assert names(h.strategy) == ["on_start", "on_stop"]


def test_a_trade_frame_is_dispatched_trade_by_trade_with_its_snapshot_flag() -> None:
    h = StrategyHarness(Recorder, symbols=("BTC/USD", "ETH/USD"))
    frame = TradeFrame(
        snapshot=True,
        trades=(
            Trade("BTC/USD", "buy", 300_001, 5, "market", 7, "2024-01-01T00:00:00Z"),
            Trade("XRP/USD", "buy", 1, 1, "limit", 8, ""),  # not its symbol: dropped
            Trade("ETH/USD", "sell", 250_050, 100_000_000, "limit", 9, ""),
        ),
    )
    h.runner.trades(frame)
    trades = [call[2] for call in h.strategy.calls if call[0] == "on_trade"]
    assert trades == [
        TradeEvent(
            "BTC/USD", "buy", D("30000.1"), D("5E-8"), "market", 7, "2024-01-01T00:00:00Z", True
        ),
        TradeEvent("ETH/USD", "sell", D("2500.50"), D(1), "limit", 9, "", True),
    ]


def test_a_raising_handler_is_logged_with_its_traceback_and_counted() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    h = StrategyHarness(BookFailer, name="mm-1", max_errors=3)
    h.quote("30000", "30010")
    h.trade("30005")
    assert h.errors == 1 and not h.halted
    assert h.runner.stats["on_book"].errors == 1 and h.runner.stats["on_book"].calls == 1
    assert h.runner.stats["on_trade"].errors == 0
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    (error,) = [e for e in events if e["event"] == "strategy_handler_error"]
    assert error["strategy"] == "mm-1" and error["handler"] == "on_book"
    assert error["error"] == "ZeroDivisionError: boom in on_book"
    assert error["errors"] == 1 and error["max_errors"] == 3
    assert "Traceback (most recent call last)" in error["exception"]
    assert "in on_book" in error["exception"] and "_rec" in error["exception"]


def test_max_errors_halts_the_strategy_cancels_its_orders_and_stops_dispatch() -> None:
    h = StrategyHarness(Recorder, max_errors=2)
    ctx = h.ctx
    a = ctx.place("BTC/USD", "buy", D("0.01"), D("29000"))
    b = ctx.place("BTC/USD", "sell", D("0.01"), D("31000"))
    h.settle()
    ctx.set_timer("t", 5, repeat=True)
    h.strategy.fail = frozenset({"on_book"})
    with capture_logs() as logs:
        h.quote("30000", "30010")
        assert not h.halted
        h.quote("30000", "30011")
    assert h.halted and h.runner.halt_reason == "2 handler errors (max_errors 2)"
    assert [(type(c), c.cl_ord_id) for c in h.commands[-2:]] == [
        (CancelOrder, a.cl_ord_id), (CancelOrder, b.cl_ord_id)
    ]  # fmt: skip
    assert a.state is OrderState.CANCELED and b.state is OrderState.CANCELED
    halted = [e for e in logs if e["event"] == "strategy_halted"]
    assert halted and halted[0]["canceled"] == 2 and halted[0]["log_level"] == "error"
    calls = len(h.strategy.calls)
    h.quote("30000", "30010")
    h.trade("30000")
    assert h.advance(60) == 0
    h.stop()  # a halted strategy's on_stop is not called either
    assert len(h.strategy.calls) == calls
    assert ctx.timers.names == () and h.runner.state is RunnerState.HALTED


def test_max_errors_zero_halts_at_the_first_error_and_a_failing_cancel_is_logged() -> None:
    class BrokenCancel(FakeContext):
        def cancel_all(self, symbol: str | None = None) -> int:
            raise RuntimeError("engine down")

    clock = FakeClock()
    ctx = BrokenCancel("s", ["BTC/USD"], clock=clock)
    strategy = BookFailer(ctx, Params())
    halted: list[StrategyRunner] = []
    runner = StrategyRunner(
        strategy, timers=ctx.timers, clock=clock, max_errors=0, on_halt=halted.append
    )
    runner.start()
    with capture_logs() as logs:
        runner.book(BookView("BTC/USD", True, "", 1, ((1, 1),), ((2, 1),)))
    assert runner.halted and halted == [runner]
    assert [e["event"] for e in logs] == [
        "strategy_handler_error", "strategy_halt_cancel_failed", "strategy_halted"
    ]  # fmt: skip


def test_cancellation_and_keyboard_interrupt_are_never_swallowed() -> None:
    class Interrupted(Recorder):
        def on_book(self, symbol: str, book: BookSnapshot) -> None:
            raise KeyboardInterrupt

    class Cancelled(Recorder):
        def on_trade(self, symbol: str, trade: TradeEvent) -> None:
            raise asyncio.CancelledError

    with pytest.raises(KeyboardInterrupt):
        StrategyHarness(Interrupted).quote("1", "2")
    with pytest.raises(asyncio.CancelledError):
        StrategyHarness(Cancelled).trade("1")


def test_an_async_handler_is_an_error_not_a_silent_no_op() -> None:
    class Async(Recorder):
        async def on_book(self, symbol: str, book: BookSnapshot) -> None:  # type: ignore[override]
            raise AssertionError("never awaited")

    h = StrategyHarness(Async)
    with capture_logs() as logs:
        h.quote("1", "2")
    assert h.errors == 1
    assert logs[0]["error"] == "StrategyError: on_book is async: handlers must be plain def"


def test_handler_latency_is_recorded_on_the_injected_clock() -> None:
    class Slow(Recorder):
        def on_book(self, symbol: str, book: BookSnapshot) -> None:
            assert isinstance(self.ctx, FakeContext)
            self.ctx.clock.advance(0.25)

    clock = FakeClock()
    ctx = FakeContext("slow", ["BTC/USD"], clock=clock)
    seen: list[tuple[str, float]] = []
    runner = StrategyRunner(
        Slow(ctx, Params()),
        timers=ctx.timers,
        clock=clock,
        observe=lambda h, s: seen.append((h, s)),
    )
    runner.start()
    view = BookView("BTC/USD", True, "", 1, ((1, 1),), ((2, 1),))
    with capture_logs() as logs:
        runner.book(view)
        runner.book(view)
    stats = runner.stats["on_book"]
    assert (stats.calls, stats.errors) == (2, 0)
    assert stats.last_s == stats.max_s == pytest.approx(0.25)
    assert stats.total_s == pytest.approx(0.5)
    assert seen == [
        ("on_start", 0.0),
        ("on_book", pytest.approx(0.25)),
        ("on_book", pytest.approx(0.25)),
    ]
    assert [e["event"] for e in logs] == ["strategy_handler_slow"] * 2
    assert logs[0]["handler"] == "on_book" and logs[0]["strategy"] == "slow"


# --------------------------------------------------------------------------- timers


def test_timers_fire_on_the_fake_clock_once_or_repeatedly() -> None:
    h = StrategyHarness(Recorder)
    start = h.clock.monotonic()
    h.ctx.set_timer("once", 2.5)
    h.ctx.set_timer("every", 1, repeat=True)
    assert h.advance(0.5) == 0
    assert h.advance(3) == 4  # every@1, every@2, once@2.5, every@3
    fired = [(c[1], c[2] - start) for c in h.strategy.calls if c[0] == "on_timer"]
    assert fired == [("every", 1.0), ("every", 2.0), ("once", 2.5), ("every", 3.0)]
    assert h.ctx.cancel_timer("every") and not h.ctx.cancel_timer("every")
    assert h.advance(10) == 0
    h.ctx.set_timer("x", 5)
    h.ctx.set_timer("x", 1)  # the same name again replaces it
    assert h.advance(10) == 1


def test_a_late_repeating_timer_skips_missed_ticks_and_bad_timers_are_errors() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    timers.set("r", 1, repeat=True)
    clock.advance(10.5)
    assert timers.pop_due() == "r"
    assert timers.pop_due() is None  # no burst of the nine missed ticks
    assert timers.next_due() == pytest.approx(clock.monotonic() + 1)
    for name, delay, repeat in [
        ("", 1, False),
        ("t", -1, False),
        ("t", 0, True),
        ("t", float("inf"), False),
        ("t", "1", False),
    ]:
        with pytest.raises(StrategyError):
            timers.set(name, delay, repeat)  # type: ignore[arg-type]
    timers.set("zero", 0)
    assert timers.pop_due() == "zero"


async def test_run_timers_fires_on_time_and_wakes_for_new_timers() -> None:
    clock = FakeClock()
    ctx = FakeContext("s", ["BTC/USD"], clock=clock)
    strategy = Recorder(ctx, Params())
    runner = StrategyRunner(strategy, timers=ctx.timers, clock=clock)

    async def settle() -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    task = asyncio.create_task(runner.run_timers())
    await settle()
    runner.start()
    ctx.set_timer("late", 10)
    await settle()
    ctx.set_timer("soon", 1)  # shorter than the driver's current sleep: it must wake
    await settle()
    clock.advance(1)
    await settle()
    assert [c[1] for c in strategy.calls if c[0] == "on_timer"] == ["soon"]
    clock.advance(9)
    await settle()
    assert [c[1] for c in strategy.calls if c[0] == "on_timer"] == ["soon", "late"]
    runner.stop()
    await asyncio.wait_for(task, 1)


# --------------------------------------------------------------------------- the harness


def test_fake_context_rules() -> None:
    h = StrategyHarness(Recorder, auto_settle=False)
    ctx = h.ctx
    with pytest.raises(InvalidIntent, match="'ETH/USD' is not one of this strategy's"):
        ctx.place("ETH/USD", "buy", D(1), D(1))
    order = ctx.place("BTC/USD", "buy", D("0.01"), D(30000))
    assert order.state is OrderState.PENDING_NEW and order.cl_ord_id in ctx.handles
    assert not ctx.amend(order, price=D(30001))  # not acknowledged yet
    h.ack(order)
    assert ctx.amend(order, price=D(30001)) and not ctx.amend(order, price=D(30002))
    assert order.pending and not order.is_live
    h.confirm_amend(order)
    assert order.price == D(30001) and order.is_live
    assert ctx.cancel(order) and not ctx.cancel(order.cl_ord_id)
    h.settle()
    assert order.state is OrderState.CANCELED and not ctx.cancel(order)
    assert ctx.open_orders() == () and ctx.order(order.cl_ord_id) is order
    with pytest.raises(StrategyError, match="not one of this strategy's orders"):
        ctx.cancel("nope")
    with pytest.raises(StrategyError, match="no instrument for 'DOGE/USD'"):
        ctx.instrument("DOGE/USD")
    ctx.metric("spread_bps", D(12), symbol="BTC/USD")
    ctx.count("quotes")
    ctx.count("quotes", 2)
    assert ctx.gauges == {("spread_bps", "BTC/USD"): D(12)}
    assert ctx.counters == {("quotes", None): 3}
    for bad in ("", "Quotes", "9lives", "a-b"):
        with pytest.raises(StrategyError, match="metric name"):
            check_metric_name(bad)
    with pytest.raises(StrategyError, match="n must be an int >= 0"):
        ctx.count("quotes", -1)
    assert [type(i) for i in h.commands] == [PlaceOrder, AmendOrder, CancelOrder]


def test_rejections_expiry_and_fills_move_orders_positions_and_balances() -> None:
    h = StrategyHarness(Recorder, balances={"USD": 1000, "BTC": "0.5"}, auto_settle=False)
    ctx = h.ctx
    buy = ctx.place("BTC/USD", "buy", D("0.02"), D(30000))
    h.reject(buy, "EOrder:Insufficient funds")
    assert buy.state is OrderState.REJECTED and buy.reason == "EOrder:Insufficient funds"
    sell = ctx.place("BTC/USD", "sell", D("0.02"), D(31000), time_in_force="IOC")
    fill = h.fill(sell, "0.005", fee="0.1")
    assert (fill.qty, fill.price, fill.cost) == (500_000, 310_000, D("155.000000000"))
    assert sell.state is OrderState.PARTIALLY_FILLED and sell.avg_price == D(31000)
    h.expire(sell)
    assert sell.state is OrderState.EXPIRED and sell.is_done
    assert ctx.position("BTC/USD") == D("-0.005")
    assert ctx.balances() == {"USD": D("1154.9"), "BTC": D("0.495")}
    with pytest.raises(StrategyError, match="cannot fill"):
        h.fill(sell)


def test_harness_params_are_validated_like_the_config() -> None:
    with pytest.raises(ConfigError) as info:
        StrategyHarness(_Mine, {"sise": 1}, name="mm")
    assert info.value.problems == [
        "mm.params.size: missing required key",
        "mm.params.sise: unknown key (did you mean 'size'?)",
    ]
    h = StrategyHarness(_Mine, {"size": "0.5"})
    assert h.strategy.params == _MyParams(size=D("0.5"))
    h.set_params({"size": "0.7"})
    assert h.strategy.params.size == D("0.7")


def test_two_strategies_log_under_their_own_names() -> None:
    one = StrategyHarness(BookFailer, name="alpha")
    two = StrategyHarness(BookFailer, name="beta")
    with capture_logs() as logs:
        one.quote("1", "2")
        two.quote("1", "2")
    assert [(e["event"], e["strategy"]) for e in logs] == [
        ("strategy_handler_error", "alpha"), ("strategy_handler_error", "beta")
    ]  # fmt: skip
