"""The fault schedule the spot and Futures simulators share: bounds, states, REST uses.

A fault is a spec (what, where, how much: each simulator has its own ``FaultSpec`` with its
own kinds) turned into a ``Fault`` record with an id and a state: scheduled → active → done
(or cancelled). Every fault is bounded: by a ``count`` (uses, or connections affected), by
a ``duration_s``, or both; a REST fault with neither is good for one use. ``after_s``
delays its start.

- REST faults (and the spot simulator's WebSocket order faults, ``WS_ORDER_KINDS``) act
  from their start, one request at a time: a handler asks ``take(kind, endpoint,
  private=...)`` for the first active fault of that kind matching the endpoint (a REST
  method or a WebSocket method name; None: any), which charges it one use.
- The others (WebSocket faults, engine pauses, token expiries) act once, when they come
  due: ``run_due`` (the pump calls it; ``inject`` calls it at once) hands them to the
  simulator's ``apply``.
- A pause lasts until its duration ends or it is cancelled; when the last active pause
  ends, ``pause_ended`` resumes the engine.

Each fault is logged when scheduled, each time it acts, and when it ends; ``list`` (the
admin API's ``GET /admin/faults``) shows them all with their state, the last 200 finished
ones included.

This module owns the schedule; what a fault does is the simulators' (``faults``,
``futures.faults``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

import structlog

__all__ = [
    "PER_REQUEST_KINDS",
    "PRIVATE_ONLY",
    "REST_KINDS",
    "WS_ORDER_KINDS",
    "Fault",
    "FaultSchedule",
    "FaultSpecLike",
    "checked_fields",
    "spec_fields",
]

_HISTORY: Final = 200
REST_KINDS: Final = frozenset(
    {"rest_delay", "rest_error", "lose_response", "invalid_nonce", "rate_limit"}
)
"""The kinds both simulators have that act on REST requests, one request at a time."""
WS_ORDER_KINDS: Final = frozenset({"ws_order_delay", "ws_order_error", "ws_lose_ack"})
"""The spot simulator's kinds that act on WebSocket order requests, one request at a time."""
PER_REQUEST_KINDS: Final = REST_KINDS | WS_ORDER_KINDS
"""Kinds taken one request at a time (``take``), never applied by ``run_due``."""
PRIVATE_ONLY: Final = frozenset({"invalid_nonce", "rate_limit"})
"""The REST kinds that act on private requests only."""


class FaultSpecLike(Protocol):
    """What the schedule reads of a spec."""

    @property
    def kind(self) -> StrEnum: ...

    @property
    def count(self) -> int | None: ...

    @property
    def duration_s(self) -> float | None: ...

    @property
    def after_s(self) -> float: ...

    @property
    def endpoint(self) -> str | None: ...

    @property
    def status(self) -> int | None: ...

    @property
    def error(self) -> str | None: ...

    def checked(self) -> Any: ...


SpecT = TypeVar("SpecT", bound=FaultSpecLike)


def spec_fields(
    cls: type[Any], raw: Any, integers: tuple[str, ...] = ("count", "status")
) -> dict[str, Any]:
    """A spec's fields from JSON (the admin APIs): unknown keys, a non-integer count and
    seconds that are not numbers raise ``ValueError``."""
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ValueError("a fault needs a 'kind'")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    for key, value in raw.items():
        if key in integers and value is not None and type(value) is not int:
            raise ValueError(f"{key} must be an integer")
        seconds = key.endswith("_s") and value is not None
        if seconds and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{key} must be a number of seconds")
    return dict(raw)


def checked_fields(spec: FaultSpecLike, *, unavailable: str) -> dict[str, Any]:
    """The checks every spec passes (``ValueError`` otherwise) and the defaults it gets: a
    count of at least 1, no negative seconds, a 5xx ``status``; a REST fault with neither a
    count nor a duration is good for one use; a ``rest_error`` with neither a status nor an
    error answers the simulator's ``unavailable`` error."""
    if spec.count is not None and spec.count < 1:
        raise ValueError("count must be at least 1")
    for name in ("duration_s", "after_s", "delay_s", "hold_s"):
        value = getattr(spec, name, None)
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative")
    if spec.status is not None and not 500 <= spec.status <= 599:
        raise ValueError("status must be a 5xx HTTP status")
    changes: dict[str, Any] = {}
    if spec.kind in PER_REQUEST_KINDS and spec.count is None and spec.duration_s is None:
        changes["count"] = 1
    if spec.kind in ("rest_error", "ws_order_error") and spec.status is None and spec.error is None:
        changes["error"] = unavailable
    return changes


@dataclass(slots=True)
class Fault(Generic[SpecT]):
    """One scheduled fault and its state: scheduled → active → done (or cancelled)."""

    id: str
    spec: SpecT
    created_at: float
    starts_at: float
    ends_at: float | None
    remaining: int | None
    fired: int = 0
    state: str = "scheduled"

    @property
    def kind(self) -> StrEnum:
        return self.spec.kind

    def as_dict(self) -> dict[str, Any]:
        spec = {k: v for k, v in dataclasses.asdict(self.spec).items() if v is not None}  # type: ignore[call-overload]
        spec["kind"] = str(self.spec.kind)
        return {
            "id": self.id,
            "state": self.state,
            "fired": self.fired,
            "remaining": self.remaining,
            **spec,
        }


