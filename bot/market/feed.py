"""The public market-data WebSocket driver: connect, subscribe, watch, reconnect, resync.

``Feed(url, market, sink).run()`` keeps one connection to Kraken's public WS v2 (or the
simulator's) open until it is cancelled. It only moves frames: ``bot.kraken.protocol``
turns them into events, ``bot.market.book`` keeps one checksum-verified ``Book`` per
symbol, ``bot.market.backoff`` says how long to wait. Everything the feed learns reaches
the daemon through one plain callback, ``sink(event)``, called in order on the event loop:

=========================  =========================================================
event                      when
=========================  =========================================================
``FeedConnected``          a connection opened (subscriptions are being sent)
``FeedDisconnected``       it ended (``reason``); every book is invalid from here
``BookUpdated``            a book frame was applied and verified (``book`` is live:
                           read it in the callback, or keep ``book.view()``)
``BookValid``              a symbol's book verified a fresh snapshot
``BookInvalid``            a valid book stopped being trustworthy (drop, checksum, a
                           bad frame that broke off half-applied)
``SubscriptionFailed``     Kraken refused a subscription, or a symbol has no instrument
protocol events            ``TradeFrame``, ``Ticker``, ``InstrumentFrame``, ``Status``,
                           acks, ``Unparsed`` (bad frames, also logged and counted)
=========================  =========================================================

Book frames, heartbeats and pongs are consumed here. ``BookValid`` and ``BookInvalid``
alternate per symbol, starting with ``BookValid``.

Books. Frames go through ``Parser.parse_into_safe(raw, books)``: a book item for a symbol
with a ``Book`` here is applied to it inside the parser (the fused path, no ``BookFrame``)
and comes back as a ``BookApplied`` (reused per book: its fields are read at once, never
kept). Both ways into a book ignore updates while it is invalid (from a drop or a mismatch
until the next verified snapshot), so nothing reaches a book that is not valid. Which
symbols the sink was told are valid is kept here (``BookValid`` and ``BookInvalid`` are
decided on it, not on the book after the fact). A frame that turns out malformed after part
of it was applied invalidates its book in the parser and comes back ``Unparsed``: the feed
then reports ``BookInvalid(symbol, "bad frame")`` and resyncs that symbol as for a mismatch.
Books are keyed by the instrument's WS symbol (what frames carry), never by an alias.

Subscriptions. The ``instrument`` channel first (precisions), then ``book`` at the
configured depth, ``trade`` and ``ticker`` for every symbol whose instrument is known;
a symbol that is only known once the instrument snapshot arrives is subscribed then,
and one the snapshot lacks is reported and left out. A subscription Kraken rejects
(``RejectedError``: bad symbol, bad channel) is reported once and never sent again by
this feed; other failures are reported and tried again on the next connection.

Liveness. Kraken sends a heartbeat each second when idle. After ``stale_after_s / 2``
without any frame the watchdog sends a ping (its pong is a frame); after ``stale_after_s``
the connection is dead: it is closed and a new one opened. A ping every
``ping_interval_s`` measures the round trip (``stats.ping_rtt_s``).

Reconnects forever, after a capped, jittered backoff that restarts from its shortest
delay once a connection has lasted ``healthy_after_s``; whether to retry at all is the
replaceable ``should_reconnect(error)`` (default: everything but a bad URL).

Checksum mismatch: that symbol's book is dropped and resubscribed alone (unsubscribe,
then subscribe with the same depth); the others keep flowing. A symbol that keeps failing
is resubscribed after a growing delay.

Errors: websockets and socket exceptions are translated here, into ``ConnectionLost``
(transient) or ``ConfigError`` (the URL); nothing above this module sees websockets.
Internal tasks live in one ``TaskGroup`` per connection; ``CancelledError`` propagates.

This module does not own parsing, the book, the private feed, strategy dispatch or the
metrics exporter (which reads ``stats``, ``frame_age_s()`` and ``books``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, cast

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from bot.clock import Clock, SystemClock
from bot.config import MarketConfig
from bot.errors import BotError, ConfigError, RejectedError, TransientError
from bot.kraken import codec
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import (
    BookApplied,
    BookFrame,
    Event,
    Heartbeat,
    InstrumentFrame,
    Parser,
    Pong,
    SubscribeAck,
    Unparsed,
    UnsubscribeAck,
)
from bot.log import get_logger
from bot.market.backoff import Backoff, BackoffPolicy
from bot.market.book import Book, BookMismatch

__all__ = [
    "BookInvalid",
    "BookUpdated",
    "BookValid",
    "ConnectionLost",
    "Feed",
    "FeedConnected",
    "FeedDisconnected",
    "FeedEvent",
    "FeedStale",
    "FeedStats",
    "Sink",
    "SubscriptionFailed",
    "should_reconnect",
]

_MAX_MESSAGE: Final = 16 * 2**20  # the instrument snapshot alone is ~0.4 MB
_MAX_PINGS: Final = 16  # unanswered pings remembered for RTT
_LOG_EVERY: Final = 100  # after the first few, log one bad frame in this many
_INSTRUMENT: Final = "instrument"

log = get_logger(component="feed")


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class FeedConnected:
    url: str
    connection: int  # 1 for the first connection, then counting


@dataclass(frozen=True, slots=True)
class FeedDisconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """A frame was applied and the book verified; ``book`` is the live object."""

    symbol: str
    book: Book
    snapshot: bool


@dataclass(frozen=True, slots=True)
class BookInvalid:
    symbol: str
    reason: str  # "disconnected" | "checksum mismatch" | "bad frame"


@dataclass(frozen=True, slots=True)
class BookValid:
    symbol: str


@dataclass(frozen=True, slots=True)
class SubscriptionFailed:
    channel: str
    symbol: str | None
    error: str


FeedEvent = (
    Event
    | FeedConnected
    | FeedDisconnected
    | BookUpdated
    | BookInvalid
    | BookValid
    | SubscriptionFailed
)
Sink = Callable[[FeedEvent], None]


# ------------------------------------------------------------------------------ errors


class ConnectionLost(TransientError):
    """The public WebSocket failed to open, closed, or went silent: reconnect."""

    def __init__(self, reason: str, close_code: int | None = None) -> None:
        self.reason = reason
        self.close_code = close_code
        super().__init__("WS:connection lost", reason)


class FeedStale(ConnectionLost):
    """No frame (not even a heartbeat or a pong) for ``stale_after_s``."""


def should_reconnect(error: BotError) -> bool:
    """The default reconnect decision: retry everything but a configuration error."""
    return not isinstance(error, ConfigError)


def _translate(exc: BaseException) -> BotError:
    """A websockets or socket exception as ours (the boundary of the library)."""
    if isinstance(exc, InvalidURI):
        return ConfigError(f"venue.ws_public_url: {exc}")
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None:
            return ConnectionLost(f"connection dropped ({exc})")
        return ConnectionLost(f"closed by the server ({exc})", exc.rcvd.code)
    if isinstance(exc, InvalidStatus):
        return ConnectionLost(f"handshake refused: HTTP {exc.response.status_code}")
    return ConnectionLost(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


# ------------------------------------------------------------------------------ state


@dataclass(slots=True)
class FeedStats:
    """Counters for /metrics. ``last_frame_at`` is on the feed's clock (monotonic)."""

    frames: int = 0
    book_frames: int = 0
    book_frames_by_symbol: dict[str, int] = field(default_factory=dict)
    unparsed: int = 0
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    subscription_failures: int = 0
    resyncs: int = 0
    checksum_failures: dict[str, int] = field(default_factory=dict)
    last_frame_at: float | None = None
    ping_rtt_s: float | None = None


