"""Running one strategy: events in, handlers called safely, errors counted, timers fired.

This module owns ``StrategyRunner`` (one per configured strategy), the ``Timers`` table a
``Context`` implementation delegates ``set_timer``/``cancel_timer`` to, and the conversions
of the daemon's events (scaled ints) into the strategy's (``Decimal``).

The runner calls each handler directly, one at a time, and times it on the injected clock
(``stats``, and ``observe(handler, seconds)`` for a metrics histogram). A handler that
raises is logged with its traceback and counted; at ``max_errors`` (0 or 1: the first) the
strategy is halted: its timers are dropped, its orders canceled through
``ctx.cancel_all()``, and no handler of it runs again. Other strategies and the daemon go
on. Only ``Exception`` is caught: cancellation and ``KeyboardInterrupt`` pass through.

It is a pure core apart from ``run_timers``, the thin asyncio driver that fires timers on
time. It never sends orders itself except that one ``cancel_all`` on halt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, TypeVar

from bot.core.clock import Clock
from bot.core.frozen import maker
from bot.execution.orders import Fill
from bot.kraken.instruments import from_scaled
from bot.kraken.protocol import Ticker, Trade, TradeFrame
from bot.market.book import BookView, c_slot_maker
from bot.strategy import (
    HANDLERS,
    BookSnapshot,
    FillEvent,
    InstrumentInfo,
    OrderHandle,
    Params,
    Strategy,
    StrategyError,
    TickerEvent,
    TradeEvent,
)

__all__ = [
    "HandlerStats",
    "RunnerState",
    "StrategyRunner",
    "Timers",
    "check_metric_name",
    "fill_event",
    "ticker_event",
    "trade_event",
]

T = TypeVar("T")

# A handler slower than this is logged: handlers share the event loop with the feeds.
SLOW_HANDLER_S: Final = 0.05
_METRIC_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _fast_maker(cls: type[T]) -> Callable[..., T]:
    """``maker(cls)`` (with its checks), in C when the book's C core is built."""
    made = maker(cls)
    if c_slot_maker is None:
        return made
    return c_slot_maker(cls, tuple(f.name for f in dataclasses.fields(cls)))  # type: ignore[arg-type]


# BookSnapshot(...) for less, once per book message: no Python frame with the C core.
_snapshot: Final = _fast_maker(BookSnapshot)


def check_metric_name(name: str) -> str:
    """A custom metric name: lowercase letters, digits and ``_``, not starting with a digit."""
    if not isinstance(name, str) or not name or not set(name) <= _METRIC_CHARS or name[0].isdigit():
        raise StrategyError(f"metric name {name!r}: use lowercase letters, digits and '_'")
    return name


# --------------------------------------------------------------------------- events


def trade_event(trade: Trade, instrument: InstrumentInfo, snapshot: bool = False) -> TradeEvent:
    pp, qp = instrument.price_precision, instrument.qty_precision
    return TradeEvent(
        trade.symbol,
        trade.side,
        from_scaled(trade.price, pp),
        from_scaled(trade.qty, qp),
        trade.ord_type,
        trade.trade_id,
        trade.timestamp,
        snapshot,
    )


def ticker_event(t: Ticker, instrument: InstrumentInfo) -> TickerEvent:
    pp, qp = instrument.price_precision, instrument.qty_precision

    def price(n: int) -> Decimal:
        return from_scaled(n, pp)

    def qty(n: int) -> Decimal:
        return from_scaled(n, qp)

    def opt_price(n: int | None) -> Decimal | None:  # last/low/high are optional (Kraken)
        return None if n is None else price(n)

    return TickerEvent(
        t.symbol,
        price(t.bid),
        qty(t.bid_qty),
        price(t.ask),
        qty(t.ask_qty),
        opt_price(t.last),
        qty(t.volume),
        t.vwap,
        opt_price(t.low),
        opt_price(t.high),
        t.change,
        t.change_pct,
        t.timestamp,
    )


def fill_event(fill: Fill) -> FillEvent:
    return FillEvent(
        fill.exec_id,
        fill.cl_ord_id,
        fill.symbol,
        fill.side,
        from_scaled(fill.price, fill.price_precision),
        from_scaled(fill.qty, fill.qty_precision),
        fill.cost,
        fill.fee,
        fill.fee_asset,
        fill.liquidity == "m",
        fill.ts_ns,
    )


# --------------------------------------------------------------------------- timers


