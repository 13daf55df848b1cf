"""End to end with spot AND Kraken Futures in one ``krakenbot run`` process: a real
subprocess, real signals, real sockets.

Out of the box: ``config/both.paper.yaml`` (both simulators inside the daemon) becomes ready,
trades on both venues and stops on SIGTERM with both venues' orders cancelled and both
switches disarmed. Across a SIGKILL: a ``mode: live`` deployment against the spot simulator
and the Futures simulator, each its own subprocess (``python -m bot sim``, ``python -m
bot.sim.futures``) with its own key pair, restarted without sending any order twice on
either venue. Each log line of a venue carries its ``venue``.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.store import Store
from tests.e2e.conftest import (
    REPO,
    STARTUP_S,
    Daemon,
    SimProc,
    SpawnDaemon,
    by_cl_ord_id,
    live_config,
)
from tests.e2e.test_futures_e2e import FuturesSim, P, fsim  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]
VENUES = ("spot", "futures")


def placed_on(daemon: Daemon, venue: str, count: int = 1) -> list[dict[str, Any]]:
    return daemon.logs.wait_for(
        "order_placed", 30, where=lambda r: r.get("venue") == venue and "order_id" in r,
        count=count,
    )  # fmt: skip


def switches_disarmed(daemon: Daemon) -> set[str]:
    """The venues whose daemon-side switch logged its disarm (not a simulator's line)."""
    return {
        r["venue"]
        for r in daemon.logs.events("deadman_disarmed")
        if r.get("component") == "deadman"
    }


def test_the_paper_config_trades_both_venues_and_sigterm_cleans_both(
    tmp_path: Path, spawn_daemon: SpawnDaemon
) -> None:
    text = (REPO / "config" / "both.paper.yaml").read_text()
    assert text.count("port: 8080") == 1
    daemon = spawn_daemon(text.replace("port: 8080", "port: 0"), name="both.paper.yaml")
    (ready,) = daemon.logs.wait_for("deployment_ready", 2 * STARTUP_S)
    assert ready["venues"] == list(VENUES) and ready["mode"] == "paper"
    for venue in VENUES:
        placed_on(daemon, venue)
        daemon.logs.wait_for("fill", 45, where=lambda r, v=venue: r.get("venue") == v)  # type: ignore[misc]
    with urllib.request.urlopen(ready["http"] + "/readyz", timeout=5) as r:
        body = json.loads(r.read())
    assert body["ready"] is True
    assert {name.split(".")[0] for name in body["checks"]} == set(VENUES)
    assert daemon.terminate() == 0
    assert switches_disarmed(daemon) == set(VENUES)
    assert not daemon.logs.events("orders_left_open")
    stopped = daemon.logs.events("venue_shutdown_complete")
    assert sorted((r["venue"], r["exit_code"]) for r in stopped) == [("futures", 0), ("spot", 0)]
    # Each venue's own store, every order it placed closed by the stop.
    for db in (tmp_path / "data" / "paper.db", tmp_path / "data" / "futures-paper.db"):
        store = Store.open(db)
        try:
            assert store.load_orders(open_only=False), db
            assert store.load_orders(open_only=True) == [], db
        finally:
            store.close()
    assert "Traceback" not in daemon.logs.text()


def both_live_config(sim: SimProc, futures: FuturesSim, tmp: Path) -> dict[str, Any]:
    """Live on both simulators: spot's key from the environment (``spawn_daemon``'s),
    Futures' from files (another key pair)."""
    config = live_config(sim, tmp, deadman_s=60)
    config["strategies"][0]["venue"] = "spot"
    key, secret = tmp / "futures.key", tmp / "futures.secret"
    key.write_text(futures.info["api_key"])
    secret.write_text(futures.info["api_secret"])
    for path in (key, secret):
        path.chmod(0o600)
    config["futures"] = {
        "rest_url": futures.info["rest"], "ws_url": futures.info["ws"],
        "credentials": {"api_key_file": str(key), "api_secret_file": str(secret)},
        "symbols": [P], "store_path": str(tmp / "futures.db"),
    }  # fmt: skip
    config["strategies"].append(
        {
            "name": "perp", "class": "market_maker", "venue": "futures", "symbols": [P],
            "params": {"spread_bps": 2, "size": "0.01", "max_inventory": "0.05"},
        }
    )  # fmt: skip
    return config


def test_sigkill_then_restart_sends_no_order_twice_on_either_venue(
    tmp_path: Path,
    sim: SimProc,
    fsim: FuturesSim,  # noqa: F811 (the imported fixture)
    spawn_daemon: SpawnDaemon,
) -> None:
    config = both_live_config(sim, fsim, tmp_path)
    first = spawn_daemon(config, sim=sim, name="first.yaml")
    first.logs.wait_for("deployment_ready", 2 * STARTUP_S)
    for venue in VENUES:
        placed_on(first, venue, count=2)
    first.proc.signal(signal.SIGKILL)
    assert first.proc.wait(10) == -signal.SIGKILL
    second = spawn_daemon(config, sim=sim, name="second.yaml")
    second.logs.wait_for("deployment_ready", 2 * STARTUP_S)
    for venue in VENUES:
        assert (
            second.logs.wait_for(
                "reconciled",
                5,
                where=lambda r, v=venue: r.get("venue") == v,  # type: ignore[misc]
            )[0]["lost"]
            == 0
        )
        placed_on(second, venue)
    assert second.terminate() == 0
    assert switches_disarmed(second) == set(VENUES)
    for venue in VENUES:  # no order sent twice, across the restart
        ids = [
            r["cl_ord_id"]
            for logs in (first.logs, second.logs)
            for r in logs.events("order_sent")
            if r.get("venue") == venue
        ]
        assert ids and len(ids) == len(set(ids)), venue
    sim.daemon_gone = True
    counts = by_cl_ord_id(sim.all_orders())
    assert {cid: t for cid, t in counts.items() if len(t) > 1} == {}
    assert sim.open_orders() == {}
    assert fsim.get("openorders")["openOrders"] == []
