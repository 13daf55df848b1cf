"""The public feed (bot.market.feed) against real WebSockets on 127.0.0.1.

``FakeKraken`` is a small in-test server that speaks just enough Kraken WS v2: status on
connect, per-symbol acks (and Kraken's refusal for an unknown pair), an instrument
snapshot, book snapshots and updates with correct checksums (bench.book_stream, a fresh
stream per subscription), trades, heartbeats when idle, pong. It records every request
and injects faults: a dropped socket, a silent one, one corrupt checksum, raw bad frames.
Each test runs in about a second with tiny timeouts; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.book_stream import StreamSpec, generate_frames
from bot.config import MarketConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import FakeClock
from bot.core.errors import ConfigError
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.kraken.protocol import BookFrame, Parser, Status, TradeFrame, Unparsed
from bot.market.book import Book
from bot.market.feed import (
    BookInvalid,
    BookUpdated,
    BookValid,
    ConnectionLost,
    Feed,
    FeedConnected,
    FeedDisconnected,
    FeedEvent,
    SubscriptionFailed,
)
from tests.loopback.conftest import SimHandle

WAIT_S = 3.0  # the bound on every wait; scale up on a slow machine
TICK_S = 0.01  # the fake's pump: one book update per symbol per tick

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)
PAIRS = {inst.symbol: inst for inst in (BTC, ETH)}
STAMP = "2024-01-01T00:00:00.000000Z"


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def ack(method: str, req_id: int, result: dict[str, Any]) -> str:
    return dumps(
        {
            "method": method,
            "result": result,
            "success": True,
            "time_in": STAMP,
            "time_out": STAMP,
            "req_id": req_id,
        }
    )


def refusal(req_id: int, error: str, symbol: str) -> str:
    return dumps(
        {
            "method": "subscribe",
            "success": False,
            "error": error,
            "symbol": symbol,
            "time_in": STAMP,
            "time_out": STAMP,
            "req_id": req_id,
        }
    )


def instrument_snapshot() -> str:
    pairs = [
        {
            "symbol": inst.symbol,
            "base": inst.base,
            "quote": inst.quote,
            "status": "online",
            "price_precision": inst.price_precision,
            "qty_precision": inst.qty_precision,
        }
        for inst in PAIRS.values()
    ]
    return dumps(
        {"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": pairs}}
    )


def trade_frame(symbol: str) -> str:
    trade = {
        "symbol": symbol,
        "side": "buy",
        "price": 30000.1 if symbol == "BTC/USD" else 3000.01,
        "qty": 0.5,
        "ord_type": "limit",
        "trade_id": 1,
        "timestamp": STAMP,
    }
    return dumps({"channel": "trade", "type": "update", "data": [trade]})


def corrupted(frame: bytes) -> bytes:
    head, _, tail = frame.partition(b'"checksum":')
    digits = tail.split(b",", 1)[0]
    bad = (int(digits) + 1) % 2**32
    return head + b'"checksum":' + str(bad).encode() + tail[len(digits) :]


class _Stream:
    """One book subscription: the frames to send and the book the subscriber should hold."""

    def __init__(self, inst: Instrument, depth: int, seed: int) -> None:
        self.frames: Iterator[bytes] = generate_frames(
            StreamSpec(frames=10**9, depth=depth, seed=seed, instrument=inst)
        )
        self.parser = Parser(InstrumentTable([inst]))
        self.book = Book(inst, depth)

    def next(self) -> bytes:
        frame = next(self.frames)
        for event in self.parser.parse(frame):
            assert isinstance(event, BookFrame)
            assert self.book.apply(event) is None
        return frame


class _Conn:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.silent = False
        self.streams: dict[str, _Stream] = {}
        self.requests: list[dict[str, Any]] = []


class FakeKraken:
    """Enough of Kraken's public WS v2 for the feed, with faults on demand."""

    def __init__(self) -> None:
        self.url = ""
        self.conns: list[_Conn] = []
        self.seeds = itertools.count(1)
        self.corrupt: set[str] = set()
        self.paused = False  # no book updates (heartbeats only)
        self.quiet = False  # nothing unsolicited at all, but requests are answered
        self._requested = asyncio.Event()

    # -- faults and views --------------------------------------------------------------

    @property
    def live(self) -> _Conn:
        return self.conns[-1]

    def drop(self) -> None:
        """Abort the current TCP connection: no close frame (the client sees 1006)."""
        transport = self.live.ws.transport
        assert transport is not None
        transport.abort()

    def go_silent(self) -> None:
        """The current connection says nothing more and answers nothing."""
        self.live.silent = True

    async def inject(self, raw: str) -> None:
        await self.live.ws.send(raw)

    def requests(self, conn: int | None = None) -> list[dict[str, Any]]:
        chosen = self.conns if conn is None else [self.conns[conn]]
        return [r for c in chosen for r in c.requests]

    def book(self, symbol: str) -> Book:
        return self.live.streams[symbol].book

    async def until(self, predicate: Callable[[], bool], within: float = WAIT_S) -> None:
        """Wait (bounded) until ``predicate`` holds, checking at every request received."""
        async with asyncio.timeout(within):
            while not predicate():
                self._requested.clear()
                await self._requested.wait()

    # -- the server --------------------------------------------------------------------

    async def handler(self, ws: ServerConnection) -> None:
        conn = _Conn(ws)
        self.conns.append(conn)
        status = {"system": "online", "api_version": "v2", "connection_id": 7, "version": "2"}
        await ws.send(dumps({"channel": "status", "type": "update", "data": [status]}))
        pump = asyncio.create_task(self._pump(conn))
        try:
            async for raw in ws:
                request = json.loads(raw)
                conn.requests.append(request)
                self._requested.set()
                if not conn.silent:
                    await self._answer(conn, request)
        except ConnectionClosed:
            pass
        finally:
            pump.cancel()
            with suppress(asyncio.CancelledError):
                await pump

    async def _pump(self, conn: _Conn) -> None:
        with suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(TICK_S)
                if conn.silent or self.quiet:
                    continue
                if self.paused or not conn.streams:
                    await conn.ws.send('{"channel":"heartbeat"}')
                    continue
                for symbol, stream in list(conn.streams.items()):
                    frame = stream.next()
                    if symbol in self.corrupt:
                        self.corrupt.discard(symbol)
                        frame = corrupted(frame)
                    await conn.ws.send(frame.decode())

    async def _answer(self, conn: _Conn, request: dict[str, Any]) -> None:
        ws = conn.ws
        method, req_id = request["method"], request.get("req_id", 0)
        if method == "ping":
            pong = {"method": "pong", "req_id": req_id, "time_in": STAMP, "time_out": STAMP}
            await ws.send(dumps(pong))
            return
        params = request["params"]
        channel = params["channel"]
        if channel == "instrument":
            await ws.send(ack(method, req_id, {"channel": "instrument", "snapshot": True}))
            await ws.send(instrument_snapshot())
            return
        for symbol in params["symbol"]:
            if symbol not in PAIRS:
                await ws.send(refusal(req_id, f"Currency pair not supported {symbol}", symbol))
                continue
            result: dict[str, Any] = {"channel": channel, "symbol": symbol}
            if channel == "book":
                result["depth"] = params["depth"]
            await ws.send(ack(method, req_id, result))
            if method == "unsubscribe":
                if channel == "book":
                    conn.streams.pop(symbol, None)
            elif channel == "book":
                stream = _Stream(PAIRS[symbol], params["depth"], next(self.seeds))
                conn.streams[symbol] = stream
                await ws.send(stream.next().decode())
            elif channel == "trade":
                await ws.send(trade_frame(symbol))


