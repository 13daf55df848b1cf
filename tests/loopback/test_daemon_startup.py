"""The daemon's start-up checks, in-process against the simulator on 127.0.0.1.

What a start refuses before it trades: a store another deployment made (its owner stamp),
and an API key that lacks a permission the daemon needs (keys made through the
simulator's admin API, ``POST /admin/keys``, with Kraken's per-key permissions).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.config import Config, StoreConfig, load_config_text
from bot.core.errors import ConfigError, StoreError
from bot.service.daemon import Daemon
from bot.sim.keys import ALL_PERMISSIONS
from bot.store import Store
from bot.store.owner import read_owner
from bot.strategy.loader import load_strategies
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.test_daemon_inprocess import Events, default_config, live_yaml, names

pytestmark = pytest.mark.timeout(60)


def paper_config(store: Path) -> Config:
    return default_config(store.parent).model_copy(update={"store": StoreConfig(path=store)})


def live_config(
    sim: SimHandle, store: Path, key: tuple[str, str] | None = None, tier: str = "starter"
) -> Config:
    """``test_daemon_inprocess``'s live deployment on ``sim``, with ``store`` and ``key``,
    its rate limits modelled at ``tier`` (give the simulator's)."""
    text = live_yaml(sim, store.parent, tier).replace(str(store.parent / "live.db"), str(store))
    api_key, api_secret = key or (sim.api_key, sim.api_secret)
    return load_config_text(text, "live.yaml", {"SIM_KEY": api_key, "SIM_SECRET": api_secret})


def before_ready(events: Events) -> Events:
    """The events logged before ``daemon_ready``."""
    return events[: names(events).index("daemon_ready")]


async def run_until(daemon: Daemon, events: Events, event: str, timeout_s: float = 30) -> None:
    """Run ``daemon`` until ``event`` is logged, then stop it as SIGTERM does."""
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(timeout_s):
            while event not in names(events):
                assert not task.done(), names(events)
                await asyncio.sleep(0.02)
    finally:
        daemon.request_stop("test")
        async with asyncio.timeout(15):
            await task


async def test_a_live_run_refuses_the_store_a_paper_run_made(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Issue 10 item 9: a live run recovered a paper session's fills into its positions."""
    shared = tmp_path / "shared.db"
    paper = paper_config(shared)
    with capture_logs() as events:
        await run_until(Daemon(paper, load_strategies(paper.strategies)), events, "fill")
    store = Store.open(shared)
    assert store.fills_since(0), "the paper session recorded fills"
    store.close()

    sim = await sim_factory()
    live = live_config(sim, shared)
    daemon = Daemon(live, load_strategies(live.strategies))
    with capture_logs() as events, pytest.raises(StoreError) as caught:
        async with asyncio.timeout(20):
            await daemon.run()
    assert daemon.exit_code == 1  # as for every store the daemon cannot use
    message = str(caught.value)
    assert "was made by another deployment (mode=paper venue=simulator key=none)" in message
    assert f"this one (mode=live venue={sim.base_url}" in message
    assert "positions_recovered" not in names(events)
    assert "instruments_loaded" not in names(events)  # refused before it asked the venue
    assert sim.venue.exchange.open_orders(sim.account) == []

    # Its own store (the mode's default path, here under tmp_path) is stamped live.
    own = tmp_path / "live.db"
    live = live_config(sim, own)
    with capture_logs() as events:
        await run_until(Daemon(live, load_strategies(live.strategies)), events, "daemon_ready")
    store = Store.open(own)
    owner = read_owner(store)
    store.close()
    assert owner is not None and (owner.mode, owner.venue) == ("live", sim.base_url)


async def new_key(sim: SimHandle, permissions: list[str]) -> tuple[str, str]:
    """A key on the account with ``permissions``, made through the simulator's admin API."""
    body = {"account": sim.account, "permissions": permissions}
    async with sim.session.post(f"{sim.admin_url}/keys", json=body, headers=sim.admin_headers) as r:
        assert r.status == 201, await r.text()
        made = await r.json()
    return made["api_key"], made["api_secret"]


@pytest.mark.parametrize(
    ("lacking", "named"),
    [
        (["websocket"], ['"WebSocket interface - On"']),
        (
            ["websocket", "query_closed_orders"],  # the old example config's key (issue 10)
            ['"Orders and trades - Query closed orders & trades"', '"WebSocket interface - On"'],
        ),
        (["query_funds"], ['"Funds permissions - Query"']),
        (
            ["create_orders", "cancel_orders"],
            [
                '"Orders and trades - Create & modify orders"',
                '"Orders and trades - Cancel & close orders"',
            ],
        ),
    ],
)
async def test_a_key_without_a_permission_stops_the_start_naming_it(
    sim_factory: SimFactory, tmp_path: Path, lacking: list[str], named: list[str]
) -> None:
    sim = await sim_factory()
    everything = [p.value for p in ALL_PERMISSIONS]
    key = await new_key(sim, [p for p in everything if p not in lacking])
    config = live_config(sim, tmp_path / "live.db", key)
    daemon = Daemon(config, load_strategies(config.strategies))
    with capture_logs() as events, pytest.raises(ConfigError) as caught:
        async with asyncio.timeout(20):
            await daemon.run()
    assert daemon.exit_code == 2  # a configuration error: the key must change
    problems = caught.value.problems
    for name in named:
        assert any(p.startswith(f"the API key lacks the permission {name}") for p in problems)
    assert problems[-1].startswith("grant ")
    assert len(problems) == len(named) + 1
    # /readyz names it (what the HTTP face serves, read from the same gate).
    assert daemon.http is not None
    ready = daemon.http.ready()
    assert ready["ready"] is False and "permissions" in ready["failing"]
    detail = ready["checks"]["permissions"]["detail"]
    assert detail.startswith("missing: ") and all(name in detail for name in named)
    assert key[0] not in detail
    # Nothing traded, and the feeds never started.
    assert "engine_recovered" not in names(events) and "daemon_ready" not in names(events)
    assert sim.venue.exchange.open_orders(sim.account) == []
    assert sim.venue.deadman_trigger(sim.account) is None


async def test_a_key_with_every_permission_the_daemon_needs_starts(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Exactly what docs/users/live-trading.md tells a user to grant, no more."""
    sim = await sim_factory()
    granted = [
        "query_funds", "query_open_orders", "query_closed_orders", "create_orders",
        "cancel_orders", "websocket",
    ]  # fmt: skip
    config = live_config(sim, tmp_path / "live.db", await new_key(sim, granted))
    daemon = Daemon(config, load_strategies(config.strategies))
    with capture_logs() as events:
        await run_until(daemon, events, "order_placed")
    checked = [e for e in events if e["event"] == "permissions_checked"]
    assert len(checked) == 1 and len(checked[0]["permissions"]) == len(granted)
    assert daemon.exit_code == 0


async def test_a_quick_restart_with_the_same_key_does_not_probe_again(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The probes cost 5 on Kraken's REST counter, which outlives the process: a restart
    soon after a passing check (after a crash, say) skips them."""
    sim = await sim_factory(tier="pro")
    config = live_config(sim, tmp_path / "live.db", tier="pro")
    runs = []
    for _ in range(2):
        daemon = Daemon(config, load_strategies(config.strategies))
        with capture_logs() as events:
            await run_until(daemon, events, "daemon_ready")
        runs.append(events)
    first, second = ([e for e in run if e["event"] == "permissions_checked"] for run in runs)
    assert len(first) == 1 and "cached" not in first[0]
    assert len(second) == 1 and second[0]["cached"] is True
    # The cancel probe runs before the gate opens; a CancelOrder after daemon_ready is the
    # shutdown canceling an order the strategy placed in the meantime, not a probe.
    probed = [e for e in before_ready(runs[1]) if e.get("method") == "CancelOrder"]
    assert probed == []
    assert [e for e in before_ready(runs[0]) if e.get("method") == "CancelOrder"]


async def test_a_live_run_keeps_the_instrument_channel_subscribed(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Issue 10 item 6: live mode turned the instrument channel off, so a precision change
    never reached its books and WS v2 names came from REST's. It stays subscribed, first."""
    sim = await sim_factory(tier="pro")
    config = live_config(sim, tmp_path / "live.db", tier="pro")
    daemon = Daemon(config, load_strategies(config.strategies))
    with capture_logs() as events:
        task = asyncio.create_task(daemon.run())
        try:
            async with asyncio.timeout(30):
                while "daemon_ready" not in names(events):
                    assert not task.done(), names(events)
                    await asyncio.sleep(0.02)
            (public,) = sim.venue.find_connections(kind="public")
            channels = {channel for channel, _symbol, _depth in public.subscriptions}
            assert {"instrument", "book"} <= channels, channels
        finally:
            daemon.request_stop("test")
            async with asyncio.timeout(15):
                await task
    assert daemon.exit_code == 0
