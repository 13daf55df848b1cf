"""One kept-alive HTTP/1.1 connection for private REST calls: the order path's transport.

Why not aiohttp here. ``aiohttp.ClientSession.post`` spends far longer between the call and
its write of the request than writing the same bytes to a kept-alive socket does
(docs/contributors/benchmarks.md has the figures, dated): on the way to an AddOrder that is
most of the tick-to-trade time. Private calls are serialised per API key anyway (the nonce rule, see
``bot.kraken.rest``), so one connection per key is all they need, and the request is always
the same shape: a POST with a few headers and a small body. ``Http1Connection`` writes that
request as one ``transport.write`` of pre-formatted bytes and reads the answer with
``ResponseParser``. Public calls stay on aiohttp.

Two parts, as everywhere in krakenbot:

- ``ResponseParser`` (pure, no I/O): an incremental HTTP/1.1 response reader. Status line,
  headers, then a body framed by ``Content-Length``, by ``Transfer-Encoding: chunked``
  (trailers skipped), or by the end of the connection; ``1xx`` interim answers skipped.
  ``Connection: close`` (or an HTTP/1.0 answer without keep-alive) means the connection is
  not reused. Anything malformed or over the limits raises ``HttpProtocolError``.
- ``Http1Connection``: the asyncio driver. It connects on first use or ``connect()`` (the
  daemon warms it at start; TLS for ``https``), keeps the connection between requests, and
  replaces it before a request when the peer closed it, when the last answer said
  ``close``, or when it has been idle longer than ``idle_s`` (an idle connection is the one
  a server or a middlebox may have dropped without a word). One request at a time.

What a failure means, in the terms the REST client needs (``bot.kraken.rest`` maps them):

- ``ConnectFailed``: no connection, so not a byte of the request left this process;
- ``ConnectionLost``: the request was written (or may have been) and no complete answer
  came: the connection closed, or the answer was malformed (``HttpProtocolError``);
- ``TimeoutError``: no complete answer within the request's timeout.

After any of them the connection is dropped: a late answer could never be matched to its
request. Nothing here retries; the REST client decides what is safe to try again.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Final, cast
from urllib.parse import urlsplit

from bot.core.errors import ConfigError

__all__ = [
    "ConnectFailed",
    "ConnectionLost",
    "Http1Connection",
    "HttpProtocolError",
    "Response",
    "ResponseParser",
]

MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 16 * 2**20

Response = tuple[int, bytes]
"""An answer: ``(status, body)``, the body de-chunked."""


class ConnectFailed(ConnectionError):
    """No connection could be made: the request was not sent."""


class ConnectionLost(ConnectionError):
    """The request may have been sent, and no complete answer came back."""


class HttpProtocolError(ConnectionLost):
    """The peer's answer is not HTTP/1.1 this reader accepts (or exceeds its limits)."""


