"""The order lifecycle: ``Order``, ``Fill`` and one transition table.

This module owns what an order *is* and which state changes are possible. It is pure: no
I/O, no clock (every function that stamps takes ``now_ns``), no randomness except through
an injected source. It does not send, persist or reconcile anything: the engine does, and
the store (``bot/store/db.py``) persists what this module returns. Exchange reports arrive as
``bot.kraken.protocol.ExecutionReport`` (sparse, every number a ``Decimal``); this module
scales them with each order's own precisions.

The rules of the file
=====================

States (``OrderState``)::

    PENDING_NEW ──► NEW ──► PARTIALLY_FILLED ──► FILLED
        │  │         │             │
        │  │         └─────────────┴──────────► CANCELED, EXPIRED
        │  └──► REJECTED
        └──► UNKNOWN ──► (any exchange state) | REJECTED | LOST ──► (any exchange state)

1. ``PENDING_NEW`` is written to the store (and the commit returned) *before* the order is
   sent; it covers both "about to be sent" and "sent, no answer yet". There is no separate
   SENT state on purpose: after a crash the two cannot be told apart, and both need the same
   treatment, a lookup at the exchange by ``cl_ord_id``. Kraken's own ``pending_new``
   ("received and validated, not live yet") also maps here: the order gains its
   ``order_id`` but stays PENDING_NEW until Kraken says ``new``. The same report about an
   UNKNOWN or LOST order moves it back to PENDING_NEW: Kraken has it, its fate is pending.
2. ``UNKNOWN`` means "sent, fate not known": AddOrder timed out, the connection dropped or
   Kraken answered 5xx, or the daemon restarted with the order still PENDING_NEW. The engine
   never resubmits an UNKNOWN order; it looks it up (executions feed, OpenOrders,
   QueryOrders by ``cl_ord_id``) and applies whatever the exchange reports.
3. ``LOST`` is UNKNOWN resolved as "never reached the exchange": reconciliation proved the
   ``cl_ord_id`` absent. It is a state of its own, not REJECTED, because REJECTED carries
   Kraken's refusal (never retry the same request) while LOST means Kraken never saw it (the
   strategy may place it again, under a new ``cl_ord_id``). Only UNKNOWN can become LOST.
   LOST is done for us (not open, the strategy is told), but it is the one done state that
   a later exchange report can still revive: the exchange is the truth, and such a report
   means the absence was declared too early (the engine should alert).
4. ``FILLED``, ``CANCELED``, ``EXPIRED``, ``REJECTED`` are terminal and absorbing. A late
   or duplicate exchange report about a terminal order never changes its state; it is
   ignored, not an error (only a higher ``cum_qty``, a fact about fills, is merged).
5. Exchange reports (``apply_execution``) are idempotent and tolerate reordering: a report
   whose ``cum_qty`` is lower than the one known is stale and ignored; a report whose state
   is behind the known state (``new`` after ``partially_filled``) moves nothing back.
6. ``transition`` is what *our* code calls, and it is strict: a move that is not in
   ``TRANSITIONS`` (FILLED → NEW, NEW → UNKNOWN, anything out of a terminal state) raises
   ``IllegalTransition``: it is a bug in the caller, never passed over silently.
7. A cancel or an amend in flight is a flag (``cancel_pending``, ``amend_pending``), not a
   state: fills keep arriving while either is in flight, so as states they would double the
   table without adding a rule. Terminal states clear both flags.

Numbers are exact: ``qty``, ``filled_qty`` and ``price`` are ints scaled by the
instrument's precisions, which every ``Order`` and ``Fill`` carries so that it stays
meaningful if Kraken later changes a pair's precision. A ``Fill``'s price is Kraken's
``last_price`` exactly as sent: for a taker order that crossed several levels it is the
average price of the trade event, which can have more decimals than the pair's price
precision, so a fill's ``price_precision`` is the pair's or more (``fill_price``), never
rounded. Costs, fees and average prices are ``Decimal``.
"""

from __future__ import annotations

import calendar
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, NamedTuple, Protocol

from bot.core.errors import BotError, ProtocolError
from bot.kraken.instruments import Instrument, to_scaled
from bot.kraken.protocol import ExecutionReport, Fee

