"""The simulator's private REST endpoint: ``POST /0/private/<Method>``, signed as Kraken's.

Every request is checked the way Kraken checks it (KRAKEN.md §1, §2.1), in this order:

1. ``API-Key`` names a known key, else ``EAPI:Invalid key``;
2. the body holds one canonical ``nonce`` and ``API-Sign`` is the HMAC-SHA512 of the URI
   path and SHA256(nonce + the exact body bytes) under the key's secret, for form and JSON
   bodies alike, else ``EAPI:Invalid nonce`` / ``EAPI:Invalid signature``;
3. the nonce is above every nonce this key used before (or, with the key's nonce window
   W, above ``last - W`` and never used), else ``EAPI:Invalid nonce``;
4. the key holds a permission the method needs (``keys.REST_PERMISSIONS``), else
   ``EGeneral:Permission denied``;
5. the key's REST call counter takes the call's cost (1, 2 for history calls, 0 for order
   entry, which the trading counter charges instead), else ``EAPI:Rate limit exceeded``.

Faults act around those steps: a delay or a failure before anything, a forced nonce or
rate-limit error in steps 3-4, a lost response after the call was executed.

Account methods are answered here (``Balance``, ``BalanceEx``, ``OpenOrders``,
``QueryOrders``, ``ClosedOrders``, ``TradesHistory``, ``QueryTrades``,
``GetWebSocketsToken``); order entry
is ``rest_trading``'s. This module owns authentication and those answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import structlog
from aiohttp import web

from bot.core.errors import AuthError, ExchangeError, NonceError, RateLimitError, RejectedError
from bot.sim.auth import nonce_in_body, signature_ok
from bot.sim.faults import FaultKind
from bot.sim.keys import ALL_PERMISSIONS, ERR_PERMISSION, REST_PERMISSIONS, Permission, allowed
from bot.sim.limits import rest_cost
from bot.sim.matching import Fill, OrderState
from bot.sim.rest_common import (
    ERR_UNKNOWN_METHOD,
    Params,
    error_response,
    invalid,
    lose_response,
    ok_response,
    parse_body,
    rest_faults,
)
from bot.sim.rest_format import asset_code, balance_text, order_info, trade_info
from bot.sim.rest_trading import TRADING_METHODS
from bot.sim.venue import VENUE_KEY, ApiKey, SimVenue

__all__ = ["PRIVATE_METHODS", "authenticate", "private_handler"]

log = structlog.get_logger("sim.rest")

ERR_INVALID_KEY: Final = "EAPI:Invalid key"
ERR_INVALID_SIGNATURE: Final = "EAPI:Invalid signature"
ERR_INVALID_NONCE: Final = "EAPI:Invalid nonce"
ERR_REST_RATE: Final = "EAPI:Rate limit exceeded"
PAGE: Final = 50
_NS: Final = 1_000_000_000


def authenticate(venue: SimVenue, request: web.Request, body: bytes, method: str) -> ApiKey:
    """The key a signed request is made with, or Kraken's error (see the module docstring)."""
    key = venue.api_key(request.headers.get("API-Key", ""))
    if key is None:
        raise AuthError(ERR_INVALID_KEY)
    signature = request.headers.get("API-Sign")
    if not signature:
        raise AuthError(ERR_INVALID_SIGNATURE, "no API-Sign header")
    nonce_text = nonce_in_body(body, request.headers.get("Content-Type"))
    if not signature_ok(key.api_secret, request.path, nonce_text, body, signature):
        raise AuthError(ERR_INVALID_SIGNATURE)
    nonce = int(nonce_text)
    if venue.faults.take(FaultKind.INVALID_NONCE, method, private=True) is not None:
        raise NonceError(ERR_INVALID_NONCE, "fault")
    if not key.accept_nonce(nonce):
        raise NonceError(ERR_INVALID_NONCE, f"{nonce} after {key.last_nonce}")
    if not allowed(key.permissions, REST_PERMISSIONS.get(method, ())):
        raise AuthError(ERR_PERMISSION, method)
    forced = venue.faults.take(FaultKind.RATE_LIMIT, method, private=True)
    if forced is not None:
        raise RateLimitError(forced.spec.error or ERR_REST_RATE, "fault")
    if venue.rate_limits and not key.rest.try_charge(rest_cost(method), venue.monotonic()):
        raise RateLimitError(ERR_REST_RATE)
    return key


