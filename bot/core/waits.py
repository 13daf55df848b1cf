"""One bounded wait: until an ``asyncio.Event`` is set or time passes on a ``Clock``.

The daemon's start-up retries (a stop request cuts their sleep short), the dashboard's
stream (the next picture, or its keepalive), the notifier (work, or its rate limit) and
its drain at shutdown all wait this way, on the injected clock, so tests never sleep on a
real one.
"""

from __future__ import annotations

import asyncio

from bot.core.clock import Clock

__all__ = ["wait_event"]


async def wait_event(event: asyncio.Event, clock: Clock, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass on ``clock``; True if it was set."""
    if event.is_set():
        return True
    setter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(max(seconds, 0.0)))
    try:
        await asyncio.wait((setter, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        setter.cancel()
        sleeper.cancel()
        await asyncio.wait((setter, sleeper))
    return event.is_set()
