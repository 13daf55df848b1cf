"""The in-process venue of a backtest: the simulator's matching engine behind the venue port.

``BacktestVenue`` is a ``bot.execution.venue.Venue`` (the contract is that module's
docstring) over one account of ``bot.sim.exchange.Exchange``, on a ``SimClock``:

- **Latency, each way.** A write (place, amend, cancel, cancel-all) reaches the matching
  engine ``latency_ns`` after it was sent, and its answer and the execution reports it
  caused reach the engine ``latency_ns`` after that: the order meets the market as it is
  then, not as the strategy saw it. Fills the market causes (``publish``) reach the engine
  ``latency_ns`` after they happen, as Kraken's ``executions`` feed would bring them.
- **Kraken's reports.** Each execution event is written as Kraken's WS v2 ``executions``
  entry (``bot.sim.ws_reports``, the simulator's own writer) and read back by the client's
  parser (``bot.kraken.protocol``): the engine gets exactly what a paper or live daemon
  gets. Refusals are the exchange's ``ExchangeError``s, with Kraken's codes.
- **Batches** (``bot.execution.batch.BatchVenue``, Kraken spot's limits): one write
  carrying every order of the call, each placed (or cancelled) in turn when it arrives,
  each with its own answer: a batch meets the market as one request does.
- **Reads** (open, queried, closed orders, trades, balances) answer at once from the
  exchange: only the engine's reconciliation asks them.
- **No rate limits, no dead-man's switch** (headroom is infinite; ``cancel_after`` only
  notes the timeout): a backtest has no other process to protect from its own orders.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from bot.backtest.clock import SimClock
from bot.core.errors import ExchangeError, ProtocolError
from bot.execution.batch import SPOT_LIMITS, BatchLimits, PlaceAnswer
from bot.execution.orders import Order, amend_post_only
from bot.execution.venue import (
    CancelAfter,
    EventSink,
    ExchangeOrder,
    ExchangeTrade,
    OrdersPage,
    TradesPage,
    WsToken,
)
from bot.kraken.codec import dumps
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.kraken.protocol import ExecutionReport, ExecutionsFrame, Parser
from bot.sim.exchange import Exchange
from bot.sim.matching import ExecEvent, OrderRequest, OrderState, Result
from bot.sim.ws_reports import Reports, execution_report

__all__ = ["ACCOUNT", "BacktestVenue"]

ACCOUNT: Final = "backtest"
_PAGE: Final = 50
_NS: Final = 1_000_000_000


class BacktestVenue:
    """See the module docstring. ``sink``: the engine's ``on_private`` (set before use)."""

    def __init__(
        self,
        exchange: Exchange,
        instruments: InstrumentTable,
        clock: SimClock,
        *,
        latency_ns: int,
        account: str = ACCOUNT,
    ) -> None:
        self.exchange, self.instruments, self.clock = exchange, instruments, clock
        self.latency_ns = latency_ns
        self.account = account
        self.sink: EventSink | None = None
        self.switch_s = 0
        self.writes = 0
        self.in_flight: dict[str, int] = {}  # writes sent, answer not back, per symbol
        self.on_arrival: Callable[[str], None] | None = None  # the market's ``sync``
        self._reports = Reports(exchange, instruments)
        self._parser = Parser(instruments)

    # -- order entry ---------------------------------------------------------------------

    async def place(self, order: Order, instrument: Instrument) -> str:
        req = _request(order, instrument)
        add = self.exchange.add_order
        result = await self._write(instrument.symbol, lambda now: add(self.account, req, now))
        assert result.order is not None
        return result.order.txid

    @property
    def batch_limits(self) -> BatchLimits:
        return SPOT_LIMITS

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[PlaceAnswer]:
        reqs = [_request(x, inst) for x, inst in zip(orders, instruments, strict=True)]
        answers: list[PlaceAnswer] = []

        def add_each(now: int) -> Result:
            events: list[ExecEvent] = []
            for req in reqs:
                try:
                    result = self.exchange.add_order(self.account, req, now)
                except ExchangeError as exc:
                    answers.append(exc)
                    continue
                assert result.order is not None
                answers.append(result.order.txid)
                events += result.executions
            return Result(executions=tuple(events))

        await self._write(instruments[0].symbol, add_each)
        return answers

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]:
        answers: list[ExchangeError | None] = []

        def cancel_each(now: int) -> Result:
            events: list[ExecEvent] = []
            for x in orders:
                try:
                    result = self.exchange.cancel_order(self.account, now, **_target(x))
                except ExchangeError as exc:
                    answers.append(exc)
                    continue
                answers.append(None)
                events += result.executions
            return Result(executions=tuple(events))

        await self._write(instruments[0].symbol, cancel_each)
        return answers

    async def amend(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        await self._write(
            instrument.symbol,
            lambda now: self.exchange.amend_order(
                self.account,
                now,
                **_target(order),
                order_qty=qty,
                limit_price=price,
                post_only=amend_post_only(order, price) is True,
            ),
        )

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        await self._write(
            instrument.symbol,
            lambda now: self.exchange.cancel_order(self.account, now, **_target(order)),
        )

    async def cancel_all(self, instruments: Sequence[Instrument]) -> int:
        result = await self._write(None, lambda now: self.exchange.cancel_all(self.account, now))
        return result.count

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        self.switch_s = timeout_s
        return CancelAfter(float(timeout_s) if timeout_s else None, f"+{timeout_s}s")

    # -- what the venue knows ------------------------------------------------------------

    async def open_orders(self, *, cl_ord_id: str | None = None) -> list[ExchangeOrder]:
        found = self.exchange.open_orders(self.account)
        return [self._order(o) for o in found if cl_ord_id in (None, o.cl_ord_id)]

    async def query_orders(self, order_ids: Sequence[str]) -> list[ExchangeOrder]:
        found = (self.exchange.order(self.account, i) for i in order_ids)
        return [self._order(o) for o in found if o is not None]

    async def closed_orders(
        self, *, start_s: int | None = None, offset: int = 0, cl_ord_id: str | None = None
    ) -> OrdersPage:
        since = (start_s or 0) * _NS
        done = [
            o
            for o in reversed(self.exchange.closed_orders(self.account))
            if cl_ord_id in (None, o.cl_ord_id) and (o.closetm or 0) >= since
        ]
        page = tuple(self._order(o) for o in done[offset : offset + _PAGE])
        return OrdersPage(page, len(done))

    async def trades(self, *, start_s: int, offset: int = 0) -> TradesPage:
        since = [
            f for f in reversed(self.exchange.trades(self.account)) if f.timestamp >= start_s * _NS
        ]
        page = tuple(
            ExchangeTrade(
                exec_id=f.exec_id,
                order_id=f.txid,
                pair=f.symbol,
                side=f.side,
                price=self._price(f.symbol, f.price),
                qty=self._qty(f.symbol, f.qty),
                cost=f.cost,
                fee=f.fee,
                ts_ns=f.timestamp,
                trade_id=str(f.trade_id),
                maker=f.liquidity == "m",
            )
            for f in since[offset : offset + _PAGE]
        )
        return TradesPage(page, len(since))

    async def balances(self) -> Mapping[str, Decimal]:
        return self.exchange.balances(self.account)

    async def ws_token(self) -> WsToken:
        raise ProtocolError("the backtest venue's executions need no WebSocket token")

    # -- room ----------------------------------------------------------------------------

    def trading_headroom(self, symbol: str) -> float:
        return math.inf

    def rest_headroom(self) -> float:
        return math.inf

    # -- the market's side ---------------------------------------------------------------

    def publish(self, result: Result) -> None:
        """What the market did to the account's orders reaches the engine after the
        latency (the executions feed's delay)."""
        if result.executions:
            frame = self._frame(result.executions)
            self.clock.at(self.clock.time_ns() + self.latency_ns, lambda: self._emit(frame))

    # -- internals -----------------------------------------------------------------------

    async def _write(self, symbol: str | None, call: Callable[[int], Result]) -> Result:
        """``call`` at the matching engine one latency from now (on ``symbol``; None: every
        symbol); its answer (or error) and its reports back here one latency later."""
        self.writes += 1
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        clock, latency = self.clock, self.latency_ns
        symbols = tuple(self.instruments) if symbol is None else (symbol,)
        for s in symbols:
            self.in_flight[s] = self.in_flight.get(s, 0) + 1

        def arrive() -> None:
            if self.on_arrival is not None:
                for s in symbols:
                    self.on_arrival(s)
            try:
                result = call(clock.time_ns())
            except ExchangeError as exc:
                refused = exc
                clock.at(clock.time_ns() + latency, lambda: _answer(answer, None, refused))
                return
            frame = self._frame(result.executions) if result.executions else None

            def back() -> None:
                _answer(answer, result, None)
                if frame is not None:
                    self._emit(frame)

            clock.at(clock.time_ns() + latency, back)

        clock.at(clock.time_ns() + latency, arrive)
        try:
            return await answer
        finally:
            for s in symbols:
                self.in_flight[s] -= 1

    def _frame(self, events: Sequence[ExecEvent]) -> ExecutionsFrame:
        data = [execution_report(self._reports, e) for e in events]
        raw = dumps({"channel": "executions", "type": "update", "data": data})
        parsed = self._parser.parse(raw)
        reports: list[ExecutionReport] = []
        for item in parsed:
            if isinstance(item, ExecutionsFrame):
                reports.extend(item.reports)
        return ExecutionsFrame(snapshot=False, sequence=None, reports=tuple(reports))

    def _emit(self, frame: ExecutionsFrame) -> None:
        if self.sink is None:
            raise ProtocolError("the backtest venue has no sink: the engine is not connected")
        self.sink(frame)

    def _order(self, o: OrderState) -> ExchangeOrder:
        inst = self.instruments[o.symbol]
        return ExchangeOrder(
            order_id=o.txid, cl_ord_id=o.cl_ord_id, status=o.status, pair=o.symbol,
            symbol=o.symbol, side=o.side, order_type=o.ord_type,
            qty=from_scaled(o.qty, inst.qty_precision),
            filled=from_scaled(o.filled, inst.qty_precision), cost=o.cost,
            avg_price=o.avg_price,
            limit_price=None if o.price is None else from_scaled(o.price, inst.price_precision),
            reason=o.reason or "", opened_ns=o.opentm, closed_ns=o.closetm,
        )  # fmt: skip

    def _price(self, symbol: str, n: int) -> Decimal:
        return from_scaled(n, self.instruments[symbol].price_precision)

    def _qty(self, symbol: str, n: int) -> Decimal:
        return from_scaled(n, self.instruments[symbol].qty_precision)


def _request(order: Order, instrument: Instrument) -> OrderRequest:
    return OrderRequest(
        symbol=instrument.symbol, side=order.side, ord_type=order.order_type, qty=order.qty,
        price=order.price, time_in_force=order.time_in_force, post_only=order.post_only,
        cl_ord_id=order.cl_ord_id,
    )  # fmt: skip


def _target(order: Order) -> dict[str, Any]:
    """The exchange's handle on ``order``: its id once known, else its ``cl_ord_id``."""
    if order.order_id is not None:
        return {"txid": order.order_id}
    return {"cl_ord_id": order.cl_ord_id}


def _answer(
    fut: asyncio.Future[Result], result: Result | None, error: ExchangeError | None
) -> None:
    if fut.done():  # the engine stopped waiting (cancelled)
        return
    if error is not None:
        fut.set_exception(error)
    else:
        assert result is not None
        fut.set_result(result)
