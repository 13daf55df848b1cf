"""Spot and Futures in one process (``bot.service.both_daemon``), in-process: both
simulators on 127.0.0.1 (paper mode, ``config/both.paper.yaml`` with temporary stores and
the HTTP face on port 0), real sockets.

What a trader relies on: each venue's strategy places and fills orders; the one /readyz
names a venue while it is down (its simulator stopped), the other venue keeps trading
meanwhile, and the deployment gets back to ready by itself once the venue is back; a stop
cancels both venues' orders and disarms both switches.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from bot.config import Config, load_config_text
from bot.core.errors import ConfigError
from bot.service.both_daemon import BothDaemon
from bot.service.control_api import NONCE_HEADER, TIME_HEADER
from bot.service.daemon import Daemon
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue
from bot.sim.venue import DEFAULT_ACCOUNT
from bot.strategy.loader import load_strategies
from bot.strategy.runner import RunnerState
from tests.loopback.conftest import SimHandle
from tests.loopback.test_daemon_inprocess import running  # any daemon: run, started, stop
from tests.loopback.test_futures_startup import fsim, new_key  # noqa: F401 (the fixture)
from tests.loopback.waiting import until

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
PAPER_ACCOUNT = "paper"  # the Futures paper account (bot.service.futures_paper)


def both_config(tmp: Path, env: dict[str, str] | None = None, **replace: str) -> Config:
    text = (REPO / "config" / "both.paper.yaml").read_text()
    for old, new in {
        "path: data/paper.db": f"path: {tmp / 'spot.db'}",
        "store_path: data/futures-paper.db": f"store_path: {tmp / 'futures.db'}",
        "port: 8080": "port: 0",
        **replace,
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return load_config_text(text, "both.yaml", env or {})


def fills(side: Daemon) -> float:
    """The side's fills so far (its own metrics: ``krakenbot_<venue>_fills_total``)."""
    return sum(v for _, v in side.metrics.snapshot().get("fills", ()))


async def readyz(daemon: BothDaemon) -> dict[str, Any]:
    assert daemon.http is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(daemon.http.url + "/readyz") as r,
    ):
        body: dict[str, Any] = json.loads(await r.text())
        assert (r.status == 200) is body["ready"]
        return body


async def eventually(check: Callable[[], Any], what: str, timeout_s: float = 45.0) -> None:
    """``until`` for an async check (polled, bounded; fails naming ``what``)."""
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 (the daemon's tasks change it)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_both_venues_trade_and_one_venue_down_leaves_the_other_trading(
    tmp_path: Path,
) -> None:
    config = both_config(tmp_path)
    daemon = BothDaemon(config, load_strategies(config.strategies))
    restarted: FuturesSimServer | None = None
    with capture_logs(processors=[merge_contextvars]) as events:  # each line's venue
        try:
            async with running(daemon) as task:
                body = await readyz(daemon)
                assert body["ready"] is True
                assert {n.split(".")[0] for n in body["checks"]} == {"spot", "futures"}
                assert "spot.books" in body["checks"] and "futures.deadman" in body["checks"]
                # Each venue's strategy places and fills on its own simulator.
                await until(lambda: fills(daemon.spot) > 0, "a spot fill", 45)
                await until(lambda: fills(daemon.futures) > 0, "a Futures fill", 45)
                fsim = daemon.futures.sim
                assert isinstance(fsim, FuturesSimServer)
                venue, port = fsim.venue, fsim.port
                # Futures down: its simulator stops listening, its sockets close.
                await fsim.close()

                async def futures_named() -> bool:
                    body = await readyz(daemon)
                    failing = body["failing"]
                    return bool(failing) and all(n.startswith("futures.") for n in failing)

                await eventually(futures_named, "/readyz naming the Futures venue")
                # Spot keeps trading meanwhile: its gate open, new fills.
                spot_before = fills(daemon.spot)
                await until(
                    lambda: fills(daemon.spot) > spot_before, "spot fills in the outage", 45
                )
                assert daemon.spot.gate.is_open and not daemon.futures.gate.is_open
                assert not (await readyz(daemon))["ready"]
                # Futures back on the same port: ready again by itself, trading again.
                restarted = await FuturesSimServer.start(venue, "127.0.0.1", port, pump=True)

                async def ready() -> bool:
                    return bool((await readyz(daemon))["ready"])

                await eventually(ready, "ready again")
                futures_before = fills(daemon.futures)
                await until(lambda: fills(daemon.futures) > futures_before, "Futures fills", 45)
                daemon.request_stop("test")
                async with asyncio.timeout(30):
                    await task
            assert daemon.exit_code == 0
            # Both venues' orders cancelled, both switches disarmed.
            spot_sim = daemon.spot.sim
            assert spot_sim.venue.exchange.open_orders(DEFAULT_ACCOUNT) == []
            assert spot_sim.venue.deadman_trigger(DEFAULT_ACCOUNT) is None
            assert venue.exchange.open_orders(PAPER_ACCOUNT) == []
            assert not venue.deadman_armed(PAPER_ACCOUNT)
        finally:
            if restarted is not None:
                await restarted.close()
    ready_by = {e.get("venue") for e in events if e["event"] == "daemon_ready"}
    assert ready_by == {"spot", "futures"}
    disarmed = [
        e["venue"]
        for e in events
        if e["event"] == "deadman_disarmed" and e.get("component") == "deadman"  # not a sim's
    ]
    assert sorted(disarmed) == ["futures", "spot"]


