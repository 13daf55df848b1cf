"""Amends inside ``with ctx.batch():`` on Kraken Futures: one ``batchorder`` carries the
block's cancels, edits and sends (``EditBatchVenue``), with a single amend's meaning and
fates; on spot (no batch amend) ``ctx.amend`` still goes at once.

The strategy's own path, real components: ``Desk`` + ``EngineContext`` + the real
``ExecutionEngine`` + the real ``FuturesRestVenue`` and client, against the Futures
simulator on 127.0.0.1 (no pump, ``FakeClock(auto_advance=True)``, no private feed: the
engine confirms by REST). ``CountingClient`` names each write the client sends, how many
instructions it held and what it cost the rate counter; the simulator's order list is the
proof of what exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.log import get_logger
from bot.execution.engine import ExecutionEngine
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.execution.venue_futures import FuturesRestVenue, as_instrument_table, sizes_of
from bot.futures.instruments import FuturesInstrumentTable
from bot.futures.rest import Backoff, FuturesRestClient
from bot.kraken.instruments import from_scaled
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue
from bot.store import Store
from bot.strategy import OrderHandle, OrderState, Params, Strategy
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.refusals import Refusals
from bot.strategy.runner import StrategyRunner
from tests.loopback.conftest import SimFactory
from tests.loopback.test_desk import desk_on
from tests.loopback.test_engine import fake_venue, sim_orders_with, until
from tests.loopback.test_futures_batch import CountingClient
from tests.loopback.test_futures_venue import CONFIG, P

S = OrderState
D = Decimal
pytestmark = pytest.mark.timeout(60)


class Recorder(Strategy[Params]):
    """Records each ``on_order``: (cl_ord_id, state, price, qty, amend in flight, reason)."""

    def on_start(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def on_order(self, order: OrderHandle) -> None:
        o = order.order
        self.seen.append(
            (order.cl_ord_id, order.state, order.price, order.qty, o.amend_pending, o.reason)
        )


@dataclass
class Rig:
    sim: FuturesVenue
    server: FuturesSimServer
    rest: CountingClient
    engine: ExecutionEngine
    desk: Desk
    ctx: EngineContext
    strategy: Recorder
    refused: list[tuple[str, str, str, str]]  # (source, strategy, action, reason)

    def writes(self) -> list[tuple[str, int, float]]:
        """Each write sent: (endpoint, instructions, cost to the rate counter)."""
        sent = getattr(self.rest, "writes", [])
        return [(*w, c) for w, c in zip(sent, getattr(self.rest, "costs", []), strict=True)]

    def on_sim(self, cid: str) -> Any:
        found = [o for o in self.sim.exchange.open_orders("trader") if o.cli_ord_id == cid]
        return found[0] if found else None

    def price(self, ticks_below: int) -> Decimal:
        """A price ``ticks_below`` ticks under the index (the book is empty)."""
        inst = self.engine._instrument(P)
        return from_scaled(
            self.sim.exchange.index(P) - ticks_below * inst.price_increment, inst.price_precision
        )

    def events(self, cid: str) -> list[tuple[Any, ...]]:
        return [x[1:] for x in self.strategy.seen if x[0] == cid]

    async def drain(self) -> None:
        async with asyncio.timeout(10):
            await self.desk.tasks.drain()

    async def other(self, side: str, order_type: str, qty: str, price: Decimal, cid: str) -> bool:
        """An order of another account (``taker``, made once per test), in the pair's
        units: True when Kraken took it."""
        creds = self.sim.add_account("taker")
        client = FuturesRestClient(
            self.server.rest_url, clock=self.engine._clock, api_key=creds.api_key,
            api_secret=creds.api_secret,
        )  # fmt: skip
        inst = self.engine._instrument(P)
        try:
            contract = FuturesInstrumentTable(await client.instruments())[P]
            sent = await client.send_order(
                contract, side=side, order_type=order_type, size=inst.qty(qty),
                limit_price=inst.price(str(price)), cli_ord_id=cid,
            )  # fmt: skip
        finally:
            await client.close()
        return sent.ok


@asynccontextmanager
async def futures_desk(tmp_path: Path) -> AsyncIterator[Rig]:
    """The desk with one ``Recorder`` strategy (``rec``, PF_XBTUSD) on the Futures venue."""
    clock = FakeClock(auto_advance=True)
    sim = FuturesVenue(clock=clock, seed=5, market=None)
    creds = sim.add_account("trader")
    server = await FuturesSimServer.start(sim, pump=False)
    rest = CountingClient(
        server.rest_url, clock=clock, api_key=creds.api_key, api_secret=creds.api_secret,
        backoff=Backoff(max_attempts=3, base_delay_s=0.01),
    )  # fmt: skip
    store = Store.open(tmp_path / "bot.db")
    refused: list[tuple[str, str, str, str]] = []
    try:
        contracts = FuturesInstrumentTable(await rest.instruments())
        table = as_instrument_table(contracts[s] for s in (P,))
        engine: ExecutionEngine | None = None

        def open_orders() -> list[Any]:
            return [] if engine is None else engine.open_orders()

        venue = FuturesRestVenue(rest, contracts, clock, known_qty=sizes_of(open_orders))
        positions = PositionBook(clock)
        risk = RiskGate(clock, positions, None)
        refusals = Refusals(
            clock, get_logger(component="desk"), on_count=lambda *c: refused.append(c)
        )
        desk = Desk(
            risk=risk, positions=positions, instruments=table, books=dict, clock=clock,
            refusals=refusals,
        )  # fmt: skip
        stage = PreTrade(
            ReadinessGate(clock=clock), risk=risk, mids=desk.marks.mids,
            room=RateRoom(venue.trading_headroom, venue.rest_headroom),
            on_transitions=desk.router.apply_transitions,
        )  # fmt: skip
        engine = ExecutionEngine(
            venue, store, table, clock, config=CONFIG, pretrade=stage, spawn=desk.tasks.spawn,
            on_order=desk.router.on_order, on_fill=desk.router.on_fill,
            on_refused=desk.router.on_refused,
        )  # fmt: skip
        engine.prepare_ids(["rec"])
        ctx = EngineContext(engine, desk, "rec", (P,))
        desk.add_context(ctx)
        strategy = Recorder(ctx, Params())
        runner = StrategyRunner(strategy, timers=ctx.timers, clock=clock)
        desk.add_runner(runner)
        task = asyncio.create_task(engine.run())
        try:
            async with asyncio.timeout(10):
                await engine.readiness.wait()
            desk.tasks.spawn_task = asyncio.get_running_loop().create_task
            runner.start()
            yield Rig(sim, server, rest, engine, desk, ctx, strategy, refused)
            async with asyncio.timeout(10):
                await desk.tasks.drain()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        store.close()
        await rest.close()
        await server.close()


async def quotes(rig: Rig, n: int, qty: str = "1", **kw: Any) -> list[OrderHandle]:
    """``n`` bids placed in one block, once Kraken acknowledged them all."""
    with rig.ctx.batch():
        handles = [rig.ctx.place(P, "buy", D(qty), rig.price(100 + i), **kw) for i in range(n)]
    await rig.drain()
    await until(lambda: all(h.state is S.NEW for h in handles))
    return handles


def settled(rig: Rig, handles: list[OrderHandle]) -> bool:
    """Every order's amend (or cancel) answered, as the engine has it."""
    orders = [rig.engine.order(h.cl_ord_id) for h in handles]
    return all(o is not None and not o.amend_pending and not o.cancel_pending for o in orders)


