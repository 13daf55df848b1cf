"""The injected clocks."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.clock import Clock, FakeClock, SystemClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start_ns=10**18)
    assert clock.time_ns() == 10**18
    before = clock.monotonic()
    clock.advance(1.5)
    assert clock.monotonic() == before + 1.5
    assert clock.time_ns() == 10**18 + 1_500_000_000
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_wall_clock_can_be_set_back_without_moving_monotonic() -> None:
    clock = FakeClock(start_ns=10**18)
    mono = clock.monotonic()
    clock.set_wall_ns(10**18 - 5_000_000_000)
    assert clock.time_ns() < 10**18
    assert clock.monotonic() == mono


async def test_sleepers_wake_in_order_when_advanced() -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("b", 2)), asyncio.create_task(sleeper("a", 1))]
    await asyncio.sleep(0)
    clock.advance(1)
    await asyncio.sleep(0)
    assert woke == ["a"]
    clock.advance(1)
    await asyncio.gather(*tasks)
    assert woke == ["a", "b"]


async def test_auto_advance_runs_loops_at_full_speed() -> None:
    clock = FakeClock(auto_advance=True)
    start = clock.monotonic()
    for _ in range(100):
        await clock.sleep(60)
    assert clock.monotonic() == start + 6000