@pytest.fixture
async def kraken() -> AsyncIterator[FakeKraken]:
    fake = FakeKraken()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}"
        yield fake


class Recorder:
    """The feed's sink: keeps every event and wakes waiters."""

    def __init__(self) -> None:
        self.events: list[FeedEvent] = []
        self.hooks: list[Callable[[FeedEvent], None]] = []
        self._changed = asyncio.Event()

    def __call__(self, event: FeedEvent) -> None:
        self.events.append(event)
        for hook in self.hooks:
            hook(event)
        self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def validity(self, symbol: str) -> list[str]:
        """The symbol's BookValid / BookInvalid events, in order."""
        return [
            "valid" if isinstance(e, BookValid) else f"invalid:{e.reason}"
            for e in self.events
            if isinstance(e, BookValid | BookInvalid) and e.symbol == symbol
        ]

    async def until(self, predicate: Callable[[], bool], within: float = WAIT_S) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


class Draws:
    """A backoff's random source (always 0.0) that wakes waiters at every delay drawn."""

    def __init__(self) -> None:
        self._drawn = asyncio.Event()

    def __call__(self) -> float:
        self._drawn.set()
        return 0.0

    async def until(self, predicate: Callable[[], bool], within: float = WAIT_S) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._drawn.clear()
                await self._drawn.wait()


