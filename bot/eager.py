"""Start a coroutine at once, in the caller's step, as the first step of a task of its own.

``asyncio.create_task`` runs nothing now: the coroutine's first step waits for the event
loop's next round. For an order that is the difference between writing the request while
the strategy's ``on_book`` is still on the stack and writing it after every other ready
callback has run (tens of µs on the development VM). Python 3.12 has eager tasks for this;
this module is the 3.11 equivalent, for the one place that needs it (``Desk.spawn``).

``start_eagerly(coro, create_task)`` makes the task first (with ``create_task``, the
caller's ``TaskGroup``), then steps ``coro`` synchronously up to its first suspension (an
awaited future, or a bare ``yield`` from ``asyncio.sleep(0)``) *as that task*: during the
eager step ``asyncio.current_task()`` is the new task, not the caller's, and the step runs
in the task's own copy of the context. That is what makes the eager step safe: whatever
the coroutine binds to "the current task" there (an ``asyncio.timeout``, a cancellation
scope, a ``current_task()`` kept for later) belongs to the order, so a request timeout
that expires cancels the order's task, never the feed or timer that placed it, and a
``contextvars`` change stays with the order. The task then drives the coroutine on:

- the task's result or exception is the coroutine's, including an exception raised during
  the eager part (it is raised inside the task, never to the caller, as with
  ``create_task``);
- cancelling the task cancels the future the coroutine waits on, so the coroutine sees
  ``CancelledError`` where it awaits, exactly as in a task of its own (and an
  ``asyncio.timeout`` entered in the eager step turns it into ``TimeoutError``); a
  cancellation that arrives when that future is already done, or before the task's first
  step, is thrown into the coroutine, never swallowed.

The task is swapped in as the loop's current task with asyncio's own ``_enter_task`` and
``_leave_task`` (what ``Task.__step`` itself calls around every step), and the caller's
put back after, whatever the step did.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from asyncio import tasks as _tasks
from collections.abc import Coroutine, Generator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["TaskFactory", "start_eagerly"]

T = TypeVar("T")

_enter_task = _tasks._enter_task  # asyncio's own, as ``Task.__step`` calls them
_leave_task = _tasks._leave_task


class TaskFactory(Protocol):
    """``TaskGroup.create_task`` / ``loop.create_task``: a task for a coroutine, in a context."""

    def __call__(
        self, coro: Coroutine[Any, Any, Any], *, context: contextvars.Context | None = ...
    ) -> asyncio.Task[Any]: ...


def start_eagerly(coro: Coroutine[Any, Any, T], create_task: TaskFactory) -> asyncio.Task[T]:
    """A task (from ``create_task``) running ``coro``, whose first step has run by return."""
    context = contextvars.copy_context()
    eager = _Eager(coro)
    body = eager.drive()
    try:
        task: asyncio.Task[T] = create_task(body, context=context)
    except BaseException:  # no task (the group is closing): nothing ran, nothing is left
        body.close()
        coro.close()
        raise
    loop = task.get_loop()
    caller = _tasks.current_task(loop)
    if caller is not None:
        _leave_task(loop, caller)
    _enter_task(loop, task)
    try:
        context.run(eager.first_step)
    finally:
        _leave_task(loop, task)
        if caller is not None:
            _enter_task(loop, caller)
    if eager.suspended:
        task.add_done_callback(lambda _: _cancel_if_suspended(coro))
    return task


class _Eager(Generic[T]):
    """The coroutine, what its eager step ended with, and the task body that goes on."""

    __slots__ = ("_coro", "_error", "_value", "_waiting", "suspended")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._waiting: Any = None
        self._value: Any = None
        self._error: BaseException | None = None
        self.suspended = False

    def first_step(self) -> None:
        coro = self._coro
        try:
            self._waiting = coro.send(None)
        except StopIteration as done:
            self._value = done.value
        except BaseException as exc:  # raised again, inside the task
            coro.close()
            self._error = exc
        else:
            self.suspended = True

    async def drive(self) -> T:
        """What ``asyncio.Task`` does for the coroutine, from its first suspension on."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if not self.suspended:
            return self._value  # type: ignore[no-any-return]
        coro, waiting = self._coro, self._waiting
        self._waiting = None
        while True:
            throw: BaseException | None = None
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
                return done.value  # type: ignore[no-any-return]


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
        try:
            yield future  # the task waits on it, and cancels it if it is cancelled
        except asyncio.CancelledError:
            if not future.cancelled():
                raise  # cancelled after the future was done: tell the coroutine
        except BaseException:  # the future's own failure: the coroutine reads it
            pass
