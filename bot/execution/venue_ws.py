"""Kraken spot order entry over the authenticated WebSocket v2, REST while the socket is down.

Two parts:

- ``WsOrderEntry``: the order methods of ``ws-auth`` (``add_order``, ``amend_order``,
  ``edit_order``, ``cancel_order``, ``cancel_all``, ``cancel_all_orders_after``,
  ``batch_add``, ``batch_cancel``) on an ``OrderLink``: the private feed's own connection
  (``PrivateFeed.attach_orders``). Kraken's token "does not expire once a successful
  Websockets connection and private subscription has been made and is maintained"
  (KRAKEN.md §4): the executions subscription is what keeps a token alive, so orders go on
  the connection that holds it, with its token, rather than on a second socket whose token
  would lapse after 15 minutes without a subscription of its own. Kraken also answers a
  connection's ``add_order`` before the execution reports it causes there.
- ``KrakenWsVenue``: the venue port (``bot.execution.venue``) with writes over
  ``WsOrderEntry`` while the link is up and over ``KrakenRestVenue`` while it is down;
  every read (open, closed and queried orders, trades, balances, the WebSocket token) is
  REST's. A write goes over REST when, at the moment it is sent, the executions
  subscription is not live (``order_entry_fallback`` is logged once per switch), and over
  the WebSocket again as soon as a new connection's subscription is live
  (``order_entry_websocket``). A write that the WebSocket refused for its token
  (``EAPI:Invalid token``: Kraken did not act on it) goes over REST at once.

The idempotency policy is REST's: every order carries its ``cl_ord_id``; each request is
sent once and never resent. Requests are correlated by ``req_id``
(``bot.execution.ws_requests``); Kraken's errors mean what they mean on REST (the same
string, the same class); an answer lost to a disconnect or not there within
``ack_timeout_s`` is ``OrderStateUnknown`` (the engine resolves it by lookup, over REST).

Rate limits. Kraken's trading counter is per pair and shared by REST and WebSocket
(KRAKEN.md §2.2): every write is charged on the REST client's own ``TradingCounter``, with
the same costs, waiting (on the injected clock) until it fits, as REST does; an
``EOrder:Rate limit exceeded`` answer fills the pair's counter. A WebSocket write spends no
REST call, so ``rest_headroom`` is unlimited while the link is up.

Counting (``WsOrderEntry.stats``, ``bot.execution.ws_order_stats``, read by ``/metrics``):
each request's outcome and ack latency once it ends, late answers, and each switch of
route; nothing is counted before a request's frame is written.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, Final, Protocol, TypeVar

from bot.core.clock import Clock
from bot.core.errors import (
    ExchangeError,
    OrderStateUnknown,
    ProtocolError,
    RateLimitError,
    TokenError,
    TransientError,
)
from bot.core.log import get_logger
from bot.execution import rest_answers
from bot.execution import ws_requests as wr
from bot.execution.batch import SPOT_LIMITS, BatchLimits, PlaceAnswer
from bot.execution.orders import Order, OrderTerms, canonical_cl_ord_id
from bot.execution.venue import CancelAfter, ExchangeOrder, OrdersPage, TradesPage, WsToken
from bot.execution.venue_rest import KrakenRestVenue
from bot.execution.ws_order_stats import WsOrderStats
from bot.kraken import codec
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import MethodResponse
from bot.kraken.ratelimit import ACCOUNT_WIDE, TradingCost, TradingCounter

__all__ = [
    "DEFAULT_ACK_TIMEOUT_S",
    "KrakenWsVenue",
    "OrderLink",
    "OrderLinkDown",
    "WriteTicket",
    "WsOrderEntry",
]

DEFAULT_ACK_TIMEOUT_S: Final = 10.0
log = get_logger(component="venue")

T = TypeVar("T")
Charge = tuple[str | None, TradingCost]
_ADD_COST: Final = TradingCounter.add_cost()
_ADD_TOTAL: Final = _ADD_COST.total  # the same charge as a float (no conversion per order)


class OrderLinkDown(TransientError):
    """The order socket is down and nothing was sent: send the request over REST."""

    def __init__(self, detail: str = "the private WebSocket is not subscribed") -> None:
        super().__init__("EWS:Not connected", detail)


class OrderLink(Protocol):
    """The connection order requests go on (``bot.execution.private_feed.PrivateFeed``)."""

    @property
    def order_ready(self) -> bool: ...

    async def send_order(self, build: Callable[[str], bytes]) -> bool: ...

    def write_order(self, build: Callable[[str], bytes]) -> bool: ...

    def attach_orders(
        self, on_answer: Callable[[MethodResponse], None], on_lost: Callable[[str], None]
    ) -> None: ...


class _Waiter:
    """A request's answer, awaited: ``done`` is made once the request has left (nothing
    can answer it before); the link's callbacks resolve it True (``wake``: answered, or
    the connection lost), the timeout False; ``sent_at``: when it left."""

    __slots__ = ("done", "pending", "sent_at")

    def __init__(self, pending: wr.Pending) -> None:
        self.pending = pending
        self.done: asyncio.Future[bool] | None = None
        self.sent_at = 0.0

    def wake(self) -> None:
        done = self.done
        if done is not None and not done.done():
            done.set_result(True)


class WriteTicket:
    """An order request written by ``WsOrderEntry.add_order_now`` or ``amend_order_now``
    (or, ``written`` False, still to send), waiting for ``added`` or ``amended``;
    ``error``: its write failed in a way that may have let it leave."""

    __slots__ = ("build", "charges", "error", "method", "waiter", "written")

    def __init__(
        self,
        method: str,
        waiter: _Waiter,
        build: Callable[[str, int], bytes],
        charges: Sequence[Charge],
    ) -> None:
        self.method, self.waiter, self.build, self.charges = method, waiter, build, charges
        self.written = False
        self.error: ExchangeError | None = None


async def _expire(done: asyncio.Future[bool], clock: Clock, seconds: float) -> None:
    """Resolve ``done`` False (no answer) once ``seconds`` pass on ``clock``, unless
    something resolved it first."""
    await clock.sleep(seconds)
    if not done.done():
        done.set_result(False)


class WsOrderEntry:
    """Kraken's WebSocket order methods on ``link`` (see the module docstring)."""

    def __init__(
        self,
        link: OrderLink,
        trading: TradingCounter,
        clock: Clock,
        *,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
    ) -> None:
        if ack_timeout_s <= 0:
            raise ValueError("ack_timeout_s must be positive")
        self._link = link
        self._trading = trading
        self._admit_now = trading.admit_points  # a place's one charge, on every place's path
        self._clock = clock
        self._timeout_s = ack_timeout_s
        self._requests = wr.Correlator()
        self._add_order_frame = wr.AddOrderFrames()
        self._amend_order_frame = wr.amend_order_frame
        self._waiting: dict[int, _Waiter] = {}
        self.stats = WsOrderStats()
        link.attach_orders(self._on_answer, self._on_lost)

    @property
    def ready(self) -> bool:
        return self._link.order_ready

    @property
    def in_flight(self) -> int:
        """Requests waiting for their answer (for /metrics and tests)."""
        return len(self._requests)

    # -- the link's callbacks (synchronous, on the reader) -------------------------------

    def _on_answer(self, response: MethodResponse) -> None:
        try:
            done = self._requests.answer(response)
        except ProtocolError as exc:
            log.error("ws_order_answer_mismatch", error=str(exc))
            return
        if done is None:
            req_id = response.req_id
            if req_id is not None and req_id >= wr.FIRST_REQ_ID and req_id not in self._waiting:
                self.stats.late_answers += 1
                log.warning("ws_order_late_answer", method=response.method, req_id=req_id)
            return
        waiter = self._waiting.get(done.req_id)
        if waiter is not None:
            waiter.wake()

    def _on_lost(self, reason: str) -> None:
        for pending in self._requests.lose_all(reason):
            waiter = self._waiting.get(pending.req_id)
            if waiter is not None:
                waiter.wake()

    # -- one request ---------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        build: Callable[[str, int], bytes],
        charges: Sequence[Charge],
        *,
        expected: int = 1,
    ) -> list[MethodResponse]:
        """Charge the trading counter, send once, and wait for the answer(s); Kraken's
        refusal is raised as REST raises it, a lost answer as ``OrderStateUnknown``."""
        if not self._link.order_ready:
            raise OrderLinkDown
        await self._admit(charges)
        return await self._sent(method, build, charges, self._open(method, expected), False)

    def _open(self, method: str, expected: int) -> _Waiter:
        """A request in flight from now: its ``req_id``, matched by ``_on_answer``."""
        pending = self._requests.open(method, expected=expected)
        waiter = self._waiting[pending.req_id] = _Waiter(pending)
        return waiter

    async def _sent(
        self,
        method: str,
        build: Callable[[str, int], bytes],
        charges: Sequence[Charge],
        waiter: _Waiter,
        written: bool,
    ) -> list[MethodResponse]:
        """The rest of a request whose charge is made and ``waiter`` open: send it (unless
        ``written`` already), wait for its answer(s), and say what they are."""
        pending = waiter.pending
        try:
            if not written:
                await self._send(method, build, waiter)
            answered = pending.done or await self._wait(waiter)
        finally:
            del self._waiting[pending.req_id]
            if not pending.done:
                self._requests.forget(pending.req_id)  # a late answer then matches nothing
        stats = self.stats.of(method)
        if not answered:
            stats.timeouts += 1
            raise wr.lost_error(method, "EWS:Timeout", f"no answer in {self._timeout_s:g} s")
        if pending.lost is not None:
            stats.lost += 1
            raise wr.lost_error(method, "EWS:Connection lost", pending.lost)
        now = self._clock.monotonic()
        stats.ack.observe(now - waiter.sent_at)
        for answer in pending.answers:
            error = wr.answer_error(answer)
            if error is not None:
                self.stats.refused(method, error)
                if isinstance(error, RateLimitError) and error.code.startswith("EOrder:"):
                    for pair, _ in charges:
                        self._trading.saturate(pair, now)
                raise error
        stats.ok += 1
        return pending.answers

    async def _send(self, method: str, build: Callable[[str, int], bytes], waiter: _Waiter) -> None:
        """Send the request. ``OrderLinkDown`` when nothing was sent; a connection closing
        under the send loses the answer."""
        req_id = waiter.pending.req_id
        try:
            sent = await self._link.send_order(lambda token: build(token, req_id))
        except TransientError as exc:  # the connection closed under the send
            self.stats.of(method).lost += 1
            raise wr.lost_error(method, "EWS:Connection lost", str(exc)) from exc
        if not sent:
            raise OrderLinkDown
        waiter.sent_at = self._clock.monotonic()

    async def _wait(self, waiter: _Waiter) -> bool:
        """Wait for the answer of a request sent; False if none came within the timeout.

        One future per request, resolved by whichever comes first (``wake`` or the
        timer), and one timer task, cancelled when the answer comes: every order request
        waits here, so no ``asyncio.wait`` and no task for the wait itself."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiter.done = done
        timer = asyncio.ensure_future(_expire(done, self._clock, self._timeout_s))
        try:
            return await done
        finally:
            timer.cancel()

    async def _admit(self, charges: Sequence[Charge]) -> None:
        """Wait until every charge fits its pair's trading counter, then charge them all."""
        trading, clock = self._trading, self._clock
        if len(charges) == 1 and trading.admit(*charges[0], clock.monotonic()):
            return  # the usual case: one pair, room now (checked and charged at once)
        while True:
            now = clock.monotonic()
            wait = max((trading.wait_time(p, c, now) for p, c in charges), default=0.0)
            if wait <= 0:
                for pair, cost in charges:
                    trading.charge(pair, cost, now)
                return
            log.info("ws_rate_wait", seconds=round(wait, 3))
            await clock.sleep(wait)

    # -- the methods ---------------------------------------------------------------------

    async def add_order(self, order: Order, instrument: Instrument) -> str:
        """``add_order``: Kraken's order id."""

        build = partial(self._add_order_frame, order, instrument)
        (answer,) = await self._request("add_order", build, ((instrument.symbol, _ADD_COST),))
        return _order_id(answer)

    def add_order_now(self, order: OrderTerms, instrument: Instrument) -> WriteTicket | None:
        """``add_order`` with its request written before this returns, when the link is up
        and the pair's counter has room now (charged as ``add_order`` charges it): its
        ticket, for ``added`` to wait for the answer. None, with nothing charged or sent,
        otherwise: ``add_order`` then sends it (waiting for room or falling back to REST).
        A write that cannot go at once after all (the connection closing) is sent by
        ``added``, as ``add_order`` sends it."""
        return self._add_now(order, instrument) if self._link.order_ready else None

    def _add_now(self, order: OrderTerms, instrument: Instrument) -> WriteTicket | None:
        """``add_order_now`` on a link just seen ready (``_write_now``)."""
        symbol = instrument.symbol
        if not self._admit_now(symbol, _ADD_TOTAL, self._clock.monotonic()):
            return None
        build = partial(self._add_order_frame, order, instrument)
        return self._write_now("add_order", build, ((symbol, _ADD_COST),))

    def _write_now(
        self, method: str, build: Callable[[str, int], bytes], charges: Sequence[Charge]
    ) -> WriteTicket:
        """One request, charged already, written now. Its ``req_id`` is taken before the
        write and the request opened after it (``_open``, written out): no answer can be
        read before the caller's first ``await``, so none is missed, and nothing but the
        charge and the frame stands before the write."""
        requests, clock = self._requests, self._clock
        req_id = next(requests.ids)
        try:
            written = self._link.write_order(lambda token: build(token, req_id))
        except TransientError as exc:  # the transport refused the write: it may have left
            self.stats.of(method).lost += 1
            waiter = _Waiter(wr.Pending(req_id, method))  # never opened: nothing to wait
            ticket = WriteTicket(method, waiter, build, charges)
            ticket.error = wr.lost_error(method, "EWS:Connection lost", str(exc))
            return ticket
        waiter = self._waiting[req_id] = _Waiter(requests.opened(req_id, method))
        if written:
            waiter.sent_at = clock.monotonic()
        ticket = WriteTicket(method, waiter, build, charges)
        ticket.written = written
        return ticket

    async def added(self, ticket: WriteTicket) -> str:
        """The answer to ``add_order_now``'s request: Kraken's order id, or what
        ``add_order`` would raise."""
        (answer,) = await self._ticket_answers(ticket)
        return _order_id(answer)

    async def _ticket_answers(self, ticket: WriteTicket) -> list[MethodResponse]:
        """The answer(s) to a request written now (or sent now: see ``WriteTicket``)."""
        if ticket.error is not None:
            raise ticket.error
        return await self._sent(
            ticket.method, ticket.build, ticket.charges, ticket.waiter, ticket.written
        )

    async def amend_order(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        """``amend_order`` in place; ``qty`` is the new total (Kraken requires one: the
        order's own when only the price changes)."""
        build = partial(self._amend_order_frame, order, instrument, qty, price)
        charge = (instrument.symbol, TradingCounter.amend_cost(order_age_s))
        await self._request("amend_order", build, [charge])

    def amend_order_now(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> WriteTicket | None:
        """``amend_order`` with its request written before this returns, when the link is
        up and the pair's counter has room now (charged as ``amend_order`` charges it): its
        ticket, for ``amended`` to wait for the answer. None, with nothing charged or sent,
        otherwise: ``amend_order`` then sends it (waiting for room, or over REST)."""
        if not self._link.order_ready:
            return None
        symbol = instrument.symbol
        cost = TradingCounter.amend_cost(order_age_s)
        if not self._trading.admit(symbol, cost, self._clock.monotonic()):
            return None
        build = partial(self._amend_order_frame, order, instrument, qty, price)
        return self._write_now("amend_order", build, ((symbol, cost),))

    async def amended(self, ticket: WriteTicket) -> None:
        """The answer to ``amend_order_now``'s request: None, or what ``amend_order``
        would raise."""
        await self._ticket_answers(ticket)

    async def edit_order(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> str:
        """``edit_order`` (cancel-and-replace): the new order's id."""

        def build(token: str, req_id: int) -> bytes:
            return wr.edit_order(
                order, instrument, qty=qty, price=price, token=token, req_id=req_id
            )

        charge = (instrument.symbol, TradingCounter.edit_cost(order_age_s))
        (answer,) = await self._request("edit_order", build, [charge])
        order_id = _result_str(answer, "order_id")
        if not order_id:
            raise OrderStateUnknown("EWS:No order id", "edit_order's answer has no order_id")
        return order_id

    async def cancel_order(
        self, order: Order, instrument: Instrument, *, order_age_s: float
    ) -> None:
        """``cancel_order`` of one order, by Kraken's id, else ours."""
        order_id, cl_ord_id = _ids(order)

        def build(token: str, req_id: int) -> bytes:
            return codec.cancel_order(
                token=token, req_id=req_id, order_ids=[order_id] if order_id else (),
                cl_ord_ids=[cl_ord_id] if cl_ord_id else (),
            )  # fmt: skip

        charge = (instrument.symbol, TradingCounter.cancel_cost(order_age_s))
        await self._request("cancel_order", build, [charge])

    async def cancel_all(self, instruments: Sequence[Instrument]) -> int:
        """``cancel_all``: how many Kraken cancelled."""
        charges = [(i.symbol, TradingCounter.cancel_all_cost()) for i in instruments]
        (answer,) = await self._request(
            "cancel_all",
            lambda token, req_id: codec.cancel_all(token=token, req_id=req_id),
            charges,
        )
        return _result_int(answer, "count")

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        """``cancel_all_orders_after`` (the dead-man's switch; 0 disarms it)."""

        def build(token: str, req_id: int) -> bytes:
            return codec.cancel_all_orders_after(timeout_s, token=token, req_id=req_id)

        charge = (ACCOUNT_WIDE, TradingCounter.cancel_all_orders_after_cost())
        (answer,) = await self._request("cancel_all_orders_after", build, [charge])
        raw = answer.raw_result
        if not isinstance(raw, Mapping):
            raise ProtocolError("cancel_all_orders_after: the answer has no result")
        return rest_answers.cancel_after(raw)

    async def batch_add(
        self, orders: Sequence[Order], instrument: Instrument
    ) -> list[str | ExchangeError]:
        """``batch_add`` (2 to 15 orders, one pair): each order's id, or its refusal."""

        def build(token: str, req_id: int) -> bytes:
            return wr.batch_add(orders, instrument, token=token, req_id=req_id)

        charge = (instrument.symbol, TradingCounter.batch_add_cost(len(orders)))
        (answer,) = await self._request("batch_add", build, [charge])
        raw = answer.raw_result
        if not isinstance(raw, list) or len(raw) != len(orders):
            raise OrderStateUnknown("EWS:Bad batch answer", "batch_add: one result per order")
        out: list[str | ExchangeError] = []
        for order, entry in zip(orders, raw, strict=True):
            if isinstance(entry, Mapping) and isinstance(entry.get("error"), str):
                out.append(wr.batch_error("batch_add", entry["error"]))
                continue
            order_id = entry.get("order_id") if isinstance(entry, Mapping) else None
            echoed = entry.get("cl_ord_id") if isinstance(entry, Mapping) else None
            if not isinstance(order_id, str) or not order_id:
                raise OrderStateUnknown("EWS:No order id", f"batch_add: {order.cl_ord_id}")
            if isinstance(echoed, str) and canonical_cl_ord_id(echoed) != order.cl_ord_id:
                raise ProtocolError(f"batch_add: results out of order at {order.cl_ord_id}")
            out.append(order_id)
        return out

    async def batch_cancel(
        self, orders: Sequence[Order], instrument: Instrument, *, ages_s: Sequence[float]
    ) -> int:
        """``batch_cancel`` (2 to 50 orders, by Kraken's id, else ours; one by Kraken's id at
        least: Kraken requires ``orders``, else ``ValueError``): how many."""
        order_ids = [o.order_id for o in orders if o.order_id]
        cl_ord_ids = [o.cl_ord_id for o in orders if not o.order_id]
        if not order_ids:
            raise ValueError("batch_cancel names one order by Kraken's id at least")

        def build(token: str, req_id: int) -> bytes:
            return wr.batch_cancel(
                order_ids=order_ids, cl_ord_ids=cl_ord_ids, token=token, req_id=req_id
            )

        charge = (instrument.symbol, TradingCounter.batch_cancel_cost(ages_s))
        (answer,) = await self._request("batch_cancel", build, [charge])
        return _result_int(answer, "count")


class KrakenWsVenue:
    """The venue port with writes over the WebSocket while it is up (module docstring)."""

    __slots__ = ("_over_ws", "rest", "ws")

    def __init__(self, rest: KrakenRestVenue, ws: WsOrderEntry) -> None:
        self.rest = rest
        self.ws = ws
        self._over_ws: bool | None = None  # how the last write went (None: none yet)

    def _route(self) -> bool:
        """Whether this write goes over the WebSocket; logs and counts each switch."""
        over_ws = self.ws._link.order_ready  # ``ws.ready``, on every write
        if over_ws != self._over_ws:
            if over_ws:
                log.info("order_entry_websocket")
                if self._over_ws is False:
                    self.ws.stats.to_websocket += 1
            else:
                log.warning("order_entry_fallback", to="rest", reason="socket down")
                self.ws.stats.to_rest["socket_down"] += 1
            self._over_ws = over_ws
        return over_ws

    def _fell_back(self, exc: ExchangeError) -> None:
        log.warning("order_entry_fallback", to="rest", reason=exc.code)
        reason = "token_refused" if isinstance(exc, TokenError) else "socket_down"
        self.ws.stats.to_rest[reason] += 1
        self._over_ws = False

    # -- order entry ---------------------------------------------------------------------

    async def _write(
        self, over_ws: Callable[[], Awaitable[T]], over_rest: Callable[[], Awaitable[T]]
    ) -> T:
        """One write, over the WebSocket while it is up, else (or when Kraken did not act
        on it: the link was down, the token refused) over REST."""
        if self._route():
            try:
                return await over_ws()
            except (OrderLinkDown, TokenError) as exc:
                self._fell_back(exc)
        return await over_rest()

    async def place(self, order: Order, instrument: Instrument) -> str:
        return await self._write(
            lambda: self.ws.add_order(order, instrument),
            lambda: self.rest.place(order, instrument),
        )

    def place_now(
        self, order: OrderTerms, instrument: Instrument
    ) -> Coroutine[Any, Any, str] | None:
        """``place`` with its request written before this returns, while the WebSocket is
        up and the pair has room now (``WsOrderEntry.add_order_now``): the coroutine of its
        answer, which goes over REST as ``place`` does when Kraken did not act on it. None,
        with nothing charged or sent: ``place`` then writes it."""
        if not self._route():
            return None
        ticket = self.ws._add_now(order, instrument)  # the link was ready just now
        return None if ticket is None else self._placed(ticket, order, instrument)

    async def _placed(self, ticket: WriteTicket, order: OrderTerms, instrument: Instrument) -> str:
        try:
            return await self.ws.added(ticket)
        except (OrderLinkDown, TokenError) as exc:
            self._fell_back(exc)
        return await self.rest.place(order, instrument)

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
            lambda: self.ws.amend_order(
                order, instrument, qty=qty, price=price, order_age_s=order_age_s
            ),
            lambda: self.rest.amend(
                order, instrument, qty=qty, price=price, order_age_s=order_age_s
            ),
        )

    def amend_now(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> Coroutine[Any, Any, None] | None:
        """``amend`` with its request written before this returns, while the WebSocket is
        up and the pair has room now (``WsOrderEntry.amend_order_now``): the coroutine of
        its answer, which goes over REST as ``amend`` does when Kraken did not act on it.
        None, with nothing charged or sent: ``amend`` then writes it."""
        if not self._route():
            return None
        ws = self.ws
        ticket = ws.amend_order_now(
            order, instrument, qty=qty, price=price, order_age_s=order_age_s
        )
        if ticket is None:
            return None
        return self._amended(ticket, order, instrument, qty, price, order_age_s)

    async def _amended(  # noqa: PLR0917 (positional: ``amend_now``'s own)
        self,
        ticket: WriteTicket,
        order: Order,
        instrument: Instrument,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        try:
            await self.ws.amended(ticket)
        except (OrderLinkDown, TokenError) as exc:
            self._fell_back(exc)
        else:
            return
        await self.rest.amend(order, instrument, qty=qty, price=price, order_age_s=order_age_s)

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        await self._write(
            lambda: self.ws.cancel_order(order, instrument, order_age_s=order_age_s),
            lambda: self.rest.cancel(order, instrument, order_age_s=order_age_s),
        )

    # Batches (``bot.execution.batch``): ``batch_add``/``batch_cancel`` while the socket
    # is up, else AddOrderBatch/CancelOrderBatch; the limits are the same.
    @property
    def batch_limits(self) -> BatchLimits:
        return SPOT_LIMITS

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[PlaceAnswer]:
        return await self._write(
            lambda: self.ws.batch_add(orders, instruments[0]),
            lambda: self.rest.place_batch(orders, instruments),
        )

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]:
        if not any(order.order_id for order in orders):  # WS batch_cancel needs one txid
            return await self.rest.cancel_batch(orders, instruments, ages_s=ages_s)

        async def over_ws() -> list[ExchangeError | None]:
            await self.ws.batch_cancel(orders, instruments[0], ages_s=ages_s)
            return [None] * len(orders)

        return await self._write(
            over_ws, lambda: self.rest.cancel_batch(orders, instruments, ages_s=ages_s)
        )

    async def cancel_all(self, instruments: Sequence[Instrument]) -> int:
        return await self._write(
            lambda: self.ws.cancel_all(instruments), lambda: self.rest.cancel_all(instruments)
        )

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        return await self._write(
            lambda: self.ws.cancel_after(timeout_s), lambda: self.rest.cancel_after(timeout_s)
        )

    # -- what the venue knows: REST ------------------------------------------------------

    async def open_orders(self, *, cl_ord_id: str | None = None) -> list[ExchangeOrder]:
        return await self.rest.open_orders(cl_ord_id=cl_ord_id)

    async def query_orders(self, order_ids: Sequence[str]) -> list[ExchangeOrder]:
        return await self.rest.query_orders(order_ids)

    async def closed_orders(
        self, *, start_s: int | None = None, offset: int = 0, cl_ord_id: str | None = None
    ) -> OrdersPage:
        return await self.rest.closed_orders(start_s=start_s, offset=offset, cl_ord_id=cl_ord_id)

    async def trades(self, *, start_s: int, offset: int = 0) -> TradesPage:
        return await self.rest.trades(start_s=start_s, offset=offset)

    async def balances(self) -> Mapping[str, Decimal]:
        return await self.rest.balances()

    async def ws_token(self) -> WsToken:
        return await self.rest.ws_token()

    # -- room ----------------------------------------------------------------------------

    def trading_headroom(self, symbol: str) -> float:
        """The room on the counter the order entry charges: REST's own (one per pair, as
        ``order_venue`` wires it)."""
        return self.rest.rest.trading_headroom(symbol)

    def trading_counter(self) -> TradingCounter:
        """The counter ``trading_headroom`` reads (``CounterVenue``)."""
        return self.rest.rest.trading_counter

    def rest_headroom(self) -> float:
        return math.inf if self.ws.ready else self.rest.rest_headroom()


# ------------------------------------------------------------------------------ helpers


def _ids(order: Order) -> tuple[str | None, str | None]:
    """(order_id, cl_ord_id): Kraken's id, else (its answer was lost) ours."""
    return (order.order_id, None) if order.order_id else (None, order.cl_ord_id)


def _order_id(answer: MethodResponse) -> str:
    order_id = _result_str(answer, "order_id")
    if not order_id:
        raise OrderStateUnknown("EWS:No order id", "add_order's answer has no order_id")
    return order_id


def _result_str(answer: MethodResponse, key: str) -> str | None:
    raw = answer.raw_result
    value = raw.get(key) if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) else None


def _result_int(answer: MethodResponse, key: str) -> int:
    raw = answer.raw_result
    value = raw.get(key) if isinstance(raw, Mapping) else None
    if type(value) is not int:
        raise ProtocolError(f"{answer.method}: {key} must be an integer, got {value!r}")
    return value
