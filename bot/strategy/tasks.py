"""Where the strategies' commands run: tasks of the daemon's group, started eagerly.

``OrderTasks`` is the ``spawn`` the engine is given (``ExecutionEngine(spawn=...)``): each
accepted command's work becomes a task of the daemon's ``TaskGroup`` whose first step runs
at once (``bot.core.eager``), so a place's request is written before the strategy's handler
returns, and its timeouts and cancellation are that task's, never the feed's or timer's
that placed it. ``spawn_task`` is set by the daemon to its group's ``create_task`` once it
runs, and to None when it stops (the task kept ready for the next command is then
cancelled); ``drain`` waits for the commands in flight (a shutdown bounds it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from bot.core.eager import EagerSpawner, TaskFactory

__all__ = ["OrderTasks"]


class OrderTasks:
    """See the module docstring. ``pending``: the tasks in flight."""

    def __init__(self) -> None:
        self._spawn_task: TaskFactory | None = None
        self._spawner: EagerSpawner | None = None
        self.pending: set[asyncio.Task[None]] = set()

    @property
    def spawn_task(self) -> TaskFactory | None:
        """The daemon's ``TaskGroup.create_task`` once it runs (None before, and after
        the daemon stopped: then a task kept ready for the next command is cancelled)."""
        return self._spawn_task

    @spawn_task.setter
    def spawn_task(self, create_task: TaskFactory | None) -> None:
        if self._spawner is not None:
            self._spawner.close()
        self._spawn_task = create_task
        self._spawner = None if create_task is None else EagerSpawner(create_task)
        if self._spawner is not None:
            self._spawner.prime()  # the first order's task, made before it is needed

    def spawn(self, coro: Coroutine[Any, Any, None]) -> bool:
        """Run ``coro`` as a task of the daemon's group, its first step now. False: not
        started (no group yet, or it is closing), ``coro`` closed."""
        if self._spawner is None:
            coro.close()
            return False
        try:
            task = self._spawner.start(coro)
        except RuntimeError:  # the TaskGroup is shutting down: nothing was started
            return False
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return True

    async def drain(self) -> None:
        """Wait for every command in flight (bound it with ``asyncio.timeout``)."""
        while self.pending:
            await asyncio.wait(set(self.pending))
