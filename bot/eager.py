"""Start a coroutine at once, in the caller's step, and hand the rest of it to a task.

``asyncio.create_task`` runs nothing now: the coroutine's first step waits for the event
loop's next round. For an order that is the difference between writing the request while
the strategy's ``on_book`` is still on the stack and writing it after every other ready
callback has run (tens of µs on the development VM). Python 3.12 has eager tasks for this;
this module is the 3.11 equivalent, for the one place that needs it (``Desk.spawn``).

``start_eagerly(coro, create_task)`` steps ``coro`` synchronously up to its first
suspension (an awaited future, or a bare ``yield`` from ``asyncio.sleep(0)``) and returns a
task, made with ``create_task`` (the caller's ``TaskGroup``), that drives it from there:

- the task's result or exception is the coroutine's, including an exception raised during
  the eager part (it is raised inside the task, never to the caller, as with
  ``create_task``);
- cancelling the task cancels the future the coroutine waits on, so the coroutine sees
  ``CancelledError`` where it awaits, exactly as in a task of its own; a cancellation that
  arrives when that future is already done, or before the task's first step, is thrown
  into the coroutine, never swallowed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["start_eagerly"]

T = TypeVar("T")


def start_eagerly(
    coro: Coroutine[Any, Any, T],
    create_task: Callable[[Coroutine[Any, Any, T]], asyncio.Task[T]],
) -> asyncio.Task[T]:
    """Run ``coro`` now until it first waits; a task (from ``create_task``) does the rest."""
    try:
        waiting = coro.send(None)
    except StopIteration as done:
        return create_task(_value(done.value))
    except BaseException as exc:  # raised again, inside the task
        coro.close()
        return create_task(_raise(exc))
    task = create_task(_drive(coro, waiting))
    task.add_done_callback(lambda _: _cancel_if_suspended(coro))
    return task


def _cancel_if_suspended(coro: Coroutine[Any, Any, Any]) -> None:
    """A task cancelled before its first step never ran ``_drive``: the coroutine, left
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


async def _value(value: T) -> T:
    return value


async def _raise(exc: BaseException) -> Any:
    raise exc


async def _drive(coro: Coroutine[Any, Any, T], waiting: Any) -> T:
    """What ``asyncio.Task`` does for ``coro``, from its first suspension on."""
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
