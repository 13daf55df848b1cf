"""A second implementation of the venue port, written by hand for the engine's tests.

``PaperVenue`` keeps the account's orders and trades in dicts and answers every call of
``bot.execution.venue.Venue`` as the contract says, with no network, no Kraken wire format
and no clock of its own: the engine cannot tell it from Kraken's REST venue. It pushes its
own executions to the engine's sink (``sink``), as the in-process simulator venue will.
A test plays the rest of the market: ``fill`` an order, ``lose_next_answer`` (the order
is placed, its answer lost), ``refuse_next`` (the venue refuses the next write).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot.core.errors import ExchangeError, OrderStateUnknown, RejectedError
from bot.execution.batch import BatchLimits
from bot.execution.orders import Order
from bot.execution.venue import (
    CancelAfter,
    EventSink,
    ExchangeOrder,
    ExchangeTrade,
    OrdersPage,
    TradesPage,
    WsToken,
)
from bot.kraken.instruments import Instrument, from_scaled
from bot.kraken.protocol import ExecutionReport, ExecutionsFrame

_OPEN = ("pending", "open")


class PaperVenue:
    """See the module docstring. ``calls`` lists every call, by name, in order."""

    def __init__(self, *, page: int = 2) -> None:
        self.orders: dict[str, ExchangeOrder] = {}  # by venue id, in the order placed
        self.trades_made: list[ExchangeTrade] = []
        self.calls: list[str] = []
        self.sink: EventSink | None = None
        self.lose_next_answer = False
        self.refuse_next: ExchangeError | None = None
        self.switch_s: int = 0  # the dead-man's switch's timeout (0: off)
        self.balance: dict[str, Decimal] = {"BTC": Decimal("1.5"), "USD": Decimal(1000)}
        self.room = math.inf
        self._page = page  # orders and trades per page: small, so reads span pages
        self._seq = 0

    # -- order entry ---------------------------------------------------------------------

    async def place(self, order: Order, instrument: Instrument) -> str:
        self.calls.append("place")
        self._refuse()
        self._seq += 1
        venue_id = f"V{self._seq}"
        qty = instrument.qty_decimal(order.qty)
        price = None if order.price is None else instrument.price_decimal(order.price)
        self.orders[venue_id] = ExchangeOrder(
            order_id=venue_id, cl_ord_id=order.cl_ord_id, status="open", pair=order.symbol,
            symbol=order.symbol, side=order.side, order_type=order.order_type, qty=qty,
            filled=Decimal(0), cost=Decimal(0), avg_price=None, limit_price=price, reason="",
            opened_ns=order.created_ns, closed_ns=None,
        )  # fmt: skip
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise OrderStateUnknown("EGeneral:Timeout", "the answer was lost")
        return venue_id

    async def amend(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        self.calls.append("amend")
        self._refuse()
        ex = self._live(order)
        changes: dict[str, object] = {}
        if qty is not None:
            changes["qty"] = instrument.qty_decimal(qty)
        if price is not None:
            changes["limit_price"] = instrument.price_decimal(price)
        self.orders[ex.order_id] = replace(ex, **changes)  # type: ignore[arg-type]

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        self.calls.append("cancel")
        self._refuse()
        ex = self._live(order)
        self.orders[ex.order_id] = replace(ex, status="canceled", reason="User requested")

    async def cancel_all(self, instruments: Sequence[Instrument]) -> int:
        self.calls.append("cancel_all")
        live = [ex for ex in self.orders.values() if ex.status in _OPEN]
        for ex in live:
            self.orders[ex.order_id] = replace(ex, status="canceled")
        return len(live)

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        self.calls.append("cancel_after")
        self.switch_s = timeout_s
        return CancelAfter(float(timeout_s) if timeout_s else None, f"+{timeout_s}s")

    # -- what the venue knows ------------------------------------------------------------

    async def open_orders(self, *, cl_ord_id: str | None = None) -> list[ExchangeOrder]:
        self.calls.append("open_orders")
        return [
            ex
            for ex in self.orders.values()
            if ex.status in _OPEN and cl_ord_id in (None, ex.cl_ord_id)
        ]

    async def query_orders(self, order_ids: Sequence[str]) -> list[ExchangeOrder]:
        self.calls.append("query_orders")
        return [self.orders[i] for i in order_ids if i in self.orders]

    async def closed_orders(
        self, *, start_s: int | None = None, offset: int = 0, cl_ord_id: str | None = None
    ) -> OrdersPage:
        self.calls.append("closed_orders")
        done = [
            ex
            for ex in reversed(self.orders.values())  # newest first
            if ex.status not in _OPEN and cl_ord_id in (None, ex.cl_ord_id)
        ]
        return OrdersPage(tuple(done[offset : offset + self._page]), len(done))

    async def trades(self, *, start_s: int, offset: int = 0) -> TradesPage:
        self.calls.append("trades")
        since = [t for t in reversed(self.trades_made) if t.ts_ns >= start_s * 1_000_000_000]
        return TradesPage(tuple(since[offset : offset + self._page]), len(since))

    async def balances(self) -> Mapping[str, Decimal]:
        self.calls.append("balances")
        return dict(self.balance)

    async def ws_token(self) -> WsToken:
        self.calls.append("ws_token")
        return WsToken(f"token-{len(self.calls)}", 900)

    # -- room ----------------------------------------------------------------------------

    def trading_headroom(self, symbol: str) -> float:
        return self.room

    def rest_headroom(self) -> float:
        return self.room

    # -- the market (the test's side) ----------------------------------------------------

    def fill(self, venue_id: str, qty: str, price: str, *, ts_ns: int, push: bool) -> None:
        """``qty`` of the order trades at ``price``: recorded in the trade history and,
        with ``push``, told to the engine's sink as the venue's executions event."""
        ex = self.orders[venue_id]
        q, p = Decimal(qty), Decimal(price)
        filled, cost = ex.filled + q, ex.cost + q * p
        status = "closed" if filled == ex.qty else "open"
        self.orders[venue_id] = replace(
            ex, filled=filled, cost=cost, avg_price=cost / filled, status=status
        )
        self._seq += 1
        exec_id = f"T{self._seq}"
        self.trades_made.append(
            ExchangeTrade(
                exec_id=exec_id, order_id=venue_id, pair=ex.pair, side=ex.side, price=p, qty=q,
                cost=q * p, fee=Decimal(0), ts_ns=ts_ns, trade_id=str(self._seq), maker=True,
            )
        )  # fmt: skip
        if push:
            report = ExecutionReport(
                exec_type="trade", order_id=venue_id, cl_ord_id=ex.cl_ord_id,
                order_status="filled" if status == "closed" else "partially_filled",
                cum_qty=filled, cum_cost=cost, avg_price=cost / filled, exec_id=exec_id,
                trade_id=self._seq, last_qty=q, last_price=p, cost=q * p, liquidity_ind="m",
                side=ex.side, timestamp="2024-01-01T00:00:00Z",
            )  # fmt: skip
            self.push(report)

    def push(self, *reports: ExecutionReport) -> None:
        assert self.sink is not None, "no sink: the engine is not connected"
        self.sink(ExecutionsFrame(snapshot=False, sequence=None, reports=reports))

    def _refuse(self) -> None:
        if (error := self.refuse_next) is not None:
            self.refuse_next = None
            raise error

    def _live(self, order: Order) -> ExchangeOrder:
        for ex in self.orders.values():
            mine = ex.order_id == order.order_id or ex.cl_ord_id == order.cl_ord_id
            if mine and ex.status in _OPEN:
                return ex
        raise RejectedError("EOrder:Unknown order", order.cl_ord_id)


def price_text(order: Order) -> str:
    """An order's limit price as the venue writes it."""
    assert order.price is not None
    return str(from_scaled(order.price, order.price_precision))


