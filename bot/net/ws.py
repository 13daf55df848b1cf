"""One reconnecting WebSocket: the connection life every feed shares, written once.

``ReconnectingSocket(url, handler, ...).run()`` keeps one connection open until it is
cancelled: connect, hand every message to the handler, watch for silence, and after any
loss wait a capped, jittered backoff (``bot.core.backoff``) and connect again. What the
connection is *for* (subscriptions, books, tokens, sequences, a recorder's file) is the
handler's, through five hooks, all called on the event loop in this order:

=========================  ===============================================================
hook                       when
=========================  ===============================================================
``prepare()``              before each connect (async; e.g. mint a WebSocket token). A
                           ``BotError`` it raises counts as a failed connect
``on_open(session)``       the connection opened; queue the first requests
                           (``session.queue``) and start per-connection tasks
                           (``session.spawn``: they die with the connection)
``on_message(s, raw, t)``  each message, with its monotonic receive time ``t``; raise a
                           ``ConnectionLost`` to end the connection (a refused token)
``ping(session)``          the connection has been silent ``stale_after_s / 2``: the probe
                           to send (Kraken's app-level ping), or None for none
``on_close(error)``        the connection ended: ``error`` says why, or None when ``run``
                           was cancelled. Once per opened connection, so ``on_open`` and
                           ``on_close`` alternate: the gap between them is where frames
                           were missed (a recorder writes it down)
=========================  ===============================================================

Liveness. After ``stale_after_s / 2`` without any frame the watchdog sends the handler's
probe (its answer is a frame); after ``stale_after_s`` the connection is dead
(``SocketStale``): it is closed and a new one opened. Websockets' own pings are off:
exchanges send application heartbeats, and a silent connection must be noticed even if
its TCP peer still answers.

Reconnects. Forever, unless ``reconnect(error)`` says no (default: everything but a
``ConfigError``, which a malformed URL is). The backoff starts again from its shortest
delay once a connection has lasted ``healthy_after_s``; a ``ConnectionLost`` with
``retry_now`` set (a token revoked mid-session) reconnects at once. Every connect, loss
and reconnect is logged as ``<name>_connected`` and so on.

Errors. websockets and socket exceptions are translated here into ``ConnectionLost`` (a
``TransientError``) or ``ConfigError`` (naming ``url_key``); nothing above this module
sees websockets. Each connection's tasks (the reader, the watchdog, the handler's own) live
in one ``TaskGroup``; ``CancelledError`` always propagates, and a failure in a hook that
is not a ``ConnectionLost`` (a bug) propagates too, so a supervisor sees it.

``stats`` (``SocketStats``, or a subclass the handler adds its own counters to) counts
frames, unparsed frames (``note_unparsed``), connects, reconnects and failed connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.protocol import State
from websockets.uri import parse_uri

from bot.core.backoff import Backoff
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, ConfigError, TransientError
from bot.core.log import get_logger

_OPEN: Final = State.OPEN

__all__ = [
    "ConnectionLost",
    "ReconnectingSocket",
    "Session",
    "SocketHandler",
    "SocketStale",
    "SocketStats",
    "check_url",
    "should_reconnect",
    "translate",
]

MAX_MESSAGE: Final = 16 * 2**20  # Kraken's instrument snapshot alone is ~0.4 MB
_LOG_EVERY: Final = 100  # after the first few, log one bad frame in this many
_FIRST_LOGGED: Final = 10


class ConnectionLost(TransientError):
    """A WebSocket failed to open, closed, went silent, or its handler ended it: reconnect.

    ``retry_now``: reconnect without waiting out the backoff (a token revoked mid-session).
    """

    retry_now: bool = False

    def __init__(self, reason: str, close_code: int | None = None) -> None:
        self.reason = reason
        self.close_code = close_code
        super().__init__("WS:connection lost", reason)


class SocketStale(ConnectionLost):
    """No frame (not even a heartbeat or a pong) for ``stale_after_s``."""


def should_reconnect(error: BotError) -> bool:
    """The default reconnect decision: retry everything but a configuration error."""
    return not isinstance(error, ConfigError)


def check_url(url: str, url_key: str = "url") -> None:
    """Raise ``ConfigError`` (naming ``url_key``) unless ``url`` is a usable ws(s):// URL:
    checked up front, so a bad one stops a command at start, not a driver mid-run."""
    try:
        parse_uri(url)
    except (InvalidURI, ValueError) as exc:
        raise ConfigError(f"{url_key}: not a usable WebSocket URL ({exc})") from None


def translate(exc: BaseException, url_key: str = "url") -> BotError:
    """A websockets or socket exception as ours (the boundary of the library)."""
    if isinstance(exc, InvalidURI):
        return ConfigError(f"{url_key}: {exc}")
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None:
            return ConnectionLost(f"connection dropped ({exc})")
        return ConnectionLost(f"closed by the server ({exc})", exc.rcvd.code)
    if isinstance(exc, InvalidStatus):
        return ConnectionLost(f"handshake refused: HTTP {exc.response.status_code}")
    return ConnectionLost(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


@dataclass
class SocketStats:
    """Counters for /metrics. ``last_frame_at`` is on the socket's clock (monotonic).

    A plain (not slotted) dataclass so that a feed's stats can extend this one and another
    part's (``bot.market.frames.FrameStats``) in one object.
    """

    frames: int = 0
    unparsed: int = 0
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    last_frame_at: float | None = None


class Session:
    """What lives and dies with one connection; handed to the handler's hooks."""

    __slots__ = ("_tg", "_ws", "last_frame", "number", "opened_at", "outbox", "probed")

    def __init__(
        self, ws: ClientConnection, tg: asyncio.TaskGroup, number: int, now: float
    ) -> None:
        self._ws = ws
        self._tg = tg
        self.number = number  # 1 for the first connection, then counting
        self.opened_at = now
        self.last_frame = now
        self.probed = -1.0  # the last_frame a watchdog probe was sent for
        self.outbox: list[bytes] = []

    def queue(self, request: bytes) -> None:
        """Send ``request`` as soon as the reader is free (after the current message)."""
        self.outbox.append(request)

    async def send(self, request: bytes) -> None:
        """Send ``request`` now; a closed connection raises ``ConnectionLost``."""
        try:
            await self._ws.send(request, text=True)
        except ConnectionClosed as exc:
            raise translate(exc) from exc

    def write_now(self, request: bytes) -> bool:
        """Write ``request`` as one text frame now, synchronously (no ``await``): what
        ``send`` does when nothing holds it up. False, with nothing written, when ``send``
        would have to wait or fail (the connection is not open, a close is expected, a
        fragmented message is being sent); the caller then awaits ``send``. Flow control is
        left to the next ``send``: one small frame past the high-water mark is buffered.
        A write the transport refuses raises ``ConnectionLost`` (it may have left)."""
        ws = self._ws
        protocol = ws.protocol
        if (
            protocol.state is not _OPEN
            or ws.send_in_progress is not None
            or protocol.close_expected()
        ):
            return False
        protocol.send_text(request)
        transport = ws.transport
        try:
            for data in protocol.data_to_send():
                transport.write(data)
        except Exception as exc:  # OSError, or a closed transport's RuntimeError
            raise ConnectionLost(f"write failed: {exc}") from exc
        return True

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` for as long as this connection lives; a ``ConnectionLost`` it raises
        ends the connection."""
        self._tg.create_task(coro)

    async def flush(self) -> None:
        out, self.outbox = self.outbox, []
        for request in out:
            await self.send(request)


class SocketHandler(Protocol):
    """What a user of ``ReconnectingSocket`` provides (see the module docstring)."""

    async def prepare(self) -> None: ...

    def on_open(self, session: Session) -> None: ...

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None: ...

    def ping(self, session: Session) -> bytes | None: ...

    def on_close(self, error: BotError | None) -> None: ...


class ReconnectingSocket:
    """One WebSocket to ``url``, kept open for ``handler``; see the module docstring."""

    def __init__(
        self,
        url: str,
        handler: SocketHandler,
        *,
        name: str,
        url_key: str = "url",
        clock: Clock | None = None,
        stats: SocketStats | None = None,
        stale_after_s: float = 10.0,
        backoff: Backoff | None = None,
        reconnect: Callable[[BotError], bool] = should_reconnect,
        healthy_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        self.url = url
        self.name = name
        self.stats = stats if stats is not None else SocketStats()
        self.stale_after_s = stale_after_s
        self._handler = handler
        self._url_key = url_key
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._backoff = backoff if backoff is not None else Backoff()
        self._reconnect = reconnect
        self._healthy_after_s = healthy_after_s
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._max_message = max_message
        self.session: Session | None = None
        """The open connection, if any (set by ``run`` alone; read on every order write)."""
        self._log = get_logger(component=name)

    @property
    def connected(self) -> bool:
        return self.session is not None

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame (the feed's lag), None before the first."""
        last = self.stats.last_frame_at
        return None if last is None else self._clock.monotonic() - last

    def note_unparsed(self, error: str, excerpt: str) -> None:
        """Count a frame the handler could not use; log the first ten, then one in 100."""
        self.stats.unparsed += 1
        n = self.stats.unparsed
        if n <= _FIRST_LOGGED or n % _LOG_EVERY == 0:
            self._log.warning("frame_unparsed", count=n, error=error, frame=excerpt)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until cancelled (or told not to retry)."""
        task = asyncio.current_task()
        name = self.name
        while True:
            error, healthy = await self._connect_once()
            if task is not None and task.cancelling():
                # A TaskGroup whose children failed as we were cancelled reports their
                # errors, not the cancellation: never swallow it.
                raise asyncio.CancelledError
            if not self._reconnect(error):
                self._log.error(f"{name}_giving_up", url=self.url, error=str(error))
                raise error
            self.stats.reconnects += 1
            if isinstance(error, ConnectionLost) and error.retry_now:
                self._log.warning(f"{name}_reconnecting", reason=str(error), delay_s=0.0)
                continue
            if healthy:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            self._log.warning(
                f"{name}_reconnecting", url=self.url, reason=str(error), delay_s=delay
            )
            await self._clock.sleep(delay)

    async def _connect_once(self) -> tuple[BotError, bool]:
        """One connection, from opening to its end: why it ended, and if it was healthy."""
        number = self.stats.connects + 1
        with structlog.contextvars.bound_contextvars(conn=number):
            try:
                await self._handler.prepare()
            except BotError as exc:
                self.stats.connect_failures += 1
                return exc, False
            opened_at: float | None = None
            lost: BotError = ConnectionLost("connection ended")
            try:
                async with connect(
                    self.url,
                    open_timeout=self._open_timeout_s,
                    close_timeout=self._close_timeout_s,
                    ping_interval=None,  # liveness is the watchdog's, on the exchange's frames
                    max_size=self._max_message,
                    proxy=None,
                ) as ws:
                    opened_at = self._clock.monotonic()
                    lost = await self._session_on(ws, number, opened_at)
            except (WebSocketException, OSError, TimeoutError) as exc:
                if opened_at is None:  # the connection never opened
                    self.stats.connect_failures += 1
                    failed = translate(exc, self._url_key)
                    self._log.warning(
                        f"{self.name}_connect_failed", url=self.url, error=str(failed)
                    )
                    return failed, False
                # else: the closing handshake of a connection already lost failed too
        return lost, self._clock.monotonic() - opened_at >= self._healthy_after_s

    async def _session_on(self, ws: ClientConnection, number: int, now: float) -> BotError:
        """Run one open connection until it ends; ``on_close`` is told why."""
        self.stats.connects = number
        self._log.info(f"{self.name}_connected", url=self.url)
        lost: BotError = ConnectionLost("connection ended")
        try:
            try:
                async with asyncio.TaskGroup() as tg:
                    session = self.session = Session(ws, tg, number, now)
                    self._handler.on_open(session)
                    tg.create_task(self._watch(session))
                    # The reader is the group's body, not a child: the body must be awaiting
                    # when a child fails (Python 3.11's TaskGroup leaks a cancellation
                    # request on its parent if a child fails while __aexit__ waits).
                    await self._read(session, ws)
            except* ConnectionLost as group:  # anything else (a bug, a hook's) propagates
                lost = _first(group)
            finally:
                self.session = None
        except asyncio.CancelledError:
            self._handler.on_close(None)  # shutting down: the handler tidies up, no events
            raise
        reason = lost.reason if isinstance(lost, ConnectionLost) else str(lost)
        self._log.warning(f"{self.name}_disconnected", url=self.url, reason=reason)
        self._handler.on_close(lost)
        return lost

    # -- the connection's tasks ----------------------------------------------------------

    async def _read(self, s: Session, ws: ClientConnection) -> None:
        stats = self.stats
        monotonic = self._clock.monotonic
        on_message = self._handler.on_message
        try:
            await s.flush()
            async for raw in ws:
                now = monotonic()
                stats.frames += 1
                stats.last_frame_at = s.last_frame = now
                on_message(s, raw, now)
                if s.outbox:
                    await s.flush()
        except ConnectionClosed as exc:
            raise translate(exc) from exc
        code = ws.close_code
        raise ConnectionLost(f"closed by the server (code {code})", code)

    async def _watch(self, s: Session) -> None:
        """Close a connection that has said nothing for ``stale_after_s``."""
        stale = self.stale_after_s
        while True:
            now = self._clock.monotonic()
            last = s.last_frame
            silent = now - last
            if silent >= stale:
                self._log.warning(f"{self.name}_stale", silent_s=round(silent, 3))
                raise SocketStale(f"no frame for {silent:.3g} s")
            if silent >= stale / 2 and s.probed != last:
                s.probed = last
                probe = self._handler.ping(s)
                if probe is not None:
                    await s.send(probe)
            wake = last + (stale if s.probed == last else stale / 2)
            await self._clock.sleep(max(wake - now, 0.0))


def _first(group: BaseExceptionGroup[ConnectionLost]) -> ConnectionLost:
    first = group.exceptions[0]
    return first if isinstance(first, ConnectionLost) else _first(first)