# --- the pure reader ---------------------------------------------------------------------

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """Reads one HTTP/1.1 response from the bytes ``feed`` is given, in any split.

    ``feed`` returns True once the response is complete; ``response`` and ``keep_alive``
    then hold it, and bytes past its end are an error (no pipelining: one request at a
    time). ``feed_eof`` tells it the peer closed: that completes a close-delimited body and
    is a ``ConnectionLost`` anywhere else. ``head_request``: the answer has no body.
    """

    __slots__ = ("_body", "_buf", "_keep_alive", "_need", "_state", "_status")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._body = bytearray()
        self._state = _HEAD
        self._status = 0
        self._need = 0
        self._keep_alive = True

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def response(self) -> Response:
        if self._state != _DONE:
            raise HttpProtocolError("the response is not complete")
        return self._status, bytes(self._body)

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this response."""
        return self._keep_alive

    def feed(self, data: bytes) -> bool:
        if self._state == _DONE:
            if data:
                raise HttpProtocolError(f"{len(data)} bytes after the response")
            return True
        buf = self._buf
        buf += data
        while True:
            state = self._state
            if state == _HEAD:
                if not self._head(buf):
                    return False
            elif state == _LENGTH:
                if not self._take(buf):
                    return False
                self._state = _DONE
            elif state == _UNTIL_CLOSE:
                self._body += buf
                buf.clear()
                if len(self._body) > MAX_BODY:
                    raise HttpProtocolError("the body exceeds the size limit")
                return False
            elif state == _CHUNK_SIZE:
                if not self._chunk_size(buf):
                    return False
            elif state == _CHUNK_DATA:
                if not self._take(buf):
                    return False
                self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise HttpProtocolError("a chunk does not end with CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise HttpProtocolError("the trailer exceeds the size limit")
                    return False
                del buf[: end + 2]
                if end == 0:  # the empty line that ends the trailer
                    self._state = _DONE
            if self._state == _DONE:
                if buf:
                    raise HttpProtocolError(f"{len(buf)} bytes after the response")
                return True

    def _take(self, buf: bytearray) -> bool:
        """Move up to the ``_need`` bytes still due into the body; True once all came."""
        take = min(self._need, len(buf))
        self._body += buf[:take]
        del buf[:take]
        self._need -= take
        return not self._need

    def feed_eof(self) -> bool:
        """The peer closed. True if that completed the response."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
            self._keep_alive = False
            return True
        if self._state == _DONE:
            self._keep_alive = False
            return True
        raise ConnectionLost("the connection closed before the response was complete")

    def _head(self, buf: bytearray) -> bool:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise HttpProtocolError("the response head exceeds the size limit")
            return False
        if end > MAX_HEAD:
            raise HttpProtocolError("the response head exceeds the size limit")
        lines = bytes(buf[:end]).split(b"\r\n")
        del buf[: end + 4]
        version, status = _status_line(lines[0])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or b" " in name:
                raise HttpProtocolError(f"malformed header line {line[:80]!r}")
            key = name.lower()
            value = value.strip()
            if key in headers:
                if key == b"content-length" and headers[key] != value:
                    raise HttpProtocolError("conflicting Content-Length headers")
                value = headers[key] + b", " + value
            headers[key] = value
        if 100 <= status < 200:  # an interim answer: the real one follows
            return True
        self._status = status
        connection = {t.strip() for t in headers.get(b"connection", b"").lower().split(b",")}
        self._keep_alive = (
            b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        )
        encoding = headers.get(b"transfer-encoding")
        length = headers.get(b"content-length")
        if status in (204, 304):
            self._state = _DONE
        elif encoding is not None:
            codings = [t.strip() for t in encoding.lower().split(b",")]
            if codings[-1] != b"chunked":
                # The body runs to the end of the connection (RFC 9112 §6.3).
                self._state, self._keep_alive = _UNTIL_CLOSE, False
            else:
                self._state = _CHUNK_SIZE
        elif length is not None:
            if not length.isdigit() or len(length) > 12:
                raise HttpProtocolError(f"bad Content-Length {length[:20]!r}")
            self._need = int(length)
            if self._need > MAX_BODY:
                raise HttpProtocolError("the body exceeds the size limit")
            self._state = _LENGTH if self._need else _DONE
        else:
            self._state, self._keep_alive = _UNTIL_CLOSE, False
        return True

    def _chunk_size(self, buf: bytearray) -> bool:
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > 1024:
                raise HttpProtocolError("a chunk size line exceeds the size limit")
            return False
        text = bytes(buf[:end]).split(b";", 1)[0].strip()  # chunk extensions ignored
        del buf[: end + 2]
        try:
            size = int(text, 16)
        except ValueError:
            raise HttpProtocolError(f"bad chunk size {text[:20]!r}") from None
        if size < 0 or len(self._body) + size > MAX_BODY:
            raise HttpProtocolError("the body exceeds the size limit")
        if size == 0:
            self._state = _TRAILER
        else:
            self._need, self._state = size, _CHUNK_DATA
        return True


def _status_line(line: bytes) -> tuple[bytes, int]:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise HttpProtocolError(f"bad status code in {line[:80]!r}")
    return parts[0], int(code)


# --- the asyncio driver ------------------------------------------------------------------


