"""``krakenbot run``: the trading daemon's entry point.

The daemon itself (feeds, strategies, execution under one TaskGroup) is not built yet.
Until it is, ``run`` says so and demonstrates the market-data core instead: it generates
a deterministic synthetic Kraken WS v2 book stream (the benchmark generator) and replays
it through protocol → book with every checksum verified, then prints the report.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from bench.book_stream import StreamSpec, generate_frames
from bot.kraken.instruments import InstrumentTable
from bot.replay import replay_lines

__all__ = ["main_run"]


def main_run(args: argparse.Namespace) -> int:
    print(
        "krakenbot: the trading daemon is not built yet; replaying a synthetic BTC/USD "
        "book stream through the market-data core instead (no orders, no network).",
        file=sys.stderr,
    )
    spec = StreamSpec(frames=200_000, depth=10)
    frames = list(generate_frames(spec))
    start = time.perf_counter()
    report = replay_lines(iter(frames), InstrumentTable([spec.instrument]), spec.depth)
    elapsed = time.perf_counter() - start
    summary = report.as_dict()
    summary["seconds"] = round(elapsed, 3)
    summary["frames_per_s"] = round(len(frames) / elapsed)
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    return 0 if report.checksum_mismatches == 0 else 1
