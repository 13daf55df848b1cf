"""The Futures simulator's REST v3: ``/derivatives/api/v3/<endpoint>``.

Every answer is ``{"result": "success", "serverTime": …, …}`` or ``{"result": "error",
"serverTime": …, "error": "<code>"}`` with HTTP 200, as Kraken's pages show (a REST fault
can make it a 5xx page instead). Endpoints, each as its page under
https://docs.kraken.com/api/docs/futures-api/trading/ documents it:

==========================  ========  ==================================================
``instruments``             GET       public: the contracts (``get-instruments``)
``tickers``                 GET       public: ``symbol`` filters (``get-tickers``)
``orderbook``               GET       public: ``symbol`` required (``get-orderbook``)
``sendorder``               POST      ``send-order``: lmt, post, ioc, fok, mkt, stp,
                                      take_profit; reduceOnly; cliOrdId; triggerSignal
``editorder``               POST      ``edit-order-spring``: size (qtyMode), limitPrice,
                                      stopPrice
``cancelorder``             POST      ``cancel-order``: order_id or cliOrdId
``batchorder``              POST      ``send-batch-order``: ``json={"batchOrder": [...]}``;
                                      a send of a type it lacks (``mkt``) is
                                      ``invalidOrderType``
``cancelallorders``         POST      ``cancel-all-orders``: optional ``symbol``
``cancelallordersafter``    POST      ``cancel-all-orders-after``: ``timeout`` seconds
``openorders``              GET       ``get-open-orders``
``fills``                   GET       ``get-fills``: optional ``lastFillTime``
``openpositions``           GET       ``get-open-positions``
``accounts``                GET       ``get-accounts``: ``cash`` and ``flex``
==========================  ========  ==================================================

Parameters are read from the query string and a form body alike. A private request is
checked in Kraken's order: the key and ``Authent`` (``authenticationError``), the nonce
(``nonceDuplicate``, ``nonceBelowThreshold``), the key's General API level
(``authenticationError`` for a write by a Read Only key, for anything by a No Access key:
``access``), the budget (``apiLimitExceeded``, the
simulator's own copy of Kraken's cost table); then faults, then the endpoint. A
``lose_response`` fault lets the request act and then drops the connection.

This module owns the endpoints' decoding and answers; the exchange is ``engine``'s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from bot.kraken.codec import dumps
from bot.sim.futures.access import NOT_ALLOWED
from bot.sim.futures.auth import authent_matches
from bot.sim.futures.contracts import Contract
from bot.sim.futures.engine import Outcome, SendRequest
from bot.sim.futures.faults import FaultKind
from bot.sim.futures.records import Report
from bot.sim.futures.render import (
    flex_account,
    iso_ms,
    open_order,
    open_position,
    order_event,
    rest_fill,
)
from bot.sim.futures.tickers import rest_ticker
from bot.sim.futures.venue import FUTURES_VENUE_KEY, FuturesVenue, KeyState

__all__ = ["ENDPOINTS", "futures_rest_handler"]

log = structlog.get_logger("sim.futures.rest")

# The simulator's reading of https://docs.kraken.com/api/docs/guides/futures-rate-limits.
_COSTS: Final = {
    "sendorder": 10,
    "editorder": 10,
    "cancelorder": 10,
    "accounts": 2,
    "openpositions": 2,
    "openorders": 2,
    "fills": 2,
    "cancelallorders": 25,
    "cancelallordersafter": 25,
}
_PUBLIC: Final = frozenset({"instruments", "tickers", "orderbook"})
_READS: Final = frozenset({"openorders", "fills", "openpositions", "accounts"})
_WRITES: Final = frozenset(
    {
        "sendorder",
        "editorder",
        "cancelorder",
        "batchorder",
        "cancelallorders",
        "cancelallordersafter",
    }
)
ENDPOINTS: Final = _PUBLIC | _READS | _WRITES
_SIGNALS: Final = frozenset({"mark", "index", "last"})
_STATUS_TEXT: Final = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class _Refused(Exception):
    """A ``result: error`` answer with Kraken's ``code``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Params = Mapping[str, Any]


