"""An amend written before ``submit`` returns (``AmendNow``: ``KrakenWsVenue.amend_now`` and
``ExecutionEngine._amend_go``), against the simulator on 127.0.0.1.

As for a place written at ``submit`` (tests/loopback/test_place_now.py), the proof that a
request left at the call is the simulator acting on it while its answer's coroutine has not
been awaited. An amend promises what ``amend`` promises: the counter charged once, by the
order's age; a refused token sent over REST; a lost answer looked up, never resent. The
engine writes the frame before it flags the order (so the flag's row follows the request),
takes the general way for anything it cannot decide at once, and an amend written just
before the process died is adopted from Kraken's numbers at the next start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import OrderStateUnknown
from bot.execution.commands import AmendOrder, Command
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import Order, OrderState
from bot.execution.pretrade import Refusal
from bot.execution.venue_ws import KrakenWsVenue
from bot.kraken.instruments import Instrument
from bot.kraken.ratelimit import TradingCounter
from bot.store import Store
from tests.loopback.conftest import SimFactory
from tests.loopback.test_place_now import _bid, _counter, _Recording, running_engine
from tests.loopback.test_venue_ws import WAIT_S, Harness, harness, until

pytestmark = pytest.mark.timeout(60)


async def _acked(h: Harness, price: str = "49000") -> Order:
    """An order placed (over the socket) and acknowledged, as the venue sees it."""
    order = h.bid(price)
    return replace(order, order_id=await h.venue.place(order, h.inst), state=OrderState.NEW)


def _sim_price(h: Harness, cid: str) -> int | None:
    (on_sim,) = h.on_sim_with(cid)
    return on_sim.price  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the venue


async def test_amend_now_writes_before_its_answer_is_awaited(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        order, new = await _acked(h), h.inst.price("48000")
        before = _counter(h)
        answer = h.venue.amend_now(order, h.inst, qty=None, price=new, order_age_s=1)
        assert answer is not None
        charged = TradingCounter.amend_cost(1).total  # a young order's: 1 and a penalty of 3
        assert _counter(h) == pytest.approx(before + charged, abs=0.05)  # once, by its age
        # Not awaited: only the simulator runs while the test sleeps, and it amended it.
        await until(lambda: _sim_price(h, order.cl_ord_id) == new, "the amend on the sim")
        assert await answer is None
        assert h.rest.writes == [] and h.entry.in_flight == 0
        assert h.entry.stats.of("amend_order").ok == 1


async def test_with_the_link_down_amend_now_sends_and_charges_nothing(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        order, new = await _acked(h), h.inst.price("48000")
        h.keeper.open.clear()  # the next connection waits for its token
        await h.sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
        await until(lambda: not h.entry.ready, "the link down")
        before = _counter(h)
        assert h.venue.amend_now(order, h.inst, qty=None, price=new, order_age_s=60) is None
        assert _counter(h) <= before  # nothing charged (it only decays)
        assert _sim_price(h, order.cl_ord_id) == h.inst.price("49000")
        await h.venue.amend(order, h.inst, qty=None, price=new, order_age_s=60)  # the engine's
        assert h.rest.writes == ["amend"] and _sim_price(h, order.cl_ord_id) == new
        h.keeper.open.set()


async def test_an_amend_now_whose_token_is_refused_goes_over_rest(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        order, new = await _acked(h), h.inst.price("48000")
        await h.sim.venue.faults.inject(
            kind="ws_order_error", endpoint="amend_order", error="EAPI:Invalid token"
        )
        answer = h.venue.amend_now(order, h.inst, qty=None, price=new, order_age_s=60)
        assert answer is not None
        await answer  # Kraken did not act on it: REST may
        assert h.rest.writes == ["amend"] and _sim_price(h, order.cl_ord_id) == new


async def test_an_amend_now_whose_answer_is_lost_is_unknown_never_resent(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        order, new = await _acked(h), h.inst.price("48000")
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="amend_order")
        answer = h.venue.amend_now(order, h.inst, qty=None, price=new, order_age_s=60)
        assert answer is not None
        with pytest.raises(OrderStateUnknown) as lost:
            await answer
        assert lost.value.code == "EWS:Connection lost"
        assert _sim_price(h, order.cl_ord_id) == new  # it was carried out, once
        stats = h.entry.stats.of("amend_order")
        assert (stats.lost, stats.ok) == (1, 0) and h.rest.writes == []


# -------------------------------------------------------------------------- the engine


class _Amends(_Recording):
    """The recording venue, with amends recorded too, and whether the engine had flagged
    the order when ``amend_now`` was called (``flagged``)."""

    def __init__(self, venue: KrakenWsVenue) -> None:
        super().__init__(venue)
        self.engine: ExecutionEngine | None = None
        self.flagged: list[bool] = []

    def amend_now(self, order: Order, instrument: Instrument, **kwargs: Any) -> Any:
        self.calls.append(("amend_now", order.cl_ord_id))
        if self.engine is not None:
            current = self.engine.order(order.cl_ord_id)
            self.flagged.append(current is not None and current.amend_pending)
        return self.venue.amend_now(order, instrument, **kwargs)

    async def amend(self, order: Order, instrument: Instrument, **kwargs: Any) -> None:
        self.calls.append(("amend", order.cl_ord_id))
        await self.venue.amend(order, instrument, **kwargs)


class _AmendWritesThenRaises(_Amends):
    """The amend goes out, then the venue's own code raises (a bug after the write)."""

    def amend_now(self, order: Order, instrument: Instrument, **kwargs: Any) -> Any:
        answer = super().amend_now(order, instrument, **kwargs)
        if answer is not None:
            answer.close()  # the write happened; its answer will never be read here
        raise RuntimeError("a bug after the write")


