"""Batch orders through the engine (bot.execution.engine_batch) against the spot simulator,
over real sockets on 127.0.0.1: REST (AddOrderBatch, CancelOrderBatch) and the
authenticated WebSocket (``batch_add``, ``batch_cancel``).

Which calls reached Kraken is told by ``CountingClient`` (the REST client, naming each
private method it sends); the simulator's own order list is the proof of what exists.
The REST tests run on ``FakeClock(auto_advance=True)`` (tests.loopback.test_engine's rig);
the WebSocket tests on the real clock, every wait bounded.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import Clock
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.orders import Order, OrderState
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.execution.risk_limits import RiskLimits
from bot.kraken.instruments import Instrument
from bot.kraken.rest import KrakenRestClient
from bot.sim.faults import FaultKind, FaultSpec
from bot.store import Store
from tests.loopback.conftest import SimFactory
from tests.loopback.placing import command
from tests.loopback.test_engine import Rig, fake_venue, running, sim_orders_with, until
from tests.loopback.test_venue_ws import WAIT_S, harness

S = OrderState
D = Decimal
pytestmark = pytest.mark.timeout(60)


class CountingClient(KrakenRestClient):
    """The REST client, naming every private method it is asked to send."""

    calls: list[tuple[str, int]]

    async def private(self, method: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        if not hasattr(self, "calls"):
            self.calls = []
        size = 0
        if isinstance(params, dict):
            size = len(params.get("orders") or []) + len(params.get("cl_ord_ids") or [])
        self.calls.append((method, size))
        return await super().private(method, params, **kwargs)

    def writes(self) -> list[tuple[str, int]]:
        reads = ("OpenOrders", "QueryOrders", "ClosedOrders", "TradesHistory", "Balance")
        return [c for c in getattr(self, "calls", []) if c[0] not in reads]


def bids(rig: Rig, prices: list[str], qty: str = "0.01", symbol: str = "BTC/USD") -> list[Any]:
    inst = rig.sim.venue.instruments[symbol]
    return [
        command(rig.engine, rig.sim.clock, inst, "buy", inst.qty(qty), inst.price(p))
        for p in prices
    ]


def client(rig: Rig) -> CountingClient:
    assert isinstance(rig.rest, CountingClient)
    return rig.rest


def capped_pretrade(clock: Clock, max_qty: str) -> PreTrade:
    """A pre-trade stage whose risk gate refuses any order over ``max_qty``."""
    gate = ReadinessGate(clock=clock)
    risk = RiskGate(clock, PositionBook(clock), RiskLimits(max_order_qty=D(max_qty)))
    return PreTrade(gate, risk=risk)


# ------------------------------------------------------------------------------ REST


async def test_a_batch_goes_in_one_addorderbatch_each_order_open_with_its_id(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    async with running(sim, tmp_path / "bot.db", rest_cls=CountingClient) as rig:
        placed = await rig.engine.place_batch(bids(rig, ["30000", "30100", "30200"]))
        assert client(rig).writes() == [("AddOrderBatch", 3)]
        on_sim = {o.cl_ord_id: o.txid for o in rig.on_sim()}
        for order in placed:
            assert isinstance(order, Order) and order.state is S.NEW
            assert on_sim[order.cl_ord_id] == order.order_id
            assert rig.store.get_order(order.cl_ord_id) == order  # recorded
        assert len(on_sim) == 3


async def test_refusals_in_a_batch_the_stage_leaves_one_out_and_kraken_refuses_one(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory, balances={"USD": "1000", "BTC": "0"})
    pretrade = capped_pretrade(sim.clock, "0.05")
    async with running(sim, tmp_path / "bot.db", rest_cls=CountingClient, pretrade=pretrade) as rig:
        inst = sim.venue.instruments["BTC/USD"]
        # 300 USD each: the fourth sent cannot be funded; the second is over the risk cap.
        batch = bids(rig, ["30000", "30000", "30000", "30000", "30000"])
        too_big = command(rig.engine, sim.clock, inst, "buy", inst.qty("0.1"), inst.price("300"))
        batch[1] = too_big
        out = await rig.engine.place_batch(batch)
        refused = out[1]
        assert isinstance(refused, Refusal) and refused.source == "risk"
        assert sim_orders_with(sim, too_big.cl_ord_id) == []  # never sent
        assert rig.engine.order(too_big.cl_ord_id) is None  # nor recorded
        assert client(rig).writes() == [("AddOrderBatch", 4)]  # sent without it
        states = [x.state for x in out if isinstance(x, Order)]
        assert states == [S.NEW, S.NEW, S.NEW, S.REJECTED]
        rejected = out[4]
        assert isinstance(rejected, Order) and rejected.reason == "EOrder:Insufficient funds"
        assert rig.store.get_order(rejected.cl_ord_id) == rejected  # its reason recorded
        assert len(rig.on_sim()) == 3


async def test_a_batch_refused_whole_is_sent_order_by_order_each_meeting_its_fate(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Kraken validates a batch as a whole: one order it cannot take refuses them all, and
    nothing is placed. Each order then goes alone, as it would have unbatched (a market
    maker's bid is not lost to its unfunded ask)."""
    sim = await fake_venue(sim_factory, balances={"USD": "100000", "BTC": "0"})
    async with running(sim, tmp_path / "bot.db", rest_cls=CountingClient) as rig:
        inst = sim.venue.instruments["BTC/USD"]
        bid = command(rig.engine, sim.clock, inst, "buy", inst.qty("0.01"), inst.price("30000"))
        ask = command(rig.engine, sim.clock, inst, "sell", inst.qty("0.01"), inst.price("31000"))
        out = await rig.engine.place_batch([bid, ask])
        assert client(rig).writes() == [("AddOrderBatch", 2), ("AddOrder", 0), ("AddOrder", 0)]
        placed, refused = out
        assert isinstance(placed, Order) and placed.state is S.NEW
        assert isinstance(refused, Order) and refused.state is S.REJECTED
        assert refused.reason == "EOrder:Insufficient funds"
        assert [o.cl_ord_id for o in rig.on_sim()] == [bid.cl_ord_id]


