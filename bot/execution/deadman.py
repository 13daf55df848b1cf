"""The venue's dead-man's switch (Kraken's ``CancelAllOrdersAfter``): armed, refreshed, watched.

If the daemon goes silent for ``timeout_s`` (60 s by default), Kraken cancels every open
order of the account (KRAKEN.md §3.1). ``DeadmanSwitch`` keeps that timer pushed back:

- ``arm()`` sets it before the first order (the daemon calls it; a failure raises).
- ``run()`` refreshes it every ``refresh_s`` (``timeout_s / 4`` by default) until
  cancelled. A failed refresh is retried after ``retry_s`` (1 s), never later than the
  moment the switch may lapse, and again and again until one succeeds.
- The trigger time is tracked on the monotonic clock: the start of the request that set
  it plus the venue's delay (Kraken's ``triggerTime - currentTime``; never later than
  Kraken's own, since Kraken received the request after it started). When ``now >=
  trigger - margin_s`` with no successful refresh since, the switch may have fired:
  ``on_lapse()`` is called once (the engine then treats every order as possibly
  cancelled and reconciles), and the refresher keeps trying to re-arm. A watcher task
  does this on time even while a refresh request hangs.
- While a refresh is due and not yet done, ``hold_reads(True)`` is called (the daemon
  passes the REST client's): reads that have not started wait, so the refresh is the
  next request on the key's line and finds room on the REST counter, however many
  confirmations and history pages are queued. Released when the refresh succeeds, when the
  switch may have lapsed (nothing left to protect: reconciliation must run), or on disarm.
- ``disarm()`` sends ``timeout=0``, on a clean shutdown only, after the orders were
  cancelled; a rate-limit refusal or a transient failure is tried again (waiting as the
  REST client's counter says, or ``retry_s``) until it succeeds or the caller's deadline
  (the shutdown grace) ends it. Nothing here disarms on its own: no ``finally``, no
  ``atexit``. A crash leaves the switch armed, which is its whole point.

The timing decisions are the pure functions at the top (``trigger_at``, ``is_lapsed``,
``retry_wait``); the class only sleeps on the injected ``Clock`` and calls the venue
port's ``cancel_after`` (``bot.execution.venue``; Kraken's RFC 3339 times become the delay
in ``bot.execution.rest_answers``). ``armed``, ``trigger_at_monotonic``,
``seconds_to_trigger()`` and ``stats`` are for the readiness gate and /metrics; the gate
follows ``armed`` (``ReadinessGate.follow``): ``on_change`` is called after every change of
the trigger (armed, refreshed, disarmed), and ``lapses_at()`` says when ``armed`` turns
false by itself.

This module owns the switch's schedule. It does not cancel orders or reconcile (the
engine's), and it calls nothing but ``cancel_after``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from bot.core.clock import Clock
from bot.core.errors import BotError, ProtocolError, RateLimitError, TransientError
from bot.core.log import get_logger
from bot.execution.venue import CancelAfter

__all__ = [
    "CancelAfterApi",
    "DeadmanStats",
    "DeadmanSwitch",
    "default_margin_s",
    "is_lapsed",
    "retry_wait",
    "trigger_at",
]

MAX_TIMEOUT_S: Final = 86399
DEFAULT_RETRY_S: Final = 1.0

log = get_logger(component="deadman")


# ------------------------------------------------------------------------------ pure


def trigger_at(request_started: float, answer: CancelAfter) -> float | None:
    """When the switch fires on the local monotonic clock: the request's start plus the
    venue's delay (the venue received it later, so this is never late). None: off."""
    delay = answer.delay_s
    return None if delay is None else request_started + delay


def is_lapsed(now: float, trigger: float | None, margin_s: float) -> bool:
    """May the switch have fired? (None: not armed, so nothing to lapse.)"""
    return trigger is not None and now >= trigger - margin_s


def retry_wait(now: float, trigger: float | None, *, retry_s: float, margin_s: float) -> float:
    """Seconds before retrying a failed refresh: ``retry_s``, but no later than the moment
    the switch may lapse; once it may have, every ``retry_s``."""
    if trigger is None:
        return retry_s
    left = trigger - margin_s - now
    return min(retry_s, left) if left > 0 else retry_s


def default_margin_s(timeout_s: int) -> float:
    """The safety margin before the trigger: 5 % of the timeout, at most 2 s."""
    return min(2.0, timeout_s / 20)