class _RaisesBeforeWriting(_Amends):
    """The venue's own code raises before anything is written (a bug): the engine cannot
    tell, so the amend is in doubt all the same."""

    def amend_now(self, order: Order, instrument: Instrument, **kwargs: Any) -> Any:
        self.calls.append(("amend_now", order.cl_ord_id))
        raise RuntimeError("a bug before the write")


class _AnswerRaises(_Amends):
    """The venue's answer raises a bug (nothing was written here): the amend is in doubt."""

    def amend_now(self, order: Order, instrument: Instrument, **kwargs: Any) -> Any:
        self.calls.append(("amend_now", order.cl_ord_id))

        async def answer() -> None:
            raise RuntimeError("a bug in the answer")

        return answer()


@asynccontextmanager
async def _engine(
    sim_factory: SimFactory, tmp_path: Path, kind: type[_Amends] | None = None, **options: Any
) -> AsyncIterator[tuple[Harness, _Amends, ExecutionEngine, Store]]:
    """The harness, a recording venue (``kind``, default ``_Amends``) on it, and a running
    engine on that venue (``options``: ``running_engine``'s)."""
    async with harness(sim_factory) as h:
        venue = (kind or _Amends)(h.venue)
        async with running_engine(h, tmp_path, venue=venue, **options) as (engine, store):
            venue.engine = engine
            yield h, venue, engine, store


async def _live(engine: ExecutionEngine, h: Harness, price: str = "49000") -> Order:
    placed = await engine.place(_bid(engine, h, price))
    order = await engine.wait_settled(placed.cl_ord_id, timeout_s=WAIT_S)
    assert order.state is OrderState.NEW and order.order_id is not None
    return order


async def _amended(engine: ExecutionEngine, cid: str, price: int) -> Order:
    """The order once its amend is settled, at ``price``."""

    def done() -> bool:
        order = engine.order(cid)
        return order is not None and not order.amend_pending and order.price == price

    await until(done, "the amend settled")
    order = engine.order(cid)
    assert order is not None
    return order


