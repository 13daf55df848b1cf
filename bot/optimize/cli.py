"""``krakenbot optimize``: search a deployment's strategy parameters over backtests.

``krakenbot optimize --config deploy.yaml --data PATH... --space space.yaml --trials N
[--jobs J] [--study NAME] [--storage URL] [--objective sharpe|pnl|sortino|calmar]
[--folds K | --train T --test S] [--seed N] [--out DIR]``

Reads and checks everything first (the deployment, the space against each strategy's
``Params``: every problem with its line, exit 2), finds the data's time range, splits it
(``bot.optimize.walkforward``), runs the search (``bot.optimize.study``) with progress on
stderr, runs each fold's best on its test window and writes ``DIR/best.yaml``,
``trials.csv``, ``trials.json`` and ``report.html`` (``bot.optimize.results``); stdout
gets the walk-forward table and the best params. Logs are at ``warning`` unless
``--log-level`` says otherwise.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.optimize.results import FoldResult
    from bot.optimize.trial import Search
    from bot.optimize.walkforward import Fold

# Only the standard library at import time: ``bot.cli`` imports this module to build its
# parser, and ``krakenbot --help`` must stay fast. The rest is imported on use.

__all__ = ["add_arguments", "main_optimize"]


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``optimize``'s arguments (``bot.cli`` registers them)."""
    p = sub.add_parser("optimize", help="search strategy parameters over backtests (Optuna)")
    p.add_argument("--config", "-c", metavar="FILE", help="deployment file (as for run)")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="recorder files or directories, or Kraken trade CSVs")  # fmt: skip
    p.add_argument("--space", required=True, metavar="FILE",
                   help="space.yaml: per strategy parameter a range or choices")  # fmt: skip
    p.add_argument("--trials", type=int, required=True, metavar="N", help="trials per fold")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="J",
                   help="worker processes on this machine (default 1)")  # fmt: skip
    p.add_argument("--study", default="krakenbot", metavar="NAME",
                   help="study name in the storage (default krakenbot)")  # fmt: skip
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage: postgresql://..., sqlite:///..., journal:PATH "
                        "(default journal:DIR/study.journal)")  # fmt: skip
    p.add_argument("--objective", default="pnl",
                   choices=("sharpe", "pnl", "sortino", "calmar"),
                   help="what to maximise (default pnl)")  # fmt: skip
    p.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="K anchored walk-forward folds (default 1: train on the first half)",
    )
    p.add_argument("--train", metavar="DUR", help="rolling folds: train this long (e.g. 7d)")
    p.add_argument("--test", metavar="DUR", help="... then test this long (e.g. 1d)")
    p.add_argument("--seed", type=int, default=0, help="sampler and backtest seeds (default 0)")
    p.add_argument("--out", metavar="DIR", help="outputs (default optimize-<UTC time now>)")
    p.add_argument("--latency-ms", type=float, default=5.0, metavar="N",
                   help="order latency each way, in ms (default 5)")  # fmt: skip
    p.add_argument("--instruments", metavar="FILE", help="a WS v2 instrument snapshot (JSON)")


def parse_duration(text: str, what: str) -> int:
    """``90s``, ``30m``, ``12h``, ``7d`` → nanoseconds; ``BadInput`` otherwise."""
    from bot.research.record import BadInput

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise BadInput(f"{what} {text!r}: expected a duration such as 90s, 30m, 12h or 7d")
    return int(number) * units[unit] * 1_000_000_000


def _folds(args: argparse.Namespace, start_ns: int, end_ns: int) -> list[Fold]:
    from bot.optimize.walkforward import anchored, rolling
    from bot.research.record import BadInput

    if (args.train is None) != (args.test is None):
        raise BadInput("--train and --test go together")
    if args.train is not None:
        if args.folds is not None:
            raise BadInput("--folds or --train/--test, not both")
        train = parse_duration(args.train, "--train")
        test = parse_duration(args.test, "--test")
        return rolling(start_ns, end_ns, train, test)
    return anchored(start_ns, end_ns, args.folds or 1)


def _data_range(search: Search) -> tuple[int, int]:
    """The data's ``[first, last + 1)``: one backtest whose strategies never start."""
    import tempfile
    from pathlib import Path

    from bot.backtest import BacktestSpec, run_backtest
    from bot.optimize.walkforward import data_range

    with tempfile.TemporaryDirectory(prefix="krakenbot-optimize-") as tmp:
        spec = BacktestSpec(
            config=search.config, data=search.data, from_ns=2**63 - 1, latency_ms=0,
            instruments=search.instruments, store_path=Path(tmp) / "probe.db",
        )  # fmt: skip
        result = run_backtest(spec)
    return data_range([(result.start_ns, result.end_ns)])


def main_optimize(args: argparse.Namespace) -> int:
    import dataclasses
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from bot.core.clock import SystemClock
    from bot.core.log import configure_logging
    from bot.optimize.outputs import write_outputs
    from bot.optimize.results import walk_forward
    from bot.optimize.study import JOURNAL_PREFIX, open_storage, run_workers
    from bot.optimize.trial import Search, load
    from bot.research.progress import progress_for
    from bot.research.record import BadInput

    configure_logging(args.log_level or "warning", args.log_format or "auto")
    if args.trials < 1 or args.jobs < 1:
        raise BadInput("--trials and --jobs must be at least 1")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else Path(f"optimize-{stamp}")
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a directory")
    search = Search(
        config=Path(args.config), data=tuple(Path(d) for d in args.data),
        space=Path(args.space), folds=(), trials=args.trials, objective=args.objective,
        storage=args.storage or f"{JOURNAL_PREFIX}{out / 'study.journal'}", study=args.study,
        seed=args.seed, latency_ms=args.latency_ms,
        instruments=Path(args.instruments) if args.instruments else None,
    )  # fmt: skip
    loaded = load(search)  # every problem of the config and the space, before any work
    start_ns, end_ns = _data_range(search)
    folds = tuple(_folds(args, start_ns, end_ns))
    search = dataclasses.replace(search, folds=folds)
    loaded = dataclasses.replace(loaded, search=search)
    out.mkdir(parents=True, exist_ok=True)
    clock = SystemClock()
    bar = progress_for(sys.stderr, clock)
    bar.start(f"optimize ({len(folds)} fold(s) x {args.trials} trials)", len(folds) * args.trials)
    done = [0]

    def progress(finished: int) -> None:
        bar.advance(finished - done[0])
        done[0] = finished

    run_workers(search, args.jobs, progress)
    bar.finish()
    results = walk_forward(loaded, open_storage(search.storage))
    written = write_outputs(loaded, results, out)
    print("krakenbot: wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    sys.stdout.write(_summary(results))
    return 0


def _summary(results: list[FoldResult]) -> str:
    lines = ["fold  trials  best  in-sample  out-of-sample  params"]
    for r in results:
        params = ", ".join(f"{n}.{k}={v}" for n, ps in r.values.items() for k, v in ps.items())
        ins = "n/a" if r.in_sample is None else f"{r.in_sample:.6g}"
        oos = "n/a" if r.out_of_sample is None else f"{r.out_of_sample:.6g}"
        best = "-" if r.best is None else str(r.best.number)
        lines.append(
            f"{r.fold.index:>4}  {len(r.trials):>6}  {best:>4}  {ins:>9}  {oos:>13}  {params}"
        )
        if r.warning:
            lines.append(f"      WARNING: {r.warning}")
    return "\n".join(lines) + "\n"
