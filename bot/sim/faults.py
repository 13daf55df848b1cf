"""Faults on demand: the simulator misbehaves exactly when and as much as a test asks.

A fault is a ``FaultSpec`` (what, where, how much) turned into a ``Fault`` record with an id
and a state. Every fault is bounded: by a ``count`` (uses, or connections affected), by a
``duration_s``, or both; a REST fault with neither is good for one use. ``after_s`` delays
its start. Kinds:

=======================  ===============================================================
``ws_drop``              close matching WebSockets abruptly (``WsConnection.drop``)
``ws_silence``           matching WebSockets send nothing for ``hold_s`` seconds
``ws_corrupt_checksum``  the next book frame (of ``symbol``) carries a wrong checksum
``expire_token``         revoke ``account``'s WS tokens (all accounts if None) and tell
                         its private connections (``revoke_token``)
``pause_engine``         the matching engine stops (order entry answers
                         ``EService:Unavailable``) for ``duration_s``, or until resumed
``rest_delay``           matching REST requests are answered ``delay_s`` late
``rest_error``           matching REST requests fail: HTTP ``status`` (5xx), or Kraken's
                         ``error`` (``EService:Unavailable``, ``EService:Busy``, ...)
``lose_response``        the request is executed (an order is placed and rests) but the
                         response never arrives: the connection is aborted
                         (``mode="abort"``) or held open for ``hold_s`` then aborted
                         (``mode="hang"``)
``invalid_nonce``        matching private requests answer ``EAPI:Invalid nonce``
``rate_limit``           matching private requests answer ``error`` (``EAPI:Rate limit
                         exceeded`` by default, or ``EOrder:Rate limit exceeded``)
=======================  ===============================================================

REST faults match on ``endpoint`` (a method name such as ``AddOrder``; None: any); the
WebSocket faults on ``conn_kind`` (``public``/``private``), ``conn_id`` and ``account``.
Each fault is logged when scheduled, each time it acts, and when it ends; ``Faults.list``
(and ``GET /admin/faults``) shows them all with their state.

This module owns the schedule and the applying of faults; it calls the venue's public
methods and the ``WsConnection`` protocol, nothing else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import structlog

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = ["REST_KINDS", "WS_KINDS", "Fault", "FaultKind", "FaultSpec", "Faults"]

log = structlog.get_logger("sim.faults")

_HISTORY: Final = 200
_RATE_ERRORS: Final = ("EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded")


class FaultKind(StrEnum):
    WS_DROP = "ws_drop"
    WS_SILENCE = "ws_silence"
    WS_CORRUPT_CHECKSUM = "ws_corrupt_checksum"
    EXPIRE_TOKEN = "expire_token"
    PAUSE_ENGINE = "pause_engine"
    REST_DELAY = "rest_delay"
    REST_ERROR = "rest_error"
    LOSE_RESPONSE = "lose_response"
    INVALID_NONCE = "invalid_nonce"
    RATE_LIMIT = "rate_limit"


WS_KINDS: Final = frozenset(
    {FaultKind.WS_DROP, FaultKind.WS_SILENCE, FaultKind.WS_CORRUPT_CHECKSUM}
)
REST_KINDS: Final = frozenset(
    {
        FaultKind.REST_DELAY,
        FaultKind.REST_ERROR,
        FaultKind.LOSE_RESPONSE,
        FaultKind.INVALID_NONCE,
        FaultKind.RATE_LIMIT,
    }
)
_PRIVATE_ONLY: Final = frozenset({FaultKind.INVALID_NONCE, FaultKind.RATE_LIMIT})


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to inject (see the module docstring for each kind's fields)."""

    kind: FaultKind
    count: int | None = None
    duration_s: float | None = None
    after_s: float = 0.0
    endpoint: str | None = None
    conn_kind: str | None = None
    conn_id: str | None = None
    account: str | None = None
    symbol: str | None = None
    delay_s: float = 1.0
    status: int | None = None
    error: str | None = None
    mode: str = "abort"
    hold_s: float = 5.0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultSpec:
        """A spec from JSON (the admin API); unknown keys and bad values raise ValueError."""
        if not isinstance(raw, dict) or "kind" not in raw:
            raise ValueError("a fault needs a 'kind'")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        for key, value in raw.items():
            if key in ("count", "status") and value is not None and type(value) is not int:
                raise ValueError(f"{key} must be an integer")
            seconds = key.endswith("_s") and value is not None
            if seconds and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{key} must be a number of seconds")
        return cls(**{**raw, "kind": FaultKind(raw["kind"])}).checked()

    def checked(self) -> FaultSpec:
        """This spec with defaults filled in, or ValueError."""
        kind = FaultKind(self.kind)
        for name in ("duration_s", "after_s", "delay_s", "hold_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.conn_kind not in (None, "public", "private"):
            raise ValueError("conn_kind must be 'public' or 'private'")
        changes: dict[str, Any] = {"kind": kind}
        if kind in REST_KINDS and self.count is None and self.duration_s is None:
            changes["count"] = 1
        if kind is FaultKind.REST_ERROR:
            if self.status is not None and not 500 <= self.status <= 599:
                raise ValueError("status must be a 5xx HTTP status")
            if self.status is None and self.error is None:
                changes["error"] = "EService:Unavailable"
        if kind is FaultKind.RATE_LIMIT:
            error = self.error or _RATE_ERRORS[0]
            if error not in _RATE_ERRORS:
                raise ValueError(f"error must be one of {', '.join(_RATE_ERRORS)}")
            changes["error"] = error
        if kind is FaultKind.LOSE_RESPONSE and self.mode not in ("abort", "hang"):
            raise ValueError("mode must be 'abort' or 'hang'")
        return dataclasses.replace(self, **changes)


@dataclass(slots=True)
class Fault:
    """One scheduled fault and its state: scheduled → active → done (or cancelled)."""

    id: str
    spec: FaultSpec
    created_at: float
    starts_at: float
    ends_at: float | None
    remaining: int | None
    fired: int = 0
    state: str = "scheduled"

    @property
    def kind(self) -> FaultKind:
        return self.spec.kind

    def as_dict(self) -> dict[str, Any]:
        spec = {k: v for k, v in dataclasses.asdict(self.spec).items() if v is not None}
        spec["kind"] = str(self.spec.kind)
        return {
            "id": self.id,
            "state": self.state,
            "fired": self.fired,
            "remaining": self.remaining,
            **spec,
        }

    def matches_rest(self, method: str, private: bool) -> bool:
        if self.spec.kind in _PRIVATE_ONLY and not private:
            return False
        return self.spec.endpoint is None or self.spec.endpoint == method


class Faults:
    """The venue's fault schedule (one per ``SimVenue``, as ``venue.faults``)."""

    def __init__(self, venue: SimVenue) -> None:
        self._venue = venue
        self._faults: list[Fault] = []
        self._next = 0

    # ------------------------------------------------------------------ scheduling
    def schedule(self, spec: FaultSpec) -> Fault:
        """Record ``spec``; REST faults act from their start, the others act at the next
        ``run_due`` (the pump calls it; ``inject`` calls it at once)."""
        spec = spec.checked()
        now = self._venue.monotonic()
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
        log.info("fault_scheduled", fault=fault.id, **fault.as_dict())
        return fault

    async def inject(self, spec: FaultSpec | None = None, **fields: Any) -> Fault:
        """Schedule a fault (a ``FaultSpec``, or its fields: ``inject(kind="ws_drop")``)
        and apply it now if it is due."""
        if spec is None:
            spec = FaultSpec(**{**fields, "kind": FaultKind(fields["kind"])})
        fault = self.schedule(spec)
        await self.run_due()
        return fault

    def cancel(self, fault_id: str | None = None) -> int:
        """End one fault (or all); a cancelled engine pause resumes the engine."""
        count = 0
        for fault in self._faults:
            if fault.state in ("scheduled", "active") and fault_id in (None, fault.id):
                self._finish(fault, "cancelled")
                count += 1
        return count

    def list(self) -> list[Fault]:
        return list(self._faults)

    def get(self, fault_id: str) -> Fault | None:
        return next((f for f in self._faults if f.id == fault_id), None)

    def resume_engine(self) -> None:
        """Resume the engine and end every engine pause."""
        for fault in self._faults:
            if fault.kind is FaultKind.PAUSE_ENGINE and fault.state == "active":
                self._finish(fault, "done")
        self._venue.resume()

    # ------------------------------------------------------------------ time passing
    def expire(self, now: float) -> None:
        """End the faults whose duration is over (the venue's pump calls this)."""
        for fault in self._faults:
            live = fault.state in ("scheduled", "active")
            if live and fault.ends_at is not None and fault.ends_at <= now:
                self._finish(fault, "done")

    async def run_due(self) -> None:
        """Activate faults whose start has come; apply the one-shot (non-REST) kinds."""
        now = self._venue.monotonic()
        self.expire(now)
        for fault in self._faults:
            if fault.state != "scheduled" or fault.starts_at > now:
                continue
            fault.state = "active"
            if fault.kind not in REST_KINDS:
                await self._apply(fault)

    # ------------------------------------------------------------------ REST
    def take_rest(self, kind: FaultKind, method: str, *, private: bool) -> Fault | None:
        """The first active ``kind`` fault matching ``method``, charged one use."""
        now = self._venue.monotonic()
        for fault in self._faults:
            if fault.kind is not kind or fault.state in ("done", "cancelled"):
                continue
            if fault.starts_at > now:
                continue
            if fault.ends_at is not None and fault.ends_at <= now:
                self._finish(fault, "done")
                continue
            if not fault.matches_rest(method, private):
                continue
            fault.state = "active"
            self._fired(fault, endpoint=method)
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._finish(fault, "done")
            return fault
        return None

    # ------------------------------------------------------------------ applying
    async def _apply(self, fault: Fault) -> None:
        spec = fault.spec
        venue = self._venue
        if fault.kind is FaultKind.PAUSE_ENGINE:
            venue.pause()
            self._fired(fault)
            return  # stays active until its duration ends or it is cancelled/resumed
        if fault.kind is FaultKind.EXPIRE_TOKEN:
            revoked = venue.tokens.expire(spec.account)
            conns = venue.find_connections(kind="private", account=spec.account)
            for conn in conns:
                conn.revoke_token()
            self._fired(fault, tokens=revoked, connections=len(conns))
            self._finish(fault, "done")
            return
        conns = venue.find_connections(
            kind=spec.conn_kind, conn_id=spec.conn_id, account=spec.account
        )
        if spec.count is not None:
            conns = conns[: spec.count]
        for conn in conns:
            if fault.kind is FaultKind.WS_DROP:
                await conn.drop()
            elif fault.kind is FaultKind.WS_SILENCE:
                conn.silence(spec.hold_s)
            else:
                conn.corrupt_checksum(spec.symbol)
            self._fired(fault, conn=conn.conn_id)
        if not conns:
            log.warning("fault_no_target", fault=fault.id, kind=str(fault.kind))
        self._finish(fault, "done")

    def _fired(self, fault: Fault, **context: Any) -> None:
        fault.fired += 1
        log.warning("fault_fired", fault=fault.id, kind=str(fault.kind), **context)

    def _finish(self, fault: Fault, state: str) -> None:
        if fault.state in ("done", "cancelled"):
            return
        fault.state = state
        log.info("fault_ended", fault=fault.id, kind=str(fault.kind), state=state)
        if fault.kind is FaultKind.PAUSE_ENGINE and fault.fired:
            still_paused = any(
                f.kind is FaultKind.PAUSE_ENGINE and f.state == "active" for f in self._faults
            )
            if not still_paused:
                self._venue.resume()
