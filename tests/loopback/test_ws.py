"""The reconnecting WebSocket driver (bot.net.ws) on its own, against a tiny loopback server.

What its users rely on: ``on_open`` and ``on_close`` alternate (a recorder writes the gap
between them), ``on_close(None)`` when cancelled, a failed ``prepare`` is a failed connect
with no connection, ``retry_now`` skips the backoff, ``ping`` may decline to probe and the
watchdog still ends a silent connection, a bad URL stops ``run``. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.errors import BotError, ConfigError, TransientError
from bot.net.ws import ConnectionLost, ReconnectingSocket, Session, SocketStale

WAIT_S = 3.0


class Server:
    """Sends ``greeting`` on connect, echoes every message, can drop the connection."""

    def __init__(self) -> None:
        self.url = ""
        self.conns: list[ServerConnection] = []
        self.received: list[str] = []
        self.greeting: str | None = "hello"

    async def handler(self, ws: ServerConnection) -> None:
        self.conns.append(ws)
        if self.greeting is not None:
            await ws.send(self.greeting)
        async for raw in ws:
            self.received.append(str(raw))
            await ws.send(f"echo {raw}")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    async with serve(srv.handler, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        srv.url = f"ws://127.0.0.1:{port}"
        yield srv


class Handler:
    """Records every hook call; what each does is set per test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.prepare_error: BotError | None = None
        self.probe: bytes | None = None
        self.on_msg: Callable[[Session, str | bytes], None] | None = None
        self._changed = asyncio.Event()

    def _note(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        self._changed.set()

    async def prepare(self) -> None:
        self._note("prepare", None)
        if self.prepare_error is not None:
            error, self.prepare_error = self.prepare_error, None
            raise error

    def on_open(self, session: Session) -> None:
        self._note("open", session.number)
        session.queue(b"first")

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None:
        self._note("message", raw)
        if self.on_msg is not None:
            self.on_msg(session, raw)

    def ping(self, session: Session) -> bytes | None:
        self._note("ping", None)
        return self.probe

    def on_close(self, error: BotError | None) -> None:
        self._note("close", error)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls if name in ("prepare", "open", "close")]

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def socket(url: str, handler: Handler, **kw: Any) -> ReconnectingSocket:
    kw.setdefault("backoff", Backoff(BackoffPolicy(initial_s=0.01, max_s=0.02)))
    kw.setdefault("close_timeout_s", 0.2)
    return ReconnectingSocket(url, handler, name="test_socket", **kw)


async def test_hooks_alternate_and_a_cancel_closes_with_none(server: Server) -> None:
    handler = Handler()
    sock = socket(server.url, handler)
    task = asyncio.create_task(sock.run())
    await handler.until(lambda: ("message", "echo first") in handler.calls)
    assert sock.connected and sock.session is not None and sock.session.number == 1
    await server.conns[-1].close()  # the server ends it: a reconnect follows
    await handler.until(lambda: handler.names().count("open") == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handler.names() == ["prepare", "open", "close", "prepare", "open", "close"]
    closes = [arg for name, arg in handler.calls if name == "close"]
    assert isinstance(closes[0], ConnectionLost) and closes[1] is None  # None: cancelled
    assert server.received == ["first", "first"]  # queued in on_open, sent first
    assert ("message", "hello") in handler.calls
    assert sock.stats.connects == 2 and sock.stats.reconnects == 1 and not sock.connected


async def test_a_failed_prepare_is_a_failed_connect_without_a_connection(server: Server) -> None:
    handler = Handler()
    handler.prepare_error = TransientError("EGeneral:Temporary lockout", "no token")
    sock = socket(server.url, handler)
    task = asyncio.create_task(sock.run())
    await handler.until(lambda: "open" in handler.names())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handler.names()[:3] == ["prepare", "prepare", "open"]
    assert sock.stats.connect_failures == 1 and len(server.conns) == 1


async def test_retry_now_reconnects_without_waiting_out_the_backoff(server: Server) -> None:
    handler = Handler()

    class Refused(ConnectionLost):
        retry_now = True

    def refuse_once(session: Session, raw: str | bytes) -> None:
        if raw == "hello" and session.number == 1:
            raise Refused("token refused")

    handler.on_msg = refuse_once
    slow = Backoff(BackoffPolicy(initial_s=60.0, max_s=60.0))  # a wait would time the test out
    sock = socket(server.url, handler, backoff=slow)
    task = asyncio.create_task(sock.run())
    await handler.until(lambda: handler.names().count("open") == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.attempts == 0 and sock.stats.reconnects == 1


async def test_a_silent_connection_is_closed_when_the_handler_sends_no_probe(
    server: Server,
) -> None:
    server.greeting = None
    handler = Handler()  # ping() returns None: no app-level probe (a feed with none)
    sock = socket(server.url, handler, stale_after_s=0.2)
    task = asyncio.create_task(sock.run())
    await handler.until(lambda: "close" in handler.names())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    close = next(arg for name, arg in handler.calls if name == "close")
    kinds = [name for name, _ in handler.calls]
    assert isinstance(close, SocketStale) and kinds.index("ping") < kinds.index("close")


async def test_a_quiet_connection_whose_probes_are_answered_stays_up(server: Server) -> None:
    server.greeting = None
    handler = Handler()
    handler.probe = b"probe"  # the echo server answers it, as Kraken answers a ping
    sock = socket(server.url, handler, stale_after_s=0.2)
    task = asyncio.create_task(sock.run())
    # Three probes span more than stale_after_s of server silence between answers.
    await handler.until(lambda: server.received.count("probe") >= 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handler.names() == ["prepare", "open", "close"] and handler.calls[-1][1] is None


async def test_a_bad_url_stops_run_with_a_config_error_naming_the_key() -> None:
    handler = Handler()
    sock = socket("not a url", handler, url_key="venue.ws_public_url")
    with pytest.raises(ConfigError, match=r"venue\.ws_public_url"):
        await asyncio.wait_for(sock.run(), WAIT_S)
    assert handler.names() == ["prepare"] and sock.stats.connect_failures == 1


async def test_write_now_writes_at_once_and_refuses_a_connection_not_open(server: Server) -> None:
    """``Session.write_now``: the frame written before it returns (the server has it
    without the caller ever awaiting a send); False, nothing written, once the connection
    is closing."""
    handler = Handler()
    sock = socket(server.url, handler)
    task = asyncio.create_task(sock.run())
    await handler.until(lambda: ("message", "echo first") in handler.calls)
    session = sock.session
    assert session is not None
    assert session.write_now(b'{"method":"ping"}') is True
    await handler.until(lambda: ("message", 'echo {"method":"ping"}') in handler.calls)
    assert server.received == ["first", '{"method":"ping"}']
    closing = session._ws.close()  # the session's own connection, closing
    close = asyncio.ensure_future(closing)
    await asyncio.sleep(0)  # the close frame is on its way: the connection is closing
    assert session.write_now(b"late") is False
    await close
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "late" not in server.received