__all__ = [
    "DONE_STATES",
    "OPEN_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Fill",
    "IllegalTransition",
    "Order",
    "OrderState",
    "OrderTerms",
    "PlaceTerms",
    "acknowledge",
    "amend_failed",
    "amend_post_only",
    "apply_execution",
    "cancel_failed",
    "canonical_cl_ord_id",
    "fill_from_report",
    "fill_price",
    "is_valid_cl_ord_id",
    "mark_unknown",
    "new_cl_ord_id",
    "new_order",
    "request_amend",
    "request_cancel",
    "timestamp_ns",
    "transition",
]


class OrderState(StrEnum):
    PENDING_NEW = "pending_new"
    UNKNOWN = "unknown"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    LOST = "lost"


S = OrderState
_EXCHANGE_STATES: Final = frozenset({S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED})

# The table. A state maps to the states *our* code may move it to; self-loops let a
# transition change fields (fills, flags, order_id) without changing the state.
TRANSITIONS: Final[Mapping[OrderState, frozenset[OrderState]]] = {
    S.PENDING_NEW: frozenset({S.PENDING_NEW, S.UNKNOWN, S.REJECTED} | _EXCHANGE_STATES),
    S.UNKNOWN: frozenset({S.PENDING_NEW, S.UNKNOWN, S.REJECTED, S.LOST} | _EXCHANGE_STATES),
    S.NEW: _EXCHANGE_STATES,
    S.PARTIALLY_FILLED: _EXCHANGE_STATES - {S.NEW},
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
    S.LOST: frozenset({S.PENDING_NEW} | _EXCHANGE_STATES),
}

TERMINAL_STATES: Final = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
DONE_STATES: Final = TERMINAL_STATES | {S.LOST}
OPEN_STATES: Final = frozenset(OrderState) - DONE_STATES

# How far along an exchange report says an order is; a report behind the known rank
# moves nothing back (rule 5). PENDING_NEW, UNKNOWN and LOST know nothing yet.
_RANK: Final[Mapping[OrderState, int]] = {
    S.PENDING_NEW: 0,
    S.UNKNOWN: 0,
    S.LOST: 0,
    S.NEW: 1,
    S.PARTIALLY_FILLED: 2,
    S.FILLED: 3,
    S.CANCELED: 3,
    S.EXPIRED: 3,
    S.REJECTED: 3,
}

# Kraken's executions ``order_status`` values, then ``exec_type`` values that imply a state.
_ORDER_STATUS: Final[Mapping[str, OrderState]] = {
    "pending_new": S.PENDING_NEW,
    "new": S.NEW,
    "partially_filled": S.PARTIALLY_FILLED,
    "filled": S.FILLED,
    "canceled": S.CANCELED,
    "expired": S.EXPIRED,
}
_EXEC_TYPE_STATE: Final[Mapping[str, OrderState]] = {
    "pending_new": S.PENDING_NEW,
    "new": S.NEW,
    "filled": S.FILLED,
    "canceled": S.CANCELED,
    "expired": S.EXPIRED,
}
# Fields a transition may not set: what names the order, and what transition() sets itself.
_FIXED: Final = frozenset({"cl_ord_id", "symbol", "side", "state", "created_ns", "updated_ns"})


class IllegalTransition(BotError):
    """Our own code asked for a move the transition table forbids: a bug, never data."""

    def __init__(self, cl_ord_id: str, from_state: OrderState, to_state: OrderState, why: str):
        self.cl_ord_id = cl_ord_id
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"{cl_ord_id}: {from_state} → {to_state}: {why}")


@dataclass(frozen=True, slots=True)
class Order:
    """One order as we know it. Never mutated: every change returns a new ``Order``."""

    cl_ord_id: str
    symbol: str
    side: str  # "buy" | "sell"
    order_type: str  # Kraken's ordertype: "limit", "market", ...
    qty: int  # scaled by qty_precision
    price: int | None  # scaled by price_precision; None for market orders
    price_precision: int
    qty_precision: int
    strategy: str
    state: OrderState = S.PENDING_NEW
    order_id: str | None = None  # Kraken's txid, once known
    filled_qty: int = 0  # cum_qty, scaled by qty_precision
    cum_cost: Decimal = Decimal(0)  # quote currency, as Kraken reports it
    avg_price: Decimal | None = None
    reason: str = ""
    time_in_force: str = "GTC"
    post_only: bool = False
    cancel_pending: bool = False
    amend_pending: bool = False
    created_ns: int = 0
    updated_ns: int = 0

    @property
    def is_open(self) -> bool:
        """Might still trade: PENDING_NEW, UNKNOWN, NEW or PARTIALLY_FILLED."""
        return self.state in OPEN_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def remaining_qty(self) -> int:
        return max(self.qty - self.filled_qty, 0)


