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

**Trade-driven symbols** (``trade_only``: data with trades and no book, Kraken's trade
CSV): the strategies see the trades and no book. The matching engine's book holds what
the prints prove was there: after a buy print at P of Q, an ask of Q at P (after a sell
print, a bid), the other side's level dropped when it would cross it; so a taker meets the
last traded price on its side, a resting order at that price queues behind the print's
size, and prints through it fill it, by the same fill rule. Positions and the pre-trade
stage's mid are marked at the last print (``last_prices``).

Marks (the mid of each book, at most one per ``mark_every_ns``) are kept for the report.

The mirror is kept only while it can matter: while the account has an order resting in
the symbol or a write on its way to the matching engine (``BacktestVenue`` calls
``sync`` as a write arrives). Otherwise frames only update the recorded books, and the
next write first brings the mirror to the current book in one step: the same state the
mirror would have reached frame by frame (it follows the recorded levels, never the
account's), so this changes no fill, only the cost of frames when nothing is working.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
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
        trade_only: frozenset[str] = frozenset(),
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
        self.trade_only = trade_only
        self.last_prices: dict[str, Decimal] = {}
        self._tops: dict[str, list[tuple[int, int] | None]] = {}  # symbol -> [bid, ask]
        self._mirrored: set[str] = set()  # symbols whose mirror follows every frame
        self._route: Callable[[MarketEvent], None] | None = None  # route_market, bound
        self._push = self.frames.push

    def attach(self, desk: Desk, gate: ReadinessGate) -> None:
        """The desk and gate the market's events reach (built after the market)."""
        self.desk, self.gate = desk, gate
        self._route = functools.partial(route_market, desk, gate)

    def books_valid(self, symbols: Sequence[str]) -> bool:
        """Every symbol's book is valid (the readiness gate's ``books`` check); a
        trade-driven symbol has none to wait for."""
        frames, trade_only = self.frames, self.trade_only
        return all(s in trade_only or frames.is_valid(s) for s in symbols)

    def mids(self) -> dict[str, Decimal]:
        """The last print of each trade-driven symbol (the pre-trade stage's mid there)."""
        return dict(self.last_prices)

    def push(self, item: Item) -> None:
        if type(item) is Frame:
            self.frame_count += 1
            self._push(item.raw, item.at_ns)
        elif type(item) is Gap:
            self.gaps += 1
            self.frames.invalidate(item.symbols, f"gap: {item.reason}")

    # -- events --------------------------------------------------------------------------

    def _on_event(self, event: MarketEvent) -> None:
        kind = type(event)
        if kind is BookUpdated:
            updated: BookUpdated = event  # type: ignore[assignment]
            book, symbol = updated.book, updated.symbol
            if symbol in self._mirrored:
                self._apply(self.live.on_book(symbol, book.bids(self.depth), book.asks(self.depth)))
                if not self._working(symbol):
                    self._mirrored.discard(symbol)
            now = self.clock.time_ns()
            if now >= self._next_mark.get(symbol, 0):
                self._mark(symbol, now, book.mid())
        elif kind is TradeFrame:
            frame: TradeFrame = event  # type: ignore[assignment]
            if not frame.snapshot:
                prints = [Print(t.symbol, t.side, t.price, t.qty, t.ord_type) for t in frame.trades]
                self._apply(self.live.on_prints(prints))
                for p in prints:
                    if p.symbol in self.trade_only:
                        self._proven(p)
        elif kind is BookInvalid:
            invalid: BookInvalid = event  # type: ignore[assignment]
            self._apply(self.live.on_invalid(invalid.symbol, clear=True))
        route = self._route
        if route is not None:
            route(event)

    def sync(self, symbol: str) -> None:
        """A write reaches the matching engine: the mirror of ``symbol`` is brought to the
        current recorded book first, and follows every frame while it matters."""
        if symbol in self._mirrored or symbol in self.trade_only:
            return
        self._mirrored.add(symbol)
        book = self.frames.books.get(symbol)
        if book is not None and self.frames.is_valid(symbol):
            self._apply(self.live.on_book(symbol, book.bids(self.depth), book.asks(self.depth)))

    def _working(self, symbol: str) -> bool:
        return bool(self.venue.in_flight.get(symbol)) or bool(
            self.venue.exchange.resting_orders(symbol)
        )

    def _apply(self, actions: list[MarketAction]) -> None:
        if actions:
            venue = self.venue
            venue.publish(venue.exchange.apply_market(actions, self.clock.time_ns()))

    def _proven(self, p: Print) -> None:
        """A print of a trade-driven symbol: the level it proves, marks at its price."""
        top = self._tops.setdefault(p.symbol, [None, None])
        if p.side == "buy":  # an ask was there; a bid at or above it could not have been
            top[1] = (p.price, p.qty)
            if top[0] is not None and top[0][0] >= p.price:
                top[0] = None
        else:
            top[0] = (p.price, p.qty)
            if top[1] is not None and top[1][0] <= p.price:
                top[1] = None
        bids = [top[0]] if top[0] is not None else []
        asks = [top[1]] if top[1] is not None else []
        self._apply(self.live.on_book(p.symbol, bids, asks))
        inst = self.frames.instruments[p.symbol]
        price = inst.price_decimal(p.price)
        self.last_prices[p.symbol] = price
        if self.desk is not None:
            self.desk.positions.mark(p.symbol, price)
        now = self.clock.time_ns()
        if now >= self._next_mark.get(p.symbol, 0):
            self._mark(p.symbol, now, price)

    def _mark(self, symbol: str, now: int, mid: Decimal | None) -> None:
        if mid is None:
            return
        self._next_mark[symbol] = now + self._mark_every
        self.marks.setdefault(symbol, []).append(Mark(now, mid))
