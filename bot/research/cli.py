"""``krakenbot report``, ``krakenbot orders`` and ``krakenbot fills``: a store, read and told.

Each reads the store read-only (``bot.research.store_reader``), so it is safe on the store
of a running daemon. ``report`` prints the terminal summary (``--json``: ``report.json``'s
text instead) on stdout, and with ``--out DIR`` writes ``DIR/report.json`` and
``DIR/report.html`` (each written to a temporary file and renamed into place, so a reader
never sees half a report). Progress and the paths written go to stderr; stdout carries
only the summary or the JSON, ready for a pipe. Bad input (a missing file, not a store, a
bad time) is ``BadInput``, which ``bot.cli`` turns into a message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.clock import Clock
    from bot.research.listing import Filters
    from bot.research.store_reader import StoreSnapshot

# Only the standard library at import time: ``bot.cli`` imports this module to build its
# parser, and ``krakenbot --help`` must stay fast. The rest is imported on use.

__all__ = ["add_arguments", "main_fills", "main_orders", "main_report"]


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The three subcommands' arguments (``bot.cli`` registers them)."""
    report = sub.add_parser("report", help="the trading report of a paper or live run (store)")
    _common(report)
    report.add_argument("--out", metavar="DIR", help="write DIR/report.json and DIR/report.html")
    report.add_argument(
        "--sampling",
        choices=("auto", "1m", "1h", "1d"),
        default="auto",
        help="bucket of the returns behind Sharpe and Sortino (default: auto)",
    )
    for name, what in (("orders", "orders"), ("fills", "fills")):
        listing = sub.add_parser(name, help=f"list the {what} in a store (table, or --json)")
        _common(listing)
        listing.add_argument("--strategy", help="only this strategy's")
        listing.add_argument("--symbol", help="only this symbol's (e.g. BTC/USD)")
        if name == "orders":
            listing.add_argument("--open", action="store_true", help="only orders still open")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="PATH", help="the daemon's store file")
    parser.add_argument(
        "--since",
        metavar="T",
        help="from T on: 30m, 12h, 7d (ago), 2024-05-01[T12:00[Z]], or @EPOCH_SECONDS",
    )
    parser.add_argument("--json", action="store_true", help="JSON on stdout instead of a table")


def _clock(clock: Clock | None) -> Clock:
    from bot.core.clock import SystemClock

    return clock or SystemClock()


def _since(args: argparse.Namespace, clock: Clock) -> int | None:
    from bot.research.when import parse_time

    return None if not args.since else parse_time(args.since, clock.time_ns())


def _label(snapshot: StoreSnapshot) -> str:
    mode = snapshot.meta.get("mode")  # the owner's stamp (bot.store.owner)
    return f"{mode + ' run' if mode else 'run'} from store {snapshot.path}"


def _out_dir(text: str) -> Path:
    from bot.research.record import BadInput

    out = Path(text)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot create it: {exc.strerror or exc}") from exc
    return out


def main_report(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.research.figures import build_report
    from bot.research.progress import progress_for
    from bot.research.record import RunRecord
    from bot.research.report_json import report_to_json
    from bot.research.store_reader import read_store
    from bot.research.terminal import render_summary

    clock = _clock(clock)
    since = _since(args, clock)
    out = _out_dir(args.out) if args.out else None
    snapshot = read_store(args.store)  # every fill: positions held at --since count
    record = RunRecord(
        label=_label(snapshot),
        orders=snapshot.orders,
        fills=snapshot.fills,
        owners=snapshot.owners,
        since_ns=since,
        meta=snapshot.meta,
    )
    report = build_report(record, sampling=args.sampling, progress=progress_for(sys.stderr, clock))
    text = report_to_json(report)
    if out is not None:
        from bot.core.files import write_atomic
        from bot.research.html import render_html

        write_atomic(out / "report.json", text)
        write_atomic(out / "report.html", render_html(report))
        print(f"krakenbot: wrote {out / 'report.json'} and {out / 'report.html'}", file=sys.stderr)
    sys.stdout.write(text if args.json else render_summary(report))
    return 0


def _listing_args(args: argparse.Namespace, clock: Clock | None) -> tuple[StoreSnapshot, Filters]:
    from bot.research.listing import Filters
    from bot.research.store_reader import read_store

    since = _since(args, _clock(clock))
    snapshot = read_store(args.store, since_ns=since or 0)
    filters = Filters(
        since_ns=since,
        strategy=args.strategy,
        symbol=args.symbol,
        open_only=bool(getattr(args, "open", False)),
    )
    return snapshot, filters


def main_orders(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.research.listing import order_rows, orders_table, select_orders

    snapshot, filters = _listing_args(args, clock)
    orders = select_orders(snapshot.orders, filters)
    if args.json:
        sys.stdout.write(json.dumps(order_rows(orders), indent=2) + "\n")
    else:
        sys.stdout.write(orders_table(orders))
    return 0


def main_fills(args: argparse.Namespace, clock: Clock | None = None) -> int:
    from bot.research.listing import fill_rows, fills_table, select_fills

    snapshot, filters = _listing_args(args, clock)
    fills = select_fills(snapshot.fills, snapshot.orders, snapshot.owners, filters)
    if args.json:
        sys.stdout.write(json.dumps(fill_rows(fills), indent=2) + "\n")
    else:
        sys.stdout.write(fills_table(fills))
    return 0