# ---------------------------------------------------------------------- account methods
def balance(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    return {
        asset_code(asset): balance_text(asset, amount)
        for asset, amount in venue.exchange.balances(account).items()
    }


def balance_ex(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    holds = venue.exchange.holds(account)
    return {
        asset_code(asset): {
            "balance": balance_text(asset, amount),
            "hold_trade": balance_text(asset, holds.get(asset, Decimal(0))),
        }
        for asset, amount in venue.exchange.balances(account).items()
    }


def get_websockets_token(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    key = venue.api_key(params.caller) if params.caller else None
    permissions = key.permissions if key is not None else ALL_PERMISSIONS
    token, expires = venue.tokens.issue(account, venue.monotonic(), permissions)
    return {"token": token, "expires": expires}


def _orders_out(
    venue: SimVenue, orders: Iterable[OrderState], params: Params
) -> dict[str, dict[str, Any]]:
    with_trades = params.flag("trades")
    return {o.txid: order_info(venue.instruments[o.symbol], o, trades=with_trades) for o in orders}


def _filtered(orders: Iterable[OrderState], params: Params) -> list[OrderState]:
    userref = params.integer("userref")
    cl_ord_id = params.text("cl_ord_id")
    return [
        o
        for o in orders
        if (userref is None or o.userref == userref)
        and (cl_ord_id is None or o.cl_ord_id == cl_ord_id)
    ]


def open_orders(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    orders = _filtered(venue.exchange.open_orders(account), params)
    return {"open": _orders_out(venue, orders, params)}


def query_orders(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    txids = params.ids("txid")
    if len(txids) > PAGE:
        raise invalid("txid", "at most 50 txids")
    found: list[OrderState] = []
    for txid in txids:
        order = venue.exchange.order(account, txid)
        if order is None:
            raise RejectedError("EOrder:Invalid order", txid)
        found.append(order)
    cl_ord_id = params.text("cl_ord_id")
    if cl_ord_id is not None:
        order = venue.exchange.order_by_cl_ord_id(account, cl_ord_id)
        if order is not None and order.txid not in {o.txid for o in found}:
            found.append(order)
    elif not txids:
        userref = params.integer("userref")
        if userref is None:
            raise invalid("txid", "missing")
        everything = [*venue.exchange.open_orders(account), *venue.exchange.closed_orders(account)]
        found = [o for o in everything if o.userref == userref]
    return _orders_out(venue, _filtered(found, params) if txids else found, params)


def _bound_ns(params: Params, name: str, times: Callable[[str], int | None]) -> int | None:
    """``start``/``end``: unix seconds, or an id whose time is the bound."""
    text = params.text(name)
    if text is None:
        return None
    try:
        return int(Decimal(text).scaleb(9))
    except InvalidOperation:
        stamp = times(text)
        if stamp is None:
            raise invalid(name) from None
        return stamp


def _page(items: list[Any], params: Params) -> list[Any]:
    ofs = params.integer("ofs") or 0
    if ofs < 0:
        raise invalid("ofs")
    return items[ofs : ofs + PAGE]


def closed_orders(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    closetime = params.text("closetime") or "both"
    if closetime not in ("open", "close", "both"):
        raise invalid("closetime")

    def order_time(txid: str) -> int | None:
        order = venue.exchange.order(account, txid)
        return None if order is None else order.closetm or order.opentm

    start = _bound_ns(params, "start", order_time)
    end = _bound_ns(params, "end", order_time)
    orders = _filtered(reversed(venue.exchange.closed_orders(account)), params)

    def inside(o: OrderState) -> bool:
        stamps = {"open": (o.opentm,), "close": (o.closetm or o.opentm,)}
        chosen = stamps.get(closetime, (o.opentm, o.closetm or o.opentm))
        return any((start is None or t > start) and (end is None or t <= end) for t in chosen)

    matching = [o for o in orders if inside(o)]
    return {"closed": _orders_out(venue, _page(matching, params), params), "count": len(matching)}


def trades_history(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    fills = list(reversed(venue.exchange.trades(account)))
    by_id = {f.exec_id: f.timestamp for f in fills}
    start = _bound_ns(params, "start", by_id.get)
    end = _bound_ns(params, "end", by_id.get)
    matching: list[Fill] = [
        f
        for f in fills
        if (start is None or f.timestamp > start) and (end is None or f.timestamp <= end)
    ]
    page = _page(matching, params)
    with_trades = params.flag("trades")
    out: dict[str, Any] = {}
    for fill in page:
        info = trade_info(venue.instruments[fill.symbol], fill)
        if with_trades:
            info["trades"] = []
        out[fill.exec_id] = info
    return {"trades": out, "count": len(matching)}


def _check_order_statuses(key: ApiKey, result: dict[str, Any]) -> None:
    """QueryOrders: an open order needs "query open", a closed one "query closed"."""
    for info in result.values():
        open_ = info.get("status") in ("pending", "open")
        needed = Permission.QUERY_OPEN_ORDERS if open_ else Permission.QUERY_CLOSED_ORDERS
        if needed not in key.permissions:
            raise AuthError(ERR_PERMISSION, f"QueryOrders needs {needed.label}")


def query_trades(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    """QueryTrades: ``txid``, a comma list of at most 20 trade ids (``exec_id``)."""
    wanted = params.ids("txid")
    if not wanted:
        raise invalid("txid", "missing")
    if len(wanted) > 20:
        raise invalid("txid", "at most 20 trade ids")
    by_id = {f.exec_id: f for f in venue.exchange.trades(account)}
    out: dict[str, Any] = {}
    for exec_id in wanted:
        fill = by_id.get(exec_id)
        if fill is None:
            raise invalid("txid", f"unknown trade {exec_id}")
        info = trade_info(venue.instruments[fill.symbol], fill)
        if params.flag("trades"):
            info["trades"] = []
        out[exec_id] = info
    return out


PrivateMethod = Callable[[SimVenue, str, Params], dict[str, Any]]
PRIVATE_METHODS: Final[dict[str, PrivateMethod]] = {
    "Balance": balance,
    "BalanceEx": balance_ex,
    "GetWebSocketsToken": get_websockets_token,
    "OpenOrders": open_orders,
    "QueryOrders": query_orders,
    "ClosedOrders": closed_orders,
    "TradesHistory": trades_history,
    "QueryTrades": query_trades,
    **TRADING_METHODS,
}


async def private_handler(request: web.Request) -> web.Response:
    """``POST /0/private/{method}``."""
    venue = request.app[VENUE_KEY]
    method = request.match_info["method"]
    fn = PRIVATE_METHODS.get(method)
    if fn is None:
        return error_response(ERR_UNKNOWN_METHOD)
    body = await request.read()
    early = await rest_faults(venue, method, private=True)
    if early is not None:
        return early
    try:
        key = authenticate(venue, request, body, method)
        params = Params(parse_body(body, request.headers.get("Content-Type")), caller=key.api_key)
        result = fn(venue, key.account, params)
        if method == "QueryOrders":
            _check_order_statuses(key, result)
    except ExchangeError as exc:
        log.info("rest_refused", endpoint=method, error=exc.code, detail=exc.detail)
        return error_response(exc.code)
    lost = venue.faults.take(FaultKind.LOSE_RESPONSE, method, private=True)
    if lost is not None:
        return await lose_response(request, lost, method)
    return ok_response(result)
