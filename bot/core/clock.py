"""Time, injected: every component that stamps or waits takes a ``Clock``.

``SystemClock`` reads the host's clocks; ``FakeClock`` is driven by tests, which advance it
by hand (or let ``sleep`` advance it) so that nothing in the test suite waits on real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What components need of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for timeouts and rates)."""
        ...

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch (for stamps and nonces; may jump)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The host's clocks. ``monotonic`` and ``time_ns`` are the ``time`` functions
    themselves (no method frame around them: the order path reads the clock many times)."""

    monotonic = staticmethod(time.monotonic)
    time_ns = staticmethod(time.time_ns)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to.

    ``advance(s)`` moves both clocks forward and wakes sleepers whose time has come.
    With ``auto_advance=True`` a ``sleep`` advances the clock itself, so a driver loop
    runs at full speed in tests. ``set_wall_ns`` moves the wall clock alone (backwards too)
    to test behaviour across a clock that is set back.
    """

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000, *, auto_advance: bool = False):
        self._mono = 1000.0
        self._wall_ns = start_ns
        self._auto = auto_advance
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def time_ns(self) -> int:
        return self._wall_ns

    def set_wall_ns(self, wall_ns: int) -> None:
        self._wall_ns = wall_ns

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._mono += seconds
        self._wall_ns += round(seconds * 1e9)
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        if self._auto:
            self.advance(max(seconds, 0.0))
            await asyncio.sleep(0)
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut
