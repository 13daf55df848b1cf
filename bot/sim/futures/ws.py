"""The Futures simulator's WebSocket v1 at ``/ws/v1``: public and private feeds.

One connection carries everything, as on Kraken
(https://docs.kraken.com/api/docs/guides/futures-websockets). On connect the server sends
``{"event": "info", "version": 1}``. Requests:

- ``challenge`` (with ``api_key``) → ``{"event": "challenge", "message": <uuid>}``: one
  challenge per connection (a new request replaces it);
- ``subscribe``/``unsubscribe`` of ``book``, ``trade``, ``ticker`` (with
  ``product_ids``) and ``heartbeat``; and of the private ``open_orders``, ``fills``,
  ``open_positions`` and ``balances``, which must carry ``api_key``,
  ``original_challenge`` (this connection's challenge) and ``signed_challenge``; a bad
  one gets ``{"event": "alert", "message": "Failed to subscribe to authenticated feed"}``.

Acks are ``subscribed``/``unsubscribed``; unknown feeds get ``Invalid feed``, unknown
products ``Invalid product id``, unreadable requests ``Json Error`` (each as
``{"event": "error", "message": …}``). Each subscription starts with a snapshot
(``book_snapshot`` with the product's ``seq``, ``trade_snapshot``, a first ``ticker``,
``open_orders_snapshot``, ``fills_snapshot``, ``open_positions``, ``balances_snapshot``),
then deltas: every changed book level as one ``book`` frame with the next ``seq`` (the
venue numbers them, so every connection sees the same numbers), every trade, the ticker
every ``ticker_interval_s``, ``heartbeat`` every ``heartbeat_s``, and the account's order
updates, fills, positions and balances as they change.

Faults (``ws_drop``, ``ws_silence``, ``book_gap``) act through ``drop``, ``silence`` and
``skip_book_delta``. This module owns the connection and the frames.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any, Final

import structlog
from aiohttp import WSMsgType, web

from bot.kraken.codec import dumps
from bot.sim.futures.auth import challenge_matches
from bot.sim.futures.render import ms, ws_fill, ws_flex, ws_order, ws_position
from bot.sim.futures.tickers import ws_ticker
from bot.sim.futures.venue import FUTURES_VENUE_KEY, FuturesVenue, Published

__all__ = ["FuturesWsSession", "futures_ws_handler"]

log = structlog.get_logger("sim.futures.ws")

AUTH_FAILED: Final = "Failed to subscribe to authenticated feed"
_PUBLIC: Final = frozenset({"book", "trade", "ticker", "heartbeat"})
_PRIVATE: Final = frozenset({"open_orders", "fills", "open_positions", "balances"})
_MAX_QUEUE: Final = 100_000
_ids = itertools.count(1)


class FuturesWsSession:
    """One accepted WebSocket (see the module docstring)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, venue: FuturesVenue):
        self.ws = ws
        self.request = request
        self.venue = venue
        self.conn_id = str(next(_ids))
        self.account: str | None = None
        self.public: dict[str, set[str]] = {"book": set(), "trade": set(), "ticker": set()}
        self.heartbeat = False
        self.private: set[str] = set()
        self.challenge: str | None = None
        self.closed = False
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._silent_until = 0.0
        self._skip: set[str | None] = set()
        self._seq = itertools.count(1)

    # -- sending ---------------------------------------------------------------------
    def send(self, obj: dict[str, Any]) -> None:
        if self.closed or self.venue.monotonic() < self._silent_until:
            return
        if self._queue.qsize() >= _MAX_QUEUE:  # a slow consumer is dropped, as on Kraken
            self._abort()
            return
        self._queue.put_nowait(dumps(obj))

    async def _writer(self) -> None:
        while True:
            frame = await self._queue.get()
            await self.ws.send_str(frame.decode("utf-8"))

    # -- faults ----------------------------------------------------------------------
    async def drop(self) -> None:
        self._abort()

    def silence(self, seconds: float) -> None:
        self._silent_until = self.venue.monotonic() + seconds

    def skip_book_delta(self, symbol: str | None) -> None:
        """The next book delta (of ``symbol``) is not sent: its ``seq`` goes missing."""
        self._skip.add(symbol)

    def _abort(self) -> None:
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # -- requests --------------------------------------------------------------------
    def _handle(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("event") not in (
            "challenge",
            "subscribe",
            "unsubscribe",
        ):
            self.send({"event": "error", "message": "Json Error"})
            return
        if msg["event"] == "challenge":
            if not isinstance(msg.get("api_key"), str):
                self.send({"event": "error", "message": "Json Error"})
                return
            self.challenge = str(uuid.uuid4())
            self.send({"event": "challenge", "message": self.challenge})
            return
        feed = msg.get("feed")
        if feed in _PRIVATE:
            self._private(msg, str(feed))
        elif feed in _PUBLIC:
            self._public(msg, str(feed))
        else:
            self.send({"event": "error", "message": "Invalid feed"})

    def _public(self, msg: dict[str, Any], feed: str) -> None:
        subscribe = msg["event"] == "subscribe"
        done = "subscribed" if subscribe else "unsubscribed"
        if feed == "heartbeat":
            self.heartbeat = subscribe
            self.send({"event": done, "feed": feed})
            return
        products = msg.get("product_ids")
        if not isinstance(products, list) or not products:
            self.send({"event": "error", "message": "Json Error"})
            return
        symbols = [str(p).upper() for p in products]
        if any(s not in self.venue.contracts for s in symbols):
            self.send({"event": "error", "message": "Invalid product id"})
            return
        self.send({"event": done, "feed": feed, "product_ids": list(products)})
        for symbol in symbols:
            if not subscribe:
                self.public[feed].discard(symbol)
                continue
            self.public[feed].add(symbol)
            self._public_snapshot(feed, symbol)

    def _public_snapshot(self, feed: str, symbol: str) -> None:
        venue = self.venue
        contract = venue.contracts[symbol]
        if feed == "book":
            book = venue.exchange.book(symbol)
            levels = {
                side: [
                    {"price": contract.price_decimal(p), "qty": contract.qty_decimal(q)}
                    for p, q in book.depth(side)
                ]
                for side in ("bid", "ask")
            }
            self.send(
                {
                    "feed": "book_snapshot",
                    "product_id": symbol,
                    "timestamp": ms(venue.now_ns()),
                    "seq": venue.book_seq[symbol],
                    "tickSize": None,
                    "bids": levels["bid"],
                    "asks": levels["ask"],
                }
            )
        elif feed == "trade":
            trades = [self._trade_body(t, seq) for t, seq in reversed(venue.recent_trades[symbol])]
            self.send({"feed": "trade_snapshot", "product_id": symbol, "trades": trades})
        else:
            self.send(ws_ticker(venue, symbol))

    def _trade_body(self, trade: Any, seq: int) -> dict[str, Any]:
        contract = self.venue.contracts[trade.symbol]
        return {
            "uid": trade.uid,
            "side": trade.side,
            "type": "fill",
            "seq": seq,
            "time": ms(trade.time_ns),
            "qty": contract.qty_decimal(trade.qty),
            "price": contract.price_decimal(trade.price),
        }

    def _private(self, msg: dict[str, Any], feed: str) -> None:
        key = self.venue.key(str(msg.get("api_key", "")))
        original = msg.get("original_challenge")
        signed = msg.get("signed_challenge")
        valid = (
            key is not None
            and self.challenge is not None
            and original == self.challenge
            and isinstance(signed, str)
            and challenge_matches(key.api_secret, self.challenge, signed)
            and self.account in (None, key.account)
            and key.access.allows(write=False)  # a No Access key reads nothing (``access``)
        )
        if not valid or key is None:
            log.warning("ws_auth_failed", conn=self.conn_id, feed=feed)
            self.send({"event": "alert", "message": AUTH_FAILED})
            return
        self.account = key.account
        subscribe = msg["event"] == "subscribe"
        ack = {
            "event": "subscribed" if subscribe else "unsubscribed",
            "feed": feed,
            "api_key": key.api_key,
            "original_challenge": original,
            "signed_challenge": signed,
        }
        self.send(ack)
        if not subscribe:
            self.private.discard(feed)
            return
        self.private.add(feed)
        self._private_snapshot(feed)

    def _private_snapshot(self, feed: str) -> None:
        venue, account = self.venue, self.account
        assert account is not None
        uid = venue.account_uid(account)
        ex = venue.exchange
        if feed == "open_orders":
            orders = [ws_order(venue.contracts[s.symbol], s) for s in ex.open_orders(account)]
            self.send({"feed": "open_orders_snapshot", "account": uid, "orders": orders})
        elif feed == "fills":
            fills = [
                ws_fill(venue.contracts[f.symbol], f, next(self._seq))
                for f in reversed(ex.fills(account))
            ]
            self.send({"feed": "fills_snapshot", "account": uid, "fills": fills})
        elif feed == "open_positions":
            self._positions()
        else:
            self._balances(snapshot=True)

    def _positions(self) -> None:
        venue, account = self.venue, self.account
        assert account is not None
        view = venue.exchange.margin(account)
        positions = []
        for symbol, cm in view.contracts.items():
            if cm.qty == 0:
                continue
            elsewhere = view.margin_equity - cm.pnl
            contract = venue.contracts[symbol]
            positions.append(ws_position(contract, cm, venue.exchange.index(symbol), elsewhere))
        self.send(
            {
                "feed": "open_positions",
                "account": venue.account_uid(account),
                "positions": positions,
                "seq": next(self._seq),
                "timestamp": ms(venue.now_ns()),
            }
        )

    def _balances(self, *, snapshot: bool) -> None:
        venue, account = self.venue, self.account
        assert account is not None
        self.send(
            {
                "feed": "balances_snapshot" if snapshot else "balances",
                "account": venue.account_uid(account),
                "holding": {},
                "futures": {},
                "flex_futures": ws_flex(venue.exchange.margin(account)),
                "timestamp": ms(venue.now_ns()),
                "seq": next(self._seq),
            }
        )

    # -- what the venue publishes ---------------------------------------------------------
    def on_published(self, published: Published) -> None:
        if self.closed:
            return
        venue = self.venue
        for symbol, side, price, qty, seq in published.book:
            if symbol not in self.public["book"]:
                continue
            if self._skip and (symbol in self._skip or None in self._skip):
                self._skip.discard(symbol if symbol in self._skip else None)
                continue
            contract = venue.contracts[symbol]
            self.send(
                {
                    "feed": "book",
                    "product_id": symbol,
                    "side": "buy" if side == "bid" else "sell",
                    "seq": seq,
                    "price": contract.price_decimal(price),
                    "qty": contract.qty_decimal(qty),
                    "timestamp": ms(venue.now_ns()),
                }
            )
        for trade, seq in published.trades:
            if trade.symbol in self.public["trade"]:
                body = self._trade_body(trade, seq)
                self.send({"feed": "trade", "product_id": trade.symbol, **body})
        account = self.account
        if account is None or not self.private:
            return
        report = published.report
        if "open_orders" in self.private:
            for update in report.updates:
                if update.account == account:
                    self._order_update(update.order, update.is_cancel, update.reason)
        mine = [f for f in report.fills if f.account == account]
        if mine and "fills" in self.private:
            uid = venue.account_uid(account)
            fills = [ws_fill(venue.contracts[f.symbol], f, next(self._seq)) for f in mine]
            self.send({"feed": "fills", "account": uid, "fills": fills})
        if account in report.accounts:
            if "open_positions" in self.private:
                self._positions()
            if "balances" in self.private:
                self._balances(snapshot=False)

    def _order_update(self, snap: Any, is_cancel: bool, reason: str) -> None:
        if is_cancel and reason in ("cancelled_by_user", "dead_man_switch"):
            # Kraken's short form for an order that is simply gone.
            body = {"feed": "open_orders", "order_id": snap.order_id, "is_cancel": True}
            self.send({**body, "reason": reason})
            return
        order = ws_order(self.venue.contracts[snap.symbol], snap)
        self.send({"feed": "open_orders", "order": order, "is_cancel": is_cancel, "reason": reason})

    # -- timers ------------------------------------------------------------------------
    async def _ticker(self) -> None:
        clock = self.venue.clock
        while True:
            await clock.sleep(self.venue.ticker_interval_s)
            for symbol in sorted(self.public["ticker"]):
                self.send(ws_ticker(self.venue, symbol))

    async def _heartbeat(self) -> None:
        clock = self.venue.clock
        while True:
            await clock.sleep(self.venue.heartbeat_s)
            if self.heartbeat:
                self.send({"feed": "heartbeat", "time": ms(self.venue.now_ns())})

    # -- the connection's life ------------------------------------------------------------
    async def serve(self) -> None:
        self.send({"event": "info", "version": 1})
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._writer()),
                    tg.create_task(self._ticker()),
                    tg.create_task(self._heartbeat()),
                ]
                try:
                    await self._reader()
                finally:
                    self.closed = True
                    for task in tasks:
                        task.cancel()
        except* (ConnectionError, RuntimeError) as group:
            log.info("ws_closed", conn=self.conn_id, error=repr(group.exceptions[0]))
        finally:
            self.closed = True

    async def _reader(self) -> None:
        while not self.closed:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.TEXT:
                self._handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._handle(msg.data.decode("utf-8", "replace"))
            else:
                return

    async def close(self) -> None:
        self.closed = True
        await self.ws.close()


async def futures_ws_handler(request: web.Request) -> web.WebSocketResponse:
    venue = request.app[FUTURES_VENUE_KEY]
    ws = web.WebSocketResponse(autoping=True, heartbeat=None)
    await ws.prepare(request)
    session = FuturesWsSession(ws, request, venue)
    venue.connections[session.conn_id] = session
    venue.listeners.append(session.on_published)
    log.info("ws_open", conn=session.conn_id)
    try:
        await session.serve()
    finally:
        venue.connections.pop(session.conn_id, None)
        if session.on_published in venue.listeners:
            venue.listeners.remove(session.on_published)
        log.info("ws_closed", conn=session.conn_id)
    return ws
