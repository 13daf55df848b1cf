"""Kraken Futures' private WebSocket frames as the engine's execution reports (pure).

The engine merges ``ExecutionReport`` values (``bot.kraken.protocol``, the shape of spot's
``executions`` channel) whatever the venue; Futures says the same things in two feeds
(``bot.futures.ws_private``), and ``FuturesReports`` translates them:

- ``open_orders`` (snapshot, updates): an open order is ``new`` or ``partially_filled``
  with its cumulative ``filled`` (``cum_qty``); an update with ``is_cancel`` left the
  book: ``filled`` when its reason is ``full_fill``, else ``canceled`` (by us, by the
  dead-man's switch, by Kraken), with the reason kept. An order named by id only
  (``OpenOrderGone``) becomes the same report without numbers.
- ``fills``: each is a ``trade`` report (``exec_id`` the fill id, which ``fills`` over
  REST prints too, so the store counts a fill once however it arrives), its fee as paid,
  ``m``/``t`` from ``fill_type`` (``takerAfterEdit`` is a taker's: ``fill_liquidity``).
  Futures prints no cumulative size on a fill, only ``remaining_order_qty``: with the
  order's size (remembered from ``open_orders``) that gives ``cum_qty``; without it the
  next ``open_orders`` update or a reconciliation does.

Times are Kraken's epoch milliseconds, given to the engine as RFC 3339 text. This module
keeps only the sizes of the orders it has seen (bounded); no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Final

from bot.futures.queries import fill_liquidity
from bot.futures.times import rfc3339_ms
from bot.futures.ws_private import (
    FillsFrame,
    OpenOrderGone,
    OpenOrdersSnapshot,
    OpenOrderUpdate,
    WsFill,
    WsOrder,
)
from bot.kraken.protocol import ExecutionReport, ExecutionsFrame, Fee

__all__ = ["MAX_REMEMBERED", "FuturesReports"]

MAX_REMEMBERED: Final = 10_000  # order sizes kept for fills' cum_qty
FULL_FILL: Final = "full_fill"


class FuturesReports:
    """The translation (see the module docstring); one per private connection's life."""

    __slots__ = ("_sizes",)

    def __init__(self) -> None:
        self._sizes: OrderedDict[str, Decimal] = OrderedDict()

    def _remember(self, order: WsOrder) -> None:
        self._sizes[order.order_id] = order.qty
        self._sizes.move_to_end(order.order_id)
        while len(self._sizes) > MAX_REMEMBERED:
            self._sizes.popitem(last=False)

    def snapshot(self, frame: OpenOrdersSnapshot) -> ExecutionsFrame:
        """The open orders at (re)subscription, for ``ExecutionsSubscribed``."""
        return ExecutionsFrame(True, None, tuple(self._open(o) for o in frame.orders))

    def update(self, frame: OpenOrderUpdate | OpenOrderGone) -> ExecutionsFrame:
        if isinstance(frame, OpenOrderGone):
            report = ExecutionReport(
                order_id=frame.order_id, cl_ord_id=frame.cli_ord_id,
                order_status="filled" if frame.reason == FULL_FILL else "canceled",
                reason=frame.reason,
            )  # fmt: skip
            return ExecutionsFrame(False, None, (report,))
        if not frame.is_cancel:
            return ExecutionsFrame(False, None, (self._open(frame.order),))
        order = frame.order
        self._remember(order)
        full = frame.reason == FULL_FILL
        report = ExecutionReport(
            order_id=order.order_id, cl_ord_id=order.cli_ord_id,
            order_status="filled" if full else "canceled",
            cum_qty=order.qty if full else order.filled, reason=frame.reason,
            timestamp=rfc3339_ms(order.last_update_time),
        )  # fmt: skip
        return ExecutionsFrame(False, None, (report,))

    def fills(self, frame: FillsFrame) -> ExecutionsFrame:
        return ExecutionsFrame(frame.snapshot, None, tuple(self._fill(f) for f in frame.fills))

    def _open(self, order: WsOrder) -> ExecutionReport:
        self._remember(order)
        return ExecutionReport(
            order_id=order.order_id, cl_ord_id=order.cli_ord_id,
            order_status="partially_filled" if order.filled > 0 else "new",
            symbol=order.symbol, side=order.side, order_qty=order.qty,
            limit_price=order.limit_price, stop_price=order.stop_price, cum_qty=order.filled,
            reduce_only=order.reduce_only, timestamp=rfc3339_ms(order.last_update_time),
        )  # fmt: skip

    def _fill(self, fill: WsFill) -> ExecutionReport:
        size = self._sizes.get(fill.order_id)
        remaining = fill.remaining_order_qty
        cum = None if size is None or remaining is None else size - remaining
        fees = None
        if fill.fee_paid is not None and fill.fee_currency:
            fees = (Fee(fill.fee_currency.upper(), fill.fee_paid),)
        return ExecutionReport(
            exec_type="trade", order_id=fill.order_id, cl_ord_id=fill.cli_ord_id,
            symbol=fill.symbol, side=fill.side, cum_qty=cum, exec_id=fill.fill_id,
            last_qty=fill.qty, last_price=fill.price, cost=fill.qty * fill.price,
            liquidity_ind=fill_liquidity(fill.fill_type), fees=fees,
            timestamp=rfc3339_ms(fill.time),
        )  # fmt: skip
