"""Kraken WebSocket v2 on the wire: the exact JSON codec, requests out, responses in.

Decoding comes in two speeds. ``loads`` is orjson: the fast one (docs/contributors/benchmarks.md:
the parse-only floor), but it hands JSON numbers over as ``float``, which is only a carrier
of the decimal Kraken printed (``to_scaled`` recovers it exactly, or raises
``PrecisionLost``). ``loads_exact`` is the standard library with ``parse_float=Decimal``:
every number is exactly the text on the wire. The protocol uses the fast one for book and
trade frames and the exact one for anything that keeps numbers as ``Decimal`` (ticker
statistics, executions, method results), and for any frame ``to_scaled`` gave up on.

Both raise only ``ProtocolError``. The exact decoder also refuses numbers no market ever
prints (more than 40 characters or 28 significant digits, or an exponent beyond ±40), so a
hostile frame cannot make it build a million-digit integer and no later ``Decimal``
arithmetic (28 digits by default) can round a number.

Encoding: ``dumps`` is orjson with ``Decimal`` written as a JSON number of exactly its
digits (never through a float). The request builders below (``subscribe_book``,
``add_order``, ``cancel_all_orders_after``, …) are pure functions returning the bytes to
send, shaped as KRAKEN.md §3.2, §5 and Kraken's v2 pages show them; prices and
quantities go in as scaled ints with their ``Instrument`` and leave as exact decimals.

Responses: ``response_from`` turns a decoded ``{"method": …}`` frame into ``Pong``,
``SubscribeAck``/``UnsubscribeAck`` or ``MethodResponse`` (typed results for the order
methods). WS v2 errors are strings; ``exception()`` maps them with ``error_from_kraken``.

The typed field readers (``req_str``, ``opt_int``, …) read one JSON field and raise a
``ProtocolError`` naming it when its type is wrong.

This module owns the JSON codec and the request/response side of the protocol (the
RPC). The channel frames and the dispatch of every received frame live in ``protocol``,
which re-exports the response events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import orjson

from bot.core.errors import ExchangeError, ProtocolError, error_from_kraken
from bot.kraken.instruments import Instrument, PrecisionLost

__all__ = [
    "BOOK_DEPTHS",
    "AddOrderResult",
    "AmendOrderResult",
    "CancelAfterResult",
    "CancelAllResult",
    "CancelOrderResult",
    "MethodResponse",
    "OrderResult",
    "Pong",
    "Raw",
    "Response",
    "SubscribeAck",
    "UnsubscribeAck",
    "add_order",
    "amend_order",
    "as_object",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "data_objects",
    "decimal_of",
    "dumps",
    "excerpt",
    "is_snapshot",
    "loads",
    "loads_exact",
    "number",
    "opt_bool",
    "opt_decimal",
    "opt_int",
    "opt_str",
    "ping",
    "req_str",
    "response_from",
    "subscribe_book",
    "subscribe_executions",
    "subscribe_instrument",
    "subscribe_ticker",
    "subscribe_trade",
    "unsubscribe",
    "warnings_of",
]

Raw = bytes | bytearray | memoryview | str
"""A WebSocket message as received: a text frame (``str``) or its UTF-8 bytes."""

_MAX_NUMBER_CHARS: Final = 40
_MAX_EXPONENT: Final = 40
_MAX_DIGITS: Final = 28  # the default Decimal context's precision
# A float carries any decimal of up to 15 significant digits exactly; see decimal_of.
_FLOAT_DIGITS: Final = 15
_EXCERPT_CHARS: Final = 200


def excerpt(raw: object, limit: int = _EXCERPT_CHARS) -> str:
    """The start of a frame, as text, for a log line or an error message."""
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    if isinstance(raw, bytes | bytearray):
        text = bytes(raw[: limit * 4]).decode("utf-8", errors="replace")
    else:
        text = raw if isinstance(raw, str) else repr(raw)
    return text if len(text) <= limit else text[:limit] + "…"


def loads(raw: Raw) -> Any:
    """Fast decode (orjson): numbers with a dot or exponent arrive as ``float``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc}): {excerpt(raw)}") from None


