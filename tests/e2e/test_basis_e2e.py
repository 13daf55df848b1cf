"""End to end, one strategy on both venues: ``krakenbot run config/basis.paper.yaml`` (the
basis hedge; both simulators inside the daemon) as a real subprocess. It becomes ready, a
spot fill is hedged by a fill on the perpetual, and SIGTERM exits 0 with the strategy's
orders on both venues cancelled (both stores show every order closed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.store import Store
from tests.e2e.conftest import REPO, STARTUP_S, SpawnDaemon

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def test_the_basis_paper_config_hedges_spot_fills_on_futures_and_sigterm_cleans_both(
    tmp_path: Path, spawn_daemon: SpawnDaemon
) -> None:
    text = (REPO / "config" / "basis.paper.yaml").read_text()
    assert text.count("port: 8080") == 1
    daemon = spawn_daemon(text.replace("port: 8080", "port: 0"), name="basis.paper.yaml")
    (ready,) = daemon.logs.wait_for("deployment_ready", 2 * STARTUP_S)
    assert ready["venues"] == ["spot", "futures"]
    daemon.logs.wait_for("strategy_started", 5, where=lambda r: r.get("strategy") == "basis")
    (spot,) = daemon.logs.wait_for(
        "order_filled",
        45,
        where=lambda r: r.get("symbol") == "BTC/USD" and r["strategy"] == "basis",
    )
    (hedge,) = daemon.logs.wait_for(
        "order_filled",
        45,
        where=lambda r: r.get("symbol") == "PF_XBTUSD" and r.get("venue") == "futures",
    )
    assert hedge["strategy"] == "basis" and hedge["side"] != spot["side"]
    assert daemon.terminate() == 0
    assert not daemon.logs.events("orders_left_open")
    stopped = daemon.logs.events("venue_shutdown_complete")
    assert sorted((r["venue"], r["exit_code"]) for r in stopped) == [("futures", 0), ("spot", 0)]
    for db in ("basis-paper.db", "basis-futures-paper.db"):
        store = Store.open(tmp_path / "data" / db)
        try:
            assert store.load_orders(open_only=False), db
            assert store.load_orders(open_only=True) == [], db
        finally:
            store.close()
    assert "Traceback" not in daemon.logs.text()
