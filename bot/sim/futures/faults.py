"""Faults on demand for the Futures simulator: it misbehaves when and as much as asked.

A ``FaultSpec`` says what, where and how often; ``FuturesFaults`` keeps them with an id and
a state (the schedule is the spot simulator's, ``fault_schedule``). REST faults are used up
one request at a time (``count``, 1 by default) or last ``duration_s``; WebSocket faults act
once on the matching connections when they come due; ``after_s`` delays a fault's start.

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
ends. This module owns the schedule; the handlers ask it (``take``) and act. It acts on
the venue through ``FaultTarget`` and its sockets through ``FaultSocket`` (``FuturesVenue``
and its ``Session`` implement them): the venue imports this module, not the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

import structlog

from bot.sim.fault_schedule import REST_KINDS as SHARED_REST_KINDS
from bot.sim.fault_schedule import Fault, FaultSchedule, checked_fields, spec_fields

__all__ = [
    "REST_KINDS",
    "Fault",
    "FaultKind",
    "FaultSocket",
    "FaultSpec",
    "FaultTarget",
    "FuturesFaults",
]

log = structlog.get_logger("sim.futures.faults")


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


REST_KINDS: Final = frozenset(k for k in FaultKind if k in SHARED_REST_KINDS)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: FaultKind
    count: int | None = None
    duration_s: float | None = None
    after_s: float = 0.0
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
        fields = spec_fields(cls, raw)
        return cls(**{**fields, "kind": FaultKind(fields["kind"])}).checked()

    def checked(self) -> FaultSpec:
        changes = checked_fields(self, unavailable="Unavailable")
        return dataclasses.replace(self, kind=FaultKind(self.kind), **changes)


class FaultSocket(Protocol):
    """One open WebSocket as a fault acts on it (``bot.sim.futures.venue.Session``)."""

    @property
    def conn_id(self) -> str: ...

    @property
    def account(self) -> str | None: ...

    async def drop(self) -> None: ...

    def silence(self, seconds: float) -> None: ...

    def skip_book_delta(self, symbol: str | None) -> None: ...


class FaultTarget(Protocol):
    """The venue as the schedule acts on it (``bot.sim.futures.venue.FuturesVenue``)."""

    paused: bool

    @property
    def connections(self) -> Mapping[str, FaultSocket]: ...

    def monotonic(self) -> float: ...


class FuturesFaults(FaultSchedule[FaultSpec]):
    """The venue's fault schedule (``venue.faults``)."""

    pause_kind = FaultKind.PAUSE_ENGINE
    log = log

    def __init__(self, venue: FaultTarget) -> None:
        super().__init__(venue.monotonic)
        self._venue = venue

    def build(self, fields: dict[str, Any]) -> FaultSpec:
        return FaultSpec(**{**fields, "kind": FaultKind(fields["kind"])})

    def pause_ended(self) -> None:
        self._venue.paused = False

    async def apply(self, fault: Fault[FaultSpec]) -> None:
        spec = fault.spec
        if spec.kind is FaultKind.PAUSE_ENGINE:
            self._venue.paused = True
            self.fired(fault)
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
            self.fired(fault, conn=conn.conn_id)
        if not conns:
            log.warning("fault_no_target", fault=fault.id, kind=str(spec.kind))
        self.finish(fault, "done")