def market(*symbols: str, **overrides: Any) -> MarketConfig:
    settings: dict[str, Any] = {
        "symbols": symbols or ("BTC/USD", "ETH/USD"),
        "book_depth": 10,
        "channels": ("book", "trade"),
        "stale_after_s": 0.3,
        "ping_interval_s": 0.05,
    }
    settings.update(overrides)
    return MarketConfig(**settings)


def make_feed(url: str, sink: Recorder, config: MarketConfig | None = None, **kw: Any) -> Feed:
    kw.setdefault("backoff", Backoff(BackoffPolicy(initial_s=0.01, max_s=0.05)))
    kw.setdefault("close_timeout_s", 0.2)
    return Feed(url, config or market(), sink, **kw)


@asynccontextmanager
async def running(feed: Feed) -> AsyncIterator[asyncio.Task[None]]:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(feed.run())
        try:
            yield task
        finally:
            task.cancel()


def all_valid(feed: Feed, *symbols: str) -> Callable[[], bool]:
    def check() -> bool:
        books = feed.books
        return all(s in books and books[s].valid for s in symbols)

    return check


def book_requests(requests: list[dict[str, Any]], method: str = "subscribe") -> list[Any]:
    return [
        (r["params"]["symbol"], r["params"]["depth"])
        for r in requests
        if r["method"] == method and r["params"]["channel"] == "book"
    ]


# --------------------------------------------------------------------------- the tests


async def test_subscribes_instruments_first_and_books_become_valid(kraken: FakeKraken) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        await sink.until(
            lambda: feed.stats.ping_rtt_s is not None and len(sink.of(TradeFrame)) == 2
        )

    first = kraken.requests(0)
    assert first[0]["params"] == {"channel": "instrument", "snapshot": True}
    assert book_requests(first) == [(["BTC/USD", "ETH/USD"], 10)]
    assert {r["params"]["channel"] for r in first if r["method"] == "subscribe"} == {
        "instrument",
        "book",
        "trade",
    }
    assert isinstance(sink.events[0], FeedConnected)
    assert sink.of(Status)[0].system == "online"
    assert sink.validity("BTC/USD")[0] == "valid"
    updated = sink.of(BookUpdated)
    assert updated[0].snapshot and all(u.book is feed.books[u.symbol] for u in updated)
    assert feed.stats.book_frames >= 2 and feed.stats.frames > feed.stats.book_frames
    by_symbol = feed.stats.book_frames_by_symbol
    assert set(by_symbol) == {"BTC/USD", "ETH/USD"} and all(n >= 1 for n in by_symbol.values())
    assert sum(by_symbol.values()) == feed.stats.book_frames
    assert feed.stats.ping_rtt_s is not None and feed.stats.ping_rtt_s >= 0
    age = feed.frame_age_s()
    assert age is not None and age >= 0
    assert feed.stats.reconnects == 0 and feed.stats.unparsed == 0


