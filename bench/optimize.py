"""``krakenbot optimize`` throughput: trials per minute with J=1 and J=2 on the same data.

``python -m bench.optimize [--trials N] [--frames F]`` runs the real search
(``bot.optimize.study.run_workers``: Optuna's TPE sampler, a journal-file storage, one
``run_backtest`` per trial on the fold's train window) twice per data set, once with one
worker (in this process) and once with two worker processes, each on a fresh study in a
temporary directory, and prints JSON: wall seconds, trials per minute, and the J=2/J=1
scaling. Two data sets:

* ``real``: the real BTC/USD depth-10 capture in ``../shared/data/kraken`` (510 frames,
  51 s of July 2023), a grid strategy searched over its centre and spacing: a trial is
  short, so the figure is mostly the per-trial cost (Optuna's storage, the backtest's set
  up, the report);
* ``synthetic``: ``bench.book_stream``'s checksummed BTC/USD book, ``--frames`` frames
  (default 20,000), the bundled market maker searched over spread and size: a trial is a
  backtest of real length, so the figure is mostly the backtest.

The time counted is the search only (workers started and joined), not the split or the
outputs. With J=2 each worker process imports krakenbot and Optuna first (about a second).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.book_stream import StreamSpec, generate_frames
from bot.core.log import configure_logging
from bot.optimize.study import run_workers
from bot.optimize.trial import Search
from bot.optimize.walkforward import anchored

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kraken"
RISK = """\
mode: paper
market: {symbols: [BTC/USD], book_depth: 10}
sim: {balances: {USD: 100000, BTC: 1}}
risk: {max_order_notional: 5000, max_position: {BTC: 2}, max_open_orders: 20,
       price_band_pct: 5, max_orders_per_minute: 1000, daily_loss_limit: 1000}
"""
GRID = (
    RISK
    + """\
strategies:
  - name: grid
    class: strategies.grid:GridTrader
    symbols: [BTC/USD]
    params: {size: 0.01, levels: 3, spacing_bps: 1, center: 29300}
"""
)
GRID_SPACE = """\
strategies:
  grid:
    center: {low: 29300, high: 29600, step: 10}
    spacing_bps: {low: 1, high: 20, step: 1}
"""
MM = (
    RISK
    + """\
strategies:
  - name: mm
    class: strategies.market_maker:MarketMaker
    symbols: [BTC/USD]
    params: {spread_bps: 2, size: 0.01, max_inventory: 0.1, requote_bps: 1}
"""
)
MM_SPACE = """\
strategies:
  mm:
    spread_bps: {low: 1, high: 40, step: 1}
    size: {low: 0.001, high: 0.05, log: true}
"""


def _real(tmp: Path) -> tuple[Path, str, str, int, int]:
    doc = orjson.loads((DATA / "python-kraken-sdk_orderbook-v2.json").read_bytes())
    frames = [doc["init"], *doc["updates"]]
    path = tmp / "btc.jsonl"
    path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in frames))
    return path, GRID, GRID_SPACE, 1_690_730_998_343_415_000, 1_690_731_049_008_834_001


def _synthetic(tmp: Path, frames: int) -> tuple[Path, str, str, int, int]:
    path = tmp / "synthetic.jsonl"
    raws = list(generate_frames(StreamSpec(frames, seed=42)))
    path.write_bytes(b"".join(r + b"\n" for r in raws))
    first = _stamp(raws[1])
    return path, MM, MM_SPACE, first, _stamp(raws[-1]) + 1


def _stamp(raw: bytes) -> int:
    text = orjson.loads(raw)["data"][0]["timestamp"]
    when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def measure(name: str, data: tuple[Path, str, str, int, int], trials: int) -> dict[str, Any]:
    path, config_text, space_text, start, end = data
    out: dict[str, Any] = {"data": name, "trials": trials}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench-optimize-") as tmp_text:
            tmp = Path(tmp_text)
            (tmp / "deploy.yaml").write_text(config_text)
            (tmp / "space.yaml").write_text(space_text)
            search = Search(
                config=tmp / "deploy.yaml", data=(path,), space=tmp / "space.yaml",
                folds=tuple(anchored(start, end, 1)), trials=trials, objective="pnl",
                storage=f"journal:{tmp / 'study.journal'}", study="bench",
            )  # fmt: skip
            t0 = time.perf_counter()
            run_workers(search, jobs, lambda _n: None)
            wall = time.perf_counter() - t0
        out[f"j{jobs}"] = {"wall_s": round(wall, 2), "trials_per_min": round(60 * trials / wall, 1)}
    out["scaling_j2_over_j1"] = round(out["j2"]["trials_per_min"] / out["j1"]["trials_per_min"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--frames", type=int, default=20_000)
    args = parser.parse_args()
    configure_logging("warning", "json")
    with tempfile.TemporaryDirectory(prefix="bench-optimize-data-") as tmp_text:
        tmp = Path(tmp_text)
        results = [
            measure("real (510 frames)", _real(tmp), args.trials),
            measure(
                f"synthetic ({args.frames} frames)",
                _synthetic(tmp, args.frames),
                max(8, args.trials // 4),
            ),
        ]
    print(json.dumps({
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "when": datetime.now(UTC).strftime("%Y-%m-%d"),
        "results": results,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
