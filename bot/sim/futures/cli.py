"""``python -m bot.sim.futures`` (and ``krakenbot sim --futures``): the Kraken Futures
simulator as a standalone server.

    python -m bot.sim.futures [--host 127.0.0.1] [--port 0] [--seed 0] [--balance 100000]
        [--funding-rate 0.0001] [--funding-interval 3600] [--nonce-window 0]
        [--symbols PF_XBTUSD,PF_ETHUSD] [--log-level info]

It starts the server and prints one JSON line on stdout::

    {"venue": "futures", "rest": "http://127.0.0.1:40321",
     "ws": "ws://127.0.0.1:40321/ws/v1", "admin": "http://127.0.0.1:40321/admin",
     "api_key": "...", "api_secret": "...", "admin_token": "..."}

then serves until SIGINT or SIGTERM and exits 0 (2 on a bad argument). The account's key
pair is generated, unless ``KRAKENBOT_FUTURES_SIM_API_KEY`` and
``KRAKENBOT_FUTURES_SIM_API_SECRET`` are set: then those are used and ``api_secret`` is
printed as null (the user has it; it is never echoed). Logs go to stderr.

``krakenbot sim --futures`` builds the same venue from the config (``bot.service.simulator``) and
serves it with ``serve``.

This module owns the command line; the server is ``server``'s, the venue ``venue``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from bot.core.errors import ConfigError
from bot.core.log import configure_logging
from bot.sim.futures.contracts import default_contracts
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import DEFAULT_ACCOUNT, FuturesVenue
from bot.sim.serving import serve_until_signal

__all__ = ["build_venue", "main", "parse_args", "serve"]

_KEY_ENV = "KRAKENBOT_FUTURES_SIM_API_KEY"
_SECRET_ENV = "KRAKENBOT_FUTURES_SIM_API_SECRET"


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sim.futures", description="The Kraken Futures simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--balance", type=_decimal, default=Decimal(100_000))
    parser.add_argument("--funding-rate", type=_decimal, default=Decimal("0.0001"))
    parser.add_argument("--funding-interval", type=float, default=3600.0)
    parser.add_argument("--nonce-window", type=int, default=0)
    parser.add_argument("--symbols", default="")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def build_venue(args: argparse.Namespace) -> tuple[FuturesVenue, bool]:
    """The venue to serve, and whether its secret was generated (and may be printed)."""
    symbols = [s for s in args.symbols.split(",") if s] or None
    try:
        contracts = default_contracts(symbols)
    except KeyError as exc:
        raise ConfigError(f"--symbols: the simulator has no contract {exc.args[0]}") from None
    if args.funding_interval <= 0 or args.nonce_window < 0:
        raise ConfigError("--funding-interval must be positive, --nonce-window not negative")
    venue = FuturesVenue(
        contracts=contracts,
        seed=args.seed,
        funding_rate=args.funding_rate,
        funding_interval_s=args.funding_interval,
        nonce_window=args.nonce_window,
    )
    key, secret = os.environ.get(_KEY_ENV), os.environ.get(_SECRET_ENV)
    if key and secret:
        try:
            venue.add_account(DEFAULT_ACCOUNT, args.balance, api_key=key, api_secret=secret)
        except ValueError:
            raise ConfigError(f"{_SECRET_ENV} is not valid base64") from None
        return venue, False
    venue.add_account(DEFAULT_ACCOUNT, args.balance)
    return venue, True


async def serve(venue: FuturesVenue, host: str, port: int, show_secret: bool) -> int:
    """Serve until SIGINT/SIGTERM; print the info line once listening."""

    return await serve_until_signal(
        lambda: FuturesSimServer.start(venue, host, port, pump=False),
        lambda server: server.info(secret=show_secret),
        where=f"cannot listen on {host}:{port}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        configure_logging(args.log_level, "auto", sys.stderr)
        venue, generated = build_venue(args)
        return asyncio.run(serve(venue, args.host, args.port, generated))
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
