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
``ws_order_error``       matching WebSocket order requests are refused with Kraken's
                         ``error`` (``EService:Unavailable`` by default): not executed
``ws_order_delay``       matching WebSocket order requests are executed at once, their
                         answer sent ``delay_s`` late (the reports they cause follow it)
``ws_lose_ack``          matching WebSocket order requests are executed (an order is
                         placed and rests) and the connection is dropped before their
                         answer is sent
=======================  ===============================================================

REST faults match on ``endpoint`` (a method name such as ``AddOrder``; None: any), the
WebSocket order faults on ``endpoint`` too (a WS method such as ``add_order``); the
other WebSocket faults on ``conn_kind`` (``public``/``private``), ``conn_id`` and
``account``.
Each fault is logged when scheduled, each time it acts, and when it ends; ``Faults.list``
(and ``GET /admin/faults``) shows them all with their state.

This module owns the schedule and the applying of faults; it acts on the venue through
``FaultTarget`` and on its sockets through ``FaultSocket`` (``SimVenue`` and its
``WsConnection`` implement them), nothing else: the venue imports this module, not the
other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

import structlog

from bot.sim.fault_schedule import REST_KINDS as SHARED_REST_KINDS
from bot.sim.fault_schedule import WS_ORDER_KINDS as SHARED_WS_ORDER_KINDS
from bot.sim.fault_schedule import Fault, FaultSchedule, checked_fields, spec_fields
from bot.sim.tokens import TokenRegistry

__all__ = [
    "REST_KINDS",
    "WS_KINDS",
    "WS_ORDER_KINDS",
    "Fault",
    "FaultKind",
    "FaultSocket",
    "FaultSpec",
    "FaultTarget",
    "Faults",
]

log = structlog.get_logger("sim.faults")

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
    WS_ORDER_ERROR = "ws_order_error"
    WS_ORDER_DELAY = "ws_order_delay"
    WS_LOSE_ACK = "ws_lose_ack"


WS_KINDS: Final = frozenset(
    {FaultKind.WS_DROP, FaultKind.WS_SILENCE, FaultKind.WS_CORRUPT_CHECKSUM}
)
REST_KINDS: Final = frozenset(k for k in FaultKind if k in SHARED_REST_KINDS)
WS_ORDER_KINDS: Final = frozenset(k for k in FaultKind if k in SHARED_WS_ORDER_KINDS)


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
        fields = spec_fields(cls, raw)
        return cls(**{**fields, "kind": FaultKind(fields["kind"])}).checked()

    def checked(self) -> FaultSpec:
        """This spec with defaults filled in, or ValueError."""
        kind = FaultKind(self.kind)
        changes = checked_fields(self, unavailable="EService:Unavailable")
        changes["kind"] = kind
        if self.conn_kind not in (None, "public", "private"):
            raise ValueError("conn_kind must be 'public' or 'private'")
        if kind is FaultKind.RATE_LIMIT:
            error = self.error or _RATE_ERRORS[0]
            if error not in _RATE_ERRORS:
                raise ValueError(f"error must be one of {', '.join(_RATE_ERRORS)}")
            changes["error"] = error
        if kind is FaultKind.LOSE_RESPONSE and self.mode not in ("abort", "hang"):
            raise ValueError("mode must be 'abort' or 'hang'")
        return dataclasses.replace(self, **changes)


class FaultSocket(Protocol):
    """One open WebSocket as a fault acts on it (``bot.sim.venue.WsConnection``)."""

    @property
    def conn_id(self) -> str: ...

    async def drop(self) -> None: ...

    def silence(self, seconds: float) -> None: ...

    def corrupt_checksum(self, symbol: str | None = None) -> None: ...

    def revoke_token(self) -> None: ...


class FaultTarget(Protocol):
    """The venue as the schedule acts on it (``bot.sim.venue.SimVenue``)."""

    @property
    def tokens(self) -> TokenRegistry: ...

    def monotonic(self) -> float: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def find_connections(
        self, *, kind: str | None = None, conn_id: str | None = None, account: str | None = None
    ) -> Sequence[FaultSocket]: ...


class Faults(FaultSchedule[FaultSpec]):
    """The venue's fault schedule (one per ``SimVenue``, as ``venue.faults``)."""

    pause_kind = FaultKind.PAUSE_ENGINE
    log = log

    def __init__(self, venue: FaultTarget) -> None:
        super().__init__(venue.monotonic)
        self._venue = venue

    def build(self, fields: dict[str, Any]) -> FaultSpec:
        return FaultSpec(**{**fields, "kind": FaultKind(fields["kind"])})

    def resume_engine(self) -> None:
        """Resume the engine and end every engine pause."""
        self.end_pauses()
        self._venue.resume()

    def pause_ended(self) -> None:
        self._venue.resume()

    async def apply(self, fault: Fault[FaultSpec]) -> None:
        spec = fault.spec
        venue = self._venue
        if fault.kind is FaultKind.PAUSE_ENGINE:
            venue.pause()
            self.fired(fault)
            return  # stays active until its duration ends or it is cancelled/resumed
        if fault.kind is FaultKind.EXPIRE_TOKEN:
            revoked = venue.tokens.expire(spec.account)
            conns = venue.find_connections(kind="private", account=spec.account)
            for conn in conns:
                conn.revoke_token()
            self.fired(fault, tokens=revoked, connections=len(conns))
            self.finish(fault, "done")
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
            self.fired(fault, conn=conn.conn_id)
        if not conns:
            log.warning("fault_no_target", fault=fault.id, kind=str(fault.kind))
        self.finish(fault, "done")