async def test_a_requote_of_cancels_amends_and_places_is_one_batchorder(tmp_path: Path) -> None:
    """One request for the block, in Kraken's shape (9 + 4 of the budget); each amended
    order at the simulator with its new price and size; the strategy told of a batched
    amend exactly what it is told of one sent alone."""
    async with futures_desk(tmp_path) as rig:
        gone, moved, grown, alone = await quotes(rig, 4)
        assert rig.ctx.amend(alone, price=rig.price(150))  # alone: editorder, at once
        await rig.drain()
        await until(lambda: settled(rig, [alone]))
        before = rig.writes()
        with rig.ctx.batch():
            rig.ctx.cancel(gone)
            assert rig.ctx.amend(moved, price=rig.price(160))
            assert rig.ctx.amend(grown, qty=D("3"), price=rig.price(170))
            new = rig.ctx.place(P, "buy", D("1"), rig.price(180))
            assert moved.order.amend_pending  # checked and flagged at once
            assert rig.writes() == before  # nothing sent before the block ends
        await rig.drain()
        await until(lambda: settled(rig, [gone, moved, grown]) and new.state is S.NEW)
        assert rig.writes()[len(before) :] == [("batchorder", 4, 13.0)]
        assert rig.writes()[: len(before)][-1] == ("editorder", 1, 10.0)
        inst = rig.engine._instrument(P)
        assert rig.on_sim(gone.cl_ord_id) is None
        sim_moved, sim_grown = rig.on_sim(moved.cl_ord_id), rig.on_sim(grown.cl_ord_id)
        assert from_scaled(sim_moved.limit_price, inst.price_precision) == rig.price(160)
        assert from_scaled(sim_grown.limit_price, inst.price_precision) == rig.price(170)
        assert from_scaled(sim_grown.qty, inst.qty_precision) == D("3")
        assert rig.on_sim(new.cl_ord_id) is not None
        assert (moved.price, grown.price, grown.qty) == (rig.price(160), rig.price(170), D("3"))

        # the same events as the amend sent alone (after its NEW): amended, nothing else
        def shape(h: OrderHandle) -> list[tuple[Any, ...]]:
            return [(st, amending, why) for st, _, _, amending, why in rig.events(h.cl_ord_id)]

        assert shape(alone) == [(S.NEW, False, ""), (S.NEW, False, "")]  # placed, amended
        assert shape(moved) == shape(grown) == shape(alone)
        assert rig.events(moved.cl_ord_id)[-1][1] == rig.price(160)
        assert rig.refused == []