class BatchingPaperVenue(PaperVenue):
    """``PaperVenue`` that also takes batches (``bot.execution.batch.BatchVenue``), with
    small limits so that splitting shows: ``limits``. ``calls`` names each batch with its
    size (``place_batch:3``); ``refuse`` maps a ``cl_ord_id`` to the refusal that order
    meets inside a batch; ``lose_next_batch``: the next batch is placed, its answer lost."""

    def __init__(self, limits: BatchLimits | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limits = limits or BatchLimits(max_place=3, max_cancel=3, one_pair=True)
        self.refuse: dict[str, ExchangeError] = {}
        self.lose_next_batch = False

    @property
    def batch_limits(self) -> BatchLimits:
        return self.limits

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[str | ExchangeError]:
        self.calls.append(f"place_batch:{len(orders)}")
        out: list[str | ExchangeError] = []
        for order, inst in zip(orders, instruments, strict=True):
            if (refusal := self.refuse.pop(order.cl_ord_id, None)) is not None:
                out.append(refusal)
                continue
            out.append(await PaperVenue.place(self, order, inst))
            self.calls.pop()  # its "place": the batch is the one call
        if self.lose_next_batch:
            self.lose_next_batch = False
            raise OrderStateUnknown("EGeneral:Timeout", "the batch's answer was lost")
        return out

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]:
        self.calls.append(f"cancel_batch:{len(orders)}")
        out: list[ExchangeError | None] = []
        for order in orders:
            try:
                ex = self._live(order)
            except RejectedError as exc:
                out.append(exc)
                continue
            self.orders[ex.order_id] = replace(ex, status="canceled", reason="User requested")
            out.append(None)
        return out
