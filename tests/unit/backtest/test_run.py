"""``run_backtest`` end to end on the real v2 capture: the daemon's order path, a real store."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from bot.backtest import BacktestSpec, run_backtest
from bot.research.store_reader import read_store
from tests.unit.backtest.helpers import write_capture, write_config, write_synthetic


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


def test_from_and_to_bound_the_trading_window(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mm.yaml")
    data = (write_synthetic(tmp_path / "book.jsonl", 3000),)
    whole = run_backtest(BacktestSpec(config=config, data=data, store_path=tmp_path / "a.db"))
    start, end = whole.start_ns, whole.end_ns
    from_ns, to_ns = start + (end - start) // 3, start + 2 * (end - start) // 3
    part = run_backtest(
        BacktestSpec(config=config, data=data, store_path=tmp_path / "b.db",
                     from_ns=from_ns, to_ns=to_ns)
    )  # fmt: skip
    orders = read_store(part.store_path).orders
    assert orders and part.frames < whole.frames
    assert min(o.created_ns for o in orders) >= from_ns  # the books warmed up before it
    assert max(o.created_ns for o in orders) < to_ns
    assert part.end_ns < to_ns


@pytest.mark.timeout(60)
def test_a_cancel_slower_than_the_flush_is_left_open_not_waited_for(tmp_path: Path) -> None:
    # 10 s each way: the shutdown's cancels cannot come back within the 5 s flush.
    spec = BacktestSpec(
        config=write_config(tmp_path / "mm.yaml"), data=(write_capture(tmp_path / "b.jsonl"),),
        store_path=tmp_path / "slow.db", latency_ms=10_000,
    )  # fmt: skip
    result = run_backtest(spec)  # returns: nothing waits on a clock that stopped
    left = [o for o in read_store(result.store_path).orders if o.is_open]
    assert left and all(o.cancel_pending for o in left)  # as the store last knew them


def test_it_runs_in_worker_processes_and_its_result_comes_back(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mm.yaml")
    data = (write_capture(tmp_path / "btc.jsonl"),)
    specs = [
        BacktestSpec(config=config, data=data, store_path=tmp_path / f"w{bps}.db",
                     params={"mm": {"spread_bps": bps}})
        for bps in (2, 40)
    ]  # fmt: skip
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a pool's worker
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        narrow, wide = pool.map(run_backtest, specs)
    assert narrow.orders >= 2 and wide.orders >= 2
    assert json.loads(narrow.report_json)["figures"][0]["strategy"] == "mm"
    bids = [[o.price for o in read_store(r.store_path).orders if o.side == "buy"]
            for r in (narrow, wide)]  # fmt: skip
    assert max(bids[1]) < min(bids[0])  # each worker ran with its own params
