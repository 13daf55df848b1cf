"""The simulator's private WebSocket v2 endpoint, ``/v2-auth``: executions and order entry.

Every private request carries a token from ``GetWebSocketsToken`` (``params.token``). The
venue's ``TokenRegistry`` decides (KRAKEN.md §4): a token must be used within 900 s of its
creation and stays valid while a subscription on it lives; an unknown, stale or revoked
token is answered with ``EAPI:Invalid token`` (the registry's string; Kraken's SDK also
names ``ESession:Invalid session``). The socket stays open either way.

``executions`` (KRAKEN.md §5.7): ``subscribe`` with ``snap_orders`` (default true),
``snap_trades`` (default false), ``order_status`` (default true: every transition;
false: only ``new``/``filled``/``canceled``/``expired``) and ``ratecounter`` (default
false; true: every execution report, snapshot included, carries ``ratecount``, the
account's trading counter on the report's pair right after the request that caused it,
as the v1 ``openOrders`` channel carried it on each order; Kraken's v2 page says only
that "the rate-limit counter is included in the stream"). The ack carries
``maxratecount`` (the venue tier's trading limit). Then a snapshot (open orders, then the
last 50 fills newest first) and one update message per execution report, each numbered by
``sequence`` (1 for the snapshot, +1 per message). Reports are sparse, as Kraken's are:
``pending_new`` carries the whole order, ``new`` little more than ids and status,
``trade`` the fill (``exec_id``, ``trade_id``, ``last_qty``, ``last_price``, ``cost``,
``liquidity_ind``, ``fees``, ``fee_usd_equiv``) and the order's cumulative figures,
``filled``/``canceled``/``expired`` the final figures and ``reason``, ``amended`` the new
qty and price. Numbers are exact JSON numbers (``Decimal`` through ``codec.dumps``).

The ``revoke_token`` fault sends ``EAPI:Invalid token`` as a failed ``subscribe`` for
``executions`` and stops the feed; the token is refused on this connection from then on,
and a subscribe with a fresh token starts a new feed (snapshot, sequence from 1).

Also served: ``cancel_all_orders_after`` (``currentTime``/``triggerTime`` from the venue's
dead-man's switch), ``add_order``, ``amend_order``, ``edit_order``, ``cancel_order``,
``cancel_all``, ``batch_add`` and ``batch_cancel`` through the venue's order entry (same
checks, errors and rate limits as REST). A connection's own
``add_order`` answer is sent before the execution reports it caused.

This module owns the private channel and the rendering of execution reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bot.errors import ExchangeError, ProtocolError, TokenError
from bot.kraken.codec import dumps, loads_exact
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled, to_scaled
from bot.sim.error_table import price_decimals
from bot.sim.exchange import Exchange
from bot.sim.keys import ERR_PERMISSION, WS_PERMISSIONS, allowed
from bot.sim.limits import TRADING_TIERS
from bot.sim.matching import ExecEvent, Fill, OrderRequest, OrderState
from bot.sim.tokens import INVALID_TOKEN
from bot.sim.ws_common import MAX_QUEUE, WsSession, accept, rfc3339, venue_of

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = [
    "PrivateSession",
    "execution_report",
    "fill_report",
    "order_report",
    "private_ws_handler",
]

ERR_ARGS: Final = "EGeneral:Invalid arguments"
ERR_CHANNEL: Final = "Subscription name invalid"
ERR_DUPLICATE: Final = "Already subscribed"
ERR_NOT_FOUND: Final = "Subscription Not Found"
SNAP_TRADES: Final = 50
_OPEN_CLOSE: Final = frozenset({"new", "filled", "canceled", "expired"})
_TIF: Final = {"gtc": "GTC", "gtd": "GTD", "ioc": "IOC", "fok": "FOK"}
_STP: Final = {
    "cancel_newest": "cancel-newest",
    "cancel_oldest": "cancel-oldest",
    "cancel_both": "cancel-both",
}
_USD_QUANTUM: Final = Decimal("0.0001")


class _Reports:
    """Turns the exchange's values into Kraken's execution reports for one venue."""

    def __init__(self, exchange: Exchange, instruments: InstrumentTable) -> None:
        self.exchange = exchange
        self.instruments = instruments

    def usd(self, amount: Decimal, asset: str) -> Decimal:
        """``fee_usd_equiv``: the amount at the asset's USD best bid (0 with no such pair)."""
        if asset == "USD":
            return amount
        inst = self.instruments.lookup(f"{asset}/USD")
        bid = self.exchange.book(inst.symbol).best_bid() if inst is not None else None
        if inst is None or bid is None:
            return Decimal(0)
        value = amount * from_scaled(bid, inst.price_precision)
        return value.quantize(_USD_QUANTUM, ROUND_HALF_EVEN)

    def price(self, symbol: str, n: int) -> Decimal:
        return from_scaled(n, self.instruments[symbol].price_precision)

    def qty(self, symbol: str, n: int) -> Decimal:
        return from_scaled(n, self.instruments[symbol].qty_precision)


