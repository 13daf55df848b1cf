"""Commands: what a strategy asks of the engine, one frozen type per action.

``PlaceOrder`` carries the new ``Order`` (PENDING_NEW, its ``cl_ord_id`` from a recorded
block) and the ``Instrument`` it was scaled with; ``AmendOrder`` the order as the strategy
saw it and its new quantity and/or price; ``CancelOrder`` the order. One command goes
through every stage (NautilusTrader's ``SubmitOrder``): the pre-trade stage
(``bot.execution.pretrade``), the engine (``ExecutionEngine.submit``), then the venue
(``bot.execution.venue``). Each stage takes the command as it is; none is told what an
earlier stage checked. The strategy test harness records the same commands.

Numbers are the engine's: ints scaled by the order's precisions (``order.qty``,
``new_qty``...). ``qty`` and ``price`` are ``Decimal`` views for people (a test, a log
line), read from those ints when asked, as ``OrderHandle``'s are: building a command costs
nothing more than its fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from bot.execution.orders import Order
from bot.kraken.instruments import Instrument, from_scaled

__all__ = ["AmendOrder", "CancelOrder", "Command", "PlaceOrder"]


class _OrderCommand:
    """What every command tells of its order (the fields ``order`` holds)."""

    __slots__ = ()
    order: Order

    @property
    def cl_ord_id(self) -> str:
        return self.order.cl_ord_id

    @property
    def strategy(self) -> str:
        return self.order.strategy

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def side(self) -> str:
        return self.order.side


@dataclass(frozen=True, slots=True)
class PlaceOrder(_OrderCommand):
    """A new order: ``order`` is PENDING_NEW, ``instrument`` the pair it is scaled by."""

    order: Order
    instrument: Instrument

    @property
    def order_type(self) -> str:
        return self.order.order_type

    @property
    def time_in_force(self) -> str:
        return self.order.time_in_force

    @property
    def post_only(self) -> bool:
        return self.order.post_only

    @property
    def qty(self) -> Decimal:
        return from_scaled(self.order.qty, self.order.qty_precision)

    @property
    def price(self) -> Decimal | None:
        o = self.order
        return None if o.price is None else from_scaled(o.price, o.price_precision)


@dataclass(frozen=True, slots=True)
class AmendOrder(_OrderCommand):
    """Change a live order in place (it keeps its queue priority). ``order`` is the order
    as the strategy saw it; ``new_qty`` (the new total, fills included) and ``new_price``
    are scaled by its precisions, ``None`` keeping a field."""

    order: Order
    instrument: Instrument
    new_qty: int | None = None
    new_price: int | None = None

    @property
    def qty(self) -> Decimal | None:
        """The new total quantity (``None``: unchanged)."""
        n = self.new_qty
        return None if n is None else from_scaled(n, self.order.qty_precision)

    @property
    def price(self) -> Decimal | None:
        """The new limit price (``None``: unchanged)."""
        n = self.new_price
        return None if n is None else from_scaled(n, self.order.price_precision)


@dataclass(frozen=True, slots=True)
class CancelOrder(_OrderCommand):
    """Cancel one order; ``order`` is the order as the strategy saw it."""

    order: Order


Command: TypeAlias = PlaceOrder | AmendOrder | CancelOrder
