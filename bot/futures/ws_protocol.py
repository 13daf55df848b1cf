"""Kraken Futures WebSocket v1, sans-I/O: requests out as bytes, frames in as dataclasses.

``wss://futures.kraken.com/ws/v1`` (KRAKEN.md §6; the pages under
https://docs.kraken.com/api/docs/futures-api/websocket/). One connection carries public
and private feeds. Requests are JSON objects with an ``event``:

- ``{"event": "subscribe"|"unsubscribe", "feed": …, "product_ids": [...]}`` for the public
  ``book``, ``trade`` and ``ticker`` feeds, and ``heartbeat`` (no products);
- ``{"event": "challenge", "api_key": …}`` to start the private handshake; private
  subscriptions carry ``api_key``, ``original_challenge`` and ``signed_challenge``
  (built by ``ws_auth``).

Frames (``parse_frame``): events ``info``, ``challenge``, ``subscribed``,
``unsubscribed``, ``subscribed_failed``/``unsubscribed_failed``, ``alert`` and ``error``;
feeds ``heartbeat``, ``book_snapshot``/``book`` (each with ``seq``; Futures sends no
checksum, see ``book``), ``trade_snapshot``/``trade``, ``ticker``, and the private feeds
of ``ws_private``. Numbers are exact ``Decimal``. A frame that is not JSON, is not an
object, names no known event or feed, or has a field of the wrong type raises
``ProtocolError``, and nothing else does.

``WsError.exception()`` and ``Alert.exception()`` map Kraken's texts onto ``bot.core.errors``
(``Invalid product id``/``Invalid feed``/``Json Error``: rejected; ``Failed to subscribe to
authenticated feed``: an auth problem).

This module owns the public frames and the dispatch; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from bot.core.errors import AuthError, ExchangeError, ProtocolError, RejectedError
from bot.futures import ws_private as private
from bot.futures.fields import (
    as_object,
    list_of_objects,
    opt_bool,
    opt_decimal,
    opt_str,
    req_decimal,
    req_int,
    req_str,
)
from bot.kraken.codec import Raw, dumps, excerpt, loads_exact

__all__ = [
    "AUTH_FAILED",
    "PRIVATE_FEEDS",
    "PUBLIC_FEEDS",
    "Alert",
    "BookDelta",
    "BookSnapshot",
    "ChallengeIssued",
    "FuturesEvent",
    "Heartbeat",
    "Info",
    "SubscriptionChange",
    "TickerFrame",
    "Trade",
    "TradeSnapshot",
    "WsError",
    "challenge_request",
    "parse_frame",
    "subscribe",
    "unsubscribe",
]

PUBLIC_FEEDS: Final = frozenset({"book", "trade", "ticker", "ticker_lite", "heartbeat"})
PRIVATE_FEEDS: Final = frozenset(
    {"open_orders", "open_orders_verbose", "fills", "open_positions", "balances"}
)
AUTH_FAILED: Final = "Failed to subscribe to authenticated feed"
_REJECTED_TEXTS: Final = frozenset({"Invalid product id", "Invalid feed", "Json Error"})


# --------------------------------------------------------------------------- requests


def _products(product_ids: Sequence[str] | None, feed: str) -> list[str] | None:
    if feed == "heartbeat":
        if product_ids:
            raise ValueError("the heartbeat feed takes no product_ids")
        return None
    if feed in PRIVATE_FEEDS:
        raise ValueError(f"{feed} is private: subscribe through ws_auth.ChallengeHandshake")
    if feed not in PUBLIC_FEEDS:
        raise ValueError(f"unknown feed {feed!r}")
    if not product_ids or not all(type(p) is str and p for p in product_ids):
        raise ValueError(f"{feed} needs a non-empty list of product ids")
    return list(product_ids)


def subscribe(feed: str, product_ids: Sequence[str] | None = None) -> bytes:
    """``{"event": "subscribe", "feed": feed, "product_ids": [...]}`` for a public feed."""
    body: dict[str, Any] = {"event": "subscribe", "feed": feed}
    products = _products(product_ids, feed)
    if products is not None:
        body["product_ids"] = products
    return dumps(body)


def unsubscribe(feed: str, product_ids: Sequence[str] | None = None) -> bytes:
    body: dict[str, Any] = {"event": "unsubscribe", "feed": feed}
    products = _products(product_ids, feed)
    if products is not None:
        body["product_ids"] = products
    return dumps(body)


def challenge_request(api_key: str) -> bytes:
    """``{"event": "challenge", "api_key": …}``: the first step of the private handshake."""
    if not api_key:
        raise ValueError("the challenge needs the API key")
    return dumps({"event": "challenge", "api_key": api_key})


# ----------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Info:
    version: int


@dataclass(frozen=True, slots=True)
class ChallengeIssued:
    """The server's challenge (a UUID string) to sign with the API secret."""

    message: str


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """``subscribed``, ``unsubscribed``, ``subscribed_failed`` or ``unsubscribed_failed``."""

    event: str
    feed: str
    product_ids: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.event.endswith("_failed")


