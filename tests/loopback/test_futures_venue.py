"""The execution engine over the Futures venue port (``FuturesRestVenue``) against the
Futures simulator, over real sockets on 127.0.0.1.

The simulator runs without its pump (``pump=False``: it moves only when a test steps it)
and on the engine's clock, a ``FakeClock(auto_advance=True)``: a grace period or a backoff
advances the shared clock instead of sleeping. No private feed runs here: the engine learns
everything by REST reconciliation, which is what a restart and a reconnect rely on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import ProtocolError
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.orders import Fill, Order, OrderState
from bot.execution.venue import Venue
from bot.execution.venue_futures import FuturesRestVenue, as_instrument_table, sizes_of
from bot.futures.instruments import FuturesInstrumentTable
from bot.futures.rest import Backoff, FuturesRestClient
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue
from bot.store import Store
from tests.loopback.placing import command

S = OrderState
P = "PF_XBTUSD"
CONFIG = EngineConfig(grace_s=5.0, resolve_wait_s=0.5)


@dataclass
class Rig:
    sim: FuturesVenue
    server: FuturesSimServer
    clock: FakeClock
    rest: FuturesRestClient
    venue: FuturesRestVenue
    engine: ExecutionEngine
    table: InstrumentTable
    store: Store
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    @property
    def inst(self) -> Instrument:
        return self.table[P]

    def on_sim(self) -> list[Any]:
        return self.sim.exchange.open_orders("trader")

    async def place(self, side: str, qty: int, price: int | None = None, **kw: Any) -> Order:
        return await self.engine.place(
            command(self.engine, self.clock, self.inst, side, qty, price, **kw)
        )

    def index(self) -> int:
        """The contract's index price: the book is empty (no synthetic market)."""
        return self.sim.exchange.index(P)

    def taker(self) -> FuturesRestClient:
        creds = self.sim.add_account("taker")
        return FuturesRestClient(
            self.server.rest_url, clock=self.clock, api_key=creds.api_key,
            api_secret=creds.api_secret,
        )  # fmt: skip

    async def other(self, side: str, order_type: str, qty: int, price: int, cid: str) -> bool:
        """An order of another account (``taker``, made once per test): True when Kraken
        took it (``sendStatus`` a success)."""
        client = self.taker()
        try:
            contract = FuturesInstrumentTable(await client.instruments())[P]
            sent = await client.send_order(
                contract, side=side, order_type=order_type, size=qty, limit_price=price,
                cli_ord_id=cid,
            )  # fmt: skip
        finally:
            await client.close()
        return sent.ok


@asynccontextmanager
async def running(
    tmp_path: Path,
    *,
    reducing: bool = False,
    rest_cls: type[FuturesRestClient] = FuturesRestClient,
    clock: FakeClock | None = None,
    **engine_kwargs: Any,
) -> AsyncIterator[Rig]:
    clock = clock or FakeClock(auto_advance=True)
    sim = FuturesVenue(clock=clock, seed=5, market=None)
    creds = sim.add_account("trader")
    server = await FuturesSimServer.start(sim, pump=False)
    rest = rest_cls(
        server.rest_url, clock=clock, api_key=creds.api_key, api_secret=creds.api_secret,
        backoff=Backoff(max_attempts=3, base_delay_s=0.01),
    )  # fmt: skip
    store = Store.open(tmp_path / "bot.db")
    try:
        contracts = FuturesInstrumentTable(await rest.instruments())
        table = as_instrument_table(contracts[s] for s in (P,))
        orders: list[Order] = []
        fills: list[Fill] = []
        engine: ExecutionEngine | None = None

        def open_orders() -> list[Order]:
            return [] if engine is None else engine.open_orders()

        venue = FuturesRestVenue(
            rest, contracts, clock, known_qty=sizes_of(open_orders),
            reduce_only=lambda order: reducing,
        )  # fmt: skip
        engine = ExecutionEngine(
            venue, store, table, clock, config=CONFIG, on_order=orders.append,
            on_fill=lambda fill, order: fills.append(fill), **engine_kwargs,
        )  # fmt: skip
        task = asyncio.create_task(engine.run())
        try:
            async with asyncio.timeout(10):
                await engine.readiness.wait()
            yield Rig(sim, server, clock, rest, venue, engine, table, store, orders, fills)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        store.close()
        await rest.close()
        await server.close()


def test_the_futures_venue_has_every_member_of_the_port() -> None:
    assert issubclass(FuturesRestVenue, Venue)


