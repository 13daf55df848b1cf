"""The Kraken Futures public feed: WS v1 ``book`` and ``trade`` into the strategies' books.

``FuturesMarketFeed(url, contracts, sink).run()`` keeps one connection to ``/ws/v1`` on the
shared driver (``bot.net.ws.ReconnectingSocket``) and subscribes ``book`` and ``trade``
for the deployment's contracts (and ``heartbeat``, for liveness). Strategies read the
same ``Book`` (``bot.market.book``) and receive the same events (``BookUpdated``,
``BookInvalid``, ``BookValid``, ``TradeFrame``) as on spot, so a strategy runs on a
perpetual unchanged.

The truth is ``bot.futures.book.FuturesBook`` (Futures sends no checksum: a sequence gap
or a crossed book is the only sign of a wrong book). After each frame the top ``depth``
levels are copied into the strategies' ``Book`` as a snapshot: its CRC is computed here
from the copied levels, so the spot book's check verifies the copy and nothing more (it
cannot stand for a checksum Kraken did not send). A ``Resync`` from the keeper marks the
book invalid (``BookInvalid``, reason ``sequence gap`` or ``crossed book``; strategies
stop quoting on it) and asks for a fresh snapshot by unsubscribing and subscribing the
product's ``book`` again; the snapshot makes it valid (``BookValid``). A lost connection
invalidates every book until the new snapshots arrive. Events:
``futures_book_resync`` (symbol, reason, expected, got).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from bot.core.backoff import Backoff
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, ProtocolError
from bot.core.log import get_logger
from bot.futures import ws_protocol as wsp
from bot.futures.book import FuturesBook, Resync
from bot.futures.instruments import FuturesInstrument
from bot.futures.times import rfc3339_ms
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import BookFrame, Trade, TradeFrame
from bot.market.book import Book
from bot.market.frames import BookInvalid, BookUpdated, BookValid, MarketSink
from bot.net.ws import ReconnectingSocket, Session, SocketStats

__all__ = ["FuturesMarketFeed", "FuturesMarketStats"]

DEPTH: Final = 10
_REASONS: Final = {"gap": "sequence gap", "crossed": "crossed book"}
log = get_logger(component="futures_feed")


@dataclass
class FuturesMarketStats(SocketStats):
    """The driver's counters and the books' resyncs."""

    resyncs: int = 0


class FuturesMarketFeed:
    """See the module docstring. ``contracts``: the Futures instruments with, for each,
    the engine's view of it (``bot.execution.venue_futures.as_instrument``)."""

    def __init__(
        self,
        url: str,
        contracts: list[tuple[FuturesInstrument, Instrument]],
        sink: MarketSink,
        *,
        clock: Clock | None = None,
        depth: int = DEPTH,
        stale_after_s: float = 30.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._sink = sink
        self._depth = depth
        self._keepers = {fi.symbol: FuturesBook(fi) for fi, _ in contracts}
        self.books: dict[str, Book] = {inst.symbol: Book(inst, depth) for _, inst in contracts}
        self._valid: set[str] = set()  # the books last said valid (BookValid, no BookInvalid)
        self._instruments = {inst.symbol: inst for _, inst in contracts}
        self.stats = FuturesMarketStats()
        self._socket = ReconnectingSocket(
            url, self, name="futures_feed", url_key="futures.ws_url", clock=self._clock,
            stats=self.stats, stale_after_s=stale_after_s, backoff=backoff,
        )  # fmt: skip

    @property
    def symbols(self) -> list[str]:
        return list(self._keepers)

    def valid_probe(self, symbols: Iterable[str]) -> Callable[[], bool]:
        """A readiness probe: whether every one of ``symbols``' books is valid, as the sink
        was told (``BookValid``, no ``BookInvalid`` since). One C call over the live set
        (``frozenset.issubset``), whatever the number of contracts, as the spot feed's
        (``MarketFrames.valid_probe``)."""
        return functools.partial(frozenset(symbols).issubset, self._valid)

    @property
    def connected(self) -> bool:
        return self._socket.connected

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame (the feed's lag), None before the first."""
        return self._socket.frame_age_s()

    async def run(self) -> None:
        await self._socket.run()

    # -- the driver's hooks --------------------------------------------------------------

    async def prepare(self) -> None:
        return None

    def on_open(self, session: Session) -> None:
        session.queue(wsp.subscribe("book", self.symbols))
        session.queue(wsp.subscribe("trade", self.symbols))
        session.queue(wsp.subscribe("heartbeat"))

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None:
        try:
            event = wsp.parse_frame(raw)
            if isinstance(event, wsp.BookSnapshot | wsp.BookDelta):
                self._on_book(session, event)
            elif isinstance(event, wsp.Trade):
                self._on_trades(False, (event,))
            elif isinstance(event, wsp.TradeSnapshot):
                self._on_trades(True, event.trades)
        except ProtocolError as exc:
            self._socket.note_unparsed(str(exc), str(raw)[:120])

    def ping(self, session: Session) -> bytes | None:
        return wsp.subscribe("heartbeat")  # answered by a ``subscribed`` frame

    def on_close(self, error: BotError | None) -> None:
        self._valid.clear()
        for symbol, book in self.books.items():
            if book.valid:
                book.invalidate()
                self._sink(BookInvalid(symbol, "disconnected"))

    # -- frames --------------------------------------------------------------------------

    def _on_book(self, session: Session, frame: wsp.BookSnapshot | wsp.BookDelta) -> None:
        keeper = self._keepers.get(frame.product_id)
        if keeper is None:
            return
        resync = keeper.apply(frame)
        book = self.books[keeper.symbol]
        if resync is not None:
            self._resync(session, book, resync)
            return
        if not keeper.synced:
            return  # a delta dropped while a snapshot is awaited
        was_valid = book.valid
        bids, asks = keeper.bids(self._depth), keeper.asks(self._depth)
        copy = BookFrame(
            keeper.symbol, True, tuple(bids), tuple(asks), book_checksum(asks, bids),
            rfc3339_ms(frame.timestamp),
        )  # fmt: skip
        book.apply(copy)
        if not book.valid:
            self._valid.discard(keeper.symbol)  # (a copy's checksum is its own: never)
        elif not was_valid:
            self._valid.add(keeper.symbol)
            self._sink(BookValid(keeper.symbol))
        self._sink(BookUpdated(keeper.symbol, book, isinstance(frame, wsp.BookSnapshot)))

    def _resync(self, session: Session, book: Book, resync: Resync) -> None:
        self.stats.resyncs += 1
        log.warning(
            "futures_book_resync", symbol=resync.product_id, reason=resync.reason,
            expected=resync.expected, got=resync.got,
        )  # fmt: skip
        book.invalidate()
        self._valid.discard(book.symbol)
        reason = {"gap": "sequence gap", "crossed": "crossed book"}.get(
            resync.reason, "no snapshot"
        )
        self._sink(BookInvalid(resync.product_id, reason))
        session.queue(wsp.unsubscribe("book", [resync.product_id]))
        session.queue(wsp.subscribe("book", [resync.product_id]))

    def _on_trades(self, snapshot: bool, trades: tuple[wsp.Trade, ...]) -> None:
        converted = []
        for t in trades:
            inst = self._instruments.get(t.product_id)
            if inst is None:
                continue
            converted.append(Trade(
                symbol=inst.symbol, side=t.side, price=inst.price(t.price), qty=inst.qty(t.qty),
                ord_type="market" if t.kind == "fill" else t.kind, trade_id=t.seq,
                timestamp=rfc3339_ms(t.time),
            ))  # fmt: skip
        if converted:
            self._sink(TradeFrame(snapshot, tuple(converted)))
