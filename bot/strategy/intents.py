"""What an order intent must satisfy, in a strategy's Decimals: the pure checks.

This module owns the strategy API's errors (``StrategyError``, ``InvalidIntent``), the
order aliases (``Side``, ``OrderType``, ``TimeInForce``), a pair as a strategy sees it
(``InstrumentInfo``), the rounding helpers (``floor_price``, ``ceil_price``,
``floor_qty``) and the checks that turn a strategy's numbers into exact scaled ints or a
clear ``InvalidIntent`` (``check_price``, ``check_qty``, ``checked_order``,
``checked_amend``: what every context runs before it builds a command). Pure: no I/O, no
clock. Strategies import these names from ``bot.strategy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from bot.core.errors import BotError
from bot.execution.orders import Order
from bot.kraken.instruments import Instrument, from_scaled

__all__ = [
    "InstrumentInfo",
    "InvalidIntent",
    "Number",
    "OrderType",
    "Side",
    "StrategyError",
    "TimeInForce",
    "ceil_price",
    "check_price",
    "check_qty",
    "checked_amend",
    "checked_order",
    "floor_price",
    "floor_qty",
]

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC"]
Number = Decimal | int


class StrategyError(BotError):
    """A strategy used the API wrongly (a bug in the strategy; the runner counts it)."""


class InvalidIntent(StrategyError):
    """An order intent that can never be valid: refused before the risk gate, never sent.

    ``reason`` is a short stable code (``price_tick``, ``qty_lot``, ``qty_min``, ...).
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


# --------------------------------------------------------------------------- numbers


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """One pair as a strategy sees it (``ctx.instrument(symbol)``): every number a
    ``Decimal`` in the pair's own units, like every other number of this API.

    ``price_increment`` is the tick and ``qty_increment`` the lot; ``qty_min`` is the
    smallest order (base units) and ``cost_min`` the smallest cost (quote units);
    ``price_precision``/``qty_precision`` count the decimals Kraken accepts. Round with
    ``floor_price``, ``ceil_price`` and ``floor_qty``. ``status`` is Kraken's
    (``online``, ``cancel_only``, ``post_only``, ``limit_only``, ``reduce_only``).
    """

    symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    price_increment: Decimal
    qty_increment: Decimal
    qty_min: Decimal
    cost_min: Decimal
    status: str = "online"
    # The increments scaled by their precisions, for the rounding helpers (not a strategy's).
    _steps: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = (
            int(self.price_increment.scaleb(self.price_precision)),
            int(self.qty_increment.scaleb(self.qty_precision)),
        )
        object.__setattr__(self, "_steps", steps)

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentInfo:
        """The view of the daemon's ``Instrument`` (scaled ints) in Decimals."""
        price, qty = instrument.price_decimal, instrument.qty_decimal
        return cls(
            instrument.symbol, instrument.base, instrument.quote,
            instrument.price_precision, instrument.qty_precision,
            price(instrument.price_increment), qty(instrument.qty_increment),
            qty(instrument.qty_min), instrument.cost_min, instrument.status,
        )  # fmt: skip


Pair = InstrumentInfo | Instrument  # what the rounding helpers take


def _step(instrument: Pair, price: bool) -> tuple[int, int]:
    """(precision, increment scaled by it) of the price (or the quantity)."""
    if isinstance(instrument, InstrumentInfo):
        steps = instrument._steps
        if price:
            return instrument.price_precision, steps[0]
        return instrument.qty_precision, steps[1]
    if price:
        return instrument.price_precision, instrument.price_increment
    return instrument.qty_precision, instrument.qty_increment


def _scale(instrument: Instrument, value: object, what: str, precision: int) -> int:
    """``value`` as an int scaled by ``precision``, or ``InvalidIntent`` saying why not."""
    sym = instrument.symbol
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidIntent(what, f"{sym}: {what} must be a Decimal, got {type(value).__name__}")
    scaled = (value if type(value) is Decimal else Decimal(value)).scaleb(precision)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        detail = f"{sym}: {what} {value} has more than {precision} decimals"
        raise InvalidIntent(f"{what}_precision", detail)
    if scaled <= 0:
        raise InvalidIntent(what, f"{sym}: {what} must be positive, got {value}")
    return int(scaled)


