"""The Futures WS v1 pieces (``ws_protocol``, ``ws_auth``, ``book``) over a real socket.

The simulator runs on a FakeClock without a pump; frames are read with aiohttp and parsed
by ``bot.futures.ws_protocol.parse_frame`` only, so every frame the simulator sends must
parse into its event type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.core.clock import FakeClock
from bot.futures import ws_private as p
from bot.futures import ws_protocol as w
from bot.futures.book import FuturesBook
from bot.futures.instruments import FuturesInstrumentTable
from bot.futures.rest import FuturesRestClient
from bot.futures.ws_auth import ChallengeHandshake
from bot.sim.futures.access import KeyAccess, Level
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue

S = "PF_XBTUSD"


class Conn:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: set[type[Any]] = set()

    async def send(self, frame: bytes) -> None:
        await self.ws.send_str(frame.decode())

    async def event(self) -> w.FuturesEvent:
        msg = await self.ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        event = w.parse_frame(msg.data)
        self.seen.add(type(event))
        return event

    async def until(self, kind: type[Any], limit: int = 200) -> Any:
        for _ in range(limit):
            event = await self.event()
            if isinstance(event, kind):
                return event
        raise AssertionError(f"no {kind.__name__}")


@pytest.fixture
async def env() -> AsyncIterator[tuple[FuturesVenue, FuturesSimServer, FuturesRestClient, Any]]:
    venue = FuturesVenue(clock=FakeClock(), seed=9)
    creds = venue.add_account("trader")
    server = await FuturesSimServer.start(venue, pump=False)
    client = FuturesRestClient(
        server.rest_url,
        clock=FakeClock(auto_advance=True),
        api_key=creds.api_key,
        api_secret=creds.api_secret,
    )
    session = aiohttp.ClientSession()
    try:
        yield venue, server, client, (session, creds)
    finally:
        await session.close()
        await client.close()
        await server.close()


async def test_every_frame_parses_and_private_feeds_follow_the_handshake(env: Any) -> None:
    _, server, client, (session, creds) = env
    inst = FuturesInstrumentTable(await client.instruments())[S]
    async with session.ws_connect(server.ws_url) as ws:
        conn = Conn(ws)
        assert await conn.event() == w.Info(1)
        hs = ChallengeHandshake(creds.api_key, creds.api_secret)
        await conn.send(hs.request())
        hs.accept(await conn.until(w.ChallengeIssued))
        for feed in ("open_orders", "fills", "open_positions", "balances"):
            await conn.send(hs.subscribe(feed))
            ack = await conn.until(w.SubscriptionChange)
            assert ack.ok and ack.feed == feed
        for feed in ("book", "trade", "ticker"):
            await conn.send(w.subscribe(feed, [S]))
        await conn.send(w.subscribe("heartbeat"))
        book = await client.orderbook(S)
        ask = inst.price(book.asks[0][0])
        await client.send_order(
            inst, side="buy", order_type="ioc", size=10, limit_price=ask, cli_ord_id="ws-1"
        )
        for _ in range(300):
            if {p.FillsFrame, p.OpenPositionsFrame, w.Trade} <= conn.seen:
                break
            await conn.event()
        assert {
            p.OpenOrdersSnapshot,
            p.FillsFrame,
            p.OpenPositionsFrame,
            p.BalancesFrame,
            w.BookSnapshot,
            w.TradeSnapshot,
            w.TickerFrame,
            w.Trade,
        } <= conn.seen


async def test_a_wrong_secret_gets_the_auth_alert(env: Any) -> None:
    _, server, _, (session, creds) = env
    async with session.ws_connect(server.ws_url) as ws:
        conn = Conn(ws)
        hs = ChallengeHandshake(creds.api_key, "A" * 86 + "==")
        await conn.send(hs.request())
        hs.accept(await conn.until(w.ChallengeIssued))
        await conn.send(hs.subscribe("open_orders"))
        alert = await conn.until(w.Alert)
        assert alert.message == w.AUTH_FAILED
        assert alert.exception().__class__.__name__ == "AuthError"


@pytest.mark.parametrize(("general", "ok"), [(Level.READ_ONLY, True), (Level.NONE, False)])
async def test_a_private_feed_needs_general_api_access(env: Any, general: Level, ok: bool) -> None:
    """Kraken Futures' General API level (``bot.sim.futures.access``): the private feeds
    are reads, so Read Only subscribes and No Access gets the auth alert."""
    venue, server, _, (session, _) = env
    creds = venue.add_key("trader", KeyAccess(general))
    async with session.ws_connect(server.ws_url) as ws:
        conn = Conn(ws)
        hs = ChallengeHandshake(creds.api_key, creds.api_secret)
        await conn.send(hs.request())
        hs.accept(await conn.until(w.ChallengeIssued))
        await conn.send(hs.subscribe("open_orders"))
        if ok:
            ack = await conn.until(w.SubscriptionChange)
            assert ack.ok and ack.feed == "open_orders"
        else:
            assert (await conn.until(w.Alert)).message == w.AUTH_FAILED


async def test_the_book_keeper_resyncs_after_a_gap(env: Any) -> None:
    venue, server, client, (session, _) = env
    inst = FuturesInstrumentTable(await client.instruments())[S]
    keeper = FuturesBook(inst)
    async with session.ws_connect(server.ws_url) as ws:
        conn = Conn(ws)
        await conn.send(w.subscribe("book", [S]))
        assert keeper.apply(await conn.until(w.BookSnapshot)) is None
        await venue.faults.inject(kind="book_gap", symbol=S)
        book = await client.orderbook(S)
        bid = inst.price(book.bids[0][0])
        for n in range(2):
            await client.send_order(
                inst,
                side="buy",
                order_type="lmt",
                size=10,
                limit_price=bid - 50 - 5 * n,
                cli_ord_id=f"gap-{n}",
            )
        resync = None
        while resync is None:
            resync = keeper.apply(await conn.until(w.BookDelta))
        assert resync.reason == "gap" and resync.got == resync.expected + 1  # type: ignore[operator]
        await conn.send(w.unsubscribe("book", [S]))
        await conn.send(w.subscribe("book", [S]))
        assert keeper.apply(await conn.until(w.BookSnapshot)) is None
        assert keeper.synced and keeper.best_bid() == (bid, inst.qty(book.bids[0][1]))
