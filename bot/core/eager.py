"""Start a coroutine at once, in the caller's step, as the first step of a task of its own.

``asyncio.create_task`` runs nothing now: the coroutine's first step waits for the event
loop's next round. For an order that is the difference between writing the request while
the strategy's ``on_book`` is still on the stack and writing it after every other ready
callback has run (see docs/contributors/benchmarks.md). Python 3.12 has eager tasks for this;
this module is the 3.11 equivalent, for the one place that needs it (``OrderTasks.spawn``).

The coroutine's first step runs synchronously, up to its first suspension (an awaited
future, or a bare ``yield`` from ``asyncio.sleep(0)``), **as its task**: during that step
``asyncio.current_task()`` is the coroutine's own task, not the caller's, and the step runs
in that task's context. That is what makes the eager step safe: whatever the coroutine
binds to "the current task" there (an ``asyncio.timeout``, a ``current_task()`` kept for
later) belongs to it, so a request timeout that expires cancels the order's task, never
the feed or timer that placed it (issue 10: it cancelled the public feed), and a
``contextvars`` change stays with the order. The task is swapped in as the loop's current
task in the map asyncio's ``current_task`` reads (what ``Task.__step`` does around every
step, through ``_enter_task`` / ``_leave_task``), and the caller's is put back after,
whatever the step did.

The task must exist before the step, and making one is costly on a cold path (between two
book frames the caches go cold, and every object made and every call counts; docs/contributors/
benchmarks.md has the figures): before the request's write, that is tick-to-trade. So
``EagerSpawner`` keeps one task made ahead of time (a *spare*, waiting for a coroutine, with
everything the step needs already made), hands it the coroutine after the step, and makes
the next spare only then, after the write. What is left on the way to the write is a dict
lookup and two stores (the current task) and entering the task's context. ``start_eagerly``
is the one-off form (its task is made first).

The task then drives the coroutine on, as ``asyncio.Task`` would:

- its result or exception is the coroutine's, including an exception raised during the
  eager part (it is raised inside the task, never to the caller, as with ``create_task``);
- cancelling the task cancels the future the coroutine waits on, so the coroutine sees
  ``CancelledError`` where it awaits (and an ``asyncio.timeout`` entered in the eager step
  turns it into ``TimeoutError``); a cancellation that arrives when that future is already
  done, or before the task's first step, is thrown into the coroutine, never swallowed.

A spare that is never used is cancelled by ``EagerSpawner.close()`` (the daemon's group can
only end once it is).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from asyncio import tasks as _tasks
from collections.abc import Coroutine, Generator
from typing import Any, Protocol, TypeVar

__all__ = ["EagerSpawner", "TaskFactory", "start_eagerly"]

T = TypeVar("T")

_enter_task = _tasks._enter_task  # asyncio's own, as ``Task.__step`` calls them
_leave_task = _tasks._leave_task
_CURRENT: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = getattr(
    _tasks, "_current_tasks", None
)
"""The loop → current task map ``asyncio.current_task`` reads (3.11 to 3.13; the C
module's own dict), else None: then ``_enter_task`` / ``_leave_task``."""


class TaskFactory(Protocol):
    """``TaskGroup.create_task`` / ``loop.create_task``: a task for a coroutine, in a context."""

    def __call__(
        self, coro: Coroutine[Any, Any, Any], *, context: contextvars.Context | None = ...
    ) -> asyncio.Task[Any]: ...


def start_eagerly(coro: Coroutine[Any, Any, T], create_task: TaskFactory) -> asyncio.Task[T]:
    """A task (from ``create_task``, made now) running ``coro``, whose first step has run
    by return. ``RuntimeError`` from ``create_task`` (a closing group): ``coro`` is closed."""
    try:
        slot = _Slot(create_task)
    except BaseException:
        coro.close()
        raise
    return slot.run(coro)


class EagerSpawner:
    """``start_eagerly`` with the task made ahead of time: see the module docstring."""

    __slots__ = ("_create", "_spare")

    def __init__(self, create_task: TaskFactory) -> None:
        self._create = create_task
        self._spare: _Slot | None = None

    def prime(self) -> None:
        """Make the spare now (call it where a few µs do not matter); none if the group
        is closing (``start`` then says so)."""
        if self._spare is None or not self._spare.usable:
            try:
                self._spare = _Slot(self._create)
            except RuntimeError:
                self._spare = None

    def start(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro``'s first step now, as the spare task (made now if there is none),
        and hand the rest to it; then make the next spare. ``RuntimeError`` when no task
        can be made (the group is closing): ``coro`` is closed, nothing ran."""
        slot, self._spare = self._spare, None
        if slot is None or not slot.usable:
            try:
                slot = _Slot(self._create)
            except BaseException:
                coro.close()
                raise
        task = slot.run(coro)
        if self._spare is None:  # (a start nested in that step may have made one)
            try:  # after the request's write: off the tick-to-trade path
                self._spare = _Slot(self._create)
            except RuntimeError:  # the group is closing: the next start says so
                self._spare = None
        return task

    def close(self) -> None:
        """Cancel the spare: nothing waits for a coroutine any more."""
        slot, self._spare = self._spare, None
        if slot is not None:
            slot.task.cancel()


class _Slot:
    """A task made ahead of time in its own copy of the context, waiting to be handed a
    coroutine whose first step ``run`` makes it run as that task. It keeps what the step
    ended with (everything here is made before the step: a cold object costs µs)."""

    __slots__ = (
        "_coro", "_error", "_handoff", "_loop", "_value", "_waiting", "context", "suspended",
        "task",
    )  # fmt: skip

    def __init__(self, create_task: TaskFactory) -> None:
        self._loop = asyncio.get_running_loop()
        self._handoff: asyncio.Future[None] = self._loop.create_future()
        self._coro: Coroutine[Any, Any, Any] | None = None
        self._waiting: Any = None
        self._value: Any = None
        self._error: BaseException | None = None
        self.suspended = False
        self.context = contextvars.copy_context()
        body = self._body()
        try:
            self.task: asyncio.Task[Any] = create_task(body, context=self.context)
        except BaseException:
            body.close()
            raise

    @property
    def usable(self) -> bool:
        return not (self.task.done() or self._handoff.done())

    def run(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        self._coro = coro
        task, loop, current = self.task, self._loop, _CURRENT
        if current is not None:  # a dict op where a call costs a µs on a cold path
            caller = current.get(loop)
            current[loop] = task
        else:
            caller = _tasks.current_task(loop)
            if caller is not None:
                _leave_task(loop, caller)
            _enter_task(loop, task)
        try:
            self.context.run(self._first_step)
        finally:
            if current is None:
                _leave_task(loop, task)
                if caller is not None:
                    _enter_task(loop, caller)
            elif caller is None:
                del current[loop]
            else:
                current[loop] = caller
        self._handoff.set_result(None)
        if self.suspended:
            task.add_done_callback(lambda _: _cancel_if_suspended(coro))
        return task

    def _first_step(self) -> None:
        coro = self._coro
        assert coro is not None
        try:
            self._waiting = coro.send(None)
        except StopIteration as done:
            self._value = done.value
        except BaseException as exc:  # raised again, inside the task
            coro.close()
            self._error = exc
        else:
            self.suspended = True

    async def _body(self) -> Any:
        handoff = self._handoff
        try:
            await _Settled(handoff)
        except asyncio.CancelledError as cancelled:  # after the handoff, before this ran
            return await self._drive(cancelled)
        if handoff.cancelled():  # a spare cancelled before it was used
            raise asyncio.CancelledError
        return await self._drive(None)

    async def _drive(self, throw: BaseException | None) -> Any:
        """What ``asyncio.Task`` does for the coroutine, from its first suspension on;
        ``throw``: a cancellation that came before the task could resume it."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if not self.suspended:
            if throw is not None:
                raise throw  # cancelled before it could return: a cancelled task
            return self._value
        coro, waiting = self._coro, self._waiting
        assert coro is not None
        self._waiting = None
        while True:
            if throw is None:
                try:
                    if waiting is None:  # a bare yield: asyncio.sleep(0)
                        await asyncio.sleep(0)
                    else:
                        await _Settled(waiting)
                except asyncio.CancelledError as cancelled:  # this task's own cancellation
                    throw = cancelled
            try:
                waiting = coro.send(None) if throw is None else coro.throw(throw)
            except StopIteration as done:
                return done.value
            throw = None


def _cancel_if_suspended(coro: Coroutine[Any, Any, Any]) -> None:
    """A task cancelled before its first step never ran ``drive``: the coroutine, left
    where the eager step stopped, is told here (its cleanup runs; it must not wait)."""
    if inspect.getcoroutinestate(coro) != inspect.CORO_SUSPENDED:
        return
    try:
        coro.throw(asyncio.CancelledError())
    except (asyncio.CancelledError, StopIteration):
        return
    except BaseException:  # its cleanup failed: the task is cancelled anyway
        return
    coro.close()  # it awaited again while cancelled: stop it there


class _Settled:
    """Awaits a future until it is done, whatever its outcome: the coroutine that awaited
    it reads the result (or the exception, or the cancellation) itself when resumed. Only
    a cancellation of the awaiting task that did not cancel the future passes through."""

    __slots__ = ("_future",)

    def __init__(self, future: Any) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, None]:
        future = self._future
        if future.done():
            return
        future._asyncio_future_blocking = True  # as ``Future.__await__``: a task waits on it
        try:
            yield future  # the task waits on it, and cancels it if it is cancelled
        except asyncio.CancelledError:
            if not future.cancelled():
                raise  # cancelled after the future was done: tell the coroutine
        except BaseException:  # the future's own failure: the coroutine reads it
            pass
