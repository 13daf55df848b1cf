"""``Turn``: a mutex for one event loop, taken at once when free, served by priority.

The REST client holds one turn per API key from the nonce to the answer (``bot.kraken.rest``).
``asyncio.Lock.acquire`` is a coroutine even when the lock is free, and the order path takes
the turn on every request; ``try_take`` takes a free turn in a plain call, ``take`` waits in
line for it. ``release`` hands the turn straight to the next waiter, so nobody barges in
between (the turn stays taken).

Who is next: the waiter with the lowest ``priority`` (``bot.kraken.rest_methods.Lane``: the
dead-man's switch and cancels before order entry before reads), and among equals the one
that came first. A FIFO line let a switch refresh queue behind every read a busy moment had
started, long enough for the switch to lapse (issue 10).

Cancellation: a waiter cancelled in line leaves the line; one cancelled just after the turn
was handed to it (before it ran) passes the turn on, so the turn is never lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["Turn"]


class Turn:
    """See the module docstring. Not thread-safe: one event loop."""

    __slots__ = ("_held", "_seq", "_waiters")

    def __init__(self) -> None:
        self._held = False
        # (priority, arrival, future): a cancelled waiter's future is done and skipped
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def locked(self) -> bool:
        """Whether someone holds the turn (then others wait in line)."""
        return self._held

    def waiting(self) -> int:
        """How many wait in line now."""
        return sum(1 for _, _, waiter in self._waiters if not waiter.done())

    def try_take(self) -> bool:
        """Take the turn if it is free (never while others wait: they hold it in line)."""
        if self._held:
            return False
        self._held = True
        return True

    async def take(self, priority: int = 0) -> None:
        """Take the turn: at once if it is free, else when no one of a lower ``priority``
        number, nor of the same one who came earlier, is waiting."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed to us as we were cancelled: pass it on
            else:
                waiter.cancel()  # skipped by release()
            raise

    def release(self) -> None:
        """Give the turn to the next one in line, or free it."""
        if not self._held:
            raise RuntimeError("Turn.release() while the turn is not taken")
        waiters = self._waiters
        while waiters:
            _, _, waiter = heapq.heappop(waiters)
            if not waiter.done():
                waiter.set_result(None)  # handed over: the turn stays taken
                return
        self._held = False
