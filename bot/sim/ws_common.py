"""What the simulator's two WebSocket endpoints share: the connection, its send queue, the
status / heartbeat / ping behaviour of Kraken WS v2, and the frame helpers (KRAKEN.md §5.1, §5.2).

``WsSession`` is one accepted WebSocket. It implements the venue's ``WsConnection``
protocol (the fault hooks ``drop``, ``silence``, ``corrupt_checksum``, ``revoke_token``)
and owns the connection's tasks under one ``TaskGroup``:

- the reader, which decodes each request and hands it to the endpoint's ``handle``;
- the writer, which drains the send queue. Producers (bus listeners, request handlers)
  never await: ``send`` appends the frame's ``bytes`` to a deque and wakes the writer, which
  writes everything queued before it sleeps again. A client that falls ``max_queue``
  frames behind is disconnected, as a real exchange drops a slow consumer;
- the heartbeat: once any channel is subscribed, ``{"channel":"heartbeat"}`` is sent when a
  second of the venue's clock passed with no other channel message (responses to requests
  do not count).

On connect the session sends Kraken's ``status`` frame with the venue's system status, and
another whenever that status changes (``send_status``). ``ping`` is answered with ``pong``
(``req_id``, ``time_in``, ``time_out``). Requests that are not JSON objects get Kraken's
``Malformed request`` error; unknown methods get ``Method not found`` (our wording).

This module owns the connection mechanics and the envelopes (acks, errors, timestamps);
the channels live in ``ws_public`` and ``ws_private``, the book frames in ``book_stream``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from bot.kraken.codec import dumps

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = [
    "API_VERSION",
    "EVERY_CONNECTION",
    "MAX_QUEUE",
    "SERVER_VERSION",
    "WsSession",
    "error_frame",
    "rfc3339",
    "rfc3339_ns",
    "venue_of",
]

API_VERSION: Final = "v2"
SERVER_VERSION: Final = "2.0.10-krakenbot-sim"
MAX_QUEUE: Final = 200_000
HEARTBEAT_S: Final = 1.0
ERR_MALFORMED: Final = "Malformed request"
ERR_METHOD: Final = "Method not found"
# what every connection serves, whatever its endpoint (the rest is each endpoint's own)
EVERY_CONNECTION: Final = ("status", "heartbeat", "ping")
_HEARTBEAT: Final = b'{"channel":"heartbeat"}'
_C: Final = ord("c")
_ENDS: Final = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
HIGH_WATER: Final = 1 << 20
_BATCH: Final = 4096
_DRAIN_POLL_S: Final = 0.001
_FIN_TEXT: Final = 0x81
_SMALL: Final = tuple(bytes((_FIN_TEXT, n)) for n in range(126))


def _header(n: int) -> bytes:
    """A FIN text frame header for an unmasked payload of ``n`` >= 126 bytes."""
    if n < 1 << 16:
        return bytes((_FIN_TEXT, 126)) + n.to_bytes(2, "big")
    return bytes((_FIN_TEXT, 127)) + n.to_bytes(8, "big")


_connection_ids = itertools.count(1)


def venue_of(request: web.Request) -> SimVenue:
    """The venue the application serves (``request.app[VENUE_KEY]``)."""
    from bot.sim.venue import VENUE_KEY  # the server module imports the handlers

    return request.app[VENUE_KEY]


_second: list[Any] = [None, ""]  # the last second formatted, and its text


def rfc3339(ns: int) -> str:
    """Kraken's timestamp text for ns since the epoch: ``2023-10-06T17:35:55.440295Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    if _second[0] != seconds:
        _second[0] = seconds
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{_second[1]}.{rest // 1000:06d}Z"


def rfc3339_ns(ns: int) -> str:
    """``2023-10-06T17:35:00.279389650Z``: nanoseconds, as the level3 and ohlc pages print
    some of their times."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:09d}Z"


def error_frame(
    method: str, error: str, req_id: Any, time_in: str, time_out: str, **extra: Any
) -> bytes:
    """A failed response: ``{"error", "method", "success": false, "time_in", "time_out"}``."""
    body: dict[str, Any] = {"error": error, "method": method, "success": False}
    body.update(extra)
    if req_id is not None:
        body["req_id"] = req_id
    body["time_in"] = time_in
    body["time_out"] = time_out
    return dumps(body)


class WsSession:
    """One WebSocket connection of the simulator (see the module docstring)."""

    kind = "public"

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, venue: SimVenue, *, max_queue: int
    ) -> None:
        self.ws = ws
        self.request = request
        self.venue = venue
        self.clock = venue.clock
        self.connection_id = next(_connection_ids)
        self.conn_id = str(self.connection_id)
        self.account: str | None = None
        self.max_queue = max_queue
        self.subscribed = False
        """True once any channel is subscribed: heartbeats start."""
        self.frames_sent = 0
        self.updates = 0
        """Channel messages queued (responses to requests do not count as activity)."""
        self.closed = False
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._silent_until = 0.0
        self._corrupt: set[str | None] = set()

    # -- sending ---------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Queue one text frame (never blocks). Dropped while silenced or closed."""
        if self.closed or (self._silent_until and self._silenced()):
            return
        if frame[2] == _C:  # b'{"channel"...': a channel message, not a response
            self.updates += 1
        queue = self._queue
        queue.append(frame)
        if len(queue) > self.max_queue:
            self._overflow()
            return
        if not self._wake.is_set():
            self._wake.set()

    @property
    def queued(self) -> int:
        """Frames waiting for the writer."""
        return len(self._queue)

    def send_obj(self, obj: dict[str, Any]) -> None:
        self.send(dumps(obj))

    def send_book(self, symbol: str, frame: bytes, checksum: int) -> None:
        """Queue a shared book frame; a pending ``corrupt_checksum`` fault rewrites it."""
        if self._corrupt and (symbol in self._corrupt or None in self._corrupt):
            self._corrupt.discard(symbol if symbol in self._corrupt else None)
            wrong = (checksum + 1) & 0xFFFFFFFF
            frame = frame.replace(b'"checksum":%d,' % checksum, b'"checksum":%d,' % wrong, 1)
        self.send(frame)

    def now(self) -> str:
        return rfc3339(self.clock.time_ns())

    def _silenced(self) -> bool:
        if self.clock.monotonic() < self._silent_until:
            return True
        self._silent_until = 0.0
        return False

    def _overflow(self) -> None:
        self._queue.clear()
        self.closed = True
        self._abort()

    # -- faults (the venue's WsConnection protocol) ---------------------------------------

    async def drop(self) -> None:
        """Close the socket abruptly: no close frame, no handshake."""
        self.closed = True
        self._queue.clear()
        self._abort()

    def silence(self, seconds: float) -> None:
        """Send nothing at all (heartbeats included) for ``seconds``; frames are lost."""
        self._silent_until = self.clock.monotonic() + seconds
        self._queue.clear()

    def corrupt_checksum(self, symbol: str | None = None) -> None:
        """The next book frame (of ``symbol``, or of any symbol) carries a wrong checksum."""
        self._corrupt.add(symbol)

    def revoke_token(self) -> None:
        """Private endpoint only (``ws_private`` overrides it); nothing to do here."""

    def _abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self._wake.set()

    # -- the connection's life ----------------------------------------------------------------

    def status_frame(self, system: str | None = None) -> bytes:
        """Kraken's ``status`` frame: the venue's system status unless ``system`` is given."""
        data = {
            "api_version": API_VERSION,
            "connection_id": self.connection_id,
            "system": system or self.venue.system_status,
            "version": SERVER_VERSION,
        }
        return dumps({"channel": "status", "type": "update", "data": [data]})

    def send_status(self, system: str) -> None:
        """The venue's system status changed (the venue's ``WsConnection`` protocol)."""
        self.send(self.status_frame(system))

    async def serve(self) -> None:
        """Run the connection until the client leaves or a fault drops it."""
        self.send(self.status_frame())
        try:
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self._writer())
                heartbeat = tg.create_task(self._heartbeat())
                try:
                    await self._reader()
                finally:
                    self.closed = True
                    writer.cancel()
                    heartbeat.cancel()
        finally:
            self.closed = True
            self.release()

    def release(self) -> None:
        """Release what the endpoint holds (subscriptions, tokens); called once at the end."""

    async def close(self) -> None:
        """Close cleanly, as on a server shutdown: a close frame with 1001 (going away)."""
        self.closed = True  # nothing may follow the close frame
        self._queue.clear()
        self._wake.set()
        await self.ws.close(code=WSCloseCode.GOING_AWAY)

    async def _reader(self) -> None:
        ws = self.ws
        while not self.closed:
            msg = await ws.receive()
            if msg.type == WSMsgType.TEXT:
                self._dispatch(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._dispatch(msg.data.decode("utf-8", "replace"))
            elif msg.type in _ENDS:
                return

    async def _writer(self) -> None:
        """Drain the queue: every frame queued so far goes out in one ``transport.write``.

        aiohttp's ``send_frame`` costs an await per frame; the frames are framed here instead
        (server frames are unmasked: a 2-, 4- or 10-byte header, RFC 6455 §5.2) and written
        in one call. Compression is off, so these frames and the ones aiohttp writes itself
        (pong, close) interleave safely, whole frame by whole frame. Backpressure: while
        the transport holds more than ``HIGH_WATER`` bytes unsent, the writer waits.
        """
        transport = self.request.transport
        queue = self._queue
        wake = self._wake
        popleft = queue.popleft
        while not self.closed and transport is not None:
            await wake.wait()
            wake.clear()
            while queue and not self.closed:
                if transport.is_closing():
                    self.closed = True
                    return
                parts: list[bytes] = []
                append = parts.append
                for _ in range(min(len(queue), _BATCH)):
                    frame = popleft()
                    n = len(frame)
                    append(_SMALL[n] if n < 126 else _header(n))
                    append(frame)
                self.frames_sent += len(parts) // 2
                transport.write(b"".join(parts))
                while transport.get_write_buffer_size() > HIGH_WATER:
                    if transport.is_closing():
                        self.closed = True
                        return
                    await asyncio.sleep(_DRAIN_POLL_S)
        self.closed = True

    async def _heartbeat(self) -> None:
        last = self.updates
        while not self.closed:
            await self.clock.sleep(HEARTBEAT_S)
            if self.subscribed and self.updates == last:
                self.send(_HEARTBEAT)
            last = self.updates

    # -- requests -------------------------------------------------------------------------------

    def _dispatch(self, text: str) -> None:
        time_in = self.now()
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        if type(msg) is not dict:
            self.send(error_frame("error", ERR_MALFORMED, None, time_in, self.now()))
            return
        method = msg.get("method")
        req_id = msg.get("req_id")
        if type(req_id) is not int:
            req_id = None
        if method == "ping":  # one of EVERY_CONNECTION
            pong: dict[str, Any] = {"method": "pong"}
            if req_id is not None:
                pong["req_id"] = req_id
            pong["time_in"] = time_in
            pong["time_out"] = self.now()
            self.send_obj(pong)
            return
        params = msg.get("params", {})
        if type(method) is not str or type(params) is not dict:
            self.send(error_frame(str(method), ERR_MALFORMED, req_id, time_in, self.now()))
            return
        if not self.handle(method, params, req_id, time_in, text):
            self.send(error_frame(method, ERR_METHOD, req_id, time_in, self.now()))

    def handle(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> bool:
        """Answer one request; False if the endpoint has no such method."""
        return False

    def ack(
        self,
        method: str,
        result: dict[str, Any] | None,
        req_id: int | None,
        time_in: str,
        **extra: Any,
    ) -> None:
        """Queue a successful response in Kraken's shape."""
        body: dict[str, Any] = {"method": method}
        if result is not None:
            body["result"] = result
        body["success"] = True
        body.update(extra)
        if req_id is not None:
            body["req_id"] = req_id
        body["time_in"] = time_in
        body["time_out"] = self.now()
        self.send_obj(body)

    def ack_list(
        self, method: str, result: list[dict[str, Any]], req_id: int | None, time_in: str
    ) -> None:
        """Queue a successful response whose ``result`` is a list (``batch_add``)."""
        body: dict[str, Any] = {"method": method, "result": result, "success": True}
        if req_id is not None:
            body["req_id"] = req_id
        body["time_in"] = time_in
        body["time_out"] = self.now()
        self.send_obj(body)

    def fail(self, method: str, error: str, req_id: int | None, time_in: str, **extra: Any) -> None:
        """Queue a failed response in Kraken's shape."""
        self.send(error_frame(method, error, req_id, time_in, self.now(), **extra))


async def accept(
    request: web.Request, factory: Callable[[web.WebSocketResponse], WsSession]
) -> web.WebSocketResponse:
    """Upgrade ``request``, register the session with the venue, serve it, unregister."""
    ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 20, writer_limit=1 << 20)
    await ws.prepare(request)
    session = factory(ws)
    session.venue.register(session)
    try:
        await session.serve()
    finally:
        session.venue.unregister(session)
    return ws
