"""``OrderTasks.spawn``: a command's task starts eagerly in the daemon's group, or not at all.

A real ``ExecutionEngine`` (its stage with a real ``RiskGate`` without limits and an open
readiness gate) on a real SQLite store (its REST client never reaches a venue here), given
the desk's ``spawn``; the group the desk spawns into is a hand-written stand-in that is
closing, as a ``TaskGroup`` is once a sibling failed: ``create_task`` raises
``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.core.clock import FakeClock
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import OrderState
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.readiness import RECONCILED, ReadinessGate
from bot.execution.risk import RiskGate
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.instruments import InstrumentTable
from bot.kraken.rest import KrakenRestClient
from bot.sim.pairs import default_instruments
from bot.store import Store
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk


class ClosingGroup:
    """A TaskGroup that is shutting down."""

    def __init__(self) -> None:
        self.refused = 0

    def create_task(
        self, coro: Coroutine[Any, Any, Any], *, context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        self.refused += 1
        raise RuntimeError("TaskGroup is shutting down")


async def test_an_intent_the_closing_group_cannot_run_is_refused_not_left_pending(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    store = Store.open(tmp_path / "bot.db")
    try:
        instruments = InstrumentTable(default_instruments(("BTC/USD",)).values())
        rest = KrakenRestClient("http://127.0.0.1:9", clock=clock)  # never called here
        positions = PositionBook(clock)
        risk = RiskGate(clock, positions)
        desk = Desk(
            risk=risk, positions=positions, instruments=instruments, books=dict, clock=clock
        )
        gate = ReadinessGate(clock=clock)
        engine = ExecutionEngine(
            KrakenRestVenue(rest, instruments), store, instruments, clock,
            pretrade=PreTrade(gate, risk=risk), spawn=desk.tasks.spawn,
            on_order=desk.router.on_order, on_refused=desk.router.on_refused,
        )  # fmt: skip
        engine.readiness.set(RECONCILED)
        group = ClosingGroup()
        desk.tasks.spawn_task = group.create_task
        ctx = EngineContext(engine, desk, "s", ("BTC/USD",))
        assert group.refused == 1  # no task kept ready for the first command
        handle = ctx.place("BTC/USD", "buy", Decimal("0.001"), Decimal("1000.0"))
        assert group.refused == 2  # nor one for this command
        assert handle.state is OrderState.REJECTED and handle.reason == "shutting_down"
        assert ctx.open_orders() == () and not desk.tasks.pending
        assert engine.order(handle.cl_ord_id) is None  # never recorded: never sent
    finally:
        store.close()