def _answer(venue: FuturesVenue, body: dict[str, Any]) -> web.Response:
    payload = {"result": "success", **body, "serverTime": iso_ms(venue.now_ns())}
    return web.Response(body=dumps(payload), content_type="application/json")


def _error(venue: FuturesVenue, code: str) -> web.Response:
    payload = {"result": "error", "serverTime": iso_ms(venue.now_ns()), "error": code}
    return web.Response(body=dumps(payload), content_type="application/json")


# ------------------------------------------------------------------------- decoding


def _params(raw_query: str, body: bytes) -> dict[str, str]:
    text = body.decode("utf-8", "replace") if body else ""
    return dict(
        parse_qsl(raw_query, keep_blank_values=True) + parse_qsl(text, keep_blank_values=True)
    )


def _contract(venue: FuturesVenue, params: Params, key: str = "symbol") -> Contract:
    symbol = params.get(key)
    if symbol is None or symbol == "":
        raise _Refused("requiredArgumentMissing")
    contract = venue.contracts.get(str(symbol).upper())
    if contract is None:
        raise _Refused("invalidArgument")
    return contract


def _scaled(value: Any, precision: int) -> int | None:
    """An exact number (text or JSON) on ``precision`` decimals, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(value) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        return None
    if number is None or not number.is_finite():
        return None
    scaled = number.scaleb(precision)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def _flag(params: Params, key: str) -> bool:
    value = params.get(key)
    if value is None or value in (False, "false", "False", ""):
        return False
    if value in (True, "true", "True"):
        return True
    raise _Refused("invalidArgument")


def _send_request(venue: FuturesVenue, params: Params) -> SendRequest | str:
    """A ``SendRequest``, or the status that refuses it before it exists."""
    for key in ("orderType", "symbol", "side", "size"):
        if params.get(key) in (None, ""):
            raise _Refused("requiredArgumentMissing")
    contract = _contract(venue, params)
    size = _scaled(params["size"], contract.qty_precision)
    if size is None or size <= 0:
        return "invalidSize"
    prices: list[int | None] = []
    for key in ("limitPrice", "stopPrice"):
        if params.get(key) is None:
            prices.append(None)
            continue
        price = _scaled(params[key], contract.price_precision)
        if price is None:
            return "invalidPrice"
        prices.append(price)
    signal = str(params.get("triggerSignal") or "last")
    if signal not in _SIGNALS:
        raise _Refused("invalidArgument")
    cli = params.get("cliOrdId")
    return SendRequest(
        symbol=contract.symbol,
        side=str(params["side"]),
        order_type=str(params["orderType"]),
        size=size,
        limit_price=prices[0],
        stop_price=prices[1],
        cli_ord_id=None if cli in (None, "") else str(cli),
        reduce_only=_flag(params, "reduceOnly"),
        trigger_signal=signal,
    )


# ------------------------------------------------------------------------- endpoints


def _events(venue: FuturesVenue, outcome: Outcome) -> list[dict[str, Any]]:
    return [order_event(venue.contracts[e.order.symbol], e) for e in outcome.report.events]


def _run(venue: FuturesVenue, call: Callable[[], Outcome]) -> Outcome:
    return venue.execute(call, lambda o: o.report)


def _send(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    received = venue.now_ns()
    req = _send_request(venue, params)
    if isinstance(req, str):
        status: dict[str, Any] = {"status": req, "receivedTime": iso_ms(received)}
        return {"sendStatus": {**status, "orderEvents": []}}
    outcome = _run(venue, lambda: venue.exchange.send_order(account, req, received))
    status = {}
    if outcome.order_id is not None:
        status["order_id"] = outcome.order_id
    if outcome.cli_ord_id is not None:
        status["cliOrdId"] = outcome.cli_ord_id
    status.update(
        status=outcome.status, receivedTime=iso_ms(received), orderEvents=_events(venue, outcome)
    )
    return {"sendStatus": status}


def _ids(params: Params, id_key: str) -> tuple[str | None, str | None]:
    order_id = params.get(id_key) or None
    cli = params.get("cliOrdId") or None
    if order_id is None and cli is None:
        raise _Refused("requiredArgumentMissing")
    return (None if order_id is None else str(order_id)), (None if cli is None else str(cli))


def _edit_outcome(venue: FuturesVenue, account: str, params: Params, id_key: str) -> Outcome:
    order_id, cli = _ids(params, id_key)
    now = venue.now_ns()
    known = venue.exchange.accounts[account]
    target = order_id or known.cli_ids.get(cli or "")
    order = venue.exchange.order(account, target or "")
    contract = venue.contracts[order.symbol] if order is not None else None
    values: dict[str, int | None] = {}
    for key, name in (("size", "size"), ("limitPrice", "limit_price"), ("stopPrice", "stop_price")):
        raw = params.get(key)
        if raw is None or contract is None:
            values[name] = None
            continue
        precision = contract.qty_precision if key == "size" else contract.price_precision
        scaled = _scaled(raw, precision)
        if scaled is None:
            status = "invalidSize" if key == "size" else "invalidPrice"
            return Outcome(status, order_id, cli, Report())
        values[name] = scaled
    mode = str(params.get("qtyMode") or "RELATIVE")
    if mode not in ("RELATIVE", "ABSOLUTE"):
        raise _Refused("invalidArgument")
    return _run(
        venue,
        lambda: venue.exchange.edit_order(
            account, now, order_id=order_id, cli_ord_id=cli, qty_mode=mode, **values
        ),
    )


def _edit(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    received = venue.now_ns()
    outcome = _edit_outcome(venue, account, params, "orderId")
    status: dict[str, Any] = {"status": outcome.status}
    if outcome.order_id is not None:
        status["orderId"] = outcome.order_id
    if outcome.cli_ord_id is not None:
        status["cliOrdId"] = outcome.cli_ord_id
    status.update(receivedTime=iso_ms(received), orderEvents=_events(venue, outcome))
    return {"editStatus": status}


def _cancel_outcome(venue: FuturesVenue, account: str, params: Params) -> Outcome:
    order_id, cli = _ids(params, "order_id")
    now = venue.now_ns()
    return _run(
        venue,
        lambda: venue.exchange.cancel_order(account, now, order_id=order_id, cli_ord_id=cli),
    )


def _cancel(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    received = venue.now_ns()
    outcome = _cancel_outcome(venue, account, params)
    status: dict[str, Any] = {"status": outcome.status, "receivedTime": iso_ms(received)}
    if outcome.order_id is not None:
        status["order_id"] = outcome.order_id
    if outcome.cli_ord_id is not None:
        status["cliOrdId"] = outcome.cli_ord_id
    status["orderEvents"] = _events(venue, outcome)
    return {"cancelStatus": status}


def _cancel_all(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    received = venue.now_ns()
    symbol = None
    if params.get("symbol"):
        symbol = _contract(venue, params).symbol
    outcome = _run(venue, lambda: venue.exchange.cancel_all(account, received, symbol=symbol))
    cancelled = [
        {"order_id": oid, **({"cliOrdId": cli} if cli is not None else {})}
        for oid, cli in outcome.cancelled
    ]
    return {
        "cancelStatus": {
            "receivedTime": iso_ms(received),
            "cancelOnly": symbol or "all",
            "status": outcome.status,
            "cancelledOrders": cancelled,
            "orderEvents": _events(venue, outcome),
        }
    }


def _cancel_after(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    raw = params.get("timeout")
    if raw is None:
        raise _Refused("requiredArgumentMissing")
    text = str(raw)
    if not text.isdigit() or int(text) >= 2**32:
        raise _Refused("invalidArgument")
    now_ns, trigger_ns = venue.arm_deadman(account, int(text))
    trigger = "0" if trigger_ns is None else iso_ms(trigger_ns)
    return {"status": {"currentTime": iso_ms(now_ns), "triggerTime": trigger}}


# Kraken's OpenAPI, ``BatchOrderSend.orderType``: a batch sends no ``mkt`` order.
_BATCH_SEND_TYPES: Final = frozenset({"lmt", "ioc", "post", "stp", "take_profit", "fok"})


def _batch_item(venue: FuturesVenue, account: str, item: Any) -> dict[str, Any]:
    received = venue.now_ns()
    if not isinstance(item, dict) or item.get("order") not in ("send", "edit", "cancel"):
        raise _Refused("invalidArgument")
    kind = item["order"]
    if kind == "send" and item.get("orderType") not in _BATCH_SEND_TYPES:
        # ``BatchOrderSend.orderType`` has no ``mkt`` (nor trailing_stop): not placed.
        out = {"order_tag": item.get("order_tag"), "status": "invalidOrderType"}
        return {**out, "dateTimeReceived": iso_ms(received), "orderEvents": []}
    if kind == "send":
        body = _send(venue, account, item)["sendStatus"]
        out = {"order_tag": item.get("order_tag"), **body}
        out["dateTimeReceived"] = out.pop("receivedTime")
        return out
    if kind == "edit":
        outcome = _edit_outcome(venue, account, item, "order_id")
    else:
        outcome = _cancel_outcome(venue, account, item)
    out = {"status": outcome.status}
    if outcome.order_id is not None:
        out["order_id"] = outcome.order_id
    if outcome.cli_ord_id is not None:
        out["cliOrdId"] = outcome.cli_ord_id
    out.update(dateTimeReceived=iso_ms(received), orderEvents=_events(venue, outcome))
    return out


def _batch_items(params: Params) -> list[Any]:
    raw = params.get("json")
    if raw is None:
        raise _Refused("requiredArgumentMissing")
    try:
        document = json.loads(raw, parse_float=Decimal)
    except (ValueError, TypeError):
        raise _Refused("Json Parse Error") from None
    items = document.get("batchOrder") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise _Refused("Json Parse Error")
    return items


def _batch(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    items = _batch_items(params)
    return {"batchStatus": [_batch_item(venue, account, item) for item in items]}


def _open_orders(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    snaps = venue.exchange.open_orders(account)
    return {"openOrders": [open_order(venue.contracts[s.symbol], s) for s in snaps]}


def _fills(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    before = None
    raw = params.get("lastFillTime")
    if raw:
        try:
            moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise _Refused("invalidArgument") from None
        before = round(moment.timestamp() * 1000) * 1_000_000
    fills = venue.exchange.fills(account, before)
    return {"fills": [rest_fill(venue.contracts[f.symbol], f) for f in fills]}


def _open_positions(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    positions = venue.exchange.positions(account)
    return {
        "openPositions": [
            open_position(venue.contracts[s], s, pos) for s, pos in sorted(positions.items())
        ]
    }


def _accounts(venue: FuturesVenue, account: str, params: Params) -> dict[str, Any]:
    view = venue.exchange.margin(account)
    cash = {"type": "cashAccount", "balances": {}}
    return {"accounts": {"cash": cash, "flex": flex_account(view)}}


_PRIVATE: Final[dict[str, Callable[[FuturesVenue, str, Params], dict[str, Any]]]] = {
    "sendorder": _send,
    "editorder": _edit,
    "cancelorder": _cancel,
    "batchorder": _batch,
    "cancelallorders": _cancel_all,
    "cancelallordersafter": _cancel_after,
    "openorders": _open_orders,
    "fills": _fills,
    "openpositions": _open_positions,
    "accounts": _accounts,
}


def _public(venue: FuturesVenue, endpoint: str, raw_query: str) -> dict[str, Any]:
    if endpoint == "instruments":
        return {"instruments": [c.to_json() for c in venue.contracts.values()]}
    if endpoint == "tickers":
        wanted = {v.upper() for k, v in parse_qsl(raw_query) if k == "symbol"}
        symbols = [s for s in venue.contracts if not wanted or s in wanted]
        return {"tickers": [rest_ticker(venue, s) for s in symbols]}
    contract = _contract(venue, dict(parse_qsl(raw_query)))
    book = venue.exchange.book(contract.symbol)
    levels = {
        side: [[contract.price_decimal(p), contract.qty_decimal(q)] for p, q in book.depth(side)]
        for side in ("bid", "ask")
    }
    return {"orderBook": {"bids": levels["bid"], "asks": levels["ask"]}}


# ------------------------------------------------------------------------- the handler


def _authenticate(venue: FuturesVenue, request: web.Request, post_data: str) -> KeyState:
    api_key = request.headers.get("APIKey", "")
    authent = request.headers.get("Authent", "")
    nonce = request.headers.get("Nonce", "")
    key = venue.key(api_key)
    if key is None or not authent_matches(
        key.api_secret, post_data, nonce, request.rel_url.raw_path, authent
    ):
        raise _Refused("authenticationError")
    if nonce:
        if not nonce.isdigit() or len(nonce) > 20:
            raise _Refused("invalidArgument")
        code = key.nonces.check(int(nonce))
        if code is not None:
            raise _Refused(code)
    return key


def _cost(endpoint: str, params: Params) -> float:
    if endpoint == "batchorder":
        try:
            return 9 + len(_batch_items(params))
        except _Refused:
            return 10
    if endpoint == "fills" and params.get("lastFillTime"):
        return 25
    return _COSTS.get(endpoint, 10)


async def _faults(venue: FuturesVenue, endpoint: str, *, private: bool) -> web.Response | None:
    faults = venue.faults
    if private:
        if faults.take(FaultKind.INVALID_NONCE, endpoint, private=True) is not None:
            return _error(venue, "nonceBelowThreshold")
        if faults.take(FaultKind.RATE_LIMIT, endpoint, private=True) is not None:
            return _error(venue, "apiLimitExceeded")
    delay = faults.take(FaultKind.REST_DELAY, endpoint, private=private)
    if delay is not None:
        await asyncio.sleep(delay.spec.delay_s)
    fail = faults.take(FaultKind.REST_ERROR, endpoint, private=private)
    if fail is None:
        return None
    if fail.spec.status is not None:
        status = fail.spec.status
        reason = _STATUS_TEXT.get(status, "Server Error")
        text = f"<html><body><h1>{status} {reason}</h1></body></html>"
        return web.Response(status=status, text=text, content_type="text/html")
    return _error(venue, fail.spec.error or "Unavailable")


async def _lose(request: web.Request, endpoint: str) -> web.Response:
    log.warning("response_lost", endpoint=endpoint)
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)  # never reaches the client: the transport is gone


async def futures_rest_handler(request: web.Request) -> web.StreamResponse:
    venue = request.app[FUTURES_VENUE_KEY]
    endpoint = request.match_info["endpoint"].strip("/")
    if endpoint not in ENDPOINTS:
        return web.json_response({"result": "error", "error": "notFound"}, status=404)
    wants_post = endpoint in _WRITES
    if (request.method == "POST") != wants_post:
        raise web.HTTPMethodNotAllowed(request.method, ["POST" if wants_post else "GET"])
    raw_query = request.rel_url.raw_query_string
    body = await request.read()
    try:
        if endpoint in _PUBLIC:
            failed = await _faults(venue, endpoint, private=False)
            return failed or _answer(venue, _public(venue, endpoint, raw_query))
        key, params = _admit(venue, request, endpoint, raw_query, body)
        failed = await _faults(venue, endpoint, private=True)
        if failed is not None:
            return failed
        answer = _dispatch(venue, endpoint, key.account, params)
    except _Refused as refused:
        return _error(venue, refused.code)
    if venue.faults.take(FaultKind.LOSE_RESPONSE, endpoint, private=True) is not None:
        return await _lose(request, endpoint)
    return _answer(venue, answer)


def _admit(
    venue: FuturesVenue, request: web.Request, endpoint: str, raw_query: str, body: bytes
) -> tuple[KeyState, dict[str, str]]:
    """Key, ``Authent``, nonce and budget, in Kraken's order; ``_Refused`` otherwise."""
    key = _authenticate(venue, request, raw_query + body.decode("utf-8", "replace"))
    if not key.access.allows(write=endpoint in _WRITES):
        raise _Refused(NOT_ALLOWED)  # the key's General API level (``access``)
    params = _params(raw_query, body)
    if venue.rate_limits and not key.budget.spend(_cost(endpoint, params), venue.monotonic()):
        raise _Refused("apiLimitExceeded")
    return key, params


def _dispatch(venue: FuturesVenue, endpoint: str, account: str, params: Params) -> dict[str, Any]:
    if venue.paused and endpoint in _WRITES and endpoint != "cancelallordersafter":
        raise _Refused("marketUnavailable")
    return _PRIVATE[endpoint](venue, account, params)
