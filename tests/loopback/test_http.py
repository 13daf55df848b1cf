"""bot.service.http on 127.0.0.1 port 0: /healthz, /readyz, /metrics, the status page, healthcheck.

Every wait is bounded by ``WAIT_S``. The loop-lag test blocks the event loop on purpose
(``time.sleep``, a fraction of a second): that is the fault under test, not a wait.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import HttpConfig, MarketConfig
from bot.core.clock import Clock, FakeClock, SystemClock
from bot.core.errors import BotError, ConfigError
from bot.core.log import Secret, is_sensitive_key
from bot.execution.readiness import BOOKS_VALID, DEADMAN_ARMED, INSTRUMENTS_LOADED, ReadinessGate
from bot.kraken.rest import KrakenRestClient
from bot.market.feed import Feed
from bot.service.http import HttpServer, main_healthcheck
from bot.service.metrics import Metrics, Sample, feed_source, rest_source
from tests.loopback.conftest import SimHandle

WAIT_S = 5.0
HOSTILE = "<script>alert(1)</script>"


@asynccontextmanager
async def serving(
    metrics: Metrics | None = None,
    readiness: ReadinessGate | None = None,
    status: Callable[[], dict[str, object]] | None = None,
    clock: Clock | None = None,
    **kw: Any,
) -> AsyncIterator[tuple[HttpServer, aiohttp.ClientSession]]:
    server = HttpServer(
        HttpConfig(host="127.0.0.1", port=0),
        metrics if metrics is not None else Metrics(),
        readiness if readiness is not None else ReadinessGate(),
        status,
        clock if clock is not None else FakeClock(),
        **kw,
    )
    await server.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
            yield server, session
    finally:
        await server.close()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Ask ``check`` again every 20 ms until it holds, for at most ``WAIT_S``."""
    async with asyncio.timeout(WAIT_S):
        while not await check():  # noqa: ASYNC110 (polling a server: nothing to wait on)
            await asyncio.sleep(0.02)


def answers(session: aiohttp.ClientSession, url: str, status: int) -> Callable[[], Awaitable[bool]]:
    """For ``until``: does ``url`` answer with ``status``?"""

    async def check() -> bool:
        async with session.get(url) as response:
            return response.status == status

    return check


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- /healthz


async def test_healthz_is_200_json_on_an_ephemeral_port() -> None:
    async with serving() as (server, session):
        assert server.port is not None and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        status, body = await get_json(session, f"{server.url}/healthz")
    assert status == 200
    assert body["healthy"] is True and body["status"] == "ok"
    assert body["probe_running"] is True
    assert body["loop_lag_s"] == 0  # the fake clock never moves


async def test_healthz_turns_503_while_the_loop_lags_then_recovers() -> None:
    clock = SystemClock()
    async with serving(clock=clock, max_loop_lag_s=0.1, lag_interval_s=0.02, lag_window_s=0.4) as (
        server,
        session,
    ):
        url = f"{server.url}/healthz"
        assert (await get_json(session, url))[0] == 200
        time.sleep(0.3)  # noqa: ASYNC251 (the fault under test: a handler blocks the loop)
        status, body = await get_json(session, url)
        assert status == 503, body
        assert body["status"] == "unhealthy" and body["loop_lag_max_s"] >= 0.2
        metrics_text = (await get(session, f"{server.url}/metrics"))[2]
        assert parse(metrics_text)["krakenbot_loop_lag_max_seconds", ()] >= 0.2
        await until(answers(session, url, 200))  # the window passes: healthy again


# --------------------------------------------------------------------------- /readyz


async def test_readyz_lists_failing_checks_until_the_gate_opens() -> None:
    books_ok = False
    gate = ReadinessGate([INSTRUMENTS_LOADED, DEADMAN_ARMED])
    gate.add(BOOKS_VALID, lambda: books_ok)
    async with serving(readiness=gate) as (server, session):
        url = f"{server.url}/readyz"
        status, body = await get_json(session, url)
        assert status == 503
        assert body["ready"] is False
        assert body["failing"] == [INSTRUMENTS_LOADED, DEADMAN_ARMED, BOOKS_VALID]
        assert body["checks"][BOOKS_VALID] == {"ok": False, "detail": "not yet"}
        gate.set(INSTRUMENTS_LOADED)
        gate.clear(DEADMAN_ARMED, "CancelAllOrdersAfter failed")
        status, body = await get_json(session, url)
        assert status == 503 and body["failing"] == [DEADMAN_ARMED, BOOKS_VALID]
        assert body["checks"][DEADMAN_ARMED]["detail"] == "CancelAllOrdersAfter failed"
        gate.set(DEADMAN_ARMED)
        books_ok = True
        status, body = await get_json(session, url)
    assert status == 200
    assert body["ready"] is True and body["failing"] == []
    assert all(c["ok"] for c in body["checks"].values())


