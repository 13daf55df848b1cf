"""The scale bench's contenders, each run in its own process: the daemon's side, and a floor.

``python -m bench.scale_daemon CONTENDER URL SYMBOLS CAPACITY PER_CONNECTION`` connects to
the bench's server with the symbols spread over connections by ``bench.scale_plan.spread``
(at most ``PER_CONNECTION`` each), and runs one contender:

- ``krakenbot`` (``ScaleDaemon``): what ``bot.service.daemon`` builds on the market-data
  path, with real objects: one ``Feed`` per connection (book channel, depth 10, the
  instruments known up front), the books, the ``Desk`` (its ``marks`` take every book's mid,
  as the daemon's do) and one ``StrategyRunner`` whose strategy trades every symbol and
  does nothing but note when it saw each book. The sink does for ``BookUpdated`` what
  ``Daemon._on_market`` does: ``desk.marks.mark``, ``book.view()``, ``runner.book(view)``.
- ``floor`` (``FloorReader``): the same connections read by the same WebSocket library,
  each update's stamp cut from its text: the lag of the transport, the scheduler and the
  machine, with no parse, book or desk on top.

The start-up heap is frozen as the daemon freezes it (``freeze_startup_heap``). The lag of a
frame is the wall clock when it is seen (the strategy's ``on_book``; the floor's read)
minus the stamp the server wrote into its ``timestamp`` as it sent it; lags go into a
preallocated array of ``CAPACITY`` entries (``Lags``), so noting them allocates nothing.

Lines on stdin and stdout drive it: it prints ``ready`` once every book's snapshot arrived
(verified, for ``krakenbot``); ``reset`` forgets the lags so far; ``mark N`` waits (up to
``_MARK_WAIT_S``) until ``N`` update frames were seen since ``reset``, then prints one JSON
line: frames seen, the lags' summary since the last mark, checksum failures, books valid;
``quit`` (or end of input) ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from array import array
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, Final

from websockets.asyncio.client import connect

from bench.book_stream import BTC_USD
from bench.scale_plan import (
    DAY_US,
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
from bot.kraken import codec
from bot.kraken.instruments import InstrumentTable
from bot.market.book import Book
from bot.market.feed import BookUpdated, BookValid, Feed, FeedEvent
from bot.service.wiring import freeze_startup_heap
from bot.strategy import BookSnapshot, Params, Strategy
from bot.strategy.desk import Desk
from bot.strategy.runner import StrategyRunner
from bot.strategy.testing import FakeContext

__all__ = ["CONTENDERS", "FloorReader", "LagProbe", "Lags", "ScaleDaemon"]

_MARK_WAIT_S: Final = 30.0
_NAME: Final = "scale"


class Lags:
    """Each timed frame's lag in microseconds, in a preallocated array (``capacity``)."""

    def __init__(self, capacity: int) -> None:
        self.values = array("q", [0]) * capacity  # written now: RSS holds it from the start
        self.count = 0
        self.unstamped = 0

    def note(self, text: str) -> None:
        """A frame stamped ``text`` is seen now."""
        now_us = time.time_ns() // 1000
        try:
            stamped = stamp_us_of_day(text)
        except ValueError:  # a snapshot sent before the run: not a timed frame
            self.unstamped += 1
            return
        if self.count < len(self.values):
            self.values[self.count] = lag_us(now_us % DAY_US, stamped)
        self.count += 1

    def report(self, start: int) -> dict[str, int]:
        end = min(self.count, len(self.values))
        return {"frames_seen": self.count, **summary(self.values[start:end])}


class _NoParams(Params):
    pass


class LagProbe(Strategy[_NoParams]):
    """Does nothing with a book but note how late it saw it."""

    lags: Lags

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        self.lags.note(book.timestamp)


class ScaleDaemon:
    """The feeds, books, desk and strategy for ``count`` symbols on ``url``."""

    def __init__(self, url: str, count: int, lags: Lags, per_connection: int) -> None:
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
        self.probe.lags = self.lags = lags
        runner = StrategyRunner(self.probe, timers=ctx.timers, clock=clock)
        self.desk.add_runner(runner)
        self.runners = self.desk.runners.values()
        self.valid: set[str] = set()
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

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        return [feed.run() for feed in self.feeds]

    def checksum_failures(self) -> int:
        return sum(sum(feed.stats.checksum_failures.values()) for feed in self.feeds)


class FloorReader:
    """The floor: the same connections read by websockets alone, each update's stamp cut
    from its text (the last 31 to 4 characters) and noted; no parse, no book, no desk."""

    def __init__(self, url: str, count: int, lags: Lags, per_connection: int) -> None:
        self.url, self.lags = url, lags
        symbols = tuple(inst.symbol for inst in instruments(count, BTC_USD))
        self.groups = spread(symbols, per_connection)
        self.valid: set[str] = set()  # symbols whose snapshot arrived

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        return [self._read(group) for group in self.groups]

    def checksum_failures(self) -> int:
        return 0  # nothing is checked

    async def _read(self, group: tuple[str, ...]) -> None:
        note = self.lags.note
        async with connect(self.url, ping_interval=None, max_size=None) as ws:
            await ws.send(codec.subscribe_book(group, depth=10, req_id=1).decode())
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode()
                if text.startswith(_UPDATE):
                    note(text[-31:-4])
                elif text.startswith(_SNAPSHOT):
                    self.valid.update(x for x in group if f'"symbol":"{x}"' in text[:80])


_UPDATE: Final = '{"channel":"book","type":"update"'
_SNAPSHOT: Final = '{"channel":"book","type":"snapshot"'
CONTENDERS: Final[dict[str, type[ScaleDaemon | FloorReader]]] = {
    "krakenbot": ScaleDaemon,
    "floor": FloorReader,
}


async def _main(contender: str, url: str, count: int, capacity: int, per_connection: int) -> None:
    configure_logging("warning", "json")  # to stderr: stdout carries the replies
    lags = Lags(capacity)
    side = CONTENDERS[contender](url, count, lags, per_connection)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run) for run in side.tasks()]
        deadline = loop.time() + _MARK_WAIT_S
        while len(side.valid) < count and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        freeze_startup_heap()
        print("ready" if len(side.valid) == count else "not ready", flush=True)
        marked = 0
        while line := (await stdin.readline()).decode().split():
            if line[0] == "reset":
                lags.count = marked = 0
            elif line[0] == "mark":
                deadline = loop.time() + _MARK_WAIT_S
                while lags.count < int(line[1]) and loop.time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                report = {**lags.report(marked), "checksum_failures": side.checksum_failures(),
                          "books_valid": len(side.valid)}  # fmt: skip
                print(json.dumps(report), flush=True)
                marked = min(lags.count, capacity)
            else:
                break
        for task in tasks:
            task.cancel()


if __name__ == "__main__":
    contender, url, count, capacity, per_connection = sys.argv[1:6]
    asyncio.run(_main(contender, url, int(count), int(capacity), int(per_connection)))