async def test_an_edit_kraken_refuses_is_recorded_and_the_others_go_on(tmp_path: Path) -> None:
    """A post-only bid moved onto a resting ask: Kraken answers ``postWouldExecute`` for
    that edit alone; the order is unchanged, the reason recorded, the refusal told as a
    single amend's; the other edit of the same request is applied."""
    async with futures_desk(tmp_path) as rig:
        refused, moved = await quotes(rig, 2, post_only=True)
        ask = rig.price(90)
        assert await rig.other("sell", "lmt", "1", ask, "taker-ask")
        inst = rig.engine._instrument(P)
        old = refused.price
        with rig.ctx.batch():
            assert rig.ctx.amend(refused, price=ask)  # accepted here: Kraken refuses it
            assert rig.ctx.amend(moved, price=rig.price(120))
        await rig.drain()
        await until(lambda: settled(rig, [refused, moved]))
        assert [w[:2] for w in rig.writes()][-1] == ("batchorder", 2)
        order = rig.engine.order(refused.cl_ord_id)
        assert order is not None and order.state is S.NEW and order.price == inst.price(str(old))
        assert order.reason == "postWouldExecute"
        assert refused.price == old and not refused.order.amend_pending
        sim_refused = rig.on_sim(refused.cl_ord_id)
        assert from_scaled(sim_refused.limit_price, inst.price_precision) == old
        assert ("exchange", "rec", "amend", "postWouldExecute") in rig.refused
        assert moved.price == rig.price(120)
        sim_moved = rig.on_sim(moved.cl_ord_id)
        assert from_scaled(sim_moved.limit_price, inst.price_precision) == rig.price(120)


async def test_a_lost_batchorder_answer_is_looked_up_never_resent(tmp_path: Path) -> None:
    async with futures_desk(tmp_path) as rig:
        a, b = await quotes(rig, 2)
        lost = await rig.sim.faults.inject(kind="lose_response", endpoint="batchorder")
        before = rig.writes()
        with rig.ctx.batch():
            assert rig.ctx.amend(a, price=rig.price(130))
            assert rig.ctx.amend(b, qty=D("2"))
        await rig.drain()
        assert lost.fired == 1
        await until(lambda: settled(rig, [a, b]))  # the lookup cleared the flags
        assert rig.writes()[len(before) :] == [("batchorder", 2, 11.0)]  # never resent
        assert a.price == rig.price(130) and b.qty == D("2")  # Kraken's numbers, looked up
        assert rig.refused == []


