"""``Turn``: a first-come, first-served mutex for one event loop, taken at once when free.

The REST client holds one turn per API key from the nonce to the answer (``bot.kraken.rest``).
``asyncio.Lock.acquire`` is a coroutine even when the lock is free, and the order path takes
the turn on every request; ``try_take`` takes a free turn in a plain call, ``take`` waits in
line for it. ``release`` hands the turn straight to the first waiter, so nobody barges in
between (the turn stays taken), and waiters are served in arrival order.

Cancellation: a waiter cancelled in line leaves the line; one cancelled just after the turn
was handed to it (before it ran) passes the turn on, so the turn is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Turn"]


class Turn:
    """See the module docstring. Not thread-safe: one event loop."""

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether someone holds the turn (then others wait in line)."""
        return self._held

    def try_take(self) -> bool:
        """Take the turn if it is free (never while others wait: they hold it in line)."""
        if self._held:
            return False
        self._held = True
        return True

    async def take(self) -> None:
        """Take the turn: at once if it is free, else after everyone ahead in line."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed to us as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # already skipped by release()
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give the turn to the first one waiting in line, or free it."""
        if not self._held:
            raise RuntimeError("Turn.release() while the turn is not taken")
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # handed over: the turn stays taken
                return
        self._held = False