async def test_the_engine_writes_a_submitted_amend_before_submit_returns(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with _engine(sim_factory, tmp_path) as (h, venue, engine, store):
        order, new = await _live(engine, h), h.inst.price("48000")
        cid, before = order.cl_ord_id, _counter(h)
        assert engine.submit(AmendOrder(order, h.inst, None, new))
        young = TradingCounter.amend_cost(0).total  # acked under 5 s ago: the dearest band
        assert _counter(h) == pytest.approx(before + young, abs=0.05)
        flagged = engine.order(cid)  # flagged before anything could answer it
        assert flagged is not None and flagged.amend_pending
        row = store.get_order(cid)
        assert row is not None and not row.amend_pending  # the flag's row is not written
        assert h.entry.in_flight == 1  # its request is out, waiting for the answer
        await until(lambda: _sim_price(h, cid) == new, "the amend on the sim")
        assert (await _amended(engine, cid, new)).qty == order.qty
        row = store.get_order(cid)
        assert row is not None and (row.price, row.amend_pending) == (new, False)
    assert venue.calls == [("place", cid), ("amend_now", cid)]
    assert venue.flagged == [False]  # the frame was written before the flag
    assert h.entry.stats.of("amend_order").ok == 1 and h.rest.writes == []


async def test_the_engine_resolves_a_lost_answer_of_an_amend_written_at_submit(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with _engine(sim_factory, tmp_path) as (h, venue, engine, _):
        order, new = await _live(engine, h), h.inst.price("48000")
        cid = order.cl_ord_id
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="amend_order")
        assert engine.submit(AmendOrder(order, h.inst, None, new))
        await _amended(engine, cid, new)  # looked up: Kraken's numbers say it happened
    stats = h.entry.stats.of("amend_order")
    assert (stats.lost, stats.ok) == (1, 0)  # one amend request in all: never resent
    assert venue.calls == [("place", cid), ("amend_now", cid)] and h.rest.writes == []


async def test_an_amend_now_that_raises_after_writing_is_looked_up(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with _engine(sim_factory, tmp_path, _AmendWritesThenRaises) as (h, venue, engine, _):
        order, new = await _live(engine, h), h.inst.price("48000")
        cid = order.cl_ord_id
        assert engine.submit(AmendOrder(order, h.inst, None, new))  # its fate: a lookup's
        flagged = engine.order(cid)
        assert flagged is not None and flagged.amend_pending
        await _amended(engine, cid, new)
    assert venue.calls == [("place", cid), ("amend_now", cid)]  # never sent again


async def test_an_amend_now_that_raises_before_writing_is_looked_up_all_the_same(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Nothing left, so no report will ever clear the flag: only the lookup does, and it
    finds the order as it was."""
    async with _engine(sim_factory, tmp_path, _RaisesBeforeWriting) as (h, venue, engine, _):
        order = await _live(engine, h)
        cid = order.cl_ord_id
        assert engine.submit(AmendOrder(order, h.inst, None, h.inst.price("48000")))
        settled = await _amended(engine, cid, order.price or 0)
        assert settled.qty == order.qty and settled.state is OrderState.NEW
    assert _sim_price(h, cid) == order.price and h.entry.stats.of("amend_order").ok == 0
    assert venue.calls == [("place", cid), ("amend_now", cid)]


async def test_an_amend_whose_answer_raises_a_bug_is_looked_up(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The command's task ends with the bug, and the amend is in doubt: nothing was
    written, so no report will clear the flag; the lookup does, with Kraken's numbers."""
    crashed: list[BaseException] = []
    running = _engine(sim_factory, tmp_path, _AnswerRaises, crashed=crashed)
    async with running as (h, venue, engine, _):
        order = await _live(engine, h)
        cid = order.cl_ord_id
        assert engine.submit(AmendOrder(order, h.inst, None, h.inst.price("48000")))
        settled = await _amended(engine, cid, order.price or 0)
        assert (settled.state, settled.qty) == (OrderState.NEW, order.qty)
    assert [str(x) for x in crashed] == ["a bug in the answer"]
    assert venue.calls == [("place", cid), ("amend_now", cid)]


async def test_a_refused_amend_written_at_submit_is_told_and_unflagged(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    refused: list[tuple[Command, Refusal]] = []
    async with _engine(sim_factory, tmp_path, refused=refused) as (h, venue, engine, _):
        order = await _live(engine, h)
        cid = order.cl_ord_id
        await h.sim.venue.faults.inject(
            kind="ws_order_error", endpoint="amend_order", error="EOrder:Insufficient funds"
        )
        amend = AmendOrder(order, h.inst, None, h.inst.price("48000"))
        assert engine.submit(amend)
        await until(lambda: refused != [], "the refusal told")
        after = engine.order(cid)
        assert after is not None and not after.amend_pending
        assert (after.price, after.reason) == (order.price, "EOrder:Insufficient funds")
    ((command, why),) = refused
    assert command is amend and (why.source, why.reason) == ("exchange", after.reason)
    assert venue.calls == [("place", cid), ("amend_now", cid)] and h.rest.writes == []


async def test_an_amend_of_a_done_order_is_refused_and_never_written(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    refused: list[tuple[Command, Refusal]] = []
    async with _engine(sim_factory, tmp_path, refused=refused) as (h, venue, engine, _):
        order = await _live(engine, h)
        cid = order.cl_ord_id
        gone = await engine.cancel(cid)
        await until(lambda: (x := engine.order(cid)) is not None and x.is_terminal, "gone")
        assert engine.submit(AmendOrder(gone, h.inst, None, h.inst.price("48000")))
        await until(lambda: refused != [], "the refusal told")
    ((_, why),) = refused
    assert (why.source, why.reason) == ("engine", "unavailable")
    assert venue.calls == [("place", cid), ("cancel", cid)]  # no amend, by either way
    assert h.entry.stats.of("amend_order").ok == 0


async def test_an_amend_check_decides_is_written_at_submit_too(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The exchange in ``post_only``: no amend is decided on its values (only an online
    exchange takes every amend). ``check`` takes the post-only order's, which is written at
    ``submit`` all the same, before its flag; it refuses the other's, never written."""
    state = {"status": "online"}
    refused: list[tuple[Command, Refusal]] = []
    running = _engine(sim_factory, tmp_path, status=lambda: state["status"], refused=refused)
    async with running as (h, venue, engine, _):
        placed = await engine.place(_bid(engine, h, "49000", post_only=True))
        maker = await engine.wait_settled(placed.cl_ord_id, timeout_s=WAIT_S)
        plain = await _live(engine, h, "47000")
        state["status"] = "post_only"
        new = h.inst.price("48000")
        taker = AmendOrder(plain, h.inst, None, new)
        assert not engine.submit(taker)
        ((command, why),) = refused
        assert command is taker and why.reason == "exchange_status"
        assert engine.submit(AmendOrder(maker, h.inst, None, new))
        cid = maker.cl_ord_id
        assert venue.calls[-1] == ("amend_now", cid)  # at submit
        await _amended(engine, cid, new)
    assert [c for c in venue.calls if c[0].startswith("amend")] == [("amend_now", cid)]
    assert venue.flagged == [False] and h.rest.writes == []


async def test_an_amend_decided_on_its_values_with_the_link_down_goes_over_rest(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Accepted at once, but the socket cannot write it now: its task sends it, over REST,
    and the pre-trade stage is not asked again."""
    async with _engine(sim_factory, tmp_path) as (h, venue, engine, _):
        order, new = await _live(engine, h), h.inst.price("48000")
        cid = order.cl_ord_id
        h.keeper.open.clear()  # the next connection waits for its token
        await h.sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
        await until(lambda: not h.entry.ready, "the link down")
        assert engine.submit(AmendOrder(order, h.inst, None, new))
        await _amended(engine, cid, new)
        h.keeper.open.set()
    assert venue.calls == [("place", cid), ("amend_now", cid), ("amend", cid)]
    assert h.rest.writes == ["amend"] and _sim_price(h, cid) == new


async def test_an_amend_of_an_order_in_flight_takes_the_general_way(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The place written at ``submit`` has no answer yet: the amend cannot be written now.
    It waits for the order as ``amend`` waits, then goes."""
    async with _engine(sim_factory, tmp_path) as (h, venue, engine, _):
        place = _bid(engine, h, "49000")
        cid, new = place.order.cl_ord_id, h.inst.price("48000")
        assert engine.submit(place)  # written now, its answer to come
        in_flight = engine.order(cid)
        assert in_flight is not None and in_flight.order_id is None
        assert engine.submit(AmendOrder(in_flight, h.inst, None, new))
        assert venue.calls == [("place_now", cid)]  # the amend not written at submit
        await _amended(engine, cid, new)
    assert venue.calls == [("place_now", cid), ("amend", cid)]
    assert _sim_price(h, cid) == new and h.rest.writes == []


@pytest.mark.parametrize("eager", [True, False])
async def test_an_amend_tells_the_same_story_either_way(
    sim_factory: SimFactory, tmp_path: Path, eager: bool
) -> None:
    """Written at ``submit`` (the desk's eager tasks) or by its task later: the same
    changes told (flagged, then amended at its new numbers), the same end, one request."""
    seen: list[Order] = []
    async with _engine(sim_factory, tmp_path, eager=eager, seen=seen) as (h, venue, e, _):
        order = await _live(e, h)
        cid, new_qty, new_price = order.cl_ord_id, h.inst.qty("0.02"), h.inst.price("48000")
        seen.clear()
        assert e.submit(AmendOrder(order, h.inst, new_qty, new_price))
        await _amended(e, cid, new_price)
    story = [(x.state, x.amend_pending, x.qty, x.price) for x in seen if x.cl_ord_id == cid]
    new = OrderState.NEW
    assert story == [(new, True, order.qty, order.price), (new, False, new_qty, new_price)]
    assert venue.calls[1:] == [("amend_now" if eager else "amend", cid)]
    assert h.entry.stats.of("amend_order").ok == 1 and h.rest.writes == []
    (on_sim,) = h.on_sim_with(cid)
    assert (on_sim.qty, on_sim.price) == (new_qty, new_price)


async def test_an_amend_written_just_before_a_crash_is_adopted_at_the_next_start(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The frame leaves, and the process dies before the flag's row: the row still says the
    old numbers. The next start's reconciliation finds Kraken's and adopts them."""
    async with harness(sim_factory) as h:
        async with running_engine(h, tmp_path) as (engine, _):
            order = await _live(engine, h)
        h.listeners.clear()  # the dead process hears nothing more
        cid, new = order.cl_ord_id, h.inst.price("48000")
        answer = h.venue.amend_now(order, h.inst, qty=None, price=new, order_age_s=1)
        assert answer is not None
        await answer  # carried out by Kraken; the dead process never flagged it
        async with running_engine(h, tmp_path) as (engine, store):
            again = engine.order(cid)
            assert again is not None
            assert (again.state, again.price, again.amend_pending) == (OrderState.NEW, new, False)
            row = store.get_order(cid)
            assert row is not None and row.price == new
