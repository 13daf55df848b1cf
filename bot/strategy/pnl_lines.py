"""PnL lines: the ``pnl`` log lines of every strategy, and the totals per quote currency.

``PnlLines.log(strategy)`` writes one ``pnl`` line per strategy and symbol from the
``PositionBook`` (position, realised, unrealised at the last mark, fees), a line of zeros
for a strategy with no position, and, for the whole desk, ``pnl_total`` per quote currency
(realised, unrealised, today's). The router writes one after each fill (its strategy's);
the daemon's periodic task writes all of them every few seconds. ``rows`` is the same data
for other readers. Numbers are ``Decimal``, written without exponent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from structlog.typing import FilteringBoundLogger

from bot.execution.pnl import PositionBook

__all__ = ["PnlLines", "dec"]


def dec(value: Decimal) -> str:
    """A Decimal for a log line: plain digits, no exponent, no trailing zeros."""
    return f"{value.normalize():f}" if value else "0"


class PnlLines:
    """See the module docstring; ``strategies`` names every strategy the desk runs."""

    __slots__ = ("_log", "_positions", "_strategies")

    def __init__(
        self,
        positions: PositionBook,
        log: FilteringBoundLogger,
        strategies: Callable[[], Iterable[str]],
    ) -> None:
        self._positions, self._log, self._strategies = positions, log, strategies

    def rows(self, strategy: str | None = None) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for name in self._positions.strategies():
            if strategy is not None and name != strategy:
                continue
            rows.extend({
                    "strategy": name, "symbol": pos.symbol, "position": dec(pos.qty),
                    "realised": dec(pos.realised), "unrealised": dec(pos.unrealised),
                    "fees": dec(pos.fees), "quote": pos.quote,
                } for pos in self._positions.positions(name))  # fmt: skip
        return rows

    def log(self, strategy: str | None = None) -> None:
        """One ``pnl`` line per strategy and symbol (a flat strategy: one line of zeros),
        and with no ``strategy`` the totals per quote currency."""
        log, positions = self._log, self._positions
        rows = self.rows(strategy)
        for row in rows:
            log.info("pnl", **row)
        names = [strategy] if strategy is not None else list(self._strategies())
        for name in names:
            if not any(row["strategy"] == name for row in rows):
                log.info("pnl", strategy=name, symbol="*", position="0", realised="0",
                         unrealised="0", fees="0")  # fmt: skip
        if strategy is None:
            for quote in positions.quotes():
                log.info(
                    "pnl_total", quote=quote,
                    realised=dec(positions.realised(quote)),
                    unrealised=dec(positions.unrealised(quote)),
                    daily=dec(positions.daily_pnl(quote)),
                )  # fmt: skip
