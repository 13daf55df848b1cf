"""Market liquidity in the Futures simulator's books: the market source's actions applied.

A ``MarketSource`` (``bot.sim.market_data``: the seeded synthetic market, or a replay)
says what the market does, step by step: rest, amend or cancel its limit orders and send
market orders. ``MarketLiquidity`` applies those actions to the exchange's books on the
market account (no margin, no fees, no reports), trading against user orders when they
cross, and tells the source what happened to its resting orders (``on_fill``). This is
spot's ``Exchange`` market handling, on the Futures exchange's books and fills.

This module owns only that application; ``engine.FuturesExchange`` mixes it in.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.sim.futures.records import Report
from bot.sim.market_data import (
    MarketAction,
    MarketAdd,
    MarketAmend,
    MarketCancel,
    MarketSource,
    MarketTake,
)
from bot.sim.matching import Book, Order

__all__ = ["MARKET_ACCOUNT", "MarketLiquidity"]

MARKET_ACCOUNT = "__market__"


class MarketLiquidity:
    """Mixed into ``FuturesExchange``: what it provides is declared here."""

    market: MarketSource | None
    _books: dict[str, Book]
    _touched: dict[str, Book]
    _market_orders: dict[int, Order]
    _market_seq: int
    _now: int

    def _begin(self, now_ns: int) -> None:
        raise NotImplementedError

    def _finish(self) -> Report:
        raise NotImplementedError

    def _after_fills(self) -> None:
        raise NotImplementedError

    def _fill(self, taker: Order, maker: Order, price: int, qty: int, taker_type: str) -> None:
        raise NotImplementedError

    def apply_market(self, actions: Sequence[MarketAction], now_ns: int) -> Report:
        self._begin(now_ns)
        for action in actions:
            self._apply_market(action)
        self._after_fills()
        return self._finish()

    def _apply_market(self, action: MarketAction) -> None:
        if isinstance(action, MarketTake):
            self._market_order(action.symbol, action.side, None, action.qty, None)
        elif isinstance(action, MarketAdd):
            self._market_order(action.symbol, action.side, action.price, action.qty, action.ref)
        elif isinstance(action, MarketCancel):
            order = self._market_orders.pop(action.ref, None)
            if order is not None:
                self._books[order.symbol].unrest(order)
                self._touched[order.symbol] = self._books[order.symbol]
        elif isinstance(action, MarketAmend):
            order = self._market_orders.get(action.ref)
            if order is None:
                return
            book = self._books[order.symbol]
            self._touched[order.symbol] = book
            remaining = order.qty - order.filled
            price = order.price if action.price is None else action.price
            if action.qty <= 0:
                self._market_orders.pop(action.ref, None)
                book.unrest(order)
            elif price == order.price and action.qty < remaining:
                book.shrink(order, order.filled + action.qty)
            elif price != order.price or action.qty != remaining:
                book.unrest(order)
                order.qty, order.price = order.filled + action.qty, price
                self._rest_market(order)

    def _market_order(
        self, symbol: str, side: str, price: int | None, qty: int, ref: int | None
    ) -> None:
        if symbol not in self._books:
            return
        self._market_seq += 1
        order = Order(
            txid=f"M{self._market_seq}",
            account=MARKET_ACCOUNT,
            symbol=symbol,
            side="buy" if side == "buy" else "sell",
            ord_type="limit" if price is not None else "market",
            price=price,
            qty=qty,
            opentm=self._now,
            status="open",
            ref=ref,
        )
        self._rest_market(order)

    def _rest_market(self, order: Order) -> None:
        book = self._books[order.symbol]
        self._touched[order.symbol] = book
        if order.price is None or book.crosses(order.side, order.price):
            for maker, price, qty in book.match(order, order.price, MARKET_ACCOUNT).steps:
                if qty:
                    self._fill(order, maker, price, qty, "taker")
            if order.ref is not None and order.filled and self.market is not None:
                self.market.on_fill(order.symbol, order.ref, order.qty - order.filled)
        if order.price is not None and order.filled < order.qty and order.ref is not None:
            self._market_orders[order.ref] = order
            book.rest(order)
        elif order.ref is not None:
            self._market_orders.pop(order.ref, None)
