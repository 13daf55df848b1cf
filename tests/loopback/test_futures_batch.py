"""Batch orders through the engine over Kraken Futures' ``batchorder`` (the Futures venue
port) against the Futures simulator, over real sockets on 127.0.0.1: one call per batch
with each order open under its id, a pre-trade refusal left out, Kraken's per-order
refusal recorded, a lost batch answer resolved by ``cliOrdId`` without a duplicate, a batch
cancel, a batch larger than a call split into legal calls, and cancels with places in one
``batchorder``.

``CountingClient`` names every write the Futures REST client sends and how many
instructions it held; the simulator's own order list is the proof of what exists.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import Clock, FakeClock
from bot.execution import batch as b
from bot.execution.commands import CancelOrder
from bot.execution.orders import Order, OrderState
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.execution.risk_limits import RiskLimits
from bot.futures import orders as fo
from bot.futures.rest import FuturesRestClient
from tests.loopback.placing import command
from tests.loopback.test_futures_venue import Rig, running

S = OrderState
D = Decimal
pytestmark = pytest.mark.timeout(60)
_WRITES = ("sendorder", "batchorder", "cancelorder", "editorder")


class CountingClient(FuturesRestClient):
    """The Futures REST client, naming each write it sends (and a batch's size); ``costs``:
    what each cost the rate counter, in the same order."""

    writes: list[tuple[str, int]]
    costs: list[float]

    async def _call(
        self, req: fo.FuturesRequest, *, private: bool = True
    ) -> tuple[dict[str, Any], bool]:
        if req.endpoint in _WRITES:
            if not hasattr(self, "writes"):
                self.writes, self.costs = [], []
            size = 1
            if req.endpoint == "batchorder":
                size = len(json.loads(dict(req.params)["json"])["batchOrder"])
            self.writes.append((req.endpoint, size))
            self.costs.append(req.cost)
        return await super()._call(req, private=private)


def writes(rig: Rig) -> list[tuple[str, int]]:
    assert isinstance(rig.rest, CountingClient)
    return getattr(rig.rest, "writes", [])


def bids(rig: Rig, n: int, qty: str = "0.01", below: int = 100) -> list[Any]:
    """``n`` bids under the index price, a tick apart."""
    tick = rig.inst.price_increment
    top = rig.index() - below * tick
    return [
        command(rig.engine, rig.clock, rig.inst, "buy", rig.inst.qty(qty), top - i * tick)
        for i in range(n)
    ]


def capped(clock: Clock, max_qty: str) -> PreTrade:
    gate = ReadinessGate(clock=clock)
    risk = RiskGate(clock, PositionBook(clock), RiskLimits(max_order_qty=D(max_qty)))
    return PreTrade(gate, risk=risk)


async def test_a_batch_is_one_batchorder_each_order_open_with_its_id(tmp_path: Path) -> None:
    async with running(tmp_path, rest_cls=CountingClient) as rig:
        out = await rig.engine.place_batch(bids(rig, 3))
        assert writes(rig) == [("batchorder", 3)]
        on_sim = {o.cli_ord_id: o.order_id for o in rig.on_sim()}
        for order in out:
            assert isinstance(order, Order) and order.state is S.NEW
            assert on_sim[order.cl_ord_id] == order.order_id
        assert len(on_sim) == 3


async def test_refusals_one_by_the_stage_one_by_kraken(tmp_path: Path) -> None:
    clock = FakeClock(auto_advance=True)
    async with running(
        tmp_path, rest_cls=CountingClient, clock=clock, pretrade=capped(clock, "1000")
    ) as rig:
        batch = bids(rig, 3)
        over_cap = command(
            rig.engine, clock, rig.inst, "buy", rig.inst.qty("2000"), batch[0].order.price
        )
        beyond_limit = command(
            rig.engine, clock, rig.inst, "buy", rig.inst.qty("900"), batch[0].order.price
        )
        out = await rig.engine.place_batch([batch[0], over_cap, batch[1], beyond_limit, batch[2]])
        assert isinstance(out[1], Refusal) and out[1].source == "risk"
        assert rig.engine.order(over_cap.cl_ord_id) is None
        assert writes(rig) == [("batchorder", 4)]  # sent without it
        refused = out[3]
        assert isinstance(refused, Order) and refused.state is S.REJECTED
        assert refused.reason == "maxPositionViolation"  # over the contract's position limit
        assert rig.store.get_order(refused.cl_ord_id) == refused  # its reason recorded
        assert [x.state for x in (out[0], out[2], out[4]) if isinstance(x, Order)] == [S.NEW] * 3
        assert {o.cli_ord_id for o in rig.on_sim()} == {c.cl_ord_id for c in batch}


async def test_a_lost_batchorder_answer_is_resolved_by_cliordid_never_resent(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, rest_cls=CountingClient) as rig:
        lost = await rig.sim.faults.inject(kind="lose_response", endpoint="batchorder")
        out = await rig.engine.place_batch(bids(rig, 3))
        assert lost.fired == 1
        assert all(isinstance(x, Order) and x.state is S.UNKNOWN for x in out)
        for x in out:
            assert isinstance(x, Order)
            settled = await rig.engine.wait_settled(x.cl_ord_id, timeout_s=10)
            assert settled.state is S.NEW
            (found,) = [o for o in rig.on_sim() if o.cli_ord_id == x.cl_ord_id]  # one each
            assert found.order_id == settled.order_id
        assert writes(rig) == [("batchorder", 3)]  # never resent
        assert len(rig.on_sim()) == 3


async def test_a_batch_cancel_is_one_batchorder(tmp_path: Path) -> None:
    async with running(tmp_path, rest_cls=CountingClient) as rig:
        out = await rig.engine.place_batch(bids(rig, 3))
        cids = [x.cl_ord_id for x in out if isinstance(x, Order)]
        done = await rig.engine.cancel_batch(cids)
        assert writes(rig) == [("batchorder", 3), ("batchorder", 3)]
        assert rig.on_sim() == []
        assert [x.state for x in done] == [S.CANCELED] * 3


async def test_a_batch_over_the_call_limit_is_split_evenly(tmp_path: Path) -> None:
    async with running(tmp_path, rest_cls=CountingClient) as rig:
        n = b.FUTURES_LIMITS.max_place + 2
        out = await rig.engine.place_batch(bids(rig, n, below=200))
        half = n // 2
        assert writes(rig) == [("batchorder", half), ("batchorder", n - half)]
        assert all(isinstance(x, Order) and x.state is S.NEW for x in out)
        assert len(rig.on_sim()) == n


async def test_cancels_and_places_together_go_in_one_batchorder(tmp_path: Path) -> None:
    """A re-quote on Futures: the old quotes' cancels and the new quotes in one call,
    the cancels first; each order's own status applied to it."""
    async with running(tmp_path, rest_cls=CountingClient) as rig:
        old = [x for x in await rig.engine.place_batch(bids(rig, 2)) if isinstance(x, Order)]
        new = bids(rig, 2, below=300)
        accepted = rig.engine.submit_batch([*(CancelOrder(x) for x in old), *new])
        assert accepted == [True] * 4
        cids = [x.cl_ord_id for x in old] + [c.cl_ord_id for c in new]
        async with asyncio.timeout(10):
            while any(not settled(rig, cid) for cid in cids):  # noqa: ASYNC110 (the engine's tasks)
                await asyncio.sleep(0.01)
        assert writes(rig) == [("batchorder", 2), ("batchorder", 4)]
        assert [state(rig, x.cl_ord_id) for x in old] == [S.CANCELED] * 2
        assert [state(rig, c.cl_ord_id) for c in new] == [S.NEW] * 2
        assert {o.cli_ord_id for o in rig.on_sim()} == {c.cl_ord_id for c in new}


def state(rig: Rig, cl_ord_id: str) -> OrderState | None:
    order = rig.engine.order(cl_ord_id)
    return None if order is None else order.state


def settled(rig: Rig, cl_ord_id: str) -> bool:
    return state(rig, cl_ord_id) in (S.NEW, S.CANCELED) and not rig.engine.cancelling(cl_ord_id)
