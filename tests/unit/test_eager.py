"""``bot.core.eager.start_eagerly``: the first step now, the rest in a task, as a task would."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Coroutine

import pytest

import bot.core.eager
from bot.core.eager import EagerSpawner, start_eagerly


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


# -- the eager step runs as the new task (issue 10 item 1) ---------------------------------


@pytest.fixture(params=["current-tasks map", "enter/leave calls"])
def swap(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the task is made current: asyncio's map (3.11 to 3.13), or its calls."""
    if request.param == "enter/leave calls":
        monkeypatch.setattr(bot.core.eager, "_CURRENT", None)
    else:
        assert bot.core.eager._CURRENT is not None
    return str(request.param)


async def test_during_the_eager_step_the_current_task_is_the_new_one(swap: str) -> None:
    caller = asyncio.current_task()
    seen: list[asyncio.Task[object] | None] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def work() -> None:
        seen.append(asyncio.current_task())
        await gate
        seen.append(asyncio.current_task())

    task = start_eagerly(work(), asyncio.create_task)
    assert seen == [task] and asyncio.current_task() is caller
    gate.set_result(None)
    await task
    assert seen == [task, task]


async def test_a_timeout_entered_eagerly_expires_in_the_new_task_not_the_callers(swap: str) -> None:
    """The defect: a request timeout entered in the eager step belonged to the caller (a
    feed's task), so when it expired the feed was cancelled and the request went on."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()  # never answered: a hung request
    outcome: list[str] = []

    async def request() -> str:
        try:
            async with asyncio.timeout(0.01):
                return await answer
        except TimeoutError:
            outcome.append("timed out")
            raise

    orders: list[asyncio.Task[str]] = []
    frame: asyncio.Future[str] = loop.create_future()  # the feed's next frame

    async def feed() -> str:
        orders.append(start_eagerly(request(), asyncio.create_task))
        return await frame  # the feed reads on while the order waits for its answer

    reader = asyncio.create_task(feed())
    await asyncio.sleep(0)  # the feed's step: the order is sent
    assert orders, "the feed placed its order"
    done, _ = await asyncio.wait(orders, timeout=5)  # bounded
    assert orders[0] in done, "the order's own timeout ended it"
    with pytest.raises(TimeoutError):
        orders[0].result()
    assert outcome == ["timed out"] and answer.cancelled()
    assert not reader.done() and reader.cancelling() == 0  # the feed was left alone
    frame.set_result("next frame")
    assert await reader == "next frame"


async def test_the_eager_step_runs_in_the_tasks_own_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def work() -> None:
        var.set("order")
        await gate
        seen.append(var.get())

    task = start_eagerly(work(), asyncio.create_task)
    assert var.get() == "caller"  # nothing leaked into the caller's context
    gate.set_result(None)
    await task
    assert seen == ["order"]  # and the task's later steps see what the first one set


async def test_outside_any_task_and_when_no_task_can_be_made(swap: str) -> None:
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[None]] = []
    seen: list[object] = []

    async def work() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)

    def from_a_callback() -> None:  # e.g. a loop callback: no task is running
        made.append(start_eagerly(work(), asyncio.create_task))
        seen.append(asyncio.current_task())

    loop.call_soon(from_a_callback)
    while not made:  # noqa: ASYNC110 (the callback runs on the next round)
        await asyncio.sleep(0)
    await made[0]
    assert seen == [made[0], None]

    ran: list[int] = []

    async def never() -> None:
        ran.append(1)

    def closed_group(coro: object, *, context: object = None) -> asyncio.Task[None]:
        raise RuntimeError("TaskGroup is shutting down")

    coro = never()
    with pytest.raises(RuntimeError):
        start_eagerly(coro, closed_group)
    assert ran == [] and inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


# -- EagerSpawner: the task made ahead of time, the next one after the step ----------------


class Recording:
    """A task factory (``loop.create_task``) that notes each task it makes."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.tasks: list[asyncio.Task[object]] = []

    def __call__(
        self, coro: Coroutine[object, object, object], *, context: contextvars.Context | None = None
    ) -> asyncio.Task[object]:
        self.log.append("task made")
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self.tasks.append(task)
        return task


async def test_the_spawner_makes_the_next_task_after_the_step_not_before() -> None:
    """A task costs ~10 µs on a cold path: made before the step it would be on the way to
    the order's write (tick-to-trade). The spawner keeps one ready and replaces it after."""
    log: list[str] = []
    factory = Recording(log)
    spawner = EagerSpawner(factory)
    spawner.prime()
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[object] = []

    async def order() -> str:
        log.append("first step")
        seen.append(asyncio.current_task())
        await gate
        seen.append(asyncio.current_task())
        return "done"

    log.append("start")
    task = spawner.start(order())
    assert log == ["task made", "start", "first step", "task made"]
    assert task is factory.tasks[0] and seen == [task]  # the spare ran the step
    gate.set_result(None)
    assert await task == "done" and seen == [task, task]
    spawner.close()
    await asyncio.wait(factory.tasks[1:], timeout=5)
    assert factory.tasks[1].cancelled()  # the unused spare


async def test_a_spawned_orders_timeout_is_its_own_whether_its_task_ran_yet_or_not(
    swap: str,
) -> None:
    loop = asyncio.get_running_loop()
    for settle in (False, True):  # the spare's first step not run yet / run (waiting)
        spawner = EagerSpawner(loop.create_task)
        spawner.prime()
        if settle:
            await asyncio.sleep(0)
        answer: asyncio.Future[str] = loop.create_future()

        async def request(answer: asyncio.Future[str] = answer) -> str:
            async with asyncio.timeout(0.01):
                return await answer

        caller = asyncio.current_task()
        task = spawner.start(request())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(task, 5)
        assert answer.cancelled() and caller is not None and caller.cancelling() == 0
        spawner.close()


async def test_a_task_cancelled_before_it_resumed_tells_its_coroutine() -> None:
    loop = asyncio.get_running_loop()
    for settle in (False, True):
        spawner = EagerSpawner(loop.create_task)
        spawner.prime()
        if settle:
            await asyncio.sleep(0)
        cleanup: list[str] = []

        async def waits(cleanup: list[str] = cleanup) -> None:
            try:
                await loop.create_future()
            except asyncio.CancelledError:
                cleanup.append("cancelled")
                raise

        task = spawner.start(waits())
        task.cancel()  # before the task ever ran
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleanup == ["cancelled"] and task.cancelled()
        spawner.close()


async def test_a_start_nested_in_a_step_leaves_one_spare_and_the_group_can_end() -> None:
    inner_done: list[str] = []
    async with asyncio.TaskGroup() as tg:
        spawner = EagerSpawner(tg.create_task)
        spawner.prime()

        async def inner() -> None:
            await asyncio.sleep(0)
            inner_done.append("inner")

        async def outer() -> None:
            spawner.start(inner())  # e.g. a strategy's on_order placing from an order's step
            await asyncio.sleep(0)

        spawner.start(outer())
        spawner.close()  # the group ends only once the spare is gone
    assert inner_done == ["inner"]
