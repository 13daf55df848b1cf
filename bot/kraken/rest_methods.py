"""Typed Kraken REST calls: the parameters the engine uses, formatted exactly, costs attached.

``RestMethods`` is the mixin behind ``KrakenRestClient``: each method builds one request's
parameters and its trading-counter charges, then calls ``public`` or ``private`` (the
transport in ``rest``). Every method returns Kraken's ``result`` object as decoded by
``codec.loads_exact`` (numbers exact), or raises an ``ExchangeError``.

Prices and volumes: a scaled ``int`` with an ``Instrument`` for ``pair`` (sent as
``format_scaled`` at the instrument's precision, e.g. ``"0.00100000"``), or a ``str`` /
``Decimal`` sent as written. A ``float`` is refused, and so is an ``int`` without an
``Instrument`` (its scale would be a guess).

Pairs: an ``Instrument`` is sent as its REST altname (else its REST name, else its symbol)
and charged on the trading counter under its WS symbol (``BTC/USD``); a ``str`` is sent
and charged as given. Use one spelling per pair for every call so the counters add up.

Trading-counter charges (KRAKEN.md §2.2): AddOrder +1, AddOrderBatch +n/2, AmendOrder and
CancelOrder by the order's age (``order_age_s``, seconds since it was placed or last
amended: the caller knows it, Kraken does not say), CancelAll +1 on each pair passed,
CancelAllOrdersAfter +1 account-wide.

Which methods are writes, and which of those may be retried, is declared here too
(``WRITE_METHODS``, ``NEVER_RETRIED``, ``CONVERGENT_WRITES``), and which ``Lane`` each
takes on the key's serialised request line (``lane``); ``rest`` acts on both.

This module owns the catalogue of methods: their parameter shapes, trading costs and
safety class. Signing, nonces, limits and retries are ``rest``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from enum import IntEnum
from typing import Any, Final, TypeAlias

from bot.kraken.instruments import Instrument, format_scaled
from bot.kraken.ratelimit import ACCOUNT_WIDE, TradingCost, TradingCounter
from bot.kraken.signer import FormFields

__all__ = [
    "CONVERGENT_WRITES",
    "NEVER_RETRIED",
    "WRITE_METHODS",
    "Lane",
    "Number",
    "Pair",
    "RestMethods",
    "TradingCharge",
    "counter_key",
    "is_write",
    "lane",
    "wire_pair",
]

TradingCharge: TypeAlias = tuple[str | None, TradingCost]
"""A charge on one pair's trading counter (``None``: account-wide)."""

Pair: TypeAlias = Instrument | str
Number: TypeAlias = int | str | Decimal


NEVER_RETRIED: Final = frozenset({"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder"})
"""Writes never repeated after a transient failure: a second AddOrder could be a second
order, a second AmendOrder could act on an order that has changed since."""

CONVERGENT_WRITES: Final = frozenset(
    {"CancelOrder", "CancelOrderBatch", "CancelAll", "CancelAllOrdersAfter"}
)
"""Writes whose repetition converges on one end state (the order gone, the timer set), so
a transient failure may be retried. If the retry then says ``EOrder:Invalid order``, the
lost first attempt may have done the work: ``settle_error`` reports it as unknown."""

WRITE_METHODS: Final = NEVER_RETRIED | CONVERGENT_WRITES
"""Calls that change orders: a failure after sending makes their outcome unknown."""


def is_write(method: str) -> bool:
    return method in WRITE_METHODS


class Lane(IntEnum):
    """Who goes first on a key's request line (lower first; in arrival order within one).

    Private calls are serialised per key (the nonce rule), so a line forms whenever the
    daemon is busy: while the private feed is down every write is followed by a read, and
    a reconciliation reads pages of history. What takes risk off must not wait behind
    them: the dead-man's switch refresh (a lapse cancels every order) and cancels. Order
    entry and the WebSocket token (which brings the private feed, and the end of those
    reads, back) come next; reads last. Reads also leave room on the REST counter for the
    calls ahead of them (``bot.kraken.rest``).
    """

    SAFETY = 0  # CancelAllOrdersAfter, CancelOrder, CancelOrderBatch, CancelAll
    TRADE = 1  # AddOrder, AddOrderBatch, AmendOrder, EditOrder, GetWebSocketsToken
    READ = 2  # everything else: queries, history, balances


_SAFETY: Final = frozenset({"CancelAllOrdersAfter", "CancelOrder", "CancelOrderBatch", "CancelAll"})
_TRADE: Final = frozenset(
    {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "GetWebSocketsToken"}
)


