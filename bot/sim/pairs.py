"""Kraken's real pair facts for the simulator, written down as a table.

The precisions, increments and minimums below were copied by hand from a real WS v2
``instrument`` snapshot (``../shared/data/kraken/kraken-data-recorder_instrument_snapshot.json``)
and the REST names from a real ``AssetPairs`` answer; nothing reads those files at run time.
Each pair also carries a *profile* for the synthetic market (a realistic starting price,
spread, gap between book levels, order size, volatility and trade rate). Asset ledger
precisions (``ASSET_PRECISION``) are Kraken's asset ``precision`` field.

This module owns only data and the functions that turn it into ``Instrument`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from bot.kraken.instruments import Instrument, InstrumentTable

__all__ = [
    "ASSET_PRECISION",
    "DISPLAY_DECIMALS",
    "PAIRS",
    "PROFILES",
    "PairProfile",
    "default_instruments",
    "instrument",
]


@dataclass(frozen=True, slots=True)
class PairProfile:
    """How the synthetic market trades one pair.

    Spreads and gaps are in ticks (``price_increment``); ``lot`` is a typical resting order
    size in base units; ``vol_bps`` is the mid's standard deviation per √second in basis
    points; ``trades_per_s`` and ``churn_per_s`` are the mean rates of market trades and of
    book changes (amends/cancels) away from the top.
    """

    start_price: Decimal
    spread_ticks: tuple[int, int]
    gap_ticks: tuple[int, int]
    lot: Decimal
    vol_bps: float = 1.0
    trades_per_s: float = 2.0
    churn_per_s: float = 20.0


# (symbol, rest_name, altname, price_precision, qty_precision, price_increment, qty_min,
#  cost_min, cost_precision), from the recorded instrument snapshot and AssetPairs.
_FACTS: Final = (
    ("BTC/USD", "XXBTZUSD", "XBTUSD", 1, 8, "0.1", "0.0001", "0.5", 5),
    ("ETH/USD", "XETHZUSD", "ETHUSD", 2, 8, "0.01", "0.002", "0.5", 5),
    ("SOL/USD", "SOLUSD", "SOLUSD", 2, 8, "0.01", "0.05", "0.5", 5),
    ("XRP/USD", "XXRPZUSD", "XRPUSD", 5, 8, "0.00001", "10", "0.5", 8),
    ("ADA/USD", "ADAUSD", "ADAUSD", 6, 8, "0.000001", "10", "0.5", 6),
    ("DOGE/USD", "XDGUSD", "XDGUSD", 7, 8, "0.0000001", "60", "0.5", 9),
    ("LTC/USD", "XLTCZUSD", "LTCUSD", 2, 8, "0.01", "0.05", "0.5", 5),
    ("DOT/USD", "DOTUSD", "DOTUSD", 4, 8, "0.0001", "0.6", "0.5", 5),
    ("LINK/USD", "LINKUSD", "LINKUSD", 5, 8, "0.00001", "0.2", "0.5", 6),
    ("ETH/BTC", "XETHXXBT", "ETHXBT", 5, 8, "0.00001", "0.002", "0.00002", 10),
    ("BTC/EUR", "XXBTZEUR", "XBTEUR", 1, 8, "0.1", "0.0001", "0.45", 5),
    ("ETH/EUR", "XETHZEUR", "ETHEUR", 2, 8, "0.01", "0.002", "0.45", 5),
)

# Kraken's asset ``precision`` (ledger decimals) from the same snapshot.
# Kraken's asset ``precision_display`` for the shipped assets (recorded instrument snapshot).
DISPLAY_DECIMALS: Final[dict[str, int]] = {
    "USD": 2, "EUR": 2, "BTC": 5, "ETH": 5, "SOL": 5, "XRP": 5, "ADA": 6, "DOGE": 2, "LTC": 5,
    "DOT": 8, "LINK": 5,
}  # fmt: skip
ASSET_PRECISION: Final[dict[str, int]] = {
    "USD": 4,
    "EUR": 4,
    "BTC": 10,
    "ETH": 10,
    "SOL": 10,
    "XRP": 8,
    "ADA": 8,
    "DOGE": 8,
    "LTC": 10,
    "DOT": 10,
    "LINK": 10,
}

PROFILES: Final[dict[str, PairProfile]] = {
    "BTC/USD": PairProfile(Decimal("65000.0"), (1, 4), (1, 8), Decimal("0.05"), 1.0, 4.0),
    "ETH/USD": PairProfile(Decimal("3500.00"), (1, 5), (1, 10), Decimal("0.8"), 1.2, 3.0),
    "SOL/USD": PairProfile(Decimal("150.00"), (1, 3), (1, 4), Decimal("12"), 1.6, 2.0),
    "XRP/USD": PairProfile(Decimal("0.52000"), (1, 3), (1, 3), Decimal("2500"), 1.4, 1.5),
    "ADA/USD": PairProfile(Decimal("0.450000"), (2, 10), (2, 12), Decimal("3000"), 1.5, 1.0),
    "DOGE/USD": PairProfile(Decimal("0.1500000"), (5, 30), (5, 40), Decimal("9000"), 1.8, 1.5),
    "LTC/USD": PairProfile(Decimal("80.00"), (1, 4), (1, 5), Decimal("10"), 1.3, 1.0),
    "DOT/USD": PairProfile(Decimal("7.0000"), (1, 6), (1, 8), Decimal("150"), 1.5, 0.8),
    "LINK/USD": PairProfile(Decimal("15.00000"), (10, 60), (10, 80), Decimal("60"), 1.5, 0.8),
    "ETH/BTC": PairProfile(Decimal("0.05400"), (1, 3), (1, 3), Decimal("1.5"), 0.8, 0.5),
    "BTC/EUR": PairProfile(Decimal("60000.0"), (1, 6), (1, 10), Decimal("0.04"), 1.0, 1.5),
    "ETH/EUR": PairProfile(Decimal("3200.00"), (1, 6), (1, 10), Decimal("0.6"), 1.2, 1.0),
}


def _build(row: tuple[str, str, str, int, int, str, str, str, int]) -> Instrument:
    symbol, rest_name, altname, pp, qp, tick, qty_min, cost_min, cp = row
    base, quote = symbol.split("/")
    return Instrument(
        symbol=symbol,
        base=base,
        quote=quote,
        price_precision=pp,
        qty_precision=qp,
        price_increment=int(Decimal(tick).scaleb(pp)),
        qty_increment=1,
        qty_min=int(Decimal(qty_min).scaleb(qp)),
        cost_min=Decimal(cost_min),
        cost_precision=cp,
        status="online",
        altname=altname,
        rest_name=rest_name,
    )


PAIRS: Final[tuple[Instrument, ...]] = tuple(_build(row) for row in _FACTS)


def instrument(symbol: str) -> Instrument:
    """One shipped pair by WS v2 symbol (``KeyError`` if not shipped)."""
    for inst in PAIRS:
        if inst.symbol == symbol:
            return inst
    raise KeyError(symbol)


def default_instruments(symbols: tuple[str, ...] | None = None) -> InstrumentTable:
    """The shipped pairs (all, or the named ones in that order) as an ``InstrumentTable``."""
    if symbols is None:
        return InstrumentTable(PAIRS)
    return InstrumentTable(instrument(s) for s in symbols)
