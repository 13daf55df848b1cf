"""The private WebSocket driver: the ``executions`` channel, kept live across every fault.

``PrivateFeed(url, tokens, sink, clock=...).run()`` keeps one connection to Kraken's
authenticated WS v2 (``venue.ws_private_url``: ``wss://ws-auth.kraken.com/v2``, or the
simulator's ``/v2-auth``) subscribed to ``executions`` until it is cancelled. It only moves
frames: ``bot.kraken.protocol`` parses them, the execution engine interprets them. Events
reach the engine through one plain callback, ``sink(event)``, called in order:

=========================  ===========================================================
event                      when
=========================  ===========================================================
``PrivateConnected``       a connection opened (the subscribe is being sent)
``ExecutionsSubscribed``   the subscription is live; ``snapshot`` is the snapshot frame
                           (open orders and, with ``snap_trades``, the last 50 fills),
                           or None if none was asked for. Once per connection; the
                           snapshot is not sent again as a plain ``ExecutionsFrame``
``ExecutionsFrame``        an update (sparse reports: merge them by ``order_id``)
``SequenceGap``            an update's ``sequence`` is not the last one + 1: a message
                           was lost (or could not be parsed); reconcile over REST.
                           Sent just before the frame that revealed the gap
``PrivateDisconnected``    the connection ended (``reason``); ``PrivateConnected`` and
                           ``PrivateDisconnected`` alternate (cancelling ``run`` sends
                           no event: the connection just closes)
=========================  ===========================================================

Tokens. Every connection starts with a token minted just before it (``TokenSource.fresh``,
KRAKEN.md §4); a token is never reused. A token or session error (``EAPI:Invalid token``,
``ESession:Invalid session``: ``TokenError`` through ``bot.errors``), which Kraken sends as a
failed ``subscribe`` without closing the socket, ends the connection: the feed closes it,
mints a new token and subscribes again on a new one. If the token failed after the
subscription had been live (revoked or expired mid-session), that happens at once; a
token refused on its first use goes through the backoff like any failure.

Sequence. ``sequence`` is counted per subscription (it restarts with each one): the
snapshot sets the baseline and each update must be the previous + 1. A gap is reported,
and the frame is still delivered. A frame that cannot be parsed is logged and counted;
the next frame then shows the gap.

Liveness. Kraken sends a heartbeat each second once subscribed. After ``stale_after_s / 2``
without any frame the watchdog sends a ping (its pong is a frame); after ``stale_after_s``
the connection is dead, and a subscription not live ``subscribe_timeout_s`` after the
connection opened is too: it is closed and a new one opened (with a new token).

Reconnects forever after a capped, jittered backoff (``bot.market.backoff``) that starts
again from its shortest delay once a connection has lasted ``healthy_after_s``. A failure
to mint a token counts as a failed connect. Only a malformed URL (``ConfigError``) stops
the feed; whether to retry is the replaceable ``should_reconnect(error)``.

Errors: websockets and socket exceptions are translated here into ``PrivateConnectionLost``
(transient) or ``ConfigError``; nothing above this module sees websockets. Internal tasks
live in one ``TaskGroup`` per connection; ``CancelledError`` propagates.

This module does not own order state, reconciliation or the readiness gate (the engine's);
it exposes ``subscribed`` and ``stats`` for them and for /metrics.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from bot.clock import Clock, SystemClock
from bot.errors import BotError, ConfigError, TokenError, TransientError
from bot.execution.tokens import TokenSource
from bot.kraken import codec
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import (
    ExecutionsFrame,
    Parser,
    Status,
    SubscribeAck,
    Unparsed,
)
from bot.log import get_logger
from bot.market.backoff import Backoff

__all__ = [
    "ExecutionsSubscribed",
    "PrivateConnected",
    "PrivateConnectionLost",
    "PrivateDisconnected",
    "PrivateEvent",
    "PrivateFeed",
    "PrivateFeedStats",
    "PrivateSink",
    "SequenceGap",
    "SequenceTracker",
    "TokenRejected",
    "should_reconnect",
]

_MAX_MESSAGE: Final = 16 * 2**20
_LOG_EVERY: Final = 100  # after the first few, log one bad frame in this many
_CHANNEL: Final = "executions"

log = get_logger(component="private_feed")


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class PrivateConnected:
    url: str
    connection: int  # 1 for the first connection, then counting


@dataclass(frozen=True, slots=True)
class PrivateDisconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class ExecutionsSubscribed:
    """The executions subscription is live; reconcile against ``snapshot``."""

    snapshot: ExecutionsFrame | None


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Update ``received`` arrived where ``expected`` was due: reconcile over REST."""

    expected: int
    received: int


