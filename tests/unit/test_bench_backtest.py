"""Smoke test of the backtest benchmark: a few thousand frames through every contender.

It checks the figures' structure and that the contenders did their work (every checksum
verified by the replay, the maker traded); no timing is asserted: speed belongs to the
benchmark's report, not to tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.backtest import run_backtest_bench
from bot.core.log import reset_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()  # the run configures logging (warning) for the whole process


@pytest.mark.timeout(120)
def test_backtest_bench_runs_every_contender_and_reports_every_figure() -> None:
    result = run_backtest_bench(frames=3000, repeat=1)
    figures = result["figures"]
    assert set(figures) == {"replay", "backtest-idle", "backtest-mm"}
    assert all(f["frames_per_s"] > 0 and f["us_per_frame"] > 0 for f in figures.values())
    assert figures["replay"]["checksums_verified"] == 3000
    assert figures["backtest-mm"]["orders"] > 0 and figures["backtest-mm"]["fills"] > 0
    ratios, targets = result["ratios"], result["targets"]
    assert set(ratios) == {"idle_vs_replay", "mm_vs_replay"}
    assert targets["idle_vs_replay_met"] == (ratios["idle_vs_replay"] >= 0.5) or (
        abs(ratios["idle_vs_replay"] - 0.5) < 0.01  # rounding of the printed ratio
    )
    assert isinstance(targets["mm_book_frames_per_s_met"], bool)
    assert result["memory"]["rss_kib_every_10000_frames_of_the_mm_run"] == []  # < 10,000
    assert result["machine"]["cores"]
