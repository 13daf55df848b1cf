"""The readiness gate: no order leaves before every named check passes.

DESIGN.md: "No order leaves before: instruments loaded, reconciliation done, every book
checksum-valid, dead-man's switch armed, private feed subscribed." Each of those is a
*check* with a name. A check is either a **flag** that its owner sets and clears
(``set``/``clear``, e.g. the engine's ``reconciled``) or a **probe**, a callable read each
time the gate is asked (e.g. the private feed's ``subscribed``). The gate is open when
every check passes; a gate with no checks is open. The pre-trade stage asks on every order
(``is_open``): the flags are counted when they change, so it reads one count and then the
probes, which should be cheap (the daemon's are C-level callables or one property each).

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


class _Check:
    __slots__ = ("detail", "ok", "probe")

    def __init__(self, probe: Probe | None) -> None:
        self.probe = probe
        self.ok = False
        self.detail = "not yet"

    def state(self) -> CheckState:
        if self.probe is None:
            return CheckState(self.ok, "" if self.ok else self.detail)
        try:
            ok = bool(self.probe())
        except BotError as exc:  # a probe's own failure: report it, never raise it
            log.warning("readiness_probe_failed", error=str(exc))
            return CheckState(False, f"probe failed: {exc}")
        return CheckState(ok, "" if ok else "not yet")

    def passes(self) -> bool:
        """``state().ok`` without building the state (the gate's per-order question)."""
        probe = self.probe
        if probe is None:
            return self.ok
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
        self._probes: tuple[Probe, ...] = ()
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
        if check is None:
            self._checks[name] = _Check(probe)
        else:
            check.probe = probe
        self._summarise()
        self.notify()

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)
        self._summarise()
        self.notify()

    def _summarise(self) -> None:
        checks = self._checks.values()
        self._flags_failing = sum(c.probe is None and not c.ok for c in checks)
        self._probes = tuple(c.probe for c in checks if c.probe is not None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)

    # -- flags -----------------------------------------------------------------------------

    def set(self, name: str, ok: bool = True, detail: str = "") -> None:
        """Set flag ``name`` (declared if new); ``detail`` says why it fails."""
        check = self._checks.get(name)
        if check is None:
            check = self._checks[name] = _Check(None)
        if check.probe is not None:
            raise ValueError(f"readiness check {name!r} is a probe, not a flag")
        check.ok, check.detail = ok, detail or ("" if ok else "not yet")
        self._summarise()
        self.notify()

    def clear(self, name: str, detail: str = "") -> None:
        """Flag ``name`` fails again (``detail``: why)."""
        self.set(name, False, detail)

    # -- reading ---------------------------------------------------------------------------

    def state(self, name: str) -> CheckState:
        return self._checks[name].state()

    def passes(self, names: Iterable[str] | None = None) -> bool:
        """Whether ``names`` (all checks if None) pass now."""
        checks = self._checks
        wanted = checks if names is None else names
        return all(n in checks and checks[n].passes() for n in wanted)

    @property
    def is_open(self) -> bool:
        """``passes()``, read on every order: the flags' count first (no probe is read
        while a flag fails), then each probe in the order declared, up to the first that
        fails (a probe that raises fails, logged)."""
        is_open = not self._flags_failing
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
        return tuple(n for n, c in self._checks.items() if not c.state().ok)

    def snapshot(self) -> dict[str, Any]:
        """``/readyz``: whether the gate is open, and each check with why it fails."""
        states = {n: c.state() for n, c in self._checks.items()}
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
