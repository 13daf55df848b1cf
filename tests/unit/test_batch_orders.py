"""Batch orders without a network: the splitting rules (``bot.execution.batch``), the
engine's batches on hand-written venues (``tests.unit.paper_venue``: one that batches with
small limits, one that does not), ``with ctx.batch():`` on the daemon's context and on the
test harness, and the backtest venue's batches on the simulator's exchange."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.backtest.clock import settle
from bot.core.clock import FakeClock
from bot.core.errors import InsufficientFunds
from bot.execution.batch import FUTURES_LIMITS, SPOT_LIMITS, BatchLimits, BatchVenue, chunks, split
from bot.execution.commands import AmendOrder, CancelOrder, PlaceOrder
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import Order, OrderState
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate, RiskLimits
from bot.store import Store
from bot.strategy import Params, Strategy
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.testing import StrategyHarness
from tests.unit.backtest.market_rig import Rig as MarketRig
from tests.unit.backtest.market_rig import px, qty
from tests.unit.paper_venue import BatchingPaperVenue, PaperVenue
from tests.unit.test_venue_port import BTC, TABLE, engine_on, until

S = OrderState
D = Decimal


# ----------------------------------------------------------------------------- splitting


def test_chunks_are_the_fewest_and_as_even_as_they_go() -> None:
    assert [len(c) for c in chunks(list(range(20)), 15)] == [10, 10]
    assert [len(c) for c in chunks(list(range(16)), 15)] == [8, 8]
    assert [len(c) for c in chunks(list(range(15)), 15)] == [15]
    assert [len(c) for c in chunks(list(range(31)), 15)] == [11, 10, 10]
    assert [len(c) for c in chunks(list(range(7)), 3)] == [3, 2, 2]
    assert chunks([], 15) == []
    assert [x for c in chunks(list(range(23)), 4) for x in c] == list(range(23))  # in order
    with pytest.raises(ValueError, match="one item"):
        chunks([1], 0)


def test_split_keeps_one_pair_a_call_where_the_venue_wants_it() -> None:
    items = [("BTC", 1), ("ETH", 2), ("BTC", 3), ("BTC", 4), ("ETH", 5)]
    calls = split(items, 2, one_pair=True, symbol=lambda x: x[0])
    assert calls == [[("BTC", 1), ("BTC", 3)], [("BTC", 4)], [("ETH", 2), ("ETH", 5)]]
    mixed = split(items, 3, one_pair=False, symbol=lambda x: x[0])
    assert mixed == [items[:3], items[3:]]


def test_the_venues_limits_are_krakens() -> None:
    assert (SPOT_LIMITS.max_place, SPOT_LIMITS.max_cancel, SPOT_LIMITS.one_pair) == (15, 50, True)
    assert not FUTURES_LIMITS.one_pair
    with pytest.raises(ValueError, match="two orders"):
        BatchLimits(max_place=1, max_cancel=50, one_pair=True)
    assert isinstance(BatchingPaperVenue(), BatchVenue)
    assert not isinstance(PaperVenue(), BatchVenue)


# --------------------------------------------------------------------------- the engine


def commands(rig: Any, n: int, qty_: str = "0.01") -> list[PlaceOrder]:
    return [rig.command(qty=qty_, price=str(50000 - i)) for i in range(n)]


async def test_seven_places_go_in_three_legal_calls(tmp_path: Path) -> None:
    venue = BatchingPaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        out = await rig.engine.place_batch(commands(rig, 7))
        assert [c for c in venue.calls if c.startswith("place")] == [
            "place_batch:3", "place_batch:2", "place_batch:2"
        ]  # fmt: skip
        assert all(isinstance(x, Order) and x.state is S.NEW for x in out)
        cids = [x.cl_ord_id for x in out if isinstance(x, Order)]
        await rig.engine.cancel_batch(cids[:4])
        assert [c for c in venue.calls if c.startswith("cancel")] == [
            "cancel_batch:2", "cancel_batch:2"
        ]  # fmt: skip


async def test_a_venue_without_batches_gets_one_call_per_order(tmp_path: Path) -> None:
    venue = PaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        out = await rig.engine.place_batch(commands(rig, 3))
        assert all(isinstance(x, Order) and x.state is S.NEW for x in out)
        await rig.engine.cancel_batch([x.cl_ord_id for x in out if isinstance(x, Order)])
        writes = [c for c in venue.calls if c in ("place", "cancel")]
        assert writes == ["place"] * 3 + ["cancel"] * 3


async def test_each_order_is_checked_with_the_earlier_ones_counted(tmp_path: Path) -> None:
    """The risk gate's open-order limit sees the batch's earlier orders: recorded in turn,
    before the next is checked."""

    def capped(gate: ReadinessGate) -> PreTrade:
        clock = FakeClock()
        risk = RiskGate(clock, PositionBook(clock), RiskLimits(max_open_orders=2))
        return PreTrade(gate, risk=risk)

    venue = BatchingPaperVenue()
    async with engine_on(venue, tmp_path / "bot.db", pretrade=capped) as rig:
        out = await rig.engine.place_batch(commands(rig, 3))
        assert [type(x) for x in out] == [Order, Order, Refusal]
        assert isinstance(out[2], Refusal) and out[2].source == "risk"
        assert venue.calls[-2:] == ["place_batch:2", "query_orders"]


async def test_each_order_gets_its_own_answer_and_a_lost_one_is_resolved(
    tmp_path: Path,
) -> None:
    venue = BatchingPaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        batch = commands(rig, 3)
        venue.refuse[batch[1].cl_ord_id] = InsufficientFunds("EOrder:Insufficient funds")
        out = await rig.engine.place_batch(batch)
        assert [x.state for x in out if isinstance(x, Order)] == [S.NEW, S.REJECTED, S.NEW]
        rejected = out[1]
        assert isinstance(rejected, Order) and rejected.reason == "EOrder:Insufficient funds"
        assert rig.store.get_order(rejected.cl_ord_id) == rejected

        venue.lose_next_batch = True
        lost = await rig.engine.place_batch(commands(rig, 2))
        assert [x.state for x in lost if isinstance(x, Order)] == [S.UNKNOWN, S.UNKNOWN]
        for x in lost:
            assert isinstance(x, Order)
            settled = await rig.engine.wait_settled(x.cl_ord_id)
            assert settled.state is S.NEW
        assert sum(c.startswith("place") for c in venue.calls) == 2  # never resent
        assert len(venue.orders) == 4  # 2 + 2 placed, the refused one never


async def test_a_refused_cancel_is_recorded_and_looked_up(tmp_path: Path) -> None:
    venue = BatchingPaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        out = await rig.engine.place_batch(commands(rig, 2))
        orders = [x for x in out if isinstance(x, Order)]
        gone = orders[0].order_id
        assert gone is not None
        venue.orders[gone] = replace(venue.orders[gone], status="canceled", reason="elsewhere")
        done = await rig.engine.cancel_batch([x.cl_ord_id for x in orders])
        assert venue.calls[-2:] == ["cancel_batch:2", "query_orders"]  # refused: looked up
        assert [x.state for x in done] == [S.CANCELED, S.CANCELED]


# ------------------------------------------------------------------- the strategy's side


class Ladder(Strategy[Params]):
    """Quotes a ladder of three bids in one batch on each book; pulls the old ones first."""

    def on_book(self, symbol: str, book: Any) -> None:
        bid = book.best_bid()
        if bid is None:
            return
        with self.ctx.batch():
            for handle in self.ctx.open_orders(symbol):
                self.ctx.cancel(handle)
            for i in range(3):
                self.ctx.place(symbol, "buy", D("0.01"), bid.price - i, post_only=True)


def test_the_harness_records_one_batch_per_block() -> None:
    h = StrategyHarness(Ladder, {}, symbols=("BTC/USD",))
    h.start()
    h.quote("30000", "30010")
    ((*first,),) = h.ctx.batches
    assert [type(c) for c in first] == [PlaceOrder] * 3
    assert len(h.open_orders()) == 3
    h.quote("30001", "30010")
    second = h.ctx.batches[1]
    assert [type(c) for c in second] == [CancelOrder] * 3 + [PlaceOrder] * 3  # cancels first
    assert sorted(h.ctx.books["BTC/USD"].best_bid().price - o.price for o in h.open_orders()) == [
        0, 1, 2
    ]  # fmt: skip


def test_amends_are_not_batched_and_blocks_nest() -> None:
    h = StrategyHarness(Ladder, {}, symbols=("BTC/USD",))
    h.start()
    h.quote("30000", "30010")
    ctx = h.ctx
    (bid, *_) = ctx.open_orders()
    with ctx.batch():
        assert ctx.amend(bid, price=D("29990"))
        assert h.amended()  # at once
        with ctx.batch():
            ctx.place("BTC/USD", "buy", D("0.01"), D("29000"))
        assert len(ctx.batches) == 1  # the inner block sends nothing
        ctx.place("BTC/USD", "buy", D("0.01"), D("28000"))
    assert len(ctx.batches) == 2 and len(ctx.batches[1]) == 2


def test_the_harness_plays_futures_rule_when_asked_amends_go_with_the_block() -> None:
    """``batch_amends=True`` (Kraken Futures' ``batchorder``): an amend in a block is
    accepted at once, flagged, and handed on with the block, after its cancels and before
    its places; an amend outside a block still goes at once."""
    h = StrategyHarness(Ladder, {}, symbols=("BTC/USD",), batch_amends=True)
    h.start()
    h.quote("30000", "30010")
    ctx = h.ctx
    (moved, gone, _) = ctx.open_orders()
    with ctx.batch():
        ctx.place("BTC/USD", "buy", D("0.01"), D("29000"))
        assert ctx.amend(moved, price=D("29990"))
        assert moved.order.amend_pending and h.amended() == []  # held, flagged
        ctx.cancel(gone)
    assert [type(c) for c in ctx.batches[-1]] == [CancelOrder, AmendOrder, PlaceOrder]
    h.settle()
    assert moved.price == D("29990") and not moved.order.amend_pending
    assert ctx.amend(moved, price=D("29980")) and len(h.amended()) == 2  # outside: at once
    assert len(ctx.batches) == 2


def test_an_aborted_block_sends_no_held_amend_and_undoes_its_flag() -> None:
    h = StrategyHarness(Ladder, {}, symbols=("BTC/USD",), batch_amends=True)
    h.start()
    h.quote("30000", "30010")
    ctx = h.ctx
    (quote, *_) = ctx.open_orders()
    before = len(ctx.commands)
    with pytest.raises(RuntimeError), ctx.batch():
        assert ctx.amend(quote, price=D("29990"))
        raise RuntimeError("a bug in the strategy")
    assert len(ctx.commands) == before and h.amended() == []
    assert quote.is_live and not quote.order.amend_pending and quote.price == D("30000")


def test_a_block_sends_its_cancels_before_its_places() -> None:
    h = StrategyHarness(Ladder, {}, symbols=("BTC/USD",))
    h.start()
    h.quote("30000", "30010")
    ctx = h.ctx
    (old, *_) = ctx.open_orders()
    with ctx.batch():
        ctx.place("BTC/USD", "buy", D("0.01"), D("29000"))  # placed first in the block
        ctx.cancel(old)
    assert [type(c) for c in ctx.batches[-1]] == [CancelOrder, PlaceOrder]


def test_a_block_that_raises_sends_nothing() -> None:
    h = StrategyHarness(Ladder, {}, symbols=("BTC/USD",))
    h.start()
    h.quote("30000", "30010")
    ctx = h.ctx
    before = len(ctx.commands)
    (quote, *_) = ctx.open_orders()
    with pytest.raises(RuntimeError), ctx.batch():
        placed = ctx.place("BTC/USD", "buy", D("0.01"), D("29000"))
        assert ctx.cancel(quote)
        raise RuntimeError("a bug in the strategy")
    assert len(ctx.commands) == before and len(ctx.batches) == 1
    assert placed.state is S.REJECTED and placed.order.reason == "batch_aborted"
    assert quote.is_live and not quote.order.cancel_pending  # the cancel flag undone


async def test_the_daemons_context_sends_a_block_in_one_call(tmp_path: Path) -> None:
    clock = FakeClock(auto_advance=True)
    store = Store.open(tmp_path / "bot.db")
    positions = PositionBook(clock)
    desk = Desk(risk=RiskGate(clock, positions), positions=positions, instruments=TABLE,
                books=dict, clock=clock)  # fmt: skip
    venue = BatchingPaperVenue()
    engine = ExecutionEngine(
        venue, store, TABLE, clock, spawn=desk.tasks.spawn, on_order=desk.router.on_order,
        on_fill=desk.router.on_fill, on_refused=desk.router.on_refused,
    )  # fmt: skip
    venue.sink = engine.on_private
    task = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(5):
            await engine.readiness.wait()
        desk.tasks.spawn_task = asyncio.get_running_loop().create_task
        ctx = EngineContext(engine, desk, "s", ("BTC/USD",))
        with ctx.batch():
            handles = [ctx.place("BTC/USD", "buy", D("0.01"), D(50000 - i)) for i in range(3)]
            assert venue.calls[-1] == "open_orders"  # nothing sent inside the block
        await desk.tasks.drain()
        assert "place_batch:3" in venue.calls and "place" not in venue.calls
        await until(lambda: all(h.is_live for h in handles))
        with ctx.batch():
            for h in handles:
                ctx.cancel(h)
        await desk.tasks.drain()
        await until(lambda: all(h.is_done for h in handles))
        assert "cancel_batch:3" in venue.calls and "cancel" not in venue.calls
        with pytest.raises(RuntimeError), ctx.batch():
            aborted = ctx.place("BTC/USD", "buy", D("0.01"), D("40000"))
            raise RuntimeError("a bug")
        await asyncio.sleep(0)
        assert aborted.state is S.REJECTED and aborted.order.reason == "batch_aborted"
        assert engine.order(aborted.cl_ord_id) is None  # never recorded, never sent
    finally:
        desk.tasks.spawn_task = None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()


# ---------------------------------------------------------------------------- backtest


async def test_the_backtest_venue_takes_a_batch_as_one_write() -> None:
    rig = MarketRig(latency_ns=1_000_000)
    frames: list[Any] = []
    rig.venue.sink = frames.append  # type: ignore[assignment]
    rig.snapshot(bids={"100.0": "5"}, asks={"101.0": "1"})
    orders = [
        Order(
            cl_ord_id=c * 32,
            symbol="BTC/USD",
            side="buy",
            order_type="limit",
            qty=qty(size),
            price=px("99.5"),
            price_precision=1,
            qty_precision=8,
            strategy="s",
        )
        for c, size in (("a", "1"), ("b", "1000000"), ("c", "1"))
    ]
    assert isinstance(rig.venue, BatchVenue)
    task = asyncio.create_task(rig.venue.place_batch(orders, [BTC] * 3))
    await settle()
    await rig.clock.run_until(rig.now + 2_000_000)
    first, refused, third = await task
    assert isinstance(first, str) and isinstance(third, str)
    assert isinstance(refused, InsufficientFunds)
    assert rig.venue.writes == 1
    resting = {o.cl_ord_id for o in rig.exchange.open_orders(rig.venue.account)}
    assert resting == {"a" * 32, "c" * 32}
    task = asyncio.create_task(
        rig.venue.cancel_batch([orders[0], orders[1]], [BTC] * 2, ages_s=[1.0, 1.0])
    )
    await settle()
    await rig.clock.run_until(rig.now + 2_000_000)
    ok, unknown = await task
    assert ok is None and unknown is not None  # the refused order never existed
    assert rig.venue.writes == 2
    assert {o.cl_ord_id for o in rig.exchange.open_orders(rig.venue.account)} == {"c" * 32}
