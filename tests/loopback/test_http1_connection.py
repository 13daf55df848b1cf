"""``Http1Connection`` over real loopback sockets: reuse, replacement, failures, TLS.

Servers here are plain asyncio servers that read requests and answer with bytes the test
chooses (so a test controls framing, ``Connection: close``, hang-ups and stalls), plus an
aiohttp server behind TLS (a throwaway CA from ``trustme``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trustme
from aiohttp import web

from bot.net.http1 import ConnectFailed, ConnectionLost, Http1Connection

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Given a request (head + body), write an answer; return False to hang up afterwards."""

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RawServer:
    """Counts connections and requests; answers each request with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.answer(request, writer):
                    return
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[RawServer]:
    server = RawServer(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def ok(request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    await writer.drain()
    return True


async def post(
    conn: Http1Connection, body: bytes = b"a=1", timeout_s: float = 2.0
) -> tuple[int, bytes]:
    return await conn.request(
        "POST", "/0/private/AddOrder", body, (("API-Key", "k"),), timeout_s=timeout_s
    )


async def test_one_connection_carries_every_request_and_the_request_is_exact() -> None:
    async with raw_server(ok) as server:
        conn = Http1Connection(
            f"http://127.0.0.1:{server.port}", extra_headers=(("User-Agent", "kb/1"),)
        )
        for i in range(20):
            assert await post(conn, b"nonce=%d" % i) == (200, b"ok")
        conn.close()
    assert server.connections == 1 and conn.connects == 1
    assert server.requests[3] == (
        b"POST /0/private/AddOrder HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\nUser-Agent: kb/1\r\nAPI-Key: k\r\n"
        b"Content-Length: 7\r\n\r\nnonce=3" % server.port
    )


async def test_connection_close_in_an_answer_means_a_new_connection_next_time() -> None:
    async def closing(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        return True  # the server would go on; the client must not

    async with raw_server(closing) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        for _ in range(3):
            assert await post(conn) == (200, b"ok")
        conn.close()
    assert conn.connects == 3 and server.connections == 3


async def test_a_connection_the_server_dropped_while_idle_is_replaced_before_writing() -> None:
    async def once(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await ok(request, writer)
        return False  # hang up after each answer, without saying so

    async with raw_server(once) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        for _ in range(3):
            assert await post(conn) == (200, b"ok")
            await asyncio.sleep(0.05)  # the hang-up arrives while idle
            assert not conn.connected
        conn.close()
    assert len(server.requests) == 3 and conn.connects == 3


async def test_an_unsolicited_answer_between_requests_retires_the_connection() -> None:
    async def then_408(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await ok(request, writer)
        await asyncio.sleep(0.01)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True

    async with raw_server(then_408) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        assert await post(conn) == (200, b"ok")
        await asyncio.sleep(0.1)
        assert not conn.connected
        assert await post(conn) == (200, b"ok")  # on a new connection, not the 408
        conn.close()
    assert conn.connects == 2


async def test_an_idle_connection_is_replaced_after_idle_s() -> None:
    now = [0.0]
    async with raw_server(ok) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}", idle_s=30.0, clock=lambda: now[0])
        await conn.connect()
        await conn.connect()  # already open: nothing to do
        assert conn.connects == 1
        now[0] = 29.0
        assert await post(conn) == (200, b"ok")
        now[0] = 58.0  # 29 s after the last answer: still fresh
        assert await post(conn) == (200, b"ok")
        now[0] = 90.0  # 32 s idle: suspect, replaced before the write
        assert await post(conn) == (200, b"ok")
        conn.close()
    assert conn.connects == 2 and server.connections == 2


async def test_chunked_answers_split_across_writes() -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        for piece in (
            b"HTTP/1.1 200 OK\r\nTransfer-",
            b'Encoding: chunked\r\n\r\n4\r\n{"a"',
            b"\r\n3\r\n:1}\r\n0\r\n",
            b"\r\n",
        ):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.005)
        return True

    async with raw_server(chunked) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        assert await post(conn) == (200, b'{"a":1}')
        assert await post(conn) == (200, b'{"a":1}')
        conn.close()
    assert conn.connects == 1


async def test_a_stalled_answer_times_out_and_the_connection_is_dropped() -> None:
    calls = 0

    async def stall_first(request: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)
        return await ok(request, writer)

    async with raw_server(stall_first) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        with pytest.raises(TimeoutError):
            await post(conn, timeout_s=0.1)
        assert not conn.connected  # a late answer could never be matched: gone
        assert await post(conn) == (200, b"ok")
        conn.close()
    assert conn.connects == 2


async def test_a_hang_up_after_the_request_is_a_lost_connection() -> None:
    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
        await writer.drain()
        return False

    async with raw_server(hang_up) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        with pytest.raises(ConnectionLost):
            await post(conn)
        conn.close()
    assert len(server.requests) == 1


async def test_a_malformed_answer_is_a_lost_connection() -> None:
    async def garbage(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n")
        await writer.drain()
        return True

    async with raw_server(garbage) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        with pytest.raises(ConnectionLost, match="Content-Length"):
            await post(conn)
        assert not conn.connected
        conn.close()


async def test_a_refused_connection_sends_nothing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = Http1Connection(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectFailed, match="ConnectionRefusedError"):
        await post(conn)


async def test_header_injection_is_refused_before_anything_is_sent() -> None:
    async with raw_server(ok) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        bad = (
            ("API-Key", "k\r\nX-Evil: 1"),
            ("API-Key", "k\nX-Evil: 1"),
            ("API-Key", "k\rX"),
            ("API-Key", "k\x00"),
            ("API-Key", "k\tv"),
            ("Bad Name", "v"),
            ("X-Evil\r\nAPI-Key", "v"),
            ("K", "é"),
        )
        await post(conn)  # "API-Key" and the others are now names it has seen
        for name, value in bad:
            with pytest.raises(ValueError, match="cannot be sent"):
                await conn.request("POST", "/x", b"", ((name, value),), timeout_s=1.0)
        assert await post(conn) == (200, b"ok")  # still usable
        conn.close()
    assert len(server.requests) == 2


async def test_one_request_at_a_time() -> None:
    async def slow(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        return await ok(request, writer)

    async with raw_server(slow) as server:
        conn = Http1Connection(f"http://127.0.0.1:{server.port}")
        first = asyncio.create_task(post(conn))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="one request at a time"):
            await post(conn)
        assert await first == (200, b"ok")
        conn.close()


def test_base_urls_are_checked() -> None:
    from bot.core.errors import ConfigError

    for url in ("ftp://h", "http://", "https://api.kraken.com/0/private", "http://h/?a=1"):
        with pytest.raises(ConfigError):
            Http1Connection(url)


async def test_tls_with_certificate_verification() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers["Host"])
        return web.json_response({"error": [], "result": {"n": await request.text()}})

    app = web.Application()
    app.router.add_post("/0/private/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        conn = Http1Connection(f"https://localhost:{port}", ssl_context=client_ctx)
        for i in range(3):
            status, body = await post(conn, b"n=%d" % i)
            assert status == 200 and body == b'{"error": [], "result": {"n": "n=%d"}}' % i
        conn.close()
        assert conn.connects == 1 and seen == [f"localhost:{port}"] * 3
        # Without the CA the handshake fails: no connection, nothing sent.
        untrusting = Http1Connection(f"https://localhost:{port}")
        with pytest.raises(ConnectFailed):
            await post(untrusting)
        assert len(seen) == 3
    finally:
        await runner.cleanup()