async def test_instruments_given_up_front_skip_the_instrument_channel(kraken: FakeKraken) -> None:
    sink = Recorder()
    table = InstrumentTable([BTC])
    feed = make_feed(
        kraken.url, sink, market("BTC/USD"), instruments=table, instrument_channel=False
    )
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD"))
    channels = [r["params"]["channel"] for r in kraken.requests() if r["method"] == "subscribe"]
    assert channels == ["book", "trade"]


async def test_dropped_socket_reconnects_resubscribes_and_books_recover(
    kraken: FakeKraken,
) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    valid_at_disconnect: list[bool] = []
    sink.hooks.append(
        lambda e: (
            valid_at_disconnect.extend(b.valid for b in feed.books.values())
            if isinstance(e, FeedDisconnected)
            else None
        )
    )
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        kraken.drop()
        await sink.until(lambda: len(sink.of(FeedConnected)) == 2)
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))

    for symbol in ("BTC/USD", "ETH/USD"):
        assert sink.validity(symbol) == ["valid", "invalid:disconnected", "valid"]
    assert valid_at_disconnect == [False, False]
    (lost,) = sink.of(FeedDisconnected)
    assert "dropped" in lost.reason
    assert feed.stats.reconnects == 1 and feed.stats.connects == 2
    assert len(kraken.conns) == 2
    second = kraken.requests(1)
    assert second[0]["params"]["channel"] == "instrument"
    assert book_requests(second) == [(["BTC/USD", "ETH/USD"], 10)]
    # The sink heard of the loss before anything of the new connection.
    kinds = [type(e) for e in sink.events]
    assert kinds.index(FeedDisconnected) < kinds.index(FeedConnected, 1)


async def test_silent_socket_is_probed_then_closed_by_the_watchdog(kraken: FakeKraken) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink, market(ping_interval_s=100.0))  # pings: probes only
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        silent_from = len(kraken.live.requests)
        kraken.go_silent()
        await sink.until(lambda: len(sink.of(FeedDisconnected)) == 1)
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))

    (lost,) = sink.of(FeedDisconnected)
    assert "no frame" in lost.reason
    assert feed.stats.reconnects == 1
    # Half-way to stale the watchdog asked (a ping); nobody answered.
    assert [r["method"] for r in kraken.requests(0)[silent_from:]] == ["ping"]
    assert sink.validity("BTC/USD") == ["valid", "invalid:disconnected", "valid"]


async def test_a_quiet_connection_that_answers_pings_stays_up(kraken: FakeKraken) -> None:
    sink = Recorder()
    # pings: probes only. stale_after_s 1 s leaves each pong 0.5 s to come back, so a
    # loaded machine's scheduling delay is not mistaken for a dead connection.
    feed = make_feed(kraken.url, sink, market(ping_interval_s=100.0, stale_after_s=1.0))
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        kraken.quiet = True
        quiet_from = len(kraken.live.requests)
        # Each probe's pong resets the watchdog: four probes span more than 2 s of
        # silence, twice stale_after_s.
        await kraken.until(lambda: len(kraken.live.requests) >= quiet_from + 4, within=3 * WAIT_S)
        assert {r["method"] for r in kraken.live.requests[quiet_from:]} == {"ping"}
        assert not sink.of(FeedDisconnected) and len(kraken.conns) == 1
        assert feed.books["BTC/USD"].valid
        assert feed.stats.ping_rtt_s is not None


async def test_corrupt_checksum_resubscribes_only_that_symbol(kraken: FakeKraken) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        before = len(kraken.live.requests)
        kraken.corrupt.add("BTC/USD")
        await sink.until(lambda: "valid" in sink.validity("BTC/USD")[1:])
        eth_updates = len([u for u in sink.of(BookUpdated) if u.symbol == "ETH/USD"])
        await sink.until(
            lambda: len([u for u in sink.of(BookUpdated) if u.symbol == "ETH/USD"]) > eth_updates
        )
        assert feed.books["BTC/USD"].valid and feed.books["ETH/USD"].valid

    assert sink.validity("BTC/USD") == ["valid", "invalid:checksum mismatch", "valid"]
    assert sink.validity("ETH/USD") == ["valid"]
    assert feed.stats.checksum_failures == {"BTC/USD": 1}
    assert feed.stats.reconnects == 0 and len(kraken.conns) == 1
    after = kraken.requests(0)[before:]
    assert book_requests(after, "unsubscribe") == [(["BTC/USD"], 10)]
    assert book_requests(after) == [(["BTC/USD"], 10)]
    methods = [r["method"] for r in after if r["method"] != "ping"]
    assert methods == ["unsubscribe", "subscribe"]


