"""Grid trader: a ladder of resting limits around a centre, refilled as it trades.

Load it as ``class: grid`` (or ``strategies.grid:GridTrader``). On the first valid book
of each symbol it fixes a centre (``center``, or the mid rounded down to the tick) and a
step (``spacing`` in price units, or ``spacing_bps`` of the centre, at least one tick),
then places ``levels`` buys at ``centre - k·step`` and ``levels`` sells at
``centre + k·step`` (k = 1 … levels), each of ``size``.

When a grid order is completely filled it is refilled on the other side: a filled buy at
``p`` places a sell of the same quantity at ``p + step``, a filled sell at ``p`` a buy at
``p - step``. So the grid earns one step per round trip while the price oscillates. A grid
order canceled, expired or rejected by someone else is dropped, not replaced. The orders
rest through feed gaps; on shutdown the daemon cancels them if ``shutdown.cancel_orders``.

Metrics: ``grid_fills`` (counter per symbol).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from bot.strategy import BookSnapshot, OrderHandle, OrderState, Params, Side, Strategy, floor_price

__all__ = ["GridParams", "GridTrader"]


class GridParams(Params):
    size: Decimal = Field(gt=0, description="base quantity per grid order")
    levels: int = Field(default=5, ge=1, le=50, description="orders per side")
    spacing_bps: Decimal = Field(default=Decimal(50), gt=0, description="step, bps of centre")
    spacing: Decimal | None = Field(default=None, gt=0, description="step in price units")
    center: Decimal | None = Field(default=None, gt=0, description="default: the first mid")


class GridTrader(Strategy[GridParams]):
    def on_start(self) -> None:
        self.steps: dict[str, Decimal] = {}
        self.grid: dict[str, OrderHandle] = {}  # cl_ord_id -> this strategy's grid orders

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        if symbol in self.steps or not book.valid:
            return
        inst = self.ctx.instrument(symbol)
        centre = self.params.center or book.mid()
        if centre is None:
            return
        centre = floor_price(inst, centre)
        tick = inst.price_increment
        step = self.params.spacing or centre * self.params.spacing_bps / 10_000
        step = max(floor_price(inst, step), tick)
        self.steps[symbol] = step
        self.log.info("grid_placed", symbol=symbol, centre=str(centre), step=str(step))
        for k in range(1, self.params.levels + 1):
            if centre - k * step > 0:
                self.place(symbol, "buy", centre - k * step, self.params.size)
            self.place(symbol, "sell", centre + k * step, self.params.size)

    def on_order(self, order: OrderHandle) -> None:
        if not order.is_done or self.grid.pop(order.cl_ord_id, None) is None:
            return
        if order.state is not OrderState.FILLED or order.price is None:
            self.log.warning("grid_order_lost", cl_ord_id=order.cl_ord_id, state=order.state)
            return
        step = self.steps[order.symbol]
        self.ctx.count("grid_fills", symbol=order.symbol)
        if order.side == "buy":
            self.place(order.symbol, "sell", order.price + step, order.qty)
        elif order.price - step > 0:
            self.place(order.symbol, "buy", order.price - step, order.qty)

    def place(self, symbol: str, side: Side, price: Decimal, qty: Decimal) -> None:
        order = self.ctx.place(symbol, side, qty, price)
        self.grid[order.cl_ord_id] = order