class OrderTerms(Protocol):
    """What a place's request says of its order: all a venue reads to send one (an
    ``Order`` has every one of these; so has a ``PlaceTerms``, before its ``Order`` is
    made)."""

    @property
    def cl_ord_id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def order_type(self) -> str: ...
    @property
    def qty(self) -> int: ...
    @property
    def price(self) -> int | None: ...
    @property
    def time_in_force(self) -> str: ...
    @property
    def post_only(self) -> bool: ...


class PlaceTerms(NamedTuple):
    """A new order's ``OrderTerms`` as plain values (scaled ints, a canonical
    ``cl_ord_id``): what the engine decides and writes a place from before it makes the
    ``Order`` (``ExecutionEngine.submit_terms``)."""

    cl_ord_id: str
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int | None
    time_in_force: str
    post_only: bool


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders; ``exec_id`` is unique (the store keys on it)."""

    exec_id: str
    trade_id: str
    cl_ord_id: str
    order_id: str
    symbol: str
    side: str
    price: int  # scaled by price_precision: the pair's, or finer for an average (fill_price)
    qty: int  # scaled by qty_precision
    price_precision: int
    qty_precision: int
    cost: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: str  # "m" maker, "t" taker (Kraken's liquidity_ind)
    ts_ns: int


MAX_FILL_DECIMALS: Final = 18  # a fill price with more decimals than this is not Kraken's


def fill_price(value: Decimal, precision: int) -> tuple[int, int]:
    """A fill price exactly as Kraken sent it, as ``(scaled, price_precision)``: scaled by the
    pair's ``precision``, or by as many decimals as ``value`` has when it has more (an
    average over the levels a taker order crossed). ``ProtocolError`` past
    ``MAX_FILL_DECIMALS`` decimals, or for a value that is not a positive finite number."""
    exponent = value.normalize().as_tuple().exponent if value.is_finite() else None
    if not isinstance(exponent, int) or value <= 0:
        raise ProtocolError(f"a fill price must be a positive number, got {value}")
    decimals = max(-exponent, precision)
    if decimals > MAX_FILL_DECIMALS:
        raise ProtocolError(f"fill price {value} has more than {MAX_FILL_DECIMALS} decimals")
    return to_scaled(value, decimals), decimals


def _scaled(value: Decimal | None, precision: int) -> int | None:
    return None if value is None else to_scaled(value, precision)


def _fee(fees: tuple[Fee, ...] | None) -> tuple[Decimal, str]:
    if not fees:
        return Decimal(0), ""
    assets = {fee.asset for fee in fees}
    if len(assets) != 1:
        raise ProtocolError(f"executions: fees in several assets: {sorted(assets)}")
    return sum((fee.qty for fee in fees), Decimal(0)), fees[0].asset


_RFC3339: Final = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def timestamp_ns(value: str) -> int:
    """Kraken's RFC 3339 time (``2023-09-22T10:33:05.709950Z``) as exact ns since the epoch."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ProtocolError(f"executions: bad timestamp {value!r}")
    whole, frac, zone = match.groups()
    try:
        dt = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        raise ProtocolError(f"executions: bad timestamp {value!r}") from None
    return calendar.timegm(dt.utctimetuple()) * 1_000_000_000 + int((frac or "").ljust(9, "0"))


# ---------------------------------------------------------------------------------------
# Client order ids


_HEX32: Final = re.compile(r"[0-9a-fA-F]{32}")
_LOWER_HEX: Final = "0123456789abcdef"
_LONG_UUID: Final = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_FREE_TEXT: Final = re.compile(r"[\x21-\x7e]{1,18}")