async def test_a_rate_limited_batchorder_is_told_per_amend(tmp_path: Path) -> None:
    """Refused whole for another remedy (``apiLimitExceeded``): each amend's order is
    unchanged with the reason recorded, and each refusal told, as a single amend's."""
    async with futures_desk(tmp_path) as rig:
        a, b = await quotes(rig, 2)
        await rig.sim.faults.inject(kind="rate_limit", endpoint="batchorder")
        with rig.ctx.batch():
            assert rig.ctx.amend(a, price=rig.price(130))
            assert rig.ctx.amend(b, price=rig.price(131))
        await rig.drain()
        await until(lambda: settled(rig, [a, b]))
        for h, old in ((a, rig.price(100)), (b, rig.price(101))):
            order = rig.engine.order(h.cl_ord_id)
            assert order is not None and order.reason == "apiLimitExceeded"
            assert h.price == old
        assert rig.refused.count(("exchange", "rec", "amend", "apiLimitExceeded")) == 2


async def test_a_batched_amend_of_a_partly_filled_order_sets_its_total(tmp_path: Path) -> None:
    """A batched edit reads ``size`` as a single edit does: the new total, fills included
    (``qtyMode`` ABSOLUTE), not Kraken's default (the open size), which would grow a bid of
    3 with 1 filled, amended to 2, into 3 in all."""
    async with futures_desk(tmp_path) as rig:
        (bid,) = await quotes(rig, 1, qty="3")
        inst = rig.engine._instrument(P)
        assert await rig.other("sell", "ioc", "1", rig.price(100), "tk-1")
        await rig.engine.reconcile()
        await until(lambda: bid.state is S.PARTIALLY_FILLED)
        with rig.ctx.batch():
            assert rig.ctx.amend(bid, qty=D("2"), price=rig.price(110))
        await rig.drain()
        await until(lambda: settled(rig, [bid]))
        assert rig.writes()[-1][0] == "batchorder"
        on_sim = rig.on_sim(bid.cl_ord_id)
        assert (on_sim.qty, on_sim.filled) == (inst.qty("2"), inst.qty("1"))
        await rig.engine.reconcile()
        order = rig.engine.order(bid.cl_ord_id)
        assert order is not None and (order.qty, order.filled_qty) == (inst.qty("2"), inst.qty("1"))


async def test_a_block_left_by_an_exception_sends_no_amend(tmp_path: Path) -> None:
    async with futures_desk(tmp_path) as rig:
        (a,) = await quotes(rig, 1)
        before = rig.writes()
        with pytest.raises(RuntimeError), rig.ctx.batch():
            assert rig.ctx.amend(a, price=rig.price(140))
            raise RuntimeError("the strategy's bug")
        await rig.drain()
        assert rig.writes() == before
        assert not a.order.amend_pending and a.price == rig.price(100)  # the flag undone
        assert ("desk", "rec", "amend", "batch_aborted") in rig.refused
        assert rig.ctx.amend(a, price=rig.price(141))  # nothing held over: it goes
        await rig.drain()
        await until(lambda: settled(rig, [a]))
        assert rig.writes()[len(before) :] == [("editorder", 1, 10.0)]
        assert a.price == rig.price(141)


async def test_on_spot_an_amend_in_a_block_goes_at_once(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Spot has no batch amend: the amend is not held, so a block that then raises (and
    drops what it holds) does not stop it."""
    sim = await fake_venue(sim_factory)
    async with desk_on(sim, tmp_path / "bot.db") as rig:
        assert not rig.engine.batches_amends
        bid = rig.ctx.place("BTC/USD", "buy", D("0.01"), D("60000"))
        await until(lambda: bid.state is S.NEW)
        with pytest.raises(RuntimeError), rig.ctx.batch():
            assert rig.ctx.amend(bid, price=D("60100"))
            raise RuntimeError("the strategy's bug")
        await until(lambda: not bid.order.amend_pending)
        assert bid.price == D("60100")
        (on_sim,) = sim_orders_with(sim, bid.cl_ord_id)
        assert on_sim.price == sim.venue.instruments["BTC/USD"].price("60100")
