"""The strategy context of a Kraken Futures deployment: ``EngineContext`` plus derivatives.

A strategy on Futures uses the same API as on spot (books, trades, orders, fills, timers;
``ctx.position`` is the position its own fills made, in contracts). ``FuturesContext``
answers the two calls spot leaves at None: ``ctx.derivatives(symbol)`` (the account's
position in ``symbol`` as Kraken last reported it, with mark, liquidation price,
unrealized PnL and funding) and ``ctx.margin()`` (the margin account). They read the
private feed's state (``bot.execution.futures_feed``): Kraken's numbers, not ours.
"""

from __future__ import annotations

from bot.execution.engine import ExecutionEngine
from bot.execution.futures_risk import FuturesState
from bot.strategy.api import DerivativesPosition, MarginInfo
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk

__all__ = ["FuturesContext"]


class FuturesContext(EngineContext):
    """See the module docstring. ``state``: the private feed's positions and margin."""

    def __init__(
        self,
        engine: ExecutionEngine,
        desk: Desk,
        name: str,
        symbols: tuple[str, ...],
        state: FuturesState,
    ) -> None:
        super().__init__(engine, desk, name, symbols)
        self._state = state

    def derivatives(self, symbol: str) -> DerivativesPosition | None:
        pos = self._state.positions.get(symbol.upper())
        if pos is None:
            return None
        return DerivativesPosition(
            symbol=pos.symbol, size=pos.size, entry_price=pos.entry_price,
            mark_price=pos.mark_price, liquidation_price=pos.liquidation_price,
            unrealized_pnl=pos.unrealized_pnl, unrealized_funding=pos.unrealized_funding,
            effective_leverage=pos.effective_leverage,
        )  # fmt: skip

    def margin(self) -> MarginInfo | None:
        m = self._state.margin
        if m is None:
            return None
        return MarginInfo(
            portfolio_value=m.portfolio_value, margin_equity=m.margin_equity,
            initial_margin=m.initial_margin, maintenance_margin=m.maintenance_margin,
            available_margin=m.available_margin, unrealized_pnl=m.unrealized_pnl,
            unrealized_funding=m.unrealized_funding,
        )  # fmt: skip