@dataclass(frozen=True, slots=True)
class Alert:
    message: str

    def exception(self) -> ExchangeError:
        if self.message == AUTH_FAILED:
            return AuthError(self.message)
        return ExchangeError(self.message)


@dataclass(frozen=True, slots=True)
class WsError:
    message: str

    def exception(self) -> ExchangeError:
        if self.message in _REJECTED_TEXTS:
            return RejectedError(self.message)
        return ExchangeError(self.message)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    time: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The whole book of one product at ``seq``: (price, qty) levels, best first."""

    product_id: str
    seq: int
    timestamp: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


@dataclass(frozen=True, slots=True)
class BookDelta:
    """One level's new quantity (0: gone) on ``side`` (``buy``: bids, ``sell``: asks)."""

    product_id: str
    seq: int
    timestamp: int
    side: str
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade; ``side`` is the taker's; ``kind`` fill, liquidation, termination, block."""

    product_id: str
    uid: str
    side: str
    kind: str
    seq: int
    time: int
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class TradeSnapshot:
    product_id: str
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class TickerFrame:
    product_id: str
    time: int
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None
    last: Decimal | None
    mark_price: Decimal | None
    index: Decimal | None
    funding_rate: Decimal | None
    funding_rate_prediction: Decimal | None
    relative_funding_rate: Decimal | None
    next_funding_rate_time: Decimal | None
    open_interest: Decimal | None
    volume: Decimal | None
    suspended: bool
    post_only: bool
    tag: str | None


FuturesEvent = (
    Info
    | ChallengeIssued
    | SubscriptionChange
    | Alert
    | WsError
    | Heartbeat
    | BookSnapshot
    | BookDelta
    | Trade
    | TradeSnapshot
    | TickerFrame
    | private.OpenOrdersSnapshot
    | private.OpenOrderUpdate
    | private.OpenOrderGone
    | private.FillsFrame
    | private.OpenPositionsFrame
    | private.BalancesFrame
)


def _levels(msg: Mapping[str, Any], key: str, where: str) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple(
        (req_decimal(level, "price", where), req_decimal(level, "qty", where))
        for level in list_of_objects(msg, key, where)
    )


def _book_snapshot(msg: Mapping[str, Any]) -> BookSnapshot:
    where = "book_snapshot"
    return BookSnapshot(
        product_id=req_str(msg, "product_id", where).upper(),
        seq=req_int(msg, "seq", where),
        timestamp=req_int(msg, "timestamp", where),
        bids=_levels(msg, "bids", where),
        asks=_levels(msg, "asks", where),
    )


def _book_delta(msg: Mapping[str, Any]) -> BookDelta:
    where = "book"
    side = req_str(msg, "side", where)
    if side not in ("buy", "sell"):
        raise ProtocolError(f"{where}: side must be buy or sell, got {side!r}")
    return BookDelta(
        product_id=req_str(msg, "product_id", where).upper(),
        seq=req_int(msg, "seq", where),
        timestamp=req_int(msg, "timestamp", where),
        side=side,
        price=req_decimal(msg, "price", where),
        qty=req_decimal(msg, "qty", where),
    )


def _trade(raw: Mapping[str, Any], product_id: str | None, where: str) -> Trade:
    pid = product_id or req_str(raw, "product_id", where).upper()
    return Trade(
        product_id=pid,
        uid=req_str(raw, "uid", where),
        side=req_str(raw, "side", where),
        kind=opt_str(raw, "type", where) or "fill",
        seq=req_int(raw, "seq", where),
        time=req_int(raw, "time", where),
        qty=req_decimal(raw, "qty", where),
        price=req_decimal(raw, "price", where),
    )


