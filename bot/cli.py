"""The ``krakenbot`` command: argument parsing and dispatch to each subcommand.

This module owns the command line and exit statuses: 0 success, 1 a runtime ``BotError``,
2 a usage or configuration error (or a subcommand this build does not have), 130 Ctrl-C.
``check-config`` lives here (it runs ``bot.service.preflight``, as ``run`` does); every other
subcommand is a lazily imported ``main_*(args)`` function in the module that owns it, so
``krakenbot --help`` stays fast and one missing piece never breaks the others. A
``BotError`` never prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

from bot.core.errors import BotError, ConfigError

__all__ = ["build_parser", "main", "resolve_config_path"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

CONFIG_ENV: Final = "KRAKENBOT_CONFIG"
ON_CONFIG_ERROR_ENV: Final = "KRAKENBOT_ON_CONFIG_ERROR"
"""``wait``: ``run`` waits for a stop signal after a configuration error (exit 2) instead of
exiting, so a container restarted on exit is not restarted in a loop (docker-compose.yml)."""
BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)
BENCH_SUITES: Final = ("book", "sim", "sim_ws", "sim_rest", "tick", "backtest", "scale", "all")

# subcommand -> (module, function names tried in order)
_DISPATCH: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "run": ("bot.service.run_command", ("main_run",)),
    "sim": ("bot.service.simulator", ("main_sim",)),
    "replay": ("bot.research.replay", ("run_replay", "main_replay")),
    "record": ("bot.service.recorder", ("main_record",)),
    "bench": ("bench.runner", ("main_bench",)),
    "healthcheck": ("bot.service.http", ("main_healthcheck",)),
    "report": ("bot.research.cli", ("main_report",)),
    "orders": ("bot.research.cli", ("main_orders",)),
    "fills": ("bot.research.cli", ("main_fills",)),
    "backtest": ("bot.backtest.cli", ("main_backtest",)),
    "optimize": ("bot.optimize.cli", ("main_optimize",)),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("krakenbot")
    except PackageNotFoundError:
        return "unknown"


def resolve_config_path(given: str | Path | None) -> Path:
    """``--config`` if given, else ``$KRAKENBOT_CONFIG``, else the shipped default."""
    if given:
        return Path(given)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    from bot.config import default_config_path

    return default_config_path()


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help=f"config file (default: ${CONFIG_ENV}, else config/default.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="krakenbot", description="An asyncio algorithmic trading daemon for Kraken."
    )
    parser.add_argument("--version", action="version", version=f"krakenbot {_version()}")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error", "critical"),
        help="override log.level from the config",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        help="override log.format from the config",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the daemon (paper mode on the simulator by default)")
    _add_config(run)

    sim = sub.add_parser("sim", help="run the Kraken-compatible exchange simulator alone")
    _add_config(sim)
    sim.add_argument("--host", help="address to listen on (default: sim.host)")
    sim.add_argument("--port", type=int, help="port to listen on, 0 for any (default: sim.port)")
    sim.add_argument("--source", help="'synthetic', 'live' or 'replay:PATH' (default: sim.source)")
    sim.add_argument("--seed", type=int, help="random seed (default: sim.seed)")
    sim.add_argument("--keys", help="YAML/JSON list of extra API keys (account, permissions, ...)")
    sim.add_argument(
        "--futures", action="store_true", help="serve the Kraken Futures simulator instead"
    )

    replay = sub.add_parser(
        "replay", help="rebuild books from a recorded capture, verify checksums"
    )
    replay.add_argument(
        "file", metavar="FILE", nargs="+", help="capture files (plain or gzip) or a recording dir"
    )
    replay.add_argument("--instruments", metavar="FILE", help="instrument metadata (JSON)")
    replay.add_argument("--depth", type=int, choices=BOOK_DEPTHS, help="book depth")

    from bot.research.recorder.args import add_arguments as add_record_arguments

    record = sub.add_parser("record", help="record Kraken's public feed to files for replay")
    add_record_arguments(record)

    from bot.backtest.cli import add_arguments as add_backtest_arguments

    add_backtest_arguments(sub)

    from bot.optimize.cli import add_arguments as add_optimize_arguments

    add_optimize_arguments(sub)

    check = sub.add_parser("check-config", help="validate a config file and print every problem")
    check.add_argument("file", metavar="FILE", nargs="?", help="config file (default as for run)")

    health = sub.add_parser("healthcheck", help="probe a running daemon's HTTP endpoint")
    health.add_argument("--url", default="http://127.0.0.1:8080/healthz", help="what to GET")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")

    bench = sub.add_parser("bench", help="run benchmarks side by side with peers")
    bench.add_argument("suite", nargs="?", choices=BENCH_SUITES, default="all")
    bench.add_argument(
        "--rate-hz",
        type=_positive_rate,
        help="tick only: book frames a second (default 150); the frame interval changes "
        "how cold each tick starts",
    )

    from bot.research.cli import add_arguments as add_store_commands

    add_store_commands(sub)  # report, orders, fills
    return parser


def _positive_rate(text: str) -> float:
    """``--rate-hz``: a finite rate above 0, else a usage error (exit 2)."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < rate < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0 and finite, got {text}")
    return rate