async def test_refused_subscription_is_reported_once_and_never_retried(
    kraken: FakeKraken,
) -> None:
    sink = Recorder()
    bad = Instrument("BAD/USD", "BAD", "USD", price_precision=1, qty_precision=8)
    table = InstrumentTable([BTC, bad])
    config = market("BTC/USD", "BAD/USD")
    feed = make_feed(kraken.url, sink, config, instruments=table, instrument_channel=False)
    async with running(feed):
        await sink.until(lambda: len(sink.of(SubscriptionFailed)) == 2)
        await sink.until(all_valid(feed, "BTC/USD"))
        kraken.drop()
        await sink.until(lambda: len(sink.of(FeedConnected)) == 2)
        await sink.until(all_valid(feed, "BTC/USD"))
        assert not feed.books["BAD/USD"].valid

    failed = sink.of(SubscriptionFailed)
    assert {(f.channel, f.symbol) for f in failed} == {("book", "BAD/USD"), ("trade", "BAD/USD")}
    assert all(f.error == "Currency pair not supported BAD/USD" for f in failed)
    assert feed.excluded == {("book", "BAD/USD"), ("trade", "BAD/USD")}
    assert feed.stats.subscription_failures == 2
    second = [r["params"]["symbol"] for r in kraken.requests(1) if r["method"] == "subscribe"]
    assert second == [["BTC/USD"], ["BTC/USD"]]


async def test_symbol_missing_from_the_instrument_snapshot_is_reported(
    kraken: FakeKraken,
) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink, market("NOPE/USD", "BTC/USD"))
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD"))
        await sink.until(lambda: len(sink.of(SubscriptionFailed)) == 1)

    (failed,) = sink.of(SubscriptionFailed)
    assert (failed.channel, failed.symbol) == ("instrument", "NOPE/USD")
    symbols = [r["params"].get("symbol") for r in kraken.requests() if r["method"] == "subscribe"]
    assert symbols == [None, ["BTC/USD"], ["BTC/USD"]]
    assert "NOPE/USD" not in feed.books


async def test_bad_frames_are_counted_and_survived(kraken: FakeKraken) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        await kraken.inject("this is not json")
        await kraken.inject('{"channel":"book","type":"update","data":[{"symbol":"BTC/USD"}]}')
        await kraken.inject('{"channel":"nonsense"}')
        await sink.until(lambda: feed.stats.unparsed == 3)
        seen = len(sink.events)
        await sink.until(lambda: len(sink.events) > seen + 4)
        # The bad BTC/USD book frame cost that book an update: it is resynced (see below).
        await sink.until(lambda: sink.validity("BTC/USD")[1:] == ["invalid:bad frame", "valid"])
        assert feed.books["BTC/USD"].valid and feed.books["ETH/USD"].valid

    assert [type(e) for e in sink.of(Unparsed)] == [Unparsed] * 3
    assert "not JSON" in sink.of(Unparsed)[0].reason
    assert not sink.of(FeedDisconnected)


