"""Order requests over Kraken's authenticated WebSocket v2, matched to their answers (pure).

Kraken answers each request on ``ws-auth`` with one frame carrying the request's
``req_id`` (KRAKEN.md §5.1, §5.9). ``Correlator`` numbers the requests, remembers what
each one was, and matches answers to them: ``open`` a request, ``answer`` each
``MethodResponse`` (the request is done when its last expected answer arrives; a
``cancel_order`` naming several orders is answered once per order), ``forget`` one that
timed out (a late answer then matches nothing) and ``lose_all`` when the connection ends
(every request still waiting has lost its answer).

What an answer *means* is decided here too, exactly as for REST (``bot.kraken.rest``): the
WebSocket method is named by its REST twin (``add_order`` is ``AddOrder``...) and goes
through the same ``kraken_failure``: the same Kraken error string gives the same error
class (``bot.core.errors``), and a transient error on a write (``EService:Unavailable``...)
is ``OrderStateUnknown``; an answer lost to a disconnect or a timeout is
``OrderStateUnknown`` (``failure_after_send``): the engine looks the order up by
``cl_ord_id`` and never resends.

``AddOrderFrames`` writes ``add_order`` from bytes made once per order shape (pair,
type, side, quantity, flags, token): only the price, ``cl_ord_id`` and ``req_id`` are
filled in per order. It is the C type of ``bot.execution._wsframe`` (``_wsframe.c``, built
by ``setup.py``: the common case with no Python frame, byte for byte the same) unless the
extension is not built or ``KRAKENBOT_PURE_WSFRAME=1`` is set at import; then it is
``PyAddOrderFrames``, the reference the C type is tested against. ``FRAME_CORE`` says
which ("c" or "python"). Frame builders for the requests that ``bot.kraken.codec`` does not
build (``batch_add``, ``batch_cancel``, ``edit_order``) and the engine's ``Order`` as
``add_order`` fields are here as well. No I/O, no clock: ``bot.execution.venue_ws`` sends and waits.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from bot.core.errors import ExchangeError, ProtocolError
from bot.execution.orders import Order, OrderTerms, amend_post_only
from bot.kraken import codec
from bot.kraken.codec import dumps, number
from bot.kraken.instruments import Instrument, format_scaled
from bot.kraken.protocol import MethodResponse
from bot.kraken.rest import failure_after_send, kraken_failure

if TYPE_CHECKING:
    from bot.execution import _wsframe

__all__ = [
    "FIRST_REQ_ID",
    "FRAME_CORE",
    "REST_TWIN",
    "AddOrderFrames",
    "Correlator",
    "Pending",
    "PyAddOrderFrames",
    "add_order_frame",
    "amend_order_frame",
    "answer_error",
    "batch_add",
    "batch_cancel",
    "batch_error",
    "edit_order",
    "lost_error",
    "order_fields",
]

REST_TWIN: Final = {
    "add_order": "AddOrder",
    "batch_add": "AddOrderBatch",
    "amend_order": "AmendOrder",
    "edit_order": "EditOrder",
    "cancel_order": "CancelOrder",
    "batch_cancel": "CancelOrderBatch",
    "cancel_all": "CancelAll",
    "cancel_all_orders_after": "CancelAllOrdersAfter",
}
"""Each WebSocket order method and the REST method whose errors and safety it shares."""

FIRST_REQ_ID: Final = 1 << 20
"""Order requests are numbered from here: the executions feed on the same connection
numbers its subscribe and pings from 1, so the two never meet."""


# ------------------------------------------------------------------------------ answers


def answer_error(response: MethodResponse) -> ExchangeError | None:
    """Kraken's refusal as REST's client would raise it for the twin method; None: success."""
    if response.success:
        return None
    twin = REST_TWIN.get(response.method, response.method)
    return kraken_failure(twin, response.error or "EGeneral:Unknown", "websocket")


def batch_error(method: str, text: str) -> ExchangeError:
    """One order's refusal inside a batch answer, as REST's client would raise it."""
    return kraken_failure(REST_TWIN.get(method, method), text, "websocket")


def lost_error(method: str, code: str, detail: str) -> ExchangeError:
    """The request left and its answer never came (``code``: ``EWS:Connection lost`` or
    ``EWS:Timeout``): for a write, ``OrderStateUnknown``."""
    return failure_after_send(REST_TWIN.get(method, method), code, detail)


@dataclass(slots=True)
class Pending:
    """One request waiting for its answer(s)."""

    req_id: int
    method: str
    expected: int = 1
    answers: list[MethodResponse] = field(default_factory=list)
    lost: str | None = None  # why the answer will never come (the connection ended)

    @property
    def done(self) -> bool:
        return self.lost is not None or len(self.answers) >= self.expected


class Correlator:
    """Requests in flight by ``req_id`` (see the module docstring)."""

    __slots__ = ("_pending", "ids")

    def __init__(self, first: int = FIRST_REQ_ID) -> None:
        self.ids: Iterator[int] = itertools.count(first)
        """Fresh ``req_id`` values, each taken once (``next``: a C call, no frame)."""
        self._pending: dict[int, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def open(self, method: str, *, expected: int = 1) -> Pending:
        """A new request of ``method`` (its ``req_id`` is fresh), waiting for ``expected``
        answers."""
        if expected < 1:
            raise ValueError("a request waits for at least one answer")
        return self.opened(next(self.ids), method, expected)

    def opened(self, req_id: int, method: str, expected: int = 1) -> Pending:
        """The request of ``method`` whose ``req_id`` was taken from ``ids`` (and written
        before any answer could be read), waiting for ``expected`` answers from now."""
        pending = self._pending[req_id] = Pending(req_id, method, expected)
        return pending

    def answer(self, response: MethodResponse) -> Pending | None:
        """Match ``response`` to its request: the request if this answer completed it,
        else None (more answers due, or no such request: late or foreign)."""
        req_id = response.req_id
        pending = self._pending.get(req_id) if req_id is not None else None
        if pending is None:
            return None
        if response.method != pending.method:
            raise ProtocolError(
                f"req_id {req_id}: a {response.method!r} answer to a {pending.method!r} request"
            )
        pending.answers.append(response)
        if not pending.done:
            return None
        del self._pending[pending.req_id]
        return pending

    def forget(self, req_id: int) -> None:
        """Stop waiting for ``req_id`` (it timed out): a late answer matches nothing."""
        self._pending.pop(req_id, None)

    def lose_all(self, reason: str) -> list[Pending]:
        """The connection ended: every request still waiting lost its answer."""
        lost = list(self._pending.values())
        self._pending.clear()
        for pending in lost:
            pending.lost = reason
        return lost


# ------------------------------------------------------------------------------ frames


def order_fields(order: OrderTerms, instrument: Instrument) -> dict[str, Any]:
    """The engine's ``Order`` as ``add_order``/``batch_add`` fields (no symbol or token)."""
    fields: dict[str, Any] = {
        "order_type": order.order_type,
        "side": order.side,
        "order_qty": number(order.qty, instrument.qty_precision),
    }
    if order.price is not None:
        fields["limit_price"] = number(order.price, instrument.price_precision)
    if order.time_in_force != "GTC":
        fields["time_in_force"] = order.time_in_force.lower()
    if order.post_only:
        fields["post_only"] = True
    fields["fee_preference"] = "quote"  # as REST's ``fciq``: see ``venue_rest._OFLAGS``
    fields["cl_ord_id"] = order.cl_ord_id
    return fields


