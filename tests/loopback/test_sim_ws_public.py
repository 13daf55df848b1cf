"""The simulator's public WebSocket v2 (``/v2``) against an independent client.

The client is the ``websockets`` library; frames are decoded by ``bot.kraken.protocol.Parser``
and books kept by ``bot.market.book.Book``, which verifies every checksum. Most tests run
on ``fake_sim`` (FakeClock, no pump): the test steps the market itself, so it is fast and
nothing waits on real time. A ``ping`` is the barrier: frames are answered in order, so
everything queued before the ``pong`` has arrived once the ``pong`` has.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.core.clock import FakeClock
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import (
    BookFrame,
    Event,
    Heartbeat,
    InstrumentFrame,
    Parser,
    Pong,
    Status,
    SubscribeAck,
    Ticker,
    TradeFrame,
    UnsubscribeAck,
)
from bot.market.book import Book
from bot.sim.book_stream import BookFanout
from bot.sim.exchange import Exchange
from bot.sim.market_data import MarketAction, MarketAdd, MarketAmend, MarketCancel, MarketTake
from bot.sim.pairs import default_instruments
from bot.sim.venue import SimVenue
from bot.sim.ws_common import WsSession
from tests.loopback.conftest import SimFactory, SimHandle

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/kraken"
TIMEOUT = 5.0
_req_ids = itertools.count(1000)


class WsClient:
    """A WebSocket v2 client for tests: raw frames in, ``Parser`` events out."""

    def __init__(self, ws: ClientConnection, instruments: InstrumentTable) -> None:
        self.ws = ws
        # A copy: instrument frames update the parser's table, never the venue's.
        self.parser = Parser(InstrumentTable(instruments.values()))

    @classmethod
    async def open(cls, url: str, venue: SimVenue) -> WsClient:
        ws = await connect(url, max_size=None, compression=None, proxy=None)
        return cls(ws, venue.instruments)

    async def send(self, method: str, req_id: int | None = None, **params: Any) -> int:
        req_id = next(_req_ids) if req_id is None else req_id
        body: dict[str, Any] = {"method": method, "req_id": req_id}
        if params:
            body["params"] = params
        await self.ws.send(json.dumps(body))
        return req_id

    async def raw(self, wait_s: float = TIMEOUT) -> bytes:
        async with asyncio.timeout(wait_s):
            data = await self.ws.recv(decode=False)
        assert isinstance(data, bytes)
        return data

    async def event(self, wait_s: float = TIMEOUT) -> Event:
        events = self.parser.parse(await self.raw(wait_s))
        assert len(events) == 1, events
        return events[0]

    async def until(self, kind: type[Any], wait_s: float = TIMEOUT) -> tuple[Any, list[Event]]:
        """The next event of ``kind`` and the events before it."""
        before: list[Event] = []
        while True:
            event = await self.event(wait_s)
            if isinstance(event, kind):
                return event, before
            before.append(event)

    async def barrier(self) -> list[bytes]:
        """Every frame the server sent before answering a fresh ping."""
        req_id = await self.send("ping")
        frames: list[bytes] = []
        while True:
            raw = await self.raw()
            events = self.parser.parse(raw)
            if len(events) == 1 and isinstance(events[0], Pong) and events[0].req_id == req_id:
                return frames
            frames.append(raw)

    async def acks(self, n: int) -> list[SubscribeAck | UnsubscribeAck]:
        out: list[SubscribeAck | UnsubscribeAck] = []
        while len(out) < n:
            event = await self.event()
            if isinstance(event, SubscribeAck | UnsubscribeAck):
                out.append(event)
        return out

    async def close(self) -> None:
        await self.ws.close()


async def open_client(sim: SimHandle) -> WsClient:
    client = await WsClient.open(sim.ws_public_url, sim.venue)
    status = await client.event()
    assert isinstance(status, Status)
    return client


def session_of(venue: SimVenue, kind: str = "public") -> WsSession:
    sessions = [c for c in venue.connections.values() if c.kind == kind]
    assert len(sessions) == 1, sessions
    session = sessions[0]
    assert isinstance(session, WsSession)
    return session


def fake_clock(sim: SimHandle) -> FakeClock:
    assert isinstance(sim.clock, FakeClock)
    return sim.clock


async def step(sim: SimHandle, n: int, dt: float = 0.05) -> None:
    """Move the fake clock and the market ``n`` times, letting the server write between."""
    clock = fake_clock(sim)
    for _ in range(n):
        clock.advance(dt)
        await sim.venue.step()
        await asyncio.sleep(0)


# ----------------------------------------------------------------------- connection
async def test_status_on_connect_then_ping_pong(sim: SimHandle) -> None:
    client = await WsClient.open(sim.ws_public_url, sim.venue)
    status = await client.event()
    assert isinstance(status, Status)
    assert status.system == "online" and status.api_version == "v2" and status.version
    assert isinstance(status.connection_id, int)
    assert session_of(sim.venue).conn_id == str(status.connection_id)
    await client.send("ping", req_id=42)
    pong, _ = await client.until(Pong)
    assert pong.req_id == 42 and pong.time_in.endswith("Z") and pong.time_out >= pong.time_in
    await client.close()


async def test_subscribe_acks_once_per_symbol_then_snapshots(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    await client.send("subscribe", 7, channel="book", symbol=["BTC/USD", "ETH/USD"], depth=25)
    events = [e for raw in await client.barrier() for e in client.parser.parse(raw)]
    acks = [e for e in events if isinstance(e, SubscribeAck)]
    assert [a.symbol for a in acks] == ["BTC/USD", "ETH/USD"]
    for ack in acks:
        assert ack.success and ack.req_id == 7 and ack.channel == "book"
        assert ack.depth == 25 and ack.snapshot is True
        assert ack.time_in.endswith("Z") and ack.time_out.endswith("Z")
    books = [e for e in events if isinstance(e, BookFrame)]
    assert [(b.symbol, b.snapshot) for b in books] == [("BTC/USD", True), ("ETH/USD", True)]
    assert all(len(b.bids) == 25 and len(b.asks) == 25 for b in books)
    await client.close()


ARGS = "EGeneral:Invalid arguments"
NOT_SUPPORTED = "Currency pair not supported "


@pytest.mark.parametrize(
    ("params", "error", "symbol"),
    [
        ({"channel": "book", "symbol": ["XXX/USD"]}, NOT_SUPPORTED + "XXX/USD", "XXX/USD"),
        ({"channel": "trade", "symbol": ["XBTUSD"]}, NOT_SUPPORTED + "XBTUSD", "XBTUSD"),
        ({"channel": "candles", "symbol": ["BTC/USD"]}, "Subscription name invalid", None),
        (
            {"channel": "book", "symbol": ["BTC/USD"], "depth": 20},
            "Subscription depth not supported",
            "BTC/USD",
        ),
        ({"channel": "book"}, ARGS, None),
        ({"channel": "ticker", "symbol": "BTC/USD"}, ARGS, None),
        ({"symbol": ["BTC/USD"]}, ARGS, None),
        ({"channel": "book", "symbol": ["BTC/USD"], "snapshot": "yes"}, ARGS, None),
    ],
)
async def test_failed_subscribe_acks(
    fake_sim: SimHandle, params: dict[str, Any], error: str, symbol: str | None
) -> None:
    client = await open_client(fake_sim)
    await client.send("subscribe", 9, **params)
    (ack,) = await client.acks(1)
    assert not ack.success and ack.req_id == 9 and ack.error == error and ack.symbol == symbol
    assert ack.exception() is not None
    assert not any(
        isinstance(e, BookFrame) for r in await client.barrier() for e in client.parser.parse(r)
    )
    await client.close()


async def test_duplicates_strays_and_malformed_requests(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="trade", symbol=["BTC/USD"])
    await client.send("subscribe", 2, channel="trade", symbol=["BTC/USD"])
    await client.send("unsubscribe", 3, channel="ticker", symbol=["BTC/USD"])
    first, again, stray = await client.acks(3)
    assert first.success
    assert not again.success and again.error == "Already subscribed"
    assert not stray.success and stray.error == "Subscription Not Found"
    await client.ws.send("{not json")
    await client.send("no_such_method", 4)
    malformed = json.loads(await client.raw())
    unknown = json.loads(await client.raw())
    assert malformed["success"] is False and malformed["error"] == "Malformed request"
    assert unknown["success"] is False and unknown["req_id"] == 4 and unknown["error"]
    await client.close()


async def test_unsubscribe_stops_the_channel(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="book", symbol=["BTC/USD"], depth=10)
    await client.send("subscribe", 2, channel="book", symbol=["ETH/USD"], depth=10)
    await client.acks(2)
    await step(fake_sim, 20)
    before = {
        e.symbol
        for r in await client.barrier()
        for e in client.parser.parse(r)
        if isinstance(e, BookFrame)
    }
    assert before == {"BTC/USD", "ETH/USD"}
    await client.send("unsubscribe", 3, channel="book", symbol=["BTC/USD"], depth=10)
    (ack,) = await client.acks(1)
    assert (
        isinstance(ack, UnsubscribeAck)
        and ack.success
        and ack.symbol == "BTC/USD"
        and ack.depth == 10
    )
    await step(fake_sim, 20)
    after = {
        e.symbol
        for r in await client.barrier()
        for e in client.parser.parse(r)
        if isinstance(e, BookFrame)
    }
    assert after == {"ETH/USD"}
    await client.close()


async def test_heartbeat_only_once_subscribed_and_idle(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    for _ in range(3):  # nothing subscribed: no heartbeat however long it is idle
        fake_clock(fake_sim).advance(1.0)
        await asyncio.sleep(0.01)
    assert not [r for r in await client.barrier() if b"heartbeat" in r]
    await client.send("subscribe", 1, channel="instrument")  # a channel with no updates
    await client.acks(1)
    await client.barrier()
    beats = 0
    for _ in range(4):
        fake_clock(fake_sim).advance(1.0)
        await asyncio.sleep(0.01)
        frames = await client.barrier()
        events = [e for r in frames for e in client.parser.parse(r)]
        assert all(isinstance(e, Heartbeat) for e in events)
        beats += len(events)
    assert beats == 3  # one per idle second after the snapshot (pongs do not count)
    await client.close()


async def test_heartbeat_on_the_real_clock(sim: SimHandle) -> None:
    client = await open_client(sim)
    await client.send("subscribe", 1, channel="instrument", snapshot=False)
    await client.acks(1)
    event, _ = await client.until(Heartbeat, wait_s=2.5)
    assert isinstance(event, Heartbeat)
    await client.close()


# ----------------------------------------------------------------------- channels
async def test_doge_is_xdg_on_rest_and_doge_on_ws_v2(fake_sim: SimHandle) -> None:
    # Kraken's split: AssetPairs names the pair XDGUSD / XDG/USD (v1), the WS v2 instrument
    # channel DOGE/USD (both as the real captures show), so a client must map the names.
    line = (DATA / "cryptofeed_KRAKEN.0").read_text().splitlines()[0]
    real = json.loads(line.split(": ", 1)[1])["result"]["XDGUSD"]
    rest = (await fake_sim.client.public("AssetPairs", pair="DOGE/USD")).result["DOGE/USD"]
    for key in ("altname", "wsname", "base", "quote", "pair_decimals", "lot_decimals"):
        assert rest[key] == real[key], key
    assert rest["wsname"] == "XDG/USD"
    assert list((await fake_sim.client.public("AssetPairs", pair="XDGUSD")).result) == ["XDGUSD"]
    capture = json.loads((DATA / "kraken-data-recorder_instrument_snapshot.json").read_text())
    assert "DOGE" in {a["id"] for a in capture["data"]["assets"]}
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="instrument")
    await client.acks(1)
    frame = json.loads(await client.raw())
    (doge,) = [p for p in frame["data"]["pairs"] if p["base"] == "DOGE"]
    assert (doge["symbol"], doge["quote"]) == ("DOGE/USD", "USD")
    await client.close()


async def test_instrument_snapshot_has_the_real_captures_shape(fake_sim: SimHandle) -> None:
    capture = json.loads((DATA / "kraken-data-recorder_instrument_snapshot.json").read_text())
    real_pair_keys = {frozenset(p) for p in capture["data"]["pairs"]}
    real_asset_keys = {frozenset(a) for a in capture["data"]["assets"]}
    real_types = {k: type(v) for p in capture["data"]["pairs"] for k, v in p.items()}
    real_types.update({k: type(v) for a in capture["data"]["assets"] for k, v in a.items()})
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="instrument")
    (ack,) = await client.acks(1)
    assert ack.success and ack.channel == "instrument"
    raw = await client.raw()
    frame = json.loads(raw)
    assert frame["channel"] == "instrument" and frame["type"] == "snapshot"
    pairs, assets = frame["data"]["pairs"], frame["data"]["assets"]
    assert {p["symbol"] for p in pairs} == set(fake_sim.venue.instruments)
    for item in pairs + assets:
        assert frozenset(item) in real_pair_keys | real_asset_keys
        for key, value in item.items():
            real = real_types[key]
            assert isinstance(value, real) or (real is float and type(value) is int), key
    assert {a["id"] for a in assets} >= {"BTC", "USD", "ETH"}
    (event,) = client.parser.parse(raw)
    assert isinstance(event, InstrumentFrame)
    for inst in event.instruments:
        ours = fake_sim.venue.instruments[inst.symbol]
        assert (inst.price_precision, inst.qty_precision) == (
            ours.price_precision,
            ours.qty_precision,
        )
        assert (inst.price_increment, inst.qty_min, inst.cost_min) == (
            ours.price_increment,
            ours.qty_min,
            ours.cost_min,
        )
    await client.close()


@pytest.mark.parametrize("symbol", ["BTC/USD", "DOGE/USD"])
async def test_book_at_every_depth_verifies_and_matches_the_exchange(
    fake_sim: SimHandle, symbol: str
) -> None:
    depths = (10, 25, 100, 500, 1000)
    venue = fake_sim.venue
    inst = venue.instruments[symbol]
    clients = [await open_client(fake_sim) for _ in depths]
    books = {d: Book(inst, d) for d in depths}
    counts = dict.fromkeys(depths, 0)
    for client, depth in zip(clients, depths, strict=True):
        await client.send("subscribe", depth, channel="book", symbol=[symbol], depth=depth)
        (ack,) = await client.acks(1)
        assert ack.success and ack.depth == depth

    async def read(client: WsClient, depth: int) -> None:
        for raw in await client.barrier():
            assert b"e-" not in raw and b"E-" not in raw  # never float notation
            for event in client.parser.parse(raw):
                if isinstance(event, BookFrame):
                    assert books[depth].apply(event) is None, (depth, counts[depth])
                    counts[depth] += 1

    for _ in range(6):
        await step(fake_sim, 50)
        await asyncio.gather(*(read(c, d) for c, d in zip(clients, depths, strict=True)))
    assert min(counts.values()) >= 200, counts
    for depth, book in books.items():  # the engine is quiet now: compare with the exchange
        assert book.valid
        bids, asks = venue.exchange.depth(symbol, depth)
        assert (book.bids(), book.asks()) == (bids, asks), depth
        assert len(bids) == len(asks) == depth
    for client in clients:
        await client.close()


async def test_book_updates_carry_only_what_a_depth_subscriber_sees(fake_sim: SimHandle) -> None:
    """Kraken's truncation: qty 0 only for levels deleted from the book (never for levels
    pushed out of the window), and no level outside the window after the update."""
    venue = fake_sim.venue
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="book", symbol=["BTC/USD"], depth=10)
    await client.barrier()
    zeros = inserts = 0
    for _ in range(150):
        await step(fake_sim, 1)
        book = venue.exchange.book("BTC/USD")
        bids, asks = venue.exchange.depth("BTC/USD", 10)
        window = {("bid", p) for p, _ in bids} | {("ask", p) for p, _ in asks}
        for raw in await client.barrier():
            for frame in client.parser.parse(raw):
                assert isinstance(frame, BookFrame) and not frame.snapshot
                levels = [("bid", p, q) for p, q in frame.bids] + [
                    ("ask", p, q) for p, q in frame.asks
                ]
                for side, price, qty in levels:
                    if qty:
                        inserts += 1
                        assert (side, price) in window
                    else:
                        zeros += 1
                        assert book.level_qty(side, price) == 0
    assert zeros > 20 and inserts > 100
    await client.close()


async def test_book_frames_are_shared_by_subscribers_of_a_depth(fake_sim: SimHandle) -> None:
    clients = [await open_client(fake_sim) for _ in range(2)]
    for client in clients:
        await client.send("subscribe", 1, channel="book", symbol=["ETH/USD"], depth=10)
        await client.acks(1)
    await step(fake_sim, 30)
    first, second = [await c.barrier() for c in clients]
    assert first == second and len(first) >= 20
    for client in clients:
        await client.close()


async def test_trade_and_ticker_frames_parse(fake_sim: SimHandle) -> None:
    await step(fake_sim, 100)  # some trades before subscribing: the snapshot has them
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="trade", symbol=["BTC/USD"], snapshot=True)
    await client.send("subscribe", 2, channel="ticker", symbol=["BTC/USD"])
    await step(fake_sim, 200)
    events = [e for r in await client.barrier() for e in client.parser.parse(r)]
    trades = [e for e in events if isinstance(e, TradeFrame)]
    tickers = [e for e in events if isinstance(e, Ticker)]
    assert trades[0].snapshot and 0 < len(trades[0].trades) <= 50
    assert len(trades) >= 4 and not any(t.snapshot for t in trades[1:])
    ids = [t.trade_id for frame in trades for t in frame.trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert tickers[0].snapshot and len(tickers) >= 4
    last = tickers[-1]
    assert 0 < last.bid < last.ask and last.volume > 0 and last.low <= last.last <= last.high
    assert last.last == trades[-1].trades[-1].price
    assert isinstance(last.vwap, type(last.change))
    await client.close()


async def test_ticker_bbo_trigger_follows_the_top_of_book(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="ticker", symbol=["ETH/USD"], event_trigger="bbo")
    (ack,) = await client.acks(1)
    assert ack.success and ack.result is not None and ack.result["event_trigger"] == "bbo"
    await step(fake_sim, 40)
    tickers = [
        e for r in await client.barrier() for e in client.parser.parse(r) if isinstance(e, Ticker)
    ]
    assert len(tickers) >= 10
    bids, asks = fake_sim.venue.exchange.depth("ETH/USD", 1)
    assert (tickers[-1].bid, tickers[-1].ask) == (bids[0][0], asks[0][0])
    await client.close()


# ----------------------------------------------------------------------- faults
async def test_drop_closes_the_socket_abruptly(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    await session_of(fake_sim.venue).drop()
    with pytest.raises(ConnectionClosed) as closed:
        await client.raw()
    assert closed.value.rcvd is None  # no close frame: the TCP connection just ended
    for _ in range(50):
        if not fake_sim.venue.connections:
            break
        await asyncio.sleep(0.01)
    assert not fake_sim.venue.connections


async def test_silence_sends_nothing_then_resumes(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    await client.send("subscribe", 1, channel="book", symbol=["BTC/USD"])
    await client.acks(1)
    await client.barrier()
    session_of(fake_sim.venue).silence(5.0)
    await step(fake_sim, 20)  # 1 s of market: no frame, no heartbeat, no pong
    await client.send("ping", 77)
    with pytest.raises(TimeoutError):
        await client.raw(wait_s=0.3)
    fake_clock(fake_sim).advance(5.0)
    await step(fake_sim, 5)
    frames = await client.barrier()
    assert any(isinstance(e, BookFrame) for r in frames for e in client.parser.parse(r))
    await client.close()


async def test_corrupt_checksum_hits_the_next_book_frame_only(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    inst = fake_sim.venue.instruments["BTC/USD"]
    book = Book(inst, 10)
    await client.send("subscribe", 1, channel="book", symbol=["BTC/USD"])
    await client.acks(1)
    snapshot, _ = await client.until(BookFrame)
    assert book.apply(snapshot) is None
    session_of(fake_sim.venue).corrupt_checksum("ETH/USD")  # another symbol: no effect here
    await step(fake_sim, 5)
    frames = [
        e
        for r in await client.barrier()
        for e in client.parser.parse(r)
        if isinstance(e, BookFrame)
    ]
    assert frames and all(book.apply(f) is None for f in frames)
    session_of(fake_sim.venue).corrupt_checksum("BTC/USD")
    await step(fake_sim, 5)
    frames = [
        e
        for r in await client.barrier()
        for e in client.parser.parse(r)
        if isinstance(e, BookFrame)
    ]
    assert len(frames) >= 2
    assert book.apply(frames[0]) is not None  # the corrupted one
    fresh = Book(inst, 10)  # what a client does next: resubscribe for a new snapshot
    await client.send("unsubscribe", 2, channel="book", symbol=["BTC/USD"], depth=10)
    await client.send("subscribe", 3, channel="book", symbol=["BTC/USD"])
    snapshot, _ = await client.until(BookFrame)
    assert fresh.apply(snapshot) is None
    await client.close()


async def test_a_client_too_far_behind_is_disconnected(fake_sim: SimHandle) -> None:
    client = await open_client(fake_sim)
    session = session_of(fake_sim.venue)
    session.max_queue = 10
    for _ in range(11):  # no await: the writer never gets to run
        session.send(b'{"channel":"heartbeat"}')
    with pytest.raises(ConnectionClosed):
        while True:
            await client.raw()


async def test_server_shutdown_says_going_away(sim_factory: SimFactory) -> None:
    sim = await sim_factory(clock=FakeClock())
    client = await open_client(sim)
    await sim.server.close()
    with pytest.raises(ConnectionClosed) as closed:
        await client.raw()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


# ----------------------------------------------------------------------- the pure core
@pytest.mark.parametrize("seed", range(12))
def test_book_fanout_keeps_every_depth_exact_under_random_churn(seed: int) -> None:
    """``BookFanout`` without sockets: random adds, cancels, amends and sweeps around a
    thin book (often under 10 levels a side), several per engine call, so levels are
    inserted, deleted, pushed out and scrolled in within one frame. After every Result
    each depth's client book verifies and equals the exchange's top N."""
    rng = random.Random(seed)
    table = default_instruments(("BTC/USD",))
    exchange = Exchange(table.values(), seed=seed)
    fanout = BookFanout(table.lookup, exchange.depth, lambda ns: "2023-01-01T00:00:00.000000Z")
    books: dict[int, Book] = {}
    parser = Parser(InstrumentTable(table.values()))

    class Sink:
        def __init__(self, depth: int) -> None:
            self.depth = depth

        def send_book(self, symbol: str, frame: bytes, checksum: int) -> None:
            for event in parser.parse(frame):
                assert isinstance(event, BookFrame)
                assert books[self.depth].apply(event) is None

    for depth in (10, 25, 100):
        books[depth] = Book(table["BTC/USD"], depth)
        snapshot, _ = fanout.subscribe(Sink(depth), depth, "BTC/USD", depth, "t")
        Sink(depth).send_book("BTC/USD", snapshot, 0)
    refs: list[int] = []
    for now in range(1, 301):
        actions: list[MarketAction] = []
        for _ in range(rng.randint(1, 25)):
            roll = rng.random()
            if roll < 0.5 or not refs:
                refs.append(len(refs) + 10_000 * now)
                side = rng.choice(["buy", "sell"])
                price = rng.randint(990, 1010) if side == "buy" else rng.randint(1005, 1030)
                actions.append(MarketAdd("BTC/USD", refs[-1], side, price, rng.randint(1, 5)))
            elif roll < 0.75:
                actions.append(MarketCancel("BTC/USD", refs.pop(rng.randrange(len(refs)))))
            elif roll < 0.9:
                actions.append(MarketAmend("BTC/USD", rng.choice(refs), rng.randint(1, 5)))
            else:
                side = rng.choice(["buy", "sell"])
                actions.append(MarketTake("BTC/USD", side, rng.randint(1, 30)))
        fanout.publish(exchange.apply_market(actions, now).book, now)
        for depth, book in books.items():
            bids, asks = exchange.depth("BTC/USD", depth)
            assert (book.bids(), book.asks()) == (bids, asks), (seed, now, depth)
