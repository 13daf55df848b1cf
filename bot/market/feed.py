"""The public market-data feed: subscriptions and books over one reconnecting WebSocket.

``Feed(url, market, sink).run()`` keeps one connection to Kraken's public WS v2 (or the
simulator's) open until it is cancelled. The connection's life (connect, watchdog,
backoff, reconnect, the translation of websockets' errors) is ``bot.net.ws``'s; every
message goes through ``bot.market.frames.MarketFrames``, the one path from frames to books
and events that replay and the backtester share. What this module adds is what the public
feed is *for*: which channels and symbols to subscribe, resubscribing a book that needs a
fresh snapshot, the ping round trip, and the exchange's trading status. Everything reaches
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
                           frame that could not be parsed, a precision change)
``SubscriptionFailed``     Kraken refused a subscription, or a symbol has no instrument
protocol events            ``TradeFrame``, ``Ticker``, ``InstrumentFrame``, ``Status``,
                           acks, ``Unparsed`` (bad frames, also logged and counted)
=========================  =========================================================

Book frames, heartbeats and pongs are consumed here. ``BookValid`` and ``BookInvalid``
alternate per symbol, starting with ``BookValid``. Books are keyed by the instrument's WS
symbol (what frames carry), never by an alias.

Subscriptions. The ``instrument`` channel first (precisions; kept subscribed, so a
precision change reaches the books), then ``book`` at the configured depth, ``trade`` and
``ticker`` for every symbol whose instrument is known; a symbol that is only known once the
instrument snapshot arrives is subscribed then, and one the snapshot lacks is reported and
left out. A subscription Kraken rejects (``RejectedError``: bad symbol, bad channel) is
reported once and never sent again by this feed; other failures are reported and tried
again on the next connection.

Resync. A book that needs a fresh snapshot (checksum mismatch, a frame for it that could not
be parsed, a precision change) is dropped and resubscribed alone (unsubscribe, then
subscribe with the same depth); the others keep flowing. A symbol that fails again before
it verified a snapshot is resubscribed after a growing delay.

Liveness and reconnects are the driver's (``bot.net.ws``): a ping after ``stale_after_s /
2`` of silence, a new connection after ``stale_after_s``, a capped jittered backoff,
``should_reconnect(error)`` deciding (default: everything but a bad URL). A ping every
``ping_interval_s`` measures the round trip (``stats.ping_rtt_s``).

Exchange status. Kraken pushes a ``status`` frame on connect and whenever the trading
engine's state changes (``online``, ``cancel_only``, ``post_only``, ``limit_only``,
``maintenance``); ``exchange_status`` is the last one (None before the first),
``on_status(system)`` is called with each, and ``bot.kraken.system_status`` says which
orders it allows.

Two hooks serve the recorder and the simulator's live source: ``tap(raw)`` sees every
message as received, before it is parsed (the recorder writes it), and ``refresh_books()``
asks a fresh snapshot of every book without invalidating it (a recorder's new file).

This module does not own parsing, the book, the private feed, strategy dispatch or the
metrics exporter (which reads ``stats``, ``frame_age_s()`` and ``books``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from bot.config import MarketConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, RejectedError
from bot.core.log import get_logger
from bot.kraken import codec
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import (
    Event,
    InstrumentFrame,
    Pong,
    Status,
    SubscribeAck,
    Unparsed,
    UnsubscribeAck,
)
from bot.market.book import Book
from bot.market.frames import BookInvalid, BookUpdated, BookValid, FrameStats, MarketFrames
from bot.net.ws import (
    ConnectionLost,
    ReconnectingSocket,
    Session,
    SocketStale,
    SocketStats,
    should_reconnect,
)

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

_MAX_PINGS: Final = 16  # unanswered pings remembered for RTT
_INSTRUMENT: Final = "instrument"

FeedStale = SocketStale
"""No frame (not even a heartbeat or a pong) for ``stale_after_s`` (``bot.net.ws``)."""

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


# ------------------------------------------------------------------------------ state


@dataclass
class FeedStats(SocketStats, FrameStats):
    """Counters for /metrics: the driver's, the books', and the feed's own.
    ``last_frame_at`` is on the feed's clock (monotonic)."""

    subscription_failures: int = 0
    resyncs: int = 0
    ping_rtt_s: float | None = None