PrivateEvent = (
    ExecutionsFrame | PrivateConnected | PrivateDisconnected | ExecutionsSubscribed | SequenceGap
)
PrivateSink = Callable[[PrivateEvent], None]


# ------------------------------------------------------------------------------ errors


class PrivateConnectionLost(TransientError):
    """The private WebSocket failed to open, closed, went silent or lost its subscription."""

    def __init__(self, reason: str, close_code: int | None = None) -> None:
        self.reason = reason
        self.close_code = close_code
        super().__init__("WS:connection lost", reason)


class TokenRejected(PrivateConnectionLost):
    """Kraken refused the token (``EAPI:Invalid token``, ``ESession:Invalid session``).

    ``after_live``: the subscription had been live on it (revoked or expired mid-session),
    so a new token is minted at once; otherwise the reconnect waits out the backoff.
    """

    def __init__(self, error: TokenError, *, after_live: bool) -> None:
        self.error = error
        self.after_live = after_live
        super().__init__(f"token refused: {error.code}")


def should_reconnect(error: BotError) -> bool:
    """The default reconnect decision: retry everything but a configuration error."""
    return not isinstance(error, ConfigError)


def _translate(exc: BaseException) -> BotError:
    """A websockets or socket exception as ours (the boundary of the library)."""
    if isinstance(exc, InvalidURI):
        return ConfigError(f"venue.ws_private_url: {exc}")
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None:
            return PrivateConnectionLost(f"connection dropped ({exc})")
        return PrivateConnectionLost(f"closed by the server ({exc})", exc.rcvd.code)
    if isinstance(exc, InvalidStatus):
        return PrivateConnectionLost(f"handshake refused: HTTP {exc.response.status_code}")
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return PrivateConnectionLost(text)


# ------------------------------------------------------------------------------ pure parts


class SequenceTracker:
    """The ``sequence`` check of one subscription (pure)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: int | None = None

    def check(self, sequence: int | None) -> SequenceGap | None:
        """Record ``sequence``; the gap it reveals, if any. None (no field) is not checked."""
        if sequence is None:
            return None
        last, self.last = self.last, sequence
        if last is None or sequence == last + 1:
            return None
        return SequenceGap(last + 1, sequence)


@dataclass(slots=True)
class PrivateFeedStats:
    """Counters for /metrics. ``last_frame_at`` is on the feed's clock (monotonic)."""

    frames: int = 0
    execution_frames: int = 0
    unparsed: int = 0
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    token_failures: int = 0  # minting failed, or Kraken refused a token
    subscriptions: int = 0
    sequence_gaps: int = 0
    last_frame_at: float | None = None


class _Session:
    """What lives and dies with one connection."""

    __slots__ = ("last_frame", "live", "opened_at", "probed", "sequence", "ws")

    def __init__(self, ws: ClientConnection, now: float) -> None:
        self.ws = ws
        self.opened_at = now
        self.last_frame = now
        self.probed = -1.0  # the last_frame a watchdog ping was sent for
        self.live = False  # ExecutionsSubscribed sent on this connection
        self.sequence = SequenceTracker()


# ------------------------------------------------------------------------------ the feed


