"""EMA crossover: buy when the fast average of trade prices crosses above the slow one,
sell when it crosses below, within a position limit.

Load it as ``class: ema_cross`` (or ``strategies.ema_cross:EmaCross``). Every public trade
updates two exponential moving averages of the price, ``fast`` and ``slow`` trades long
(``alpha = 2 / (n + 1)``). After ``slow`` trades of warm-up (history sent on subscribe
counts, but never trades), a change of sign of ``fast - slow`` is a signal:

- crossing up: buy ``size``; crossing down: sell ``size``;
- as an IOC limit at the last price ``± slippage_bps`` (rounded away from the market to
  the tick), or a market order with ``order_type: market``;
- cut so that the position stays within ``max_position`` (long) and, unless ``long_only``
  (the default: spot, sell only what it bought), ``-max_position`` (short), even if every
  open order on the same side fills. A signal with no room left is skipped and counted.

Metrics: ``signals`` and ``signals_skipped`` (counters per symbol), ``ema_fast`` and
``ema_slow`` (gauges per symbol).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from bot.strategy import Params, Side, Strategy, TradeEvent, ceil_price, floor_price, floor_qty

__all__ = ["EmaCross", "EmaCrossParams"]

D0 = Decimal(0)


class EmaCrossParams(Params):
    size: Decimal = Field(gt=0, description="base quantity per signal")
    max_position: Decimal = Field(gt=0, description="largest position, base units")
    fast: int = Field(default=12, ge=1)
    slow: int = Field(default=26, ge=2)
    order_type: Literal["limit", "market"] = "limit"
    slippage_bps: Decimal = Field(default=Decimal(10), ge=0)
    long_only: bool = True

    @model_validator(mode="after")
    def _fast_below_slow(self) -> EmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


@dataclass(slots=True)
class _Averages:
    fast: Decimal | None = None
    slow: Decimal | None = None
    seen: int = 0
    sign: int = 0


class EmaCross(Strategy[EmaCrossParams]):
    def on_start(self) -> None:
        self.averages = {symbol: _Averages() for symbol in self.ctx.symbols}

    def on_trade(self, symbol: str, trade: TradeEvent) -> None:
        p, avg, price = self.params, self.averages[symbol], trade.price
        fast_alpha, slow_alpha = Decimal(2) / (p.fast + 1), Decimal(2) / (p.slow + 1)
        avg.fast = price if avg.fast is None else avg.fast + fast_alpha * (price - avg.fast)
        avg.slow = price if avg.slow is None else avg.slow + slow_alpha * (price - avg.slow)
        avg.seen += 1
        if avg.seen < p.slow:
            return
        self.ctx.metric("ema_fast", avg.fast, symbol=symbol)
        self.ctx.metric("ema_slow", avg.slow, symbol=symbol)
        sign = (avg.fast > avg.slow) - (avg.fast < avg.slow)
        previous = avg.sign
        if sign:
            avg.sign = sign
        if trade.snapshot or not sign or not previous or sign == previous:
            return
        self.signal(symbol, "buy" if sign > 0 else "sell", price)

    def signal(self, symbol: str, side: Side, last: Decimal) -> None:
        p, inst = self.params, self.ctx.instrument(symbol)
        self.ctx.count("signals", symbol=symbol)
        # The worst case: every open order on the signal's side fills in full.
        position = self.ctx.position(symbol)
        pending = sum((o.remaining for o in self.ctx.open_orders(symbol) if o.side == side), D0)
        if side == "buy":
            room = p.max_position - position - pending
        else:
            room = position - pending + (0 if p.long_only else p.max_position)
        qty = floor_qty(inst, min(p.size, room))
        if qty <= 0 or qty < inst.qty_min:
            self.ctx.count("signals_skipped", symbol=symbol)
            self.log.info("signal_skipped", symbol=symbol, side=side, position=str(position))
            return
        if p.order_type == "market":
            self.ctx.place(symbol, side, qty, order_type="market")
            return
        slip = p.slippage_bps / 10_000
        if side == "buy":
            price = ceil_price(inst, last * (1 + slip))
        else:
            price = floor_price(inst, last * (1 - slip))
        self.ctx.place(symbol, side, qty, price, time_in_force="IOC")
