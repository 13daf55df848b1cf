"""The recorded market, replayed into a backtest: books, the matching engine and strategies.

``BacktestMarket.push(item)`` takes one data item (``bot.backtest.data``) at the clock's
time. A frame goes through ``bot.market.frames.MarketFrames`` (the live feed's own path:
books verified by checksum, gaps, resyncs), and each of its events then, in order:

1. moves the simulated exchange (``bot.sim.live_source.LiveMarket``, the paper-on-live
   fill rule: the mirror follows each verified book; prints fill resting orders through
   their price or once the queue ahead is used up; cancels move the queue up pro rata;
   taking orders walk the recorded levels), whose fills of the account's orders reach the
   engine after the venue's latency (``BacktestVenue.publish``);
2. reaches the desk's marks and the strategies (``bot.strategy.order_path.route_market``,
   the daemon's feed callback).

A gap marker invalidates the books it names as a lost connection does live: the mirror is
emptied (nothing trades on stale prices), the strategies see ``book_invalid``, the
readiness gate closes and orders are refused until the next snapshot.

Marks (the mid of each book, at most one per ``mark_every_ns``) are kept for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from bot.backtest.clock import SimClock
from bot.backtest.data import Frame, Gap, Item
from bot.backtest.venue import BacktestVenue
from bot.execution.readiness import ReadinessGate
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import TradeFrame
from bot.market.frames import BookInvalid, BookUpdated, MarketEvent, MarketFrames
from bot.research.record import Mark
from bot.sim.live_source import LiveMarket, Print
from bot.sim.market_data import MarketAction
from bot.strategy.desk import Desk
from bot.strategy.order_path import route_market

__all__ = ["BacktestMarket"]

MARK_EVERY_NS: Final = 1_000_000_000


class BacktestMarket:
    """See the module docstring."""

    def __init__(
        self,
        instruments: InstrumentTable,
        live: LiveMarket,
        venue: BacktestVenue,
        clock: SimClock,
        *,
        depth: int,
        mark_every_ns: int = MARK_EVERY_NS,
    ) -> None:
        self.live, self.venue, self.clock, self.depth = live, venue, clock, depth
        self.frames = MarketFrames(instruments, self._on_event, depth=depth, auto_books=True)
        self.desk: Desk | None = None
        self.gate: ReadinessGate | None = None
        self.marks: dict[str, list[Mark]] = {}
        self.gaps = 0
        self.frame_count = 0
        self._mark_every = mark_every_ns
        self._next_mark: dict[str, int] = {}

    def attach(self, desk: Desk, gate: ReadinessGate) -> None:
        """The desk and gate the market's events reach (built after the market)."""
        self.desk, self.gate = desk, gate

    def books_valid(self, symbols: Sequence[str]) -> bool:
        """Every symbol's book is valid (the readiness gate's ``books`` check)."""
        frames = self.frames
        return all(frames.is_valid(s) for s in symbols)

    def push(self, item: Item) -> None:
        if type(item) is Frame:
            self.frame_count += 1
            self.frames.push(item.raw, item.at_ns)
        elif type(item) is Gap:
            self.gaps += 1
            self.frames.invalidate(item.symbols, f"gap: {item.reason}")

    # -- events --------------------------------------------------------------------------

    def _on_event(self, event: MarketEvent) -> None:
        kind = type(event)
        if kind is BookUpdated:
            updated: BookUpdated = event  # type: ignore[assignment]
            book, symbol = updated.book, updated.symbol
            self._apply(self.live.on_book(symbol, book.bids(self.depth), book.asks(self.depth)))
            now = self.clock.time_ns()
            if now >= self._next_mark.get(symbol, 0):
                self._mark(symbol, now, book.mid())
        elif kind is TradeFrame:
            frame: TradeFrame = event  # type: ignore[assignment]
            if not frame.snapshot:
                prints = [Print(t.symbol, t.side, t.price, t.qty, t.ord_type) for t in frame.trades]
                self._apply(self.live.on_prints(prints))
        elif kind is BookInvalid:
            invalid: BookInvalid = event  # type: ignore[assignment]
            self._apply(self.live.on_invalid(invalid.symbol, clear=True))
        if self.desk is not None and self.gate is not None:
            route_market(self.desk, self.gate, event)

    def _apply(self, actions: list[MarketAction]) -> None:
        if actions:
            venue = self.venue
            venue.publish(venue.exchange.apply_market(actions, self.clock.time_ns()))

    def _mark(self, symbol: str, now: int, mid: Decimal | None) -> None:
        if mid is None:
            return
        self._next_mark[symbol] = now + self._mark_every
        self.marks.setdefault(symbol, []).append(Mark(now, mid))
