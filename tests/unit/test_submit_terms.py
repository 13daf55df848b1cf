"""A place decided and written on its values (``submit_terms``) is ``submit``'s, to the byte.

Two identical daemons' order paths, each a real running ``ExecutionEngine`` (reconciled on
a ``PaperVenue`` that can write a place at ``submit``: ``place_now``), its pre-trade stage
(a readiness probe, the exchange's state, the rate room, a ``RiskGate`` with random limits
and states) and the desk's eager task per command, are driven with the same ticks through a
``PreparedOrder`` (or ``ctx.place``): one context hands its places on by their ``PlaceTerms``
(``EngineContext``: the engine decides and writes before the ``Order`` is made), the other
never does (``_submit_terms`` declines: the ``Order``, its handle, then ``submit``). The
requests written, the venue's calls, the orders the engines hold, the handles, the
refusals counted and the risk gate's counts must be the same after every tick, and again
once every answer was applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from bot.execution.commands import PlaceOrder
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.orders import Order, OrderTerms, PlaceTerms
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate, RiskLimits
from bot.execution.ws_requests import AddOrderFrames
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.store import Store
from bot.strategy import InvalidIntent, OrderHandle, PreparedOrder
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from tests.unit.paper_venue import PaperVenue
from tests.unit.test_prepared_order import SYMBOL, World, instruments, limits, loaded_books

_CID = re.compile(rb"[0-9a-f]{32}")


class NowVenue(PaperVenue):
    """``PaperVenue`` with ``place_now``: each request written is kept (its id made common:
    each store issues its own), and answered by the venue's ``place``; ``mode``: write,
    decline (None: the engine sends it later) or raise after writing (a bug)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.written: list[bytes] = []
        self._frames = AddOrderFrames()

    def place_now(
        self, order: OrderTerms, instrument: Instrument
    ) -> Coroutine[Any, Any, str] | None:
        if self.mode == "decline":
            return None
        frame = self._frames(order, instrument, token="t", req_id=7)
        self.written.append(_CID.sub(b"<id>", frame))
        if self.mode == "raise":
            raise RuntimeError("a bug after the write")
        return self._answer(order, instrument)

    async def _answer(self, terms: OrderTerms, instrument: Instrument) -> str:
        self.calls.append("place_now")
        self._seq += 1
        return f"V{self._seq}"


def _roomy(limits: RiskLimits) -> RiskLimits:
    """``limits`` with the counts' limits wide enough for a few orders."""
    return dataclasses.replace(
        limits,
        max_open_orders=None if limits.max_open_orders is None else limits.max_open_orders + 4,
        max_orders_per_minute=(
            None if limits.max_orders_per_minute is None else limits.max_orders_per_minute + 4
        ),
    )


class GeneralContext(EngineContext):
    """The daemon's context, never taking a place by its terms: ``submit`` decides all."""

    def _submit_terms(
        self, terms: PlaceTerms, instrument: Instrument, make: Callable[[], PlaceOrder]
    ) -> bool:
        return False


class Side_:
    """One order path, as the daemon wires it, on a temporary store."""

    def __init__(self, world: World, draw: dict[str, Any], directory: Path, lane: bool) -> None:
        clock = self.clock = FakeClock()
        self.store = Store.open(directory / f"{lane}.sqlite")
        table = InstrumentTable([world.inst])
        books = loaded_books(world)
        positions = PositionBook(clock)
        self.risk = risk = RiskGate(clock, positions, world.limits, {"s": world.limits})
        if draw["halted"] is not None:
            risk.halt("test", strategy=draw["halted"])
        self.desk = desk = Desk(
            risk=risk, positions=positions, instruments=table, books=lambda: books, clock=clock
        )
        desk.accepting = draw["accepting"]
        gate = ReadinessGate(clock=clock)
        pretrade = PreTrade(
            gate, risk=risk, mids=desk.marks.live,
            room=RateRoom(lambda _symbol: world.room, lambda: 20.0),
            exchange_status=lambda: world.status, on_transitions=desk.router.apply_transitions,
        )  # fmt: skip
        if draw["followed"]:  # as the daemon: followed, its owner telling (here: never
            gate.follow("feed", lambda: world.ready, until=lambda: clock.monotonic() + 1.0)
            pretrade.follow_status()  # changes), so a place reads no probe and no state
        else:
            gate.add("feed", lambda: world.ready)
        self.venue = NowVenue(draw["mode"])
        self.engine = ExecutionEngine(
            self.venue, self.store, table, clock, readiness=gate, pretrade=pretrade,
            spawn=desk.tasks.spawn, on_order=desk.router.on_order,
            on_refused=desk.router.on_refused, config=EngineConfig(confirm_via_rest=False),
        )  # fmt: skip
        self.engine.prepare_ids(["s"])
        kind = EngineContext if lane else GeneralContext
        self.ctx = kind(self.engine, desk, "s", (SYMBOL,))
        desk.add_context(self.ctx)

    def seen(self) -> list[Any]:
        """Everything the path did so far, ids made common."""
        orders = sorted((_common(o) for o in self.engine.open_orders()), key=lambda o: o.created_ns)
        handles = [
            (h.state, h.reason, _common(h.order))
            for h in sorted(self.desk.handles.open("s", None), key=lambda h: h.order.created_ns)
        ]
        risk = self.risk
        return [
            self.venue.written, self.venue.calls, orders, handles,
            dict(self.desk.refusals.counts()),
            (risk.accepted, risk.fast_accepted, risk.rejections(), risk.orders_in_window("s")),
        ]  # fmt: skip


def _common(order: Order) -> Order:
    return dataclasses.replace(order, cl_ord_id="0" * 32, created_ns=0, updated_ns=0)


