"""``SimClock``: time moves only with the data; the agenda runs in time order, each at its time."""

from __future__ import annotations

import asyncio

from bot.backtest.clock import SimClock, settle

T0 = 1_700_000_000_000_000_000


async def test_the_agenda_runs_in_time_order_each_item_at_its_own_time() -> None:
    clock = SimClock(T0)
    seen: list[tuple[str, int]] = []
    clock.at(T0 + 30, lambda: seen.append(("c", clock.time_ns())))
    clock.at(T0 + 10, lambda: seen.append(("a", clock.time_ns())))
    clock.at(T0 + 10, lambda: seen.append(("b", clock.time_ns())))  # a tie: as scheduled
    clock.at(T0 + 50, lambda: seen.append(("late", clock.time_ns())))
    await clock.run_until(T0 + 40)
    assert seen == [("a", T0 + 10), ("b", T0 + 10), ("c", T0 + 30)]
    assert clock.time_ns() == T0 + 40 and clock.next_due_ns() == T0 + 50


async def test_sleepers_wake_on_simulated_time_and_what_they_start_runs_before_the_next() -> None:
    clock = SimClock(T0)
    order: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append(f"{name}@{clock.monotonic() - 1000.0:.3f}")
        clock.at(clock.time_ns(), lambda: order.append(f"after-{name}"))

    tasks = [asyncio.create_task(sleeper("slow", 2.0)), asyncio.create_task(sleeper("fast", 0.5))]
    await settle()
    await clock.run_until(T0 + 3_000_000_000)
    assert order == ["fast@0.500", "after-fast", "slow@2.000", "after-slow"]
    await asyncio.gather(*tasks)


async def test_a_cancelled_sleeper_is_skipped_and_time_never_goes_back() -> None:
    clock = SimClock(T0)
    task = asyncio.create_task(clock.sleep(1.0))
    await settle()
    task.cancel()
    await clock.run_until(T0 + 2_000_000_000)  # its wake-up finds it cancelled: no error
    assert task.cancelled()
    await clock.run_until(T0)  # the past: nothing moves
    clock.move_to(T0)
    assert clock.time_ns() == T0 + 2_000_000_000
