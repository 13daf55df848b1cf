"""A place written before ``submit`` returns (``PlaceNow``: ``KrakenWsVenue.place_now`` and
``ExecutionEngine._write_now``), against the simulator on 127.0.0.1.

The proof that a request left at the call, not at a later ``await``: the simulator holds
the order while the answer's coroutine has not been awaited yet (the test yields to the
loop only by sleeping, so only the simulator can run). Everything else a place promises
holds as for ``place``: the counter charged once, a refused token sent over REST, a lost
answer UNKNOWN and resolved by lookup to the one order placed, never resent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import OrderStateUnknown
from bot.execution.commands import CancelOrder, Command, PlaceOrder
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.orders import Order, OrderState
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import ReadinessGate
from bot.execution.venue_ws import KrakenWsVenue
from bot.kraken.instruments import Instrument
from bot.store import Store
from bot.strategy.tasks import OrderTasks
from tests.loopback.conftest import SimFactory
from tests.loopback.placing import command
from tests.loopback.test_venue_ws import WAIT_S, Harness, harness, until

pytestmark = pytest.mark.timeout(60)


def _counter(h: Harness) -> float:
    return h.entry._trading.value("BTC/USD", h.clock.monotonic())


async def test_place_now_writes_before_its_answer_is_awaited(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        order = h.bid("50000")
        before = _counter(h)
        answer = h.venue.place_now(order, h.inst)
        assert answer is not None
        assert _counter(h) == pytest.approx(before + 1.0, abs=0.05)  # charged once, now
        # Not awaited: only the simulator runs while the test sleeps, and it has the order.
        await until(lambda: len(h.on_sim_with(order.cl_ord_id)) == 1, "the order on the sim")
        txid = await answer
        assert [o.txid for o in h.on_sim_with(order.cl_ord_id)] == [txid]
        assert h.rest.writes == [] and h.entry.in_flight == 0
        assert h.entry.stats.of("add_order").ok == 1


async def test_with_the_link_down_place_now_sends_and_charges_nothing(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        h.keeper.open.clear()  # the next connection waits for its token
        await h.sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
        await until(lambda: not h.entry.ready, "the link down")
        order = h.bid("50000")
        before = _counter(h)
        assert h.venue.place_now(order, h.inst) is None
        assert _counter(h) <= before  # nothing charged (it only decays)
        assert h.rest.writes == [] and h.on_sim_with(order.cl_ord_id) == []
        txid = await h.venue.place(order, h.inst)  # what the engine then does: over REST
        assert h.rest.writes == ["place"]
        assert [o.txid for o in h.on_sim_with(order.cl_ord_id)] == [txid]
        h.keeper.open.set()


async def test_a_place_now_whose_token_is_refused_goes_over_rest(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(
            kind="ws_order_error", endpoint="add_order", error="EAPI:Invalid token"
        )
        order = h.bid("50000")
        answer = h.venue.place_now(order, h.inst)
        assert answer is not None
        txid = await answer  # Kraken did not act on it: REST may
        assert h.rest.writes == ["place"]
        assert [o.txid for o in h.on_sim_with(order.cl_ord_id)] == [txid]


async def test_a_place_now_whose_answer_is_lost_is_unknown_never_resent(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="add_order")
        order = h.bid("50000")
        answer = h.venue.place_now(order, h.inst)
        assert answer is not None
        with pytest.raises(OrderStateUnknown) as lost:
            await answer
        assert lost.value.code == "EWS:Connection lost"
        assert h.entry.in_flight == 0
        assert len(h.on_sim_with(order.cl_ord_id)) == 1 and h.rest.writes == []


class _Recording:
    """The harness's venue, recording the order the engine's writes reach it in."""

    def __init__(self, venue: KrakenWsVenue) -> None:
        self.venue = venue
        self.calls: list[tuple[str, str]] = []

    def place_now(self, order: Order, instrument: Instrument) -> Any:
        self.calls.append(("place_now", order.cl_ord_id))
        return self.venue.place_now(order, instrument)

    async def place(self, order: Order, instrument: Instrument) -> str:
        self.calls.append(("place", order.cl_ord_id))
        return await self.venue.place(order, instrument)

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        self.calls.append(("cancel", order.cl_ord_id))
        await self.venue.cancel(order, instrument, order_age_s=order_age_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.venue, name)


class _WritesThenRaises(_Recording):
    """The request goes out, then the venue's own code raises (a bug after the write)."""

    def place_now(self, order: Order, instrument: Instrument) -> Any:
        answer = super().place_now(order, instrument)
        if answer is not None:
            answer.close()  # the write happened; its answer will never be read here
        raise RuntimeError("a bug after the write")


@asynccontextmanager
async def running_engine(
    h: Harness,
    tmp_path: Path,
    *,
    venue: _Recording | None = None,
    eager: bool = True,
    seen: list[Order] | None = None,
    refused: list[tuple[Command, Refusal]] | None = None,
    crashed: list[BaseException] | None = None,
    status: Callable[[], str | None] | None = None,
) -> AsyncIterator[tuple[ExecutionEngine, Store]]:
    """An engine on ``venue`` (the harness's own by default) and a store in ``tmp_path``,
    running and reconciled; each command's task started eagerly as the desk starts it
    (``eager``), or by the engine itself; ``seen`` collects every order it reports,
    ``refused`` every command it refused, with why. ``crashed``: the commands' tasks run
    outside the engine's group, and the exception of each one that ends with one is kept
    here (else a task's bug ends the group, as it ends the daemon's). ``status``: the
    exchange's state as the pre-trade stage reads it (default: none, which takes all)."""
    store = Store.open(tmp_path / "bot.db")
    tasks = OrderTasks()
    gate = ReadinessGate(clock=h.clock)
    pretrade = PreTrade(gate) if status is None else PreTrade(gate, exchange_status=status)
    engine = ExecutionEngine(
        venue or h.venue, store, h.sim.venue.instruments, h.clock,  # type: ignore[arg-type]
        spawn=tasks.spawn if eager else None,
        config=EngineConfig(grace_s=5.0, resolve_wait_s=0.3), readiness=gate, pretrade=pretrade,
        on_order=None if seen is None else seen.append,
        on_refused=None if refused is None else lambda c, why, _: refused.append((c, why)),
    )  # fmt: skip
    h.listeners.append(engine.on_private)
    try:
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(engine.run())
            async with asyncio.timeout(WAIT_S):
                await engine.readiness.wait()
            tasks.spawn_task = tg.create_task if crashed is None else _loose(crashed)
            try:
                yield engine, store
            finally:
                tasks.spawn_task = None
                run.cancel()
    finally:
        store.close()