def _exact_float(text: str) -> Decimal:
    if len(text) > _MAX_NUMBER_CHARS:
        raise ProtocolError(f"number too long: {text[:_MAX_NUMBER_CHARS]}…")
    value = Decimal(text)
    if not -_MAX_EXPONENT <= value.adjusted() <= _MAX_EXPONENT:
        raise ProtocolError(f"number out of range: {text}")
    if len(value.as_tuple().digits) > _MAX_DIGITS:
        # Decimal arithmetic in the default context would round it: refuse, never guess.
        raise ProtocolError(f"number has more than {_MAX_DIGITS} significant digits: {text}")
    return value


def _exact_int(text: str) -> int:
    if len(text) > _MAX_NUMBER_CHARS:
        raise ProtocolError(f"number too long: {text[:_MAX_NUMBER_CHARS]}…")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"not a JSON number: {name}")


def loads_exact(raw: Raw) -> Any:
    """Exact decode: every JSON number with a dot or exponent arrives as ``Decimal``."""
    data: str | bytes | bytearray = raw.tobytes() if isinstance(raw, memoryview) else raw
    try:
        return json.loads(
            data,
            parse_float=_exact_float,
            parse_int=_exact_int,
            parse_constant=_no_constant,
        )
    except ProtocolError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise ProtocolError(f"not JSON ({exc}): {excerpt(raw)}") from None


def decimal_of(value: object, where: str = "number") -> Decimal:
    """A JSON number as an exact, finite ``Decimal``.

    ``int`` and ``Decimal`` (from ``loads_exact``) are exact; strings are refused (v2 sends
    JSON numbers). A ``float``
    is accepted when its shortest repr has at most 15 significant digits, which any decimal
    of 15 digits survives; a longer one may not be what Kraken printed, so it raises
    ``PrecisionLost`` and the caller decodes the frame again with ``loads_exact``.
    """
    kind = type(value)
    if kind is Decimal:
        result: Decimal = value  # type: ignore[assignment]
    elif kind is int:
        return Decimal(value)  # type: ignore[arg-type]
    elif kind is float:
        result = Decimal(repr(value))
        if result.is_finite() and len(result.normalize().as_tuple().digits) > _FLOAT_DIGITS:
            raise PrecisionLost(f"{where}: {value!r} has too many digits for a float")
    else:
        raise ProtocolError(f"{where}: expected a number, got {value!r}")
    if not result.is_finite():
        raise ProtocolError(f"{where}: not a finite number: {value!r}")
    return result


# ---------------------------------------------------------------------- field readers
#
# Each helper reads one field and checks its JSON type; a wrong type is a ProtocolError
# naming the field. ``where`` is the channel or method, for the message.


def req_str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if type(value) is not str:
        raise ProtocolError(f"{where}: {key} must be a string, got {value!r}")
    return value


def opt_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and type(value) is not str:
        raise ProtocolError(f"{where}: {key} must be a string, got {value!r}")
    return value


