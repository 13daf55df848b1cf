"""The market's own orders in the books: a market source's actions applied (pure).

A ``MarketSource`` (``market_data``: the seeded synthetic market, or a replay) says what the
market does, step by step: rest, amend or cancel its limit orders (each named by the
source's own ``ref``) and send market orders. ``MarketOrders`` applies those actions to the
books on the market account, and tells the source what happened to its resting orders
(``on_fill``) so its view stays exact: after its own order traded on arrival, and whenever
one of them trades as a maker (``maker_filled``, which the exchange calls from its fills).

- ``MarketAdd`` rests a limit order; it trades first if it crosses.
- ``MarketTake`` is a market order: it trades and never rests.
- ``MarketCancel`` takes an order out of the book.
- ``MarketAmend`` sets an order's remaining quantity (and price): shrinking in place keeps
  its priority; a new price or a larger size sends it to the back (and it may trade).

How a crossing market order trades is the exchange's (``take``): the spot exchange settles
balances and fees, the Futures one positions and margin; both simulators share the rest.

This module owns the market's orders; it never settles a trade itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from bot.sim.market_data import (
    MarketAction,
    MarketAdd,
    MarketAmend,
    MarketCancel,
    MarketSource,
    MarketTake,
)
from bot.sim.matching import Book, Order

__all__ = ["MarketOrders"]

_PREFIX: Final = "M"


class MarketOrders:
    """The market account's orders (see the module docstring).

    ``take(order, book)`` matches a crossing market order against ``book`` and settles its
    fills (the exchange's code); ``touch(book)`` notes a book that changed, so its levels
    are reported."""

    def __init__(
        self,
        account: str,
        books: Mapping[str, Book],
        source: MarketSource | None,
        *,
        take: Callable[[Order, Book], None],
        touch: Callable[[Book], None],
    ) -> None:
        self.account = account
        self.source = source
        self.by_ref: dict[int, Order] = {}
        self._books = books
        self._take = take
        self._touch = touch
        self._seq = 0

    def apply(self, action: MarketAction, now_ns: int) -> None:
        """Apply one of the source's actions at ``now_ns``."""
        if isinstance(action, MarketTake):
            self._order(
                action.symbol, action.side, price=None, qty=action.qty, ref=None, now=now_ns
            )
        elif isinstance(action, MarketAdd):
            self._order(
                action.symbol,
                action.side,
                price=action.price,
                qty=action.qty,
                ref=action.ref,
                now=now_ns,
            )
        elif isinstance(action, MarketCancel):
            order = self.by_ref.pop(action.ref, None)
            if order is not None:
                book = self._books[order.symbol]
                book.unrest(order)
                self._touch(book)
        elif isinstance(action, MarketAmend):
            self._amend(action)

    def maker_filled(self, maker: Order) -> None:
        """One of the market's resting orders traded: tell the source what remains, and
        forget the order once it is done."""
        if maker.ref is None:
            return
        if self.source is not None:
            self.source.on_fill(maker.symbol, maker.ref, maker.qty - maker.filled)
        if maker.filled == maker.qty:
            self.by_ref.pop(maker.ref, None)

    def forget(self, ref: int | None) -> None:
        """The exchange closed one of the market's orders."""
        if ref is not None:
            self.by_ref.pop(ref, None)

    # -- the actions ----------------------------------------------------------------------
    def _order(
        self, symbol: str, side: str, *, price: int | None, qty: int, ref: int | None, now: int
    ) -> None:
        if symbol not in self._books:
            return
        self._seq += 1
        order = Order(
            txid=f"{_PREFIX}{self._seq}",
            account=self.account,
            symbol=symbol,
            side="buy" if side == "buy" else "sell",
            ord_type="limit" if price is not None else "market",
            price=price,
            qty=qty,
            opentm=now,
            time_in_force="GTC" if price is not None else "IOC",
            status="open",
            ref=ref,
        )
        self._rest(order)

    def _rest(self, order: Order) -> None:
        book = self._books[order.symbol]
        self._touch(book)
        if order.price is None or book.crosses(order.side, order.price):
            self._take(order, book)
            if order.ref is not None and order.filled and self.source is not None:
                self.source.on_fill(order.symbol, order.ref, order.qty - order.filled)
        if order.price is not None and order.filled < order.qty and order.ref is not None:
            self.by_ref[order.ref] = order
            book.rest(order)
        elif order.ref is not None:
            self.by_ref.pop(order.ref, None)

    def _amend(self, action: MarketAmend) -> None:
        order = self.by_ref.get(action.ref)
        if order is None:
            return
        book = self._books[order.symbol]
        self._touch(book)
        remaining = order.qty - order.filled
        price = order.price if action.price is None else action.price
        if action.qty <= 0:
            self.by_ref.pop(action.ref, None)
            book.unrest(order)
        elif price == order.price and action.qty < remaining:
            book.shrink(order, order.filled + action.qty)
        elif price != order.price or action.qty != remaining:
            book.unrest(order)
            order.qty, order.price = order.filled + action.qty, price
            self._rest(order)
