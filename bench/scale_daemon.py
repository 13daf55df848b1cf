"""The scale bench's daemon side, run in its own process: every symbol's feed, book and desk.

``python -m bench.scale_daemon URL SYMBOLS CAPACITY PER_CONNECTION`` builds what
``bot.service.daemon`` builds on the market-data path, with real objects: one ``Feed`` per
connection of ``bench.scale_plan.spread`` (at most ``PER_CONNECTION`` symbols each; book
channel, depth 10, the instruments known up front), the
``Desk`` (its ``marks`` take every book's mid, as the daemon's do) and one ``StrategyRunner``
whose strategy trades every symbol and does nothing but note when it saw each book. The
sink does for ``BookUpdated`` what ``Daemon._on_market`` does: ``desk.marks.mark``,
``book.view()``, ``runner.book(view)`` for each runner. The start-up heap is frozen as the
daemon freezes it (``freeze_startup_heap``).

The lag of a frame is the wall clock when ``on_book`` runs minus the stamp the server wrote
into the frame's ``timestamp`` as it sent it (``bench.scale_plan``); lags go into a
preallocated array of ``CAPACITY`` entries, so recording them allocates nothing.

Lines on stdin and stdout drive it: it prints ``ready`` once every book verified its
snapshot; ``reset`` forgets the lags so far; ``mark N`` waits (up to ``_MARK_WAIT_S``) until
``N`` update frames were seen since ``reset``, then prints one JSON line: frames seen, the
lags' summary since the last mark, checksum failures, books valid; ``quit`` ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from array import array
from decimal import Decimal
from typing import Final

from bench.book_stream import BTC_USD
from bench.scale_plan import (
    DAY_US,
    MAX_SYMBOLS_PER_CONNECTION,
    instruments,
    lag_us,
    spread,
    stamp_us_of_day,
    summary,
)
from bot.config import MarketConfig
from bot.core.clock import SystemClock
from bot.core.log import configure_logging
from bot.execution.pnl import PositionBook
from bot.execution.risk import RiskGate, RiskLimits
from bot.kraken.instruments import InstrumentTable
from bot.market.book import Book
from bot.market.feed import BookUpdated, BookValid, Feed, FeedEvent
from bot.service.wiring import freeze_startup_heap
from bot.strategy import BookSnapshot, Params, Strategy
from bot.strategy.desk import Desk
from bot.strategy.runner import StrategyRunner
from bot.strategy.testing import FakeContext

__all__ = ["LagProbe", "ScaleDaemon"]

_MARK_WAIT_S: Final = 30.0
_NAME: Final = "scale"


class _NoParams(Params):
    pass


class LagProbe(Strategy[_NoParams]):
    """Does nothing with a book but note how late it saw it (``lags``, microseconds)."""

    lags: array[int]
    count = 0
    unstamped = 0

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        now_us = time.time_ns() // 1000
        try:
            stamped = stamp_us_of_day(book.timestamp)
        except ValueError:  # a snapshot sent before the run: not a timed frame
            self.unstamped += 1
            return
        if self.count < len(self.lags):
            self.lags[self.count] = lag_us(now_us % DAY_US, stamped)
        self.count += 1


class ScaleDaemon:
    """The feeds, books, desk and strategy for ``count`` symbols on ``url``."""

    def __init__(
        self, url: str, count: int, capacity: int, per_connection: int = MAX_SYMBOLS_PER_CONNECTION
    ) -> None:
        self.table = InstrumentTable(instruments(count, BTC_USD))
        symbols = tuple(self.table)
        clock = SystemClock()
        positions = PositionBook(clock)
        limits = RiskLimits(max_order_qty=Decimal(1), max_order_notional=Decimal(1))
        self.desk = Desk(
            risk=RiskGate(clock, positions, limits, {_NAME: limits}),
            positions=positions,
            instruments=self.table,
            books=self._books,
            clock=clock,
        )
        # A do-nothing strategy commands nothing: its context needs no engine behind it.
        ctx = FakeContext(_NAME, symbols, list(self.table.values()))
        self.probe = LagProbe(ctx, _NoParams())
        self.probe.lags = array("q", bytes(8 * capacity))
        runner = StrategyRunner(self.probe, timers=ctx.timers, clock=clock)
        self.desk.add_runner(runner)
        self.runners = self.desk.runners.values()
        self.valid: set[str] = set()
        self.symbols = symbols
        self.feeds = [
            Feed(
                url,
                MarketConfig(symbols=group, channels=("book",), book_depth=10),
                self._on_market,
                instruments=self.table,
                instrument_channel=False,
            )
            for group in spread(symbols, per_connection)
        ]
        runner.start()

    def _books(self) -> dict[str, Book]:
        return {s: b for feed in self.feeds for s, b in feed.books.items()}

    def _on_market(self, event: FeedEvent) -> None:
        """``Daemon._on_market`` for the events of the market-data path."""
        if isinstance(event, BookUpdated):
            self.desk.marks.mark(event.symbol, event.book)
            view = event.book.view()
            for runner in self.runners:
                runner.book(view)
        elif isinstance(event, BookValid):
            self.valid.add(event.symbol)

    def report(self, start: int) -> dict[str, object]:
        probe = self.probe
        end = min(probe.count, len(probe.lags))
        failures = sum(sum(feed.stats.checksum_failures.values()) for feed in self.feeds)
        return {
            "frames_seen": probe.count,
            **summary(probe.lags[start:end]),
            "checksum_failures": failures,
            "books_valid": len(self.valid),
        }


async def _main(url: str, count: int, capacity: int, per_connection: int) -> None:
    configure_logging("warning", "json")  # to stderr: stdout carries the replies
    daemon = ScaleDaemon(url, count, capacity, per_connection)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with asyncio.TaskGroup() as group:
        feeds = [group.create_task(feed.run()) for feed in daemon.feeds]
        deadline = loop.time() + _MARK_WAIT_S
        while len(daemon.valid) < count and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        freeze_startup_heap()
        print("ready" if len(daemon.valid) == count else "not ready", flush=True)
        marked = 0
        while line := (await stdin.readline()).decode().split():
            if line[0] == "reset":
                daemon.probe.count = marked = 0
            elif line[0] == "mark":
                deadline = loop.time() + _MARK_WAIT_S
                while daemon.probe.count < int(line[1]) and loop.time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                print(json.dumps(daemon.report(marked)), flush=True)
                marked = min(daemon.probe.count, capacity)
            else:
                break
        for task in feeds:
            task.cancel()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