class PrivateFeed:
    """The ``executions`` subscription on ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        tokens: TokenSource,
        sink: PrivateSink,
        *,
        clock: Clock | None = None,
        stale_after_s: float = 10.0,
        backoff: Backoff | None = None,
        snap_orders: bool = True,
        snap_trades: bool = True,
        subscribe_timeout_s: float = 10.0,
        healthy_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        reconnect: Callable[[BotError], bool] = should_reconnect,
    ) -> None:
        if stale_after_s <= 0 or subscribe_timeout_s <= 0:
            raise ValueError("stale_after_s and subscribe_timeout_s must be positive")
        self.url = url
        self._tokens = tokens
        self._sink = sink
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._stale_after_s = stale_after_s
        self._backoff = backoff if backoff is not None else Backoff()
        self._snap_orders = snap_orders
        self._snap_trades = snap_trades
        self._subscribe_timeout_s = subscribe_timeout_s
        self._healthy_after_s = healthy_after_s
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._reconnect = reconnect
        self._parser = Parser(InstrumentTable())  # execution reports need no instruments
        self._req_ids = itertools.count(1)
        self._session: _Session | None = None
        self.stats = PrivateFeedStats()

    @property
    def subscribed(self) -> bool:
        """The executions subscription is live (for the readiness gate)."""
        return self._session is not None and self._session.live

    @property
    def connected(self) -> bool:
        return self._session is not None

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame, None before the first."""
        last = self.stats.last_frame_at
        return None if last is None else self._clock.monotonic() - last

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Mint, connect, subscribe, and do it again after every loss, until cancelled."""
        task = asyncio.current_task()
        while True:
            error, healthy = await self._connect_once()
            if task is not None and task.cancelling():
                # A TaskGroup whose children failed as we were cancelled reports their
                # errors, not the cancellation: never swallow it.
                raise asyncio.CancelledError
            if not self._reconnect(error):
                log.error("private_feed_giving_up", url=self.url, error=str(error))
                raise error
            self.stats.reconnects += 1
            if isinstance(error, TokenRejected) and error.after_live:
                log.warning("private_feed_reconnecting", reason=str(error), delay_s=0.0)
                continue  # a token revoked mid-session: a new one at once
            if healthy:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            log.warning("private_feed_reconnecting", reason=str(error), delay_s=delay)
            await self._clock.sleep(delay)

    async def _connect_once(self) -> tuple[BotError, bool]:
        """One connection, token first: why it ended, and whether it was healthy."""
        number = self.stats.connects + 1
        with structlog.contextvars.bound_contextvars(conn=number):
            try:
                token = await self._tokens.fresh()
            except BotError as exc:
                self.stats.token_failures += 1
                self.stats.connect_failures += 1
                log.warning("private_feed_token_failed", error=str(exc))
                return exc, False
            opened_at: float | None = None
            lost: BotError = PrivateConnectionLost("connection ended")
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
                    lost = await self._session_on(ws, number, token, opened_at)
            except (WebSocketException, OSError, TimeoutError) as exc:
                if opened_at is None:  # the connection never opened
                    self.stats.connect_failures += 1
                    failed = _translate(exc)
                    log.warning("private_feed_connect_failed", url=self.url, error=str(failed))
                    return failed, False
                # else: the closing handshake of a connection already lost failed too
        return lost, self._clock.monotonic() - opened_at >= self._healthy_after_s

    async def _session_on(
        self, ws: ClientConnection, number: int, token: str, now: float
    ) -> BotError:
        self.stats.connects = number
        log.info("private_feed_connected", url=self.url)
        session = self._session = _Session(ws, now)
        lost = PrivateConnectionLost("connection ended")
        try:
            self._sink(PrivateConnected(self.url, number))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watch(session))
                # The reader is the group's body, not a child: the body must be awaiting
                # when a child fails (Python 3.11's TaskGroup leaks a cancellation request
                # on its parent if a child fails while __aexit__ waits).
                await self._read(session, token)
        except* PrivateConnectionLost as group:  # anything else (a bug, the sink's) propagates
            lost = _first(group)
        finally:
            self._session = None  # shutting down too: not subscribed, but no event
        log.warning("private_feed_disconnected", url=self.url, reason=lost.reason)
        self._sink(PrivateDisconnected(lost.reason))
        return lost

    # -- the connection's tasks ----------------------------------------------------------

    async def _read(self, s: _Session, token: str) -> None:
        request = codec.subscribe_executions(
            token,
            req_id=next(self._req_ids),
            snap_orders=self._snap_orders,
            snap_trades=self._snap_trades,
        )
        try:
            await s.ws.send(request, text=True)
            async for raw in s.ws:
                self._on_message(s, raw)
        except ConnectionClosed as exc:
            raise _translate(exc) from exc
        code = s.ws.close_code
        raise PrivateConnectionLost(f"closed by the server (code {code})", code)

    async def _watch(self, s: _Session) -> None:
        """Close a connection silent for ``stale_after_s``, or not subscribed in time."""
        stale = self._stale_after_s
        while True:
            now = self._clock.monotonic()
            if not s.live and now - s.opened_at >= self._subscribe_timeout_s:
                raise PrivateConnectionLost(
                    f"not subscribed {self._subscribe_timeout_s:.3g} s after connecting"
                )
            last = s.last_frame
            silent = now - last
            if silent >= stale:
                log.warning("private_feed_stale", silent_s=round(silent, 3))
                raise PrivateConnectionLost(f"no frame for {silent:.3g} s")
            if silent >= stale / 2 and s.probed != last:
                s.probed = last
                await self._send(s, codec.ping(req_id=next(self._req_ids)))
            wake = last + (stale if s.probed == last else stale / 2)
            if not s.live:
                wake = min(wake, s.opened_at + self._subscribe_timeout_s)
            await self._clock.sleep(max(wake - now, 0.0))

    async def _send(self, s: _Session, request: bytes) -> None:
        try:
            await s.ws.send(request, text=True)
        except ConnectionClosed as exc:
            raise _translate(exc) from exc

    # -- frames in (synchronous) ---------------------------------------------------------

    def _on_message(self, s: _Session, raw: str | bytes) -> None:
        now = self._clock.monotonic()
        stats = self.stats
        stats.frames += 1
        stats.last_frame_at = s.last_frame = now
        for event in self._parser.parse_safe(raw):
            if type(event) is ExecutionsFrame:
                self._on_executions(s, event)
            elif type(event) is SubscribeAck:
                self._on_subscribe_ack(s, event)
            elif type(event) is Unparsed:
                self._on_unparsed(event)
            elif type(event) is Status:
                log.info("private_feed_status", system=event.system)
            # heartbeats, pongs and other answers: liveness only

    def _on_subscribe_ack(self, s: _Session, ack: SubscribeAck) -> None:
        if ack.channel not in (None, _CHANNEL):
            return  # not ours: this socket subscribes to nothing else
        if ack.success:
            log.info("executions_subscribe_ack", maxratecount=ack.maxratecount)
            if not (self._snap_orders or self._snap_trades):
                self._go_live(s, None)  # no snapshot will come
            return
        error = ack.exception()
        if isinstance(error, TokenError):
            self.stats.token_failures += 1
            log.warning("private_feed_token_refused", error=error.code, live=s.live)
            raise TokenRejected(error, after_live=s.live)
        raise PrivateConnectionLost(f"subscribe refused: {ack.error}")

    def _on_executions(self, s: _Session, frame: ExecutionsFrame) -> None:
        self.stats.execution_frames += 1
        if not s.live:
            if frame.snapshot:
                s.sequence.check(frame.sequence)  # the baseline
                self._go_live(s, frame)
                return
            self._go_live(s, None)  # an update first: no snapshot is coming
        gap = s.sequence.check(frame.sequence)
        if gap is not None:
            self.stats.sequence_gaps += 1
            log.warning("executions_sequence_gap", expected=gap.expected, received=gap.received)
            self._sink(gap)
        self._sink(frame)

    def _go_live(self, s: _Session, snapshot: ExecutionsFrame | None) -> None:
        s.live = True
        self.stats.subscriptions += 1
        reports = len(snapshot.reports) if snapshot is not None else None
        log.info("executions_subscribed", snapshot_reports=reports)
        self._sink(ExecutionsSubscribed(snapshot))

    def _on_unparsed(self, event: Unparsed) -> None:
        self.stats.unparsed += 1
        n = self.stats.unparsed
        if n <= 10 or n % _LOG_EVERY == 0:
            log.warning("frame_unparsed", count=n, error=event.reason, frame=event.excerpt)


def _first(group: BaseExceptionGroup[PrivateConnectionLost]) -> PrivateConnectionLost:
    first = group.exceptions[0]
    return first if isinstance(first, PrivateConnectionLost) else _first(first)
