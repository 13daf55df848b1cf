"""The ``krakenbot record`` command line (argparse only, so ``krakenbot --help`` stays fast)."""

from __future__ import annotations

import argparse
from typing import Final

__all__ = ["BOOK_DEPTHS", "CHANNELS", "add_arguments"]

CHANNELS: Final = ("book", "trade", "ticker", "instrument")
BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", help="comma-separated WS v2 symbols (default: the config's)")
    parser.add_argument(
        "--channels",
        default="book,trade,ticker,instrument",
        help="comma-separated, of book,trade,ticker,instrument (default: all four)",
    )
    parser.add_argument("--depth", type=int, choices=BOOK_DEPTHS, default=10, help="book depth")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the files go")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="WebSocket v2 URL (default: the config's venue)")
    where.add_argument(
        "--config",
        "-c",
        dest="record_config",
        metavar="FILE",
        help="config file: its venue URL, symbols and http address",
    )
    parser.add_argument(
        "--max-mb", type=float, default=256.0, help="rotate a file past this size (default 256)"
    )
    parser.add_argument(
        "--http", metavar="HOST:PORT", help="metrics/health address, or 'off' (default: config's)"
    )
