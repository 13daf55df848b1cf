"""The dead-man's switch's timing (bot.execution.deadman): the pure decisions (and how
Kraken's answer becomes the switch's delay, bot.execution.rest_answers), then the driver on
a FakeClock with a scripted stand-in for the venue's ``cancel_after`` (Kraken's
``CancelAllOrdersAfter``, injected through the constructor), so every refresh, retry and
lapse happens at an exact time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import ProtocolError, TransientError
from bot.execution.deadman import (
    DeadmanSwitch,
    default_margin_s,
    is_lapsed,
    retry_wait,
    trigger_at,
)
from bot.execution.rest_answers import cancel_after, parse_rfc3339, trigger_delay_s
from bot.execution.venue import CancelAfter

EPOCH_2023 = 1679679716.0  # 2023-03-24T17:41:56Z


# ------------------------------------------------------------------------------ pure


def test_parse_rfc3339_accepts_krakens_forms() -> None:
    assert parse_rfc3339("2023-03-24T17:41:56Z") == EPOCH_2023
    assert parse_rfc3339("2023-03-24T17:41:56.250Z") == EPOCH_2023 + 0.25
    assert parse_rfc3339("2023-03-24T17:41:56.440295Z") == pytest.approx(EPOCH_2023 + 0.440295)
    assert parse_rfc3339("2023-03-24T19:41:56+02:00") == EPOCH_2023
    for bad in ("", "0", "2023-03-24 17:41", "2023-13-24T17:41:56Z", "yesterday"):
        with pytest.raises(ProtocolError):
            parse_rfc3339(bad)


def test_trigger_delay_is_trigger_minus_current_and_none_when_off() -> None:
    armed = {"currentTime": "2023-03-24T17:41:56Z", "triggerTime": "2023-03-24T17:42:56Z"}
    assert trigger_delay_s(armed) == 60.0
    assert trigger_delay_s({"currentTime": "2023-03-24T17:41:56Z", "triggerTime": "0"}) is None
    same = {"currentTime": "2023-03-24T17:41:56Z", "triggerTime": "2023-03-24T17:41:56Z"}
    assert trigger_delay_s(same) is None
    for bad in ({}, {"currentTime": 1, "triggerTime": 2}, {"currentTime": "x", "triggerTime": "y"}):
        with pytest.raises(ProtocolError):
            trigger_delay_s(bad)


def test_trigger_at_counts_from_the_request_start() -> None:
    result = {"currentTime": "2023-03-24T17:41:56Z", "triggerTime": "2023-03-24T17:42:56Z"}
    assert trigger_at(1000.0, cancel_after(result)) == 1060.0
    off = {"currentTime": "2023-03-24T17:41:56Z", "triggerTime": "0"}
    assert trigger_at(1000.0, cancel_after(off)) is None


def test_is_lapsed_at_the_trigger_minus_the_margin() -> None:
    assert not is_lapsed(1057.9, 1060.0, 2.0)
    assert is_lapsed(1058.0, 1060.0, 2.0)
    assert is_lapsed(1100.0, 1060.0, 0.0)
    assert not is_lapsed(1e9, None, 2.0)  # not armed: nothing to lapse


def test_retry_wait_is_quick_and_bounded_by_the_time_left() -> None:
    assert retry_wait(1000.0, 1060.0, retry_s=1.0, margin_s=2.0) == 1.0
    assert retry_wait(1057.5, 1060.0, retry_s=1.0, margin_s=2.0) == pytest.approx(0.5)
    assert retry_wait(1058.0, 1060.0, retry_s=1.0, margin_s=2.0) == 1.0  # lapsed: keep trying
    assert retry_wait(1000.0, None, retry_s=1.0, margin_s=2.0) == 1.0


def test_default_margin() -> None:
    assert default_margin_s(60) == 2.0
    assert default_margin_s(2) == 0.1


def test_switch_rejects_bad_settings() -> None:
    api = ScriptedKraken(FakeClock())
    bad: tuple[dict[str, Any], ...] = (
        {"timeout_s": 0},
        {"timeout_s": 86400},
        {"timeout_s": 60, "refresh_s": 60},
        {"timeout_s": 60, "retry_s": 0},
        {"timeout_s": 60, "margin_s": 60},
    )
    for kwargs in bad:
        with pytest.raises(ValueError):
            DeadmanSwitch(api, FakeClock(), **kwargs)


# ------------------------------------------------------------------------------ driver


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))


class ScriptedKraken:
    """``CancelAllOrdersAfter`` on the fake clock's wall time, failing or hanging on demand,
    read as the REST venue reads it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, int]] = []  # (monotonic, timeout)
        self.failing = False
        self.hold: asyncio.Event | None = None

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        self.calls.append((self.clock.monotonic(), timeout_s))
        if self.hold is not None:
            await self.hold.wait()
        if self.failing:
            raise TransientError("EService:Unavailable")
        now = self.clock.time_ns()
        trigger = "0" if timeout_s == 0 else rfc3339(now + timeout_s * 1_000_000_000)
        return cancel_after({"currentTime": rfc3339(now), "triggerTime": trigger})


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def advance(clock: FakeClock, seconds: float, step: float = 0.25) -> None:
    """Move the clock in small steps, letting every woken task run at each one."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end - 1e-9:
        clock.advance(min(step, end - clock.monotonic()))
        await settle()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> ScriptedKraken:
    return ScriptedKraken(clock)


@pytest.fixture
async def lapses() -> list[float]:
    return []


@pytest.fixture
async def switch(
    clock: FakeClock, api: ScriptedKraken, lapses: list[float]
) -> AsyncIterator[DeadmanSwitch]:
    sw = DeadmanSwitch(api, clock, timeout_s=60, on_lapse=lambda: lapses.append(clock.monotonic()))
    task = asyncio.create_task(sw.run())
    await settle()
    yield sw
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_arm_records_the_trigger(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken
) -> None:
    assert not switch.armed and switch.seconds_to_trigger() is None
    await switch.arm()
    start = clock.monotonic()
    assert api.calls == [(start, 60)]
    assert switch.armed
    assert switch.trigger_at_monotonic == start + 60
    assert switch.seconds_to_trigger() == 60
    assert switch.stats.last_trigger_time == rfc3339(clock.time_ns() + 60 * 10**9)


async def test_nothing_is_sent_before_arm(clock: FakeClock) -> None:
    api = ScriptedKraken(clock)
    idle = DeadmanSwitch(api, clock, timeout_s=60)
    task = asyncio.create_task(idle.run())
    await advance(clock, 200, step=5)
    assert api.calls == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_refreshes_every_quarter_timeout(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken, lapses: list[float]
) -> None:
    await switch.arm()
    start = clock.monotonic()
    await advance(clock, 5 * 60, step=1.0)  # five timeouts
    times = [t - start for t, _ in api.calls]
    assert times == [15.0 * n for n in range(21)]
    assert switch.armed and lapses == []
    assert switch.seconds_to_trigger() == 60  # just refreshed, at 300


async def test_failed_refresh_is_retried_after_a_second(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken
) -> None:
    await switch.arm()
    start = clock.monotonic()
    api.failing = True
    await advance(clock, 15)  # the refresh at 15 fails
    api.failing = False
    await advance(clock, 2)
    times = [t - start for t, _ in api.calls]
    assert times == [0.0, 15.0, 16.0]
    assert switch.stats.failures == 1
    assert switch.trigger_at_monotonic == start + 16 + 60
    await advance(clock, 15)
    assert [t - start for t, _ in api.calls][-1] == 31.0  # the period restarts from success


async def test_lapse_is_reported_once_and_rearming_goes_on(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken, lapses: list[float]
) -> None:
    await switch.arm()
    start = clock.monotonic()
    api.failing = True
    await advance(clock, 80)
    # Trigger at 60, margin 2 s: lapsed at 58, once, while the retries went on.
    assert lapses == [start + 58]
    assert not switch.armed
    retries = [t - start for t, _ in api.calls if t - start > 15]
    assert retries[:3] == [16.0, 17.0, 18.0] and retries[-1] >= 79.0
    assert switch.stats.lapses == 1
    api.failing = False
    await advance(clock, 1)
    assert switch.armed and switch.seconds_to_trigger() == pytest.approx(60, abs=1)
    # A later outage lapses again, and is reported again.
    api.failing = True
    await advance(clock, 70)
    assert len(lapses) == 2


async def test_lapse_is_reported_on_time_while_a_refresh_hangs(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken, lapses: list[float]
) -> None:
    await switch.arm()
    start = clock.monotonic()
    api.hold = asyncio.Event()
    await advance(clock, 59)
    assert len(api.calls) == 2  # the refresh at 15 never returned
    assert lapses == [start + 58]
    api.hold.set()  # it returns at last; the refresh overdue since 30 follows at once
    api.hold = None
    await settle()
    assert [t - start for t, _ in api.calls] == [0.0, 15.0, 59.0]
    assert switch.trigger_at_monotonic == start + 59 + 60
    assert switch.armed and len(lapses) == 1


async def test_disarm_sends_zero_and_stops_refreshing(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken, lapses: list[float]
) -> None:
    await switch.arm()
    await advance(clock, 20)
    await switch.disarm()
    assert api.calls[-1][1] == 0
    assert not switch.armed and switch.trigger_at_monotonic is None
    calls = len(api.calls)
    await advance(clock, 200, step=5)
    assert len(api.calls) == calls and lapses == []


async def test_a_refresh_in_flight_does_not_undo_a_disarm(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken
) -> None:
    await switch.arm()
    api.hold = asyncio.Event()
    await advance(clock, 15)  # the refresh is in flight, held
    held = api.hold
    api.hold = None
    await switch.disarm()
    held.set()
    await settle()
    assert switch.trigger_at_monotonic is None and not switch.armed


async def test_failed_arm_raises_and_leaves_it_unarmed(
    switch: DeadmanSwitch, clock: FakeClock, api: ScriptedKraken
) -> None:
    api.failing = True
    with pytest.raises(TransientError):
        await switch.arm()
    assert not switch.armed
    await advance(clock, 100, step=5)
    assert len(api.calls) == 1  # the refresher waits for a successful arm


async def test_a_result_that_does_not_arm_is_a_protocol_error(clock: FakeClock) -> None:
    class Off(ScriptedKraken):
        async def cancel_after(self, timeout_s: int) -> CancelAfter:
            return cancel_after({"currentTime": rfc3339(self.clock.time_ns()), "triggerTime": "0"})

    with pytest.raises(ProtocolError):
        await DeadmanSwitch(Off(clock), clock, timeout_s=60).arm()


async def test_armed_is_false_from_the_instant_the_switch_may_have_lapsed(
    clock: FakeClock,
) -> None:
    """``armed`` (read by the readiness gate on every order) is ``not is_lapsed`` to the
    instant: true just before the trigger less the margin, false at it and after."""
    switch = DeadmanSwitch(ScriptedKraken(clock), clock, timeout_s=60, margin_s=2.0)
    assert not switch.armed  # never armed
    await switch.arm()
    trigger = switch.trigger_at_monotonic
    assert trigger is not None
    for delta in (-1.0, -1e-6, 0.0, 1e-6, 1.0):
        now = trigger - 2.0 + delta
        clock.advance(now - clock.monotonic())
        assert switch.armed == (not is_lapsed(now, trigger, 2.0)) == (delta < 0), delta