async def test_readyz_scrubs_a_secret_from_a_failing_probe() -> None:
    token = Secret("wstoken-0123456789abcdef")

    def probe() -> bool:
        raise BotError(f"token {token.reveal()} refused")

    gate = ReadinessGate()
    gate.add("private_feed", probe)
    async with serving(readiness=gate) as (server, session):
        status, text = (await get(session, f"{server.url}/readyz"))[::2]
    assert status == 503
    assert token.reveal() not in text and "***" in text


# --------------------------------------------------------------------------- /metrics


async def test_metrics_parse_with_labels_and_carry_no_secret() -> None:
    api_key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrSt"
    api_secret = (
        "kQ4iNR4lP8aZ4vOcZkZ2vU6y2dY2fN3Sx2yX6fC1l2n1YcR9a3h3b0c6w2sQ2X9ZpWmT1a7Yk8o3ZrV1nFq5ZA=="
    )
    clock = FakeClock()
    rest = KrakenRestClient(
        "http://127.0.0.1:1", clock=clock, api_key=Secret(api_key), api_secret=Secret(api_secret)
    )
    rest.trading_counter.charge("BTC/USD", 1, clock.monotonic())
    metrics = Metrics()
    metrics.add_source(rest_source(rest))
    metrics.strategy_gauge("mm", "inventory_skew", 0.25, "BTC/USD")
    metrics.strategy_count("mm", "requotes", 3)
    metrics.rejection("exchange", "mm", "place", "EOrder:Insufficient funds")
    metrics.observe_handler("mm", "on_book", 0.0004)
    async with serving(metrics=metrics) as (server, session):
        status, content_type, text = await get(session, f"{server.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "krakenbot_rest_headroom",
        "krakenbot_trading_headroom",
        "krakenbot_strategy_metric",
        "krakenbot_strategy_counter",
        "krakenbot_rejections",
        "krakenbot_strategy_handler_seconds",
        "krakenbot_loop_lag_seconds",
        "krakenbot_feed_frames",
        "krakenbot_deadman_seconds_to_trigger",
        "krakenbot_strategy_realised_pnl",
        "krakenbot_strategy_position",
        "krakenbot_orders",
    ):
        assert name in families, name
    values = parse(text)
    assert values["krakenbot_trading_headroom", (("pair", "BTC/USD"),)] > 0
    skew = (("name", "inventory_skew"), ("strategy", "mm"), ("symbol", "BTC/USD"))
    assert values["krakenbot_strategy_metric", skew] == 0.25
    assert values["krakenbot_strategy_counter_total", (("name", "requotes"), ("strategy", "mm"),
                  ("symbol", ""))] == 3  # fmt: skip
    # No secret, nothing secret-looking: no key-like label, no long base64 run anywhere.
    assert api_key not in text and api_secret not in text
    assert not re.search(r"[A-Za-z0-9+/]{32,}={0,2}", text)
    for family in families.values():
        for sample in family.samples:
            assert not any(is_sensitive_key(label) for label in sample.labels), sample


async def test_metrics_and_status_page_from_a_real_feed_on_the_simulator(sim: SimHandle) -> None:
    symbols = ("BTC/USD", "ETH/USD")
    market = MarketConfig(symbols=symbols, book_depth=10, channels=("book",))
    feed = Feed(sim.ws_public_url, market, lambda event: None, close_timeout_s=0.2)
    metrics = Metrics()
    metrics.add_source(feed_source(feed))
    gate = ReadinessGate()
    gate.add(BOOKS_VALID, lambda: all(s in feed.books and feed.books[s].valid for s in symbols))
    async with (
        asyncio.TaskGroup() as tg,
        serving(metrics, gate, clock=SystemClock()) as (
            server,
            session,
        ),
    ):
        task = tg.create_task(feed.run())
        try:
            await until(answers(session, f"{server.url}/readyz", 200))
            text = (await get(session, f"{server.url}/metrics"))[2]
            page = (await get(session, f"{server.url}/"))[2]
        finally:
            task.cancel()
    values = parse(text)
    for symbol in symbols:
        assert values["krakenbot_book_valid", (("symbol", symbol),)] == 1
        assert values["krakenbot_book_checksum_failures_total", (("symbol", symbol),)] == 0
        assert values["krakenbot_book_mid", (("symbol", symbol),)] > 0
        assert values["krakenbot_book_frames_total", (("symbol", symbol),)] >= 1
    assert values["krakenbot_feed_connected", (("feed", "public"),)] == 1
    assert values["krakenbot_feed_book_frames_total", (("feed", "public"),)] >= 2
    assert values["krakenbot_feed_frame_age_seconds", (("feed", "public"),)] < WAIT_S
    assert "BTC/USD" in page and "ETH/USD" in page and "READY" in page
    for secret in (sim.api_key, sim.api_secret, sim.admin_token):
        assert secret not in text and secret not in page


# --------------------------------------------------------------------------- status page