class _Protocol(asyncio.Protocol):
    """The socket's side: feeds bytes to the parser of the request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(lambda parser: parser.feed_eof())

    def eof_received(self) -> bool | None:
        self.closed = True
        self._finish(lambda parser: parser.feed_eof())
        return None  # close the transport

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:  # nothing asked: unsolicited bytes, the connection is unusable
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        self._finish(lambda p: p.feed(data))

    def _finish(self, step: Callable[[ResponseParser], bool]) -> None:
        parser, waiter = self.parser, self.waiter
        if parser is None or waiter is None or waiter.done():
            return
        try:
            complete = step(parser)
        except ConnectionLost as exc:
            self.closed = True
            waiter.set_exception(exc)
            if self.transport is not None:
                self.transport.close()
            return
        if complete:
            waiter.set_result(None)


class Http1Connection:
    """A kept-alive HTTP/1.1 connection to one origin, one request at a time.

    ``base_url``: ``http://host[:port]`` or ``https://host[:port]`` (TLS verified with the
    system's CAs unless ``ssl_context`` says otherwise). ``extra_headers`` go on every
    request after ``Host``; header names and values must be printable ASCII with no CR/LF.
    ``on_write``, if set, is called just before each request's single write (for tracing).
    ``clock`` is ``time.monotonic`` unless injected.
    """

    def __init__(
        self,
        base_url: str,
        *,
        extra_headers: Sequence[tuple[str, str]] = (),
        idle_s: float = 50.0,
        connect_timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_write: Callable[[], object] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {base_url!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"the base URL must have no path or query: {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        default_port = self._port == (443 if parts.scheme == "https" else 80)
        host = self._host if default_port else f"{self._host}:{self._port}"
        if ":" in self._host and default_port:  # an IPv6 literal
            host = f"[{self._host}]"
        self._fixed = _header_block((("Host", host), *extra_headers))
        self._idle_s = idle_s
        self._connect_timeout_s = connect_timeout_s
        self._clock = clock
        self.on_write = on_write
        self._proto: _Protocol | None = None
        self._last_used = 0.0
        self._busy = False
        self.connects = 0
        """Connections made so far (a counter for metrics and tests)."""

    @property
    def connected(self) -> bool:
        """True when a usable connection is open now."""
        proto = self._proto
        return proto is not None and not proto.closed

    async def connect(self) -> None:
        """Open the connection now if there is no usable one (warm it before trading)."""
        if not self._usable():
            await self._open()

    def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.closed = True
            proto.transport.close()

    async def request(
        self,
        method: str,
        target: str,
        body: bytes,
        headers: Sequence[tuple[str, str]],
        *,
        timeout_s: float,
    ) -> Response:
        """Send ``method target`` with ``headers`` (after the fixed ones) and ``body``;
        return ``(status, body)``. Raises ``ConnectFailed``, ``ConnectionLost`` or
        ``TimeoutError`` as the module docstring says; header values must not contain CR
        or LF (``ValueError``, before anything is sent)."""
        if self._busy:
            raise RuntimeError("Http1Connection carries one request at a time")
        self._busy = True
        try:
            head = b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n" % (
                method.encode("ascii"),
                target.encode("ascii"),
                self._fixed,
                _header_block(headers),
                len(body),
            )
            proto = self._proto
            if proto is None or proto.closed or self._clock() - self._last_used > self._idle_s:
                proto = await self._open()
            transport = proto.transport
            assert transport is not None
            parser = proto.parser = ResponseParser()
            waiter = proto.waiter = asyncio.get_running_loop().create_future()
            if self.on_write is not None:
                self.on_write()
            transport.write(head + body)
            try:
                async with asyncio.timeout(timeout_s):
                    await waiter
            except BaseException:
                self._discard(proto)
                raise
            finally:
                proto.parser = proto.waiter = None
            self._last_used = self._clock()
            if not parser.keep_alive or proto.closed:
                self._discard(proto)
            return parser.response
        finally:
            self._busy = False

    def _usable(self) -> bool:
        proto = self._proto
        return (
            proto is not None
            and not proto.closed
            and self._clock() - self._last_used <= self._idle_s
        )

    async def _open(self) -> _Protocol:
        self.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, proto = await loop.create_connection(
                    _Protocol, self._host, self._port, ssl=self._ssl
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{self._host}:{self._port}: {type(exc).__name__}") from exc
        self._proto = proto
        self._last_used = self._clock()
        self.connects += 1
        return proto

    def _discard(self, proto: _Protocol) -> None:
        if self._proto is proto:
            self.close()
        elif proto.transport is not None:
            proto.transport.close()


def _header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    text = "".join([f"{name}: {value}\r\n" for name, value in headers])
    # The usual case in one check of the whole text: known names, printable ASCII values
    # and no line breaks but the block's own (one per header).
    if (
        text.isascii()
        and text.count("\n") == len(headers)
        and text.replace("\r\n", "").isprintable()
        and _GOOD_NAMES.issuperset([name for name, _ in headers])
    ):
        return text.encode("ascii")
    for name, value in headers:
        if name not in _GOOD_NAMES:
            if not _is_token(name):
                raise ValueError(f"header {name!r} has a name or value that cannot be sent")
            if len(_GOOD_NAMES) < 256:
                _GOOD_NAMES.add(name)  # a handful of names, sent again and again
        if not (value.isascii() and value.isprintable()):
            raise ValueError(f"header {name!r} has a name or value that cannot be sent")
    return text.encode("ascii")


_GOOD_NAMES: set[str] = set()


_TOKEN_PUNCTUATION: Final = frozenset("!#$%&'*+-.^_`|~")


def _is_token(name: str) -> bool:
    return (
        bool(name) and name.isascii() and all(c.isalnum() or c in _TOKEN_PUNCTUATION for c in name)
    )