class _Session:
    """What lives and dies with one connection."""

    __slots__ = ("last_frame", "outbox", "pings", "probed", "requests", "tg", "waiting", "ws")

    def __init__(self, ws: ClientConnection, tg: asyncio.TaskGroup, now: float) -> None:
        self.ws = ws
        self.tg = tg
        self.last_frame = now
        self.probed = -1.0  # the last_frame a watchdog ping was sent for
        self.outbox: list[bytes] = []
        self.requests: dict[int, tuple[str, tuple[str, ...]]] = {}  # subscribe req_id
        self.pings: dict[int, float] = {}  # ping req_id -> sent at
        self.waiting: list[str] = []  # symbols waiting for their instrument


class Feed:
    """The public feed for ``market.symbols`` on ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        market: MarketConfig,
        sink: Sink,
        *,
        clock: Clock | None = None,
        instruments: InstrumentTable | None = None,
        instrument_channel: bool = True,
        backoff: Backoff | None = None,
        resync_backoff: BackoffPolicy | None = None,
        reconnect: Callable[[BotError], bool] = should_reconnect,
        healthy_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self.market = market
        self._sink = sink
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._table = instruments if instruments is not None else InstrumentTable()
        self._parser = Parser(self._table)
        self._instrument_channel = instrument_channel
        self._backoff = backoff if backoff is not None else Backoff()
        self._resync_policy = resync_backoff if resync_backoff is not None else BackoffPolicy()
        self._resync_backoffs: dict[str, Backoff] = {}
        self._reconnect = reconnect
        self._healthy_after_s = healthy_after_s
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._books: dict[str, Book] = {}
        self._valid: set[str] = set()  # symbols whose last event was BookValid
        self._excluded: set[tuple[str, str | None]] = set()
        self._req_ids = itertools.count(1)
        self._session: _Session | None = None
        self.stats = FeedStats()

    # -- what others read ----------------------------------------------------------------

    @property
    def books(self) -> Mapping[str, Book]:
        """The books by symbol (read-only; a book may be replaced after a resync)."""
        return MappingProxyType(self._books)

    @property
    def instruments(self) -> InstrumentTable:
        return self._table

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def excluded(self) -> frozenset[tuple[str, str | None]]:
        """``(channel, symbol)`` pairs Kraken refused for good; never subscribed again."""
        return frozenset(self._excluded)

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame (the feed's lag), None before the first."""
        last = self.stats.last_frame_at
        return None if last is None else self._clock.monotonic() - last

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until cancelled (or told not to retry)."""
        task = asyncio.current_task()
        while True:
            error, healthy = await self._connect_once()
            if task is not None and task.cancelling():
                # A TaskGroup whose children failed as we were cancelled reports their
                # errors, not the cancellation: never swallow it.
                raise asyncio.CancelledError
            if not self._reconnect(error):
                log.error("feed_giving_up", url=self.url, error=str(error))
                raise error
            if healthy:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            self.stats.reconnects += 1
            log.warning("feed_reconnecting", url=self.url, reason=str(error), delay_s=delay)
            await self._clock.sleep(delay)

    async def _connect_once(self) -> tuple[BotError, bool]:
        """One connection, from opening to its end: why it ended, and if it was healthy."""
        opened_at: float | None = None
        lost: BotError = ConnectionLost("connection ended")
        number = self.stats.connects + 1
        with structlog.contextvars.bound_contextvars(conn=number):
            try:
                async with connect(
                    self.url,
                    open_timeout=self._open_timeout_s,
                    close_timeout=self._close_timeout_s,
                    ping_interval=None,  # liveness is the watchdog's, on Kraken's heartbeats
                    max_size=_MAX_MESSAGE,
                    proxy=None,
                ) as ws:
                    opened_at = self._clock.monotonic()
                    lost = await self._session_on(ws, number, opened_at)
            except (WebSocketException, OSError, TimeoutError) as exc:
                if opened_at is None:  # the connection never opened
                    self.stats.connect_failures += 1
                    failed = _translate(exc)
                    log.warning("feed_connect_failed", url=self.url, error=str(failed))
                    return failed, False
                # else: the closing handshake of a connection already lost failed too
        return lost, self._clock.monotonic() - opened_at >= self._healthy_after_s

    async def _session_on(self, ws: ClientConnection, number: int, now: float) -> BotError:
        """Run one open connection until it fails; books are invalid when this returns."""
        self.stats.connects = number
        log.info("feed_connected", url=self.url)
        try:
            lost = await self._run_tasks(ws, number, now)
        except asyncio.CancelledError:
            for book in self._books.values():
                book.invalidate()  # shutting down: no events, but no stale "valid" either
            self._valid.clear()
            raise
        self._lost(lost)
        return lost

    async def _run_tasks(self, ws: ClientConnection, number: int, now: float) -> BotError:
        lost: BotError = ConnectionLost("connection ended")
        try:
            async with asyncio.TaskGroup() as tg:
                session = self._session = _Session(ws, tg, now)
                self._sink(FeedConnected(self.url, number))
                self._subscribe_all(session)
                tg.create_task(self._watch(session))
                tg.create_task(self._ping(session))
                # The reader is the group's body, not a child: the body must be awaiting
                # when a child fails (Python 3.11's TaskGroup leaks a cancellation request
                # on its parent if a child fails while __aexit__ waits).
                await self._read(session)
        except* ConnectionLost as group:  # anything else (a bug, the sink's) propagates
            lost = _first(group)
        finally:
            self._session = None
        return lost

    def _lost(self, error: BotError) -> None:
        log.warning("feed_disconnected", url=self.url, reason=str(error))
        valid = self._valid
        for symbol, book in self._books.items():
            book.invalidate()
            if symbol in valid:
                self._sink(BookInvalid(symbol, "disconnected"))
        valid.clear()
        self._sink(FeedDisconnected(str(error)))

    # -- the connection's tasks ----------------------------------------------------------

    async def _read(self, s: _Session) -> None:
        try:
            await self._flush(s)
            async for raw in s.ws:
                self._on_message(s, raw)
                if s.outbox:
                    await self._flush(s)
        except ConnectionClosed as exc:
            raise _translate(exc) from exc
        code = s.ws.close_code
        raise ConnectionLost(f"closed by the server (code {code})", code)

    async def _flush(self, s: _Session) -> None:
        out, s.outbox = s.outbox, []
        for request in out:
            await s.ws.send(request, text=True)

    async def _send(self, s: _Session, request: bytes) -> None:
        try:
            await s.ws.send(request, text=True)
        except ConnectionClosed as exc:
            raise _translate(exc) from exc

    async def _watch(self, s: _Session) -> None:
        """Close a connection that has said nothing for ``stale_after_s``."""
        stale = self.market.stale_after_s
        while True:
            now = self._clock.monotonic()
            last = s.last_frame
            silent = now - last
            if silent >= stale:
                log.warning("feed_stale", silent_s=round(silent, 3))
                raise FeedStale(f"no frame for {silent:.3g} s")
            if silent >= stale / 2 and s.probed != last:
                s.probed = last
                await self._send_ping(s)
            wake = last + (stale if s.probed == last else stale / 2)
            await self._clock.sleep(max(wake - now, 0.0))

    async def _ping(self, s: _Session) -> None:
        while True:
            await self._clock.sleep(self.market.ping_interval_s)
            await self._send_ping(s)

    async def _send_ping(self, s: _Session) -> None:
        req_id = next(self._req_ids)
        s.pings[req_id] = self._clock.monotonic()
        if len(s.pings) > _MAX_PINGS:
            del s.pings[next(iter(s.pings))]
        await self._send(s, codec.ping(req_id=req_id))

    async def _send_later(self, s: _Session, delay: float, requests: list[bytes]) -> None:
        await self._clock.sleep(delay)
        for request in requests:
            await self._send(s, request)

    # -- frames in (synchronous: requests go to the outbox) ------------------------------

    def _on_message(self, s: _Session, raw: str | bytes) -> None:
        now = self._clock.monotonic()
        stats = self.stats
        stats.frames += 1
        stats.last_frame_at = s.last_frame = now
        sink = self._sink
        for event in self._parser.parse_into_safe(raw, self._books):
            if type(event) is BookApplied:  # the hot path first; the object is reused
                book, snapshot, mismatch = event
                self._on_book(s, book, snapshot, mismatch)
            elif type(event) is BookFrame:  # a symbol with no book here: not ours
                self._count_book_frame(event.symbol)
            elif type(event) is Heartbeat:
                pass
            elif type(event) is Pong:
                self._on_pong(s, event, now)
            elif type(event) is SubscribeAck:
                self._on_subscribe_ack(s, event)
                sink(event)
            elif type(event) is InstrumentFrame:
                sink(event)
                self._on_instruments(s, event)
            elif type(event) is Unparsed:
                self._on_unparsed(event)
                sink(event)
                if self._valid:
                    self._on_broken_books(s)
            else:
                if type(event) is UnsubscribeAck and not event.success:
                    log.warning("unsubscribe_failed", error=event.error, symbol=event.symbol)
                sink(cast(Event, event))  # BookApplied was the first branch (no narrowing)

    def _count_book_frame(self, symbol: str) -> None:
        stats = self.stats
        stats.book_frames += 1
        by_symbol = stats.book_frames_by_symbol
        by_symbol[symbol] = by_symbol.get(symbol, 0) + 1

    def _on_book(
        self, s: _Session, book: Book, snapshot: bool, mismatch: BookMismatch | None
    ) -> None:
        """One frame the parser applied to ``book`` (``BookApplied``'s fields)."""
        symbol = book.symbol
        stats = self.stats
        stats.book_frames += 1
        by_symbol = stats.book_frames_by_symbol
        by_symbol[symbol] = by_symbol.get(symbol, 0) + 1
        if mismatch is not None:
            self._on_mismatch(s, mismatch)
            return
        if snapshot:  # verified: the book is valid from here
            if symbol not in self._valid:
                self._valid.add(symbol)
                self._resync_backoffs.pop(symbol, None)
                log.info("book_valid", symbol=symbol)
                self._sink(BookValid(symbol))
        elif not book.valid:
            return  # an update while waiting for a snapshot: ignored by the book
        self._sink(BookUpdated(symbol, book, snapshot))

    def _on_broken_books(self, s: _Session) -> None:
        """After a bad frame: resync any book the parser invalidated half-way through it."""
        books = self._books
        for symbol in [x for x in self._valid if not books[x].valid]:
            self._valid.discard(symbol)
            log.warning("book_broken_by_bad_frame", symbol=symbol)
            self._sink(BookInvalid(symbol, "bad frame"))
            self._resync(s, symbol)

    def _on_mismatch(self, s: _Session, mismatch: BookMismatch) -> None:
        symbol = mismatch.symbol
        was_valid = symbol in self._valid
        self._valid.discard(symbol)
        failures = self.stats.checksum_failures
        failures[symbol] = failures.get(symbol, 0) + 1
        log.warning(
            "checksum_mismatch",
            symbol=symbol,
            expected=mismatch.expected,
            computed=mismatch.computed,
        )
        if was_valid:
            self._sink(BookInvalid(symbol, "checksum mismatch"))
        self._resync(s, symbol)

    def _resync(self, s: _Session, symbol: str) -> None:
        """Drop one symbol's book subscription and take it again, for a fresh snapshot."""
        self.stats.resyncs += 1
        depth = self.market.book_depth
        self._ensure_book(symbol)  # the instrument may have changed under it
        sub_id = next(self._req_ids)
        s.requests[sub_id] = ("book", (symbol,))
        requests = [
            codec.unsubscribe("book", symbols=[symbol], depth=depth, req_id=next(self._req_ids)),
            codec.subscribe_book([symbol], depth=depth, req_id=sub_id),
        ]
        backoff = self._resync_backoffs.get(symbol)
        if backoff is None:  # the first failure since the book was last valid: at once
            self._resync_backoffs[symbol] = Backoff(self._resync_policy)
            s.outbox.extend(requests)
            return
        delay = backoff.next_delay()
        log.info("book_resync_delayed", symbol=symbol, delay_s=delay)
        s.tg.create_task(self._send_later(s, delay, requests))

    def _on_pong(self, s: _Session, pong: Pong, now: float) -> None:
        sent = s.pings.pop(pong.req_id, None) if pong.req_id is not None else None
        if sent is not None:
            self.stats.ping_rtt_s = now - sent

    def _on_unparsed(self, event: Unparsed) -> None:
        self.stats.unparsed += 1
        n = self.stats.unparsed
        if n <= 10 or n % _LOG_EVERY == 0:
            log.warning("frame_unparsed", count=n, error=event.reason, frame=event.excerpt)

    def _on_subscribe_ack(self, s: _Session, ack: SubscribeAck) -> None:
        request = s.requests.get(ack.req_id) if ack.req_id is not None else None
        if ack.success:
            return
        channel, symbols = request if request is not None else (ack.channel or "?", ())
        channel = ack.channel or channel
        error = ack.error or "subscribe failed without an error"
        symbol = ack.symbol or _symbol_in(error, symbols)
        if symbol is None and len(symbols) == 1:
            symbol = symbols[0]
        permanent = isinstance(ack.exception(), RejectedError)
        if permanent and (symbol is not None or channel == _INSTRUMENT):
            self._excluded.add((channel, symbol))
        self._fail(channel, symbol, error, permanent=permanent)
        if channel == _INSTRUMENT:
            for waiting in s.waiting:
                self._fail_unknown(waiting)
            s.waiting = []

    def _on_instruments(self, s: _Session, frame: InstrumentFrame) -> None:
        if not s.waiting:
            return
        ready = [x for x in s.waiting if self._table.lookup(x) is not None]
        s.waiting = [x for x in s.waiting if x not in ready]
        self._subscribe_symbols(s, ready)
        if frame.snapshot:
            for symbol in s.waiting:
                self._fail_unknown(symbol)
            s.waiting = []

    # -- subscriptions -------------------------------------------------------------------

    def _subscribe_all(self, s: _Session) -> None:
        use_instruments = self._instrument_channel and (_INSTRUMENT, None) not in self._excluded
        if use_instruments:
            s.outbox.append(codec.subscribe_instrument(req_id=self._request(s, _INSTRUMENT, ())))
        known: list[str] = []
        for symbol in self.market.symbols:
            if all((c, symbol) in self._excluded for c in self.market.channels):
                continue
            inst = self._table.lookup(symbol)
            if inst is not None:
                known.append(inst.symbol)
            elif use_instruments:
                s.waiting.append(symbol)
            else:
                self._fail_unknown(symbol)
        self._subscribe_symbols(s, known)

    def _subscribe_symbols(self, s: _Session, symbols: list[str]) -> None:
        for symbol in symbols:
            self._ensure_book(symbol)
        for channel in self.market.channels:
            wanted = tuple(x for x in symbols if (channel, x) not in self._excluded)
            if not wanted:
                continue
            req_id = self._request(s, channel, wanted)
            if channel == "book":
                request = codec.subscribe_book(wanted, depth=self.market.book_depth, req_id=req_id)
            elif channel == "trade":
                request = codec.subscribe_trade(wanted, req_id=req_id)
            else:
                request = codec.subscribe_ticker(wanted, req_id=req_id)
            s.outbox.append(request)

    def _request(self, s: _Session, channel: str, symbols: tuple[str, ...]) -> int:
        req_id = next(self._req_ids)
        s.requests[req_id] = (channel, symbols)
        return req_id

    def _ensure_book(self, symbol: str) -> None:
        if "book" not in self.market.channels:
            return
        inst = self._table.lookup(symbol)
        if inst is None:
            return
        book = self._books.get(inst.symbol)  # keyed as frames name it: parse_into trusts it
        if book is None or book.instrument != inst:
            self._books[inst.symbol] = Book(inst, self.market.book_depth)
            self._valid.discard(inst.symbol)  # the new book waits for its snapshot

    def _fail_unknown(self, symbol: str) -> None:
        for channel in self.market.channels:
            self._excluded.add((channel, symbol))
        self._fail(_INSTRUMENT, symbol, f"no instrument for {symbol}", permanent=True)

    def _fail(self, channel: str, symbol: str | None, error: str, *, permanent: bool) -> None:
        self.stats.subscription_failures += 1
        log.error(
            "subscription_failed", channel=channel, symbol=symbol, error=error, retry=not permanent
        )
        self._sink(SubscriptionFailed(channel, symbol, error))


def _first(group: BaseExceptionGroup[ConnectionLost]) -> ConnectionLost:
    first = group.exceptions[0]
    return first if isinstance(first, ConnectionLost) else _first(first)


def _symbol_in(error: str, symbols: tuple[str, ...]) -> str | None:
    """The requested symbol a free-text error names ("Currency pair not supported X/Y")."""
    named = [x for x in symbols if x in error]
    return named[0] if len(named) == 1 else None
