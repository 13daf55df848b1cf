"""Backtest benchmark: ``run_backtest`` against ``krakenbot replay`` on the same recording.

The recording is ``bench.book_stream``'s BTC/USD depth-10 stream (correct checksums, a mid
that walks), written once in the recorder's own format (``{"recv_ns","conn","frame"}``
lines, a frame every ~4 ms). Three contenders read that same file in one run:

- ``replay``: ``krakenbot replay``'s core (``replay_items`` over ``CaptureReader``): every
  frame decoded, applied and checksum-verified, nothing else;
- ``backtest-idle``: ``run_backtest`` with a strategy that does nothing (``Idle``): the
  same frames path plus the simulated clock, the desk's marks, the runners' dispatch and
  the store, the engine idle;
- ``backtest-mm``: ``run_backtest`` with the bundled market maker quoting (1 bp wide,
  amending at 0.5 bp): orders, amends, fills and their reports through the engine, the
  venue's latency, the fill rule on every frame.

Each runs ``repeat`` times, interleaved, and the best run counts (a shared, noisy
machine). Figures: frames/s, µs/frame, the ratios the targets are set against (idle ≥ 0.5×
replay; the maker ≥ 20,000 book frames/s), the maker's orders and fills, and memory: the
process's resident set sampled through the maker's run (every 10,000 frames) and its
growth from the first sample to the last (flat: no per-frame state kept).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.book_stream import StreamSpec, generate_frames
from bot.backtest import BacktestResult, BacktestSpec, run_backtest
from bot.core.log import configure_logging
from bot.kraken.capture import CaptureReader
from bot.research.replay import replay_items
from bot.sim.pairs import default_instruments
from bot.strategy import Params, Strategy

__all__ = ["Idle", "run_backtest_bench"]

_IDLE = """\
mode: paper
market: {symbols: [BTC/USD], book_depth: 10}
sim: {balances: {USD: 1000000, BTC: 100}}
risk: {max_order_notional: 100000, max_open_orders: 50, max_orders_per_minute: 100000}
strategies:
  - name: idle
    class: bench.backtest:Idle
    symbols: [BTC/USD]
"""
_MM = _IDLE.replace(
    "  - name: idle\n    class: bench.backtest:Idle\n",
    "  - name: mm\n    class: strategies.market_maker:MarketMaker\n",
) + (
    "    params: {spread_bps: 1, size: 0.01, max_inventory: 0.1, requote_bps: 0.5,\n"
    "             vol_limit_bps: 500}\n"
)
_RSS_EVERY = 10_000


class Idle(Strategy[Params]):
    """A strategy with no handler: what the backtest costs before any strategy code."""


def _recording(path: Path, frames: int, seed: int) -> Path:
    """The stream as recorder lines, each frame at its own timestamp."""
    from bot.backtest.data import _frame_time

    with path.open("wb") as out:
        for raw in generate_frames(StreamSpec(frames=frames, seed=seed)):
            at = _frame_time(raw) or 0
            out.write(b'{"recv_ns":%d,"conn":"public","frame":%s}\n' % (at, raw))
    return path


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:  # resident pages now (not the peak)
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "note": "shared, noisy machine: compare ratios from the same run, not absolutes",
    }


def run_backtest_bench(frames: int = 100_000, repeat: int = 2, seed: int = 42) -> dict[str, Any]:
    """Run the backtest benchmark and return its figures (``krakenbot bench backtest``)."""
    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="krakenbot-bench-") as tmp:
        work = Path(tmp)
        data = _recording(work / "book.jsonl", frames, seed)
        idle_cfg = work / "idle.yaml"
        idle_cfg.write_text(_IDLE)
        mm_cfg = work / "mm.yaml"
        mm_cfg.write_text(_MM)
        table = default_instruments(("BTC/USD",))
        runs = iter(range(10**6))
        rss: list[int] = []

        def replay() -> Any:
            return replay_items(CaptureReader([data]), table, None)

        def backtest(config: Path, sample: bool = False) -> Callable[[], BacktestResult]:
            def run() -> BacktestResult:
                progress = None
                if sample:
                    rss.clear()

                    def progress(count: int) -> None:
                        if not count % _RSS_EVERY:
                            rss.append(_rss_kib())

                spec = BacktestSpec(config=config, data=(data,), progress=progress,
                                    store_path=work / f"run{next(runs)}.db")  # fmt: skip
                return run_backtest(spec)

            return run

        contenders: dict[str, Callable[[], Any]] = {
            "replay": replay,
            "backtest-idle": backtest(idle_cfg),
            "backtest-mm": backtest(mm_cfg, sample=True),
        }
        best: dict[str, float] = {}
        outcome: dict[str, Any] = {}
        for _ in range(repeat):
            for name, fn in contenders.items():
                start = time.perf_counter()
                outcome[name] = fn()
                elapsed = time.perf_counter() - start
                best[name] = min(best.get(name, elapsed), elapsed)
    figures: dict[str, Any] = {
        name: {"frames_per_s": round(frames / s), "us_per_frame": round(s / frames * 1e6, 2)}
        for name, s in best.items()
    }
    mm: BacktestResult = outcome["backtest-mm"]
    figures["backtest-mm"].update(orders=mm.orders, fills=mm.fills)
    figures["replay"]["checksums_verified"] = outcome["replay"].checksums_verified
    return {
        "machine": _machine(),
        "frames": frames,
        "data": "bench.book_stream BTC/USD depth 10, recorder format, one frame ~4 ms",
        "figures": figures,
        "ratios": {
            "idle_vs_replay": round(best["replay"] / best["backtest-idle"], 2),
            "mm_vs_replay": round(best["replay"] / best["backtest-mm"], 3),
        },
        "targets": {
            "idle_vs_replay_at_least": 0.5,
            "idle_vs_replay_met": best["replay"] / best["backtest-idle"] >= 0.5,
            "mm_book_frames_per_s_at_least": 20_000,
            "mm_book_frames_per_s_met": frames / best["backtest-mm"] >= 20_000,
        },
        "memory": {
            "rss_kib_every_10000_frames_of_the_mm_run": rss,
            "rss_growth_kib_first_to_last_sample": rss[-1] - rss[0] if rss else None,
        },
    }


if __name__ == "__main__":
    print(json.dumps(run_backtest_bench(), indent=2))