def lane(method: str) -> Lane:
    """The lane of a private method (an unknown one is a read)."""
    if method in _SAFETY:
        return Lane.SAFETY
    return Lane.TRADE if method in _TRADE else Lane.READ


def wire_pair(pair: Pair) -> str:
    """The ``pair`` parameter Kraken's REST API takes."""
    if isinstance(pair, Instrument):
        return pair.altname or pair.rest_name or pair.symbol
    return pair


def counter_key(pair: Pair) -> str:
    """The trading counter's key for a pair."""
    return pair.symbol if isinstance(pair, Instrument) else pair


def _format(value: Number | None, pair: Pair | None, precision: int | None, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):  # noqa: SIM101 (bool is an int)
        raise TypeError(f"{name}: pass a scaled int with an Instrument, a str or a Decimal")
    if isinstance(value, int):
        if precision is None or not isinstance(pair, Instrument):
            raise TypeError(f"{name}: a scaled int needs an Instrument for its precision")
        return format_scaled(value, precision)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name}: not a finite number: {value}")
        return format(value, "f")
    return value


def _price(value: Number | None, pair: Pair | None, name: str = "price") -> Any:
    precision = pair.price_precision if isinstance(pair, Instrument) else None
    return _format(value, pair, precision, name)


def _qty(value: Number | None, pair: Pair | None, name: str = "volume") -> Any:
    precision = pair.qty_precision if isinstance(pair, Instrument) else None
    return _format(value, pair, precision, name)


def _one_id(txid: str | None, cl_ord_id: str | None) -> dict[str, object]:
    if (txid is None) == (cl_ord_id is None):
        raise TypeError("give exactly one of txid and cl_ord_id")
    return {"txid": txid} if txid is not None else {"cl_ord_id": cl_ord_id}


def _flags(oflags: str | Iterable[str] | None) -> str | None:
    if oflags is None:
        return None
    text = oflags if isinstance(oflags, str) else ",".join(oflags)
    return text or None


_ADD_COST: Final = TradingCounter.add_cost()


