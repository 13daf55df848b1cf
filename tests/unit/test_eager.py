"""``bot.eager.start_eagerly``: the first step now, the rest in a task, as a task would."""

from __future__ import annotations

import asyncio

import pytest

from bot.eager import start_eagerly


async def test_runs_synchronously_up_to_the_first_wait_then_finishes_in_the_task() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    steps: list[str] = []

    async def work() -> int:
        steps.append("before")
        value = await future
        steps.append("after")
        return value * 2

    task = start_eagerly(work(), asyncio.create_task)
    assert steps == ["before"]  # ran in this call, before any loop round
    future.set_result(21)
    assert await task == 42 and steps == ["before", "after"]


async def test_a_coroutine_that_never_waits_is_done_at_once() -> None:
    ran = []

    async def quick() -> str:
        ran.append(1)
        return "done"

    task = start_eagerly(quick(), asyncio.create_task)
    assert ran == [1]
    assert await task == "done"


async def test_exceptions_land_in_the_task_before_or_after_the_first_wait() -> None:
    async def early() -> None:
        raise ValueError("early")

    task = start_eagerly(early(), asyncio.create_task)  # the caller never sees it
    with pytest.raises(ValueError, match="early"):
        await task

    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    seen: list[BaseException] = []

    async def late() -> None:
        try:
            await future
        except KeyError as exc:
            seen.append(exc)
            raise RuntimeError("late") from exc

    task = start_eagerly(late(), asyncio.create_task)
    future.set_exception(KeyError("k"))
    with pytest.raises(RuntimeError, match="late"):
        await task
    assert type(seen[0]) is KeyError  # the coroutine read its future's failure itself


async def test_cancelling_the_task_cancels_what_the_coroutine_waits_on() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    cleanup: list[str] = []

    async def waits() -> None:
        try:
            await future
        except asyncio.CancelledError:
            cleanup.append("cancelled")
            raise

    task = start_eagerly(waits(), asyncio.create_task)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert future.cancelled() and cleanup == ["cancelled"] and task.cancelled()


async def test_a_cancellation_after_the_future_is_done_still_reaches_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    cleanup: list[str] = []

    async def waits() -> int:
        try:
            await future
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cleanup.append("cancelled")
            raise
        return 1

    task = start_eagerly(waits(), asyncio.create_task)
    future.set_result(1)  # done, and then the task is cancelled before it resumes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleanup == ["cancelled"]


async def test_sleep_zero_and_nested_tasks_work_as_in_a_task() -> None:
    order: list[str] = []

    async def inner() -> int:
        await asyncio.sleep(0)
        return 5

    async def outer() -> int:
        order.append("start")
        await asyncio.sleep(0)
        order.append("after sleep(0)")
        value = await asyncio.create_task(inner())
        await asyncio.sleep(0.001)
        return value + 1

    async with asyncio.TaskGroup() as tg:
        task = start_eagerly(outer(), tg.create_task)
        assert order == ["start"]
    assert task.result() == 6 and order == ["start", "after sleep(0)"]
