"""A recorded gap invalidates the book as the live feed's drop does: the strategies see it,
the readiness gate closes, and no order leaves until the next snapshot."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from bot.backtest import BacktestSpec, run_backtest
from bot.research.store_reader import read_store
from tests.unit.backtest.helpers import capture_frames, gap_line, recorder_lines, write_config


def test_after_a_gap_quotes_are_pulled_and_nothing_is_placed(tmp_path: Path) -> None:
    frames = capture_frames()
    lines = recorder_lines(frames)
    cut = 200
    at = json.loads(lines[cut])["recv_ns"]
    data = tmp_path / "rec.jsonl.gz"  # the recorder's own format: gzip, recv_ns, gap marker
    data.write_bytes(gzip.compress(b"\n".join([*lines[:cut], gap_line(at), *lines[cut:]])))
    spec = BacktestSpec(config=write_config(tmp_path / "mm.yaml"), data=(data,),
                        out_dir=tmp_path / "out")  # fmt: skip
    result = run_backtest(spec)
    assert result.gaps == 1
    orders = read_store(result.store_path).orders
    assert orders
    assert all(o.created_ns <= at for o in orders)  # nothing placed on an invalid book
    # The market maker pulled its quotes when the book went invalid, not at the end.
    assert all(o.state.value == "canceled" for o in orders)
    assert max(o.updated_ns for o in orders) < result.end_ns
