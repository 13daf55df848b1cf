"""``FuturesMarketFeed`` against the Futures simulator over a real socket: the strategies'
books from WS v1 ``book``, a sequence gap made invalid and resynced, trades as trade frames.

The simulator runs on a manual ``FakeClock`` without its pump: the book moves only when a
test places an order. The feed runs on the system clock (the socket driver's watchdog);
waits poll its state with a bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.core.clock import FakeClock, SystemClock
from bot.execution.venue_futures import as_instrument
from bot.futures.instruments import FuturesInstrumentTable
from bot.futures.rest import FuturesRestClient
from bot.kraken.protocol import TradeFrame
from bot.market.frames import BookInvalid, BookUpdated, BookValid, MarketEvent
from bot.market.futures_feed import FuturesMarketFeed
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue

P = "PF_XBTUSD"


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 (the state belongs to another task)
            await asyncio.sleep(0.01)


async def test_books_follow_the_feed_and_a_gap_resyncs() -> None:
    sim = FuturesVenue(clock=FakeClock(), seed=9)
    creds = sim.add_account("trader")
    server = await FuturesSimServer.start(sim, pump=False)
    events: list[MarketEvent] = []
    probes: list[Callable[[], bool]] = []
    told: list[tuple[str, bool]] = []  # each validity event, and the gate's probe then

    def sink(event: MarketEvent) -> None:
        events.append(event)
        if isinstance(event, BookValid | BookInvalid):
            told.append((type(event).__name__, probes[0]()))

    async with FuturesRestClient(
        server.rest_url, clock=SystemClock(), api_key=creds.api_key, api_secret=creds.api_secret
    ) as client:
        fi = FuturesInstrumentTable(await client.instruments())[P]
        inst = as_instrument(fi)
        feed = FuturesMarketFeed(server.ws_url, [(fi, inst)], sink)
        probes.append(feed.valid_probe(feed.books))  # the daemon's readiness probe
        task = asyncio.create_task(feed.run())
        try:
            await until(lambda: feed.books[P].valid)
            book = feed.books[P]
            rest_book = await client.orderbook(P)
            bid = inst.price(rest_book.bids[0][0])
            assert book.best_bid() == (bid, inst.qty(rest_book.bids[0][1]))
            assert any(isinstance(e, BookValid) for e in events)
            # One order joins the book: the strategies' book shows it.
            await client.send_order(
                fi, side="buy", order_type="lmt", size=inst.qty("1"), limit_price=bid + 5,
                cli_ord_id="in-1",
            )  # fmt: skip
            await until(lambda: feed.books[P].best_bid() == (bid + 5, inst.qty("1")))
            # A lost delta: the book is invalid, resubscribed, valid again and right.
            await sim.faults.inject(kind="book_gap", symbol=P)
            for n in range(2):
                await client.send_order(
                    fi, side="buy", order_type="lmt", size=inst.qty("1"),
                    limit_price=bid + 10 + 5 * n, cli_ord_id=f"gap-{n}",
                )  # fmt: skip
            await until(lambda: any(isinstance(e, BookInvalid) for e in events))
            invalid = [e for e in events if isinstance(e, BookInvalid)]
            assert invalid[0].reason == "sequence gap" and feed.stats.resyncs == 1
            await until(
                lambda: (
                    feed.books[P].valid and feed.books[P].best_bid() == (bid + 15, inst.qty("1"))
                )
            )
            assert sum(isinstance(e, BookValid) for e in events) == 2
            # The gate's probe said what the strategies were told, at the moment they were.
            assert told == [("BookValid", True), ("BookInvalid", False), ("BookValid", True)]
            assert isinstance(events[-1], BookUpdated)
            # A trade reaches the strategies as a trade frame in the contract's numbers.
            other = sim.add_account("taker")
            async with FuturesRestClient(
                server.rest_url, clock=SystemClock(), api_key=other.api_key,
                api_secret=other.api_secret,
            ) as taker:  # fmt: skip
                await taker.send_order(
                    fi, side="sell", order_type="mkt", size=inst.qty("1"), cli_ord_id="take-1"
                )

            def sold() -> list[object]:
                frames = [e for e in events if isinstance(e, TradeFrame) and not e.snapshot]
                return [t for f in frames for t in f.trades if t.side == "sell"]

            await until(lambda: bool(sold()))
            (trade,) = sold()
            assert trade.price == bid + 15 and trade.qty == inst.qty("1")  # type: ignore[attr-defined]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
