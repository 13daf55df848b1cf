"""Keeps the daemon's long-lived tasks running: one that stops unasked is logged, counted
and restarted, never silent.

The rule (DESIGN.md, "Availability is part of correctness"): a component task (the feeds,
the engine, the dead-man's switch, the strategies' timers, the pollers) runs until the
daemon cancels it. Ending any other way is an error: returning, raising, or being
cancelled by someone else (a timeout entered in the wrong task, a stray ``cancel()``).
``Supervisor.keep(name, run)`` runs ``run()`` and, when it ends unasked, logs
``task_stopped`` (error, with why and the traceback of what it raised), counts it
(``restarts``, exported as ``krakenbot_task_restarts_total{task}``), waits a capped,
jittered backoff on the injected clock (reset once a run lasted ``healthy_after_s``),
logs ``task_restarted`` and runs it again.

Not restarted:

- a *fatal* error (``FATAL``: the config, the store, the key or its permissions: a human
  must act) is raised on, and ends the daemon as before (exit 2 or 1);
- an ending that ``finished()`` calls expected (a halted strategy's timers end with it) is
  logged at info (``task_finished``) and left ended;
- the supervisor's own cancellation (the daemon stopping) is passed on to the task and
  raised again, never swallowed.

Each run is a child task that the supervisor awaits (``asyncio.wait``, which raises only the
supervisor's own cancellation) and never outlives: a cancelled supervisor cancels its
child and waits for it. That is how a stray cancellation of the component (its task is
cancelled) is told apart from the daemon's cancellation of the supervisor (the
supervisor's task is), without catching ``CancelledError`` anywhere. (A ``TaskGroup`` per
run cannot tell them apart on 3.11: a child failing while the group's body has already
ended leaves the parent's cancel request counted.) This module owns the restart policy;
the daemon says what runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock
from bot.core.errors import AuthError, ConfigError, StoreError
from bot.core.log import get_logger

__all__ = ["FATAL", "Supervisor", "TaskStats"]

FATAL: Final = (ConfigError, StoreError, AuthError)
"""Errors a restart cannot cure: raised on, so the daemon exits (2 for config, else 1)."""
RESTART_POLICY: Final = BackoffPolicy(0.5, 30.0)
HEALTHY_AFTER_S: Final = 60.0

log = get_logger(component="supervisor")


@dataclass(slots=True)
class TaskStats:
    """One supervised task's restarts (for /metrics) and why it last stopped."""

    restarts: int = 0
    last_reason: str | None = None


class Supervisor:
    """See the module docstring. ``random`` draws the backoff's jitter (seed it in tests)."""

    def __init__(
        self,
        clock: Clock,
        *,
        policy: BackoffPolicy = RESTART_POLICY,
        healthy_after_s: float = HEALTHY_AFTER_S,
        random: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock
        self._policy = policy
        self._healthy_after_s = healthy_after_s
        self._random = random
        self._stats: dict[str, TaskStats] = {}

    @property
    def stats(self) -> Mapping[str, TaskStats]:
        """Every supervised task by name (present from its first start)."""
        return self._stats

    async def keep(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, None]],
        *,
        finished: Callable[[], bool] | None = None,
    ) -> None:
        """Run ``run()`` (a fresh coroutine each time) until cancelled; restart it whenever
        it ends unasked. ``finished``: True when a return is the expected end."""
        clock, stats = self._clock, self._stats.setdefault(name, TaskStats())
        backoff = Backoff(self._policy, self._random)
        while True:
            started = clock.monotonic()
            child = asyncio.create_task(run(), name=name)
            try:
                await asyncio.wait((child,))  # raises nothing but our own cancellation
            finally:
                if not child.done():  # we are cancelled: the daemon is stopping
                    child.cancel()
                    await asyncio.wait((child,))
                if not child.cancelled():
                    child.exception()  # retrieved, whatever happens next
            error = None if child.cancelled() else child.exception()
            if error is not None and _fatal(error):
                raise error
            if error is not None:
                reason = f"raised {type(error).__name__}: {error}"
            elif child.cancelled():
                reason = "cancelled by another task"
            elif finished is not None and finished():
                log.info("task_finished", task=name)
                return
            else:
                reason = "returned"
            if clock.monotonic() - started >= self._healthy_after_s:
                backoff.reset()
            delay = backoff.next_delay()
            stats.restarts += 1
            stats.last_reason = reason
            extra: dict[str, Any] = {} if error is None else {"exc_info": error}
            log.error(
                "task_stopped", task=name, reason=reason, restarts=stats.restarts,
                restart_in_s=round(delay, 3), **extra,
            )  # fmt: skip
            await clock.sleep(delay)
            log.warning("task_restarted", task=name, restarts=stats.restarts)


def _fatal(error: BaseException) -> bool:
    return not isinstance(error, Exception) or isinstance(error, FATAL)
