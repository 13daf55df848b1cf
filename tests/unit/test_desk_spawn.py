"""``Desk.spawn``: an intent's task starts eagerly in the daemon's group, or not at all.

A real ``ExecutionEngine`` on a real SQLite store (its REST client never reaches a venue
here), a real ``RiskGate`` without limits and an open readiness gate; the group the desk
spawns into is a hand-written stand-in that is closing, as a ``TaskGroup`` is once a
sibling failed: ``create_task`` raises ``RuntimeError``.
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
from bot.execution.readiness import RECONCILED
from bot.execution.risk import RiskGate
from bot.kraken.instruments import InstrumentTable
from bot.kraken.rest import KrakenRestClient
from bot.sim.pairs import default_instruments
from bot.store import Store
from bot.strategy.context import Desk


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
        engine = ExecutionEngine(rest, store, instruments, clock)
        engine.readiness.set(RECONCILED)
        positions = PositionBook(clock)
        desk = Desk(
            engine=engine, risk=RiskGate(clock, positions), positions=positions,
            instruments=instruments, books=dict, readiness=engine.readiness, clock=clock,
        )  # fmt: skip
        group = ClosingGroup()
        desk.spawn_task = group.create_task
        ctx = desk.context("s", ("BTC/USD",))
        assert group.refused == 1  # no task kept ready for the first intent
        handle = ctx.place("BTC/USD", "buy", Decimal("0.001"), Decimal("1000.0"))
        assert group.refused == 2  # nor one for this intent
        assert handle.state is OrderState.REJECTED and handle.reason == "shutting_down"
        assert ctx.open_orders() == () and not desk.pending
        assert engine.order(handle.cl_ord_id) is None  # never recorded: never sent
    finally:
        store.close()