@contextmanager
def two_sides(world: World, draw: dict[str, Any]) -> Iterator[tuple[Side_, Side_]]:
    with tempfile.TemporaryDirectory() as tmp:
        general = Side_(world, draw, Path(tmp), lane=False)
        lane = Side_(world, draw, Path(tmp), lane=True)
        try:
            yield general, lane
        finally:
            general.store.close()
            lane.store.close()


async def _drive(sides: tuple[Side_, Side_], draw: dict[str, Any], ticks: list[int]) -> None:
    async with asyncio.TaskGroup() as tg:
        runs = [tg.create_task(side.engine.run()) for side in sides]
        async with asyncio.timeout(5):
            while not all(s.engine.readiness.passes(["reconciled"]) for s in sides):  # noqa: ASYNC110 (their run tasks)
                await asyncio.sleep(0)
        for side in sides:
            side.desk.tasks.spawn_task = tg.create_task
            if draw["evaluated"]:  # the desk's periodic work ran (the day's loss evaluated)
                side.desk.periodic()
        prepared = [
            PreparedOrder(side.ctx, SYMBOL, draw["side"], draw["qty"], post_only=draw["post"])
            for side in sides
        ]
        for units in ticks:
            outcomes = []
            for side, order in zip(sides, prepared, strict=True):
                try:
                    if draw["via"] == "units":
                        handle: OrderHandle | None = order.place_units(units)
                    else:  # ``ctx.place`` itself goes the same way
                        price = from_scaled(units, order.price_precision)
                        handle = side.ctx.place(
                            SYMBOL, draw["side"], draw["qty"], price, post_only=draw["post"]
                        )
                except InvalidIntent as exc:
                    handle = None
                    outcomes.append(("raised", exc.reason))
                if handle is not None:
                    outcomes.append((handle.state, handle.reason, _common(handle.order)))
                if draw["batch"]:  # the next tick inside a batch block, kept for it
                    side.ctx.batch().__enter__()
            general, lane = sides
            assert outcomes[0] == outcomes[1]
            assert lane.seen() == general.seen()
        for _ in range(20):  # every answer applied
            await asyncio.sleep(0)
        assert sides[1].seen() == sides[0].seen()
        for side in sides:
            side.desk.tasks.spawn_task = None
        for run in runs:
            run.cancel()


# Mostly the common case (the lane's), with every other case mixed in.
worlds = st.builds(
    World,
    inst=instruments,
    limits=st.one_of(limits, st.just(RiskLimits()), limits.map(_roomy)),
    ready=st.sampled_from([True, True, True, False]),
    status=st.sampled_from(["online", "online", "online", "post_only", "cancel_only"]),
    room=st.sampled_from([100.0, 100.0, 5.0, 0.0]),
    best_bid=st.integers(100, 10**6),
)
draws = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["write", "write", "write", "decline", "raise"]),
        "halted": st.sampled_from([None, None, None, "s"]),
        "accepting": st.sampled_from([True, True, True, False]),
        "batch": st.sampled_from([False, False, False, True]),
        "side": st.sampled_from(["buy", "sell"]),
        "post": st.booleans(),
        "evaluated": st.sampled_from([True, True, True, False]),
        "via": st.sampled_from(["units", "place"]),
        "followed": st.booleans(),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds, draw=draws, data=st.data())
def test_a_place_decided_on_its_terms_is_submits_own(
    world: World, draw: dict[str, Any], data: st.DataObject
) -> None:
    world = dataclasses.replace(world, inst=dataclasses.replace(world.inst, qty_min=0))
    bid = world.best_bid
    ticks = data.draw(
        st.lists(
            st.integers(bid // 2, bid * 2).map(lambda n: n - n % world.inst.price_increment),
            min_size=1,
            max_size=6,
        )
    )
    lots = data.draw(st.integers(1, 10**4))  # the quantity, on the pair's lot
    draw = {**draw, "qty": from_scaled(lots * world.inst.qty_increment, world.inst.qty_precision)}
    with two_sides(world, draw) as sides:
        asyncio.run(_drive(sides, draw, ticks))


def test_the_lane_is_taken_in_the_common_case() -> None:
    """A test of the test: with every check clear, the lane writes before the order is
    made (the engine holds no order for the handle until ``make`` runs), and both sides
    end the same."""
    inst = Instrument(SYMBOL, "BTC", "USD", 1, 4, qty_min=1)
    world = World(inst, RiskLimits(), True, "online", 100.0, 500_000)
    draw = {
        "mode": "write", "halted": None, "accepting": True, "batch": False, "side": "buy",
        "qty": Decimal("0.01"), "post": True, "evaluated": False, "via": "units", "followed": True,
    }  # fmt: skip
    with two_sides(world, draw) as sides:
        made: list[int] = []
        lane = sides[1]
        submit_terms = lane.engine.submit_terms

        def watched(terms: PlaceTerms, inst: Instrument, strategy: str, make: Any) -> bool:
            def counted() -> PlaceOrder:
                made.append(len(lane.venue.written))  # requests written before it was made
                return make()  # type: ignore[no-any-return]

            return submit_terms(terms, inst, strategy, counted)

        lane.engine.submit_terms = watched  # type: ignore[method-assign]
        asyncio.run(_drive(sides, draw, [499_000, 499_100, 499_200]))
        # The first place is ``check``'s: it evaluates the day's loss first (the gate had
        # not yet); the next two are decided on their terms and written before being made.
        assert made == [2, 3]
        assert lane.risk.fast_accepted == 3  # the first by check's own fast path
        states = [h.order.state.value for h in lane.desk.handles.open("s", None)]
        assert states == ["new", "new", "new"]
