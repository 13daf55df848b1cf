"""``krakenbot optimize`` end to end on the real capture: outputs, walk-forward, bad input."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import validate_params
from bot.config.reader import Reader
from bot.core.log import reset_logging
from bot.optimize.results import diverges
from strategies.grid import GridParams
from tests.unit.optimize.helpers import files


def run(*argv: str) -> int:
    try:
        return main(["--log-format", "json", "optimize", *argv])
    finally:
        reset_logging()


def test_the_command_writes_best_yaml_trials_and_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, space, data = files(tmp_path)
    out = tmp_path / "out"
    args = ("-c", str(config), "--data", str(data), "--space", str(space), "--trials", "6")
    assert run(*args, "--out", str(out)) == 0
    assert {p.name for p in out.iterdir()} == {
        "best.yaml", "trials.csv", "trials.json", "report.html", "study.journal",
    }  # fmt: skip
    rows = json.loads((out / "trials.json").read_text())
    assert [r["number"] for r in rows] == list(range(6))
    [best] = [r for r in rows if r["best"]]
    assert best["value"] == max(r["value"] for r in rows if r["value"] is not None)
    with (out / "trials.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["grid.center"] for r in table] == [r["params"]["grid.center"] for r in rows]
    # best.yaml reads back exactly, and the strategy takes it
    reader = Reader("best.yaml", {})
    [entry] = reader.read((out / "best.yaml").read_text())["strategies"]
    assert (entry["name"], entry["class"]) == ("grid", "strategies.grid:GridTrader")
    params = validate_params(GridParams, entry["params"], "best")
    assert str(params.center) == best["params"]["grid.center"]
    assert str(params.spacing_bps) == best["params"]["grid.spacing_bps"]
    assert params.size == GridParams(size="0.01").size  # the file's own params kept
    summary = capsys.readouterr().out
    assert summary.splitlines()[0].startswith("fold  trials  best  in-sample  out-of-sample")
    # the same command again joins the finished study: nothing more to run, same best
    assert run(*args, "--out", str(out)) == 0
    assert json.loads((out / "trials.json").read_text()) == rows


def test_rolling_folds_each_get_their_own_search(tmp_path: Path) -> None:
    config, space, data = files(tmp_path)
    out = tmp_path / "out"
    assert run("-c", str(config), "--data", str(data), "--space", str(space), "--trials", "2",
               "--train", "20s", "--test", "10s", "--out", str(out)) == 0  # fmt: skip
    rows = json.loads((out / "trials.json").read_text())
    assert sorted({r["fold"] for r in rows}) == [0, 1, 2]  # (50.7 s - 20 s) // 10 s
    assert "Fold 2" in (out / "report.html").read_text()


def test_a_bad_space_is_every_problem_with_its_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, space, data = files(tmp_path)
    space.write_text("strategies:\n  grid:\n    levels: {low: 0, high: 5}\n    centre: {low: 1}\n")
    status = run("-c", str(config), "--data", str(data), "--space", str(space), "--trials", "2",
                 "--out", str(tmp_path / "out"))  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert (
        f"{space}:3: strategies.grid.levels.low: Input should be greater than or equal to 1" in err
    )
    assert f"{space}:4: strategies.grid.centre: GridParams has no parameter 'centre'" in err
    assert "did you mean 'center'" in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_bad_splits_and_storage_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, space, data = files(tmp_path)
    base = ("-c", str(config), "--data", str(data), "--space", str(space), "--trials", "2",
            "--out", str(tmp_path / "out"))  # fmt: skip
    assert run(*base, "--train", "20s") == 2
    assert "--train and --test go together" in capsys.readouterr().err
    assert run(*base, "--train", "1m", "--test", "1m") == 2
    assert "shorter than one --train" in capsys.readouterr().err
    assert run(*base, "--storage", "nosuchdb://x") == 2
    assert "--storage" in capsys.readouterr().err


def test_in_and_out_of_sample_diverging_is_warned() -> None:
    assert diverges(2.0, 1.5) is None
    assert diverges(-1.0, -0.5) is None
    assert diverges(0.0, 0.0) is None
    assert "other sign" in str(diverges(2.0, -0.1))
    assert "other sign" in str(diverges(0.0, -0.1))
    assert "under half" in str(diverges(2.0, 0.9))
    assert "twice" in str(diverges(-1.0, -2.5))
    assert diverges(None, 1.0) is None


def test_no_backtest_leaves_a_store_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, space, data = files(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert run("-c", str(config), "--data", str(data), "--space", str(space), "--trials", "3",
               "--out", str(tmp_path / "out")) == 0  # fmt: skip
    assert list(scratch.iterdir()) == []  # the probe's, the trials' and the test runs' stores
