"""``krakenbot run``: the daemon for the deployment's venue.

A config with a ``futures:`` section and a ``venue: spot`` strategy trades both venues in
one process (``bot.service.both_daemon.BothDaemon``); another config with ``futures:`` is a
Kraken Futures deployment (``bot.service.futures_daemon.FuturesDaemon``); any other is
Kraken spot (``bot.service.daemon.Daemon``). Everything else about the command (logging,
signals, exit statuses) is ``bot.service.daemon.main_run``'s. This module owns only that choice.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bot.config import Config
from bot.config.venues import is_both
from bot.service import daemon
from bot.service.both_daemon import BothDaemon
from bot.service.futures_daemon import FuturesDaemon

__all__ = ["daemon_class", "main_run"]


def daemon_class(config: Config) -> Callable[..., daemon.Runnable]:
    if is_both(config):
        return BothDaemon
    return FuturesDaemon if config.futures is not None else daemon.Daemon


def main_run(args: argparse.Namespace) -> int:
    return daemon.main_run(args, choose=daemon_class)
