"""``run_backtest`` end to end on the real v2 capture: the daemon's order path, a real store."""

from __future__ import annotations

import json
from pathlib import Path

from bot.backtest import BacktestSpec, run_backtest
from bot.research.store_reader import read_store
from tests.unit.backtest.helpers import write_capture, write_config


def test_market_maker_quotes_through_the_engine_into_a_real_store(tmp_path: Path) -> None:
    spec = BacktestSpec(
        config=write_config(tmp_path / "mm.yaml"),
        data=(write_capture(tmp_path / "btc.jsonl"),),
        out_dir=tmp_path / "out",
    )
    result = run_backtest(spec)
    assert (result.frames, result.book_frames, result.gaps) == (510, 510, 0)
    assert result.store_path == tmp_path / "out" / "backtest.db"
    snapshot = read_store(result.store_path)  # what `krakenbot report --store` reads
    assert len(snapshot.orders) == result.orders >= 2
    sides = {o.side for o in snapshot.orders}
    assert sides == {"buy", "sell"}
    assert all(o.strategy == "mm" and o.post_only for o in snapshot.orders)
    # The shutdown cancelled what was left: nothing stays open after a backtest.
    assert not [o for o in snapshot.orders if o.is_open]
    report = json.loads(result.report_json)
    assert report["meta"]["mode"] == "backtest"
    assert report["window"]["start_ns"] == result.start_ns


def test_it_runs_again_in_the_same_process_with_other_params(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mm.yaml")
    data = (write_capture(tmp_path / "btc.jsonl"),)
    first = run_backtest(BacktestSpec(config=config, data=data, store_path=tmp_path / "a.db"))
    wide = BacktestSpec(
        config=config, data=data, store_path=tmp_path / "b.db",
        params={"mm": {"spread_bps": 40}},
    )  # fmt: skip
    second = run_backtest(wide)
    prices = lambda path: sorted(o.price for o in read_store(path).orders)  # noqa: E731
    assert prices(first.store_path) != prices(second.store_path)
    bids = [o.price for o in read_store(second.store_path).orders if o.side == "buy"]
    firsts = [o.price for o in read_store(first.store_path).orders if o.side == "buy"]
    assert max(bids) < min(firsts)  # 40 bp wide: the bid sits lower