def opt_int(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is not None and type(value) is not int:
        raise ProtocolError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def opt_bool(raw: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = raw.get(key)
    if value is not None and type(value) is not bool:
        raise ProtocolError(f"{where}: {key} must be a boolean, got {value!r}")
    return value


def opt_decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = raw.get(key)
    return None if value is None else decimal_of(value, f"{where}: {key}")


def warnings_of(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = raw.get("warnings")
    if value is None:
        return ()
    if type(value) is not list or not all(type(w) is str for w in value):
        raise ProtocolError(f"{where}: warnings must be a list of strings, got {value!r}")
    return tuple(value)


def as_object(value: Any, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise ProtocolError(f"{where}: expected an object, got {excerpt(repr(value), 80)}")
    return value


def data_objects(msg: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    data = msg.get("data")
    if type(data) is not list or not all(type(item) is dict for item in data):
        raise ProtocolError(f"{where}: data must be a list of objects")
    return data


def is_snapshot(msg: Mapping[str, Any], where: str) -> bool:
    kind = msg.get("type")
    if kind == "update":
        return False
    if kind == "snapshot":
        return True
    raise ProtocolError(f"{where}: type must be 'snapshot' or 'update', got {kind!r}")


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise TypeError(f"cannot encode {obj} as a JSON number")
        return orjson.Fragment(_plain(obj).encode())
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def dumps(obj: Any) -> bytes:
    """Compact JSON; a ``Decimal`` becomes a JSON number with exactly its digits."""
    return orjson.dumps(obj, default=_default)


def number(n: int, precision: int) -> Decimal:
    """A scaled int as the ``Decimal`` to send (``number(294302, 1) == Decimal("29430.2")``)."""
    return Decimal(n).scaleb(-precision)


# --------------------------------------------------------------------------- requests
#
# Requests are ``{"method": …, "params": {…}, "req_id": <int>}`` (KRAKEN.md §5.1). Every
# builder takes ``req_id`` so the caller can correlate the ack. Arguments a caller could
# only get wrong by a bug (an unknown depth, a negative quantity, two kinds of order id)
# raise ``ValueError`` here rather than travel to Kraken.

BOOK_DEPTHS: Final = frozenset({10, 25, 100, 500, 1000})
MAX_CANCEL_AFTER: Final = 86400


def _request(method: str, params: dict[str, Any] | None, req_id: int) -> bytes:
    if type(req_id) is not int:
        raise ValueError(f"req_id must be an int, got {req_id!r}")
    body: dict[str, Any] = {"method": method}
    if params is not None:
        body["params"] = params
    body["req_id"] = req_id
    return dumps(body)


def _symbols(symbols: str | list[str] | tuple[str, ...]) -> list[str]:
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    if not names or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"symbols must be non-empty strings, got {symbols!r}")
    return names


def _depth(depth: int) -> int:
    if depth not in BOOK_DEPTHS:
        raise ValueError(f"book depth must be one of {sorted(BOOK_DEPTHS)}, got {depth!r}")
    return depth


def ping(*, req_id: int) -> bytes:
    """Application-level ping; Kraken answers ``{"method": "pong", "req_id": …}``."""
    return _request("ping", None, req_id)


def subscribe_book(
    symbols: str | list[str] | tuple[str, ...],
    *,
    req_id: int,
    depth: int = 10,
    snapshot: bool = True,
) -> bytes:
    """Subscribe to the L2 ``book``; Kraken acks once per symbol."""
    params = {
        "channel": "book",
        "symbol": _symbols(symbols),
        "depth": _depth(depth),
        "snapshot": snapshot,
    }
    return _request("subscribe", params, req_id)


def subscribe_trade(
    symbols: str | list[str] | tuple[str, ...], *, req_id: int, snapshot: bool = False
) -> bytes:
    """Subscribe to ``trade``; a snapshot is the last 50 trades (off by default)."""
    params = {"channel": "trade", "symbol": _symbols(symbols), "snapshot": snapshot}
    return _request("subscribe", params, req_id)


def subscribe_ticker(
    symbols: str | list[str] | tuple[str, ...],
    *,
    req_id: int,
    event_trigger: str = "trades",
    snapshot: bool = True,
) -> bytes:
    """Subscribe to ``ticker``, pushed on every trade or (``event_trigger="bbo"``) BBO change."""
    if event_trigger not in ("trades", "bbo"):
        raise ValueError(f"event_trigger must be 'trades' or 'bbo', got {event_trigger!r}")
    params = {
        "channel": "ticker",
        "symbol": _symbols(symbols),
        "event_trigger": event_trigger,
        "snapshot": snapshot,
    }
    return _request("subscribe", params, req_id)


def subscribe_instrument(*, req_id: int, snapshot: bool = True) -> bytes:
    """Subscribe to ``instrument`` (every pair's precisions and minimums)."""
    return _request("subscribe", {"channel": "instrument", "snapshot": snapshot}, req_id)


def subscribe_executions(
    token: str,
    *,
    req_id: int,
    snap_orders: bool = True,
    snap_trades: bool = False,
    order_status: bool = True,
    ratecounter: bool = False,
) -> bytes:
    """Subscribe to the private ``executions`` channel on ``ws-auth`` (KRAKEN.md §5.7)."""
    params = {
        "channel": "executions",
        "token": _token(token),
        "snap_orders": snap_orders,
        "snap_trades": snap_trades,
        "order_status": order_status,
        "ratecounter": ratecounter,
    }
    return _request("subscribe", params, req_id)


def unsubscribe(
    channel: str,
    *,
    req_id: int,
    symbols: str | list[str] | tuple[str, ...] | None = None,
    depth: int | None = None,
    token: str | None = None,
) -> bytes:
    """Unsubscribe; a ``book`` unsubscribe must echo its ``depth``, a private one its token."""
    params: dict[str, Any] = {"channel": channel}
    if symbols is not None:
        params["symbol"] = _symbols(symbols)
    if depth is not None:
        params["depth"] = _depth(depth)
    elif channel == "book":
        raise ValueError("a book unsubscribe must name the subscribed depth")
    if token is not None:
        params["token"] = _token(token)
    return _request("unsubscribe", params, req_id)


def _token(token: str) -> str:
    if not isinstance(token, str) or not token:
        raise ValueError("a private request needs a WebSocket token")
    return token


def _positive(n: int, what: str) -> int:
    if type(n) is not int or n <= 0:
        raise ValueError(f"{what} must be a positive scaled int, got {n!r}")
    return n


def add_order(
    instrument: Instrument,
    *,
    side: str,
    order_type: str,
    qty: int,
    token: str,
    req_id: int,
    limit_price: int | None = None,
    cl_ord_id: str | None = None,
    order_userref: int | None = None,
    time_in_force: str | None = None,
    post_only: bool | None = None,
    reduce_only: bool | None = None,
    deadline: str | None = None,
    validate: bool | None = None,
) -> bytes:
    """``add_order`` on ``ws-auth`` (KRAKEN.md §5.9). ``qty`` and ``limit_price`` are scaled."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if cl_ord_id is not None and order_userref is not None:
        raise ValueError("give cl_ord_id or order_userref, not both")
    if order_type == "limit" and limit_price is None:
        raise ValueError("a limit order needs a limit_price")
    params: dict[str, Any] = {
        "order_type": order_type,
        "side": side,
        "order_qty": number(_positive(qty, "qty"), instrument.qty_precision),
        "symbol": instrument.symbol,
    }
    if limit_price is not None:
        params["limit_price"] = number(
            _positive(limit_price, "limit_price"), instrument.price_precision
        )
    optional = {
        "time_in_force": time_in_force,
        "post_only": post_only,
        "reduce_only": reduce_only,
        "cl_ord_id": cl_ord_id,
        "order_userref": order_userref,
        "deadline": deadline,
        "validate": validate,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    params["token"] = _token(token)
    return _request("add_order", params, req_id)


def amend_order(
    instrument: Instrument,
    *,
    token: str,
    req_id: int,
    order_id: str | None = None,
    cl_ord_id: str | None = None,
    qty: int | None = None,
    limit_price: int | None = None,
    post_only: bool | None = None,
    deadline: str | None = None,
) -> bytes:
    """``amend_order``: change qty and/or limit price in place, keeping queue priority."""
    if (order_id is None) == (cl_ord_id is None):
        raise ValueError("name the order by exactly one of order_id and cl_ord_id")
    if qty is None and limit_price is None:
        raise ValueError("an amend must change qty or limit_price")
    params: dict[str, Any] = {"order_id": order_id} if order_id else {"cl_ord_id": cl_ord_id}
    if qty is not None:
        params["order_qty"] = number(_positive(qty, "qty"), instrument.qty_precision)
    if limit_price is not None:
        params["limit_price"] = number(
            _positive(limit_price, "limit_price"), instrument.price_precision
        )
    if post_only is not None:
        params["post_only"] = post_only
    if deadline is not None:
        params["deadline"] = deadline
    params["token"] = _token(token)
    return _request("amend_order", params, req_id)


def cancel_order(
    *,
    token: str,
    req_id: int,
    order_ids: list[str] | tuple[str, ...] = (),
    cl_ord_ids: list[str] | tuple[str, ...] = (),
    order_userrefs: list[int] | tuple[int, ...] = (),
) -> bytes:
    """``cancel_order`` by one kind of id (Kraken refuses a mix in one request)."""
    kinds = {
        "order_id": list(order_ids),
        "cl_ord_id": list(cl_ord_ids),
        "order_userref": list(order_userrefs),
    }
    given = {k: v for k, v in kinds.items() if v}
    if len(given) != 1:
        raise ValueError("cancel by exactly one of order_ids, cl_ord_ids, order_userrefs")
    params: dict[str, Any] = {**given, "token": _token(token)}
    return _request("cancel_order", params, req_id)


def cancel_all(*, token: str, req_id: int) -> bytes:
    """``cancel_all``: every open order of the account."""
    return _request("cancel_all", {"token": _token(token)}, req_id)


def cancel_all_orders_after(timeout: int, *, token: str, req_id: int) -> bytes:
    """The dead man's switch (KRAKEN.md §3.2); ``timeout`` seconds, 0 disarms it."""
    if type(timeout) is not int or not 0 <= timeout < MAX_CANCEL_AFTER:
        raise ValueError(f"timeout must be an int in 0..{MAX_CANCEL_AFTER - 1}, got {timeout!r}")
    params = {"timeout": timeout, "token": _token(token)}
    return _request("cancel_all_orders_after", params, req_id)


# -------------------------------------------------------------------------- responses
#
# What Kraken answers to the requests above: ``{"method": …, "success": …, "result": {…},
# "error": "<string>", "req_id": …, "time_in": …, "time_out": …}`` (KRAKEN.md §5.1). A
# missing or non-boolean ``success`` is a failure. Numbers in results are exact (the
# protocol decodes these frames with ``loads_exact``).


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to ``ping``."""

    req_id: int | None
    time_in: str = ""
    time_out: str = ""


@dataclass(frozen=True, slots=True)
class _Ack:
    """Fields shared by subscribe and unsubscribe acks (Kraken acks once per symbol)."""

    success: bool
    channel: str | None = None
    symbol: str | None = None
    req_id: int | None = None
    error: str | None = None
    time_in: str = ""
    time_out: str = ""
    depth: int | None = None
    snapshot: bool | None = None
    maxratecount: int | None = None
    warnings: tuple[str, ...] = ()
    result: Mapping[str, Any] | None = None  # the raw ``result`` object, numbers exact

    def exception(self) -> ExchangeError | None:
        """Kraken's error as an exception from ``bot.core.errors``; None when it succeeded."""
        return None if self.success else _error(self.error)


@dataclass(frozen=True, slots=True)
class SubscribeAck(_Ack):
    """Ack of a ``subscribe`` (``success`` False: ``error`` says why)."""

    method: str = "subscribe"


@dataclass(frozen=True, slots=True)
class UnsubscribeAck(_Ack):
    """Ack of an ``unsubscribe``."""

    method: str = "unsubscribe"


@dataclass(frozen=True, slots=True)
class AddOrderResult:
    order_id: str  # "" when the request had validate=true
    cl_ord_id: str | None = None
    order_userref: int | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AmendOrderResult:
    amend_id: str
    order_id: str | None = None
    cl_ord_id: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelOrderResult:
    order_id: str | None = None
    cl_ord_id: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelAllResult:
    count: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelAfterResult:
    """``cancel_all_orders_after``: when Kraken will cancel everything."""

    current_time: str
    trigger_time: str
    warnings: tuple[str, ...] = ()


OrderResult = (
    AddOrderResult | AmendOrderResult | CancelOrderResult | CancelAllResult | CancelAfterResult
)


@dataclass(frozen=True, slots=True)
class MethodResponse:
    """The response to a request other than (un)subscribe and ping."""

    method: str
    success: bool
    req_id: int | None = None
    result: OrderResult | None = None  # typed, for the methods listed in OrderResult
    raw_result: Any = None  # the ``result`` as sent (numbers exact), for any method
    error: str | None = None
    time_in: str = ""
    time_out: str = ""

    def exception(self) -> ExchangeError | None:
        """Kraken's error as an exception from ``bot.core.errors``; None when it succeeded."""
        return None if self.success else _error(self.error)


Response = Pong | SubscribeAck | UnsubscribeAck | MethodResponse


def response_from(msg: dict[str, Any]) -> Response:
    """The response event for one decoded ``{"method": …}`` frame."""
    method = msg.get("method")
    if type(method) is not str:
        raise ProtocolError("frame has neither a channel nor a method")
    if method == "pong":
        return Pong(
            req_id=opt_int(msg, "req_id", "pong"),
            time_in=opt_str(msg, "time_in", "pong") or "",
            time_out=opt_str(msg, "time_out", "pong") or "",
        )
    if method in ("subscribe", "unsubscribe"):
        return _ack(method, msg)
    return _method_response(method, msg)


def _error(text: str | None) -> ExchangeError:
    if not text:
        return ExchangeError("EGeneral:Unknown", "failed without an error string")
    return error_from_kraken(text)


def _ack(method: str, msg: dict[str, Any]) -> SubscribeAck | UnsubscribeAck:
    where = f"{method} ack"
    raw_result = msg.get("result")
    result = as_object(raw_result, where) if raw_result is not None else {}
    success = msg.get("success") is True  # absent or non-boolean means failure
    fields: dict[str, Any] = {
        "success": success,
        # A rejection may drop ``result``; the symbol may then sit at the top level.
        "channel": opt_str(result, "channel", where),
        "symbol": opt_str(result, "symbol", where) or opt_str(msg, "symbol", where),
        "req_id": opt_int(msg, "req_id", where),
        "error": opt_str(msg, "error", where),
        "time_in": opt_str(msg, "time_in", where) or "",
        "time_out": opt_str(msg, "time_out", where) or "",
        "depth": opt_int(result, "depth", where),
        "snapshot": opt_bool(result, "snapshot", where),
        "maxratecount": opt_int(result, "maxratecount", where),
        "warnings": warnings_of(result, where) + warnings_of(msg, where),
        "result": raw_result,
    }
    return SubscribeAck(**fields) if method == "subscribe" else UnsubscribeAck(**fields)


def _method_response(method: str, msg: dict[str, Any]) -> MethodResponse:
    where = f"{method} response"
    success = msg.get("success") is True
    raw_result = msg.get("result")
    typed: OrderResult | None = None
    if success and raw_result is not None:
        typed = _typed_result(method, raw_result, where)
    return MethodResponse(
        method=method,
        success=success,
        req_id=opt_int(msg, "req_id", where),
        result=typed,
        raw_result=raw_result,
        error=opt_str(msg, "error", where),
        time_in=opt_str(msg, "time_in", where) or "",
        time_out=opt_str(msg, "time_out", where) or "",
    )


def _typed_result(method: str, raw: Any, where: str) -> OrderResult | None:
    if method not in _RESULT_METHODS:
        return None
    result = as_object(raw, where)
    warnings = warnings_of(result, where)
    if method == "add_order":
        return AddOrderResult(
            order_id=req_str(result, "order_id", where),
            cl_ord_id=opt_str(result, "cl_ord_id", where),
            order_userref=opt_int(result, "order_userref", where),
            warnings=warnings,
        )
    if method == "amend_order":
        return AmendOrderResult(
            amend_id=req_str(result, "amend_id", where),
            order_id=opt_str(result, "order_id", where),
            cl_ord_id=opt_str(result, "cl_ord_id", where),
            warnings=warnings,
        )
    if method == "cancel_order":
        return CancelOrderResult(
            order_id=opt_str(result, "order_id", where),
            cl_ord_id=opt_str(result, "cl_ord_id", where),
            warnings=warnings,
        )
    if method == "cancel_all":
        count = result.get("count")
        if type(count) is not int:
            raise ProtocolError(f"{where}: count must be an integer, got {count!r}")
        return CancelAllResult(count=count, warnings=warnings)
    return CancelAfterResult(
        current_time=req_str(result, "currentTime", where),
        trigger_time=req_str(result, "triggerTime", where),
        warnings=warnings,
    )


_RESULT_METHODS: Final = frozenset(
    {"add_order", "amend_order", "cancel_order", "cancel_all", "cancel_all_orders_after"}
)
