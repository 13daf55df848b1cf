"""``krakenbot record`` as a real subprocess against the simulator subprocess: it records
until a real SIGTERM, exits 0 with its file closed whole and indexed, and ``krakenbot
replay`` (a subprocess too) verifies every checksum of the recording."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from bot.kraken.capture import CaptureReader
from bot.research.recorder.index import read_index
from tests.e2e.conftest import Proc, SimProc, SpawnDaemon, python_env, start


def test_record_stops_on_sigterm_with_its_file_whole_and_replayable(
    sim: SimProc, tmp_path: Path, procs: list[Proc]
) -> None:
    out = tmp_path / "rec"
    argv = [sys.executable, "-m", "bot", "--log-format", "json", "record",
            "--url", sim.info["ws_public"], "--symbols", "BTC/USD,ETH/USD",
            "--out", str(out), "--http", "127.0.0.1:0"]  # fmt: skip
    proc = start(argv, cwd=tmp_path, env=python_env(), name="record")
    procs.append(proc)
    proc.logs.wait_for("record_started")
    proc.logs.wait_for("book_valid", count=2)
    proc.logs.wait_for("record_file_opened")
    mark = proc.logs.mark()
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0, proc.logs.text()
    (stopped,) = proc.logs.events("record_stopped", since=mark)
    assert stopped["frames"] > 0

    paths = sorted(out.glob("*.jsonl.gz"))
    assert len(paths) == 1
    reader = CaptureReader(paths)
    lines = list(reader)
    assert reader.truncated == []  # closed whole: every gzip member complete
    assert len(lines) == stopped["frames"]
    (entry,) = read_index(out)
    assert entry["status"] == "complete" and entry["frames"] == stopped["frames"]
    assert entry["symbols"] == ["BTC/USD", "ETH/USD"]

    replay = subprocess.run(
        [sys.executable, "-m", "bot", "replay", str(out)],
        cwd=tmp_path, env=python_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    report = json.loads(replay.stdout)
    assert report["checksum_mismatches"] == 0 and report["unparsed"] == 0
    assert report["checksums_verified"] == report["book_frames"] > 0
    assert set(report["symbols"]) == {"BTC/USD", "ETH/USD"}


def test_record_refuses_an_output_directory_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "record", "--url", "ws://127.0.0.1:9/v2",
         "--symbols", "BTC/USD", "--out", str(blocker / "rec"), "--http", "off"],
        cwd=tmp_path, env=python_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--out: cannot write to" in result.stderr and "Traceback" not in result.stderr


def test_paper_mode_on_live_prices_trades_on_the_upstream_market(
    sim: SimProc, spawn_daemon: SpawnDaemon, tmp_path: Path
) -> None:
    """``mode: paper`` + ``sim.source: live``: the daemon's own simulator mirrors an
    upstream (here a second simulator standing in for Kraken), needs no keys, gets ready,
    and its market maker's quotes fill from the upstream's prints."""
    config = {
        "mode": "paper",
        "market": {"symbols": ["BTC/USD"], "book_depth": 10},
        "sim": {"source": "live", "upstream_url": sim.info["ws_public"]},
        "store": {"path": str(tmp_path / "bot.db")},
        "http": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "info", "format": "json"},
        "strategies": [
            {
                "name": "mm",
                "class": "market_maker",
                "symbols": ["BTC/USD"],
                "params": {"spread_bps": 2, "size": "0.01", "max_inventory": "0.1"},
            }
        ],
    }
    daemon = spawn_daemon(config)
    (started,) = daemon.logs.wait_for("paper_venue_started", 20)
    assert started["source"] == "live"
    daemon.logs.wait_for("upstream_connected", 20)
    daemon.wait_ready()
    daemon.logs.wait_for("fill", 60)
    assert daemon.terminate() == 0
