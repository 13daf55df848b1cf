"""What a figure or a chart line is about: a line, a strategy's subtotal, or the total.

Its own module so that the report core (``figures``) and the chart data (``chart_points``)
both import it and neither imports the other; ``figures`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """A line (``strategy`` and ``symbol``), a strategy's subtotal (``symbol=None``) or the
    total (both ``None``), in one quote currency."""

    quote: str
    strategy: str | None
    symbol: str | None

    @property
    def kind(self) -> Literal["line", "strategy", "total"]:
        if self.strategy is None:
            return "total"
        return "strategy" if self.symbol is None else "line"

    def sort_key(self) -> tuple[str, int, str, str]:
        rank = {"line": 0, "strategy": 1, "total": 2}[self.kind]
        return (self.quote, rank, self.strategy or "", self.symbol or "")
