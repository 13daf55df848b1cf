"""The Decimal views of market data and of a Futures account a strategy reads.

``BookSnapshot`` (with ``PriceLevel``) wraps the book's ``BookView``; ``TradeEvent``,
``TickerEvent`` and ``FillEvent`` are what the handlers receive; ``DerivativesPosition``
and ``MarginInfo`` are ``ctx.derivatives()`` and ``ctx.margin()``. Every number is a
``Decimal`` in the pair's units. Pure, frozen values: this module owns their shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

from bot.kraken.instruments import from_scaled
from bot.market.book import BookView
from bot.strategy.intents import InstrumentInfo, StrategyError

__all__ = [
    "BookSnapshot",
    "DerivativesPosition",
    "FillEvent",
    "MarginInfo",
    "PriceLevel",
    "TickerEvent",
    "TradeEvent",
]


@dataclass(frozen=True, slots=True)
class DerivativesPosition:
    """A Kraken Futures position as the exchange last reported it (``ctx.derivatives``):
    ``size`` signed, in contracts; prices in the quote currency; ``unrealized_funding``
    apart from ``unrealized_pnl``; ``liquidation_price`` None when Kraken gives none."""

    symbol: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    liquidation_price: Decimal | None
    unrealized_pnl: Decimal | None
    unrealized_funding: Decimal | None
    effective_leverage: Decimal | None


@dataclass(frozen=True, slots=True)
class MarginInfo:
    """The Kraken Futures margin account (USD) as last reported (``ctx.margin``)."""

    portfolio_value: Decimal
    margin_equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    available_margin: Decimal
    unrealized_pnl: Decimal
    unrealized_funding: Decimal


class PriceLevel(NamedTuple):
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The top of one book at one moment, in Decimal (wraps ``bot.market.book.BookView``).

    Check ``valid`` first: while the feed resyncs, the view shows the last state applied.
    Every method returns None on an empty side. ``instrument`` is the pair's
    ``InstrumentInfo``.
    """

    view: BookView
    instrument: InstrumentInfo

    @property
    def symbol(self) -> str:
        return self.view.symbol

    @property
    def valid(self) -> bool:
        return self.view.valid

    @property
    def timestamp(self) -> str:
        return self.view.timestamp

    def _level(self, level: tuple[int, int]) -> PriceLevel:
        inst = self.instrument
        return PriceLevel(
            from_scaled(level[0], inst.price_precision), from_scaled(level[1], inst.qty_precision)
        )

    def best_bid(self) -> PriceLevel | None:
        return self._level(self.view.bids[0]) if self.view.bids else None

    def best_ask(self) -> PriceLevel | None:
        return self._level(self.view.asks[0]) if self.view.asks else None

    def mid(self) -> Decimal | None:
        """(best bid + best ask) / 2, exact."""
        return self.view.mid()

    def microprice(self) -> Decimal | None:
        """The size-weighted mid: (bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty)."""
        return self.view.microprice()

    def spread(self) -> Decimal | None:
        spread = self.view.spread()
        return None if spread is None else from_scaled(spread, self.instrument.price_precision)

    def spread_bps(self) -> Decimal | None:
        spread, mid = self.spread(), self.mid()
        return None if spread is None or not mid else spread / mid * 10_000

    def bids(self, n: int | None = None) -> tuple[PriceLevel, ...]:
        """The best ``n`` bids (all in the view if None), highest first."""
        return tuple(map(self._level, self.view.bids[:n]))

    def asks(self, n: int | None = None) -> tuple[PriceLevel, ...]:
        """The best ``n`` asks (all in the view if None), lowest first."""
        return tuple(map(self._level, self.view.asks[:n]))

    def top(self, n: int = 10) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]:
        """``(bids, asks)``, the best ``n`` of each side."""
        return self.bids(n), self.asks(n)

    def size_to_price(self, side: Literal["bid", "ask"], price: Decimal) -> Decimal:
        """Quantity on ``side`` at ``price`` or better, within the view's depth."""
        pp, qp = self.instrument.price_precision, self.instrument.qty_precision
        if side == "bid":
            levels = [q for p, q in self.view.bids if from_scaled(p, pp) >= price]
        elif side == "ask":
            levels = [q for p, q in self.view.asks if from_scaled(p, pp) <= price]
        else:
            raise StrategyError(f"side must be 'bid' or 'ask', got {side!r}")
        return from_scaled(sum(levels), qp)

    def is_crossed(self) -> bool:
        return self.view.is_crossed()


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One public trade; ``side`` is the taker's. ``snapshot`` trades are history."""

    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    ord_type: str
    trade_id: int
    timestamp: str
    snapshot: bool = False


@dataclass(frozen=True, slots=True)
class TickerEvent:
    """Top of book and 24 h statistics. ``last``, ``low`` and ``high`` are None when Kraken
    sends none (a pair with no trade in 24 h)."""

    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal | None
    volume: Decimal
    vwap: Decimal
    low: Decimal | None
    high: Decimal | None
    change: Decimal
    change_pct: Decimal
    timestamp: str


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One execution of one of the strategy's orders. ``fee`` is in ``fee_asset``."""

    exec_id: str
    cl_ord_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    cost: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    ts_ns: int
