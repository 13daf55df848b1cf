"""The Futures simulator's contracts: linear multi-collateral perpetuals, written down.

Each ``Contract`` is what ``GET /instruments`` lists for it
(https://docs.kraken.com/api/docs/futures-api/trading/get-instruments): the tick, the
contract size, ``contractValueTradePrecision``, the maximum position and the margin
schedule (``marginLevels`` by quote notional, ``numNonContractUnits``), modelled on
Kraken's own listing of PF_XBTUSD, PF_ETHUSD and PF_SOLUSD. ``to_json`` renders that
entry; ``market_instrument`` gives the spot-style ``Instrument`` the shared synthetic
market source and the matching ``Book`` work in (the same scaled ints); ``profile`` is how
the synthetic market trades it.

Prices and sizes are scaled ints, as everywhere in krakenbot: ``price_precision`` decimals
of price (PF_XBTUSD's tick 0.5: precision 1, increment 5) and ``qty_precision`` of size.

This module owns only data and its renderings; it is the simulator's own reading of the
format, independent of the client's parser (``bot.futures.instruments``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from bot.kraken.instruments import Instrument, from_scaled
from bot.sim.pairs import PairProfile

__all__ = ["CONTRACTS", "Contract", "contract_table", "default_contracts"]


@dataclass(frozen=True, slots=True)
class Contract:
    """One linear perpetual (see the module docstring). ``margin_levels``: (notional
    start, initial fraction, maintenance fraction), ascending."""

    symbol: str
    base: str
    quote: str
    tick: Decimal
    price_precision: int
    qty_precision: int
    contract_size: Decimal
    max_position: Decimal
    margin_levels: tuple[tuple[Decimal, Decimal, Decimal], ...]
    start_price: Decimal
    lot: Decimal
    opening_date: str = "2022-03-22T13:18:45Z"
    funding_rate_coefficient: Decimal = Decimal(24)
    max_relative_funding_rate: Decimal = Decimal("0.0025")

    @property
    def price_increment(self) -> int:
        return int(self.tick.scaleb(self.price_precision))

    @property
    def qty_increment(self) -> int:
        return 1  # contractValueTradePrecision >= 0 for every contract here

    @property
    def min_qty(self) -> int:
        return 1

    def price_decimal(self, n: int) -> Decimal:
        return from_scaled(n, self.price_precision)

    def qty_decimal(self, n: int) -> Decimal:
        return from_scaled(n, self.qty_precision)

    def notional(self, qty: int, price: int) -> Decimal:
        """``|qty| * contractSize * price`` in the quote currency, exact."""
        return self.qty_decimal(abs(qty)) * self.contract_size * self.price_decimal(price)

    def rates(self, notional: Decimal) -> tuple[Decimal, Decimal]:
        """(initial, maintenance) fractions of the schedule's step for ``notional``."""
        initial, maintenance = self.margin_levels[0][1], self.margin_levels[0][2]
        for start, im, mm in self.margin_levels:
            if notional >= start:
                initial, maintenance = im, mm
        return initial, maintenance

    def to_json(self) -> dict[str, Any]:
        """The ``/instruments`` entry (numbers as exact ``Decimal``); retail clients get the
        same schedule as professional ones here."""
        levels = [
            {"numNonContractUnits": s, "initialMargin": im, "maintenanceMargin": mm}
            for s, im, mm in self.margin_levels
        ]
        return {
            "symbol": self.symbol,
            "type": "flexible_futures",
            "tradeable": True,
            "tickSize": self.tick,
            "contractSize": self.contract_size,
            "impactMidSize": Decimal(1),
            "maxPositionSize": self.max_position,
            "openingDate": self.opening_date,
            "marginLevels": levels,
            "retailMarginLevels": levels,
            "fundingRateCoefficient": self.funding_rate_coefficient,
            "maxRelativeFundingRate": self.max_relative_funding_rate,
            "contractValueTradePrecision": self.qty_precision,
            "postOnly": False,
            "tradfi": False,
            "base": self.base,
            "quote": self.quote,
            "pair": f"{self.base}:{self.quote}",
            "category": "Layer 1",
            "tags": [],
        }

    def market_instrument(self) -> Instrument:
        """The same grid as a spot ``Instrument`` (for the synthetic market and the book)."""
        return Instrument(
            symbol=self.symbol,
            base=self.base,
            quote=self.quote,
            price_precision=self.price_precision,
            qty_precision=self.qty_precision,
            price_increment=self.price_increment,
            qty_increment=self.qty_increment,
            qty_min=self.min_qty,
            cost_min=Decimal(0),
        )

    def profile(self) -> PairProfile:
        return PairProfile(
            start_price=self.start_price,
            spread_ticks=(1, 3),
            gap_ticks=(1, 2),
            lot=self.lot,
            vol_bps=1.0,
            trades_per_s=2.0,
            churn_per_s=20.0,
        )


_LEVELS: Final = (
    (Decimal(0), Decimal("0.02"), Decimal("0.01")),
    (Decimal(500_000), Decimal("0.04"), Decimal("0.02")),
    (Decimal(2_000_000), Decimal("0.1"), Decimal("0.05")),
)

CONTRACTS: Final[tuple[Contract, ...]] = (
    Contract(
        symbol="PF_XBTUSD",
        base="XBT",
        quote="USD",
        tick=Decimal("0.5"),
        price_precision=1,
        qty_precision=4,
        contract_size=Decimal(1),
        max_position=Decimal(500),
        margin_levels=_LEVELS,
        start_price=Decimal(65000),
        lot=Decimal("0.05"),
    ),
    Contract(
        symbol="PF_ETHUSD",
        base="ETH",
        quote="USD",
        tick=Decimal("0.1"),
        price_precision=1,
        qty_precision=3,
        contract_size=Decimal(1),
        max_position=Decimal(16000),
        margin_levels=_LEVELS,
        start_price=Decimal(3200),
        lot=Decimal("0.5"),
    ),
    Contract(
        symbol="PF_SOLUSD",
        base="SOL",
        quote="USD",
        tick=Decimal("0.01"),
        price_precision=2,
        qty_precision=2,
        contract_size=Decimal(1),
        max_position=Decimal(100_000),
        margin_levels=_LEVELS,
        start_price=Decimal(150),
        lot=Decimal(5),
    ),
)


def contract_table(contracts: Iterable[Contract]) -> dict[str, Contract]:
    return {c.symbol: c for c in contracts}


def default_contracts(symbols: Iterable[str] | None = None) -> Mapping[str, Contract]:
    """The shipped contracts (all, or those named; an unknown name is a ``KeyError``)."""
    table = contract_table(CONTRACTS)
    if symbols is None:
        return table
    return {s.upper(): table[s.upper()] for s in symbols}