async def test_one_face_shows_both_venues_and_its_controls_act_on_both(tmp_path: Path) -> None:
    """/metrics tells the venues apart; the dashboard's status shows both venues'
    strategies, orders and balances; the control API halts both, pauses the strategy's."""
    token = {"port: 8080": "port: 0\n  control_token_env: KB_TOKEN"}
    config = both_config(tmp_path, {"KB_TOKEN": TOKEN}, **token)
    daemon = BothDaemon(config, load_strategies(config.strategies))
    async with running(daemon), aiohttp.ClientSession() as session:
        await until(lambda: fills(daemon.spot) > 0 and fills(daemon.futures) > 0, "fills", 45)
        assert daemon.http is not None
        url = daemon.http.url
        async with session.get(url + "/metrics") as r:
            lines = (await r.text()).splitlines()
        status: dict[str, Any] = {}

        async def both_shown() -> bool:  # the dashboard's next picture after both attached
            nonlocal status
            async with session.get(url + "/api/status") as r:
                status = await r.json()
            return len(status.get("strategies", ())) == 2

        await eventually(both_shown, "the dashboard showing both venues")
        # The control API: a strategy paused on its own venue; a halt reaches both.
        code, body = await post(session, url + "/api/strategies/mm-perp/pause")
        assert code == 200 and "mm-perp paused" in body["result"], body
        assert daemon.futures.desk is not None and daemon.spot.desk is not None
        assert str(daemon.futures.desk.risk.own_state("mm-perp")) == "halted"
        assert str(daemon.spot.desk.risk.own_state("mm-spot")) == "active"
        code, body = await post(session, url + "/api/halt")
        assert code == 200 and body["result"].startswith("spot: halted"), body
        assert "futures: halted" in body["result"]
        assert str(daemon.spot.desk.risk.state) == str(daemon.futures.desk.risk.state) == "halted"
    for wanted in (
        "krakenbot_ready 1.0",
        'krakenbot_readiness_check{check="spot.books"} 1.0',
        'krakenbot_readiness_check{check="futures.private_feed"} 1.0',
        'krakenbot_spot_feed_connected{feed="public"} 1.0',
        'krakenbot_futures_feed_connected{feed="futures_public"} 1.0',
    ):
        assert wanted in lines, wanted
    assert any(ln.startswith("krakenbot_spot_fills_total{") for ln in lines)
    assert any(ln.startswith("krakenbot_futures_fills_total{") for ln in lines)
    assert any(ln.startswith("process_resident_memory_bytes") for ln in lines)
    assert not any(ln.startswith("krakenbot_spot_process") for ln in lines)
    # One dashboard, both venues.
    assert {s["name"] for s in status["strategies"]} == {"mm-spot", "mm-perp"}
    assert {o["symbol"] for o in status["orders"]} <= {"BTC/USD", "PF_XBTUSD"}
    assets = {row["asset"] for row in status["balances"]["rows"]}
    assert "USD" in assets and "futures:USD" in assets, assets
    assert daemon.exit_code == 0


TOKEN = "a-long-enough-control-token-0123456789"