def check_price(instrument: Instrument, price: object) -> int:
    """A positive price on the instrument's tick, as a scaled int."""
    n, sym = _scale(instrument, price, "price", instrument.price_precision), instrument.symbol
    if n % instrument.price_increment:
        tick = instrument.price_decimal(instrument.price_increment)
        raise InvalidIntent("price_tick", f"{sym}: price {price} is off the tick {tick}")
    return n


def check_qty(instrument: Instrument, qty: object) -> int:
    """A positive quantity on the instrument's lot, at least its minimum, as a scaled int."""
    n, sym = _scale(instrument, qty, "qty", instrument.qty_precision), instrument.symbol
    if n % instrument.qty_increment:
        lot = instrument.qty_decimal(instrument.qty_increment)
        raise InvalidIntent("qty_lot", f"{sym}: qty {qty} is off the lot {lot}")
    if n < instrument.qty_min:
        least = instrument.qty_decimal(instrument.qty_min)
        raise InvalidIntent("qty_min", f"{sym}: qty {qty} is below the minimum {least}")
    return n


def _round(instrument: Pair, value: Decimal, rounding: str, price: bool) -> Decimal:
    precision, step = _step(instrument, price)
    steps = (Decimal(value).scaleb(precision) / step).to_integral_value(rounding)
    return from_scaled(int(steps) * step, precision)


def floor_price(instrument: Pair, price: Decimal) -> Decimal:
    """``price`` rounded down to the instrument's tick (for a bid)."""
    return _round(instrument, price, ROUND_FLOOR, price=True)


def ceil_price(instrument: Pair, price: Decimal) -> Decimal:
    """``price`` rounded up to the instrument's tick (for an ask)."""
    return _round(instrument, price, ROUND_CEILING, price=True)


def floor_qty(instrument: Pair, qty: Decimal) -> Decimal:
    """``qty`` rounded down to the instrument's lot."""
    return _round(instrument, qty, ROUND_FLOOR, price=False)


# --------------------------------------------------------------------------- checks


def checked_order(
    instrument: Instrument,
    side: str,
    qty: object,
    price: object = None,
    *,
    order_type: str = "limit",
    time_in_force: str = "GTC",
    post_only: bool = False,
) -> tuple[int, int | None]:
    """A place's checks (``InvalidIntent`` if one fails): side, time in force, the quantity
    on the lot and above the minimum, a limit order's price on the tick and its cost above
    the minimum, a market order with no price. The quantity and price as scaled ints."""
    sym = instrument.symbol
    if side not in ("buy", "sell"):
        raise InvalidIntent("side", f"{sym}: side must be 'buy' or 'sell', got {side!r}")
    if time_in_force not in ("GTC", "IOC"):
        raise InvalidIntent("time_in_force", f"{sym}: time_in_force must be GTC or IOC")
    q, p = check_qty(instrument, qty), None
    if order_type == "limit":
        if price is None:
            raise InvalidIntent("price", f"{sym}: a limit order needs a price")
        p = check_price(instrument, price)
        least = instrument.cost_min
        # cost = p·q at price + qty precision: compared as an int with the minimum scaled
        # alike (exact either way; the Decimal only to say why).
        if p * q < least.scaleb(instrument.price_precision + instrument.qty_precision):
            cost = instrument.cost(p, q)
            detail = f"{sym}: cost {cost.normalize():f} is below the minimum {least}"
            raise InvalidIntent("cost_min", detail)
    elif order_type != "market":
        raise InvalidIntent("order_type", f"{sym}: order_type must be limit or market")
    elif price is not None or post_only:
        raise InvalidIntent("price", f"{sym}: a market order takes no price nor post_only")
    return q, p


def checked_amend(
    order: Order, instrument: Instrument, qty: object, price: object
) -> tuple[int | None, int | None]:
    """An amend's checks (``InvalidIntent`` if one fails): ``qty``, the new total, above what
    already filled; a price only for a limit order. The new qty and price as scaled ints
    (``None``: unchanged)."""
    sym = instrument.symbol
    if qty is None and price is None:
        raise InvalidIntent("amend", f"{order.cl_ord_id}: amend needs a qty or a price")
    q = None if qty is None else check_qty(instrument, qty)
    if q is not None and q <= order.filled_qty:
        filled = instrument.qty_decimal(order.filled_qty)
        raise InvalidIntent("qty", f"{sym}: amended qty {qty} must exceed the filled {filled}")
    if price is not None and order.price is None:
        raise InvalidIntent("price", f"{sym}: a market order has no price to amend")
    p = None if price is None else check_price(instrument, price)
    return q, p
