"""``krakenbot bench [SUITE]``: run benchmarks (book, sim, tick, scale...), print JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

__all__ = ["main_bench"]

# suite -> (module, function): each returns a JSON-able dict of figures and ratios.
SUITES: dict[str, tuple[str, str]] = {
    "book": ("bench.book", "run_book_bench"),
    "sim": ("bench.sim", "run_sim_bench"),
    "sim_ws": ("bench.sim_ws", "run_sim_ws_bench"),
    "sim_rest": ("bench.sim_rest", "run_sim_rest_bench"),
    "tick": ("bench.tick", "run_tick_bench"),
    "backtest": ("bench.backtest", "run_backtest_bench"),
    "scale": ("bench.scale", "run_scale_bench"),
}


def main_bench(args: argparse.Namespace) -> int:
    names = ["book", "sim", "tick"] if args.suite == "all" else [args.suite]
    rate_hz = getattr(args, "rate_hz", None)
    if rate_hz is not None and names != ["tick"]:
        print("krakenbot bench: --rate-hz applies to the tick suite only", file=sys.stderr)
        return 2
    options: dict[str, Any] = {} if rate_hz is None else {"rate_hz": rate_hz}  # tick's only
    results: dict[str, Any] = {}
    status = 0
    for name in names:
        module_name, func = SUITES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            print(f"krakenbot bench {name}: not available ({exc})", file=sys.stderr)
            status = 2
            continue
        print(f"krakenbot bench {name}: running...", file=sys.stderr)
        results[name] = getattr(module, func)(**options)
        print(json.dumps({name: results[name]}, indent=2), flush=True)
    return status