class RestMethods:
    """Typed calls over ``public`` and ``private``, which ``KrakenRestClient`` provides."""

    async def public(
        self, method: str, params: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def private(
        self,
        method: str,
        params: Mapping[str, object] | None = None,
        *,
        trading: Sequence[TradingCharge] = (),
        body_format: Any = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    # -- public -------------------------------------------------------------------------

    async def server_time(self) -> dict[str, Any]:
        """``Time``: ``{"unixtime": int, "rfc1123": str}``."""
        return await self.public("Time")

    async def system_status(self) -> dict[str, Any]:
        return await self.public("SystemStatus")

    async def asset_pairs(self, pairs: Iterable[str] = ()) -> dict[str, Any]:
        """``AssetPairs``, all of them or the named ones (REST names or altnames)."""
        names = ",".join(pairs)
        return await self.public("AssetPairs", {"pair": names or None})

    async def depth(self, pair: Pair, count: int | None = None) -> dict[str, Any]:
        return await self.public("Depth", {"pair": wire_pair(pair), "count": count})

    # -- account ------------------------------------------------------------------------

    async def balance(self) -> dict[str, Any]:
        """``Balance``: asset → amount (exact ``Decimal`` if Kraken sends numbers, else str)."""
        return await self.private("Balance")

    async def get_websockets_token(self) -> dict[str, Any]:
        """``GetWebSocketsToken``: ``{"token": str, "expires": int}``."""
        return await self.private("GetWebSocketsToken")

    # -- orders -------------------------------------------------------------------------

    async def add_order(
        self,
        pair: Pair,
        side: str,
        ordertype: str,
        volume: Number,
        price: Number | None = None,
        *,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        oflags: str | Iterable[str] | None = None,
        timeinforce: str | None = None,
        price2: Number | None = None,
        expiretm: str | int | None = None,
        deadline: str | None = None,
        reduce_only: bool | None = None,
        validate: bool = False,
        extra: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """``AddOrder``. Never retried on a transient failure: a timeout or 5xx raises
        ``OrderStateUnknown`` and the caller looks the order up by ``cl_ord_id``."""
        if cl_ord_id is not None and userref is not None:
            raise TypeError("cl_ord_id and userref are mutually exclusive")
        if (
            type(pair) is Instrument
            and type(volume) is int
            and (price is None or type(price) is int)
            and (oflags is None or type(oflags) is str)
            and price2 is None
            and userref is None
            and expiretm is None
            and deadline is None
            and reduce_only is None
            and extra is None
            and not validate
        ):  # the engine's shape: the same fields in the same order, built directly
            name = pair.altname or pair.rest_name or pair.symbol
            vol = format_scaled(volume, pair.qty_precision)
            fast: dict[str, object] = {
                "pair": name, "type": side, "ordertype": ordertype, "volume": vol
            }  # fmt: skip
            text = f"pair={name}&type={side}&ordertype={ordertype}&volume={vol}"
            if price is not None:
                fast["price"] = p = format_scaled(price, pair.price_precision)
                text += f"&price={p}"
            if cl_ord_id is not None:
                fast["cl_ord_id"] = cl_ord_id
                text += f"&cl_ord_id={cl_ord_id}"
            if oflags:
                fast["oflags"] = oflags
                text += f"&oflags={oflags.replace(',', '%2C')}"  # quote_plus's ","
            if timeinforce is not None:
                fast["timeinforce"] = timeinforce
                text += f"&timeinforce={timeinforce}"
            form = FormFields.of(fast, text)  # None if some value needs quoting
            charges = ((pair.symbol, _ADD_COST),)
            return await self.private("AddOrder", fast if form is None else form, trading=charges)
        params: dict[str, object] = {
            "pair": wire_pair(pair),
            "type": side,
            "ordertype": ordertype,
            "volume": _qty(volume, pair),
            "price": _price(price, pair),
            "price2": _price(price2, pair, "price2"),
            "cl_ord_id": cl_ord_id,
            "userref": userref,
            "oflags": _flags(oflags),
            "timeinforce": timeinforce,
            "expiretm": expiretm,
            "deadline": deadline,
            "reduce_only": reduce_only,
            "validate": True if validate else None,
            **(extra or {}),
        }
        charge = (counter_key(pair), TradingCounter.add_cost())
        return await self.private("AddOrder", _present(params), trading=[charge])

    async def add_order_batch(
        self,
        pair: Pair,
        orders: Sequence[Mapping[str, object]],
        *,
        deadline: str | None = None,
        validate: bool = False,
    ) -> dict[str, Any]:
        """``AddOrderBatch`` (2 to 15 orders, one pair), sent as JSON. Each order is a
        mapping of Kraken's fields with prices and volumes already as strings."""
        params: dict[str, object] = {
            "pair": wire_pair(pair),
            "orders": [dict(o) for o in orders],
            "deadline": deadline,
            "validate": True if validate else None,
        }
        charge = (counter_key(pair), TradingCounter.batch_add_cost(len(orders)))
        return await self.private(
            "AddOrderBatch", _present(params), trading=[charge], body_format="json"
        )

    async def amend_order(
        self,
        pair: Pair,
        *,
        order_age_s: float,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        order_qty: Number | None = None,
        limit_price: Number | None = None,
        trigger_price: Number | None = None,
        display_qty: Number | None = None,
        post_only: bool | None = None,
        deadline: str | None = None,
    ) -> dict[str, Any]:
        """``AmendOrder`` in place (keeps queue priority). ``pair`` is not sent: it names the
        trading counter to charge. Never retried on a transient failure."""
        params: dict[str, object] = {
            **_one_id(txid, cl_ord_id),
            "order_qty": _qty(order_qty, pair, "order_qty"),
            "display_qty": _qty(display_qty, pair, "display_qty"),
            "limit_price": _price(limit_price, pair, "limit_price"),
            "trigger_price": _price(trigger_price, pair, "trigger_price"),
            "post_only": post_only,
            "deadline": deadline,
        }
        charge = (counter_key(pair), TradingCounter.amend_cost(order_age_s))
        return await self.private("AmendOrder", _present(params), trading=[charge])

    async def cancel_order(
        self,
        pair: Pair,
        *,
        order_age_s: float,
        txid: str | None = None,
        cl_ord_id: str | None = None,
    ) -> dict[str, Any]:
        """``CancelOrder`` by txid or cl_ord_id: ``{"count": n, "pending": bool}``.
        ``pair`` is not sent: it names the trading counter to charge."""
        charge = (counter_key(pair), TradingCounter.cancel_cost(order_age_s))
        return await self.private("CancelOrder", _one_id(txid, cl_ord_id), trading=[charge])

    async def cancel_order_batch(
        self,
        pair: Pair,
        *,
        ages_s: Sequence[float],
        txids: Sequence[str] = (),
        cl_ord_ids: Sequence[str] = (),
    ) -> dict[str, Any]:
        """``CancelOrderBatch`` (up to 50 orders, by txid and/or ``cl_ord_id``), sent as
        JSON: ``{"count": n}``. ``pair`` is not sent: it names the trading counter to
        charge, each order by its age (``ages_s``) as Kraken's batch cancel does."""
        if not 1 <= len(txids) + len(cl_ord_ids) <= 50:
            raise ValueError("CancelOrderBatch takes 1 to 50 orders")
        params: dict[str, object] = {
            "orders": list(txids) or None,
            "cl_ord_ids": list(cl_ord_ids) or None,
        }
        charge = (counter_key(pair), TradingCounter.batch_cancel_cost(ages_s))
        return await self.private(
            "CancelOrderBatch", _present(params), trading=[charge], body_format="json"
        )

    async def cancel_all(self, pairs: Iterable[Pair] = ()) -> dict[str, Any]:
        """``CancelAll``: ``{"count": n}``. ``pairs``: those with open orders, each charged
        +1 on its trading counter as Kraken does."""
        charges = [(counter_key(p), TradingCounter.cancel_all_cost()) for p in pairs]
        return await self.private("CancelAll", trading=charges)

    async def cancel_all_orders_after(self, timeout_s: int) -> dict[str, Any]:
        """``CancelAllOrdersAfter`` (dead man's switch): ``{"currentTime", "triggerTime"}``.
        ``0`` disarms it; Kraken wants less than 86400."""
        if isinstance(timeout_s, bool) or not 0 <= timeout_s < 86400:
            raise ValueError(f"timeout must be 0..86399 s, got {timeout_s!r}")
        charge = (ACCOUNT_WIDE, TradingCounter.cancel_all_orders_after_cost())
        return await self.private("CancelAllOrdersAfter", {"timeout": timeout_s}, trading=[charge])

    async def open_orders(
        self, *, trades: bool = False, cl_ord_id: str | None = None, userref: int | None = None
    ) -> dict[str, Any]:
        """``OpenOrders``: ``{"open": {txid: order}}``, optionally filtered."""
        params = {"trades": True if trades else None, "cl_ord_id": cl_ord_id, "userref": userref}
        return await self.private("OpenOrders", _present(params))

    async def query_orders(
        self,
        txids: Iterable[str] = (),
        *,
        cl_ord_id: str | None = None,
        trades: bool = False,
        userref: int | None = None,
    ) -> dict[str, Any]:
        """``QueryOrders``: ``{txid: order}`` for up to 50 txids and/or one cl_ord_id."""
        ids = list(txids)
        if not ids and cl_ord_id is None and userref is None:
            raise TypeError("give txids, cl_ord_id or userref")
        if len(ids) > 50:
            raise ValueError(f"QueryOrders takes at most 50 txids, got {len(ids)}")
        params = {
            "txid": ",".join(ids) or None,
            "cl_ord_id": cl_ord_id,
            "userref": userref,
            "trades": True if trades else None,
        }
        return await self.private("QueryOrders", _present(params))

    async def closed_orders(
        self,
        *,
        trades: bool = False,
        start: int | str | None = None,
        end: int | str | None = None,
        ofs: int | None = None,
        closetime: str | None = None,
        cl_ord_id: str | None = None,
    ) -> dict[str, Any]:
        """``ClosedOrders`` (50 per page): ``{"closed": {txid: order}, "count": n}``."""
        params = {
            "trades": True if trades else None,
            "start": start,
            "end": end,
            "ofs": ofs,
            "closetime": closetime,
            "cl_ord_id": cl_ord_id,
        }
        return await self.private("ClosedOrders", _present(params))

    async def trades_history(
        self,
        *,
        start: int | str | None = None,
        end: int | str | None = None,
        ofs: int | None = None,
        trade_type: str | None = None,
        trades: bool = False,
        consolidate_taker: bool = False,
    ) -> dict[str, Any]:
        """``TradesHistory`` (50 per page): ``{"trades": {id: trade}, "count": n}``.

        ``consolidate_taker`` is sent, False unless asked: Kraken's default (true) merges a
        taker order's matches into one trade, while the executions feed reports each match
        with its own ``exec_id``; the engine counts a fill once by its id, so a merged trade
        of an order with some matches already recorded would count them twice."""
        params = {
            "type": trade_type,
            "trades": True if trades else None,
            "start": start,
            "end": end,
            "ofs": ofs,
            "consolidate_taker": consolidate_taker,
        }
        return await self.private("TradesHistory", _present(params))


def _present(params: Mapping[str, object]) -> dict[str, object]:
    """The parameters that are set, in order (``None`` means "not sent")."""
    return {k: v for k, v in params.items() if v is not None}
