"""The engine fed by the Futures private feed (``FuturesPrivateFeed``) and the Futures
venue port, against the Futures simulator over real sockets on 127.0.0.1.

The simulator's clock is a manual ``FakeClock`` (it moves only when a test advances it:
the dead-man's switch fires exactly when asked); the engine, the REST client and the feed
run on the system clock, because the shared WebSocket driver's watchdog measures silence
on it. Waits poll the other tasks' state with a bound and end by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bot.core.clock import FakeClock, SystemClock
from bot.core.log import Secret
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.futures_feed import FuturesPrivateFeed
from bot.execution.orders import Fill, Order, OrderState
from bot.execution.venue import PrivateDisconnected, VenueEvent
from bot.execution.venue_futures import FuturesRestVenue, as_instrument_table, sizes_of
from bot.futures.instruments import FuturesInstrumentTable
from bot.futures.rest import FuturesRestClient
from bot.kraken.instruments import InstrumentTable
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue
from bot.store import Store
from tests.loopback.placing import command

S = OrderState
P = "PF_XBTUSD"


@dataclass
class Rig:
    sim: FuturesVenue
    sim_clock: FakeClock
    server: FuturesSimServer
    engine: ExecutionEngine
    feed: FuturesPrivateFeed
    table: InstrumentTable
    events: list[VenueEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    async def place(self, side: str, qty: int, price: int) -> Order:
        inst = self.table[P]
        return await self.engine.place(command(self.engine, SystemClock(), inst, side, qty, price))

    def index(self) -> int:
        return self.sim.exchange.index(P)


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll another task's state until ``predicate`` holds (bounded)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 (the state belongs to other tasks)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Rig]:
    sim_clock = FakeClock()
    sim = FuturesVenue(clock=sim_clock, seed=5, market=None)
    creds = sim.add_account("trader")
    server = await FuturesSimServer.start(sim, pump=False)
    clock = SystemClock()
    rest = FuturesRestClient(
        server.rest_url, clock=clock, api_key=creds.api_key, api_secret=creds.api_secret
    )
    store = Store.open(tmp_path / "bot.db")
    events: list[VenueEvent] = []
    fills: list[Fill] = []
    try:
        contracts = FuturesInstrumentTable(await rest.instruments())
        table = as_instrument_table([contracts[P]])
        holder: list[ExecutionEngine] = []
        venue = FuturesRestVenue(
            rest,
            contracts,
            clock,
            known_qty=sizes_of(lambda: holder[0].open_orders()),  # noqa: PLW0108 (bound later)
        )
        engine = ExecutionEngine(
            venue, store, table, clock, config=EngineConfig(grace_s=2.0, resolve_wait_s=1.0),
            on_fill=lambda fill, order: fills.append(fill),
        )  # fmt: skip
        holder.append(engine)

        def sink(event: VenueEvent) -> None:
            events.append(event)
            engine.on_private(event)

        feed = FuturesPrivateFeed(
            server.ws_url, Secret(creds.api_key), Secret(creds.api_secret), sink, clock=clock
        )
        tasks = [asyncio.create_task(engine.run()), asyncio.create_task(feed.run())]
        try:
            await until(lambda: feed.subscribed and engine.readiness.is_open)
            yield Rig(sim, sim_clock, server, engine, feed, table, events, fills)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        store.close()
        await rest.close()
        await server.close()


async def test_a_fill_reaches_the_engine_through_the_feed_with_its_fee_and_position(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        ask = rig.index() + 50
        qty = rig.table[P].qty("0.01")
        order = await rig.place("sell", qty, ask)
        creds = rig.sim.add_account("taker")
        async with FuturesRestClient(
            rig.server.rest_url, clock=SystemClock(), api_key=creds.api_key,
            api_secret=creds.api_secret,
        ) as taker:  # fmt: skip
            contract = FuturesInstrumentTable(await taker.instruments())[P]
            await taker.send_order(
                contract, side="buy", order_type="ioc", size=qty, limit_price=ask,
                cli_ord_id="tk-1",
            )  # fmt: skip

        def filled() -> bool:
            now = rig.engine.order(order.cl_ord_id)
            return now is not None and now.state is S.FILLED and bool(rig.fills)

        await until(filled)
        (fill,) = rig.fills
        assert fill.qty == qty and fill.price == ask and fill.fee > 0 and fill.liquidity == "m"
        await until(lambda: P in rig.feed.positions)
        assert rig.feed.positions[P].size == Decimal("-0.01")
        await until(lambda: rig.feed.margin is not None)


async def test_the_dead_mans_switch_cancel_arrives_as_a_cancel(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        inst = rig.table[P]
        order = await rig.place("buy", inst.qty("0.02"), rig.index() - 100)
        assert order.state is S.NEW
        rig.sim.arm_deadman("trader", 60)
        rig.sim_clock.advance(61)
        await rig.sim.step()
        assert rig.sim.deadman_fired == [("trader", 1)]

        def canceled() -> bool:
            now = rig.engine.order(order.cl_ord_id)
            return now is not None and now.state is S.CANCELED

        await until(canceled)
        assert rig.engine.order(order.cl_ord_id).reason == "dead_man_switch"  # type: ignore[union-attr]


async def test_a_dropped_socket_is_reported_then_resubscribed(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        subscribed = rig.feed.stats.connects
        await rig.sim.faults.inject(kind="ws_drop")
        await until(lambda: any(isinstance(e, PrivateDisconnected) for e in rig.events))
        await until(lambda: rig.feed.stats.connects > subscribed and rig.feed.subscribed)
