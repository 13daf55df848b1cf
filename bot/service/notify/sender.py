"""Delivering notices without ever slowing trading: bounded queues, a rate limit, retries.

``Notifier.publish(notice)`` never waits and never raises: it puts the notice on the queue
of every notifier whose ``min_level`` it reaches, or, when a queue holds
``notify.queue_size`` already, drops it and counts the drop. ``run(session)`` is the one
task that delivers (the daemon supervises it, like its other tasks): per notifier, oldest
first, at most ``max_per_minute`` (a token bucket on the injected clock), each POST bounded
by ``timeout_s``. A failure is retried after a jittered backoff (1 s doubling to 60 s, or
the service's own ``Retry-After`` / Telegram's ``retry_after`` on a 429), ``attempts``
times in all; a 4xx other than 408/429 is not retried. What is given up is dropped and
counted (``krakenbot_notify_dropped_total{notifier, reason}``: ``queue_full``,
``rejected``, ``failed``, ``unsent`` at shutdown). A notice leaves its queue only once
delivered, so a restarted task sends it again (at least once). ``drain(seconds)`` waits,
bounded, for the queues to empty: the daemon's last words at shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from bot.config import NotifierConfig, NotifyConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock
from bot.core.log import get_logger, scrub_text
from bot.core.waits import wait_event
from bot.service.metrics import Sample
from bot.service.notify.notice import Notice
from bot.service.notify.payloads import Request, request_for

__all__ = ["RETRY_POLICY", "Bucket", "Channel", "Notifier"]

RETRY_POLICY: Final = BackoffPolicy(1.0, 60.0)
MAX_RETRY_AFTER_S: Final = 300.0
_NO_RETRY: Final = frozenset(range(400, 500)) - {408, 429}
log = get_logger(component="notify")


class Bucket:
    """A token bucket: ``per_minute`` tokens, refilled evenly, on a monotonic clock."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._tokens = self.capacity
        self._at = now

    def wait_s(self, now: float) -> float:
        """Seconds until a token is free (0: one is)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now


@dataclass
class Channel:
    """One notifier's queue and counts."""

    name: str
    config: NotifierConfig
    bucket: Bucket
    queue: deque[Notice] = field(default_factory=deque)
    sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    busy: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass(frozen=True, slots=True)
class _Result:
    ok: bool
    retry: bool = False
    retry_after_s: float | None = None
    why: str = ""