@pytest.mark.parametrize(
    "bad",
    [
        # A checksum that is not a u32: found before any level is applied, yet the book
        # has missed this update all the same.
        dumps(
            {
                "channel": "book",
                "type": "update",
                "data": [
                    {
                        "symbol": "BTC/USD",
                        "bids": [{"price": 1.5, "qty": 1.0}],
                        "asks": [],
                        "checksum": -1,
                        "timestamp": STAMP,
                    }
                ],
            }
        ),
        # Cut off in transit: not JSON, but its text names the book channel and the symbol.
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"pri',
    ],
    ids=["checksum-not-u32", "cut-off"],
)
async def test_a_book_frame_that_cannot_be_parsed_invalidates_and_resyncs_its_book(
    kraken: FakeKraken, bad: str
) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        before = len(kraken.live.requests)
        await kraken.inject(bad)
        await sink.until(
            lambda: sink.validity("BTC/USD") == ["valid", "invalid:bad frame", "valid"]
        )
        await sink.until(lambda: feed.books["BTC/USD"].top() == kraken.book("BTC/USD").top())

    assert sink.validity("ETH/USD") == ["valid"]
    assert feed.stats.unparsed == 1 and feed.stats.resyncs == 1
    after = kraken.requests(0)[before:]
    assert book_requests(after, "unsubscribe") == [(["BTC/USD"], 10)]
    assert book_requests(after) == [(["BTC/USD"], 10)]


async def test_the_exchange_status_is_kept_and_told(kraken: FakeKraken) -> None:
    sink = Recorder()
    told: list[str] = []
    feed = make_feed(kraken.url, sink, on_status=told.append)
    assert feed.exchange_status is None
    async with running(feed):
        await sink.until(lambda: feed.exchange_status == "online")  # pushed on connect
        status = {"system": "cancel_only", "api_version": "v2", "connection_id": 7}
        await kraken.inject(dumps({"channel": "status", "type": "update", "data": [status]}))
        await sink.until(lambda: feed.exchange_status == "cancel_only")
    assert told == ["online", "cancel_only"]
    assert [e.system for e in sink.of(Status)] == ["online", "cancel_only"]


def half_bad_update(symbol: str) -> str:
    """A book update whose first level is fine and whose second has no qty."""
    asks = [{"price": 1.5, "qty": 1.0}, {"price": 2.5}]
    item = {"symbol": symbol, "bids": [], "asks": asks, "checksum": 1, "timestamp": STAMP}
    return dumps({"channel": "book", "type": "update", "data": [item]})


async def test_a_bad_frame_that_broke_off_half_applied_resyncs_that_book(
    kraken: FakeKraken,
) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        before = len(kraken.live.requests)
        await kraken.inject(half_bad_update("BTC/USD"))
        await sink.until(lambda: "valid" in sink.validity("BTC/USD")[1:])
        assert feed.books["BTC/USD"].valid and feed.books["ETH/USD"].valid
        # The resynced book holds what the venue's stream holds, not the stray level.
        await sink.until(lambda: feed.books["BTC/USD"].top() == kraken.book("BTC/USD").top())

    assert sink.validity("BTC/USD") == ["valid", "invalid:bad frame", "valid"]
    assert sink.validity("ETH/USD") == ["valid"]
    assert feed.stats.unparsed == 1 and len(sink.of(Unparsed)) == 1
    assert feed.stats.checksum_failures == {} and feed.stats.resyncs == 1
    after = kraken.requests(0)[before:]
    assert book_requests(after, "unsubscribe") == [(["BTC/USD"], 10)]
    assert book_requests(after) == [(["BTC/USD"], 10)]