async def test_a_lost_batch_answer_is_resolved_order_by_order_never_resent(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    config = EngineConfig(grace_s=5.0, resolve_wait_s=10.0)
    async with running(sim, tmp_path / "bot.db", config, rest_cls=CountingClient) as rig:
        lose = sim.venue.faults.schedule(
            FaultSpec(kind=FaultKind.LOSE_RESPONSE, endpoint="AddOrderBatch")
        )
        out = await rig.engine.place_batch(bids(rig, ["30000", "30100", "30200"]))
        assert lose.fired == 1
        assert all(isinstance(x, Order) and x.state is S.UNKNOWN for x in out)
        for x in out:
            assert isinstance(x, Order)
            settled = await rig.engine.wait_settled(x.cl_ord_id, timeout_s=10)
            assert settled.state is S.NEW
            (found,) = sim_orders_with(sim, x.cl_ord_id)  # exactly one each
            assert found.txid == settled.order_id
        assert [c for c in client(rig).writes() if c[0].startswith("Add")] == [
            ("AddOrderBatch", 3)
        ]  # never resent


async def test_a_batch_cancel_goes_in_one_cancelorderbatch(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    async with running(sim, tmp_path / "bot.db", rest_cls=CountingClient) as rig:
        placed = await rig.engine.place_batch(bids(rig, ["30000", "30100", "30200"]))
        cids = [x.cl_ord_id for x in placed if isinstance(x, Order)]
        done = await rig.engine.cancel_batch(cids)
        assert client(rig).writes() == [("AddOrderBatch", 3), ("CancelOrderBatch", 3)]
        assert rig.on_sim() == []
        assert [x.state for x in done] == [S.CANCELED] * 3  # confirmed by a query


async def test_twenty_orders_over_two_pairs_are_split_into_legal_calls(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    async with running(sim, tmp_path / "bot.db", rest_cls=CountingClient) as rig:
        btc = bids(rig, [str(30000 + 10 * n) for n in range(17)])
        eth = bids(rig, ["2000.00", "2001.00", "2002.00"], qty="0.01", symbol="ETH/USD")
        rig.engine.submit_batch([*btc[:9], *eth, *btc[9:]])
        await until(lambda: len(rig.on_sim()) == 20)
        await until(lambda: all(state(rig, c.cl_ord_id) is S.NEW for c in btc + eth))
        # One pair a call, at most 15 a call, sizes as even as they go: 17 = 9 + 8.
        assert sorted(client(rig).writes()) == [
            ("AddOrderBatch", 3),
            ("AddOrderBatch", 8),
            ("AddOrderBatch", 9),
        ]
        cids = [c.cl_ord_id for c in btc + eth]
        await rig.engine.cancel_batch(cids)  # 20 cancels: one pair a call, 50 a call
        assert sorted(client(rig).writes()[3:]) == [
            ("CancelOrderBatch", 3),
            ("CancelOrderBatch", 17),
        ]
        assert rig.on_sim() == []


async def test_a_batch_of_one_is_a_single_call(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await fake_venue(sim_factory)
    async with running(sim, tmp_path / "bot.db", rest_cls=CountingClient) as rig:
        (order,) = await rig.engine.place_batch(bids(rig, ["30000"]))
        assert isinstance(order, Order)
        await rig.engine.cancel_batch([order.cl_ord_id])
        assert [c[0] for c in client(rig).writes()] == ["AddOrder", "CancelOrder"]


def state(rig: Rig, cl_ord_id: str) -> OrderState | None:
    order = rig.engine.order(cl_ord_id)
    return None if order is None else order.state


# ------------------------------------------------------------------------- WebSocket


async def _ws_engine(h: Any, db: Path, **kwargs: Any) -> tuple[ExecutionEngine, asyncio.Task[None]]:
    engine = ExecutionEngine(
        h.venue, Store.open(db), h.sim.venue.instruments, h.clock,
        config=EngineConfig(grace_s=5.0, resolve_wait_s=10.0), **kwargs,
    )  # fmt: skip
    h.listeners.append(engine.on_private)
    task = asyncio.create_task(engine.run())
    async with asyncio.timeout(WAIT_S):
        await engine.readiness.wait()
    return engine, task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _ws_bids(
    engine: ExecutionEngine, clock: Clock, inst: Instrument, prices: list[str]
) -> list[Any]:
    return [command(engine, clock, inst, "buy", inst.qty("0.01"), inst.price(p)) for p in prices]


async def test_over_the_websocket_a_batch_is_one_batch_add_and_one_batch_cancel(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with harness(sim_factory) as h:
        engine, task = await _ws_engine(h, tmp_path / "bot.db")
        try:
            out = await engine.place_batch(_ws_bids(engine, h.clock, h.inst, ["30000", "30100"]))
            on_sim = {o.cl_ord_id: o.txid for o in h.on_sim()}
            for order in out:
                assert isinstance(order, Order) and order.state is S.NEW
                assert on_sim[order.cl_ord_id] == order.order_id
            await engine.cancel_batch([x.cl_ord_id for x in out if isinstance(x, Order)])
            assert h.on_sim() == []
            assert h.rest.writes == []  # nothing over REST
        finally:
            await _stop(task)


async def test_over_the_websocket_refusals_and_a_lost_batch_answer(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with harness(sim_factory) as h:
        pretrade = capped_pretrade(h.clock, "0.05")
        engine, task = await _ws_engine(h, tmp_path / "bot.db", pretrade=pretrade)
        try:
            inst = h.inst
            batch = _ws_bids(engine, h.clock, inst, ["30000", "30100", "30200"])
            batch[1] = command(engine, h.clock, inst, "buy", inst.qty("0.1"), inst.price("300"))
            # 60,000 USD each of the account's 100,000: the second cannot be funded.
            big = [
                command(engine, h.clock, inst, "buy", inst.qty("0.05"), inst.price("1200000"))
                for _ in range(2)
            ]
            out = await engine.place_batch([*batch, *big])
            assert isinstance(out[1], Refusal) and out[1].source == "risk"
            assert h.on_sim_with(batch[1].cl_ord_id) == []
            kraken = out[4]
            assert isinstance(kraken, Order) and kraken.state is S.REJECTED
            assert kraken.reason == "EOrder:Insufficient funds"
            assert engine.order(kraken.cl_ord_id) == kraken
            states = [x.state for x in (out[0], out[2], out[3]) if isinstance(x, Order)]
            assert states == [S.NEW, S.NEW, S.NEW]
            assert len(h.on_sim()) == 3

            await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="batch_add")
            lost = await engine.place_batch(_ws_bids(engine, h.clock, inst, ["29000", "29100"]))
            for x in lost:
                assert isinstance(x, Order) and x.state is S.UNKNOWN
            for x in lost:
                assert isinstance(x, Order)
                settled = await engine.wait_settled(x.cl_ord_id, timeout_s=WAIT_S)
                assert settled.state is S.NEW
                assert [o.txid for o in h.on_sim_with(x.cl_ord_id)] == [settled.order_id]
            assert h.rest.writes == []  # never resent, nothing over REST
        finally:
            await _stop(task)
