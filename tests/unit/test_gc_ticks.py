"""``bot.core.gc_ticks``: the collections CPython would run, run after a tick instead."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.core import gc_ticks
from bot.core.clock import FakeClock
from bot.execution.pnl import PositionBook
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.kraken.instruments import InstrumentTable
from bot.market.feed import BookValid
from bot.service.wiring import freeze_startup_heap
from bot.sim.pairs import default_instruments
from bot.strategy.desk import Desk
from bot.strategy.order_path import route_market


class Cycle:
    """A tracked object in a reference cycle: garbage only a collection frees."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    gc_ticks.install()
    try:
        yield
    finally:
        gc_ticks.uninstall()
        assert gc.get_threshold() == before


def test_not_installed_it_does_nothing_and_the_thresholds_are_cpythons() -> None:
    assert not gc_ticks.installed()
    threshold = gc.get_threshold()
    gc_ticks.after_tick()
    assert gc.get_threshold() == threshold and gc_ticks.after_tick() == -1


def test_installed_no_collection_runs_during_a_tick_and_the_due_one_runs_after(
    collector: None,
) -> None:
    t0 = gc_ticks._thresholds[0] if gc_ticks._thresholds else 700  # CPython's 700 as a rule
    assert gc.get_threshold()[0] == gc_ticks.BACKSTOP
    collections = gc.get_stats()[0]["collections"]
    tick = [Cycle() for _ in range(3 * t0)]  # well past generation 0's own threshold
    assert gc.get_stats()[0]["collections"] == collections  # nothing ran mid-tick
    del tick
    assert gc_ticks.after_tick() in (0, 1, 2)  # the pass CPython would have run by now
    assert gc.get_count()[0] < t0
    assert gc_ticks.after_tick() == -1  # nothing more is due


def test_generations_are_picked_as_cpython_picks_them(collector: None) -> None:
    t0, t1, _ = gc_ticks._thresholds or (700, 10, 10)
    seen = []
    for _ in range(t1 + 2):
        keep = [Cycle() for _ in range(t0 + 10)]
        seen.append(gc_ticks.after_tick())
        del keep
    assert seen[:t1] == [0] * t1  # generation 0 each time, until generation 1 is due
    assert 1 in seen[t1:]


def test_install_is_idempotent_and_uninstall_restores(collector: None) -> None:
    gc_ticks.install()
    assert gc.get_threshold()[0] == gc_ticks.BACKSTOP


def test_route_market_runs_the_due_collection_after_the_event(collector: None) -> None:
    """The daemon's feed callback: the event to the runners first, then the collection."""
    clock = FakeClock()
    instruments = InstrumentTable(default_instruments(("BTC/USD",)).values())
    positions = PositionBook(clock)
    desk = Desk(
        risk=RiskGate(clock, positions), positions=positions, instruments=instruments,
        books=dict, clock=clock,
    )  # fmt: skip
    gate = ReadinessGate(clock=clock)
    seen: list[int] = []
    gate.add("probe", lambda: seen.append(gc.get_count()[0]) is None)  # read by notify()
    t0 = gc_ticks._thresholds[0] if gc_ticks._thresholds else 700
    garbage = [Cycle() for _ in range(2 * t0)]
    del garbage
    seen.clear()
    route_market(desk, gate, BookValid("BTC/USD"))
    assert seen and seen[0] > t0  # the event was handled before anything was collected
    assert gc.get_count()[0] < t0  # and the due collection ran after it


def test_the_daemon_installs_it_with_its_frozen_start_up_heap() -> None:
    try:
        assert freeze_startup_heap() > 0
        assert gc_ticks.installed() and gc.get_threshold()[0] == gc_ticks.BACKSTOP
    finally:
        gc_ticks.uninstall()
        gc.unfreeze()
