"""The simulator's private WebSocket v2 endpoint (``ws_private``: ``/v2``; ``/v2-auth`` on
the main port): ``executions``, ``balances``, ``level3`` and order entry.

Every request carries a token (``ws_auth``: checked, with the key's permissions).

``executions`` (https://docs.kraken.com/api/docs/websocket-v2/executions, KRAKEN.md §5.7):
``subscribe`` with ``snap_orders`` (default true), ``snap_trades`` (default false),
``order_status`` (default true: every transition; false: only ``new``/``filled``/
``canceled``/``expired``) and ``ratecounter`` (default false; true: every execution
report, snapshot included, carries ``ratecount``, the account's trading counter on the
report's pair right after the request that caused it, as the v1 ``openOrders`` channel
carried it on each order; Kraken's v2 page says only that "the rate-limit counter is
included in the stream"). The ack carries ``maxratecount`` (the venue tier's trading
limit). Then a snapshot (open orders, then the last 50 fills newest first) and one update
message per execution report (``ws_reports``), each numbered by ``sequence`` (1 for the
snapshot, +1 per message).

``balances`` (https://docs.kraken.com/api/docs/websocket-v2/balances): ``snapshot``
(default true) and the token of a key that may query funds. The ack is ``{"channel":
"balances", "snapshot"}``; the snapshot lists the account's assets, then each fill streams
its ledger entries (``ws_balances``), one message per fill, numbered by ``sequence`` as
``executions`` numbers its messages.

``level3`` is ``ws_level3``'s (also served on its own endpoint).

The ``revoke_token`` fault ends every subscription of the connection, each told with
``EAPI:Invalid token`` as a failed ``subscribe`` naming its channel; the token is refused
on this connection from then on, and a subscribe with a fresh token starts a new feed
(snapshot, sequence from 1).

The order methods are ``ws_orders``'; the channel frames a request causes on this
connection follow its answer. This module owns the private channels' subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bot.kraken.codec import dumps
from bot.sim.limits import TRADING_TIERS
from bot.sim.matching import ExecEvent
from bot.sim.tokens import INVALID_TOKEN
from bot.sim.ws_auth import ERR_ARGS, ERR_CHANNEL, ERR_DUPLICATE, ERR_NOT_FOUND
from bot.sim.ws_balances import balance_assets, ledger_entries
from bot.sim.ws_common import MAX_QUEUE, accept, venue_of
from bot.sim.ws_level3 import Level3Subscriptions
from bot.sim.ws_orders import ORDER_METHODS, OrderMethods
from bot.sim.ws_reports import Reports, execution_report, fill_report, order_report

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = ["CHANNELS", "PrivateSession", "private_ws_handler"]

SNAP_TRADES: Final = 50
_OPEN_CLOSE: Final = frozenset({"new", "filled", "canceled", "expired"})
CHANNELS: Final = ("executions", "balances", "level3")


class _Feed:
    """One live ``executions`` or ``balances`` subscription."""

    __slots__ = ("account", "order_status", "ratecounter", "sequence", "token", "unsubscribe")

    def __init__(
        self, account: str, token: str, *, order_status: bool = True, ratecounter: bool = False
    ) -> None:
        self.account = account
        self.token = token
        self.order_status = order_status
        self.ratecounter = ratecounter
        self.sequence = 0
        self.unsubscribe: Callable[[], None] | None = None


class PrivateSession(OrderMethods):
    """One connection to the private endpoint."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        venue: SimVenue,
        *,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        super().__init__(ws, request, venue, max_queue=max_queue)
        self.reports = Reports(venue.exchange, venue.instruments)
        self.feed: _Feed | None = None
        """The ``executions`` subscription."""
        self.balances: _Feed | None = None
        self.level3 = Level3Subscriptions(self)
        self.maxratecount = TRADING_TIERS[venue.tier].maximum

    # -- requests ---------------------------------------------------------------------------

    def handle(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> bool:
        if method in ORDER_METHODS:
            self.order_method(method, params, req_id, time_in, raw)
            return True
        if method not in ("subscribe", "unsubscribe"):
            return False
        channel = params.get("channel")
        if channel not in CHANNELS:
            self.fail(method, ERR_CHANNEL if type(channel) is str else ERR_ARGS, req_id, time_in)
        elif channel == "level3":
            if method == "subscribe":
                self.level3.subscribe(params, req_id, time_in)
            else:
                self.level3.unsubscribe(params, req_id, time_in)
        elif method == "subscribe":
            if channel == "executions":
                self._subscribe(params, req_id, time_in)
            else:
                self._subscribe_balances(params, req_id, time_in)
        else:
            self._unsubscribe(channel, params, req_id, time_in)
        return True

    def _start(
        self, channel: str, params: dict[str, Any], req_id: int | None, time_in: str
    ) -> tuple[str, str] | None:
        """Checks common to a subscription: (account, token), or None after the error."""
        if self.account_of("subscribe", params, req_id, time_in, channel) is None:
            return None
        if (self.feed if channel == "executions" else self.balances) is not None:
            self.fail("subscribe", ERR_DUPLICATE, req_id, time_in)
            return None
        token: str = params["token"]
        account = self.attach("subscribe", token, req_id, time_in)
        if account is None:
            return None
        self.account = account
        self.subscribed = True
        return account, token

    # -- executions -------------------------------------------------------------------------

    def _subscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
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
        started = self._start("executions", params, req_id, time_in)
        if started is None:
            return
        account, token = started
        feed = self.feed = _Feed(
            account, token, order_status=flags["order_status"], ratecounter=flags["ratecounter"]
        )
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
        self._send_feed("executions", feed, snapshot, snapshot=True)
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
            self._send_feed("executions", feed, [report])

    def _ratecount(self, account: str, symbol: str) -> Decimal:
        """The account's trading counter on ``symbol`` now, in counts to two decimals
        (rounded up: a client reading it never under-counts)."""
        counter = self.venue.trading_counter(account)
        return Decimal(counter.value_centi(symbol, self.venue.monotonic())).scaleb(-2)

    def _send_feed(
        self, channel: str, feed: _Feed, data: list[dict[str, Any]], *, snapshot: bool = False
    ) -> None:
        feed.sequence += 1
        body = {
            "channel": channel,
            "type": "snapshot" if snapshot else "update",
            "data": data,
            "sequence": feed.sequence,
        }
        self.send_channel(dumps(body))

    # -- balances ---------------------------------------------------------------------------

    def _subscribe_balances(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        snapshot = params.get("snapshot", True)
        if type(snapshot) is not bool:
            self.fail("subscribe", ERR_ARGS, req_id, time_in)
            return
        started = self._start("balances", params, req_id, time_in)
        if started is None:
            return
        account, token = started
        feed = self.balances = _Feed(account, token)
        self.ack("subscribe", {"channel": "balances", "snapshot": snapshot}, req_id, time_in)
        if snapshot:
            totals = self.venue.exchange.balances(account)
            self._send_feed("balances", feed, balance_assets(totals), snapshot=True)
        feed.unsubscribe = self.venue.bus.subscribe_private(account, self._on_ledger)

    def _on_ledger(self, events: tuple[ExecEvent, ...]) -> None:
        feed = self.balances
        if feed is None:
            return
        instruments = self.venue.instruments
        fills = [(e.fill, instruments[e.fill.symbol]) for e in events if e.fill is not None]
        if not fills:
            return
        entries = ledger_entries(fills, self.venue.exchange.balances(feed.account))
        for i in range(0, len(entries), 2):  # one message per fill: its base and quote entries
            self._send_feed("balances", feed, entries[i : i + 2])

    # -- ending subscriptions ---------------------------------------------------------------

    def _stop(self, channel: str) -> _Feed | None:
        feed = self.feed if channel == "executions" else self.balances
        if channel == "executions":
            self.feed = None
        else:
            self.balances = None
        if feed is not None:
            if feed.unsubscribe is not None:
                feed.unsubscribe()
            self.detach(feed.token)
        return feed

    def _unsubscribe(
        self, channel: str, params: dict[str, Any], req_id: int | None, time_in: str
    ) -> None:
        if self.account_of("unsubscribe", params, req_id, time_in) is None:
            return
        if self._stop(channel) is None:
            self.fail("unsubscribe", ERR_NOT_FOUND, req_id, time_in)
            return
        self.ack("unsubscribe", {"channel": channel}, req_id, time_in)

    def revoke_token(self) -> None:
        """Fault: the tokens are invalid now; tell the client and end every subscription."""
        for channel in ("executions", "balances"):
            feed = self._stop(channel)
            if feed is not None:
                self.revoked.add(feed.token)
                now = self.now()
                self.fail("subscribe", INVALID_TOKEN, None, now, result={"channel": channel})
        self.level3.revoke()

    def release(self) -> None:
        self.cancel_delayed()
        self._stop("executions")
        self._stop("balances")
        self.level3.release()


async def private_ws_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /v2`` on the private port (``/v2-auth`` on the main one): Kraken's
    ``wss://ws-auth.kraken.com/v2`` on the simulator."""
    venue = venue_of(request)
    return await accept(request, lambda ws: PrivateSession(ws, request, venue))
