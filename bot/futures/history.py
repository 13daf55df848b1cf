"""Kraken Futures' account history of executions, pure: the request, the answer, the pages.

``GET https://futures.kraken.com/api/history/v3/executions`` (Kraken's OpenAPI,
``krakenfx/api-specs`` futures-rest/history/api-public.yml, ``getExecutionEvents``; the
page https://docs.kraken.com/api/docs/futures-api/history/get-execution-events) lists
the account's executions, newest first by default, with what ``fills`` lacks: each
one's fee, and no ceiling of 100 (it pages by ``continuationToken``). Its parameters:
``since`` and ``before`` (epoch milliseconds), ``sort`` (``asc``/``desc``),
``continuation_token`` (the previous page's ``continuationToken``, with the same
``sort``), ``count`` (a page's size) and ``tradeable``. It is signed as the derivatives
are (``Authent``), its path as it is (``/api/history/v3/executions``: there is no
``/derivatives`` prefix to strip), and it spends its own budget
(``ratelimit.HISTORY_BUDGET``).

An answer is ``{accountUid, len, serverTime, elements, continuationToken}`` (the token
only while more follow); each element ``{uid, timestamp, event}`` holds the execution in
``event.execution.execution`` (``Execution`` with a capital E in the older pages). Kraken
has printed the execution two ways, and ``parse_executions`` reads both:

- one order, the account's: ``order``, ``executionType`` (``maker``/``taker``) and
  ``orderData`` (``fee``, ``positionSize``): what the API answered in a capture of 2023,
  and what later clients read (KRAKEN.md §6.4);
- both orders: ``makerOrder``/``takerOrder`` and ``makerOrderData``/``takerOrderData``
  (Kraken's OpenAPI at ``krakenfx/api-specs`` 86715cf, python-kraken-sdk's example): the
  account's side is the order whose ``accountUid`` is the answer's (else the side whose
  data is not null).

Numbers are JSON strings (``"0.00528"``), read exactly as ``Decimal``; an element that
is not as documented is a ``ProtocolError`` naming the field. The fee is in the
currency Kraken charges: USD for the multi-collateral (linear) contracts, the base
currency for inverse ones (the execution does not say). The execution's ``uid`` is its
id; Kraken prints no other, and it is taken to be the ``fill_id`` of ``fills`` and of
the WS ``fills`` feed (KRAKEN.md §6.4 says what is and is not confirmed).

A history error is not a ``result: error`` body: a refused key is HTTP 401
(``{"status": "unauthorized", ...}``), a spent budget HTTP 429 (``decode_answer``).
``ExecutionPager`` plans the pages of one read (bounded by ``max_pages``).
``merge_fills`` joins a read with one of ``fills`` (the newest 100, which the history
service may not have caught up with: Kraken does not say how fresh it is): an execution
both show is kept once, with its fee, under the ``fill_id`` (the id the feed records); a
fill the history lacks is kept, its fee unknown. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final, Literal

from bot.core.errors import (
    AuthError,
    ExchangeError,
    ProtocolError,
    RateLimitError,
    TransientError,
)
from bot.futures.error_codes import futures_error
from bot.futures.fields import as_object, list_of_objects, opt_str, req_str
from bot.futures.ratelimit import history_cost
from bot.kraken.codec import decimal_of, excerpt, loads_exact

__all__ = [
    "HISTORY_PREFIX",
    "MAX_PAGES",
    "PAGE_COUNT",
    "Execution",
    "ExecutionHistory",
    "ExecutionPager",
    "ExecutionsPage",
    "HistoryRequest",
    "Merged",
    "decode_answer",
    "executions",
    "merge_fills",
    "parse_executions",
]

HISTORY_PREFIX: Final = "/api/history/v3/"
PAGE_COUNT: Final = 500  # executions asked per page (account-log's documented default)
MAX_PAGES: Final = 10  # pages one read may take before it stops (and says so)
_DECIMAL: Final = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_SIDES: Final = {"Buy": "buy", "Sell": "sell"}
# ``executionType`` is maker or taker; takerAfterEdit (``fills``' name for an edit that
# trades at once) is read as the taker's too, should the history ever print it.
_LIQUIDITY: Final = {"maker": "m", "taker": "t", "takerAfterEdit": "t"}


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """One history call: ``endpoint`` (``history/executions``, for logs and faults), the
    text parameters in order, and its cost in the history budget."""

    endpoint: str
    params: tuple[tuple[str, str], ...] = ()
    cost: float = 1.0
    http_method: str = "GET"

    @property
    def path(self) -> str:
        """The URL path, which is also the path signed (no ``/derivatives`` prefix)."""
        return HISTORY_PREFIX + self.endpoint.removeprefix("history/")


def executions(
    *,
    since_ms: int | None = None,
    before_ms: int | None = None,
    sort: Literal["asc", "desc"] = "desc",
    count: int | None = PAGE_COUNT,
    continuation_token: str | None = None,
    tradeable: str | None = None,
) -> HistoryRequest:
    """``GET /api/history/v3/executions``; ``ValueError`` on a parameter Kraken refuses."""
    for name, ms in (("since_ms", since_ms), ("before_ms", before_ms)):
        if ms is not None and (type(ms) is not int or ms < 0):
            raise ValueError(f"{name} must be a non-negative int, got {ms!r}")
    if sort not in ("asc", "desc"):
        raise ValueError(f"sort must be asc or desc, got {sort!r}")
    if count is not None and (type(count) is not int or count < 1):
        raise ValueError(f"count must be a positive int, got {count!r}")
    params = (
        ("since", since_ms),
        ("before", before_ms),
        ("sort", sort),
        ("continuation_token", continuation_token),
        ("count", count),
        ("tradeable", tradeable),
    )
    text = tuple((k, str(v)) for k, v in params if v is not None)
    return HistoryRequest("history/executions", text, history_cost("executions"))


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of one of the account's orders. ``liquidity``: ``"m"`` (maker),
    ``"t"`` (taker) or None (Kraken said neither); ``fee`` as Kraken charged it (None when
    the element carries no fee); ``order_type`` is Kraken's (``Limit``, ``IoC``, ``Post``,
    ``Market``, ``Liquidation``, ...); ``position_size`` the position after it."""

    exec_id: str
    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    time_ms: int
    liquidity: str | None
    fee: Decimal | None
    order_type: str | None
    position_size: Decimal | None


