"""Prepared orders: a place whose fixed parts are checked once, and only its price per tick.

A strategy that places the same kind of order again and again (one side of one symbol, one
quantity, one order type and flags) makes a ``PreparedOrder`` once, at ``on_start`` or
when the quantity changes, and calls ``place(price)`` (a ``Decimal``) or
``place_units(units)`` (the price as an int in the pair's price units, ``price ×
10**price_precision``: what ``book.view`` holds) on each tick. Making it runs every check
of ``Context.place`` that no price can change (side, time in force, the quantity on the
lot and above the minimum, the order type and its flags) and raises their
``InvalidIntent`` at once, counted as a place's; a tick checks what a price changes (a
positive price on the tick, the cost above the minimum) in integers, then builds the order
and submits its command to the same engine: the pre-trade stage (readiness, the exchange's
state, rate room, risk) decides it exactly as it decides a ``ctx.place``.

Its decisions are ``ctx.place``'s, by construction: anything unusual (a price that is not
a plain finite ``Decimal``, off the tick, not positive, below the cost minimum; a
``place_units`` of a non-int) is handed to ``ctx.place`` itself, which raises and counts
as it always does; and the instrument is read on every tick, so a changed pair (a new
instrument table, a new status) has its fixed parts checked again first.
tests/unit/test_prepared_order.py holds it to that.

A place that passed those checks goes on as ``ctx.place``'s does, by the same code
(``Context._place_checked``): on the daemon the engine decides the common case on its terms
and writes the request before the ``Order``, its handle and its command are made
(``ExecutionEngine.submit_terms``; tests/unit/test_submit_terms.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from bot.kraken.instruments import Instrument, from_scaled
from bot.strategy.api import (
    Context,
    InvalidIntent,
    OrderHandle,
    OrderType,
    Side,
    TimeInForce,
    check_qty,
)

__all__ = ["PreparedOrder"]

_DECIMAL: Final = Decimal
_EXACT: Final = 10**28  # a scaled price below this has at most 28 digits: scaled exactly


def _static_checks(inst: Instrument, side: str, qty: object, kind: tuple[str, str, bool]) -> int:
    """The checks of ``checked_order`` that no price changes, in its order (``kind``: the
    order type, time in force, post_only): the quantity, scaled (``InvalidIntent`` if one
    fails, the very error a place would raise)."""
    sym, (order_type, tif, post_only) = inst.symbol, kind
    if side not in ("buy", "sell"):
        raise InvalidIntent("side", f"{sym}: side must be 'buy' or 'sell', got {side!r}")
    if tif not in ("GTC", "IOC"):
        raise InvalidIntent("time_in_force", f"{sym}: time_in_force must be GTC or IOC")
    q = check_qty(inst, qty)
    if order_type not in ("limit", "market"):
        raise InvalidIntent("order_type", f"{sym}: order_type must be limit or market")
    if order_type == "market" and post_only:
        raise InvalidIntent("price", f"{sym}: a market order takes no price nor post_only")
    return q


def _least_cost(inst: Instrument) -> int | None:
    """The smallest ``price × qty`` (scaled ints) the pair takes: the ceiling of the bound
    ``checked_order`` compares with (an int is below a number exactly when it is below
    its ceiling); None when that bound is not a finite ``Decimal`` (every tick then takes
    the general path)."""
    least = inst.cost_min
    if type(least) is not Decimal or not least.is_finite():
        return None
    num, den = least.scaleb(inst.price_precision + inst.qty_precision).as_integer_ratio()
    return -(-num // den)


class PreparedOrder:
    """One kind of order of one strategy, ready to place at a price; see the module
    docstring. ``qty`` is a ``Decimal`` on the lot, as for ``ctx.place``."""

    __slots__ = (
        "_ctx", "_inst", "_kind", "_least", "_pp", "_q", "_qty", "_scale", "_side", "_step",
        "_symbol",
    )  # fmt: skip

    def __init__(
        self,
        ctx: Context,
        symbol: str,
        side: Side,
        qty: Decimal,
        *,
        order_type: OrderType = "limit",
        time_in_force: TimeInForce = "GTC",
        post_only: bool = False,
    ) -> None:
        # The context that owns orders on ``symbol`` (a two-venue context's venue side).
        ctx = ctx._context_for(symbol)
        self._ctx, self._symbol, self._side, self._qty = ctx, symbol, side, qty
        self._kind: tuple[str, str, bool] = (order_type, time_in_force, post_only)
        self._inst: Instrument | None = None
        self._q = self._scale = self._step = self._pp = 0
        self._least: int | None = None
        self._bind(ctx._instrument(symbol))

    def _bind(self, inst: Instrument) -> None:
        """Check the fixed parts against ``inst`` (raising and counting as a place)."""
        self._inst = None  # until every check passed
        try:
            q = _static_checks(inst, self._side, self._qty, self._kind)
        except InvalidIntent as exc:
            self._ctx._invalid("place", exc, self._symbol, side=self._side)
            raise
        self._q, self._step = q, inst.price_increment
        self._pp, self._scale = inst.price_precision, 10**inst.price_precision
        self._least = _least_cost(inst)
        self._inst = inst

    # What it was made with (read-only: a different order is a new ``PreparedOrder``).
    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def side(self) -> Side:
        return self._side

    @property
    def qty(self) -> Decimal:
        return self._qty

    @property
    def order_type(self) -> OrderType:
        return self._kind[0]  # type: ignore[return-value]  # checked in _bind

    @property
    def time_in_force(self) -> TimeInForce:
        return self._kind[1]  # type: ignore[return-value]  # checked in _bind

    @property
    def post_only(self) -> bool:
        return self._kind[2]

    @property
    def price_increment_units(self) -> int:
        """The tick in price units (for ``place_units``: round a price to a multiple)."""
        return self._step

    @property
    def price_precision(self) -> int:
        """The pair's price decimals: a price in units is ``price × 10**price_precision``."""
        inst = self._inst
        return 0 if inst is None else inst.price_precision

    def place(self, price: Decimal | None = None) -> OrderHandle:
        """``ctx.place(symbol, side, qty, price, ...)`` with this order's fixed parts: the
        same handle, order, command, refusals and ``InvalidIntent``."""
        inst = self._ctx._instrument(self._symbol)
        if inst is not self._inst:
            self._bind(inst)
        if self._kind[0] == "market":
            if price is None:
                return self._place(inst, None)
        elif (
            type(price) is _DECIMAL and price.is_finite() and 0 <= price.adjusted() + self._pp < 28
        ):
            num, den = price.as_integer_ratio()  # bounded: 1 <= price in units < 10**28
            units, rest = divmod(num * self._scale, den)
            if not rest and self._takes(units):
                return self._place(inst, units)
        return self._general(price)

    def place_units(self, units: int) -> OrderHandle:
        """``place`` at the price ``units / 10**price_precision`` (an int: no ``Decimal`` on
        the way), e.g. the book's ``view.bids[0][0]`` rounded to the tick."""
        inst = self._ctx._instrument(self._symbol)
        if inst is not self._inst:
            self._bind(inst)
        least = self._least  # ``_takes``, written out: once per tick
        if (
            type(units) is int
            and self._kind[0] == "limit"
            and 0 < units < _EXACT
            and not units % self._step
            and least is not None
            and units * self._q >= least
        ):
            order_type, tif, post_only = self._kind  # ``_place``, written out: per tick
            return self._ctx._place_checked(
                inst, self._side, order_type, self._q, units, tif, post_only
            )
        price = from_scaled(units, inst.price_precision) if type(units) is int else units
        return self._general(price)

    def _takes(self, units: int) -> bool:
        """A limit price (in units) that passes every check of a place's price: positive,
        on the tick, the cost at least the minimum; and small enough that ``check_price``'s
        ``Decimal`` scaling (28 digits) is exact, as it is for any real price."""
        least = self._least
        return (
            0 < units < _EXACT
            and not units % self._step
            and least is not None
            and units * self._q >= least
        )

    def _place(self, inst: Instrument, price: int | None) -> OrderHandle:
        """What ``Context.place`` does once its checks passed (``Context._place_checked``)."""
        order_type, tif, post_only = self._kind
        return self._ctx._place_checked(
            inst, self._side, order_type, self._q, price, tif, post_only
        )

    def _general(self, price: object) -> OrderHandle:
        """The general path, for anything the fast checks do not take: it decides, raises
        and counts exactly as a place."""
        order_type, tif, post_only = self._kind
        return self._ctx.place(
            self._symbol, self._side, self._qty, price,  # type: ignore[arg-type]
            order_type=order_type, time_in_force=tif, post_only=post_only,  # type: ignore[arg-type]
        )  # fmt: skip

    def __repr__(self) -> str:
        flags = " post_only" if self.post_only else ""
        return (
            f"PreparedOrder({self._ctx.name} {self.side} {self.qty} {self.symbol} "
            f"{self.order_type} {self.time_in_force}{flags})"
        )