def _plain(text: str) -> bool:
    """``text`` can go between JSON quotes as it is (printable ASCII, no quote, no
    backslash): a UUID, a symbol, a base64 token."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


_SIDES: Final = frozenset({"buy", "sell"})
_TYPES: Final = frozenset({"limit", "market"})


def add_order_frame(order: OrderTerms, instrument: Instrument, *, token: str, req_id: int) -> bytes:
    """The ``add_order`` request for the engine's ``Order``, written in one pass.

    The same JSON as ``codec.dumps`` of ``order_fields`` with the symbol and the token
    (numbers exact, at the pair's precisions); text that would need escaping, or an order
    type this pass does not know, takes ``codec.dumps``' way."""
    symbol, cl_ord_id = instrument.symbol, order.cl_ord_id
    if not (
        order.side in _SIDES
        and order.order_type in _TYPES
        and _plain(symbol)
        and _plain(cl_ord_id)
        and _plain(token)
        and order.time_in_force.isalpha()
        and type(req_id) is int
    ):
        params = {**order_fields(order, instrument), "symbol": symbol}
        return _frame("add_order", params, token, req_id)
    qty = format_scaled(order.qty, instrument.qty_precision)
    text = (
        f'{{"method":"add_order","params":{{"order_type":"{order.order_type}",'
        f'"side":"{order.side}","order_qty":{qty}'
    )
    if order.price is not None:
        text += f',"limit_price":{format_scaled(order.price, instrument.price_precision)}'
    if order.time_in_force != "GTC":
        text += f',"time_in_force":"{order.time_in_force.lower()}"'
    if order.post_only:
        text += ',"post_only":true'
    text += (
        f',"fee_preference":"quote","cl_ord_id":"{cl_ord_id}","symbol":"{symbol}",'
        f'"token":"{token}"}},"req_id":{req_id}}}'
    )
    return text.encode()


_AddOrderKey = tuple[str, int, str, str, int, str, bool, str]
_AddOrderTemplate = tuple[str, str, str]  # up to order_qty; flags and cl_ord_id's quote; the rest


class PyAddOrderFrames:
    """``add_order_frame``, with the parts that do not change between a strategy's orders
    made once: an order of a shape seen before (the same pair and its quantity precision,
    type, side, quantity, time in force, post_only, and token) costs the price's digits
    and one join. The bytes equal ``add_order_frame``'s. At most ``limit`` shapes are kept;
    past that the cache starts afresh (a new token each session leaves old shapes behind).
    The reference of ``_wsframe.AddOrderFrames`` (see the module docstring)."""

    __slots__ = ("_limit", "_templates")

    def __init__(self, limit: int = 256) -> None:
        if limit < 1:
            raise ValueError("AddOrderFrames keeps at least one shape")
        self._limit = limit
        self._templates: dict[_AddOrderKey, _AddOrderTemplate] = {}

    def __len__(self) -> int:
        return len(self._templates)

    def __call__(self, order: OrderTerms, instrument: Instrument, token: str, req_id: int) -> bytes:
        symbol, cl_ord_id = instrument.symbol, order.cl_ord_id
        key = (
            symbol, instrument.qty_precision, order.order_type, order.side, order.qty,
            order.time_in_force, order.post_only, token,
        )  # fmt: skip
        template = self._templates.get(key)
        if template is None:
            template = self._template(order, instrument, token)
            if template is None:
                return add_order_frame(order, instrument, token=token, req_id=req_id)
            if len(self._templates) >= self._limit:
                self._templates.clear()
            self._templates[key] = template
        plain = cl_ord_id.isalnum() and cl_ord_id.isascii()  # an id of ours: no call
        if not (plain or _plain(cl_ord_id)) or type(req_id) is not int:
            return add_order_frame(order, instrument, token=token, req_id=req_id)
        head, middle, tail = template
        price = order.price
        if price is None:
            return f"{head}{middle}{cl_ord_id}{tail}{req_id}}}".encode()
        limit = format_scaled(price, instrument.price_precision)
        return f'{head},"limit_price":{limit}{middle}{cl_ord_id}{tail}{req_id}}}'.encode()

    @staticmethod
    def _template(
        order: OrderTerms, instrument: Instrument, token: str
    ) -> _AddOrderTemplate | None:
        """The fixed text around the price, ``cl_ord_id`` and ``req_id``, as
        ``add_order_frame`` writes it; None for a shape its one pass does not take."""
        symbol = instrument.symbol
        if not (
            order.side in _SIDES
            and order.order_type in _TYPES
            and _plain(symbol)
            and _plain(token)
            and order.time_in_force.isalpha()
        ):
            return None
        qty = format_scaled(order.qty, instrument.qty_precision)
        head = (
            f'{{"method":"add_order","params":{{"order_type":"{order.order_type}",'
            f'"side":"{order.side}","order_qty":{qty}'
        )
        middle = ""
        if order.time_in_force != "GTC":
            middle += f',"time_in_force":"{order.time_in_force.lower()}"'
        if order.post_only:
            middle += ',"post_only":true'
        middle += ',"fee_preference":"quote","cl_ord_id":"'
        tail = f'","symbol":"{symbol}","token":"{token}"}},"req_id":'
        return head, middle, tail


_Frames = type[PyAddOrderFrames] | type["_wsframe.AddOrderFrames"]


def _load_frames() -> tuple[_Frames, Literal["c", "python"]]:
    """The C type, unless ``KRAKENBOT_PURE_WSFRAME`` is set (to anything but 0) or it is
    not built. Read once, at import: a process writes its frames one way."""
    if os.environ.get("KRAKENBOT_PURE_WSFRAME", "") not in ("", "0"):
        return PyAddOrderFrames, "python"
    try:
        from bot.execution import _wsframe
    except ImportError:
        return PyAddOrderFrames, "python"
    _wsframe._bind(PyAddOrderFrames._template, add_order_frame, format_scaled)
    return _wsframe.AddOrderFrames, "c"


if TYPE_CHECKING:  # one interface (``_wsframe.pyi``): the type checker sees the reference
    AddOrderFrames = PyAddOrderFrames
    FRAME_CORE: Final[Literal["c", "python"]] = "python"
else:
    AddOrderFrames, FRAME_CORE = _load_frames()
"""``add_order`` frames from templates: the C type or ``PyAddOrderFrames``;
``FRAME_CORE`` says which ("c" or "python")."""


def _frame(method: str, params: dict[str, Any], token: str, req_id: int) -> bytes:
    if not token:
        raise ValueError("a private request needs a WebSocket token")
    return dumps({"method": method, "params": {**params, "token": token}, "req_id": req_id})


def batch_add(orders: Sequence[Order], instrument: Instrument, *, token: str, req_id: int) -> bytes:
    """``batch_add``: 2 to 15 orders on one pair, validated as a whole by Kraken."""
    if not 2 <= len(orders) <= 15:
        raise ValueError(f"batch_add takes 2 to 15 orders, got {len(orders)}")
    if any(o.symbol != instrument.symbol for o in orders):
        raise ValueError("batch_add: every order must be on the instrument's pair")
    params = {
        "symbol": instrument.symbol,
        "orders": [order_fields(o, instrument) for o in orders],
    }
    return _frame("batch_add", params, token, req_id)


def batch_cancel(
    *, order_ids: Sequence[str], cl_ord_ids: Sequence[str], token: str, req_id: int
) -> bytes:
    """``batch_cancel``: 2 to 50 orders, by Kraken's id and/or ours; at least one by
    Kraken's (``orders`` is required: the venue sends a batch of ``cl_ord_id`` alone over
    REST, whose CancelOrderBatch takes them)."""
    if not 2 <= len(order_ids) + len(cl_ord_ids) <= 50:
        raise ValueError("batch_cancel takes 2 to 50 orders")
    if not order_ids:
        raise ValueError("batch_cancel names one order by Kraken's id at least (orders)")
    params: dict[str, Any] = {"orders": list(order_ids)}
    if cl_ord_ids:
        params["cl_ord_id"] = list(cl_ord_ids)
    return _frame("batch_cancel", params, token, req_id)


def amend_order_frame(  # noqa: PLR0917 (positional: bound by ``partial``, then token, req_id)
    order: Order,
    instrument: Instrument,
    qty: int | None,
    price: int | None,
    token: str,
    req_id: int,
) -> bytes:
    """``amend_order`` of the engine's ``order`` to ``qty`` (the new total; None: its own,
    as Kraken requires one) and ``price`` (None: unchanged), named by Kraken's id, else
    (its answer was lost) by ours; ``post_only`` as ``orders.amend_post_only`` says.

    Written in one pass: the same JSON as ``codec.amend_order`` (numbers exact, at the
    pair's precisions; the same keys in the same order). Anything it would refuse, or
    text that would need escaping, takes ``codec.amend_order``'s way."""
    order_id = order.order_id
    name = order_id or order.cl_ord_id
    new_qty = order.qty if qty is None else qty
    if not (
        type(new_qty) is int
        and new_qty > 0
        and (price is None or (type(price) is int and price > 0))
        and name
        and token
        and _plain(name)
        and _plain(token)
        and type(req_id) is int
    ):
        return codec.amend_order(
            instrument, token=token, req_id=req_id, order_id=order_id or None,
            cl_ord_id=None if order_id else order.cl_ord_id, qty=new_qty, limit_price=price,
            post_only=amend_post_only(order, price),
        )  # fmt: skip
    key = "order_id" if order_id else "cl_ord_id"
    text = (
        f'{{"method":"amend_order","params":{{"{key}":"{name}",'
        f'"order_qty":{format_scaled(new_qty, instrument.qty_precision)}'
    )
    if price is not None:
        text += f',"limit_price":{format_scaled(price, instrument.price_precision)}'
        if order.post_only:  # ``amend_post_only``, written out
            text += ',"post_only":true'
    return (text + f',"token":"{token}"}},"req_id":{req_id}}}').encode()


def edit_order(
    order: Order,
    instrument: Instrument,
    *,
    qty: int | None,
    price: int | None,
    token: str,
    req_id: int,
) -> bytes:
    """``edit_order``: cancel-and-replace under a new order id (needs Kraken's id)."""
    if order.order_id is None:
        raise ValueError("edit_order names the order by Kraken's id")
    if qty is None and price is None:
        raise ValueError("an edit must change qty or limit_price")
    params: dict[str, Any] = {"order_id": order.order_id, "symbol": instrument.symbol}
    if qty is not None:
        params["order_qty"] = number(qty, instrument.qty_precision)
    if price is not None:
        params["limit_price"] = number(price, instrument.price_precision)
    return _frame("edit_order", params, token, req_id)
