"""The router: what the engine tells (orders, fills, refusals) to each order's handle and
strategy.

``Router``'s three methods are the callbacks the daemon gives the engine's constructor:

- ``on_order(order)``: the order's handle moves on (``HandleIndex.update``) and its
  strategy's runner gets ``on_order``, unless nothing but the stamps changed; a first NEW
  is logged ``order_placed``, a REJECTED place is counted as the exchange's refusal.
- ``on_fill(fill, order)``: the fill feeds the ``PositionBook``, the risk gate evaluates
  the loss limits (a breach cancels that scope's orders: ``apply_transitions``), it is
  logged ``order_filled`` with a ``pnl`` line, the handle shows ``order`` (which already
  shows the fill), then the strategy gets ``on_fill``; the engine's ``on_order`` of that
  change follows, as ``Strategy.on_fill`` promises.
- ``on_refused(command, refusal, order)``: counted and logged through ``Refusals`` by its
  source and reason; a place never recorded turns its handle REJECTED with the reason
  (and the strategy gets ``on_order`` right after its handler returns), any other
  command's handle shows the engine's record again (an amend or cancel flag undone).

It owns the last order each strategy saw when ``on_fill`` moved a handle ahead of the
``on_order`` that follows; nothing else. It sends nothing itself: cancels of a halted
scope go through that strategy's context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Final, Protocol

from structlog.typing import FilteringBoundLogger

from bot.core.clock import Clock
from bot.execution import orders as o
from bot.execution.commands import AmendOrder, Command, PlaceOrder
from bot.execution.orders import Fill, Order, OrderState
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import Refusal
from bot.execution.risk import RiskGate, Transition
from bot.kraken.instruments import InstrumentTable, from_scaled
from bot.strategy.handles import HandleIndex, same
from bot.strategy.pnl_lines import PnlLines, dec
from bot.strategy.refusals import Action, Refusals
from bot.strategy.runner import StrategyRunner

__all__ = ["DeskMetrics", "Router", "ScopeCanceller"]


class DeskMetrics(Protocol):
    """What the desk counts (``bot.service.metrics.Metrics`` implements it: the service
    layer's registry sits above the strategy layer, so the desk names what it pushes)."""

    def rejection(self, source: str, strategy: str, action: str, reason: str) -> None: ...

    def order_finished(self, state: OrderState | str) -> None: ...

    def fill(self, fill: Fill, strategy: str = "") -> None: ...

    def strategy_gauge(
        self, strategy: str, name: str, value: Decimal | float, symbol: str | None = None
    ) -> None: ...

    def strategy_count(
        self, strategy: str, name: str, n: int = 1, symbol: str | None = None
    ) -> None: ...


class ScopeCanceller(Protocol):
    """A strategy's context, as the router uses it when a risk halt cancels its orders."""

    def cancel_all(self, symbol: str | None = None) -> int: ...


def _action(command: Command) -> Action:
    if type(command) is PlaceOrder:
        return "place"
    return "amend" if type(command) is AmendOrder else "cancel"


_NEW: Final = OrderState.NEW
_REJECTED: Final = OrderState.REJECTED


class Router:
    """See the module docstring."""

    def __init__(
        self,
        *,
        handles: HandleIndex,
        runners: Mapping[str, StrategyRunner],
        contexts: Mapping[str, ScopeCanceller],
        positions: PositionBook,
        risk: RiskGate,
        instruments: InstrumentTable,
        refusals: Refusals,
        pnl: PnlLines,
        clock: Clock,
        log: FilteringBoundLogger,
        metrics: DeskMetrics | None = None,
    ) -> None:
        self._handles, self._runners, self._contexts = handles, runners, contexts
        self._positions, self._risk, self._instruments = positions, risk, instruments
        self._refusals, self._pnl, self._clock, self._log = refusals, pnl, clock, log
        self._metrics = metrics
        # cl_ord_id -> the order its strategy last saw in ``on_order``, kept when ``on_fill``
        # moved the handle on first (the engine's ``on_order`` for that change follows)
        self._seen: dict[str, Order] = {}

    def on_order(self, order: Order) -> None:
        """The engine's ``on_order``: update the handle, tell its strategy."""
        cid = order.cl_ord_id
        before = self._handles.get(cid)
        was = self._seen.pop(cid, None) or (None if before is None else before.order)
        handle = self._handles.update(order)
        if was is not None and same(was, order):
            return  # a restamp (the engine's own PENDING_NEW record): nothing for the strategy
        if was is not None and was.is_open and not order.is_open and self._metrics is not None:
            self._metrics.order_finished(order.state)
        if order.state is _NEW and (was is None or was.state is not _NEW):
            self._log.info(
                "order_placed", strategy=order.strategy, cl_ord_id=cid, order_id=order.order_id,
                symbol=order.symbol, side=order.side, qty=dec(handle.qty),
                price=None if handle.price is None else dec(handle.price),
            )  # fmt: skip
        elif order.state is _REJECTED and (was is None or was.state is not _REJECTED):
            self._refusals.refuse(
                "place", "exchange", order.reason, strategy=order.strategy,
                symbol=order.symbol, cl_ord_id=cid, side=order.side,
            )  # fmt: skip
        runner = self._runners.get(order.strategy)
        if runner is not None:
            runner.order(handle)

    def on_fill(self, fill: Fill, order: Order) -> None:
        """The engine's ``on_fill``: positions, loss limits, log, then the strategy."""
        strategy = order.strategy
        inst = self._instruments.lookup(fill.symbol)
        realised = Decimal(0)
        if inst is not None:
            realised = self._positions.apply_fill(
                fill.symbol, inst, fill.side,  # type: ignore[arg-type]
                fill.qty, fill.price, fee=fill.fee,
                fee_asset=fill.fee_asset if fill.fee else "", strategy=strategy, ts_ns=fill.ts_ns,
                price_precision=fill.price_precision,
            )  # fmt: skip
        if self._metrics is not None:
            self._metrics.fill(fill, strategy)
        self._log.info(
            "order_filled", strategy=strategy, cl_ord_id=fill.cl_ord_id, symbol=fill.symbol,
            side=fill.side, qty=dec(from_scaled(fill.qty, fill.qty_precision)),
            price=dec(from_scaled(fill.price, fill.price_precision)),
            fee=dec(fill.fee), maker=fill.liquidity == "m", realised=dec(realised),
        )  # fmt: skip
        self.apply_transitions(self._risk.evaluate())
        self._pnl.log(strategy)
        handle = self._handles.get(fill.cl_ord_id)  # the engine's order shows the fill already
        if handle is not None and not same(handle.order, order):
            self._seen.setdefault(order.cl_ord_id, handle.order)  # for on_order, next
        handle = self._handles.update(order)
        runner = self._runners.get(strategy)
        if runner is not None:
            runner.fill(handle, fill)

    def on_refused(self, command: Command, refusal: Refusal, order: Order | None) -> None:
        """The engine's ``on_refused`` (and the context's own refusal of a place while the
        daemon stops): counted; the handle as the engine has the order, or REJECTED."""
        place = type(command) is PlaceOrder
        extra = {"side": command.side} if place else {}
        self._refusals.refuse(
            _action(command), refusal.source, refusal.reason, strategy=command.strategy,
            symbol=command.symbol, cl_ord_id=command.cl_ord_id, **extra, detail=refusal.detail,
        )  # fmt: skip
        if order is not None:
            self._handles.update(order)  # as the engine has it: a flag set in hope undone
            return
        if not place:
            return
        now = self._clock.time_ns()
        rejected = o.transition(command.order, _REJECTED, now_ns=now, reason=refusal.reason)
        handle = self._handles.update(rejected)
        runner = self._runners.get(command.strategy)
        if runner is not None:  # after the handler that placed it returns
            asyncio.get_running_loop().call_soon(runner.order, handle)

    def apply_transitions(self, transitions: tuple[Transition, ...]) -> None:
        """Log risk state changes; cancel the orders of a scope that must stop."""
        for t in transitions:
            self._log.warning("risk_state_changed", **t.log_fields())
            if not t.cancel_orders:
                continue
            for name, ctx in self._contexts.items():
                if t.strategy is None or t.strategy == name:
                    ctx.cancel_all()
