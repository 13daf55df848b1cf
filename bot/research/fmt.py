"""How a report's numbers and names read, the same in the terminal and in the HTML.

Money is rounded half-even to its quote currency's display places (the most decimals a
price of that currency has, at least 2) and grouped by thousands; quantities are shown
exactly, without trailing zeros; ratios as percentages; times in UTC. Only display: the
figures themselves stay exact (``report.json`` carries them unrounded).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from bot.research.figures import Report, Scope
from bot.research.record import UNOWNED

__all__ = [
    "duration",
    "money",
    "money_places",
    "pct",
    "quantity",
    "scope_label",
    "strategy_name",
    "utc",
]

_MIN_MONEY_PLACES: Final = 2


def strategy_name(strategy: str | None) -> str:
    if strategy is None:
        return "all"
    return "(unowned)" if strategy == UNOWNED else strategy


def scope_label(scope: Scope) -> str:
    """``mm BTC/USD``, ``mm all USD``, ``total USD``."""
    if scope.kind == "total":
        return f"total {scope.quote}"
    if scope.kind == "strategy":
        return f"{strategy_name(scope.strategy)} all {scope.quote}"
    return f"{strategy_name(scope.strategy)} {scope.symbol}"


def money_places(report: Report, quote: str) -> int:
    places = [i.price_precision for i in report.instruments.values() if i.quote == quote]
    return max([_MIN_MONEY_PLACES, *places])


def money(value: Decimal | None, places: int) -> str:
    if value is None:
        return "n/a"
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if rounded == 0:
        rounded = abs(rounded)  # never "-0.00"
    return f"{rounded:,.{places}f}"


def quantity(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    return f"{value.normalize():f}"


def pct(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%"


def utc(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "n/a"
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ns: int) -> str:
    seconds = max(ns, 0) // 1_000_000_000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)