@dataclass(frozen=True, slots=True)
class ExecutionsPage:
    """One answer: its executions in the order Kraken listed them, and the token that
    continues the listing (None: nothing follows)."""

    account_uid: str | None
    executions: tuple[Execution, ...]
    continuation_token: str | None


def _number(raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    """A documented ``Decimal`` (a JSON string such as ``"0.00528"``), exactly; a JSON
    number is taken too. Absent or null: None."""
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is str:
        if _DECIMAL.fullmatch(value) is None:
            raise ProtocolError(f"{where}: {key} must be a decimal, got {excerpt(value, 40)!r}")
        return Decimal(value)
    if type(value) is bool:
        raise ProtocolError(f"{where}: {key} must be a decimal, got {value!r}")
    return decimal_of(value, f"{where}: {key}")


def _req_number(raw: Mapping[str, Any], key: str, where: str) -> Decimal:
    value = _number(raw, key, where)
    if value is None:
        raise ProtocolError(f"{where}: missing {key!r}")
    return value


def _ms(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if type(value) is not int or value < 0:
        raise ProtocolError(f"{where}: {key} must be epoch milliseconds, got {value!r}")
    return value


def _data(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = raw.get(key)
    return None if value is None else as_object(value, f"{where}.{key}")


def _one(
    ex: Mapping[str, Any],
    where: str,
    *,
    order: dict[str, Any],
    liquidity: str | None,
    data: dict[str, Any] | None,
    data_where: str,
) -> Execution:
    side_text = req_str(order, "direction", f"{where}.order")
    side = _SIDES.get(side_text)
    if side is None:
        raise ProtocolError(f"{where}.order: direction must be Buy or Sell, got {side_text!r}")
    qty = _req_number(ex, "quantity", where)
    price = _req_number(ex, "price", where)
    if qty <= 0 or price <= 0:
        raise ProtocolError(f"{where}: quantity and price must be positive, got {qty}, {price}")
    cli = opt_str(order, "clientId", f"{where}.order")
    return Execution(
        exec_id=req_str(ex, "uid", where),
        order_id=req_str(order, "uid", f"{where}.order"),
        cli_ord_id=cli or None,  # Kraken prints "" for an order without one
        symbol=req_str(order, "tradeable", f"{where}.order").upper(),
        side=side,
        qty=qty,
        price=price,
        time_ms=_ms(ex, "timestamp", where),
        liquidity=liquidity,
        fee=None if data is None else _number(data, "fee", data_where),
        order_type=opt_str(order, "orderType", f"{where}.order"),
        position_size=None if data is None else _number(data, "positionSize", data_where),
    )


def _ours(ex: Mapping[str, Any], where: str, account: str | None) -> list[Execution]:
    """The account's side(s) of an execution printed with both orders."""
    sides = []
    for name in ("maker", "taker"):
        order = as_object(ex.get(f"{name}Order"), f"{where}.{name}Order")
        data = _data(ex, f"{name}OrderData", where)
        sides.append((name, order, data))
    mine = [s for s in sides if account is not None and s[1].get("accountUid") == account]
    mine = mine or [s for s in sides if s[2] is not None]
    if not mine:
        raise ProtocolError(f"{where}: neither makerOrder nor takerOrder is the account's")
    return [
        _one(
            ex,
            where,
            order=order,
            liquidity=_LIQUIDITY[name],
            data=data,
            data_where=f"{where}.{name}OrderData",
        )
        for name, order, data in mine
    ]


def _element(item: Mapping[str, Any], where: str, account: str | None) -> list[Execution]:
    event = as_object(item.get("event"), f"{where}.event")
    key = "execution" if "execution" in event else "Execution"
    details = as_object(event.get(key), f"{where}.event.{key}")
    where = f"{where}.event.{key}.execution"
    ex = as_object(details.get("execution"), where)
    if "order" in ex:
        kind = opt_str(ex, "executionType", where)
        data = _data(ex, "orderData", where)
        order = as_object(ex["order"], f"{where}.order")
        liquidity = None if kind is None else _LIQUIDITY.get(kind)
        return [
            _one(ex, where, order=order, liquidity=liquidity, data=data,
                 data_where=f"{where}.orderData")
        ]  # fmt: skip
    if "makerOrder" in ex or "takerOrder" in ex:
        return _ours(ex, where, account)
    raise ProtocolError(f"{where}: missing 'order' (or 'makerOrder' and 'takerOrder')")


def parse_executions(body: Mapping[str, Any]) -> ExecutionsPage:
    """One ``executions`` answer (see the module docstring)."""
    account = opt_str(body, "accountUid", "executions")
    found: list[Execution] = []
    for i, item in enumerate(list_of_objects(body, "elements", "executions")):
        found += _element(item, f"elements[{i}]", account)
    token = opt_str(body, "continuationToken", "executions")
    return ExecutionsPage(account, tuple(found), token or None)


def decode_answer(endpoint: str, status: int, raw: bytes) -> dict[str, Any]:
    """A history answer → its body, or the error by remedy: 401/403 ``AuthError``, 429
    ``RateLimitError``, 408 and 5xx ``TransientError``, another status ``ExchangeError``,
    a 200 that is not a JSON object ``ProtocolError``; a ``result: error`` body (the
    derivatives' shape) is mapped by its code."""
    try:
        body = loads_exact(raw)
    except ProtocolError:
        body = None
    detail = excerpt(raw, 120)
    if isinstance(body, dict) and body.get("result") == "error":
        code = body.get("error")
        if type(code) is str:
            raise futures_error(code, f"HTTP {status}", endpoint=endpoint)
    if status == 200:
        if isinstance(body, dict):
            return body
        raise ProtocolError(f"{endpoint}: malformed answer: {detail}")
    code = f"EHTTP:Status {status}"
    error: ExchangeError
    if status in (401, 403):
        error = AuthError("authenticationError", f"{endpoint}: HTTP {status}: {detail}")
    elif status == 429:
        error = RateLimitError("apiLimitExceeded", f"{endpoint}: HTTP 429: {detail}")
    elif status >= 500 or status == 408:
        error = TransientError(code, detail)
    else:
        error = ExchangeError(code, detail)
    raise error


# ------------------------------------------------------------------------------ pages


@dataclass(frozen=True, slots=True)
class ExecutionHistory:
    """What one read found: the executions, newest first; ``pages`` read; ``truncated``
    when it stopped at its bound with more to read."""

    executions: tuple[Execution, ...]
    pages: int
    truncated: bool


class ExecutionPager:
    """The pages of one read of the executions since ``since_ms`` (None: all), newest
    first: ``next_request()`` gives the next call (None when done), ``take(page)`` records
    its answer. It stops when a page has no token or no element, and after ``max_pages``
    pages (then ``truncated``); a token that comes back unchanged is a ``ProtocolError``
    (the listing would never end)."""

    __slots__ = ("_count", "_done", "_found", "_max_pages", "_pages", "_since", "_token")

    def __init__(
        self, since_ms: int | None, *, count: int = PAGE_COUNT, max_pages: int = MAX_PAGES
    ) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {max_pages}")
        self._since = since_ms
        self._count = count
        self._max_pages = max_pages
        self._token: str | None = None
        self._pages = 0
        self._done = False
        self._found: list[Execution] = []

    @property
    def truncated(self) -> bool:
        """Stopped at ``max_pages`` with a token still to follow."""
        return self._done and self._token is not None

    def next_request(self) -> HistoryRequest | None:
        if self._done:
            return None
        return executions(
            since_ms=self._since, sort="desc", count=self._count, continuation_token=self._token
        )

    def take(self, page: ExecutionsPage) -> None:
        if self._done:
            raise RuntimeError("the read is over")
        if page.continuation_token is not None and page.continuation_token == self._token:
            raise ProtocolError("executions: continuationToken came back unchanged")
        self._pages += 1
        self._found += page.executions
        self._token = page.continuation_token if page.executions else None
        self._done = self._token is None or self._pages >= self._max_pages

    def result(self) -> ExecutionHistory:
        """Each execution once (one listed on two pages, as new ones push the listing
        along, is kept where it came first), in Kraken's order: newest first."""
        seen: set[tuple[str, str]] = set()
        listed: list[Execution] = []
        for e in self._found:
            if (e.exec_id, e.order_id) not in seen:
                seen.add((e.exec_id, e.order_id))
                listed.append(e)
        return ExecutionHistory(tuple(listed), self._pages, self.truncated)


# ------------------------------------------------------------------------ with fills


@dataclass(frozen=True, slots=True)
class Merged:
    """``merge_fills``' answer: the executions, newest first; how many fills the history
    lacked (``fills_only``, fees unknown) and how many it showed under another id
    (``renamed``: kept under the ``fill_id``)."""

    executions: tuple[Execution, ...]
    fills_only: int
    renamed: int


def _same(e: Execution) -> tuple[str, int, Decimal, Decimal]:
    return (e.order_id, e.time_ms, e.qty, e.price)


def merge_fills(history: tuple[Execution, ...], fills: tuple[Execution, ...]) -> Merged:
    """One list of both reads (see the module docstring); ``fills`` are ``fills`` entries
    as executions (no fee). A fill is the history's execution when it has its id, else when
    the two agree on order, millisecond, size and price."""
    kept = list(history)
    present = {e.exec_id for e in history}
    named = {f.exec_id for f in fills}
    twins: dict[tuple[str, int, Decimal, Decimal], list[int]] = {}
    for i, e in enumerate(kept):
        if e.exec_id not in named:
            twins.setdefault(_same(e), []).append(i)
    fills_only = renamed = 0
    for fill in fills:
        if fill.exec_id in present:
            continue
        slots = twins.get(_same(fill))
        if slots:
            i = slots.pop(0)
            twin = kept[i]
            liquidity = twin.liquidity if twin.liquidity is not None else fill.liquidity
            kept[i] = replace(
                twin, exec_id=fill.exec_id, cli_ord_id=twin.cli_ord_id or fill.cli_ord_id,
                liquidity=liquidity,
            )  # fmt: skip
            renamed += 1
        else:
            kept.append(fill)
            fills_only += 1
    newest_first = sorted(kept, key=lambda e: e.time_ms, reverse=True)  # stable: listed order
    return Merged(tuple(newest_first), fills_only, renamed)
