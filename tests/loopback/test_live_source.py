"""``sim.source: live`` offline: a second simulator stands in for Kraken as the upstream.

The paper venue (a simulator whose market is ``LiveMarket``, fed by ``UpstreamMirror``)
serves the upstream's book checksum for checksum and its trades print for print; a paper
order away from the market never fills; when the upstream is lost the paper venue's own
subscribers lose their books (their sockets close, new ones are refused) and get them
back after the resync. Every wait is bounded (``WAIT_S``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from structlog.testing import capture_logs
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot.config import MarketConfig, load_config_text
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.errors import ConfigError
from bot.market.feed import BookInvalid, BookValid, Feed, FeedEvent
from bot.service.paper_live import UpstreamMirror
from bot.service.simulator import build_venue
from bot.sim.live_source import LiveMarket
from bot.sim.pairs import default_instruments
from bot.sim.server import SimServer
from bot.sim.venue import DEFAULT_ACCOUNT, SimVenue
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.kraken_client import KrakenTestClient
from tests.loopback.waiting import until

WAIT_S = 10.0
SYMBOLS = ("BTC/USD", "ETH/USD")


def fast() -> Backoff:
    return Backoff(BackoffPolicy(initial_s=0.01, max_s=0.05))


class Client:
    """A public feed (the daemon's own) on one venue, keeping every frame and event."""

    def __init__(self, url: str, channels: tuple[str, ...] = ("book", "trade")) -> None:
        self.raw: list[bytes] = []
        self.events: list[FeedEvent] = []
        market = MarketConfig(
            symbols=SYMBOLS,
            book_depth=10,
            channels=channels,  # type: ignore[arg-type]
            stale_after_s=0.5,
            ping_interval_s=0.1,
        )
        self.feed = Feed(
            url, market, self.events.append, backoff=fast(), tap=self._tap, close_timeout_s=0.2
        )

    def _tap(self, raw: str | bytes) -> None:
        self.raw.append(raw.encode() if isinstance(raw, str) else raw)

    def valid(self) -> bool:
        books = self.feed.books
        return set(books) == set(SYMBOLS) and all(b.valid for b in books.values())

    def checksums(self, symbol: str) -> list[int]:
        out = []
        for raw in self.raw:
            msg = orjson.loads(raw)
            if msg.get("channel") == "book":
                out += [d["checksum"] for d in msg["data"] if d["symbol"] == symbol]
        return out

    def trades(self, symbol: str) -> list[tuple[str, str, str]]:
        out = []
        for raw in self.raw:
            if b'"channel":"trade"' in raw and b'"type":"update"' in raw:
                out.extend(
                    (t["side"], str(t["price"]), str(t["qty"]))
                    for t in orjson.loads(raw)["data"]
                    if t["symbol"] == symbol
                )
        return out

    def validity(self, symbol: str) -> list[str]:
        return [
            "valid" if isinstance(e, BookValid) else f"invalid:{e.reason}"
            for e in self.events
            if isinstance(e, BookValid | BookInvalid) and e.symbol == symbol
        ]


@asynccontextmanager
async def running(*feeds: Feed) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(f.run()) for f in feeds]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


@asynccontextmanager
async def paper_venue(upstream_url: str) -> AsyncIterator[tuple[SimServer, LiveMarket]]:
    """A simulator whose market is the upstream's, mirrored live."""
    instruments = default_instruments(SYMBOLS)
    live = LiveMarket(instruments)
    venue = SimVenue(instruments=instruments, market=live, seed=3)
    venue.add_account(DEFAULT_ACCOUNT, {"USD": 100_000, "BTC": 10, "ETH": 100})
    live.attach(venue.exchange)
    venue.upstream = UpstreamMirror(
        venue, live, upstream_url, SYMBOLS, 10, stale_after_s=0.5, backoff=fast()
    )
    server = await SimServer.start(venue, "127.0.0.1", 0, pump=True)
    try:
        yield server, live
    finally:
        await server.close()


def contiguous_in(part: list[Any], whole: list[Any]) -> bool:
    n = len(part)
    return any(whole[i : i + n] == part for i in range(len(whole) - n + 1))