def _trade_snapshot(msg: Mapping[str, Any]) -> TradeSnapshot:
    where = "trade_snapshot"
    pid = req_str(msg, "product_id", where).upper()
    trades = list_of_objects(msg, "trades", where)
    return TradeSnapshot(
        pid, tuple(_trade(t, pid, f"{where}: trades[{i}]") for i, t in enumerate(trades))
    )


def _ticker(msg: Mapping[str, Any]) -> TickerFrame:
    where = "ticker"

    def num(key: str) -> Decimal | None:
        return opt_decimal(msg, key, where)

    return TickerFrame(
        product_id=req_str(msg, "product_id", where).upper(),
        time=req_int(msg, "time", where),
        bid=num("bid"),
        ask=num("ask"),
        bid_size=num("bid_size"),
        ask_size=num("ask_size"),
        last=num("last"),
        mark_price=num("markPrice"),
        index=num("index"),
        funding_rate=num("funding_rate"),
        funding_rate_prediction=num("funding_rate_prediction"),
        relative_funding_rate=num("relative_funding_rate"),
        next_funding_rate_time=num("next_funding_rate_time"),
        open_interest=num("openInterest"),
        volume=num("volume"),
        suspended=bool(opt_bool(msg, "suspended", where)),
        post_only=bool(opt_bool(msg, "post_only", where)),
        tag=opt_str(msg, "tag", where),
    )


def _product_ids(msg: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = msg.get("product_ids")
    if value is None:
        return ()
    if type(value) is not list or not all(type(p) is str for p in value):
        raise ProtocolError(f"{where}: product_ids must be a list of strings")
    return tuple(p.upper() for p in value)


_SUBSCRIPTION_EVENTS: Final = frozenset(
    {"subscribed", "unsubscribed", "subscribed_failed", "unsubscribed_failed"}
)


def _event(msg: Mapping[str, Any], event: str) -> FuturesEvent:
    if event == "info":
        return Info(req_int(msg, "version", "info"))
    if event == "challenge":
        return ChallengeIssued(req_str(msg, "message", "challenge"))
    if event in _SUBSCRIPTION_EVENTS:
        return SubscriptionChange(event, req_str(msg, "feed", event), _product_ids(msg, event))
    if event == "alert":
        return Alert(req_str(msg, "message", "alert"))
    if event == "error":
        return WsError(opt_str(msg, "message", "error") or "")
    raise ProtocolError(f"unknown event {event!r}")


_FEEDS: Final[dict[str, Callable[[Mapping[str, Any]], FuturesEvent]]] = {
    "heartbeat": lambda m: Heartbeat(req_int(m, "time", "heartbeat")),
    "book_snapshot": _book_snapshot,
    "book": _book_delta,
    "trade_snapshot": _trade_snapshot,
    "trade": lambda m: _trade(m, None, "trade"),
    "ticker": _ticker,
    "open_orders_snapshot": private.parse_open_orders_snapshot,
    "open_orders_verbose_snapshot": private.parse_open_orders_snapshot,
    "open_orders": private.parse_open_orders,
    "open_orders_verbose": private.parse_open_orders,
    "fills_snapshot": lambda m: private.parse_fills(m, snapshot=True),
    "fills": lambda m: private.parse_fills(m, snapshot=False),
    "open_positions": private.parse_open_positions,
    "balances_snapshot": lambda m: private.parse_balances(m, snapshot=True),
    "balances": lambda m: private.parse_balances(m, snapshot=False),
}


def parse_frame(raw: Raw) -> FuturesEvent:
    """One received text frame as its event. Raises ``ProtocolError`` only."""
    msg = as_object(loads_exact(raw), f"frame {excerpt(raw, 80)}")
    event = msg.get("event")
    if event is not None:
        if type(event) is not str:
            raise ProtocolError(f"event must be a string, got {event!r}")
        return _event(msg, event)
    feed = msg.get("feed")
    if type(feed) is not str:
        raise ProtocolError(f"a frame with neither event nor feed: {excerpt(raw, 80)}")
    parser = _FEEDS.get(feed)
    if parser is None:
        raise ProtocolError(f"unknown feed {feed!r}")
    return parser(msg)