def _ids(order: OrderState) -> dict[str, Any]:
    out: dict[str, Any] = {"order_id": order.txid}
    if order.cl_ord_id is not None:
        out["cl_ord_id"] = order.cl_ord_id
    out["order_userref"] = order.userref or 0
    return out


def order_report(r: _Reports, order: OrderState, exec_type: str, timestamp: int) -> dict[str, Any]:
    """The whole order, as ``pending_new`` and the snapshot show it."""
    sym = order.symbol
    out = _ids(order)
    out.update(
        symbol=sym,
        side=order.side,
        order_type=order.ord_type,
        order_qty=r.qty(sym, order.qty),
        time_in_force=order.time_in_force,
        exec_type=exec_type,
        order_status=order.order_status,
    )
    if order.price is not None:
        out["limit_price_type"] = "static"
        out["limit_price"] = r.price(sym, order.price)
    if order.post_only:
        out["post_only"] = True
    if order.expire_at is not None:
        out["expire_time"] = rfc3339(order.expire_at)
    out["cum_qty"] = r.qty(sym, order.filled)
    out["cum_cost"] = order.cost
    if order.avg_price is not None:
        out["avg_price"] = order.avg_price
    out["fee_usd_equiv"] = r.usd(order.fee, order.fee_asset)
    out["fee_ccy_pref"] = "fcib" if order.fee_in_base else "fciq"
    out["timestamp"] = rfc3339(timestamp)
    return out


def fill_report(r: _Reports, order: OrderState, fill: Fill) -> dict[str, Any]:
    """A ``trade`` report: the fill and the order's cumulative figures after it."""
    sym = fill.symbol
    out = _ids(order)
    out.update(
        exec_id=fill.exec_id,
        exec_type="trade",
        trade_id=fill.trade_id,
        symbol=sym,
        side=fill.side,
        last_qty=r.qty(sym, fill.qty),
        last_price=r.price(sym, fill.price),
        liquidity_ind=fill.liquidity,
        cost=fill.cost,
        order_status=order.order_status,
        order_type=order.ord_type,
        timestamp=rfc3339(fill.timestamp),
        cum_qty=r.qty(sym, order.filled),
        cum_cost=order.cost,
        avg_price=order.avg_price if order.avg_price is not None else Decimal(0),
        fee_usd_equiv=r.usd(fill.fee, fill.fee_asset),
        fees=[{"asset": fill.fee_asset, "qty": fill.fee}],
        fee_ccy_pref="fcib" if order.fee_in_base else "fciq",
    )
    return out


def execution_report(r: _Reports, event: ExecEvent) -> dict[str, Any]:
    """One execution report, as sparse as Kraken's for its ``exec_type``."""
    order = event.order
    kind = event.exec_type
    if kind == "pending_new":
        return order_report(r, order, kind, event.timestamp)
    if kind == "trade" and event.fill is not None:
        return fill_report(r, order, event.fill)
    sym = order.symbol
    out: dict[str, Any] = {
        "timestamp": rfc3339(event.timestamp),
        "order_status": order.order_status,
        "exec_type": kind,
    }
    if kind in ("amended", "restated"):
        out["cum_qty"] = r.qty(sym, order.filled)
        out["reason"] = event.reason or ("User requested" if kind == "amended" else "")
        if kind == "amended":
            out["amended"] = True
        out["order_qty"] = r.qty(sym, order.qty)
        if order.price is not None:
            out["limit_price"] = r.price(sym, order.price)
            out["limit_price_type"] = "static"
    elif kind != "new":
        out["cum_qty"] = r.qty(sym, order.filled)
        out["cum_cost"] = order.cost
        out["fee_usd_equiv"] = r.usd(order.fee, order.fee_asset)
        out["avg_price"] = order.avg_price if order.avg_price is not None else Decimal(0)
        reason = event.reason or order.reason
        if reason:
            out["reason"] = reason
    if order.post_only:
        out["post_only"] = True
    out.update(_ids(order))
    return out


