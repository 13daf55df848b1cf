"""Faults on demand for the Futures simulator: it misbehaves when and as much as asked.

A ``FaultSpec`` says what, where and how often; ``FuturesFaults`` keeps them with an id and
a state. REST faults are used up one request at a time (``count``, 1 by default) or last
``duration_s``; WebSocket faults act once on the matching connections when injected.

=====================  =================================================================
``rest_delay``         matching requests are answered ``delay_s`` late
``rest_error``         matching requests fail: HTTP ``status`` (5xx, an HTML page), or
                       Kraken's ``{"result": "error", "error": <error>}`` (default
                       ``Unavailable``)
``lose_response``      the request is executed (the order is placed, the cancel done)
                       but its answer never arrives: the connection is aborted
``invalid_nonce``      matching private requests answer ``nonceBelowThreshold``
``rate_limit``         matching private requests answer ``apiLimitExceeded``
``ws_drop``            matching WebSockets are closed abruptly
``ws_silence``         matching WebSockets send nothing for ``hold_s`` seconds
``book_gap``           the next book delta (of ``symbol``) is skipped on matching
                       connections: their ``seq`` jumps by two
``pause_engine``       order entry answers ``marketUnavailable`` and the market, the
                       triggers, funding and the dead-man's timers stop, for
                       ``duration_s`` or until the fault is cancelled
=====================  =================================================================

REST faults match on ``endpoint`` (``sendorder``; None: any); WebSocket faults on
``conn_id`` and ``account``. Each fault is logged when scheduled, when it acts and when it
ends. This module owns the schedule; the handlers ask it (``take``) and act.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import structlog

if TYPE_CHECKING:
    from bot.sim.futures.venue import FuturesVenue

__all__ = ["REST_KINDS", "Fault", "FaultKind", "FaultSpec", "FuturesFaults"]

log = structlog.get_logger("sim.futures.faults")

_HISTORY: Final = 200


class FaultKind(StrEnum):
    REST_DELAY = "rest_delay"
    REST_ERROR = "rest_error"
    LOSE_RESPONSE = "lose_response"
    INVALID_NONCE = "invalid_nonce"
    RATE_LIMIT = "rate_limit"
    WS_DROP = "ws_drop"
    WS_SILENCE = "ws_silence"
    BOOK_GAP = "book_gap"
    PAUSE_ENGINE = "pause_engine"


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
    kind: FaultKind
    count: int | None = None
    duration_s: float | None = None
    endpoint: str | None = None
    conn_id: str | None = None
    account: str | None = None
    symbol: str | None = None
    status: int | None = None
    error: str | None = None
    delay_s: float = 1.0
    hold_s: float = 5.0

    @classmethod
    def from_dict(cls, raw: Any) -> FaultSpec:
        """A spec from JSON (the admin API); unknown keys and bad values: ValueError."""
        if not isinstance(raw, dict) or "kind" not in raw:
            raise ValueError("a fault needs a 'kind'")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        for key in ("count", "status"):
            if raw.get(key) is not None and type(raw[key]) is not int:
                raise ValueError(f"{key} must be an integer")
        for key in ("duration_s", "delay_s", "hold_s"):
            value = raw.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{key} must be a number of seconds")
        return cls(**{**raw, "kind": FaultKind(raw["kind"])}).checked()

    def checked(self) -> FaultSpec:
        kind = FaultKind(self.kind)
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        for name in ("duration_s", "delay_s", "hold_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.status is not None and not 500 <= self.status <= 599:
            raise ValueError("status must be a 5xx HTTP status")
        changes: dict[str, Any] = {"kind": kind}
        if kind in REST_KINDS and self.count is None and self.duration_s is None:
            changes["count"] = 1
        if kind is FaultKind.REST_ERROR and self.status is None and self.error is None:
            changes["error"] = "Unavailable"
        return dataclasses.replace(self, **changes)


@dataclass(slots=True)
class Fault:
    id: str
    spec: FaultSpec
    ends_at: float | None
    remaining: int | None
    fired: int = 0
    state: str = "active"

    def as_dict(self) -> dict[str, Any]:
        spec = {k: v for k, v in dataclasses.asdict(self.spec).items() if v is not None}
        spec["kind"] = str(self.spec.kind)
        return {"id": self.id, "state": self.state, "fired": self.fired, **spec}


class FuturesFaults:
    """The venue's fault schedule (``venue.faults``)."""

    def __init__(self, venue: FuturesVenue) -> None:
        self._venue = venue
        self._faults: list[Fault] = []
        self._next = 0

    def list(self) -> list[Fault]:
        return list(self._faults)

    async def inject(self, spec: FaultSpec | None = None, **fields: Any) -> Fault:
        """Schedule a fault (``inject(kind="ws_drop")``) and apply the WebSocket and
        engine ones at once."""
        if spec is None:
            spec = FaultSpec(**{**fields, "kind": FaultKind(fields["kind"])})
        spec = spec.checked()
        self._next += 1
        now = self._venue.monotonic()
        fault = Fault(
            id=f"F{self._next}",
            spec=spec,
            ends_at=None if spec.duration_s is None else now + spec.duration_s,
            remaining=spec.count,
        )
        self._faults.append(fault)
        if len(self._faults) > _HISTORY:
            self._faults = [f for f in self._faults if f.state == "active"][-_HISTORY:]
        log.info("fault_scheduled", **fault.as_dict())
        if spec.kind not in REST_KINDS:
            await self._apply(fault)
        return fault

    def cancel(self, fault_id: str | None = None) -> int:
        count = 0
        for fault in self._faults:
            if fault.state == "active" and fault_id in (None, fault.id):
                self._end(fault, "cancelled")
                count += 1
        return count

    def expire(self, now: float) -> None:
        for fault in self._faults:
            if fault.state == "active" and fault.ends_at is not None and fault.ends_at <= now:
                self._end(fault, "done")

    def take(self, kind: FaultKind, endpoint: str, *, private: bool) -> Fault | None:
        """The first active ``kind`` fault matching ``endpoint``, charged one use."""
        self.expire(self._venue.monotonic())
        for fault in self._faults:
            if fault.spec.kind is not kind or fault.state != "active":
                continue
            if kind in _PRIVATE_ONLY and not private:
                continue
            if fault.spec.endpoint not in (None, endpoint):
                continue
            self._fired(fault, endpoint=endpoint)
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._end(fault, "done")
            return fault
        return None

    async def _apply(self, fault: Fault) -> None:
        spec = fault.spec
        if spec.kind is FaultKind.PAUSE_ENGINE:
            self._venue.paused = True
            self._fired(fault)
            return  # active until its duration ends or it is cancelled
        conns = [
            c
            for c in list(self._venue.connections.values())
            if spec.conn_id in (None, c.conn_id) and spec.account in (None, c.account)
        ]
        if spec.count is not None:
            conns = conns[: spec.count]
        for conn in conns:
            if spec.kind is FaultKind.WS_DROP:
                await conn.drop()
            elif spec.kind is FaultKind.WS_SILENCE:
                conn.silence(spec.hold_s)
            else:
                conn.skip_book_delta(spec.symbol)
            self._fired(fault, conn=conn.conn_id)
        if not conns:
            log.warning("fault_no_target", fault=fault.id, kind=str(spec.kind))
        self._end(fault, "done")

    def _fired(self, fault: Fault, **context: Any) -> None:
        fault.fired += 1
        log.warning("fault_fired", fault=fault.id, kind=str(fault.spec.kind), **context)

    def _end(self, fault: Fault, state: str) -> None:
        if fault.state != "active":
            return
        fault.state = state
        log.info("fault_ended", fault=fault.id, kind=str(fault.spec.kind), state=state)
        if fault.spec.kind is FaultKind.PAUSE_ENGINE and not any(
            f.spec.kind is FaultKind.PAUSE_ENGINE and f.state == "active" for f in self._faults
        ):
            self._venue.paused = False