@pytest.mark.parametrize(("healthy", "attempts"), [(True, 1), (False, 4)])
async def test_backoff_restarts_after_a_healthy_connection(
    kraken: FakeKraken, healthy: bool, attempts: int
) -> None:
    sink = Recorder()
    clock = FakeClock()
    draws = Draws()
    backoff = Backoff(BackoffPolicy(initial_s=0.5, max_s=4.0, jitter=0.0), random=draws)
    for _ in range(3):  # as if three connections had already failed
        backoff.next_delay()
    config = market(stale_after_s=100.0, ping_interval_s=100.0)
    feed = make_feed(kraken.url, sink, config, clock=clock, backoff=backoff, healthy_after_s=1.0)
    async with running(feed):
        await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
        if healthy:
            clock.advance(2.0)
        kraken.drop()
        await sink.until(lambda: len(sink.of(FeedDisconnected)) == 1)
        await draws.until(lambda: backoff.attempts in (1, 4))
        assert backoff.attempts == attempts
        clock.advance(4.0)  # the backoff sleeps on the feed's clock
        await sink.until(lambda: len(sink.of(FeedConnected)) == 2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_backoff_grows_while_the_server_is_unreachable() -> None:
    sink = Recorder()
    clock = FakeClock(auto_advance=True)
    draws = Draws()
    backoff = Backoff(BackoffPolicy(initial_s=1.0, max_s=8.0, jitter=0.0), random=draws)
    feed = make_feed(f"ws://127.0.0.1:{_closed_port()}", sink, clock=clock, backoff=backoff)
    start = clock.monotonic()
    async with running(feed):
        await draws.until(lambda: backoff.attempts >= 6)
        waited = clock.monotonic() - start  # read with attempts, no await between
        assert waited == sum(min(8.0, 2.0**n) for n in range(backoff.attempts))
    assert feed.stats.reconnects >= 5
    assert not sink.events  # no FeedConnected, so no FeedDisconnected either


async def test_the_reconnect_decision_can_stop_the_feed() -> None:
    sink = Recorder()
    feed = make_feed(f"ws://127.0.0.1:{_closed_port()}", sink, reconnect=lambda error: False)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(feed.run(), WAIT_S)


async def test_a_bad_url_is_a_config_error_not_a_retry() -> None:
    feed = make_feed("http://127.0.0.1:1/v2", Recorder())
    with pytest.raises(ConfigError, match="ws_public_url"):
        await asyncio.wait_for(feed.run(), WAIT_S)


async def test_cancelling_the_feed_stops_it_cleanly(kraken: FakeKraken) -> None:
    sink = Recorder()
    feed = make_feed(kraken.url, sink)
    task = asyncio.create_task(feed.run())
    await sink.until(all_valid(feed, "BTC/USD", "ETH/USD"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not feed.connected
    assert not any(b.valid for b in feed.books.values())


# ------------------------------------------------------------------ against the simulator


async def test_survives_drop_silence_and_corrupt_checksum_and_matches_the_simulator(
    sim: SimHandle,
) -> None:
    symbols = ("BTC/USD", "ETH/USD")
    sink = Recorder()
    config = market(
        *symbols, channels=("book", "trade", "ticker"), stale_after_s=0.5, ping_interval_s=0.1
    )
    feed = make_feed(sim.ws_public_url, sink, config)
    faults = sim.venue.faults

    def connected(n: int) -> Callable[[], bool]:
        return lambda: len(sink.of(FeedConnected)) == n

    def matches_the_venue() -> bool:
        for symbol in symbols:
            book = feed.books[symbol]
            bids, asks = sim.venue.exchange.depth(symbol, 10)
            if not (book.valid and book.bids(10) == bids and book.asks(10) == asks):
                return False
        return True

    async with running(feed):
        await sink.until(all_valid(feed, *symbols))
        await faults.inject(kind="ws_drop", conn_kind="public")
        await sink.until(connected(2))
        await sink.until(all_valid(feed, *symbols))
        await faults.inject(kind="ws_silence", conn_kind="public", hold_s=5.0)
        await sink.until(connected(3))
        await sink.until(all_valid(feed, *symbols))
        await faults.inject(kind="ws_corrupt_checksum", conn_kind="public", symbol="BTC/USD")
        await sink.until(
            lambda: sink.validity("BTC/USD")[-2:] == ["invalid:checksum mismatch", "valid"]
        )
        sim.venue.pause()  # the market stops: what the feed holds must be the venue's book
        await sink.until(matches_the_venue)
        assert feed.connected

    drop, silence = (e.reason for e in sink.of(FeedDisconnected))
    assert "dropped" in drop and "no frame" in silence
    lost_twice = ["valid", "invalid:disconnected", "valid", "invalid:disconnected", "valid"]
    assert sink.validity("ETH/USD") == lost_twice
    assert sink.validity("BTC/USD") == [*lost_twice, "invalid:checksum mismatch", "valid"]
    assert feed.stats.checksum_failures == {"BTC/USD": 1}
    assert feed.stats.reconnects == 2 and feed.stats.unparsed == 0
    assert not sink.of(SubscriptionFailed)
