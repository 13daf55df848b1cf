"""The engine, the dead-man's switch and the token keeper through the venue port, on a
second implementation of it written by hand (``tests.unit.paper_venue``), passed through
their constructors: no network, no Kraken wire format, a real SQLite store, a fake clock.

What the engine asks of a venue is pinned call by call, so a venue that answers as the
contract says (``bot.execution.venue``) needs no change to the engine. The last test puts
the daemon's strategy context on such an engine beside the test harness's context, and
finds the same commands in both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import InsufficientFunds, RejectedError, RiskError
from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.deadman import DeadmanSwitch
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.orders import Fill, Order, OrderState, transition
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate, RiskLimits
from bot.execution.tokens import TokenKeeper
from bot.execution.venue import ExecutionsSubscribed, Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.instruments import InstrumentTable
from bot.kraken.rest import KrakenRestClient
from bot.sim.pairs import default_instruments
from bot.store import Store
from bot.strategy import OrderHandle
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.testing import FakeContext
from tests.loopback.placing import command
from tests.unit.paper_venue import PaperVenue

S = OrderState
D = Decimal
TABLE = InstrumentTable(default_instruments(("BTC/USD",)).values())
BTC = TABLE["BTC/USD"]


@dataclass
class Rig:
    venue: PaperVenue
    engine: ExecutionEngine
    clock: FakeClock
    store: Store
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def command(self, qty: str = "0.01", price: str = "50000", **fields: Any) -> PlaceOrder:
        fields.setdefault("strategy", "s")
        return command(
            self.engine, self.clock, BTC, "buy", BTC.qty(qty), BTC.price(price), **fields
        )

    def on_order(self, order: Order) -> None:
        self.events.append(("order", order.cl_ord_id, order.state, order.filled_qty))

    def on_fill(self, fill: Fill, order: Order) -> None:
        self.events.append(("fill", fill.exec_id, order.state, order.filled_qty))

    def on_refused(self, command: Command, refusal: Refusal, order: Order | None) -> None:
        self.events.append(("refused", type(command).__name__, refusal.source, refusal.reason,
                            None if order is None else order.state))  # fmt: skip


@asynccontextmanager
async def engine_on(
    venue: PaperVenue, db: Path, pretrade: Callable[[ReadinessGate], PreTrade] | None = None
) -> AsyncIterator[Rig]:
    """The engine on ``venue`` (its events pushed to the engine's sink), started and
    reconciled; ``pretrade``: the stage, built on the engine's gate."""
    clock = FakeClock(auto_advance=True)
    store = Store.open(db)
    gate = ReadinessGate(clock=clock)
    rig = Rig(venue, None, clock, store)  # type: ignore[arg-type]
    rig.engine = ExecutionEngine(
        venue, store, TABLE, clock, readiness=gate,
        pretrade=None if pretrade is None else pretrade(gate),
        on_order=rig.on_order, on_fill=rig.on_fill, on_refused=rig.on_refused,
        config=EngineConfig(grace_s=5.0, resolve_wait_s=5.0),
    )  # fmt: skip
    rig.engine.prepare_ids(["s"])
    venue.sink = rig.engine.on_private
    task = asyncio.create_task(rig.engine.run())
    try:
        async with asyncio.timeout(5):
            await rig.engine.readiness.wait()
        yield rig
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Let the engine's tasks run until ``predicate`` holds (bounded: they never sleep
    in real time here)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the engine never got there")


def test_both_implementations_have_every_member_of_the_port() -> None:
    rest = KrakenRestClient("http://127.0.0.1:9", clock=FakeClock())  # never called
    assert isinstance(KrakenRestVenue(rest, TABLE), Venue)
    assert isinstance(PaperVenue(), Venue)


async def test_place_amend_and_cancel_through_the_port(tmp_path: Path) -> None:
    venue = PaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        order = await rig.engine.place(rig.command())
        assert (order.state, order.order_id) == (S.NEW, "V1")
        assert venue.orders["V1"].cl_ord_id == order.cl_ord_id
        amended = await rig.engine.amend(order.cl_ord_id, price=BTC.price("49000"))
        assert amended.price == BTC.price("49000") and not amended.amend_pending
        assert venue.orders["V1"].limit_price == D("49000.0")
        done = await rig.engine.cancel(order.cl_ord_id)
        assert done.state is S.CANCELED
    # No executions come from this venue (no subscription): each write is confirmed by
    # a query; the startup reconciliation read the open orders.
    assert venue.calls == [
        "open_orders", "place", "query_orders", "amend", "cancel", "query_orders"
    ]  # fmt: skip


