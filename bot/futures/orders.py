"""Kraken Futures order entry, pure: the requests (``FuturesRequest``) and their answers.

Requests, each shaped as its page of https://docs.kraken.com/api/docs/futures-api/trading/
documents it (prices and sizes go in as scaled ints with their ``FuturesInstrument`` and
leave as exact decimal text):

- ``send_order``     ``POST sendorder``: ``orderType`` lmt, post, ioc, fok, mkt, stp,
  take_profit; ``reduceOnly``; ``cliOrdId`` (required here: every order carries one, so a
  lost answer can be resolved by it); ``triggerSignal`` mark/index/last for stops.
- ``edit_order``     ``POST editorder`` by ``orderId`` or ``cliOrdId``; ``qtyMode``.
- ``cancel_order``   ``POST cancelorder`` by ``order_id`` or ``cliOrdId``.
- ``batch_order``    ``POST batchorder``: send/edit/cancel instructions in one call, as a
  JSON document in the ``json`` parameter (url-encoded and signed as sent); a send is
  any type but ``mkt`` (``BatchOrderSend.orderType`` in Kraken's OpenAPI).
- ``cancel_all_orders`` (``symbol`` optional) and ``cancel_all_orders_after`` (``timeout``
  seconds, 0 disarms: the Futures dead-man's switch, KRAKEN.md §3.3).

Answers: ``{"result": "success", …}`` is not "done": ``parse_send`` and its siblings read
``sendStatus``/``editStatus``/``cancelStatus``/``batchStatus`` into frozen dataclasses whose
``ok`` says whether the status is a success and ``error()`` gives the ``bot.core.errors``
exception for one that is not (``error_codes``; ``OrderStateUnknown`` when the answer's
events show an execution all the same). Order events (PLACE, EXECUTION, EDIT,
CANCEL, REJECT, and the trigger variants) are parsed into ``OrderEvent``.

This module owns those shapes; sending them is ``rest``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final

from bot.core.errors import ExchangeError, OrderStateUnknown, ProtocolError
from bot.futures.error_codes import SUCCESS_STATUSES, status_error
from bot.futures.fields import (
    as_object,
    list_of_objects,
    opt_bool,
    opt_decimal,
    opt_str,
    req_str,
)
from bot.futures.instruments import FuturesInstrument
from bot.futures.ratelimit import endpoint_cost
from bot.kraken.codec import dumps

__all__ = [
    "BATCH_SEND_TYPES",
    "MAX_CLI_ORD_ID",
    "BatchCancel",
    "BatchEdit",
    "BatchItemResult",
    "BatchSend",
    "CancelAllResult",
    "CancelResult",
    "DeadManStatus",
    "EditResult",
    "EventOrder",
    "FuturesRequest",
    "OrderEvent",
    "OrderType",
    "SendResult",
    "TriggerSignal",
    "batch_order",
    "cancel_all_orders",
    "cancel_all_orders_after",
    "cancel_order",
    "edit_order",
    "parse_batch",
    "parse_cancel",
    "parse_cancel_all",
    "parse_dead_man",
    "parse_edit",
    "parse_send",
    "send_order",
]

MAX_CLI_ORD_ID: Final = 100  # "Max length: 100"
MAX_TIMEOUT: Final = 2**32 - 1  # "timeout uint32"
_CLI_ORD_ID: Final = re.compile(r"[\x21-\x7e]{1,100}")
_API_PREFIX: Final = "/derivatives/api/v3/"


class OrderType(StrEnum):
    LIMIT = "lmt"
    POST = "post"
    IOC = "ioc"
    FOK = "fok"
    MARKET = "mkt"
    STOP = "stp"
    TAKE_PROFIT = "take_profit"


class TriggerSignal(StrEnum):
    MARK = "mark"
    INDEX = "index"
    LAST = "last"


# ``batchorder``'s send types (Kraken's OpenAPI, ``BatchOrderSend.orderType``): no ``mkt``.
BATCH_SEND_TYPES: Final[frozenset[str]] = frozenset(
    t.value for t in OrderType if t is not OrderType.MARKET
)
_LIMIT_REQUIRED: Final = frozenset({OrderType.LIMIT, OrderType.POST, OrderType.IOC, OrderType.FOK})
_TRIGGERED: Final = frozenset({OrderType.STOP, OrderType.TAKE_PROFIT})


@dataclass(frozen=True, slots=True)
class FuturesRequest:
    """One REST call: method, endpoint (``sendorder``), text parameters in order, cost."""

    http_method: str
    endpoint: str
    params: tuple[tuple[str, str], ...] = ()
    cost: float = 0.0

    @property
    def path(self) -> str:
        return _API_PREFIX + self.endpoint

    @property
    def param_dict(self) -> dict[str, str]:
        return dict(self.params)


# ------------------------------------------------------------------------- validation


def _side(side: str) -> str:
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    return side


def _cli_ord_id(cli_ord_id: str) -> str:
    if type(cli_ord_id) is not str or _CLI_ORD_ID.fullmatch(cli_ord_id) is None:
        raise ValueError(f"cliOrdId must be 1..{MAX_CLI_ORD_ID} printable ASCII characters")
    return cli_ord_id


def _size(inst: FuturesInstrument, size: int) -> str:
    if type(size) is not int or not inst.on_lot(size):
        raise ValueError(f"{inst.symbol}: size {size!r} is not a positive multiple of the lot")
    return inst.qty_text(size)


def _price(inst: FuturesInstrument, price: int, what: str) -> str:
    if type(price) is not int or not inst.on_tick(price):
        raise ValueError(f"{inst.symbol}: {what} {price!r} is not a positive multiple of the tick")
    return inst.price_text(price)


def _one_id(order_id: str | None, cli_ord_id: str | None) -> None:
    if (order_id is None) == (cli_ord_id is None):
        raise ValueError("give exactly one of order_id and cli_ord_id")


# --------------------------------------------------------------------------- requests


def send_order(
    inst: FuturesInstrument,
    *,
    side: str,
    order_type: OrderType | str,
    size: int,
    cli_ord_id: str,
    limit_price: int | None = None,
    stop_price: int | None = None,
    reduce_only: bool = False,
    trigger_signal: TriggerSignal | str | None = None,
    process_before: str | None = None,
) -> FuturesRequest:
    """``POST sendorder``. Raises ``ValueError`` for a request Kraken could only refuse."""
    kind = OrderType(order_type)
    params: list[tuple[str, str]] = [
        ("orderType", kind.value),
        ("symbol", inst.symbol),
        ("side", _side(side)),
        ("size", _size(inst, size)),
    ]
    if kind in _LIMIT_REQUIRED and limit_price is None:
        raise ValueError(f"{kind.value} needs a limit price")
    if kind is OrderType.MARKET and limit_price is not None:
        raise ValueError("mkt takes no limit price (Kraken applies 1% price protection)")
    if kind in _TRIGGERED:
        if stop_price is None:
            raise ValueError(f"{kind.value} needs a stop price")
    elif stop_price is not None or trigger_signal is not None:
        raise ValueError(f"{kind.value} takes no stop price or trigger signal")
    if limit_price is not None:
        params.append(("limitPrice", _price(inst, limit_price, "limit price")))
    if stop_price is not None:
        params.append(("stopPrice", _price(inst, stop_price, "stop price")))
    if trigger_signal is not None:
        params.append(("triggerSignal", TriggerSignal(trigger_signal).value))
    if reduce_only:
        params.append(("reduceOnly", "true"))
    params.append(("cliOrdId", _cli_ord_id(cli_ord_id)))
    if process_before is not None:
        params.append(("processBefore", process_before))
    return FuturesRequest("POST", "sendorder", tuple(params), endpoint_cost("sendorder"))


def edit_order(
    inst: FuturesInstrument,
    *,
    order_id: str | None = None,
    cli_ord_id: str | None = None,
    size: int | None = None,
    limit_price: int | None = None,
    stop_price: int | None = None,
    qty_mode: str | None = None,
) -> FuturesRequest:
    """``POST editorder``: ``size`` is the new open size (``qtyMode`` RELATIVE, Kraken's
    default) or the new total size fills included (``ABSOLUTE``)."""
    _one_id(order_id, cli_ord_id)
    if size is None and limit_price is None and stop_price is None:
        raise ValueError("an edit changes the size, the limit price or the stop price")
    if qty_mode not in (None, "ABSOLUTE", "RELATIVE"):
        raise ValueError(f"qtyMode must be ABSOLUTE or RELATIVE, got {qty_mode!r}")
    params: list[tuple[str, str]] = []
    if order_id is not None:
        params.append(("orderId", order_id))
    else:
        params.append(("cliOrdId", _cli_ord_id(cli_ord_id or "")))
    if size is not None:
        params.append(("size", _size(inst, size)))
    if limit_price is not None:
        params.append(("limitPrice", _price(inst, limit_price, "limit price")))
    if stop_price is not None:
        params.append(("stopPrice", _price(inst, stop_price, "stop price")))
    if qty_mode is not None:
        params.append(("qtyMode", qty_mode))
    return FuturesRequest("POST", "editorder", tuple(params), endpoint_cost("editorder"))


def cancel_order(*, order_id: str | None = None, cli_ord_id: str | None = None) -> FuturesRequest:
    """``POST cancelorder`` by ``order_id`` or ``cliOrdId``."""
    _one_id(order_id, cli_ord_id)
    if order_id is not None:
        param = ("order_id", order_id)
    else:
        param = ("cliOrdId", _cli_ord_id(cli_ord_id or ""))
    return FuturesRequest("POST", "cancelorder", (param,), endpoint_cost("cancelorder"))


def cancel_all_orders(symbol: str | None = None) -> FuturesRequest:
    """``POST cancelallorders`` (every open order, or one contract's)."""
    params = (("symbol", symbol),) if symbol is not None else ()
    return FuturesRequest("POST", "cancelallorders", params, endpoint_cost("cancelallorders"))


def cancel_all_orders_after(timeout: int) -> FuturesRequest:
    """``POST cancelallordersafter?timeout=N``: arm (or push back) the dead-man's switch;
    0 disarms it. Kraken recommends a call every 15 to 20 s with a timeout of 60."""
    if type(timeout) is not int or not 0 <= timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be an integer in 0..{MAX_TIMEOUT}, got {timeout!r}")
    cost = endpoint_cost("cancelallordersafter")
    return FuturesRequest("POST", "cancelallordersafter", (("timeout", str(timeout)),), cost)


@dataclass(frozen=True, slots=True)
class BatchSend:
    """A ``send`` instruction; ``order_tag`` maps it to its ``batchStatus`` entry."""

    order_tag: str
    inst: FuturesInstrument
    side: str
    order_type: OrderType | str
    size: int
    cli_ord_id: str
    limit_price: int | None = None
    stop_price: int | None = None
    reduce_only: bool = False
    trigger_signal: TriggerSignal | str | None = None


@dataclass(frozen=True, slots=True)
class BatchEdit:
    inst: FuturesInstrument
    order_id: str | None = None
    cli_ord_id: str | None = None
    size: int | None = None
    limit_price: int | None = None
    stop_price: int | None = None
    qty_mode: str | None = None  # as ``edit_order``'s: how Kraken reads ``size``


@dataclass(frozen=True, slots=True)
class BatchCancel:
    order_id: str | None = None
    cli_ord_id: str | None = None


BatchInstruction = BatchSend | BatchEdit | BatchCancel


def _json_params(req: FuturesRequest, inst: FuturesInstrument) -> dict[str, Any]:
    """A single-order request's parameters as a batch item (numbers as JSON numbers)."""
    out: dict[str, Any] = {}
    for key, text in req.params:
        if key == "size":
            out[key] = inst.qty_decimal(inst.qty(text))
        elif key in ("limitPrice", "stopPrice"):
            out[key] = inst.price_decimal(inst.price(text))
        elif key == "reduceOnly":
            out[key] = text == "true"
        else:
            out[key] = text
    return out


def _batch_item(item: BatchInstruction) -> dict[str, Any]:
    if isinstance(item, BatchSend):
        if OrderType(item.order_type) not in BATCH_SEND_TYPES:
            raise ValueError(f"batchorder takes no {item.order_type} order: send it alone")
        req = send_order(
            item.inst,
            side=item.side,
            order_type=item.order_type,
            size=item.size,
            cli_ord_id=item.cli_ord_id,
            limit_price=item.limit_price,
            stop_price=item.stop_price,
            reduce_only=item.reduce_only,
            trigger_signal=item.trigger_signal,
        )
        if not item.order_tag:
            raise ValueError("a batch send needs an order_tag")
        return {"order": "send", "order_tag": item.order_tag, **_json_params(req, item.inst)}
    if isinstance(item, BatchEdit):
        req = edit_order(
            item.inst,
            order_id=item.order_id,
            cli_ord_id=item.cli_ord_id,
            size=item.size,
            limit_price=item.limit_price,
            stop_price=item.stop_price,
            qty_mode=item.qty_mode,
        )
        body = _json_params(req, item.inst)
        if "orderId" in body:
            body["order_id"] = body.pop("orderId")  # batch items spell it order_id
        return {"order": "edit", **body}
    _one_id(item.order_id, item.cli_ord_id)
    if item.order_id is not None:
        return {"order": "cancel", "order_id": item.order_id}
    return {"order": "cancel", "cliOrdId": _cli_ord_id(item.cli_ord_id or "")}


def batch_order(instructions: Sequence[BatchInstruction]) -> FuturesRequest:
    """``POST batchorder`` with ``json={"batchOrder": [...]}``; costs 9 + the batch size."""
    if not instructions:
        raise ValueError("a batch needs at least one instruction")
    items = [_batch_item(item) for item in instructions]
    tags = [i["order_tag"] for i in items if i["order"] == "send"]
    if len(tags) != len(set(tags)):
        raise ValueError("order_tag values must be distinct within a batch")
    document = dumps({"batchOrder": items}).decode("utf-8")
    cost = endpoint_cost("batchorder", batch_size=len(items))
    return FuturesRequest("POST", "batchorder", (("json", document),), cost)


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class EventOrder:
    """The order inside an order event (``order``, ``new``, ``orderTrigger``, …)."""

    order_id: str
    cli_ord_id: str | None
    order_type: str
    symbol: str
    side: str
    quantity: Decimal | None
    filled: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    reduce_only: bool
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One entry of ``orderEvents``: ``kind`` is PLACE, EXECUTION, EDIT, CANCEL, REJECT
    (trigger orders use the same kinds with an ``orderTrigger``)."""

    kind: str
    order: EventOrder | None = None
    old: EventOrder | None = None
    execution_id: str | None = None
    price: Decimal | None = None
    amount: Decimal | None = None
    reason: str | None = None
    reduced_quantity: Decimal | None = None


def _event_order(raw: Any, where: str) -> EventOrder | None:
    if raw is None:
        return None
    obj = as_object(raw, where)
    trigger = "uid" in obj and "orderId" not in obj
    order_id = req_str(obj, "uid" if trigger else "orderId", where)
    return EventOrder(
        order_id=order_id,
        cli_ord_id=opt_str(obj, "clientId" if trigger else "cliOrdId", where),
        order_type=req_str(obj, "type", where),
        symbol=req_str(obj, "symbol", where).upper(),
        side=req_str(obj, "side", where),
        quantity=opt_decimal(obj, "quantity", where),
        filled=opt_decimal(obj, "filled", where),
        limit_price=opt_decimal(obj, "limitPrice", where),
        stop_price=opt_decimal(obj, "triggerPrice" if trigger else "stopPrice", where),
        reduce_only=bool(opt_bool(obj, "reduceOnly", where)),
        timestamp=opt_str(obj, "timestamp", where),
    )


def _events(raw: Mapping[str, Any], where: str) -> tuple[OrderEvent, ...]:
    if raw.get("orderEvents") is None:
        return ()
    out: list[OrderEvent] = []
    for i, ev in enumerate(list_of_objects(raw, "orderEvents", where)):
        at = f"{where}: orderEvents[{i}]"
        kind = req_str(ev, "type", at)
        inner = ev.get("order") or ev.get("new") or ev.get("orderTrigger")
        order = _event_order(inner or ev.get("orderPriorExecution"), at)
        out.append(
            OrderEvent(
                kind=kind,
                order=order,
                old=_event_order(ev.get("old") or ev.get("orderPriorEdit"), at),
                execution_id=opt_str(ev, "executionId", at),
                price=opt_decimal(ev, "price", at),
                amount=opt_decimal(ev, "amount", at),
                reason=opt_str(ev, "reason", at),
                reduced_quantity=opt_decimal(ev, "reducedQuantity", at)
                or opt_decimal(ev, "takerReducedQuantity", at),
            )
        )
    return tuple(out)


def _status_object(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    if key not in body:
        raise ProtocolError(f"{key}: missing from a success answer")
    return as_object(body[key], key)


class _Status:
    """What every status answer shares: a status, whether it is a success, its events."""

    __slots__ = ()
    status: str
    events: tuple[OrderEvent, ...]
    _kind: ClassVar[str] = "send"

    @property
    def ok(self) -> bool:
        return self.status in SUCCESS_STATUSES[self._kind]

    @property
    def traded(self) -> bool:
        """Whether the answer's ``orderEvents`` hold an EXECUTION: the order traded."""
        return any(e.kind == "EXECUTION" for e in self.events)

    def error(self, detail: str = "") -> ExchangeError | None:
        """The exception for a status that is not a success (None when ``ok``). A status
        that is not a success but comes with an EXECUTION event contradicts itself (the
        send enum has ``cancelled``, ``OrderError`` ``REJECTED_AFTER_EXECUTION``): the order
        traded, so it is ``OrderStateUnknown`` (reconcile), never a plain rejection."""
        if self.ok:
            return None
        if self.traded:
            why = "refused after an execution: reconcile"
            return OrderStateUnknown(self.status, f"{detail}: {why}" if detail else why)
        return status_error(self.status, detail)


@dataclass(frozen=True, slots=True)
class SendResult(_Status):
    """``sendStatus``: ``placed`` (or partially/fully filled at once) means placed."""

    status: str
    order_id: str | None
    cli_ord_id: str | None
    received_time: str | None
    events: tuple[OrderEvent, ...]


@dataclass(frozen=True, slots=True)
class EditResult(_Status):
    status: str
    order_id: str | None
    cli_ord_id: str | None
    received_time: str | None
    events: tuple[OrderEvent, ...]
    _kind: ClassVar[str] = "edit"


@dataclass(frozen=True, slots=True)
class CancelResult(_Status):
    """``cancelStatus``: ``cancelled``, ``filled`` (too late) or ``notFound``."""

    status: str
    order_id: str | None
    cli_ord_id: str | None
    received_time: str | None
    events: tuple[OrderEvent, ...]
    _kind: ClassVar[str] = "cancel"


@dataclass(frozen=True, slots=True)
class CancelAllResult(_Status):
    """``cancelStatus`` of ``cancelallorders``: which orders went (order_id, cliOrdId)."""

    status: str
    cancel_only: str
    cancelled: tuple[tuple[str, str | None], ...]
    received_time: str | None
    events: tuple[OrderEvent, ...]
    _kind: ClassVar[str] = "cancel_all"


@dataclass(frozen=True, slots=True)
class DeadManStatus:
    """The switch after a ``cancelallordersafter``: ``trigger_time`` is None when disarmed
    (Kraken writes ``"0"``)."""

    current_time: str
    trigger_time: str | None

    @property
    def armed(self) -> bool:
        return self.trigger_time is not None


@dataclass(frozen=True, slots=True)
class BatchItemResult(_Status):
    """One ``batchStatus`` entry (sends carry their ``order_tag``)."""

    status: str
    order_tag: str | None
    order_id: str | None
    cli_ord_id: str | None
    received_time: str | None
    events: tuple[OrderEvent, ...]

    @property
    def ok(self) -> bool:
        return self.status in ("placed", "partiallyFilled", "filled", "edited", "cancelled")


def parse_send(body: Mapping[str, Any]) -> SendResult:
    st = _status_object(body, "sendStatus")
    return SendResult(
        status=req_str(st, "status", "sendStatus"),
        order_id=opt_str(st, "order_id", "sendStatus"),
        cli_ord_id=opt_str(st, "cliOrdId", "sendStatus"),
        received_time=opt_str(st, "receivedTime", "sendStatus"),
        events=_events(st, "sendStatus"),
    )


def parse_edit(body: Mapping[str, Any]) -> EditResult:
    st = _status_object(body, "editStatus")
    return EditResult(
        status=req_str(st, "status", "editStatus"),
        order_id=opt_str(st, "orderId", "editStatus"),
        cli_ord_id=opt_str(st, "cliOrdId", "editStatus"),
        received_time=opt_str(st, "receivedTime", "editStatus"),
        events=_events(st, "editStatus"),
    )


def parse_cancel(body: Mapping[str, Any]) -> CancelResult:
    st = _status_object(body, "cancelStatus")
    return CancelResult(
        status=req_str(st, "status", "cancelStatus"),
        order_id=opt_str(st, "order_id", "cancelStatus"),
        cli_ord_id=opt_str(st, "cliOrdId", "cancelStatus"),
        received_time=opt_str(st, "receivedTime", "cancelStatus"),
        events=_events(st, "cancelStatus"),
    )


def parse_cancel_all(body: Mapping[str, Any]) -> CancelAllResult:
    st = _status_object(body, "cancelStatus")
    where = "cancelStatus"
    listed = list_of_objects(st, "cancelledOrders", where) if "cancelledOrders" in st else []
    cancelled = tuple(
        (req_str(item, "order_id", where), opt_str(item, "cliOrdId", where)) for item in listed
    )
    return CancelAllResult(
        status=req_str(st, "status", where),
        cancel_only=opt_str(st, "cancelOnly", where) or "all",
        cancelled=cancelled,
        received_time=opt_str(st, "receivedTime", where),
        events=_events(st, where),
    )


def parse_dead_man(body: Mapping[str, Any]) -> DeadManStatus:
    st = _status_object(body, "status")
    trigger = req_str(st, "triggerTime", "status")
    return DeadManStatus(
        current_time=req_str(st, "currentTime", "status"),
        trigger_time=None if trigger == "0" else trigger,
    )


def parse_batch(body: Mapping[str, Any]) -> tuple[BatchItemResult, ...]:
    if "batchStatus" not in body:
        raise ProtocolError("batchStatus: missing from a success answer")
    out: list[BatchItemResult] = []
    for i, item in enumerate(list_of_objects(body, "batchStatus", "batchorder")):
        where = f"batchStatus[{i}]"
        tag = item.get("order_tag")
        out.append(
            BatchItemResult(
                status=req_str(item, "status", where),
                order_tag=None if tag is None else str(tag),
                order_id=opt_str(item, "order_id", where),
                cli_ord_id=opt_str(item, "cliOrdId", where),
                received_time=opt_str(item, "dateTimeReceived", where),
                events=_events(item, where),
            )
        )
    return tuple(out)
