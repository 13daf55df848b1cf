"""The pre-trade stage: one decision per command, before anything is recorded or sent.

``PreTrade.check(command, orders)`` returns ``None`` (accepted) or a ``Refusal``
(``source``, ``reason``, ``detail``: what ``bot.strategy.refusals`` counts and logs). The
engine runs it once per command (``ExecutionEngine.submit`` and ``place``): nothing before
it checks readiness, rate room or risk, and nothing after it checks again. It is pure: no
I/O, no ``await``; it reads, as they are at this instant, the readiness gate, the
exchange's state (``bot.kraken.system_status``), the venue's rate-limit room
(``RateRoom``) and the risk gate (whose rate windows count an accepted order), with
``orders`` (the engine's open orders, counted) for the room and the risk gate's open-order
limits.

Checks, in order; the first that fails is the refusal:

=============  ====================================================================  ======
command        check (reason)                                                        source
=============  ====================================================================  ======
PlaceOrder     the exchange's state takes this order type (``exchange_status``)      desk
               every readiness check passes (``not_ready``: the failing ones named)  desk
               the pair's trading counter keeps room to cancel (``rate_limit``)      desk
               the risk gate (its reason: ``max_notional``, ``price_band``...)       risk
AmendOrder     the exchange's state takes the order as it stands (``exchange_status``) desk
               the trading counter at an amend's largest cost (``rate_limit``)       desk
               the REST call counter keeps room for the switch (``rate_limit``)      desk
               the risk gate, on the new quantity and price                          risk
CancelOrder    none: nothing stands between a strategy and a cancel
=============  ====================================================================  ======

The source ``desk`` names these checks as the refusal counts always have (the metric label
users' alerts match). A risk check's ``Transition`` (a daily loss limit breached) is handed
to ``on_transitions`` whatever the decision: its caller logs it and cancels that scope's
orders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.orders import PlaceTerms
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskContext, RiskGate, Transition
from bot.kraken.instruments import Instrument
from bot.kraken.system_status import ONLINE, amend_refusal, place_refusal

__all__ = ["RATE_LIMIT", "REST_LIMIT", "OpenCounts", "PreTrade", "Refusal"]

RATE_LIMIT: Final = "the trading counter keeps room to cancel open orders"
REST_LIMIT: Final = "the REST call counter keeps room for the dead-man's switch"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a command was not carried out: who refused (``source``: desk, risk, exchange,
    engine), a short stable ``reason`` and a ``detail`` for people."""

    source: str
    reason: str
    detail: str = ""


class OpenCounts(Protocol):
    """The open orders the stage counts (the engine's ``OrderIndex`` keeps them)."""

    @property
    def open_per_symbol(self) -> Mapping[str, int]: ...
    @property
    def open_per_strategy(self) -> Mapping[str, int]: ...
    @property
    def open_total(self) -> int: ...


def _no_status() -> str | None:
    return None


def _no_mids() -> Mapping[str, Decimal]:
    return {}


