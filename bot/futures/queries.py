"""Kraken Futures reads, pure: requests and parsed answers, plus the lookup by ``cliOrdId``.

Private (each page under https://docs.kraken.com/api/docs/futures-api/trading/):

- ``open_orders``     ``GET openorders``      → ``OpenOrder`` (``get-open-orders``)
- ``fills``           ``GET fills``           → ``Fill``, newest first (``get-fills``)
- ``open_positions``  ``GET openpositions``   → ``OpenPosition`` (``get-open-positions``)
- ``accounts``        ``GET accounts``        → ``Accounts``: cash balances and the
  multi-collateral (``flex``) margin account (``get-accounts``)

Public: ``instruments`` (see ``instruments``), ``tickers`` → ``Ticker`` (``get-tickers``)
and ``orderbook`` → ``OrderBook`` (``get-orderbook``).

``find_order`` answers the question a lost ``sendorder`` reply leaves: is the order with
this ``cliOrdId`` open, did it fill, or does the exchange not know it? It reads the
open orders and the recent fills; the caller never resends until it has the answer.

Numbers are exact ``Decimal``; this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from bot.core.errors import ProtocolError
from bot.futures.fields import (
    as_object,
    list_of_objects,
    opt_bool,
    opt_decimal,
    opt_str,
    req_decimal,
    req_str,
)
from bot.futures.orders import FuturesRequest
from bot.futures.ratelimit import endpoint_cost

__all__ = [
    "Accounts",
    "Fill",
    "FlexAccount",
    "OpenOrder",
    "OpenPosition",
    "OrderBook",
    "OrderLookup",
    "Ticker",
    "accounts",
    "fill_liquidity",
    "fills",
    "find_order",
    "instruments",
    "open_orders",
    "open_positions",
    "orderbook",
    "parse_accounts",
    "parse_fills",
    "parse_open_orders",
    "parse_open_positions",
    "parse_orderbook",
    "parse_tickers",
    "tickers",
]


# --------------------------------------------------------------------------- requests


def open_orders() -> FuturesRequest:
    return FuturesRequest("GET", "openorders", (), endpoint_cost("openorders"))


def fills(last_fill_time: str | None = None) -> FuturesRequest:
    """The last 100 fills, or the 100 before ``last_fill_time`` (which costs 25, not 2)."""
    params = (("lastFillTime", last_fill_time),) if last_fill_time is not None else ()
    cost = endpoint_cost("fills", last_fill_time=last_fill_time is not None)
    return FuturesRequest("GET", "fills", params, cost)


def open_positions() -> FuturesRequest:
    return FuturesRequest("GET", "openpositions", (), endpoint_cost("openpositions"))


def accounts() -> FuturesRequest:
    return FuturesRequest("GET", "accounts", (), endpoint_cost("accounts"))


def instruments() -> FuturesRequest:
    return FuturesRequest("GET", "instruments")


def tickers() -> FuturesRequest:
    return FuturesRequest("GET", "tickers")


def orderbook(symbol: str) -> FuturesRequest:
    return FuturesRequest("GET", "orderbook", (("symbol", symbol),))


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """One ``openOrders`` entry. ``order_type`` is ``lmt``, ``stop`` or ``take_profit``
    (post-only orders rest as ``lmt``); ``status`` is ``untouched`` or ``partiallyFilled``."""

    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    unfilled_size: Decimal
    filled_size: Decimal
    status: str
    reduce_only: bool
    trigger_signal: str | None
    received_time: str | None
    last_update_time: str | None


# ``fillType`` (REST ``fills``) and ``fill_type`` (WS ``fills``) values that say who took
# liquidity. Kraken's OpenAPI (``FillJson.fillType``) lists maker, taker, liquidation,
# assignor, assignee, takerAfterEdit, unwindBankrupt and unwindCounterparty; an edit that
# makes a resting order trade at once is ``takerAfterEdit``: a taker fill.
_LIQUIDITY: Final = {"maker": "m", "taker": "t", "takerAfterEdit": "t"}


def fill_liquidity(fill_type: str) -> str | None:
    """``"m"`` (maker), ``"t"`` (taker, ``takerAfterEdit`` included) or None (liquidation,
    assignment, unwind: neither side of an order of ours in the book)."""
    return _LIQUIDITY.get(fill_type)


@dataclass(frozen=True, slots=True)
class Fill:
    """One ``fills`` entry; ``fill_type`` is ``maker``, ``taker``, ``takerAfterEdit``,
    ``liquidation``, … (``fill_liquidity``)."""

    fill_id: str
    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    size: Decimal
    price: Decimal
    fill_time: str
    fill_type: str


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """One ``openPositions`` entry: ``size`` is unsigned, ``side`` long or short."""

    symbol: str
    side: str
    size: Decimal
    price: Decimal
    fill_time: str | None
    unrealized_funding: Decimal | None
    pnl_currency: str | None

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "long" else -self.size


@dataclass(frozen=True, slots=True)
class FlexAccount:
    """The multi-collateral margin account (USD values)."""

    balance_value: Decimal
    portfolio_value: Decimal
    collateral_value: Decimal
    initial_margin: Decimal
    initial_margin_with_orders: Decimal
    maintenance_margin: Decimal
    pnl: Decimal
    unrealized_funding: Decimal
    total_unrealized: Decimal
    available_margin: Decimal
    margin_equity: Decimal
    currencies: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class Accounts:
    """``accounts``: cash balances by currency and the flex account (if any)."""

    cash: Mapping[str, Decimal]
    flex: FlexAccount | None


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None
    last: Decimal | None
    mark_price: Decimal | None
    index_price: Decimal | None
    funding_rate: Decimal | None
    funding_rate_prediction: Decimal | None
    open_interest: Decimal | None
    vol24h: Decimal | None
    suspended: bool
    post_only: bool
    tag: str | None


@dataclass(frozen=True, slots=True)
class OrderBook:
    """``orderBook``: (price, size) levels, bids best first, asks best first."""

    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


def parse_open_orders(body: Mapping[str, Any]) -> tuple[OpenOrder, ...]:
    out: list[OpenOrder] = []
    for i, item in enumerate(list_of_objects(body, "openOrders", "openorders")):
        where = f"openOrders[{i}]"
        # The REST page documents cliOrdId; the WS feeds spell it cli_ord_id: read both.
        cli = opt_str(item, "cliOrdId", where) or opt_str(item, "cli_ord_id", where)
        out.append(
            OpenOrder(
                order_id=req_str(item, "order_id", where),
                cli_ord_id=cli,
                symbol=req_str(item, "symbol", where).upper(),
                side=req_str(item, "side", where),
                order_type=req_str(item, "orderType", where),
                limit_price=opt_decimal(item, "limitPrice", where),
                stop_price=opt_decimal(item, "stopPrice", where),
                unfilled_size=opt_decimal(item, "unfilledSize", where) or Decimal(0),
                filled_size=opt_decimal(item, "filledSize", where) or Decimal(0),
                status=req_str(item, "status", where),
                reduce_only=bool(opt_bool(item, "reduceOnly", where)),
                trigger_signal=opt_str(item, "triggerSignal", where),
                received_time=opt_str(item, "receivedTime", where),
                last_update_time=opt_str(item, "lastUpdateTime", where),
            )
        )
    return tuple(out)


def parse_fills(body: Mapping[str, Any]) -> tuple[Fill, ...]:
    out: list[Fill] = []
    for i, item in enumerate(list_of_objects(body, "fills", "fills")):
        where = f"fills[{i}]"
        out.append(
            Fill(
                fill_id=req_str(item, "fill_id", where),
                order_id=req_str(item, "order_id", where),
                cli_ord_id=opt_str(item, "cliOrdId", where),
                symbol=req_str(item, "symbol", where).upper(),
                side=req_str(item, "side", where),
                size=req_decimal(item, "size", where),
                price=req_decimal(item, "price", where),
                fill_time=req_str(item, "fillTime", where),
                fill_type=req_str(item, "fillType", where),
            )
        )
    return tuple(out)


def parse_open_positions(body: Mapping[str, Any]) -> tuple[OpenPosition, ...]:
    out: list[OpenPosition] = []
    for i, item in enumerate(list_of_objects(body, "openPositions", "openpositions")):
        where = f"openPositions[{i}]"
        side = req_str(item, "side", where)
        if side not in ("long", "short"):
            raise ProtocolError(f"{where}: side must be long or short, got {side!r}")
        out.append(
            OpenPosition(
                symbol=req_str(item, "symbol", where).upper(),
                side=side,
                size=req_decimal(item, "size", where),
                price=req_decimal(item, "price", where),
                fill_time=opt_str(item, "fillTime", where),
                unrealized_funding=opt_decimal(item, "unrealizedFunding", where),
                pnl_currency=opt_str(item, "pnlCurrency", where),
            )
        )
    return tuple(out)


def _num(raw: Mapping[str, Any], key: str, where: str) -> Decimal:
    return opt_decimal(raw, key, where) or Decimal(0)


def _flex(raw: Mapping[str, Any]) -> FlexAccount:
    where = "accounts.flex"
    currencies: dict[str, Decimal] = {}
    for name, entry in as_object(raw.get("currencies", {}), f"{where}.currencies").items():
        obj = as_object(entry, f"{where}.currencies.{name}")
        currencies[name] = req_decimal(obj, "quantity", f"{where}.currencies.{name}")
    return FlexAccount(
        balance_value=_num(raw, "balanceValue", where),
        portfolio_value=_num(raw, "portfolioValue", where),
        collateral_value=_num(raw, "collateralValue", where),
        initial_margin=_num(raw, "initialMargin", where),
        initial_margin_with_orders=_num(raw, "initialMarginWithOrders", where),
        maintenance_margin=_num(raw, "maintenanceMargin", where),
        pnl=_num(raw, "pnl", where),
        unrealized_funding=_num(raw, "unrealizedFunding", where),
        total_unrealized=_num(raw, "totalUnrealized", where),
        available_margin=_num(raw, "availableMargin", where),
        margin_equity=_num(raw, "marginEquity", where),
        currencies=currencies,
    )


def parse_accounts(body: Mapping[str, Any]) -> Accounts:
    accts = as_object(body.get("accounts"), "accounts")
    cash: dict[str, Decimal] = {}
    if "cash" in accts:
        balances = as_object(as_object(accts["cash"], "accounts.cash").get("balances", {}), "cash")
        for name, amount in balances.items():
            value = opt_decimal({name: amount}, name, "accounts.cash.balances")
            cash[name] = value if value is not None else Decimal(0)
    flex = _flex(as_object(accts["flex"], "accounts.flex")) if "flex" in accts else None
    return Accounts(cash=cash, flex=flex)


def parse_tickers(body: Mapping[str, Any]) -> tuple[Ticker, ...]:
    out: list[Ticker] = []
    for i, item in enumerate(list_of_objects(body, "tickers", "tickers")):
        where = f"tickers[{i}]"
        out.append(
            Ticker(
                symbol=req_str(item, "symbol", where).upper(),
                bid=opt_decimal(item, "bid", where),
                bid_size=opt_decimal(item, "bidSize", where),
                ask=opt_decimal(item, "ask", where),
                ask_size=opt_decimal(item, "askSize", where),
                last=opt_decimal(item, "last", where),
                mark_price=opt_decimal(item, "markPrice", where),
                index_price=opt_decimal(item, "indexPrice", where),
                funding_rate=opt_decimal(item, "fundingRate", where),
                funding_rate_prediction=opt_decimal(item, "fundingRatePrediction", where),
                open_interest=opt_decimal(item, "openInterest", where),
                vol24h=opt_decimal(item, "vol24h", where),
                suspended=bool(opt_bool(item, "suspended", where)),
                post_only=bool(opt_bool(item, "postOnly", where)),
                tag=opt_str(item, "tag", where),
            )
        )
    return tuple(out)


def _levels(raw: Any, where: str) -> tuple[tuple[Decimal, Decimal], ...]:
    if type(raw) is not list:
        raise ProtocolError(f"{where}: must be a list of [price, size]")
    out: list[tuple[Decimal, Decimal]] = []
    for i, level in enumerate(raw):
        if type(level) is not list or len(level) != 2:
            raise ProtocolError(f"{where}[{i}]: must be [price, size]")
        pair = {"price": level[0], "size": level[1]}
        out.append((req_decimal(pair, "price", where), req_decimal(pair, "size", where)))
    return tuple(out)


def parse_orderbook(body: Mapping[str, Any]) -> OrderBook:
    book = as_object(body.get("orderBook"), "orderBook")
    return OrderBook(
        bids=_levels(book.get("bids"), "orderBook.bids"),
        asks=_levels(book.get("asks"), "orderBook.asks"),
    )


# ----------------------------------------------------------------------- the lookup


@dataclass(frozen=True, slots=True)
class OrderLookup:
    """What the exchange knows of one ``cliOrdId``.

    ``state``: ``open`` (resting, maybe partly filled), ``filled`` (no longer open, but
    fills carry its id: done, or done in part and cancelled) or ``absent`` (neither: never
    placed, or gone with no fill; after a lost reply that means it was not placed, unless
    it was placed and cancelled unfilled, which a lookup cannot tell apart and which
    leaves nothing to undo either way)."""

    cli_ord_id: str
    state: Literal["open", "filled", "absent"]
    order_id: str | None
    open_order: OpenOrder | None
    fills: tuple[Fill, ...]

    @property
    def filled_size(self) -> Decimal:
        return sum((f.size for f in self.fills), Decimal(0))


def find_order(
    cli_ord_id: str, open_orders: Sequence[OpenOrder], recent_fills: Sequence[Fill]
) -> OrderLookup:
    """Resolve ``cli_ord_id`` against one read of ``openorders`` and one of ``fills``."""
    resting = next((o for o in open_orders if o.cli_ord_id == cli_ord_id), None)
    matched = tuple(f for f in recent_fills if f.cli_ord_id == cli_ord_id)
    if resting is not None:
        mine = tuple(f for f in recent_fills if f.order_id == resting.order_id) or matched
        return OrderLookup(cli_ord_id, "open", resting.order_id, resting, mine)
    if matched:
        return OrderLookup(cli_ord_id, "filled", matched[0].order_id, None, matched)
    return OrderLookup(cli_ord_id, "absent", None, None, ())