async def test_the_venues_own_events_drive_states_and_fills(tmp_path: Path) -> None:
    """A venue that pushes its executions (as the simulator venue of a backtest will):
    each fill reaches ``on_fill`` with its order already showing it, then ``on_order``."""
    venue = PaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        rig.engine.on_private(ExecutionsSubscribed(snapshot=None))  # the venue's stream is live
        await until(lambda: rig.engine.readiness.is_open)
        order = await rig.engine.place(rig.command())
        assert venue.calls.count("query_orders") == 0  # its events confirm: no query
        rig.events.clear()
        venue.fill("V1", "0.004", "50000", ts_ns=rig.clock.time_ns(), push=True)
        venue.fill("V1", "0.006", "50000", ts_ns=rig.clock.time_ns(), push=True)
        cid = order.cl_ord_id
        assert rig.events == [
            ("fill", "T2", S.PARTIALLY_FILLED, BTC.qty("0.004")),
            ("order", cid, S.PARTIALLY_FILLED, BTC.qty("0.004")),
            ("fill", "T3", S.FILLED, BTC.qty("0.01")),
            ("order", cid, S.FILLED, BTC.qty("0.01")),
        ]
        assert [f.exec_id for f in rig.store.fills_since(0)] == ["T2", "T3"]


async def test_a_lost_answer_is_looked_up_never_resent(tmp_path: Path) -> None:
    venue = PaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        venue.lose_next_answer = True
        order = await rig.engine.place(rig.command())
        assert order.state is S.UNKNOWN and order.order_id is None
        await until(lambda: (rig.engine.order(order.cl_ord_id) or order).state is S.NEW)
        found = rig.engine.order(order.cl_ord_id)
        assert found is not None and found.order_id == "V1"
    assert venue.calls.count("place") == 1  # never resent


async def test_a_refused_place_is_recorded_with_the_venues_reason(tmp_path: Path) -> None:
    venue = PaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        venue.refuse_next = InsufficientFunds("EOrder:Insufficient funds")
        order = await rig.engine.place(rig.command())
        assert (order.state, order.reason) == (S.REJECTED, "EOrder:Insufficient funds")
        stored = rig.store.get_order(order.cl_ord_id)
        assert stored is not None and stored.state is S.REJECTED
        assert not [e for e in rig.events if e[0] == "refused"]  # its state tells it


async def test_submit_runs_the_pre_trade_stage_once_per_command(tmp_path: Path) -> None:
    """One order a minute and at most 0.05 BTC: a place over the size is refused by the
    risk gate, nothing sent; the next is accepted (counted once, or it could not pass the
    rate limit of one) and placed; the one after is over the rate. A cancel always passes.
    A closed readiness check refuses a place before the risk gate counts it."""
    venue = PaperVenue()
    limits = RiskLimits(max_order_qty=D("0.05"), max_orders_per_minute=1)
    risk: list[RiskGate] = []

    def stage(gate: ReadinessGate) -> PreTrade:
        clock = FakeClock()
        risk.append(RiskGate(clock, PositionBook(clock), limits))
        return PreTrade(gate, risk=risk[0])

    async with engine_on(venue, tmp_path / "bot.db", stage) as rig:
        assert not rig.engine.submit(rig.command(qty="0.1"))
        assert rig.events == [("refused", "PlaceOrder", "risk", "max_order_qty", None)]
        assert venue.calls == ["open_orders"]  # nothing sent
        first = rig.command()
        assert rig.engine.submit(first)
        await until(lambda: (rig.engine.order(first.cl_ord_id) or first.order).state is S.NEW)
        assert risk[0].accepted == 1
        assert not rig.engine.submit(rig.command())
        assert rig.events[-1] == ("refused", "PlaceOrder", "risk", "order_rate", None)
        placed = rig.engine.order(first.cl_ord_id)
        assert placed is not None
        assert rig.engine.submit(CancelOrder(placed))
        assert rig.engine.cancelling(first.cl_ord_id)  # until its task has run
        await until(lambda: not rig.engine.cancelling(first.cl_ord_id))
        assert (rig.engine.order(first.cl_ord_id) or placed).state is S.CANCELED
        rig.engine.readiness.add("books")  # a check that fails
        assert not rig.engine.submit(rig.command())
        assert rig.events[-1] == ("refused", "PlaceOrder", "desk", "not_ready", None)
        with pytest.raises(RiskError, match="waiting for: books"):
            await rig.engine.place(rig.command())
    assert venue.calls.count("place") == 1


async def test_a_submitted_amend_the_venue_refuses_is_told_with_the_order(
    tmp_path: Path,
) -> None:
    venue = PaperVenue()
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        order = await rig.engine.place(rig.command())
        venue.refuse_next = RejectedError("EOrder:Unknown order")
        assert rig.engine.submit(AmendOrder(order, BTC, None, BTC.price("49000")))
        await until(lambda: rig.events[-1][0] == "refused")
        assert rig.events[-1] == ("refused", "AmendOrder", "exchange", "EOrder:Unknown order",
                                  S.NEW)  # fmt: skip
        now = rig.engine.order(order.cl_ord_id)
        assert now is not None and not now.amend_pending


