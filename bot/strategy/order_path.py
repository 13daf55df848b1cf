"""The order path, wired once for every process that trades: the daemon and the backtest.

``build_order_path`` makes the desk (risk gate, positions, marks, router) and the execution
engine on a ``Venue`` exactly as ``krakenbot run`` trades: the engine's pre-trade stage
(readiness, risk, rate room, the exchange's state), the spawner of its commands' tasks and
its callbacks are the desk's. ``route_market`` hands one market event to the desk's marks
and strategy runners, as the daemon's feed callback does, then runs the garbage collection
that is due, after the orders' writes (``bot.core.gc_ticks``, when the daemon installed
it). The daemon (``bot.service.daemon``) and the backtester (``bot.backtest``) both call these, so a
backtest's orders take the very path a live order takes; neither forks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from bot.config import Config
from bot.core import gc_ticks
from bot.core.clock import Clock
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.ids import IdBlocks
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.execution.venue import Venue
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import Ticker, TradeFrame
from bot.market.book import Book
from bot.market.feed import BookInvalid, BookUpdated, BookValid
from bot.store import Store
from bot.strategy.desk import Desk
from bot.strategy.router import DeskMetrics

__all__ = ["build_order_path", "route_market"]


def build_order_path(
    config: Config,
    clock: Clock,
    gate: ReadinessGate,
    *,
    store: Store,
    venue: Venue,
    instruments: InstrumentTable,
    books: Callable[[], Mapping[str, Book]],
    exchange_status: Callable[[], str | None],
    metrics: DeskMetrics | None = None,
    engine_config: EngineConfig | None = None,
    ids: IdBlocks | None = None,
    extra_mids: Callable[[], Mapping[str, Decimal]] | None = None,
    risk_gate: Callable[[PositionBook], RiskGate] | None = None,
) -> tuple[Desk, ExecutionEngine]:
    """The desk and the engine, wired once: nothing is assigned to either afterwards.
    ``books`` and ``exchange_status`` are read when asked (a feed may be built later).
    ``extra_mids``: mids of symbols with no book (a trade-driven backtest's last prints).
    ``risk_gate``: the pre-trade risk gate on the desk's positions (default: the config's
    ``RiskGate``; a venue may add its own limits, as Kraken Futures' daemon does)."""
    positions = PositionBook(clock)
    if risk_gate is None:
        risk = RiskGate.from_config(config, clock, positions)
    else:
        risk = risk_gate(positions)
    desk = Desk(
        risk=risk, positions=positions, instruments=instruments, books=books, clock=clock,
        metrics=metrics,
    )  # fmt: skip
    mids: Callable[[], Mapping[str, Decimal]] = desk.marks.live  # one book read per command
    if extra_mids is not None:
        book_mids, more = desk.marks.mids, extra_mids
        mids = lambda: {**more(), **book_mids()}  # noqa: E731
    pretrade = PreTrade(
        gate, risk=risk, mids=mids,
        room=RateRoom.of(venue, clock),  # the counter read directly where the venue can
        exchange_status=exchange_status,  # orders the exchange's state refuses
        on_transitions=desk.router.apply_transitions,
    )  # fmt: skip
    engine = ExecutionEngine(
        venue, store, instruments, clock, readiness=gate, pretrade=pretrade,
        spawn=desk.tasks.spawn, on_order=desk.router.on_order,
        on_fill=desk.router.on_fill, on_refused=desk.router.on_refused, config=engine_config,
        ids=ids,
    )  # fmt: skip
    return desk, engine


def route_market(desk: Desk, gate: ReadinessGate, event: object) -> None:
    """One market event to the desk's marks and every runner (the feed's callback); then,
    the orders it caused written, the garbage collection due (``bot.core.gc_ticks``)."""
    if type(event) is BookUpdated:  # the hot path, written out: _route's first case
        book = event.book
        desk.marks.mark(event.symbol, book)
        view = book.view()
        for runner in desk.runners.values():
            runner.book(view)
    else:
        _route(desk, gate, event)
    gc_ticks.after_tick()


def _route(desk: Desk, gate: ReadinessGate, event: object) -> None:
    runners = desk.runners.values()
    if isinstance(event, BookUpdated):
        desk.marks.mark(event.symbol, event.book)
        view = event.book.view()
        for runner in runners:
            runner.book(view)
    elif isinstance(event, TradeFrame):
        for runner in runners:
            runner.trades(event)
    elif isinstance(event, Ticker):
        for runner in runners:
            runner.ticker(event)
    elif isinstance(event, BookInvalid):
        gate.notify()
        for runner in runners:
            runner.book_invalid(event.symbol)
    elif isinstance(event, BookValid):
        gate.notify()
        for runner in runners:
            runner.book_valid(event.symbol)
