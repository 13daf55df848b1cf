"""Simulated time for a backtest: the data's timestamps drive it; nothing ever waits.

``SimClock`` is a ``bot.core.clock.Clock`` whose time moves only when the backtest's
driver moves it, and one ordered agenda of what is due: the venue's deliveries (an order
reaching the matching engine, an answer or an execution report reaching the engine) and
every ``sleep`` of the components (strategy timers, the engine's waits). ``run_until(t)``
runs each due item in time order (ties in the order they were scheduled), each at its own
time, letting the event loop finish what each one started (``settle``) before the next:
so the daemon's asyncio code runs unchanged, as fast as the CPU allows, and the same
inputs always run the same way.

``settle`` reads the running loop's ready queue (CPython's ``_ready``) to know when every
task that can run has run; on a loop without one it yields a fixed number of times.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Final

__all__ = ["SimClock", "settle"]

_NS: Final = 1_000_000_000
_MONO_ORIGIN: Final = 1000.0
_FALLBACK_YIELDS: Final = 64


async def settle() -> None:
    """Let every task that can run now run, until none can (nothing is due on a clock)."""
    loop: Any = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if ready is None:
        for _ in range(_FALLBACK_YIELDS):
            await asyncio.sleep(0)
        return
    while ready:  # noqa: ASYNC110 (the loop's own queue, not an event: nothing to wait for)
        await asyncio.sleep(0)


class SimClock:
    """A clock driven by the data (see the module docstring). ``start_ns``: the wall time
    it starts at (the data's first timestamp)."""

    def __init__(self, start_ns: int) -> None:
        self._now_ns = start_ns
        self._origin_ns = start_ns
        self._agenda: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    # -- Clock ---------------------------------------------------------------------------

    def monotonic(self) -> float:
        return _MONO_ORIGIN + (self._now_ns - self._origin_ns) / _NS

    def time_ns(self) -> int:
        return self._now_ns

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0 or not math.isfinite(seconds):
            if seconds == math.inf:
                await asyncio.get_running_loop().create_future()  # forever: until cancelled
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.at(self._now_ns + math.ceil(seconds * _NS), lambda: _wake(fut))
        await fut

    # -- the agenda ----------------------------------------------------------------------

    def at(self, when_ns: int, action: Callable[[], None]) -> None:
        """Run ``action`` when the clock reaches ``when_ns`` (now if that has passed)."""
        heapq.heappush(self._agenda, (max(when_ns, self._now_ns), next(self._seq), action))

    def next_due_ns(self) -> int | None:
        return self._agenda[0][0] if self._agenda else None

    def move_to(self, when_ns: int) -> None:
        """Stand at ``when_ns`` without running the agenda (a pure test's driver, which
        runs nothing scheduled); never back in time."""
        if when_ns > self._now_ns:  # noqa: PLR1730 (a max() call costs more, per frame)
            self._now_ns = when_ns

    async def run_until(self, when_ns: int) -> None:
        """Run everything due up to ``when_ns`` in time order, then stand at ``when_ns``."""
        agenda = self._agenda
        while agenda and agenda[0][0] <= when_ns:
            due, _, action = heapq.heappop(agenda)
            self._now_ns = due
            action()
            await settle()
        self._now_ns = max(self._now_ns, when_ns)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a sleeper cancelled meanwhile
        fut.set_result(None)