class PreTrade:
    """See the module docstring. Without ``risk`` or ``room`` those checks pass."""

    __slots__ = (
        "_mids", "_now", "_on_transitions", "_online", "_room", "_status", "readiness", "risk",
    )  # fmt: skip

    def __init__(
        self,
        readiness: ReadinessGate,
        *,
        risk: RiskGate | None = None,
        mids: Callable[[], Mapping[str, Decimal]] = _no_mids,
        room: RateRoom | None = None,
        exchange_status: Callable[[], str | None] = _no_status,
        on_transitions: Callable[[tuple[Transition, ...]], None] | None = None,
    ) -> None:
        self.readiness, self.risk = readiness, risk
        self._mids, self._room, self._status = mids, room, exchange_status
        self._on_transitions = on_transitions
        self._now = readiness.clock.monotonic  # ``open_until``'s clock
        self._online: bool | None = None  # ``exchange_status`` followed: whether it takes all

    def follow_status(self) -> Callable[[], None]:
        """Follow the exchange's state rather than read it on every ``accepts_place``: it
        is read now and each time the returned callable is called, which its owner does
        after every change of what ``exchange_status`` returns (the daemon, on each
        ``status`` of the feed). ``check`` still reads ``exchange_status`` itself."""

        def changed() -> None:
            status = self._status()
            self._online = status is None or status == ONLINE  # online takes every order

        changed()
        return changed

    @property
    def room(self) -> RateRoom | None:
        """The rate room the stage reads (None: its checks pass)."""
        return self._room

    def check(self, command: Command, orders: OpenCounts) -> Refusal | None:
        """Accept (None) or refuse ``command``; see the module docstring."""
        if type(command) is PlaceOrder:
            return self._place(command, orders)
        if type(command) is AmendOrder:
            return self._amend(command, orders)
        if type(command) is CancelOrder:
            return None
        raise TypeError(f"not a command: {command!r}")

    def _place(self, command: PlaceOrder, orders: OpenCounts) -> Refusal | None:
        order = command.order
        status = self._status()
        if status is not None and status != ONLINE:  # online takes every order
            why = place_refusal(status, order.order_type, order.post_only)
            if why is not None:
                return Refusal("desk", "exchange_status", why)
        gate = self.readiness
        if not gate.is_open:
            return Refusal("desk", "not_ready", "waiting for: " + ", ".join(gate.failing()))
        room = self._room
        if room is not None and not room.place_fits(
            order.symbol, orders.open_per_symbol.get(order.symbol, 0)
        ):
            return Refusal("desk", "rate_limit", RATE_LIMIT)
        return self._risk(command, orders)

    def accepts_place(
        self, terms: PlaceTerms, instrument: Instrument, strategy: str, orders: OpenCounts
    ) -> bool:
        """``check`` of a ``PlaceOrder`` of ``strategy`` whose order says ``terms``, given as
        values, for its common case only: True when ``check`` would accept it (the risk
        gate's ``accept_place``, counted as ``check`` counts it); False when it cannot say
        so at once, having changed nothing ``check`` depends on: ``check`` decides it, and
        every refusal, its reason and its detail come from there."""
        online = self._online
        if online is None:  # not followed: read now
            status = self._status()
            online = status is None or status == ONLINE
        if not online:
            return False  # online takes every order; anything else is check's to decide
        readiness = self.readiness
        if readiness.open_until <= self._now() and not readiness.is_open:
            return False  # open for certain before ``open_until``; else the gate says
        symbol = terms.symbol
        room = self._room
        if room is not None and not room.place_fits(symbol, orders.open_per_symbol.get(symbol, 0)):
            return False
        risk = self.risk
        return risk is None or risk.accept_place(
            strategy, instrument, terms.side, terms.qty, terms.price, self._mids(),
            orders.open_per_strategy, orders.open_total,
        )  # fmt: skip

    def accepts_amend(self, command: AmendOrder, orders: OpenCounts) -> bool:
        """``check`` of ``command``, for its common case only, as ``accepts_place`` for a
        place: True when ``check`` would accept it (the exchange online, room on the
        pair's counter and the REST call counter, the risk gate's ``accept_amend``,
        counted as ``check`` counts it); False when it cannot say so at once, having
        changed nothing ``check`` depends on."""
        online = self._online
        if online is None:  # not followed: read now
            status = self._status()
            online = status is None or status == ONLINE
        if not online:
            return False  # online takes every amend; anything else is check's to decide
        order = command.order
        symbol = order.symbol
        room = self._room
        if room is not None and not (
            room.amend_fits(symbol, orders.open_per_symbol.get(symbol, 0)) and room.rest_fits()
        ):
            return False
        risk = self.risk
        return risk is None or risk.accept_amend(
            command, self._mids(), orders.open_per_strategy, orders.open_total
        )

    def _amend(self, command: AmendOrder, orders: OpenCounts) -> Refusal | None:
        order = command.order
        why = amend_refusal(self._status(), order.order_type, order.post_only)
        if why is not None:
            return Refusal("desk", "exchange_status", why)
        room = self._room
        if room is not None:
            if not room.amend_fits(order.symbol, orders.open_per_symbol.get(order.symbol, 0)):
                return Refusal("desk", "rate_limit", RATE_LIMIT)
            if not room.rest_fits():
                return Refusal("desk", "rate_limit", REST_LIMIT)
        return self._risk(command, orders)

    def _risk(self, command: PlaceOrder | AmendOrder, orders: OpenCounts) -> Refusal | None:
        risk = self.risk
        if risk is None:
            return None
        # The engine's counts as they are, not a copy: the gate reads them within this call.
        context = RiskContext(self._mids(), orders.open_per_strategy, orders.open_total)
        decision = risk.check(command, context)
        if decision.transitions and self._on_transitions is not None:
            self._on_transitions(decision.transitions)
        error = decision.error
        return None if error is None else Refusal("risk", error.reason, str(error))
