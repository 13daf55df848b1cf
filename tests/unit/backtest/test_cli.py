"""``krakenbot backtest`` in process: the summary on stdout, report.json, report.html, store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.log import reset_logging
from tests.unit.backtest.helpers import write_capture, write_config


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()  # the run configures logging (warning) for the whole process


def test_backtest_writes_the_report_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "mm.yaml")
    data = write_capture(tmp_path / "btc.jsonl")
    out = tmp_path / "out"
    argv = ["backtest", "--config", str(config), "--data", str(data), "--out", str(out)]
    assert main([*argv, "--params", "mm.spread_bps=4", "--latency-ms", "2"]) == 0
    captured = capsys.readouterr()
    assert "krakenbot report: backtest of mm" in captured.out
    assert "mm BTC/USD" in captured.out
    assert "510 frames" in captured.err
    assert "progress_done" in captured.err  # stderr is no terminal here: log lines
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["latency_ms"] == "2"
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    # The store is the daemon's: `krakenbot report --store` reads it unchanged.
    assert main(["report", "--store", str(out / "backtest.db"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["figures"][0]["orders"] == report["figures"][0]["orders"] >= 2
    # A second run into the same directory would overwrite the first one's store: refused.
    assert main(argv) == 2
    assert "exists already" in capsys.readouterr().err


def test_bad_params_and_times_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "mm.yaml")
    data = write_capture(tmp_path / "btc.jsonl")
    base = ["backtest", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "o")]
    assert main([*base, "--params", "spread_bps=4"]) == 2
    assert "expected NAME.KEY=VALUE" in capsys.readouterr().err
    assert main([*base, "--params", "nobody.size=1"]) == 2
    assert "not in the config: nobody" in capsys.readouterr().err
    assert main([*base, "--from", "2024-05-02", "--to", "2024-05-01"]) == 2
    assert "--to must come after --from" in capsys.readouterr().err
