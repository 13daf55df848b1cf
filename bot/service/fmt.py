"""How the trader's view writes numbers and times: exact values to display strings.

Prices and quantities are written at their instrument's precision (Kraken's ``pair_decimals``
and ``lot_decimals``: ``30123.4``, ``0.01000000``); money is rounded half-even to its quote
currency's places (the most decimals a price in that currency has, at least 2, as in the
reports) and grouped by thousands (``-1,234.56``); an asset that is neither is written
exactly. Times are UTC. Only display: the JSON carries these strings, the figures stay
exact in the daemon.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from bot.kraken.instruments import Instrument

__all__ = ["Places", "at_least", "fixed", "money", "plain", "signed", "utc"]

_MIN_MONEY_PLACES: Final = 2
_NS: Final = 1_000_000_000


def fixed(value: Decimal, places: int, *, group: bool = False) -> str:
    """``value`` rounded half-even to ``places`` decimals; never ``-0``."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if rounded == 0:
        rounded = abs(rounded)
    return f"{rounded:,.{places}f}" if group else f"{rounded:.{places}f}"


def at_least(value: Decimal, places: int) -> str:
    """``value`` exactly, with at least ``places`` decimals (a mid: half a tick finer)."""
    exponent = value.normalize().as_tuple().exponent
    finer = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return fixed(value, max(places, finer))


def money(value: Decimal, places: int) -> str:
    return fixed(value, places, group=True)


def signed(text: str) -> str:
    """``+1.5`` for a positive figure (a distance, a PnL change), the text as is otherwise."""
    return text if text.startswith("-") or not any(c in "123456789" for c in text) else "+" + text


def plain(value: Decimal) -> str:
    """Exactly, without trailing zeros (an amount of an asset no instrument describes)."""
    return "0" if value == 0 else f"{value.normalize():f}"


def utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // _NS, UTC).strftime("%Y-%m-%d %H:%M:%S")


class Places:
    """Decimal places per currency and asset, from the traded instruments."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.money: dict[str, int] = {}
        self.asset: dict[str, int] = {}
        for inst in instruments:
            quote = max(self.money.get(inst.quote, _MIN_MONEY_PLACES), inst.price_precision)
            self.money[inst.quote] = quote
            self.asset[inst.base] = max(self.asset.get(inst.base, 0), inst.qty_precision)

    def of_money(self, quote: str) -> int:
        return self.money.get(quote, _MIN_MONEY_PLACES)

    def amount(self, asset: str, value: Decimal) -> str:
        """An amount of ``asset``: money places for a quote currency, lot places for a
        base asset, exact otherwise."""
        if asset in self.money:
            return money(value, self.money[asset])
        if asset in self.asset:
            return fixed(value, self.asset[asset])
        return plain(value)

    @classmethod
    def of(cls, instruments: Mapping[str, Instrument]) -> Places:
        return cls(instruments.values())