class Timers:
    """One strategy's named timers on a monotonic clock (the context's ``set_timer``)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._due: dict[str, tuple[float, int, float | None]] = {}  # name -> due, seq, every
        self._seq = itertools.count()
        self.on_change: Callable[[], None] | None = None
        """Called when a timer is set (the driver's wake-up)."""

    def set(self, name: str, delay_s: float | Decimal, repeat: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise StrategyError(f"timer name must be a non-empty string, got {name!r}")
        ok = isinstance(delay_s, int | float | Decimal) and not isinstance(delay_s, bool)
        delay = float(delay_s) if ok else math.nan
        if not math.isfinite(delay) or delay < 0 or (repeat and delay == 0):
            least = "positive" if repeat else "zero or more"
            raise StrategyError(f"timer {name!r}: delay_s must be {least} seconds, got {delay_s!r}")
        every = delay if repeat else None
        self._due[name] = (self._clock.monotonic() + delay, next(self._seq), every)
        if self.on_change is not None:
            self.on_change()

    def cancel(self, name: str) -> bool:
        return self._due.pop(name, None) is not None

    def clear(self) -> None:
        self._due.clear()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._due)

    def next_due(self) -> float | None:
        """The monotonic time of the earliest timer, or None."""
        return min((due for due, _, _ in self._due.values()), default=None)

    def pop_due(self) -> str | None:
        """The earliest timer due now (rescheduled if it repeats), or None.

        A repeating timer that fell behind skips the ticks it missed rather than bursting.
        """
        now = self._clock.monotonic()
        first = min(self._due.items(), key=lambda item: item[1][:2], default=None)
        if first is None or first[1][0] > now:
            return None
        name, (due, _, every) = first
        if every is None:
            del self._due[name]
        else:
            nxt = due + every
            self._due[name] = (nxt if nxt > now else now + every, next(self._seq), every)
        return name


# --------------------------------------------------------------------------- runner


class RunnerState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"
    HALTED = "halted"


@dataclass(slots=True)
class HandlerStats:
    """Calls, errors and latency (seconds on the runner's clock) of one handler."""

    calls: int = 0
    errors: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    last_s: float = 0.0


_RUNNING: Final = RunnerState.RUNNING


class StrategyRunner:
    """Dispatches the daemon's events to one strategy; see the module docstring.

    Events for symbols the strategy does not trade, and every event before ``start`` or
    after ``stop``/halt, are dropped. ``timers`` must be the table the strategy's context
    delegates to.
    """

    def __init__(
        self,
        strategy: Strategy[Any],
        *,
        timers: Timers,
        clock: Clock,
        max_errors: int = 10,
        observe: Callable[[str, float], None] | None = None,
        on_halt: Callable[[StrategyRunner], None] | None = None,
        slow_handler_s: float = SLOW_HANDLER_S,
    ) -> None:
        self.strategy = strategy
        self.ctx = strategy.ctx
        self.name = self.ctx.name
        self.max_errors = max_errors
        self.state = RunnerState.NEW
        self.errors = 0
        self.halt_reason = ""
        self.stats: dict[str, HandlerStats] = {name: HandlerStats() for name in HANDLERS}
        self._symbols = frozenset(self.ctx.symbols)
        self._log = self.ctx.log
        self._clock = clock
        self._timers = timers
        self._observe = observe
        self._on_halt = on_halt
        self._slow_s = slow_handler_s
        self._wake: asyncio.Future[None] | None = None
        timers.on_change = self._wake_up

    @property
    def running(self) -> bool:
        return self.state is RunnerState.RUNNING

    @property
    def halted(self) -> bool:
        return self.state is RunnerState.HALTED

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start dispatching and call ``on_start`` (once; later calls do nothing)."""
        if self.state is RunnerState.NEW:
            self.state = RunnerState.RUNNING
            self._log.info("strategy_started", symbols=sorted(self._symbols))
            self._wake_up()
            self._call("on_start", self.strategy.on_start)

    def stop(self) -> None:
        """Call ``on_stop`` and stop dispatching; canceling orders is the daemon's choice."""
        if self.state is RunnerState.RUNNING:
            self._call("on_stop", self.strategy.on_stop)
        if self.state in (RunnerState.NEW, RunnerState.RUNNING):
            self.state = RunnerState.STOPPED
            self._timers.clear()
            self._log.info("strategy_stopped", errors=self.errors)
            self._wake_up()

    def halt(self, reason: str) -> None:
        """Stop the strategy for good and cancel its orders (``ctx.cancel_all()``)."""
        if self.state in (RunnerState.STOPPED, RunnerState.HALTED):
            return
        self.state = RunnerState.HALTED
        self.halt_reason = reason
        self._timers.clear()
        canceled: int | None = None
        try:
            canceled = self.ctx.cancel_all()
        except Exception:
            self._log.exception("strategy_halt_cancel_failed")
        self._log.error("strategy_halted", reason=reason, errors=self.errors, canceled=canceled)
        self._wake_up()
        if self._on_halt is not None:
            self._on_halt(self)

    # -- events -----------------------------------------------------------------------------

    def book(self, view: BookView) -> None:
        """A book message was applied: ``view`` is the book's ``view()`` after it.

        The hot path (once per book message, before the strategy decides): ``running`` and
        ``_call`` are written out here, so no call of the runner's own stands between this
        method and the handler; what happens is exactly ``_call("on_book", ...)``'s
        (``tests/unit/test_runner_book.py`` holds the two equal)."""
        symbol = view.symbol
        if self.state is not _RUNNING or symbol not in self._symbols:
            return
        snapshot = _snapshot(view, self.ctx.instrument(symbol))
        on_book = self.strategy.on_book
        clock = self._clock
        start = clock.monotonic()
        try:
            result: object = on_book(symbol, snapshot)  # None, unless it is async
        except Exception as exc:
            self._timed("on_book", clock.monotonic() - start)
            self._failed("on_book", exc)
            return
        self._timed("on_book", clock.monotonic() - start)
        if result is not None:
            self._returned("on_book", result)

    def book_invalid(self, symbol: str) -> None:
        if self.running and symbol in self._symbols:
            self._call("on_book_invalid", self.strategy.on_book_invalid, symbol)

    def book_valid(self, symbol: str) -> None:
        if self.running and symbol in self._symbols:
            self._call("on_book_valid", self.strategy.on_book_valid, symbol)

    def trade(self, trade: Trade, snapshot: bool = False) -> None:
        if self.running and trade.symbol in self._symbols:
            event = trade_event(trade, self.ctx.instrument(trade.symbol), snapshot)
            self._call("on_trade", self.strategy.on_trade, trade.symbol, event)

    def trades(self, frame: TradeFrame) -> None:
        for trade in frame.trades:
            self.trade(trade, frame.snapshot)

    def ticker(self, ticker: Ticker) -> None:
        if self.running and ticker.symbol in self._symbols:
            event = ticker_event(ticker, self.ctx.instrument(ticker.symbol))
            self._call("on_ticker", self.strategy.on_ticker, ticker.symbol, event)

    def order(self, handle: OrderHandle) -> None:
        """One of the strategy's orders changed state (its handle is already updated)."""
        if self.running:
            self._call("on_order", self.strategy.on_order, handle)

    def fill(self, handle: OrderHandle, fill: Fill) -> None:
        """One of the strategy's orders traded (its handle is already updated)."""
        if self.running:
            self._call("on_fill", self.strategy.on_fill, handle, fill_event(fill))

    def update_params(self, params: Params) -> None:
        """New validated params (a config reload): ``on_params``."""
        if self.running:
            self._call("on_params", self.strategy.on_params, params)

    def fire_timers(self) -> int:
        """Call ``on_timer`` for every timer due on the clock now; returns how many fired."""
        fired = 0
        while self.running:
            name = self._timers.pop_due()
            if name is None:
                break
            fired += 1
            self._call("on_timer", self.strategy.on_timer, name)
        return fired

    # -- the safe call ------------------------------------------------------------------

    def _call(self, handler: str, fn: Callable[..., object], *args: object) -> None:
        clock = self._clock
        start = clock.monotonic()
        try:
            result = fn(*args)
        except Exception as exc:
            self._timed(handler, clock.monotonic() - start)
            self._failed(handler, exc)
            return
        self._timed(handler, clock.monotonic() - start)
        if result is not None:
            self._returned(handler, result)

    def _returned(self, handler: str, result: object) -> None:
        """A handler returned something: an awaitable is an error (an async handler)."""
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: say so once, without the runtime warning
            self._failed(handler, StrategyError(f"{handler} is async: handlers must be plain def"))

    def _timed(self, handler: str, seconds: float) -> None:
        stats = self.stats[handler]
        stats.calls += 1
        stats.total_s += seconds
        stats.last_s = seconds
        if seconds > stats.max_s:  # noqa: PLR1730 (max() costs a call, per handler call)
            stats.max_s = seconds
        if self._observe is not None:
            self._observe(handler, seconds)
        if seconds > self._slow_s:
            self._log.warning("strategy_handler_slow", handler=handler, seconds=round(seconds, 6))

    def _failed(self, handler: str, exc: BaseException) -> None:
        self.errors += 1
        self.stats[handler].errors += 1
        self._log.error(
            "strategy_handler_error",
            handler=handler,
            error=f"{type(exc).__name__}: {exc}",
            errors=self.errors,
            max_errors=self.max_errors,
            exc_info=exc,
        )
        if self.errors >= max(self.max_errors, 1):
            self.halt(f"{self.errors} handler errors (max_errors {self.max_errors})")

    # -- the asyncio driver ---------------------------------------------------------------

    def _wake_up(self) -> None:
        if self._wake is not None:
            _resolve(self._wake)

    async def run_timers(self) -> None:
        """Fire timers on time until the runner stops or halts (run it in a TaskGroup)."""
        loop = asyncio.get_running_loop()
        while self.state in (RunnerState.NEW, RunnerState.RUNNING):
            self.fire_timers()
            wake = self._wake = loop.create_future()
            due = self._timers.next_due() if self.running else None
            sleeper: asyncio.Task[None] | None = None
            if due is not None:
                delay = max(due - self._clock.monotonic(), 0.0)
                sleeper = loop.create_task(self._clock.sleep(delay))
                sleeper.add_done_callback(functools.partial(_resolve, wake))
            try:
                await wake
            finally:
                self._wake = None
                if sleeper is not None:
                    sleeper.cancel()


def _resolve(future: asyncio.Future[None], *_: object) -> None:
    if not future.done():
        future.set_result(None)
