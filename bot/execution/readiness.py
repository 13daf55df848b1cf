"""The readiness gate: no order leaves before every named check passes.

DESIGN.md: "No order leaves before: instruments loaded, reconciliation done, every book
checksum-valid, dead-man's switch armed, private feed subscribed." Each of those is a
*check* with a name. A check is either a **flag** that its owner sets and clears
(``set``/``clear``, e.g. the engine's ``reconciled``) or a **probe**, a callable read each
time the gate is asked (e.g. the private feed's ``subscribed``). The gate is open when
every check passes; a gate with no checks is open. The pre-trade stage asks on every order
(``is_open``): the flags are counted when they change, so it reads one count and then the
probes, which should be cheap (the daemon's are C-level callables or one property each).

A check whose owner can say when it may have changed is best **followed**
(``follow(name, probe, until=...)``): the gate reads its probe once now and again each time
the owner calls the callable ``follow`` returns, and keeps the answer as a flag. The owner
calls it after every change that may turn the probe (the private feed when its
subscription goes live or its connection opens or closes, the feed when a book turns valid
or is lost, the dead man's switch when it is armed, refreshed or disarmed). A check that
fails by itself with time passing says when (``until``: a flag set with ``until`` passes
only before that instant on the gate's clock; the dead man's switch's lapse). So the
per-order question reads the flags' count and the earliest ``until``, and no probe: the
owners' objects are not touched on an order's path. While every check is a flag (set or
followed) and all pass, ``open_until`` is that earliest ``until`` (``math.inf`` if none
lapses), and -inf otherwise: before it the gate is open for certain, which the pre-trade
stage reads first, one attribute. The pushed answer is only as good as
its owner's calls: each owner's tests hold the followed flag equal to its probe through
random sequences of its events (tests/unit/test_readiness_follow.py).

``wait()`` returns when the gate is open (or when the named checks pass). Flags wake
waiters at once; probes change without telling anyone, so waiters also look again every
``poll_s`` on the injected clock, and an owner may call ``notify()`` to wake them early.
``snapshot()`` is the body of ``/readyz``: ``{"ready": bool, "checks": {name: {"ok":
bool, "detail": str}}}``. A probe that raises counts as failing (its error is the detail)
and is logged; it never breaks the gate. Open/closed changes are logged
(``readiness_open``, ``readiness_closed`` with the failing checks) when they are noticed.

This module owns the gate only; what each check means belongs to its owner (feed, deadman,
private feed, engine). Refusing an order while the gate is closed is the pre-trade
stage's (``bot.execution.pretrade``: ``not_ready``, the failing checks named).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError
from bot.core.log import get_logger

__all__ = [
    "BOOKS_VALID",
    "DEADMAN_ARMED",
    "INSTRUMENTS_LOADED",
    "PRIVATE_SUBSCRIBED",
    "RECONCILED",
    "STANDARD_CHECKS",
    "CheckState",
    "ReadinessGate",
]

INSTRUMENTS_LOADED: Final = "instruments"
RECONCILED: Final = "reconciled"
BOOKS_VALID: Final = "books"
DEADMAN_ARMED: Final = "deadman"
PRIVATE_SUBSCRIBED: Final = "private_feed"
STANDARD_CHECKS: Final = (
    INSTRUMENTS_LOADED,
    RECONCILED,
    BOOKS_VALID,
    DEADMAN_ARMED,
    PRIVATE_SUBSCRIBED,
)

Probe = Callable[[], bool]
log = get_logger(component="readiness")


@dataclass(frozen=True, slots=True)
class CheckState:
    ok: bool
    detail: str = ""


_LAPSED: Final = "lapsed"


class _Check:
    __slots__ = ("detail", "followed", "ok", "probe", "until")

    def __init__(self, probe: Probe | None) -> None:
        self.probe = probe
        self.ok = False
        self.detail = "not yet"
        self.until = math.inf  # a flag passes only before this (monotonic) instant
        self.followed = False  # a flag set from a probe, when its owner says so

    def state(self, now: float) -> CheckState:
        if self.probe is None:
            if self.ok and now >= self.until:
                return CheckState(False, _LAPSED)
            return CheckState(self.ok, "" if self.ok else self.detail)
        try:
            ok = bool(self.probe())
        except BotError as exc:  # a probe's own failure: report it, never raise it
            log.warning("readiness_probe_failed", error=str(exc))
            return CheckState(False, f"probe failed: {exc}")
        return CheckState(ok, "" if ok else "not yet")

    def passes(self, now: float) -> bool:
        """``state(now).ok`` without building the state."""
        probe = self.probe
        if probe is None:
            return self.ok and now < self.until
        try:
            return bool(probe())
        except BotError as exc:
            log.warning("readiness_probe_failed", error=str(exc))
            return False


class ReadinessGate:
    """Named checks; open when all pass. See the module docstring."""

    def __init__(
        self,
        checks: Iterable[str] = (),
        *,
        clock: Clock | None = None,
        poll_s: float = 0.25,
    ) -> None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be positive, got {poll_s}")
        self._checks: dict[str, _Check] = {}
        # What ``is_open`` reads on every order, kept by ``_summarise`` whenever a check is
        # declared, removed or set: how many flags fail (flags change only here), and the
        # probes in the order they were declared.
        self._flags_failing = 0
        self._until = math.inf  # the earliest ``until`` of the passing flags
        self._probes: tuple[Probe, ...] = ()
        # Before this instant the gate is open for certain: every check a flag (set or
        # followed), all passing, none lapsed; -inf while that is not so (a flag fails, or
        # a probe must be read). ``PreTrade`` reads it on every place, before ``is_open``.
        self.open_until = -math.inf
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._poll_s = poll_s
        self._changed = asyncio.Event()
        self._was_open: bool | None = None
        for name in checks:
            self.add(name)

    # -- declaring checks ------------------------------------------------------------------

    def add(self, name: str, probe: Probe | None = None) -> None:
        """Declare check ``name``: a flag (failing until ``set``) or a ``probe``. Declaring
        it again replaces its probe (a flag keeps its state)."""
        if not name:
            raise ValueError("a check needs a name")
        check = self._checks.get(name)
        if check is None or check.followed:  # a followed check's owner no longer counts
            self._checks[name] = _Check(probe)
        else:
            check.probe = probe
        self._summarise()
        self.notify()

    def follow(
        self, name: str, probe: Probe, *, until: Callable[[], float | None] | None = None
    ) -> Callable[[], None]:
        """Declare check ``name`` as a flag set from ``probe`` now and each time the
        returned callable is called: its owner calls it after every change that may turn
        ``probe``. ``until`` (read with the probe) is the instant on the gate's clock
        (``monotonic``) after which the check fails by itself, or None for never; it must
        be the same clock as the owner's. A probe that raises fails the check (logged),
        as a polled probe does. Declaring ``name`` again (``add``, ``follow``) replaces it."""
        if not name:
            raise ValueError("a check needs a name")
        check = self._checks[name] = _Check(None)  # a fresh one: an earlier owner's calls
        check.followed = True  # no longer count (``recheck`` compares by identity)

        def recheck() -> None:
            if self._checks.get(name) is not check:
                return  # removed or declared again: this owner's calls no longer count
            ok, detail, at = False, "not yet", None
            try:
                ok = bool(probe())
                at = until() if ok and until is not None else None
            except BotError as exc:
                log.warning("readiness_probe_failed", check=name, error=str(exc))
                ok, detail = False, f"probe failed: {exc}"
            self._put(check, ok, "" if ok else detail, math.inf if at is None else at)

        recheck()
        return recheck

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)
        self._summarise()
        self.notify()

    def _summarise(self) -> None:
        checks = self._checks.values()
        self._flags_failing = sum(c.probe is None and not c.ok for c in checks)
        self._until = min((c.until for c in checks if c.probe is None and c.ok), default=math.inf)
        self._probes = tuple(c.probe for c in checks if c.probe is not None)
        certain = not self._flags_failing and not self._probes
        self.open_until = self._until if certain else -math.inf

    @property
    def clock(self) -> Clock:
        """The clock ``until`` and ``open_until`` are read on (``monotonic``)."""
        return self._clock

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)

    # -- flags -----------------------------------------------------------------------------

    def set(
        self, name: str, ok: bool = True, detail: str = "", *, until: float | None = None
    ) -> None:
        """Set flag ``name`` (declared if new); ``detail`` says why it fails. A passing
        flag with ``until`` fails by itself from that instant on the gate's clock
        (``monotonic``; its detail then ``lapsed``) until it is set again."""
        check = self._checks.get(name)
        if check is None:
            check = self._checks[name] = _Check(None)
        if check.probe is not None:
            raise ValueError(f"readiness check {name!r} is a probe, not a flag")
        if check.followed:
            raise ValueError(f"readiness check {name!r} is followed: its owner sets it")
        self._put(check, ok, detail, math.inf if until is None else until)

    def _put(self, check: _Check, ok: bool, detail: str, until: float) -> None:
        check.ok, check.detail = ok, detail or ("" if ok else "not yet")
        check.until = until
        self._summarise()
        self.notify()

    def clear(self, name: str, detail: str = "") -> None:
        """Flag ``name`` fails again (``detail``: why)."""
        self.set(name, False, detail)

    # -- reading ---------------------------------------------------------------------------

    def state(self, name: str) -> CheckState:
        return self._checks[name].state(self._clock.monotonic())

    def passes(self, names: Iterable[str] | None = None) -> bool:
        """Whether ``names`` (all checks if None) pass now."""
        checks, now = self._checks, self._clock.monotonic()
        wanted = checks if names is None else names
        return all(n in checks and checks[n].passes(now) for n in wanted)

    @property
    def is_open(self) -> bool:
        """``passes()``, read on every order: the flags' count and their earliest
        ``until`` first (no probe is read while a flag fails), then each probe in the order
        declared, up to the first that fails (a probe that raises fails, logged)."""
        is_open = not self._flags_failing
        if is_open and self._until != math.inf and self._clock.monotonic() >= self._until:
            is_open = False
        if is_open:
            for probe in self._probes:
                try:
                    ok = probe()
                except BotError as exc:
                    log.warning("readiness_probe_failed", error=str(exc))
                    ok = False
                if not ok:
                    is_open = False
                    break
        if is_open is not self._was_open:
            self._note(is_open)
        return is_open

    def failing(self) -> tuple[str, ...]:
        """The checks that fail now, in the order they were declared."""
        now = self._clock.monotonic()
        return tuple(n for n, c in self._checks.items() if not c.state(now).ok)

    def snapshot(self) -> dict[str, Any]:
        """``/readyz``: whether the gate is open, and each check with why it fails."""
        now = self._clock.monotonic()
        states = {n: c.state(now) for n, c in self._checks.items()}
        ready = all(s.ok for s in states.values())
        self._note(ready)
        return {
            "ready": ready,
            "checks": {n: {"ok": s.ok, "detail": s.detail} for n, s in states.items()},
        }

    # -- waiting ---------------------------------------------------------------------------

    def notify(self) -> None:
        """Something a check reads has changed: waiters look again now."""
        self._changed.set()
        self._changed = asyncio.Event()
        self._note(self.passes())

    async def wait(self, names: Iterable[str] | None = None) -> None:
        """Return once ``names`` (every check if None) pass; wrap in ``asyncio.timeout``
        to bound it. A name never declared never passes. Only probes are polled: a wait
        on flags alone sleeps until one changes."""
        wanted = None if names is None else tuple(names)
        while not self.passes(wanted):
            changed = self._changed
            if not self._has_probe(wanted):
                await changed.wait()
                continue
            poll = asyncio.ensure_future(self._clock.sleep(self._poll_s))
            flag = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait((poll, flag), return_when=asyncio.FIRST_COMPLETED)
            finally:
                poll.cancel()
                flag.cancel()
                await asyncio.wait((poll, flag))
        self._note(self.passes())

    def _has_probe(self, names: tuple[str, ...] | None) -> bool:
        checks = (
            self._checks.values()
            if names is None
            else (self._checks[n] for n in names if n in self._checks)
        )
        return any(c.probe is not None for c in checks)

    def _note(self, is_open: bool) -> None:
        if is_open == self._was_open:
            return
        self._was_open = is_open
        if is_open:
            log.info("readiness_open")
        else:
            log.info("readiness_closed", failing=list(self.failing()))