class FaultSchedule(Generic[SpecT]):
    """One venue's faults (see the module docstring). Subclasses say which kind pauses the
    engine, how a spec is built from fields, what a one-shot fault does (``apply``) and how
    the engine resumes."""

    pause_kind: ClassVar[StrEnum | None] = None
    log: ClassVar[Any] = structlog.get_logger("sim.faults")

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._faults: list[Fault[SpecT]] = []
        self._next = 0

    # ------------------------------------------------------------------ the simulator's part
    def build(self, fields: dict[str, Any]) -> SpecT:
        """A spec from keyword fields (``inject(kind="ws_drop")``)."""
        raise NotImplementedError

    async def apply(self, fault: Fault[SpecT]) -> None:
        """Act on a due fault that is not a REST fault."""
        raise NotImplementedError

    def pause_ended(self) -> None:
        """The last active pause ended: resume the engine."""

    # ------------------------------------------------------------------ scheduling
    def schedule(self, spec: SpecT) -> Fault[SpecT]:
        """Record ``spec``; REST faults act from their start, the others at the next
        ``run_due``."""
        spec = spec.checked()
        now = self._monotonic()
        self._next += 1
        starts = now + spec.after_s
        fault = Fault(
            id=f"F{self._next}",
            spec=spec,
            created_at=now,
            starts_at=starts,
            ends_at=starts + spec.duration_s if spec.duration_s is not None else None,
            remaining=spec.count,
        )
        self._faults.append(fault)
        if len(self._faults) > _HISTORY:
            finished = [f for f in self._faults if f.state in ("done", "cancelled")]
            for old in finished[: len(self._faults) - _HISTORY]:
                self._faults.remove(old)
        self.log.info("fault_scheduled", fault=fault.id, **fault.as_dict())
        return fault

    async def inject(self, spec: SpecT | None = None, **fields: Any) -> Fault[SpecT]:
        """Schedule a fault (a spec, or its fields) and apply it now if it is due."""
        fault = self.schedule(spec if spec is not None else self.build(fields))
        await self.run_due()
        return fault

    def cancel(self, fault_id: str | None = None) -> int:
        """End one fault (or all); a cancelled engine pause resumes the engine."""
        count = 0
        for fault in self._faults:
            if fault.state in ("scheduled", "active") and fault_id in (None, fault.id):
                self.finish(fault, "cancelled")
                count += 1
        return count

    def list(self) -> list[Fault[SpecT]]:
        return list(self._faults)

    def get(self, fault_id: str) -> Fault[SpecT] | None:
        return next((f for f in self._faults if f.id == fault_id), None)

    def end_pauses(self) -> None:
        """End every active engine pause (the engine then resumes)."""
        for fault in self._faults:
            if fault.kind is self.pause_kind and fault.state == "active":
                self.finish(fault, "done")

    # ------------------------------------------------------------------ time passing
    def expire(self, now: float) -> None:
        """End the faults whose duration is over (the venue's pump calls this)."""
        for fault in self._faults:
            live = fault.state in ("scheduled", "active")
            if live and fault.ends_at is not None and fault.ends_at <= now:
                self.finish(fault, "done")

    async def run_due(self) -> None:
        """Activate faults whose start has come; apply the one-shot (non-REST) kinds."""
        now = self._monotonic()
        self.expire(now)
        for fault in self._faults:
            if fault.state != "scheduled" or fault.starts_at > now:
                continue
            fault.state = "active"
            if fault.kind not in PER_REQUEST_KINDS:
                await self.apply(fault)

    # ------------------------------------------------------------------ REST
    def take(self, kind: StrEnum, endpoint: str, *, private: bool) -> Fault[SpecT] | None:
        """The first active ``kind`` fault matching ``endpoint``, charged one use."""
        now = self._monotonic()
        for fault in self._faults:
            if fault.kind is not kind or fault.state in ("done", "cancelled"):
                continue
            if fault.starts_at > now:
                continue
            if fault.ends_at is not None and fault.ends_at <= now:
                self.finish(fault, "done")
                continue
            if kind in PRIVATE_ONLY and not private:
                continue
            if fault.spec.endpoint not in (None, endpoint):
                continue
            fault.state = "active"
            self.fired(fault, endpoint=endpoint)
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.finish(fault, "done")
            return fault
        return None

    # ------------------------------------------------------------------ bookkeeping
    def fired(self, fault: Fault[SpecT], **context: Any) -> None:
        fault.fired += 1
        self.log.warning("fault_fired", fault=fault.id, kind=str(fault.kind), **context)

    def finish(self, fault: Fault[SpecT], state: str) -> None:
        if fault.state in ("done", "cancelled"):
            return
        fault.state = state
        self.log.info("fault_ended", fault=fault.id, kind=str(fault.kind), state=state)
        if fault.kind is self.pause_kind and fault.fired:
            still_paused = any(
                f.kind is self.pause_kind and f.state == "active" for f in self._faults
            )
            if not still_paused:
                self.pause_ended()
