"""Amends in place: the engine's part of ``ExecutionEngine.amend`` and of an amend's answer.

``AmendInPlace`` is a base class of ``ExecutionEngine``, as ``BatchOrders`` and ``WriteNow``
are: ``amend`` (an order settled first, flagged, then sent by the venue), ``_amend_sent``
(the answer of an amend sent, alone or written at ``submit``: ``bot.execution.engine_now``)
and ``_amend_answer`` (what an answer does to the order, alone or in a batch:
``bot.execution.engine_batch``):

- **Amended**: the change applied as an ``amended`` report (the executions feed's own
  report, before or after it, changes nothing more).
- **Refused**: recorded on the order (its ``reason``), the flag cleared, raised for the
  caller to tell; a ``RejectedError`` is looked up too (gone meanwhile?).
- **In doubt** (a lost answer, or ``IN_DOUBT``: an answer that will not be read, a bug or a
  cancel): looked up, never sent again; Kraken's numbers say what happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any, Final, Protocol

from bot.core.errors import ExchangeError, OrderStateUnknown, RejectedError
from bot.core.log import get_logger
from bot.execution import orders as o
from bot.execution.engine_batch import EngineParts
from bot.execution.orders import Order
from bot.kraken.instruments import from_scaled
from bot.kraken.protocol import ExecutionReport

__all__ = ["IN_DOUBT", "AmendInPlace"]

IN_DOUBT: Final = OrderStateUnknown("interrupted", "an amend sent whose answer is not read here")
"""An amend's answer, when it will not be read: in doubt, so looked up."""
log = get_logger(component="engine")


class AmendParts(EngineParts, Protocol):
    """What of ``ExecutionEngine`` an amend uses (named by its shape: that module imports
    this one)."""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> bool: ...
    def _on_reports(self, reports: Iterable[ExecutionReport]) -> None: ...


class AmendInPlace:
    """The engine's amends; see the module docstring."""

    __slots__ = ()

    async def amend(
        self, cl_ord_id: str, *, qty: int | None = None, price: int | None = None
    ) -> Order:
        """AmendOrder in place (same txid and queue priority); ``qty`` is the new total. Raises
        ``OrderUnavailable`` (not live) and Kraken's refusal (recorded as ``reason``)."""
        e: AmendParts = self  # type: ignore[assignment]  # its only subclass
        order = await e.wait_settled(cl_ord_id)
        age = e._begin_amend(order)
        inst = e._instrument(order.symbol)
        answer = e._venue.amend(order, inst, qty=qty, price=price, order_age_s=age)
        return await self._amend_sent(order, answer, qty, price)

    async def _amend_sent(
        self, order: Order, answer: Awaitable[None], qty: int | None, price: int | None
    ) -> Order:
        """An amend of ``order`` flagged in flight and sent (or sending): its answer applied
        (``_amend_answer``); Kraken's refusal raised. Cancelled, or a bug: the request may
        have left, so it is in doubt (looked up), and the exception goes on."""
        e: AmendParts = self  # type: ignore[assignment]  # its only subclass
        try:
            await answer
        except ExchangeError as exc:
            if e._amend_answer(order, exc, qty, price) is not None:
                raise
            return e._book.orders[order.cl_ord_id]
        except BaseException:
            e._amend_answer(order, IN_DOUBT, qty, price)
            raise
        e._amend_answer(order, None, qty, price)
        return e._book.orders[order.cl_ord_id]

    def _amend_answer(
        self, order: Order, answer: ExchangeError | None, qty: int | None, price: int | None
    ) -> ExchangeError | None:
        """The venue's answer to an amend of ``order`` (sent alone or in a batch) onto it:
        None, amended (the change applied as an ``amended`` report) or in doubt (looked
        up: Kraken's numbers will say); else the refusal, recorded on the order (its
        ``reason``; a ``RejectedError`` looked up: gone meanwhile?), for the caller to tell."""
        e: AmendParts = self  # type: ignore[assignment]  # its only subclass
        cid = order.cl_ord_id
        if isinstance(answer, OrderStateUnknown):
            log.warning("amend_unknown", cl_ord_id=cid, code=answer.code)
            e._spawn(e._refresh([cid]))
            return None
        if answer is not None:
            now = e._clock.time_ns()
            e._put(o.amend_failed(e._book.orders[cid], answer.code, now_ns=now))
            if isinstance(answer, RejectedError):
                e._spawn(e._refresh([cid]))
            return answer
        e._book.touched[cid] = e._clock.monotonic()
        pp, qp = order.price_precision, order.qty_precision
        e._on_reports([ExecutionReport(
            exec_type="amended", order_id=order.order_id,
            order_qty=None if qty is None else from_scaled(qty, qp),
            limit_price=None if price is None else from_scaled(price, pp),
        )])  # fmt: skip
        log.info("order_amended", cl_ord_id=cid, qty=qty, price=price)
        return None