# ------------------------------------------------------------------------------ driver


class CancelAfterApi(Protocol):
    """What the switch needs of the venue (``bot.execution.venue.Venue`` has it)."""

    async def cancel_after(self, timeout_s: int) -> CancelAfter: ...


@dataclass(slots=True)
class DeadmanStats:
    """Counters for /metrics; times on the switch's clock (monotonic seconds)."""

    refreshes: int = 0  # successful calls, the first arm included
    failures: int = 0
    lapses: int = 0
    last_refresh_at: float | None = None
    last_trigger_time: str | None = None  # the venue's trigger time, as it wrote it


class DeadmanSwitch:
    """``CancelAllOrdersAfter(timeout_s)`` kept armed; see the module docstring."""

    def __init__(
        self,
        venue: CancelAfterApi,
        clock: Clock,
        *,
        timeout_s: int = 60,
        refresh_s: float | None = None,
        on_lapse: Callable[[], None] | None = None,
        retry_s: float = DEFAULT_RETRY_S,
        margin_s: float | None = None,
        hold_reads: Callable[[bool], None] | None = None,
    ) -> None:
        if isinstance(timeout_s, bool) or not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be 1..{MAX_TIMEOUT_S}, got {timeout_s!r}")
        refresh = timeout_s / 4 if refresh_s is None else refresh_s
        if not 0 < refresh < timeout_s:
            raise ValueError(f"refresh_s must be within (0, {timeout_s}), got {refresh}")
        if retry_s <= 0:
            raise ValueError(f"retry_s must be positive, got {retry_s}")
        margin = default_margin_s(timeout_s) if margin_s is None else margin_s
        if not 0 <= margin < timeout_s:
            raise ValueError(f"margin_s must be within [0, {timeout_s}), got {margin}")
        self._venue = venue
        self._clock = clock
        self.timeout_s = timeout_s
        self.refresh_s = refresh
        self.retry_s = retry_s
        self.margin_s = margin
        self._on_lapse = on_lapse
        self._hold_reads = hold_reads
        self._holding = False
        self._trigger_at: float | None = None  # written by ``_trigger`` only
        self.on_change: Callable[[], None] | None = None  # after each change of the trigger
        self._next_at = 0.0  # when the refresher calls next
        self._lapse_reported = False
        self._generation = 0  # bumped by disarm: a refresh in flight then changes nothing
        self._wanted = asyncio.Event()  # armed by the daemon, not yet disarmed
        self._changed = asyncio.Event()  # the trigger moved: the watcher looks again
        self.stats = DeadmanStats()

    # -- what others read ----------------------------------------------------------------

    @property
    def armed(self) -> bool:
        """Armed, and certainly not lapsed (for the readiness gate)."""
        trigger = self._trigger_at
        return trigger is not None and not is_lapsed(
            self._clock.monotonic(), trigger, self.margin_s
        )

    def lapses_at(self) -> float | None:
        """The instant (the clock's monotonic seconds) from which ``armed`` is false
        without any change of the trigger; None when it is not armed."""
        trigger = self._trigger_at
        return None if trigger is None else trigger - self.margin_s

    @property
    def trigger_at_monotonic(self) -> float | None:
        """When Kraken will cancel everything, on the clock's monotonic scale (None: off)."""
        return self._trigger_at

    def seconds_to_trigger(self) -> float | None:
        """Seconds until Kraken cancels everything (negative: it may have); None: off."""
        trigger = self._trigger_at
        return None if trigger is None else trigger - self._clock.monotonic()

    # -- commands ------------------------------------------------------------------------

    async def arm(self) -> None:
        """Set the timer (before the first order); raises the REST client's error."""
        generation = self._generation
        started = self._clock.monotonic()
        answer = await self._venue.cancel_after(self.timeout_s)
        trigger = _armed_trigger(started, answer)
        if generation != self._generation:
            return  # disarmed meanwhile: the disarm wins
        self._wanted.set()
        self._record(started, trigger, answer)
        log.info(
            "deadman_armed",
            timeout_s=self.timeout_s,
            trigger_time=answer.trigger_time,
            seconds_to_trigger=round(trigger - self._clock.monotonic(), 3),
        )

    async def disarm(self) -> None:
        """``timeout=0``: clean shutdown only, after the orders were cancelled. Retried on
        a rate limit or a transient failure until it succeeds: bound it (the shutdown's
        grace); any other error is raised."""
        self._generation += 1
        self._wanted.clear()
        self._hold(False)
        attempt = 0
        while True:
            try:
                await self._venue.cancel_after(0)
                break
            except (RateLimitError, TransientError) as exc:
                attempt += 1
                # The REST client waits for its counter's room itself: after a refusal the
                # next call goes when the counter has decayed; a transient failure waits
                # retry_s.
                wait = 0.0 if isinstance(exc, RateLimitError) else self.retry_s
                log.warning(
                    "deadman_disarm_retry", error=str(exc), attempt=attempt, retry_in_s=wait
                )
                await self._clock.sleep(wait)
        self._trigger(None)
        self._lapse_reported = False
        self._changed.set()
        log.info("deadman_disarmed")

    async def run(self) -> None:
        """Refresh while armed, and watch for a lapse, until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watch())
                await self._refresh_loop()  # the body: see bot.market.feed on 3.11's TaskGroup
        finally:
            self._hold(False)  # stopped (or restarted): never leave the reads held

    # -- the tasks -----------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        clock = self._clock
        while True:
            if not self._wanted.is_set():
                await self._wanted.wait()
                continue
            now = clock.monotonic()
            if now < self._next_at:
                await clock.sleep(self._next_at - now)
                continue  # arm() or a refresh may have moved _next_at meanwhile
            self._hold(not self._lapse_reported)  # due: reads wait (until it may have lapsed)
            await self._refresh()

    async def _refresh(self) -> None:
        generation = self._generation
        started = self._clock.monotonic()
        try:
            answer = await self._venue.cancel_after(self.timeout_s)
            trigger = _armed_trigger(started, answer)
        except BotError as exc:
            if generation != self._generation:
                return
            self.stats.failures += 1
            now = self._clock.monotonic()
            wait = retry_wait(now, self._trigger_at, retry_s=self.retry_s, margin_s=self.margin_s)
            self._next_at = now + wait
            left = self.seconds_to_trigger()
            log.warning(
                "deadman_refresh_failed",
                error=str(exc),
                retry_in_s=round(wait, 3),
                seconds_to_trigger=None if left is None else round(left, 3),
            )
            return
        if generation != self._generation:
            return  # disarmed while this was in flight
        self._record(started, trigger, answer)
        self._hold(False)

    async def _watch(self) -> None:
        """Call ``on_lapse`` once when the trigger may have passed with no refresh since."""
        clock = self._clock
        while True:
            trigger = self._trigger_at
            if trigger is None or self._lapse_reported:
                self._changed.clear()
                await self._changed.wait()
                continue
            now = clock.monotonic()
            if not is_lapsed(now, trigger, self.margin_s):
                await clock.sleep(trigger - self.margin_s - now)
                continue  # a refresh may have moved the trigger meanwhile
            self._lapse_reported = True
            self._hold(False)  # nothing left to protect: the reconciliation must run
            self.stats.lapses += 1
            log.error(
                "deadman_lapsed",
                seconds_past_trigger=round(now - trigger, 3),
                failures=self.stats.failures,
            )
            if self._on_lapse is not None:
                self._on_lapse()

    def _hold(self, held: bool) -> None:
        if held != self._holding:
            self._holding = held
            if self._hold_reads is not None:
                self._hold_reads(held)

    def _trigger(self, trigger: float | None) -> None:
        """The trigger moved (the one place it is written): ``on_change`` told."""
        self._trigger_at = trigger
        if self.on_change is not None:
            self.on_change()

    def _record(self, started: float, trigger: float, answer: CancelAfter) -> None:
        self._trigger(trigger)
        self._next_at = started + self.refresh_s
        stats = self.stats
        stats.refreshes += 1
        stats.last_refresh_at = started
        stats.last_trigger_time = answer.trigger_time
        if self._lapse_reported:
            self._lapse_reported = False
            log.warning("deadman_rearmed", seconds_to_trigger=round(trigger - started, 3))
        self._changed.set()


def _armed_trigger(started: float, answer: CancelAfter) -> float:
    trigger = trigger_at(started, answer)
    if trigger is None:
        raise ProtocolError(f"the switch did not arm: trigger time {answer.trigger_time!r:.100}")
    return trigger
