"""Market liquidity in the Futures simulator's books: the market source's actions applied.

A ``MarketSource`` (``bot.sim.market_data``: the seeded synthetic market, or a replay)
says what the market does, step by step. The spot simulator's ``MarketOrders``
(``bot.sim.market_orders``) applies those actions to the books on the market account (no
margin, no fees, no reports) and keeps the source told; this mixin gives it the Futures
exchange's books and fills: a crossing market order trades through ``_fill`` as taker.

This module owns only that wiring; ``engine.FuturesExchange`` mixes it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.sim.futures.records import Report
from bot.sim.market_data import MarketAction, MarketSource
from bot.sim.market_orders import MarketOrders
from bot.sim.matching import Book, Order

__all__ = ["MARKET_ACCOUNT", "MarketLiquidity"]

MARKET_ACCOUNT: Final = "__market__"


class MarketLiquidity:
    """Mixed into ``FuturesExchange``: what it provides is declared here."""

    market: MarketSource | None
    market_book: MarketOrders
    _books: dict[str, Book]
    _touched: dict[str, Book]
    _now: int

    def _begin(self, now_ns: int) -> None:
        raise NotImplementedError

    def _finish(self) -> Report:
        raise NotImplementedError

    def _after_fills(self) -> None:
        raise NotImplementedError

    def _fill(self, taker: Order, maker: Order, price: int, qty: int, taker_type: str) -> None:
        raise NotImplementedError

    def _init_liquidity(self) -> None:
        self.market_book = MarketOrders(
            MARKET_ACCOUNT, self._books, self.market, take=self._market_take, touch=self._touch
        )

    def apply_market(self, actions: Sequence[MarketAction], now_ns: int) -> Report:
        self._begin(now_ns)
        for action in actions:
            self._apply_market(action)
        self._after_fills()
        return self._finish()

    def _apply_market(self, action: MarketAction) -> None:
        self.market_book.apply(action, self._now)

    def _market_take(self, order: Order, book: Book) -> None:
        for maker, price, qty in book.match(order, order.price, MARKET_ACCOUNT).steps:
            if qty:
                self._fill(order, maker, price, qty, "taker")

    def _touch(self, book: Book) -> None:
        self._touched[book.symbol] = book
