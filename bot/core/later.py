"""Run a callable after the current step of the event loop: work that must not delay the
step that asks for it (a durable write after an order's request has been written).

``Later`` is the shape a pure core takes such a scheduler in (``bot.kraken.nonce``,
``bot.execution.ids``); ``run_soon`` is the event loop's, for callers that run inside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Later", "run_soon"]

Later = Callable[[Callable[[], object]], object]
"""Runs a callable after the current step (``run_soon``, or a list's ``append`` in a test)."""


def run_soon(callback: Callable[[], object]) -> None:
    """``callback`` on the running event loop, after the current step (its ``call_soon``).

    The loop is looked up when the callback is scheduled, not when the scheduler is handed
    over, so the callback runs on the loop that asked for it, whichever loop built its owner
    (a loop taken at construction could be closed by then, and an owner built outside a loop
    could not take one)."""
    asyncio.get_running_loop().call_soon(callback)
