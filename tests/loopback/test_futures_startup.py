"""The Futures daemon's start-up check of its key's access level, in-process against the
Futures simulator on 127.0.0.1.

Keys are made through the simulator's admin API (``POST /admin/keys``, with Kraken
Futures' two settings per key: General API and Withdrawal API), so the daemon meets them
as it would meet Kraken's: over real sockets, refused with ``authenticationError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from bot.config import Config, load_config_text
from bot.core.errors import ConfigError
from bot.service.futures_daemon import FuturesDaemon
from bot.sim.futures.server import FuturesSimServer, running_futures_sim
from bot.sim.futures.venue import DEFAULT_ACCOUNT, FuturesVenue
from bot.strategy.loader import load_strategies
from tests.loopback.test_daemon_startup import run_until

pytestmark = pytest.mark.timeout(60)
P = "PF_XBTUSD"
Events = list[dict[str, Any]]


@pytest.fixture
async def fsim() -> AsyncIterator[FuturesSimServer]:
    venue = FuturesVenue(seed=3)
    venue.add_account(DEFAULT_ACCOUNT)
    async with running_futures_sim(venue) as server:
        yield server


async def new_key(sim: FuturesSimServer, **levels: str) -> tuple[str, str]:
    """A key on the account with ``levels`` (``general``, ``withdrawal``), made through
    the simulator's admin API."""
    headers = {"X-Admin-Token": sim.venue.admin_token}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.admin_url}/keys", json=levels, headers=headers) as r,
    ):
        assert r.status == 201, await r.text()
        made = await r.json()
    assert {k: made[k] for k in levels} == levels
    return made["api_key"], made["api_secret"]


def live_config(sim: FuturesSimServer, tmp: Path, key: tuple[str, str]) -> Config:
    data = {
        "mode": "live",
        "futures": {
            "rest_url": sim.rest_url, "ws_url": sim.ws_url, "symbols": [P],
            "credentials": {"api_key_env": "FKEY", "api_secret_env": "FSECRET"},
        },
        "store": {"path": str(tmp / "futures.db")},
        "deadman": {"timeout_s": 60},
        "http": {"host": "127.0.0.1", "port": 0},
        "risk": {"max_open_orders": 20, "max_orders_per_minute": 600},
        "strategies": [
            {
                "name": "mm", "class": "market_maker", "symbols": [P],
                "params": {"spread_bps": 2, "size": "0.01", "max_inventory": "0.05"},
            }
        ],
    }  # fmt: skip
    return load_config_text(json.dumps(data), "futures.yaml", {"FKEY": key[0], "FSECRET": key[1]})


def names(events: Events) -> list[str]:
    return [str(e["event"]) for e in events]


@pytest.mark.parametrize(
    ("general", "refused"),
    [("read_only", "cancelorder answered authenticationError"), ("none", "accounts answered")],
)
async def test_a_key_without_full_access_stops_the_start_naming_it(
    fsim: FuturesSimServer, tmp_path: Path, general: str, refused: str
) -> None:
    key = await new_key(fsim, general=general)
    config = live_config(fsim, tmp_path, key)
    daemon = FuturesDaemon(config, load_strategies(config.strategies))
    with capture_logs() as events, pytest.raises(ConfigError) as caught:
        async with asyncio.timeout(20):
            await daemon.run()
    assert daemon.exit_code == 2  # a configuration error: the key must change
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("the Futures API key lacks General API: Full Access")
    assert refused in problems[0]
    assert "Read Only" in problems[0] if general == "read_only" else "No Access" in problems[0]
    assert '"General API" set to "Full Access"' in problems[1]
    assert '"Withdrawal API" left at "No Access"' in problems[1]
    # /readyz names it (the HTTP face reads the same gate), without the key.
    assert daemon.http is not None
    ready = daemon.http.ready()
    assert ready["ready"] is False and "permissions" in ready["failing"]
    detail = ready["checks"]["permissions"]["detail"]
    assert detail.startswith("missing General API: Full Access: ") and refused in detail
    assert key[0] not in detail and key[0] not in str(caught.value)
    # Nothing traded and nothing armed: the check comes before the feeds and the engine.
    assert "daemon_ready" not in names(events) and "daemon_starting" not in names(events)
    assert fsim.venue.exchange.open_orders(DEFAULT_ACCOUNT) == []
    assert not fsim.venue.deadman_armed(DEFAULT_ACCOUNT)


async def test_a_full_access_key_starts(fsim: FuturesSimServer, tmp_path: Path) -> None:
    """What docs/futures.md tells a trader to set: Full Access, no withdrawals."""
    config = live_config(fsim, tmp_path, await new_key(fsim, general="full", withdrawal="none"))
    daemon = FuturesDaemon(config, load_strategies(config.strategies))
    with capture_logs() as events:
        await run_until(daemon, events, "daemon_ready")
    checked = [e for e in events if e["event"] == "permissions_checked"]
    assert [e["permissions"] for e in checked] == [["General API: Full Access"]]
    assert names(events).index("permissions_checked") < names(events).index("daemon_ready")
    assert daemon.exit_code == 0
    # Its nonce mark was kept ahead by a task of its own (``keep_nonce_ahead``).
    assert "nonce-mark" in daemon.supervisor.stats


async def test_the_admin_api_refuses_a_bad_key_request(fsim: FuturesSimServer) -> None:
    url, headers = f"{fsim.admin_url}/keys", {"X-Admin-Token": fsim.venue.admin_token}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"general": "read_only"}) as r:
            assert r.status == 401  # no admin token
        for body, said in [
            ({"general": "trade"}, "unknown access level 'trade'"),
            ({"withdrawal": "read_only"}, "No Access or Full Access"),
            ({"general": "full", "spot": True}, "unknown field(s) spot"),
            ({"account": "nobody"}, "no account 'nobody'"),
            (["full"], "expected a JSON object"),
        ]:
            async with session.post(url, json=body, headers=headers) as r:
                assert r.status == 400 and said in (await r.json())["error"], body
        async with session.post(url, json={"withdrawal": "Full Access"}, headers=headers) as r:
            made = await r.json()
    assert r.status == 201 and (made["general"], made["withdrawal"]) == ("full", "full")
    state = fsim.venue.key(made["api_key"])
    assert state is not None and state.account == DEFAULT_ACCOUNT