async def test_place_amend_cancel_through_the_engine(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        bid = rig.index()
        order = await rig.place("buy", rig.inst.qty("0.01"), bid - 100, post_only=True)
        assert order.state is S.NEW and order.order_id is not None
        (on_sim,) = rig.on_sim()
        assert on_sim.order_id == order.order_id and on_sim.kind == "post"
        amended = await rig.engine.amend(order.cl_ord_id, price=bid - 110)
        assert amended.price == bid - 110
        assert rig.on_sim()[0].limit_price == bid - 110
        await rig.engine.cancel(order.cl_ord_id)
        done = await rig.engine.wait_settled(order.cl_ord_id, timeout_s=10)
        assert done.state is S.CANCELED and rig.on_sim() == []


async def test_a_lost_sendorder_reply_is_resolved_by_cliordid_without_a_duplicate(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        bid = rig.index()
        lost = await rig.sim.faults.inject(kind="lose_response", endpoint="sendorder")
        order = await rig.place("buy", rig.inst.qty("0.01"), bid - 100)
        assert lost.fired == 1 and order.state is S.UNKNOWN and order.order_id is None
        settled = await rig.engine.wait_settled(order.cl_ord_id, timeout_s=10)
        assert settled.state is S.NEW
        (on_sim,) = rig.on_sim()  # exactly one: never resent
        assert on_sim.order_id == settled.order_id
        assert [o.state for o in rig.orders if o.cl_ord_id == order.cl_ord_id] == [
            S.PENDING_NEW, S.UNKNOWN, S.NEW,
        ]  # fmt: skip


async def test_a_fill_missed_by_the_feed_is_found_by_reconciliation(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        ask = rig.index() + 50
        qty = rig.inst.qty("0.01")
        order = await rig.place("sell", qty, ask)  # alone on the book
        assert await rig.other("buy", "ioc", qty, ask, "tk-1")
        await rig.engine.reconcile()
        filled = rig.engine.order(order.cl_ord_id)
        assert filled is not None and filled.state is S.FILLED and filled.filled_qty == qty
        (fill,) = rig.fills
        assert fill.qty == qty and fill.price == ask and fill.cl_ord_id == order.cl_ord_id


async def test_an_amend_of_a_partly_filled_order_sets_its_total_not_its_open_size(
    tmp_path: Path,
) -> None:
    """The port's amend ``qty`` is the new total, fills included. Kraken reads an edit's
    ``size`` as the open size unless ``qtyMode`` is ABSOLUTE: sent without it, a sell of
    0.03 with 0.01 filled, amended to 0.02, would become 0.03 in all (0.02 still open)."""
    async with running(tmp_path) as rig:
        ask = rig.index() + 50
        q = rig.inst.qty
        order = await rig.place("sell", q("0.03"), ask)
        assert await rig.other("buy", "ioc", q("0.01"), ask, "tk-1")
        await rig.engine.reconcile()
        part = rig.engine.order(order.cl_ord_id)
        assert part is not None and part.state is S.PARTIALLY_FILLED
        assert part.filled_qty == q("0.01")
        amended = await rig.engine.amend(order.cl_ord_id, qty=q("0.02"))
        assert amended.qty == q("0.02")
        (on_sim,) = rig.on_sim()
        assert (on_sim.qty, on_sim.filled) == (q("0.02"), q("0.01"))  # Kraken's total: ours
        await rig.engine.reconcile()
        after = rig.engine.order(order.cl_ord_id)
        assert after is not None and after.state is S.PARTIALLY_FILLED
        assert (after.qty, after.filled_qty) == (q("0.02"), q("0.01"))


async def test_the_dead_mans_switch_firing_is_seen_as_a_cancel(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        bid = rig.index()
        order = await rig.place("buy", rig.inst.qty("0.02"), bid - 100)
        armed = await rig.venue.cancel_after(60)
        assert armed.delay_s is not None and 59 <= armed.delay_s <= 60
        rig.clock.advance(61)
        await rig.sim.step()
        assert rig.sim.deadman_fired == [("trader", 1)] and rig.on_sim() == []
        await rig.engine.reconcile()
        gone = rig.engine.order(order.cl_ord_id)
        assert gone is not None and gone.state is S.CANCELED
        assert gone.qty == order.qty and gone.filled_qty == 0
        off = await rig.venue.cancel_after(0)
        assert off.delay_s is None


async def test_reads_balances_and_no_token(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        balances = await rig.venue.balances()
        assert balances["USD"] > Decimal(0)
        with pytest.raises(ProtocolError):
            await rig.venue.ws_token()
        assert 0 < rig.venue.rest_headroom() <= 50


async def test_orders_are_reduce_only_on_kraken_while_the_gate_is_reducing(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, reducing=True) as rig:
        bid = rig.index()
        order = await rig.place("buy", rig.inst.qty("0.01"), bid - 100)
        # Kraken refuses a reduce-only order that cannot reduce (no position here).
        assert order.state is S.REJECTED and "wouldNotReducePosition" in order.reason
        assert rig.on_sim() == []
