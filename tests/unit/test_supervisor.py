"""``bot.core.supervisor.Supervisor``: a task that stops unasked is logged, counted, restarted.

The supervisor waits on a ``FakeClock`` that advances itself (``auto_advance``), so every
restart's backoff passes at once; the runs are plain coroutines that say how they end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.core.backoff import BackoffPolicy
from bot.core.clock import FakeClock
from bot.core.errors import AuthError, ConfigError, TransientError
from bot.core.supervisor import Supervisor


def supervisor(clock: FakeClock | None = None) -> Supervisor:
    return Supervisor(
        clock or FakeClock(auto_advance=True),
        policy=BackoffPolicy(1.0, 8.0, jitter=0.0),
        healthy_after_s=60.0,
    )


def runs(
    *endings: Callable[[], Coroutine[Any, Any, None]],
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A ``run`` whose n-th call ends as ``endings[n]``; after the last, it waits forever."""
    calls = iter(endings)

    def run() -> Coroutine[Any, Any, None]:
        ending = next(calls, None)
        return ending() if ending is not None else forever()

    return run


async def returns() -> None:
    await asyncio.sleep(0)


async def fails() -> None:
    await asyncio.sleep(0)
    raise TransientError("EService:Unavailable", "down")


async def cancelled_by_a_stranger() -> None:
    """What the defect did to the public feed: its task cancelled by a timeout that was
    not its own."""
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().call_soon(me.cancel)
    await asyncio.Event().wait()


async def forever() -> None:
    await asyncio.Event().wait()


async def keep_until(sup: Supervisor, name: str, restarts: int, run: Any, **kw: Any) -> None:
    task = asyncio.create_task(sup.keep(name, run, **kw))
    try:
        async with asyncio.timeout(5):
            while sup.stats.get(name) is None or sup.stats[name].restarts < restarts:  # noqa: ASYNC110
                await asyncio.sleep(0)
            await asyncio.sleep(0.01)  # the restarted run is under way
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_every_unasked_ending_is_logged_counted_and_restarted() -> None:
    sup = supervisor()
    started: list[str] = []

    def tracked(ending: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], Any]:
        async def run() -> None:
            started.append(ending.__name__)
            await ending()

        return run

    order = [returns, fails, cancelled_by_a_stranger, forever]
    calls = iter(order)

    def run() -> Coroutine[Any, Any, None]:
        return tracked(next(calls))()

    with capture_logs() as events:
        await keep_until(sup, "feed", 3, run)
    assert started == [f.__name__ for f in order]
    stopped = [e for e in events if e["event"] == "task_stopped"]
    assert [e["reason"] for e in stopped] == [
        "returned",
        "raised TransientError: EService:Unavailable (down)",
        "cancelled by another task",
    ]
    assert all(e["log_level"] == "error" and e["task"] == "feed" for e in stopped)
    assert isinstance(stopped[1]["exc_info"], TransientError)  # the traceback is logged
    assert [e["restart_in_s"] for e in stopped] == [1.0, 2.0, 4.0]  # backoff grows
    restarted = [e for e in events if e["event"] == "task_restarted"]
    assert [e["restarts"] for e in restarted] == [1, 2, 3]
    assert sup.stats["feed"].restarts == 3
    assert sup.stats["feed"].last_reason == "cancelled by another task"


async def test_the_backoff_starts_again_after_a_healthy_run() -> None:
    clock = FakeClock(auto_advance=True)
    sup = supervisor(clock)

    async def healthy_then_returns() -> None:
        await clock.sleep(61.0)

    with capture_logs() as events:
        await keep_until(sup, "engine", 3, runs(fails, fails, healthy_then_returns))
    delays = [e["restart_in_s"] for e in events if e["event"] == "task_stopped"]
    assert delays == [1.0, 2.0, 1.0]


async def test_fatal_errors_end_the_daemon_and_are_not_restarted() -> None:
    for error in (AuthError("EAPI:Invalid key", ""), ConfigError("bad")):
        sup = supervisor()

        async def fatal(error: Exception = error) -> None:
            await asyncio.sleep(0)
            raise error

        with capture_logs() as events, pytest.raises(type(error)) as raised:
            async with asyncio.timeout(5):
                await sup.keep("private-feed", fatal)
        assert raised.value is error
        assert sup.stats["private-feed"].restarts == 0
        assert not [e for e in events if e["event"] == "task_stopped"]


async def test_an_expected_end_is_left_ended() -> None:
    sup = supervisor()
    with capture_logs() as events:
        async with asyncio.timeout(5):
            await sup.keep("timers-mm", returns, finished=lambda: True)
    assert [e["event"] for e in events] == ["task_finished"]
    assert sup.stats["timers-mm"].restarts == 0


async def test_cancelling_the_supervisor_cancels_its_task_and_restarts_nothing() -> None:
    sup = supervisor()
    cleanup: list[str] = []

    async def component() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleanup.append("cancelled")

    with capture_logs() as events:
        task = asyncio.create_task(sup.keep("deadman", component))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cleanup == ["cancelled"] and task.cancelled()
    assert events == [] and sup.stats["deadman"].restarts == 0


async def test_a_failure_as_the_supervisor_is_cancelled_is_not_restarted() -> None:
    """The run fails while the daemon is stopping: the cancellation wins, nothing restarts."""
    sup = supervisor()
    release = asyncio.Event()

    async def fails_when_released() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()
            raise TransientError("EService:Busy", "") from None

    with capture_logs() as events:
        task = asyncio.create_task(sup.keep("balances", fails_when_released))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.01)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not [e for e in events if e["event"] == "task_stopped"]