class _Feed:
    """One live ``executions`` subscription."""

    __slots__ = ("account", "order_status", "ratecounter", "sequence", "token", "unsubscribe")

    def __init__(self, account: str, token: str, order_status: bool, ratecounter: bool) -> None:
        self.account = account
        self.token = token
        self.order_status = order_status
        self.ratecounter = ratecounter
        self.sequence = 0
        self.unsubscribe: Callable[[], None] | None = None


class PrivateSession(WsSession):
    """One ``/v2-auth`` connection."""

    kind = "private"

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        venue: SimVenue,
        *,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        super().__init__(ws, request, venue, max_queue=max_queue)
        self.reports = _Reports(venue.exchange, venue.instruments)
        self.feed: _Feed | None = None
        self.revoked: set[str] = set()
        self._held: list[bytes] | None = None
        self.maxratecount = TRADING_TIERS[venue.tier].maximum

    # -- requests ---------------------------------------------------------------------------

    def handle(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> bool:
        handler = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "cancel_all_orders_after": self._cancel_after,
            "add_order": self._add_order,
            "amend_order": self._amend_order,
            "cancel_order": self._cancel_order,
            "cancel_all": self._cancel_all,
            "batch_add": self._batch_add,
            "batch_cancel": self._batch_cancel,
            "edit_order": self._edit_order,
        }.get(method)
        if handler is None:
            return False
        if method in ("add_order", "amend_order", "batch_add", "edit_order"):
            # Quantities and prices must arrive exactly: decode the request's text again.
            try:
                params = loads_exact(raw).get("params", {})
            except ProtocolError:
                self.fail(method, ERR_ARGS, req_id, time_in)
                return True
        handler(params, req_id, time_in)
        return True

    def _account(
        self,
        method: str,
        params: dict[str, Any],
        req_id: int | None,
        time_in: str,
        action: str | None = None,
    ) -> str | None:
        """The account of the request's token, or None after sending Kraken's error. The
        token's key must hold a permission ``action`` (default: ``method``) needs."""
        token = params.get("token")
        if type(token) is not str or not token:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return None
        if token in self.revoked:
            self.fail(method, INVALID_TOKEN, req_id, time_in)
            return None
        try:
            account = self.venue.tokens.check(token, self.venue.monotonic())
        except TokenError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return None
        needed = WS_PERMISSIONS.get(action or method, ())
        if not allowed(self.venue.tokens.permissions(token), needed):
            self.fail(method, ERR_PERMISSION, req_id, time_in)
            return None
        return account

    # -- executions -------------------------------------------------------------------------

    def _subscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        channel = params.get("channel")
        if channel != "executions":
            self.fail(
                "subscribe", ERR_CHANNEL if type(channel) is str else ERR_ARGS, req_id, time_in
            )
            return
        flags = {}
        for name, legacy, default in (
            ("snap_orders", "snapshot", True),
            ("snap_trades", "snapshot_trades", False),
            ("order_status", None, True),
            ("ratecounter", None, False),
        ):
            value = params.get(name, params.get(legacy, default) if legacy else default)
            if type(value) is not bool:
                self.fail("subscribe", ERR_ARGS, req_id, time_in)
                return
            flags[name] = value
        if self._account("subscribe", params, req_id, time_in, channel) is None:
            return
        if self.feed is not None:
            self.fail("subscribe", ERR_DUPLICATE, req_id, time_in)
            return
        token: str = params["token"]
        try:
            account = self.venue.tokens.attach(token, self.venue.monotonic())
        except TokenError as exc:
            self.fail("subscribe", exc.code, req_id, time_in)
            return
        self.account = account
        self.subscribed = True
        feed = self.feed = _Feed(account, token, flags["order_status"], flags["ratecounter"])
        result = {
            "channel": "executions",
            "maxratecount": self.maxratecount,
            "snap_orders": flags["snap_orders"],
            "snap_trades": flags["snap_trades"],
        }
        self.ack("subscribe", result, req_id, time_in)
        snapshot = self._snapshot(account, flags)
        if feed.ratecounter:
            for report in snapshot:
                report["ratecount"] = self._ratecount(account, report["symbol"])
        self._send_feed(feed, snapshot, snapshot=True)
        feed.unsubscribe = self.venue.bus.subscribe_private(account, self._on_events)

    def _snapshot(self, account: str, flags: dict[str, bool]) -> list[dict[str, Any]]:
        exchange = self.venue.exchange
        data: list[dict[str, Any]] = []
        if flags["snap_orders"]:
            for order in exchange.open_orders(account):
                kind = "pending_new" if order.order_status == "pending_new" else "new"
                data.append(order_report(self.reports, order, kind, order.opentm))
        if flags["snap_trades"]:
            for fill in reversed(exchange.trades(account)[-SNAP_TRADES:]):
                filled = exchange.order(account, fill.txid)
                if filled is not None:
                    data.append(fill_report(self.reports, filled, fill))
        return data

    def _on_events(self, events: tuple[ExecEvent, ...]) -> None:
        feed = self.feed
        if feed is None:
            return
        if not feed.order_status:
            events = tuple(e for e in events if e.exec_type in _OPEN_CLOSE)
        for event in events:  # one message per report, as Kraken numbers them
            report = execution_report(self.reports, event)
            if feed.ratecounter:
                report["ratecount"] = self._ratecount(feed.account, event.order.symbol)
            self._send_feed(feed, [report])

    def _ratecount(self, account: str, symbol: str) -> Decimal:
        """The account's trading counter on ``symbol`` now, in counts to two decimals
        (rounded up: a client reading it never under-counts)."""
        counter = self.venue.trading_counter(account)
        return Decimal(counter.value_centi(symbol, self.venue.monotonic())).scaleb(-2)

    def _send_feed(
        self, feed: _Feed, data: list[dict[str, Any]], *, snapshot: bool = False
    ) -> None:
        feed.sequence += 1
        body = {
            "channel": "executions",
            "type": "snapshot" if snapshot else "update",
            "data": data,
            "sequence": feed.sequence,
        }
        frame = dumps(body)
        if self._held is not None:
            self._held.append(frame)
        else:
            self.send(frame)

    def _stop_feed(self) -> _Feed | None:
        feed, self.feed = self.feed, None
        if feed is not None:
            if feed.unsubscribe is not None:
                feed.unsubscribe()
            self.venue.tokens.detach(feed.token, self.venue.monotonic())
        return feed

    def _unsubscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        channel = params.get("channel")
        if channel != "executions":
            self.fail(
                "unsubscribe", ERR_CHANNEL if type(channel) is str else ERR_ARGS, req_id, time_in
            )
            return
        if self._account("unsubscribe", params, req_id, time_in) is None:
            return
        if self._stop_feed() is None:
            self.fail("unsubscribe", ERR_NOT_FOUND, req_id, time_in)
            return
        self.ack("unsubscribe", {"channel": "executions"}, req_id, time_in)

    def revoke_token(self) -> None:
        """Fault: the feed's token is invalid now; tell the client and stop the feed."""
        feed = self._stop_feed()
        if feed is None:
            return
        self.revoked.add(feed.token)
        now = self.now()
        self.fail("subscribe", INVALID_TOKEN, None, now, result={"channel": "executions"})

    def release(self) -> None:
        self._stop_feed()

    # -- order entry ----------------------------------------------------------------------------

    def _cancel_after(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "cancel_all_orders_after"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        timeout = params.get("timeout")
        if type(timeout) is not int:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        try:
            current, trigger = self.venue.cancel_all_after(account, timeout)
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        self.ack(method, {"currentTime": current, "triggerTime": trigger}, req_id, time_in)

    def _add_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "add_order"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        try:
            req = self._order_request(params)
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        # Reports the order causes on this connection follow the answer, as Kraken's do.
        held: list[bytes] = []
        self._held = held
        try:
            result = self.venue.place_order(account, req)
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            result = None
        finally:
            self._held = None
        if result is not None:
            out: dict[str, Any] = {"order_id": result.order.txid if result.order else ""}
            if req.cl_ord_id is not None:
                out["cl_ord_id"] = req.cl_ord_id
            if req.userref is not None:
                out["order_userref"] = req.userref
            self.ack(method, out, req_id, time_in)
        for frame in held:
            self.send(frame)

    def _amend_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "amend_order"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        order_id = params.get("order_id")
        cl_ord_id = params.get("cl_ord_id")
        if (order_id is None) == (cl_ord_id is None):
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        found = (
            self.venue.exchange.order(account, order_id)
            if type(order_id) is str
            else self.venue.exchange.order_by_cl_ord_id(account, str(cl_ord_id))
        )
        if found is None:
            self.fail(method, "EOrder:Unknown order", req_id, time_in)
            return
        inst = self.venue.instruments[found.symbol]
        try:
            qty = params.get("order_qty")
            price = params.get("limit_price")
            new_qty = None if qty is None else _scaled(qty, inst.qty_precision, "order_qty")
            new_price = None if price is None else _ws_price(price, inst)
            result = self.venue.amend_order(
                account,
                txid=order_id if type(order_id) is str else None,
                cl_ord_id=cl_ord_id if type(cl_ord_id) is str else None,
                order_qty=new_qty,
                limit_price=new_price,
                post_only=params.get("post_only") is True,
            )
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        out: dict[str, Any] = {"amend_id": self.venue.new_id("T")}
        if result.order is not None:
            out["order_id"] = result.order.txid
            if result.order.cl_ord_id is not None:
                out["cl_ord_id"] = result.order.cl_ord_id
        self.ack(method, out, req_id, time_in)

    def _cancel_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "cancel_order"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        given = [
            (key, params[key])
            for key in ("order_id", "cl_ord_id", "order_userref")
            if params.get(key) is not None
        ]
        if len(given) != 1 or type(given[0][1]) is not list or not given[0][1]:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        key, values = given[0]
        for value in values:
            result: dict[str, Any] = {key: value}
            try:
                if key == "order_id":
                    self.venue.cancel_order(account, txid=str(value))
                elif key == "cl_ord_id":
                    self.venue.cancel_order(account, cl_ord_id=str(value))
                elif type(value) is int:
                    self.venue.cancel_order(account, userref=value)
                else:
                    self.fail(method, ERR_ARGS, req_id, time_in, result=result)
                    continue
            except ExchangeError as exc:
                self.fail(method, exc.code, req_id, time_in, result=result)
                continue
            self.ack(method, result, req_id, time_in)

    def _batch_add(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        """``batch_add``: 2-15 orders on one ``symbol``, validated as a whole, as AddOrderBatch."""
        method = "batch_add"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        orders = params.get("orders")
        symbol = params.get("symbol")
        if type(orders) is not list or not 2 <= len(orders) <= 15 or type(symbol) is not str:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        try:
            reqs = [self._order_request({**o, "symbol": symbol}) for o in orders]
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except (ExchangeError, TypeError) as exc:
            code = exc.code if isinstance(exc, ExchangeError) else ERR_ARGS
            self.fail(method, code, req_id, time_in)
            return
        held: list[bytes] = []
        self._held = held
        try:
            results = self.venue.place_batch(
                account, reqs[0].symbol, reqs, validate=params.get("validate") is True
            )
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            results = None
        finally:
            self._held = None
        if results is not None:
            out: list[dict[str, Any]] = []
            for req, res in zip(reqs, results, strict=True):
                if isinstance(res, ExchangeError):
                    out.append({"error": res.code})
                    continue
                entry: dict[str, Any] = {"order_id": res.order.txid if res.order else ""}
                if req.cl_ord_id is not None:
                    entry["cl_ord_id"] = req.cl_ord_id
                if req.userref is not None:
                    entry["order_userref"] = req.userref
                out.append(entry)
            self.ack_list(method, out, req_id, time_in)
        for frame in held:
            self.send(frame)

    def _batch_cancel(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        """``batch_cancel``: ``orders`` (order ids or userrefs) and ``cl_ord_id`` (a list),
        2-50 in all, as CancelOrderBatch (unknown ids are skipped; ``count`` tells)."""
        method = "batch_cancel"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        refs = params.get("orders") or []
        cl_ids = params.get("cl_ord_id") or []
        if (
            type(refs) is not list
            or type(cl_ids) is not list
            or not 2 <= len(refs) + len(cl_ids) <= 50
        ):
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        chosen: dict[str, OrderState] = {}
        for order in self.venue.exchange.open_orders(account):
            if (
                order.txid in refs
                or (order.userref is not None and order.userref in refs)
                or (order.cl_ord_id is not None and order.cl_ord_id in cl_ids)
            ):
                chosen[order.txid] = order
        try:
            count = self.venue.cancel_batch(account, list(chosen.values()))
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        self.ack(method, {"count": count}, req_id, time_in)

    def _edit_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        """``edit_order``: cancel-and-replace, as REST EditOrder (a new order id)."""
        method = "edit_order"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        order_id = params.get("order_id")
        symbol = params.get("symbol")
        found = self.venue.exchange.order(account, order_id) if type(order_id) is str else None
        if found is None or found.status not in ("pending", "open"):
            self.fail(method, "EOrder:Unknown order", req_id, time_in)
            return
        if symbol != found.symbol:
            self.fail(method, f"{ERR_ARGS}:symbol", req_id, time_in)
            return
        inst = self.venue.instruments[found.symbol]
        qty, price, userref = (params.get(k) for k in ("order_qty", "limit_price", "order_userref"))
        if userref is not None and type(userref) is not int:
            self.fail(method, f"{ERR_ARGS}:order_userref", req_id, time_in)
            return
        try:
            _, placed = self.venue.edit_order(
                account,
                found,
                qty=None if qty is None else _scaled(qty, inst.qty_precision, "order_qty"),
                price=None if price is None else _ws_price(price, inst),
                post_only=params.get("post_only")
                if type(params.get("post_only")) is bool
                else None,
                userref=userref,
                validate=params.get("validate") is True,
            )
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        out = {"order_id": placed.order.txid if placed.order else "", "original_order_id": order_id}
        self.ack(method, out, req_id, time_in)

    def _cancel_all(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "cancel_all"
        account = self._account(method, params, req_id, time_in)
        if account is None:
            return
        try:
            result = self.venue.cancel_all(account)
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        self.ack(method, {"count": result.count}, req_id, time_in)

    def _order_request(self, params: dict[str, Any]) -> OrderRequest:
        symbol = params.get("symbol")
        inst = self.venue.instruments.lookup(symbol) if type(symbol) is str else None
        if inst is None or inst.symbol != symbol:
            raise ProtocolError("EQuery:Unknown asset pair")
        qty = params.get("order_qty")
        price = params.get("limit_price")
        tif = params.get("time_in_force", "gtc")
        expire = params.get("expire_time")
        cl_ord_id = params.get("cl_ord_id")
        userref = params.get("order_userref")
        scaled_qty = _scaled(qty, inst.qty_precision, "order_qty")
        scaled_price = None if price is None else _ws_price(price, inst)
        expire_at = None
        if expire is not None:
            try:
                expire_at = int(dt.datetime.fromisoformat(str(expire)).timestamp()) * 10**9
            except ValueError:
                raise ProtocolError(f"{ERR_ARGS}:expire_time") from None
        if type(tif) is not str or tif.lower() not in _TIF:
            raise ProtocolError(f"{ERR_ARGS}:time_in_force")
        if cl_ord_id is not None and type(cl_ord_id) is not str:
            raise ProtocolError(f"{ERR_ARGS}:cl_ord_id")
        if userref is not None and type(userref) is not int:
            raise ProtocolError(f"{ERR_ARGS}:order_userref")
        stp = _STP.get(str(params.get("stp_type", "cancel_newest")))
        if stp is None:
            raise ProtocolError(f"{ERR_ARGS}:stp_type")
        return OrderRequest(
            symbol=inst.symbol,
            side=str(params.get("side")),
            ord_type=str(params.get("order_type")),
            qty=scaled_qty,
            price=scaled_price,
            time_in_force=_TIF[tif.lower()],
            expire_at=expire_at,
            post_only=params.get("post_only") is True,
            fee_in_base=params.get("fee_preference") == "base",
            cl_ord_id=cl_ord_id,
            userref=userref,
            stptype=stp,
            validate=params.get("validate") is True,
        )


def _ws_price(value: Any, inst: Instrument) -> int:
    """``limit_price``, with REST's error for too many decimals."""
    if isinstance(value, Decimal) and value.is_finite():
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > inst.price_precision:
            raise price_decimals(inst)
    return _scaled(value, inst.price_precision, "limit_price")


def _scaled(value: Any, precision: int, name: str) -> int:
    """A request's number as a scaled int, or Kraken's argument error naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ProtocolError(f"{ERR_ARGS}:{name}")
    try:
        return to_scaled(value, precision)
    except ProtocolError:
        raise ProtocolError(f"{ERR_ARGS}:{name}") from None


async def private_ws_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /v2-auth``: Kraken's authenticated WebSocket v2 on the simulator."""
    venue = venue_of(request)
    return await accept(request, lambda ws: PrivateSession(ws, request, venue))