class _Subscriptions:
    """What the feed tracks for one connection."""

    __slots__ = ("pings", "requests", "session", "waiting")

    def __init__(self, session: Session) -> None:
        self.session = session
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
        on_status: Callable[[str], None] | None = None,
        tap: Callable[[str | bytes], None] | None = None,
    ) -> None:
        self.url = url
        self._on_status = on_status
        self._tap = tap
        self.market = market
        self._sink = sink
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._table = instruments if instruments is not None else InstrumentTable()
        self._instrument_channel = instrument_channel
        self._resync_policy = resync_backoff if resync_backoff is not None else BackoffPolicy()
        self._resync_backoffs: dict[str, Backoff] = {}
        self._excluded: set[tuple[str, str | None]] = set()
        self._req_ids = itertools.count(1)
        self._subs: _Subscriptions | None = None
        self._now = 0.0  # the receive time of the message being handled
        self.exchange_status: str | None = None
        """The trading engine's state from the last ``status`` frame (None before one)."""
        self.stats = FeedStats()
        self._frames = MarketFrames(
            self._table,
            sink,  # FeedEvent includes every MarketEvent
            depth=market.book_depth,
            control=self._on_control,
            on_resync=self._on_resync,
            stats=self.stats,
        )
        self._socket = ReconnectingSocket(
            url,
            self,
            name="feed",
            url_key="venue.ws_public_url",
            clock=self._clock,
            stats=self.stats,
            stale_after_s=market.stale_after_s,
            backoff=backoff,
            reconnect=reconnect,
            healthy_after_s=healthy_after_s,
            open_timeout_s=open_timeout_s,
            close_timeout_s=close_timeout_s,
        )

    # -- what others read ----------------------------------------------------------------

    @property
    def books(self) -> Mapping[str, Book]:
        """The books by symbol (read-only; a book may be replaced after a resync)."""
        return self._frames.books

    def valid_probe(self, symbols: Iterable[str]) -> Callable[[], bool]:
        """The readiness probe of ``symbols``' books (``MarketFrames.valid_probe``): true
        while every one has verified a snapshot and lost nothing since."""
        return self._frames.valid_probe(symbols)

    def follow_valid(self, on_change: Callable[[], None] | None) -> None:
        """``on_change()`` after every change of what ``valid_probe`` reads
        (``MarketFrames.follow_valid``)."""
        self._frames.follow_valid(on_change)

    @property
    def instruments(self) -> InstrumentTable:
        return self._table

    @property
    def connected(self) -> bool:
        return self._socket.connected

    @property
    def excluded(self) -> frozenset[tuple[str, str | None]]:
        """``(channel, symbol)`` pairs Kraken refused for good; never subscribed again."""
        return frozenset(self._excluded)

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame (the feed's lag), None before the first."""
        return self._socket.frame_age_s()

    def refresh_books(self) -> None:
        """Ask a fresh snapshot of every book (unsubscribe, then subscribe again); the books
        stay valid meanwhile. Nothing to do without a connection (the next one subscribes
        afresh)."""
        subs = self._subs
        if subs is None or "book" not in self.market.channels:
            return
        depth = self.market.book_depth
        for symbol in self._frames.books:
            sub_id = next(self._req_ids)
            subs.requests[sub_id] = ("book", (symbol,))
            subs.session.queue(
                codec.unsubscribe("book", symbols=[symbol], depth=depth, req_id=next(self._req_ids))
            )
            subs.session.queue(codec.subscribe_book([symbol], depth=depth, req_id=sub_id))

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until cancelled (or told not to retry)."""
        await self._socket.run()

    # -- the driver's hooks (bot.net.ws.SocketHandler) -------------------------------------

    async def prepare(self) -> None:
        """Nothing to do before a connect: the public feed needs no token."""

    def on_open(self, session: Session) -> None:
        subs = self._subs = _Subscriptions(session)
        self._sink(FeedConnected(self.url, session.number))
        self._subscribe_all(subs)
        session.spawn(self._ping_every(subs))

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None:
        self._now = now
        if self._tap is not None:
            self._tap(raw)
        self._frames.push(raw)

    def ping(self, session: Session) -> bytes:
        assert self._subs is not None
        return self._ping_request(self._subs)

    def on_close(self, error: BotError | None) -> None:
        self._subs = None
        if error is None:  # shutting down: no events, but no stale "valid" either
            self._frames.invalidate_all(None)
            return
        self._frames.invalidate_all("disconnected")
        self._sink(FeedDisconnected(str(error)))

    # -- the connection's tasks ----------------------------------------------------------

    async def _ping_every(self, subs: _Subscriptions) -> None:
        while True:
            await self._clock.sleep(self.market.ping_interval_s)
            await subs.session.send(self._ping_request(subs))

    def _ping_request(self, subs: _Subscriptions) -> bytes:
        req_id = next(self._req_ids)
        subs.pings[req_id] = self._clock.monotonic()
        if len(subs.pings) > _MAX_PINGS:
            del subs.pings[next(iter(subs.pings))]
        return codec.ping(req_id=req_id)

    async def _send_later(self, session: Session, delay: float, requests: list[bytes]) -> None:
        await self._clock.sleep(delay)
        for request in requests:
            await session.send(request)

    # -- what the frames tell the connection ---------------------------------------------

    def _on_control(self, event: Event) -> None:
        subs = self._subs
        if subs is None:  # only ever called from on_message
            return
        if type(event) is Pong:
            sent = subs.pings.pop(event.req_id, None) if event.req_id is not None else None
            if sent is not None:
                self.stats.ping_rtt_s = self._now - sent
        elif type(event) is SubscribeAck:
            self._on_subscribe_ack(subs, event)
        elif type(event) is InstrumentFrame:
            self._on_instruments(subs, event)
        elif type(event) is Unparsed:
            self._socket.note_unparsed(event.reason, event.excerpt)
        elif type(event) is Status:
            if event.system != self.exchange_status:
                log.info("exchange_status", system=event.system, was=self.exchange_status)
            self.exchange_status = event.system
            if self._on_status is not None:
                self._on_status(event.system)
        elif type(event) is UnsubscribeAck and not event.success:
            log.warning("unsubscribe_failed", error=event.error, symbol=event.symbol)

    def _on_resync(self, symbol: str, reason: str, again: bool) -> None:
        """Drop one symbol's book subscription and take it again, for a fresh snapshot."""
        subs = self._subs
        if subs is None or "book" not in self.market.channels:
            return  # no connection: the next one subscribes every book afresh
        self.stats.resyncs += 1
        depth = self.market.book_depth
        self._frames.track(symbol)  # the instrument may have changed under it
        sub_id = next(self._req_ids)
        subs.requests[sub_id] = ("book", (symbol,))
        requests = [
            codec.unsubscribe("book", symbols=[symbol], depth=depth, req_id=next(self._req_ids)),
            codec.subscribe_book([symbol], depth=depth, req_id=sub_id),
        ]
        if not again:  # the first failure since the book was last valid: at once
            self._resync_backoffs[symbol] = Backoff(self._resync_policy)
            subs.session.outbox.extend(requests)
            return
        backoff = self._resync_backoffs.setdefault(symbol, Backoff(self._resync_policy))
        delay = backoff.next_delay()
        log.info("book_resync_delayed", symbol=symbol, reason=reason, delay_s=delay)
        subs.session.spawn(self._send_later(subs.session, delay, requests))

    def _on_subscribe_ack(self, subs: _Subscriptions, ack: SubscribeAck) -> None:
        request = subs.requests.get(ack.req_id) if ack.req_id is not None else None
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
            for waiting in subs.waiting:
                self._fail_unknown(waiting)
            subs.waiting = []

    def _on_instruments(self, subs: _Subscriptions, frame: InstrumentFrame) -> None:
        if not subs.waiting:
            return
        ready = [x for x in subs.waiting if self._table.lookup(x) is not None]
        subs.waiting = [x for x in subs.waiting if x not in ready]
        self._subscribe_symbols(subs, ready)
        if frame.snapshot:
            for symbol in subs.waiting:
                self._fail_unknown(symbol)
            subs.waiting = []

    # -- subscriptions -------------------------------------------------------------------

    def _subscribe_all(self, subs: _Subscriptions) -> None:
        use_instruments = self._instrument_channel and (_INSTRUMENT, None) not in self._excluded
        if use_instruments:
            req_id = self._request(subs, _INSTRUMENT, ())
            subs.session.queue(codec.subscribe_instrument(req_id=req_id))
        known: list[str] = []
        for symbol in self.market.symbols:
            if all((c, symbol) in self._excluded for c in self.market.channels):
                continue
            inst = self._table.lookup(symbol)
            if inst is not None:
                known.append(inst.symbol)
            elif use_instruments:
                subs.waiting.append(symbol)
            else:
                self._fail_unknown(symbol)
        self._subscribe_symbols(subs, known)

    def _subscribe_symbols(self, subs: _Subscriptions, symbols: list[str]) -> None:
        if "book" in self.market.channels:
            for symbol in symbols:
                self._frames.track(symbol)
        for channel in self.market.channels:
            wanted = tuple(x for x in symbols if (channel, x) not in self._excluded)
            if not wanted:
                continue
            req_id = self._request(subs, channel, wanted)
            if channel == "book":
                request = codec.subscribe_book(wanted, depth=self.market.book_depth, req_id=req_id)
            elif channel == "trade":
                request = codec.subscribe_trade(wanted, req_id=req_id)
            else:
                request = codec.subscribe_ticker(wanted, req_id=req_id)
            subs.session.queue(request)

    def _request(self, subs: _Subscriptions, channel: str, symbols: tuple[str, ...]) -> int:
        req_id = next(self._req_ids)
        subs.requests[req_id] = (channel, symbols)
        return req_id

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


def _symbol_in(error: str, symbols: tuple[str, ...]) -> str | None:
    """The requested symbol a free-text error names ("Currency pair not supported X/Y")."""
    named = [x for x in symbols if x in error]
    return named[0] if len(named) == 1 else None