async def test_the_paper_venue_serves_the_upstream_book_and_trades_frame_for_frame(
    sim: SimHandle,
) -> None:
    upstream = Client(sim.ws_public_url)
    async with running(upstream.feed):
        await until(upstream.valid, "the upstream client's books")
        async with paper_venue(sim.ws_public_url) as (server, live):
            await until(lambda: live.ready, "the mirror")
            paper = Client(server.ws_public_url)
            creds = server.venue.credentials()
            async with running(paper.feed):
                await until(paper.valid, "the paper client's books")
                # A paper bid far below the market rests, out of the subscribed depth.
                async with aiohttp.ClientSession() as http:
                    client = KrakenTestClient(
                        http, server.rest_url, creds.api_key, creds.api_secret
                    )
                    placed = await client.private(
                        "AddOrder",
                        pair="XBTUSD", type="buy", ordertype="limit", volume="0.01",
                        price="30000.0",
                    )  # fmt: skip
                    assert placed.result["txid"], placed.text
                await until(
                    lambda: (
                        all(len(paper.checksums(s)) >= 40 for s in SYMBOLS)
                        and len(paper.trades("BTC/USD")) >= 2
                    ),
                    "paper book frames and trades",
                    timeout_s=30.0,
                )
    for symbol in SYMBOLS:
        ours, theirs = paper.checksums(symbol), upstream.checksums(symbol)
        assert contiguous_in(ours, theirs), symbol  # every frame, same book, in order
        assert contiguous_in(paper.trades(symbol), upstream.trades(symbol)), symbol
    assert live.stats.fills == 0
    (order,) = server.venue.exchange.open_orders(DEFAULT_ACCOUNT)
    assert order.filled == 0  # no print reached it


async def test_the_paper_venue_refuses_public_sockets_until_the_upstream_is_valid(
    sim_factory: SimFactory,
) -> None:
    async with paper_venue("ws://127.0.0.1:9/v2") as (server, live):  # nothing listens there
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.ws_public_url, open_timeout=WAIT_S):
                pass
        assert refused.value.response.status_code == 503
        assert not live.ready
    upstream = await sim_factory()
    async with paper_venue(upstream.ws_public_url) as (server, live):
        await until(lambda: live.ready, "the mirror")
        async with connect(server.ws_public_url, open_timeout=WAIT_S) as ws:
            assert b'"channel":"status"' in (await ws.recv(decode=False))


async def test_a_lost_upstream_invalidates_the_paper_books_until_the_resync(
    sim: SimHandle,
) -> None:
    async with paper_venue(sim.ws_public_url) as (server, live):
        await until(lambda: live.ready, "the mirror")
        daemon = Client(server.ws_public_url, channels=("book",))
        async with running(daemon.feed):
            await until(daemon.valid, "the daemon's books")
            await sim.venue.faults.inject(kind="ws_drop", conn_kind="public")  # the upstream
            await until(lambda: daemon.feed.stats.connects >= 2 and daemon.valid(), "a resync")
            assert live.ready
    for symbol in SYMBOLS:
        assert daemon.validity(symbol) == ["valid", "invalid:disconnected", "valid"]
    frames = [orjson.loads(raw) for raw in daemon.raw]
    snapshots = [f for f in frames if f.get("channel") == "book" and f["type"] == "snapshot"]
    assert len(snapshots) == 2 * len(SYMBOLS)  # one per connection and symbol


async def test_the_config_builds_a_live_venue_on_its_upstream_url(sim: SimHandle) -> None:
    config = load_config_text(
        "mode: paper\n"
        "market: {symbols: [ETH/USD], book_depth: 25}\n"
        f"sim: {{source: live, upstream_url: '{sim.ws_public_url}', speed: 4.0}}\n"
    )
    venue, _ = build_venue(config)
    assert isinstance(venue.market, LiveMarket)  # not sped up: live prices run in real time
    assert isinstance(venue.upstream, UpstreamMirror)
    assert venue.upstream.feed.url == sim.ws_public_url
    assert venue.upstream.depth == 25 and list(venue.instruments) == ["ETH/USD"]
    server = await SimServer.start(venue, "127.0.0.1", 0, pump=True)
    try:
        await until(lambda: venue.market_ready, "the mirror")
        bids, asks = venue.exchange.depth("ETH/USD")
        assert len(bids) == len(asks) == 25
    finally:
        await server.close()


async def test_a_bad_upstream_url_stops_at_start_and_a_crashed_upstream_is_logged() -> None:
    config = load_config_text("sim: {source: live, upstream_url: 'wss://h:port/v2'}\n")
    with pytest.raises(ConfigError, match=r"sim\.upstream_url: not a usable WebSocket URL"):
        build_venue(config.model_copy(update={"market": MarketConfig(symbols=("BTC/USD",))}))

    class Broken:
        async def run(self) -> None:
            raise RuntimeError("a bug in the upstream")

    venue = SimVenue(instruments=default_instruments(SYMBOLS), seed=1)
    venue.upstream = Broken()
    with capture_logs() as logs:
        server = await SimServer.start(venue, "127.0.0.1", 0, pump=True)
        try:
            await until(lambda: any(e["event"] == "sim_pump_crashed" for e in logs), "the log")
        finally:
            with pytest.raises(ExceptionGroup):  # closing still reports it
                await server.close()
    (crash,) = [e for e in logs if e["event"] == "sim_pump_crashed"]
    assert "a bug in the upstream" in crash["error"]