def new_cl_ord_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh client order id: a version-4 UUID as 32 lowercase hex digits.

    That is Kraken's "short UUID" format (KRAKEN.md §8.1). 122 random bits keep it unique
    for ever, not just among open orders, which the store relies on. Tests pass a seeded
    source, e.g. ``random.Random(1).randbytes``.
    """
    n = int.from_bytes(random_bytes(16), "big")  # what uuid.UUID(bytes=..., version=4) does:
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # the RFC 4122 variant
    n = (n & ~(0xF000 << 64)) | (4 << 76)  # version 4
    return f"{n:032x}"  # without building a UUID object: this is on the order path


def canonical_cl_ord_id(value: str) -> str:
    """The one spelling of a ``cl_ord_id`` under which the bot keeps and matches orders.

    Kraken stores a UUID ``cl_ord_id`` (long, hyphenated, or short, 32 hex digits) as a
    128-bit integer and prints it back in a form of its choosing: an id sent as 32 hex
    digits may be echoed hyphenated, in either case, and the other way round. Both UUID
    forms become 32 lowercase hex digits (the form the bot issues); free text (at most 18
    characters, never 32 hex digits) is kept exactly, as Kraken compares it as text.
    """
    if len(value) == 32 and _HEX32.fullmatch(value):
        return value.lower()
    if len(value) == 36 and _LONG_UUID.fullmatch(value):
        return value.replace("-", "").lower()
    return value


def is_valid_cl_ord_id(value: str) -> bool:
    """Kraken accepts a long UUID, a 32-hex short UUID, or ≤ 18 printable ASCII chars."""
    return bool(
        _HEX32.fullmatch(value) or _LONG_UUID.fullmatch(value) or _FREE_TEXT.fullmatch(value)
    )


# ---------------------------------------------------------------------------------------
# What our code does


def new_order(
    *,
    cl_ord_id: str,
    instrument: Instrument,
    side: str,
    order_type: str,
    qty: int,
    price: int | None,
    strategy: str,
    now_ns: int,
    time_in_force: str = "GTC",
    post_only: bool = False,
) -> Order:
    """A PENDING_NEW order, to be saved to the store before it is sent; a UUID
    ``cl_ord_id`` is kept in its canonical form (``canonical_cl_ord_id``)."""
    if len(cl_ord_id) == 32 and not cl_ord_id.strip(_LOWER_HEX):
        pass  # 32 lowercase hex digits (the engine's own ids): canonical already, no regex
    elif len(cl_ord_id) == 32 and _HEX32.fullmatch(cl_ord_id):
        cl_ord_id = cl_ord_id.lower()
    elif not is_valid_cl_ord_id(cl_ord_id):
        raise ProtocolError(f"not a valid Kraken cl_ord_id: {cl_ord_id!r}")
    else:
        cl_ord_id = canonical_cl_ord_id(cl_ord_id)
    if side not in ("buy", "sell"):
        raise ProtocolError(f"{cl_ord_id}: side must be 'buy' or 'sell', got {side!r}")
    if qty <= 0:
        raise ProtocolError(f"{cl_ord_id}: qty must be positive, got {qty}")
    return Order(
        cl_ord_id=cl_ord_id,
        symbol=instrument.symbol,
        side=side,
        order_type=order_type,
        qty=qty,
        price=price,
        price_precision=instrument.price_precision,
        qty_precision=instrument.qty_precision,
        strategy=strategy,
        time_in_force=time_in_force,
        post_only=post_only,
        created_ns=now_ns,
        updated_ns=now_ns,
    )


def transition(order: Order, new_state: OrderState, *, now_ns: int, **changes: Any) -> Order:
    """``order`` moved to ``new_state`` with ``changes`` applied; strict (rule 6).

    Raises ``IllegalTransition`` if the table forbids the move, if ``changes`` touches an
    identity field, or if ``filled_qty`` would go down.
    """
    if new_state not in TRANSITIONS[order.state]:
        why = "terminal state" if order.is_terminal else "not in the transition table"
        raise IllegalTransition(order.cl_ord_id, order.state, new_state, why)
    if forbidden := _FIXED.intersection(changes):
        raise IllegalTransition(
            order.cl_ord_id, order.state, new_state, f"cannot change {sorted(forbidden)}"
        )
    if changes.get("filled_qty", order.filled_qty) < order.filled_qty:
        raise IllegalTransition(order.cl_ord_id, order.state, new_state, "filled_qty went down")
    if new_state in DONE_STATES:
        changes.setdefault("cancel_pending", False)
        changes.setdefault("amend_pending", False)
    return dataclasses.replace(order, state=new_state, updated_ns=now_ns, **changes)


def mark_unknown(order: Order, reason: str, *, now_ns: int) -> Order:
    """AddOrder's outcome is unknown (timeout, 5xx, restart while PENDING_NEW).

    If the exchange already told us the order's fate (a report overtook the REST answer)
    the order is returned unchanged: that fate is better than "unknown".
    """
    if order.state is not S.PENDING_NEW:
        return order
    return transition(order, S.UNKNOWN, now_ns=now_ns, reason=reason)


def acknowledge(order: Order, order_id: str, *, now_ns: int) -> Order:
    """AddOrder answered with ``order_id`` (txid): the order is live unless we know more."""
    report = ExecutionReport(exec_type="new", order_status="new", order_id=order_id)
    return apply_execution(order, report, now_ns=now_ns)


def request_cancel(order: Order, *, now_ns: int) -> Order:
    """Flag a cancel in flight. UNKNOWN orders may be canceled by ``cl_ord_id`` too."""
    if not order.is_open:
        raise IllegalTransition(order.cl_ord_id, order.state, order.state, "cancel of a done order")
    return _flagged(order, now_ns, True, order.amend_pending)


def cancel_failed(order: Order, reason: str, *, now_ns: int) -> Order:
    """The cancel request failed; the order keeps its state (a no-op once it is done)."""
    if not order.is_open or not order.cancel_pending:
        return order
    return transition(order, order.state, now_ns=now_ns, cancel_pending=False, reason=reason)


def request_amend(order: Order, *, now_ns: int) -> Order:
    """Flag an amend in flight; only a live order (NEW, PARTIALLY_FILLED) can be amended."""
    if order.state not in (S.NEW, S.PARTIALLY_FILLED):
        raise IllegalTransition(
            order.cl_ord_id, order.state, order.state, "amend of a non-live order"
        )
    return _flagged(order, now_ns, order.cancel_pending, True)


def _flagged(order: Order, now_ns: int, cancel_pending: bool, amend_pending: bool) -> Order:
    """``transition(order, order.state, now_ns=now_ns, cancel_pending=...,
    amend_pending=...)`` for an open order (every open state may stay itself): the same
    new ``Order``, built by its fields in order rather than by ``dataclasses.replace``
    (about a third of the time: it is on every amend's and cancel's path, before the
    write). ``tests/unit/test_orders.py`` holds the two equal for every field."""
    o = order
    return Order(
        o.cl_ord_id, o.symbol, o.side, o.order_type, o.qty, o.price, o.price_precision,
        o.qty_precision, o.strategy, o.state, o.order_id, o.filled_qty, o.cum_cost,
        o.avg_price, o.reason, o.time_in_force, o.post_only, cancel_pending, amend_pending,
        o.created_ns, now_ns,
    )  # fmt: skip


def amend_failed(order: Order, reason: str, *, now_ns: int) -> Order:
    """The amend request failed; the order keeps its state (a no-op once it is done)."""
    if not order.is_open or not order.amend_pending:
        return order
    return transition(order, order.state, now_ns=now_ns, amend_pending=False, reason=reason)


# ---------------------------------------------------------------------------------------
# What the exchange says


def _reported_state(report: ExecutionReport) -> OrderState | None:
    if report.order_status is not None:
        state = _ORDER_STATUS.get(report.order_status)
        if state is None:
            raise ProtocolError(f"executions: unknown order_status {report.order_status!r}")
        return state
    return None if report.exec_type is None else _EXEC_TYPE_STATE.get(report.exec_type)


def apply_execution(order: Order, report: ExecutionReport, *, now_ns: int) -> Order:
    """Merge one exchange report into ``order`` (rules 3 to 5).

    Quantities and prices are scaled with the order's own precisions. Returns ``order``
    itself (the same object) when the report teaches nothing, so the caller can skip
    saving with ``if new is not old``. Raises ``ProtocolError`` if the report names another
    order, has an unknown ``order_status``, or a number finer than the order's precision.
    """
    _check_identity(order, report)
    cum_qty = _scaled(report.cum_qty, order.qty_precision)
    if cum_qty is not None and cum_qty < order.filled_qty:
        return order  # stale: fills only ever grow
    changes: dict[str, Any] = {}
    if report.order_id is not None and order.order_id is None:
        changes["order_id"] = report.order_id
    if cum_qty is not None and cum_qty > order.filled_qty:
        changes["filled_qty"] = cum_qty
        if report.cum_cost is not None:
            changes["cum_cost"] = report.cum_cost
        if report.avg_price is not None:
            changes["avg_price"] = report.avg_price
    if order.is_terminal:
        # Absorbing (rule 4): only a fact about more fills is merged.
        return _with(order, order.state, changes, now_ns)

    state = order.state
    reported = _reported_state(report)
    if reported is not None and _RANK[reported] >= _RANK[order.state]:
        state = reported
    elif (
        reported is None
        and order.filled_qty < changes.get("filled_qty", 0)
        and _RANK[state] < _RANK[S.PARTIALLY_FILLED]
    ):
        # A trade report without order_status: more fills is a fact, not a guess.
        state = S.PARTIALLY_FILLED
    if report.exec_type in ("amended", "restated"):
        if report.order_qty is not None:
            changes["qty"] = to_scaled(report.order_qty, order.qty_precision)
        if report.limit_price is not None:
            changes["price"] = to_scaled(report.limit_price, order.price_precision)
        if report.exec_type == "amended":
            changes["amend_pending"] = False
    if report.reason and state is not order.state:
        changes["reason"] = report.reason
    return _with(order, state, changes, now_ns)


def _with(order: Order, state: OrderState, changes: dict[str, Any], now_ns: int) -> Order:
    changes = {k: v for k, v in changes.items() if getattr(order, k) != v}
    if state is order.state and not changes:
        return order
    if order.is_terminal:
        return dataclasses.replace(order, updated_ns=now_ns, **changes)
    return transition(order, state, now_ns=now_ns, **changes)


def _check_identity(order: Order, report: ExecutionReport) -> None:
    cid = report.cl_ord_id
    if cid is not None and canonical_cl_ord_id(cid) != canonical_cl_ord_id(order.cl_ord_id):
        raise ProtocolError(f"report for {report.cl_ord_id} applied to {order.cl_ord_id}")
    if report.order_id is not None and order.order_id not in (None, report.order_id):
        raise ProtocolError(f"report for {report.order_id} applied to {order.order_id}")
    if report.symbol is not None and report.symbol != order.symbol:
        raise ProtocolError(f"{order.cl_ord_id}: report for {report.symbol}, not {order.symbol}")


def fill_from_report(order: Order, report: ExecutionReport) -> Fill | None:
    """The ``Fill`` a ``trade`` report describes, or ``None`` for any other report."""
    if report.exec_type != "trade":
        return None
    if report.exec_id is None or report.last_qty is None or report.last_price is None:
        raise ProtocolError(f"{order.cl_ord_id}: trade report without exec_id/last_qty/last_price")
    order_id = report.order_id or order.order_id
    if order_id is None:
        raise ProtocolError(f"{order.cl_ord_id}: trade report for an order with no order_id")
    fee, fee_asset = _fee(report.fees)
    price, price_precision = fill_price(report.last_price, order.price_precision)
    return Fill(
        exec_id=report.exec_id,
        trade_id="" if report.trade_id is None else str(report.trade_id),
        cl_ord_id=order.cl_ord_id,
        order_id=order_id,
        symbol=order.symbol,
        side=order.side,
        price=price,
        qty=to_scaled(report.last_qty, order.qty_precision),
        price_precision=price_precision,
        qty_precision=order.qty_precision,
        cost=report.cost if report.cost is not None else Decimal(0),
        fee=fee,
        fee_asset=fee_asset,
        liquidity=report.liquidity_ind or "",
        ts_ns=0 if report.timestamp is None else timestamp_ns(report.timestamp),
    )


def amend_post_only(order: OrderTerms, price: int | None) -> bool | None:
    """AmendOrder's ``post_only`` for an amend of ``order`` to ``price``: True when a
    post-only order's price moves, else not sent. Kraken's ``post_only`` on an amend
    defaults to false, and only with it true is a new price that would take refused
    (Kraken's OpenAPI, ``spot-rest/schemas/requests/trading/orders/amend.yaml``; the same
    on WS v2 ``amend_order``): the order's own ``post`` flag is not documented to guard it."""
    return True if order.post_only and price is not None else None
