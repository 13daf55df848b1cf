"""``krakenbot backtest``: run the configured strategies over recorded data, then report.

``krakenbot backtest --config deploy.yaml --data PATH... [--from T --to T] [--latency-ms N]
[--out DIR] [--seed N] [--params NAME.KEY=VALUE...] [--instruments FILE] [--fee-volume USD]``

Progress goes to stderr (a bar on a terminal, otherwise a ``progress`` log line every 10 s
and ``progress_done``, logged as warnings so the default level shows them); then the
report's terminal summary goes to stdout, and ``DIR/report.json``, ``DIR/report.html`` and
the run's store ``DIR/backtest.db`` (``krakenbot report --store`` reads it) are written.
``--out`` defaults to ``backtest-<UTC time now>`` in the working directory; a directory
holding a previous backtest's store is refused (a backtest writes a new store). Logs are
at ``warning`` unless ``--log-level`` says otherwise (every order would be a line).
Unusable input (a missing file, a bad time, a bad config) exits 2 with its reason.
"""

from __future__ import annotations

import argparse

# Only the standard library at import time: ``bot.cli`` imports this module to build its
# parser, and ``krakenbot --help`` must stay fast. The rest is imported on use.

__all__ = ["add_arguments", "main_backtest"]


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``backtest``'s arguments (``bot.cli`` registers them)."""
    p = sub.add_parser("backtest", help="run the strategies over recorded data, then report")
    p.add_argument("--config", "-c", metavar="FILE", help="deployment file (as for run)")
    p.add_argument(
        "--data", nargs="+", required=True, metavar="PATH",
        help="recorder files or directories (krakenbot record), or Kraken trade CSVs",
    )  # fmt: skip
    p.add_argument(
        "--from", dest="from_", metavar="T", help="trade from T (2024-05-01T12:00Z, @EPOCH)"
    )
    p.add_argument("--to", metavar="T", help="stop at T")
    p.add_argument("--latency-ms", type=float, default=5.0, metavar="N",
                   help="order latency each way, in ms (default 5)")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="report.json, report.html, backtest.db here")
    p.add_argument("--seed", type=int, default=0, help="ids and the simulator's seed (default 0)")
    p.add_argument("--params", nargs="*", default=[], metavar="NAME.KEY=VALUE",
                   help="override a strategy's param for this run (YAML value)")  # fmt: skip
    p.add_argument("--instruments", metavar="FILE", help="a WS v2 instrument snapshot (JSON)")
    p.add_argument("--fee-volume", default="0", metavar="USD",
                   help="30-day volume: Kraken's fee tier (default 0: 0.25%%/0.40%%)")  # fmt: skip


def main_backtest(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime
    from decimal import Decimal, InvalidOperation
    from pathlib import Path

    from bot.backtest.data import BadData
    from bot.backtest.run import BacktestSpec, run_backtest
    from bot.core.clock import SystemClock
    from bot.core.files import write_atomic
    from bot.core.log import configure_logging, get_logger
    from bot.research.html import render_html
    from bot.research.progress import LogProgress, progress_for
    from bot.research.terminal import render_summary
    from bot.research.when import parse_time

    configure_logging(args.log_level or "warning", args.log_format or "auto")
    clock = SystemClock()
    now = clock.time_ns()
    from_ns = parse_time(args.from_, now, what="--from") if args.from_ else None
    to_ns = parse_time(args.to, now, what="--to") if args.to else None
    if from_ns is not None and to_ns is not None and to_ns <= from_ns:
        raise BadData("--to must come after --from")
    try:
        fee_volume = Decimal(args.fee_volume)
    except InvalidOperation:
        raise BadData(f"--fee-volume: not a number: {args.fee_volume!r}") from None
    if not fee_volume.is_finite() or fee_volume < 0:
        raise BadData(f"--fee-volume: not a volume: {args.fee_volume!r}")
    if args.latency_ms < 0:
        raise BadData("--latency-ms cannot be negative")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else Path(f"backtest-{stamp}")
    if out.exists() and not out.is_dir():
        raise BadData(f"--out {out}: exists and is not a directory")
    bar = progress_for(sys.stderr, clock)
    if isinstance(bar, LogProgress):  # shown at the default level, which hides order lines
        bar = LogProgress(clock, logger=_Shown(get_logger(component="progress")))
    bar.start("backtest (frames)", None)
    done = [0]

    def progress(count: int) -> None:
        bar.advance(count - done[0])
        done[0] = count

    spec = BacktestSpec(
        config=Path(args.config), data=tuple(Path(d) for d in args.data), from_ns=from_ns,
        to_ns=to_ns, latency_ms=args.latency_ms, seed=args.seed, params=_params(args.params),
        out_dir=out, instruments=Path(args.instruments) if args.instruments else None,
        fee_volume_usd=fee_volume, progress=progress,
    )  # fmt: skip
    result = run_backtest(spec)
    bar.finish()
    write_atomic(out / "report.json", result.report_json)
    write_atomic(out / "report.html", render_html(result.report))
    print(
        f"krakenbot: {result.frames} frames in {result.wall_s:.1f} s; wrote "
        f"{out / 'report.json'}, {out / 'report.html'} and {result.store_path}",
        file=sys.stderr,
    )
    sys.stdout.write(render_summary(result.report))
    return 0


class _Shown:
    """A logger whose ``info`` lines are logged as warnings: the progress lines of a run
    whose logs are at ``warning`` (``LogProgress`` logs at info)."""

    def __init__(self, log: object) -> None:
        self._log = log

    def info(self, event: str, **fields: object) -> None:
        self._log.warning(event, **fields)  # type: ignore[attr-defined]


def _params(items: list[str]) -> dict[str, dict[str, object]]:
    """``NAME.KEY=VALUE`` items (VALUE read as YAML: 2, 0.5, true, [1, 2]) by strategy."""
    import yaml

    from bot.backtest.data import BadData

    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        name, dot, param = key.partition(".")
        if not eq or not dot or not name or not param:
            raise BadData(f"--params {item!r}: expected NAME.KEY=VALUE")
        try:
            out.setdefault(name, {})[param] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise BadData(f"--params {item!r}: {exc}") from None
    return out
