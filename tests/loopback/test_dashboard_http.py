"""The dashboard's routes on the real HTTP server (127.0.0.1, port 0): the page and its
assets, the JSON endpoints, and the live stream (its events, keepalives and end)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from bot.config import HttpConfig
from bot.core.clock import FakeClock
from bot.execution.readiness import ReadinessGate
from bot.service.dashboard.server import PLOTLY_ASSET, Dashboard, StatusInputs
from bot.service.http import HttpServer
from bot.service.metrics import Metrics
from bot.service.observe import Observation
from tests.unit.service.helpers import T0, fill, picture

pytestmark = pytest.mark.timeout(30)
WAIT_S = 5.0


@asynccontextmanager
async def serving(
    clock: FakeClock | None = None, *, dashboard: bool = True
) -> AsyncIterator[tuple[HttpServer, Dashboard, aiohttp.ClientSession]]:
    clock = clock or FakeClock(T0)
    gate = ReadinessGate(["books"])
    server = HttpServer(HttpConfig(host="127.0.0.1", port=0), Metrics(process=False), gate,
                        lambda: {"mode": "paper"}, clock)  # fmt: skip
    board = Dashboard(clock, keepalive_s=15.0)

    def starting() -> Observation:
        return Observation(clock.time_ns(), False, gate.is_open, gate.failing(), {})

    if dashboard:
        board.install(server.app, StatusInputs(server.ready, server.health, server.facts, starting))
    await server.start()
    try:
        timeout = aiohttp.ClientTimeout(total=WAIT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield server, board, session
    finally:
        await server.close()


async def test_the_page_and_its_assets_come_from_the_daemon_with_a_strict_policy() -> None:
    async with serving() as (server, _, session):
        async with session.get(server.url + "/") as reply:
            page = await reply.text()
            csp = reply.headers["Content-Security-Policy"]
        assert reply.status == 200 and reply.content_type == "text/html"
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert f'src="/assets/{PLOTLY_ASSET}"' in page and "https://" not in page
        async with session.get(server.url + f"/assets/{PLOTLY_ASSET}") as reply:
            body = await reply.read()
            assert "immutable" in reply.headers["Cache-Control"]
        assert reply.status == 200 and b"plotly.js" in body[:200] and len(body) > 1_000_000
        async with session.get(server.url + "/assets/dashboard.js") as reply:
            assert reply.status == 200 and "EventSource" in await reply.text()
        async with session.get(server.url + "/assets/../../etc/passwd") as reply:
            assert reply.status == 404
        async with session.get(server.url + "/status") as reply:  # the plain page stays
            assert reply.status == 200 and "NOT READY" in await reply.text()


async def test_without_the_dashboard_the_plain_page_is_at_the_root() -> None:
    async with serving(dashboard=False) as (server, _, session):
        async with session.get(server.url + "/") as reply:
            text = await reply.text()
        assert reply.status == 200 and 'http-equiv="refresh"' in text


async def test_status_before_the_first_picture_then_from_the_latest() -> None:
    async with serving() as (server, board, session):
        async with session.get(server.url + "/api/status") as reply:
            first = await reply.json()
        assert first["phase"] == "starting" and first["ready"] is False
        assert first["failing"] == ["books"] and first["mode"] == "paper"
        board.publish(picture(new_fills=[fill(1)]))
        async with session.get(server.url + "/api/status") as reply:
            second = await reply.json()
            assert reply.headers["Cache-Control"] == "no-store"
        assert second["phase"] == "running" and second["health"]["readiness"][0]["check"] == "books"
        async with session.get(server.url + "/api/history") as reply:
            history = await reply.json()
        assert len(history["t"]) == 1 and history["fills"]["BTC/USD"][0]["price"] == 30000.0


async def read_event(content: aiohttp.StreamReader) -> tuple[str, str]:
    """The next SSE block: (its event name or "comment", its data or comment text)."""
    name, data = "", []
    while True:
        line = (await content.readline()).decode().rstrip("\n")
        if not line:
            if name or data:
                return name, "\n".join(data)
            continue
        if line.startswith(":"):
            return "comment", line[1:].strip()
        key, _, value = line.partition(": ")
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)


async def test_the_stream_pushes_every_picture_in_order_with_its_point_and_fills() -> None:
    async with serving() as (server, board, session):
        board.publish(picture())
        async with session.get(server.url + "/api/stream") as stream:
            assert stream.content_type == "text/event-stream"
            event, data = await read_event(stream.content)  # the latest at once
            first = orjson.loads(data)
            assert event == "status" and first["seq"] == 1 and first["status"]["risk"] == "active"
            assert first["point"]["values"]["mid:BTC/USD"] == 30000.05
            board.publish(picture(at_ns=T0 + 10**9, new_fills=[fill(1)], risk_state="halted"))
            _, data = await read_event(stream.content)
            second = orjson.loads(data)
        assert second["seq"] == 2 and second["status"]["risk"] == "halted"
        assert [f["side"] for f in second["fills"]] == ["buy"] and second["epoch"] == 0


async def test_an_idle_stream_sends_keepalives_on_the_clock_and_ends_with_the_server() -> None:
    clock = FakeClock(T0)
    async with serving(clock) as (server, board, session):
        async with session.get(server.url + "/api/stream") as stream:
            assert await stream.content.readline() == b"retry: 2000\n"
            await stream.content.readline()
            waiting = asyncio.ensure_future(read_event(stream.content))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # nothing published, the clock still
            clock.advance(15.0)
            assert await asyncio.wait_for(waiting, WAIT_S) == ("comment", "keepalive")
            samples = {s.name: s.value for s in board.samples()}
            assert samples == {"dashboard_streams": 1}
            closing = asyncio.ensure_future(server.close())
            rest: Any = await asyncio.wait_for(stream.content.read(), WAIT_S)  # it ends
            await asyncio.wait_for(closing, WAIT_S)
    assert rest.strip() == b""  # the stream ended with the server
    assert {s.name: s.value for s in board.samples()} == {"dashboard_streams": 0}


async def test_the_status_is_built_only_when_read() -> None:
    """Pictures every second cost the trading loop only their chart sample while no
    dashboard is open: the status (readiness, health, formatting) waits for a reader."""
    async with serving() as (server, board, session):
        reads: list[int] = []
        ready = server.ready

        def counted() -> dict[str, Any]:
            reads.append(1)
            return ready()

        assert board._inputs is not None
        board._inputs = StatusInputs(counted, server.health, server.facts, board._inputs.fallback)
        for k in range(3):
            board.publish(picture(at_ns=T0 + k * 10**9))
        assert reads == [] and len(board.history) == 3
        async with session.get(server.url + "/api/status") as reply:
            assert (await reply.json())["phase"] == "running"
        async with session.get(server.url + "/api/status") as reply:
            await reply.read()
        assert reads == [1]  # built once for the latest picture, then reused