class Notifier:
    """See the module docstring. ``random`` draws the backoff's jitter (seed it in tests)."""

    def __init__(
        self,
        settings: NotifyConfig,
        clock: Clock,
        *,
        random: Callable[[], float] | None = None,
        policy: BackoffPolicy = RETRY_POLICY,
    ) -> None:
        self.settings, self._clock = settings, clock
        self._random, self._policy = random, policy
        now = clock.monotonic()
        self.channels = [
            Channel(n.label(i), n, Bucket(settings.max_per_minute, now))
            for i, n in enumerate(settings.notifiers)
        ]
        self._progress = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def publish(self, item: Notice) -> None:
        """Queue ``item`` for every notifier that wants its level; never waits."""
        for ch in self.channels:
            if not item.at_least(ch.config.min_level):
                continue
            if len(ch.queue) >= self.settings.queue_size:
                ch.drop("queue_full")
                log.warning("notify_dropped", notifier=ch.name, reason="queue_full",
                            kind=item.kind)  # fmt: skip
                continue
            ch.queue.append(item)
            ch.wake.set()

    def pending(self) -> int:
        return sum(len(ch.queue) for ch in self.channels)

    def samples(self) -> Iterator[Sample]:
        """The metrics source: sent, dropped (by reason) and waiting, per notifier."""
        for ch in self.channels:
            yield Sample("notify_sent", ch.sent, (ch.name,))
            yield Sample("notify_queued", len(ch.queue), (ch.name,))
            for reason, n in ch.dropped.items():
                yield Sample("notify_dropped", n, (ch.name, reason))

    # -- the task ------------------------------------------------------------------------------

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Deliver until cancelled (the daemon's supervised ``notify`` task)."""
        async with asyncio.TaskGroup() as tg:
            for ch in self.channels:
                tg.create_task(self._deliver(ch, session), name=f"notify:{ch.name}")
            await asyncio.Event().wait()

    async def drain(self, seconds: float) -> bool:
        """Wait (at most ``seconds`` on the clock) until every queue is empty; what is left
        then is dropped as ``unsent``. True if all was delivered."""
        clock = self._clock
        deadline = clock.monotonic() + seconds
        while self.pending():
            left = deadline - clock.monotonic()
            if left <= 0:
                break
            progress = self._progress
            await wait_event(progress, clock, left)
        left_over = self.pending()
        for ch in self.channels:
            if ch.queue:
                ch.drop("unsent", len(ch.queue))
                log.warning("notify_unsent", notifier=ch.name, count=len(ch.queue))
                ch.queue.clear()
        return left_over == 0

    async def _deliver(self, ch: Channel, session: aiohttp.ClientSession) -> None:
        clock = self._clock
        while True:
            if not ch.queue:
                ch.wake.clear()
                await ch.wake.wait()
                continue
            wait = ch.bucket.wait_s(clock.monotonic())
            if wait > 0:
                await clock.sleep(wait)
                continue
            ch.bucket.take(clock.monotonic())
            item = ch.queue[0]
            ch.busy = True
            try:
                delivered = await self._attempts(ch, session, item)
            finally:
                ch.busy = False
            if ch.queue and ch.queue[0] is item:
                ch.queue.popleft()
            if delivered:
                ch.sent += 1
            self._progress.set()
            self._progress = asyncio.Event()

    async def _attempts(self, ch: Channel, session: aiohttp.ClientSession, item: Notice) -> bool:
        request = request_for(ch.config, item)
        backoff = Backoff(self._policy, self._random)
        attempts = self.settings.attempts
        for attempt in range(1, attempts + 1):
            result = await self._post(session, request)
            if result.ok:
                return True
            if not result.retry or attempt == attempts:
                reason = "failed" if result.retry else "rejected"
                ch.drop(reason)
                log.warning(
                    "notify_failed", notifier=ch.name, kind=item.kind, reason=reason,
                    why=scrub_text(result.why), attempts=attempt,
                )  # fmt: skip
                return False
            delay = backoff.next_delay()
            if result.retry_after_s is not None:
                delay = min(max(result.retry_after_s, delay), MAX_RETRY_AFTER_S)
            log.debug("notify_retry", notifier=ch.name, why=scrub_text(result.why),
                      retry_s=round(delay, 3))  # fmt: skip
            await self._clock.sleep(delay)
        return False

    async def _post(self, session: aiohttp.ClientSession, request: Request) -> _Result:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            async with session.post(request.url, json=request.body, timeout=timeout) as resp:
                body = (await resp.read())[:500].decode("utf-8", "replace")
                if 200 <= resp.status < 300:
                    return _Result(True)
                why = f"HTTP {resp.status}: {body}"
                if resp.status in _NO_RETRY:
                    return _Result(False, why=why)
                return _Result(False, True, _retry_after(resp.headers.get("Retry-After"), body),
                               why)  # fmt: skip
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return _Result(False, True, why=f"{type(exc).__name__}: {exc}")


def _retry_after(header: str | None, body: str) -> float | None:
    """Seconds a 429 asks to wait: ``Retry-After``, or the JSON ``retry_after`` (Discord's
    top level, Telegram's ``parameters``)."""
    if header is not None:
        try:
            return max(float(header), 0.0)
        except ValueError:
            pass
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    found = data.get("retry_after")
    params = data.get("parameters")
    if found is None and isinstance(params, dict):
        found = params.get("retry_after")
    return float(found) if isinstance(found, int | float) and found >= 0 else None