def _check_config(args: argparse.Namespace) -> int:
    """Every check ``run`` makes before it starts (``bot.service.preflight``): the config and the
    strategies, imported and their params validated. ``ok`` means ``run`` would start."""
    from bot.service.preflight import load_deployment

    path = resolve_config_path(args.file)
    try:
        load_deployment(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return EXIT_USAGE
    print("ok")
    return EXIT_OK


def _import_target(module_name: str) -> ModuleType | None:
    # bench/ sits beside bot/ in a checkout; the console script's sys.path lacks it.
    root = Path(__file__).resolve().parent.parent
    if (root / "bench").is_dir() and str(root) not in sys.path:
        sys.path.append(str(root))
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            return None
        raise  # the module exists but is broken: a bug, not a missing feature


def _dispatch(args: argparse.Namespace) -> int:
    module_name, names = _DISPATCH[args.command]
    module = _import_target(module_name)
    target: Callable[[argparse.Namespace], int] | None = None
    if module is not None:
        target = next(
            (getattr(module, n) for n in names if callable(getattr(module, n, None))), None
        )
    if target is None:
        print(
            f"krakenbot {args.command}: not available yet"
            f" ({module_name}.{names[0]} is not part of this build)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return int(target(args) or 0)


def _report(exc: BotError) -> int:
    from bot.core.log import scrub_text

    problems = exc.problems if isinstance(exc, ConfigError) else [str(exc) or type(exc).__name__]
    for line in problems:
        print(f"krakenbot: {scrub_text(line)}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "run":  # as early as it can be: see bot.service.signals
        from bot.service import signals

        signals.install()
    try:
        if args.command == "check-config":
            return _check_config(args)
        if "config" in args:
            args.config = resolve_config_path(args.config)
        from bot.core.log import configure_logging

        configure_logging(args.log_level or "info", args.log_format or "auto")
        status = _dispatch(args)
    except BotError as exc:
        status = _report(exc)
    except KeyboardInterrupt:
        print("krakenbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.command == "run" and status == EXIT_USAGE:
        _hold_on_config_error()
    return status


def _hold_on_config_error() -> None:
    """With ``KRAKENBOT_ON_CONFIG_ERROR=wait``: say so, then wait for SIGTERM/SIGINT."""
    if os.environ.get(ON_CONFIG_ERROR_ENV, "").lower() != "wait":
        return
    from bot.service import signals

    print(
        f"krakenbot: configuration error: waiting for a stop signal ({ON_CONFIG_ERROR_ENV}="
        "wait), not exiting, so that the container is not restarted in a loop; fix the "
        "config, then restart it",
        file=sys.stderr,
        flush=True,
    )
    signals.wait_for_stop()