def _loose(crashed: list[BaseException]) -> Callable[..., asyncio.Task[None]]:
    """A task factory outside any group, keeping each task's exception in ``crashed``."""

    def create_task(coro: Coroutine[Any, Any, None], **kwargs: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, **kwargs)
        task.add_done_callback(
            lambda t: t.cancelled() or (e := t.exception()) is None or crashed.append(e)
        )
        return task

    return create_task


def _bid(engine: ExecutionEngine, h: Harness, price: str, **fields: Any) -> PlaceOrder:
    qty, limit = h.inst.qty("0.01"), h.inst.price(price)
    return command(engine, h.clock, h.inst, "buy", qty, limit, **fields)


async def test_the_engine_writes_a_submitted_place_before_submit_returns(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with harness(sim_factory) as h, running_engine(h, tmp_path) as (engine, store):
        cmd = _bid(engine, h, "50000")
        cid = cmd.order.cl_ord_id
        before = h.entry.stats.of("add_order").ok
        assert engine.submit(cmd)
        recorded = engine.order(cid)  # on record before anything could answer it
        assert recorded is not None and recorded.state is OrderState.PENDING_NEW
        assert h.entry.in_flight == 1  # its request is out, waiting for the answer
        await until(lambda: len(h.on_sim_with(cid)) == 1, "the order on the sim")
        settled = await engine.wait_settled(cid, timeout_s=WAIT_S)
        assert settled.state is OrderState.NEW
        assert [o.txid for o in h.on_sim_with(cid)] == [settled.order_id]
        assert h.entry.stats.of("add_order").ok == before + 1 and h.rest.writes == []
        assert store.get_order(cid) is not None  # its row followed the request


async def test_the_engine_resolves_a_lost_answer_of_a_place_written_at_submit(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    seen: list[Order] = []
    async with harness(sim_factory) as h, running_engine(h, tmp_path, seen=seen) as (engine, _):
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="add_order")
        cmd = _bid(engine, h, "50000")
        cid = cmd.order.cl_ord_id
        assert engine.submit(cmd)
        settled = await engine.wait_settled(cid, timeout_s=WAIT_S)
        assert settled.state is OrderState.NEW and settled.order_id is not None
        states = [o.state for o in seen if o.cl_ord_id == cid]
        # Its answer lost: UNKNOWN, then NEW once looked up.
        assert OrderState.UNKNOWN in states
        assert states.index(OrderState.UNKNOWN) < states.index(OrderState.NEW)
        (on_sim,) = h.on_sim_with(cid)  # exactly one: never resent, by either path
        assert on_sim.txid == settled.order_id and h.rest.writes == []


@pytest.mark.parametrize("eager", [True, False])
async def test_requests_leave_in_the_order_submitted(
    sim_factory: SimFactory, tmp_path: Path, eager: bool
) -> None:
    """A cancel then a place in one handler: with the desk's eager tasks the place is
    written at ``submit``, after the cancel; without them (an engine spawning its own,
    later tasks) it is not written at ``submit``, so it cannot pass the cancel either."""
    async with harness(sim_factory) as h:
        venue = _Recording(h.venue)
        async with running_engine(h, tmp_path, venue=venue, eager=eager) as (engine, _):
            a = await engine.place(_bid(engine, h, "50000"))
            second = _bid(engine, h, "49000")
            b = second.order.cl_ord_id
            assert engine.submit(CancelOrder(a)) and engine.submit(second)
            await until(lambda: len(h.on_sim_with(b)) == 1, "the second order on the sim")
            await until(lambda: h.on_sim() and len(h.on_sim()) == 1, "the first cancelled")
        place = "place_now" if eager else "place"
        assert venue.calls == [("place", a.cl_ord_id), ("cancel", a.cl_ord_id), (place, b)]


async def test_a_place_now_that_raises_after_writing_is_unknown_and_looked_up(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The order may have left: it is on record as UNKNOWN at once, looked up by its id,
    found (it did leave), and never sent again by either path."""
    async with harness(sim_factory) as h:
        venue = _WritesThenRaises(h.venue)
        async with running_engine(h, tmp_path, venue=venue) as (engine, _):
            cmd = _bid(engine, h, "50000")
            cid = cmd.order.cl_ord_id
            assert engine.submit(cmd)  # accepted: its fate is the lookup's to tell
            recorded = engine.order(cid)
            assert recorded is not None and recorded.state is OrderState.UNKNOWN
            settled = await engine.wait_settled(cid, timeout_s=WAIT_S)
            assert settled.state is OrderState.NEW
            (on_sim,) = h.on_sim_with(cid)  # it left once, and only once
            assert on_sim.txid == settled.order_id
        assert venue.calls == [("place_now", cid)] and h.rest.writes == []