async def post(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        TIME_HEADER: str(time.time_ns() // 1_000_000),
        NONCE_HEADER: uuid.uuid4().hex,
    }
    async with session.post(url, headers=headers) as reply:
        return reply.status, await reply.json()


async def test_a_fatal_error_of_one_venue_stops_the_other_cleanly_exit_2(
    tmp_path: Path,
    sim: SimHandle,
    fsim: FuturesSimServer,  # noqa: F811 (the imported fixture)
) -> None:
    """Live on both simulators; the Futures key is Read Only: a human must act, so the
    deployment ends (exit 2) naming it, after the spot side stopped the graceful way."""
    fkey = await new_key(fsim, general="read_only")
    data = live_both(tmp_path, sim, fsim.port)
    env = {"SKEY": sim.api_key, "SSECRET": sim.api_secret, "FKEY": fkey[0], "FSECRET": fkey[1]}
    config = load_config_text(json.dumps(data), "both.yaml", env)
    daemon = BothDaemon(config, load_strategies(config.strategies))
    with capture_logs(processors=[merge_contextvars]) as events, pytest.raises(ConfigError):
        async with asyncio.timeout(40):
            await daemon.run()
    assert daemon.exit_code == 2
    failed = [e for e in events if e["event"] == "venue_failed"]
    assert [e["venue"] for e in failed] == ["futures"]
    assert "General API: Full Access" in failed[0]["error"]
    # The spot side was asked to stop and stopped by itself, leaving nothing open.
    stopped = [e for e in events if e["event"] == "venue_shutdown_complete"]
    assert {e["venue"] for e in stopped} == {"spot", "futures"}
    assert sim.venue.exchange.open_orders(sim.account) == []
    assert sim.venue.deadman_trigger(sim.account) is None


async def test_a_venue_down_at_the_start_holds_only_its_own_strategies(
    tmp_path: Path, sim: SimHandle
) -> None:
    """Live on both; Kraken Futures unreachable as the daemon starts. Spot's strategies
    start when spot's gate opens; /readyz names only Futures; once Futures answers, the
    deployment is ready by itself and the Futures strategy starts."""
    with socket.socket() as probe:  # a free port, where Futures will answer later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    venue = FuturesVenue(seed=3)
    creds = venue.add_account(DEFAULT_ACCOUNT)
    config = load_config_text(json.dumps(live_both(tmp_path, sim, port)), "both.yaml", {
        "SKEY": sim.api_key, "SSECRET": sim.api_secret,
        "FKEY": creds.api_key, "FSECRET": creds.api_secret,
    })  # fmt: skip
    daemon = BothDaemon(config, load_strategies(config.strategies))
    task = asyncio.create_task(daemon.run())
    futures: FuturesSimServer | None = None
    try:
        async with asyncio.timeout(30):
            await daemon.spot.wait_started()
        assert daemon.spot.runners["spot"].state is RunnerState.RUNNING
        assert daemon.futures.runners == {} or all(
            r.state is RunnerState.NEW for r in daemon.futures.runners.values()
        )
        body = await readyz(daemon)
        assert not body["ready"] and body["failing"]
        assert all(n.startswith("futures.") for n in body["failing"]), body["failing"]
        futures = await FuturesSimServer.start(venue, "127.0.0.1", port, pump=True)

        async def ready() -> bool:
            return bool((await readyz(daemon))["ready"])

        await eventually(ready, "ready once Futures answers", 60)
        assert daemon.futures.runners["perp"].state is RunnerState.RUNNING
        daemon.request_stop("test")
        async with asyncio.timeout(30):
            await task
        assert daemon.exit_code == 0
    finally:
        if not task.done():
            daemon.request_stop("test")
            async with asyncio.timeout(30):
                await task
        if futures is not None:
            await futures.close()


def live_both(tmp: Path, sim: SimHandle, futures_port: int) -> dict[str, Any]:
    return {
        "mode": "live",
        "venue": {
            "rest_url": sim.base_url, "ws_public_url": sim.ws_public_url,
            "ws_private_url": sim.ws_private_url, "tier": "pro",
        },
        "credentials": {"api_key_env": "SKEY", "api_secret_env": "SSECRET"},
        "futures": {
            "rest_url": f"http://127.0.0.1:{futures_port}",
            "ws_url": f"ws://127.0.0.1:{futures_port}/ws/v1", "symbols": ["PF_XBTUSD"],
            "credentials": {"api_key_env": "FKEY", "api_secret_env": "FSECRET"},
            "store_path": str(tmp / "futures.db"),
        },
        "store": {"path": str(tmp / "spot.db")},
        "http": {"host": "127.0.0.1", "port": 0},
        "strategies": [
            {"name": "spot", "class": "market_maker", "venue": "spot", "symbols": ["BTC/USD"],
             "params": {"spread_bps": 2, "size": "0.01", "max_inventory": "0.1"}},
            {"name": "perp", "class": "market_maker", "symbols": ["PF_XBTUSD"],
             "params": {"spread_bps": 2, "size": "0.01", "max_inventory": "0.05"}},
        ],
    }  # fmt: skip