async def test_status_page_shows_the_values_and_escapes_everything() -> None:
    metrics = Metrics(process=False)
    metrics.strategy_gauge(HOSTILE, "spread_bps", 3.5, "BTC/USD")
    metrics.strategy_gauge("mm", "inventory", 0.125)
    metrics.rejection("exchange", "mm", "place", "EOrder:Insufficient funds")
    rows = [
        Sample("strategy_state", 1, ("mm", "running")),
        Sample("strategy_realised_pnl", 12.5, ("mm", "USD")),
        Sample("strategy_position", -0.25, ("mm", "BTC/USD")),
        Sample("strategy_handler_errors", 2, ("mm", "on_book")),
        Sample("orders", 4, ("new",)),
        Sample("book_valid", 1, ("BTC/USD",)),
        Sample("feed_connected", 1, ("public",)),
        Sample("feed_frame_age_seconds", 0.75, ("public",)),
        Sample("deadman_armed", 1),
        Sample("deadman_seconds_to_trigger", 42.5),
        Sample("rest_headroom", 14),
        Sample("trading_headroom", 118, ("ETH/USD",)),
    ]
    metrics.add_source(lambda: rows)
    gate = ReadinessGate(["instruments"])
    gate.add("books", lambda: True)
    async with serving(metrics, gate, lambda: {"mode": "sim", "note": HOSTILE}) as (server, sess):
        status, content_type, page = await get(sess, f"{server.url}/")
    assert status == 200 and content_type.startswith("text/html")
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "NOT READY" in page and "instruments" in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for shown in ("spread_bps", "3.5", "12.5 USD", "-0.25 BTC/USD", "EOrder:Insufficient funds",
                  "42.5", "118", "ETH/USD", "0.75", ">running<", ">sim<"):  # fmt: skip
        assert shown in page, shown


# --------------------------------------------------------------------------- lifecycle


async def test_disabled_server_does_not_listen_and_a_taken_port_is_a_config_error() -> None:
    off = HttpServer(HttpConfig(enabled=False, port=0), Metrics(), ReadinessGate())
    await off.start()
    assert off.port is None
    await off.close()
    async with serving() as (server, _):
        assert server.port is not None
        taken = HttpServer(HttpConfig(port=server.port), Metrics(), ReadinessGate())
        with pytest.raises(ConfigError, match=f"http: cannot listen on 127.0.0.1:{server.port}"):
            await taken.start()


async def test_run_serves_until_cancelled() -> None:
    server = HttpServer(HttpConfig(port=0), Metrics(), ReadinessGate(), clock=FakeClock())
    task = asyncio.create_task(server.run())

    async def listening() -> bool:
        return server.port is not None

    await until(listening)
    port = server.port
    assert port is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.port is None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


# --------------------------------------------------------------------------- healthcheck


async def test_main_healthcheck_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    def check(url: str) -> int:
        return main_healthcheck(argparse.Namespace(url=url, timeout=2.0))

    gate = ReadinessGate(["instruments"])
    async with serving(readiness=gate) as (server, _):
        assert await asyncio.to_thread(check, f"{server.url}/healthz") == 0
        assert '"healthy":true' in capsys.readouterr().out
        assert await asyncio.to_thread(check, f"{server.url}/readyz") == 1
        err = capsys.readouterr().err
        assert "HTTP 503" in err and "instruments" in err
        assert await asyncio.to_thread(check, f"{server.url}/nowhere") == 1
        assert "HTTP 404" in capsys.readouterr().err
    assert await asyncio.to_thread(check, f"http://127.0.0.1:{closed_port()}/healthz") == 1
    assert await asyncio.to_thread(check, "file:///etc/passwd") == 1
    assert await asyncio.to_thread(check, "http://[::1") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 3


async def _get_as(session: aiohttp.ClientSession, url: str, host: str) -> int:
    async with session.get(url, headers={"Host": host}) as response:
        await response.read()
        return response.status


async def test_pages_refuse_a_foreign_host_name_but_probes_answer_any() -> None:
    """DNS rebinding: a page elsewhere whose name now resolves to 127.0.0.1 sends its own
    name as Host; the browser-facing pages refuse it (421), the probes do not care."""
    async with serving() as (server, session):
        base = server.url
        for name in ("127.0.0.1", f"127.0.0.1:{server.port}", "localhost:1", "[::1]:8080"):
            assert await _get_as(session, base + "/status", name) == 200, name
        for name in ("evil.example", f"evil.example:{server.port}", "127.0.0.1.evil.example"):
            assert await _get_as(session, base + "/status", name) == 421, name
            assert await _get_as(session, base + "/", name) == 421, name
        for path in ("/healthz", "/metrics"):
            assert await _get_as(session, base + path, "evil.example") == 200, path
        assert await _get_as(session, base + "/readyz", "evil.example") == 200  # no checks: open


async def test_allowed_hosts_lets_a_named_host_in() -> None:
    config = HttpConfig(host="0.0.0.0", port=0, allowed_hosts=("Bot.Lan",))
    server = HttpServer(config, Metrics(), ReadinessGate(), None, FakeClock())
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/status"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
            assert await _get_as(session, url, f"bot.lan:{server.port}") == 200
            assert await _get_as(session, url, "localhost") == 200
            assert await _get_as(session, url, "0.0.0.0") == 421  # a wildcard is not a name
            assert await _get_as(session, url, "other.lan") == 421
    finally:
        await server.close()
