"""Capped exponential backoff with jitter: how long to wait before the next attempt.

Pure: no clock, no sleep, no global random state. ``Backoff.next_delay()`` returns the
seconds to wait before attempt ``n`` and moves on; ``reset()`` starts the series again
(after a healthy connection, or a book that verified). The caller does the waiting on its
own clock, so a test swaps in a millisecond policy and a seeded random source.

The series: the base delay starts at ``initial_s`` and is multiplied by ``factor`` after
each attempt, never past ``max_s``. Each delay is the base minus a random share of up to
``jitter`` of it, drawn uniformly, so delays lie in ``[base·(1-jitter), base]``: never
above the cap, and clients that lost the same server at the same moment spread out
instead of reconnecting in lock step. ``jitter=1`` is "full jitter" (``[0, base]``).

This module owns the delay arithmetic only; whether to retry at all is the caller's
decision (``bot.net.ws.should_reconnect``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """The shape of the series. Defaults suit a WebSocket reconnect to Kraken."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(
                f"backoff needs 0 < initial_s <= max_s, got {self.initial_s}, {self.max_s}"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be within [0, 1], got {self.jitter}")


class Backoff:
    """One series of delays. ``random`` returns floats in ``[0, 1)`` (seed it in tests)."""

    __slots__ = ("_attempts", "_base", "_random", "policy")

    def __init__(
        self,
        policy: BackoffPolicy | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.policy = policy if policy is not None else BackoffPolicy()
        # A private generator: never the module-level one other code may seed.
        self._random = random if random is not None else _default_random()
        self._base = self.policy.initial_s
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last ``reset``."""
        return self._attempts

    def peek_base(self) -> float:
        """The base (un-jittered) delay the next ``next_delay`` will draw from."""
        return self._base

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; advances the series."""
        policy = self.policy
        base = self._base
        self._base = min(policy.max_s, base * policy.factor)
        self._attempts += 1
        return base * (1.0 - policy.jitter * self._random())

    def reset(self) -> None:
        """Start again from ``initial_s``."""
        self._base = self.policy.initial_s
        self._attempts = 0


def _default_random() -> Callable[[], float]:
    return random.Random().random
