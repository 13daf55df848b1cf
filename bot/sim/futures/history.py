"""The Futures simulator's account history: ``GET /api/history/v3/executions``.

Kraken's OpenAPI (``krakenfx/api-specs`` futures-rest/history/api-public.yml,
``getExecutionEvents``; https://docs.kraken.com/api/docs/futures-api/history/get-execution-events)
lists an account's executions with ``since``/``before`` (epoch milliseconds: ``since``
included, ``before`` not), ``sort`` (``desc``, newest first, by default; ``asc``),
``count`` (a page's size: 500 when not given, at most 1000) and ``tradeable`` (one
contract), paged by ``continuation_token``: the previous answer's ``continuationToken``
(also its ``Next-Continuation-Token`` header, ``is-truncated`` saying whether one
follows), asked with the same ``sort``. The same answer is served under
``/api/history/v2/executions``, the path python-kraken-sdk and ccxt call.

The answer is ``{accountUid, len, serverTime, elements, continuationToken}``, each
element ``{uid, timestamp, event: {execution: {execution, takerReducedQuantity}}}`` and
the execution as the API answered in a capture of 2023 (KRAKEN.md §6.4; Kraken's OpenAPI
at 86715cf prints both orders instead, a shape the client reads too): the account's
``order``, ``executionType`` (``maker``/``taker``),
``orderData`` with the ``fee`` charged (USD, the simulator's only collateral) and the
``positionSize`` after it, ``quantity``, ``price``, ``markPrice``, ``usdValue`` and
``limitFilled`` (the resting order was filled up), numbers as decimal strings. The
execution's ``uid`` is the fill's ``fill_id`` (as ``fills`` and the ``fills`` feed print
it); the element's ``uid`` is derived from it.

A request is signed as the derivatives are, its path as it is (``/api/history/v3/...``,
no ``/derivatives`` to strip: ``auth.signed_path``); Kraken documents no nonce rule for
this API, so a ``Nonce`` is signed in when sent and kept in no window. A key it will not
serve (a bad ``Authent``, General API "No Access") is HTTP 401
``{"status": "unauthorized", "reason": ...}``, as the real API answers. Each key has its
own history budget (``venue.history_pool``: 100, refilled at 100 per 10 minutes; 1 a call,
Kraken's table); over it the answer is HTTP 429, ``text/plain``, with ``rate-limit-reset``
(seconds until the call would be taken), as ``_responses.yml``'s ``RateLimited`` says. A
bad parameter is HTTP 400 ``{"status": "badRequest", "reason": ...}`` (the simulator's
own: Kraken does not document it). REST faults name the endpoint ``history/executions``.

This module owns the endpoint; the fills are the engine's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from bot.kraken.codec import dumps
from bot.sim.futures.auth import authent_matches
from bot.sim.futures.faults import FaultKind
from bot.sim.futures.records import FillRec
from bot.sim.futures.render import iso_ms, ms
from bot.sim.futures.venue import FUTURES_VENUE_KEY, FuturesVenue, KeyState

__all__ = ["ENDPOINT", "HISTORY_PATHS", "futures_history_handler", "history_element"]

log = structlog.get_logger("sim.futures.history")

ENDPOINT: Final = "history/executions"
HISTORY_PATHS: Final = ("/api/history/v3/executions", "/api/history/v2/executions")
COST: Final = 1.0
DEFAULT_COUNT: Final = 500
MAX_COUNT: Final = 1000
_UNAUTHORIZED: Final = {
    "status": "unauthorized",
    "reason": "You are not authorized to access this endpoint.",
}
_ELEMENT_NS: Final = uuid.UUID("5b8e31a2-6f0e-4c43-9d1b-6a7e7f3c2d10")
_TYPES: Final = {"lmt": "Limit", "post": "Post", "ioc": "IoC", "fok": "FillOrKill", "mkt": "Market"}


class _BadRequest(Exception):
    """A parameter the endpoint does not take; the text says which."""


def _json(
    status: int, payload: Mapping[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=dumps(payload), content_type="application/json", headers=headers
    )


def _text(value: Decimal) -> str:
    """A documented ``Decimal``: a JSON string of the number, never in exponent form."""
    return format(value, "f")


# ------------------------------------------------------------------------- the element


def _order_type(fill: FillRec) -> str:
    kind = fill.order_kind
    if kind in ("stp", "take_profit"):  # triggered: it traded as the order it became
        assert fill.order is not None
        return "Limit" if fill.order.limit_price is not None else "Market"
    return _TYPES.get(kind, "Limit")


def history_element(venue: FuturesVenue, fill: FillRec, account_uid: str) -> dict[str, Any]:
    """One ``elements`` entry for ``fill`` (see the module docstring)."""
    contract = venue.contracts[fill.symbol]
    snap = fill.order
    assert snap is not None, "the engine records the order of every fill"
    limit = snap.limit_price if snap.limit_price is not None else fill.price
    mark = fill.mark if fill.mark is not None else fill.price
    order = {
        "uid": snap.order_id,
        "accountUid": account_uid,
        "tradeable": fill.symbol,
        "direction": "Buy" if fill.side == "buy" else "Sell",
        "quantity": _text(contract.qty_decimal(snap.qty)),
        "filled": _text(contract.qty_decimal(snap.filled - fill.qty)),  # before this one
        "timestamp": ms(snap.received_ns),
        "limitPrice": _text(contract.price_decimal(limit)),
        "orderType": _order_type(fill),
        "clientId": snap.cli_ord_id or "",
        "reduceOnly": snap.reduce_only,
        "lastUpdateTimestamp": ms(snap.updated_ns),
        "spotData": None,
    }
    execution = {
        "uid": fill.fill_id,
        "order": order,
        "timestamp": ms(fill.time_ns),
        "quantity": _text(contract.qty_decimal(fill.qty)),
        "price": _text(contract.price_decimal(fill.price)),
        "markPrice": _text(contract.price_decimal(mark)),
        "limitFilled": fill.limit_filled,
        "executionType": "maker" if fill.fill_type == "maker" else "taker",  # takerAfterEdit too
        "usdValue": _text(contract.notional(fill.qty, fill.price)),
        "orderData": {
            "fee": _text(fill.fee),
            "positionSize": _text(contract.qty_decimal(fill.position or 0)),
        },
    }
    return {
        "uid": str(uuid.uuid5(_ELEMENT_NS, fill.fill_id)),
        "timestamp": ms(fill.time_ns),
        "event": {"execution": {"execution": execution, "takerReducedQuantity": ""}},
    }


# ------------------------------------------------------------------------- the listing


def _ms_param(params: Mapping[str, str], key: str) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 16:
        raise _BadRequest(f"{key} must be a timestamp in milliseconds")
    return int(raw)


def _token(fill: FillRec) -> str:
    """The opaque token that continues after ``fill``: ``<ms>/<seq>`` in base64 (Kraken's
    decode to ``<ms>/<id>`` too)."""
    return base64.b64encode(f"{ms(fill.time_ns)}/{fill.seq}".encode()).decode()


def _after(token: str) -> int:
    """The fill ``seq`` a continuation token names."""
    try:
        text = base64.b64decode(token, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    stamp, _, seq = text.partition("/")
    if not (stamp.isdigit() and seq.isdigit()):
        raise _BadRequest("continuation_token is not a token this endpoint gave")
    return int(seq)


def _page(
    venue: FuturesVenue, account: str, params: Mapping[str, str]
) -> tuple[dict[str, Any], str | None]:
    since, before = _ms_param(params, "since"), _ms_param(params, "before")
    sort = params.get("sort") or "desc"
    if sort not in ("asc", "desc"):
        raise _BadRequest("sort must be asc or desc")
    raw_count = params.get("count")
    count = DEFAULT_COUNT
    if raw_count:
        if not raw_count.isdigit() or int(raw_count) < 1:
            raise _BadRequest("count must be a positive integer")
        count = min(int(raw_count), MAX_COUNT)
    token = params.get("continuation_token")
    after = None if not token else _after(token)
    tradeable = (params.get("tradeable") or "").upper()
    fills = [
        f
        for f in venue.exchange.accounts[account].fills
        if (since is None or ms(f.time_ns) >= since)
        and (before is None or ms(f.time_ns) < before)
        and (not tradeable or f.symbol == tradeable)
    ]
    if sort == "desc":
        fills.reverse()
    if after is not None:
        fills = [f for f in fills if (f.seq < after if sort == "desc" else f.seq > after)]
    shown, more = fills[:count], len(fills) > count
    uid = venue.account_uid(account)
    body: dict[str, Any] = {
        "accountUid": uid,
        "len": len(shown),
        "serverTime": iso_ms(venue.now_ns()),
        "elements": [history_element(venue, f, uid) for f in shown],
    }
    next_token = _token(shown[-1]) if more else None
    if next_token is not None:
        body["continuationToken"] = next_token
    return body, next_token


# ------------------------------------------------------------------------- the handler


def _key(venue: FuturesVenue, request: web.Request, post_data: str) -> KeyState | None:
    key = venue.key(request.headers.get("APIKey", ""))
    nonce = request.headers.get("Nonce", "")
    authent = request.headers.get("Authent", "")
    if key is None or not authent_matches(
        key.api_secret, post_data, nonce, request.rel_url.raw_path, authent
    ):
        return None
    return key if key.access.allows(write=False) else None


def _limited(seconds: float) -> web.Response:
    reset = max(1, math.ceil(seconds))
    return web.Response(
        status=429, text="Rate limited.", content_type="text/plain",
        headers={"rate-limit-reset": str(reset)},
    )  # fmt: skip


async def _faulted(venue: FuturesVenue) -> web.Response | None:
    faults = venue.faults
    if faults.take(FaultKind.RATE_LIMIT, ENDPOINT, private=True) is not None:
        return _limited(1.0)
    delay = faults.take(FaultKind.REST_DELAY, ENDPOINT, private=True)
    if delay is not None:
        await asyncio.sleep(delay.spec.delay_s)
    fail = faults.take(FaultKind.REST_ERROR, ENDPOINT, private=True)
    if fail is None:
        return None
    status = fail.spec.status or 503
    return web.Response(status=status, text=f"<html><body><h1>{status}</h1></body></html>",
                        content_type="text/html")  # fmt: skip


async def futures_history_handler(request: web.Request) -> web.StreamResponse:
    venue = request.app[FUTURES_VENUE_KEY]
    raw_query = request.rel_url.raw_query_string
    body = await request.read()
    key = _key(venue, request, raw_query + body.decode("utf-8", "replace"))
    if key is None:
        return _json(401, _UNAUTHORIZED)
    if venue.rate_limits:
        wait = key.history.wait_s(COST, venue.monotonic())
        if wait > 0:
            return _limited(wait)
        key.history.spend(COST, venue.monotonic())
    failed = await _faulted(venue)
    if failed is not None:
        return failed
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    try:
        answer, token = _page(venue, key.account, params)
    except _BadRequest as bad:
        return _json(400, {"status": "badRequest", "reason": str(bad)})
    if venue.faults.take(FaultKind.LOSE_RESPONSE, ENDPOINT, private=True) is not None:
        log.warning("response_lost", endpoint=ENDPOINT)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client: the transport is gone
    headers = {"is-truncated": "true" if token else "false"}
    if token:
        headers["Next-Continuation-Token"] = token
    return _json(200, answer, headers)