async def test_reconciliation_recovers_fills_page_after_page(tmp_path: Path) -> None:
    """Three orders filled at the venue while no events came: one reconciliation reads
    the trade history in pages (two trades a page here) and records each fill once."""
    venue = PaperVenue(page=2)
    async with engine_on(venue, tmp_path / "bot.db") as rig:
        orders = [await rig.engine.place(rig.command()) for _ in range(3)]
        for order in orders:
            assert order.order_id is not None
            venue.fill(order.order_id, "0.01", "50000", ts_ns=rig.clock.time_ns(), push=False)
        rig.events.clear()
        await rig.engine.reconcile()
        fills = [e for e in rig.events if e[0] == "fill"]
        assert sorted(e[1] for e in fills) == ["T4", "T5", "T6"]
        assert all(e[2] is S.FILLED for e in fills)
        assert venue.calls.count("trades") == 2  # 3 trades, 2 a page
        await rig.engine.reconcile()
        assert len([e for e in rig.events if e[0] == "fill"]) == 3  # once each


async def test_the_switch_and_the_keeper_through_the_port() -> None:
    venue, clock = PaperVenue(), FakeClock()
    switch = DeadmanSwitch(venue, clock, timeout_s=60)
    await switch.arm()
    assert venue.switch_s == 60 and switch.armed
    assert switch.seconds_to_trigger() == 60
    await switch.disarm()
    assert venue.switch_s == 0 and not switch.armed
    keeper = TokenKeeper(venue, clock)
    token = await keeper.fresh()
    assert token.startswith("token-") and keeper.stats.last_expires_s == 900
    assert venue.calls == ["cancel_after", "cancel_after", "ws_token"]


class RecordingEngine(ExecutionEngine):
    """The real engine, keeping each command it is submitted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submitted: list[Command] = []

    def submit(self, command: Command) -> bool:
        self.submitted.append(command)
        return super().submit(command)


def what(commands: list[Command]) -> list[tuple[Any, ...]]:
    """Each command as what it asks, ids replaced by the place they refer to."""
    ids = [c.cl_ord_id for c in commands if isinstance(c, PlaceOrder)]
    out: list[tuple[Any, ...]] = []
    for c in commands:
        if isinstance(c, PlaceOrder):
            fields = (c.order_type, c.time_in_force, c.post_only)
            out.append(("place", c.strategy, c.symbol, c.side, c.qty, c.price, *fields))
        elif isinstance(c, AmendOrder):
            out.append(("amend", ids.index(c.cl_ord_id), c.qty, c.price))
        else:
            out.append(("cancel", ids.index(c.cl_ord_id)))
    return out


async def test_the_harness_records_the_commands_the_daemon_submits(tmp_path: Path) -> None:
    """The same calls on the daemon's context (its engine on a venue) and on the test
    harness's: the same commands, field for field (ids aside, which each issues)."""
    clock = FakeClock(auto_advance=True)
    store = Store.open(tmp_path / "bot.db")
    positions = PositionBook(clock)
    desk = Desk(risk=RiskGate(clock, positions), positions=positions, instruments=TABLE,
                books=dict, clock=clock)  # fmt: skip
    engine = RecordingEngine(
        PaperVenue(), store, TABLE, clock, spawn=desk.tasks.spawn,
        on_order=desk.router.on_order, on_fill=desk.router.on_fill,
        on_refused=desk.router.on_refused,
    )  # fmt: skip
    task = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(5):
            await engine.readiness.wait()
        desk.tasks.spawn_task = asyncio.get_running_loop().create_task
        daemon = EngineContext(engine, desk, "s", ("BTC/USD",))
        harness = FakeContext("s", ("BTC/USD",), [BTC], clock=clock)
        for ctx in (daemon, harness):
            bid = ctx.place("BTC/USD", "buy", D("0.01"), D("50000"), post_only=True)
            ask = ctx.place("BTC/USD", "sell", D("0.02"), D("51000.5"), time_in_force="IOC")
            cancelled_early = ctx.cancel(ask)  # still PENDING_NEW: a cancel all the same
            if ctx is daemon:
                await desk.tasks.drain()
            else:
                for handle in (bid, ask):  # the harness plays the exchange: acknowledged
                    harness_ack(harness, handle)
            assert cancelled_early and bid.is_live
            assert ctx.amend(bid, qty=D("0.03"), price=D("49999.9"))
            assert ctx.cancel_all() == 1  # the bid; the ask's cancel is in flight or done
        await desk.tasks.drain()
        assert what(engine.submitted) == what(harness.commands)
        assert [type(c) for c in harness.commands] == [
            PlaceOrder, PlaceOrder, CancelOrder, AmendOrder, CancelOrder
        ]  # fmt: skip
    finally:
        desk.tasks.spawn_task = None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()


def harness_ack(ctx: FakeContext, handle: OrderHandle) -> None:
    """The exchange's acknowledgement, as the harness plays it (``StrategyHarness.ack``)."""
    order = handle.order
    if order.state is S.PENDING_NEW:
        handle.update(transition(order, S.NEW, now_ns=0, order_id=f"O{order.cl_ord_id[:6]}"))
