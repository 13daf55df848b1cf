"""A bounded wait for loopback tests: poll a condition, fail naming it after ``timeout_s``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait (bounded) for ``check``; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
