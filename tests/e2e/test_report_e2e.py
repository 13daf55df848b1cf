"""A short paper run of the real daemon, then ``krakenbot report|orders|fills`` on its store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, SpawnDaemon, python_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def krakenbot(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "--log-format", "json", *args],
        cwd=cwd, env=python_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_report_of_a_paper_run_matches_its_store(tmp_path: Path, spawn_daemon: SpawnDaemon) -> None:
    text = (REPO / "config" / "default.yaml").read_text()
    daemon = spawn_daemon(text.replace("port: 8080", "port: 0"), name="default.yaml")
    daemon.wait_ready()
    daemon.logs.wait_for("fill", 45, count=2)
    assert daemon.terminate() == 0
    store = tmp_path / "data" / "paper.db"
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
        n_fills = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
        states = dict(conn.execute("SELECT state, count(*) FROM orders GROUP BY state"))
    assert n_fills >= 2

    result = krakenbot(tmp_path, "report", "--store", str(store), "--out", "out", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc == json.loads((tmp_path / "out" / "report.json").read_text())
    total = next(f for f in doc["figures"] if f["scope"] == "total" and f["quote"] == "USD")
    assert total["fills"] == n_fills
    assert total["orders"] == sum(states.values())
    assert total["orders_by_state"] == states
    assert {f["strategy"] for f in doc["figures"] if f["scope"] == "line"} == {"mm"}
    assert "Plotly.newPlot" in (tmp_path / "out" / "report.html").read_text()

    fills = krakenbot(tmp_path, "fills", "--store", str(store), "--json")
    assert fills.returncode == 0 and len(json.loads(fills.stdout)) == n_fills
    orders = krakenbot(tmp_path, "orders", "--store", str(store), "--strategy", "mm")
    assert orders.returncode == 0
    assert orders.stdout.splitlines()[-1] == f"{sum(states.values())} orders"
    summary = krakenbot(tmp_path, "report", "--store", str(store))
    assert summary.returncode == 0 and "total USD" in summary.stdout
    assert "mm BTC/USD" in summary.stdout or "mm ETH/USD" in summary.stdout
