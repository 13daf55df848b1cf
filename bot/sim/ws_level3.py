"""The ``level3`` channel on the simulator's authenticated WebSockets.

Kraken's level3 page (https://docs.kraken.com/api/docs/websocket-v2/level3) names the
authenticated endpoint, ``wss://ws-auth.kraken.com/v2``, and its newer reference names a
host of its own, ``wss://ws-l3.kraken.com/v2``. The simulator serves both: the private
endpoint answers ``level3`` subscriptions beside ``executions`` and ``balances``, and a
third port serves ``level3`` alone at ``/v2`` (``Level3Session``; the JSON line's
``ws_l3``), for clients that connect there.

``subscribe``: ``channel: level3``, ``symbol`` (a list), ``depth`` 10, 100 or 1000
(default 10), ``snapshot`` (default true) and ``token`` (any valid token: the page asks
for no permission beyond the WebSocket interface). One ack per symbol,
``{"channel", "symbol", "depth", "snapshot"}``; then the snapshot and the updates of
``level3.Level3View``, each with the checksum of the top 10 levels. Refusals: ``Currency
pair not supported <SYM>``, ``Subscription depth not supported``, ``Already subscribed``
(one depth per symbol, as the page says), ``Subscription Not Found`` for an unsubscribe.
Not modelled: the subscription rate limit and the 200 symbols a connection may hold.

``Level3Hub`` (one per venue) listens to the bus once: after each exchange call that
changed a book with level3 subscribers, it moves each (symbol, depth) view and sends the
same update bytes to every subscriber of it. This module owns the hub, a connection's
level3 subscriptions and the level3 endpoint.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bot.core.clock import Clock
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.sim.book_stream import BookSink
from bot.sim.bus import Bus
from bot.sim.exchange import Exchange
from bot.sim.level3 import LEVEL3_DEPTHS, Level3View, book_checksum
from bot.sim.matching import Result
from bot.sim.tokens import INVALID_TOKEN
from bot.sim.ws_auth import ERR_ARGS, ERR_CHANNEL, ERR_DUPLICATE, ERR_NOT_FOUND, AuthSession
from bot.sim.ws_common import MAX_QUEUE, accept, venue_of

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = [
    "Level3Hub",
    "Level3Session",
    "Level3Subscriptions",
    "level3_hub",
    "level3_ws_handler",
]

ERR_DEPTH: Final = "Subscription depth not supported"
CHANNEL: Final = "level3"


class _Stream:
    __slots__ = ("sinks", "view")

    def __init__(self, view: Level3View) -> None:
        self.view = view
        self.sinks: dict[int, BookSink] = {}


class Level3Hub:
    """Every level3 view of one venue, kept from the bus (see the module docstring)."""

    def __init__(
        self, clock: Clock, exchange: Exchange, instruments: InstrumentTable, bus: Bus
    ) -> None:
        self.clock = clock
        self.exchange = exchange
        self.instruments = instruments
        self._streams: dict[str, dict[int, _Stream]] = {}
        self.unsubscribe_bus = bus.subscribe_public(self.on_result)

    def instrument(self, symbol: str) -> Instrument | None:
        """The pair named exactly ``symbol`` (v2 names only)."""
        inst = self.instruments.lookup(symbol)
        return inst if inst is not None and inst.symbol == symbol else None

    def subscribe(self, sink: BookSink, key: int, symbol: str, depth: int) -> tuple[bytes, int]:
        """Add ``sink`` to the (symbol, depth) view; its snapshot frame and checksum."""
        inst = self.instruments[symbol]
        book = self.exchange.book(symbol)
        by_depth = self._streams.setdefault(symbol, {})
        stream = by_depth.get(depth)
        if stream is None:
            stream = by_depth[depth] = _Stream(Level3View(inst, depth, book))
        stream.sinks[key] = sink
        checksum = book_checksum(book, inst)
        return stream.view.snapshot(checksum, self.clock.time_ns()), checksum

    def unsubscribe(self, key: int, symbol: str) -> bool:
        by_depth = self._streams.get(symbol, {})
        for depth, stream in list(by_depth.items()):
            if stream.sinks.pop(key, None) is not None:
                if not stream.sinks:
                    del by_depth[depth]
                if not by_depth:
                    del self._streams[symbol]
                return True
        return False

    def unsubscribe_all(self, key: int) -> None:
        for symbol in list(self._streams):
            self.unsubscribe(key, symbol)

    def on_result(self, result: Result) -> None:
        if not self._streams or not result.book:
            return
        changed: dict[str, list[tuple[str, int]]] = {}
        for symbol, side, price, _ in result.book:
            if symbol in self._streams:
                changed.setdefault(symbol, []).append((side, price))
        now = self.clock.time_ns()
        for symbol, levels in changed.items():
            book = self.exchange.book(symbol)
            checksum = book_checksum(book, self.instruments[symbol])
            for stream in self._streams[symbol].values():
                frame = stream.view.update(book, levels, checksum, now)
                if frame is not None:
                    for sink in stream.sinks.values():
                        sink.send_book(symbol, frame, checksum)


_hubs: weakref.WeakKeyDictionary[Any, Level3Hub] = weakref.WeakKeyDictionary()


def level3_hub(venue: SimVenue) -> Level3Hub:
    """The venue's level3 hub, made on first use."""
    hub = _hubs.get(venue)
    if hub is None:
        hub = Level3Hub(venue.clock, venue.exchange, venue.instruments, venue.bus)
        _hubs[venue] = hub
    return hub


class Level3Subscriptions:
    """One connection's level3 subscriptions: symbol -> (depth, token)."""

    def __init__(self, session: AuthSession) -> None:
        self.session = session
        self.hub = level3_hub(session.venue)
        self.by_symbol: dict[str, tuple[int, str]] = {}

    def subscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        session = self.session
        depth = params.get("depth", 10)
        snapshot = params.get("snapshot", True)
        symbols = params.get("symbol")
        if (
            type(depth) is not int
            or type(snapshot) is not bool
            or type(symbols) is not list
            or not symbols
            or not all(type(s) is str for s in symbols)
        ):
            session.fail("subscribe", ERR_ARGS, req_id, time_in)
            return
        account = session.account_of("subscribe", params, req_id, time_in, CHANNEL)
        if account is None:
            return
        session.account = session.account or account
        token: str = params["token"]
        for symbol in symbols:
            if depth not in LEVEL3_DEPTHS:
                session.fail("subscribe", ERR_DEPTH, req_id, time_in, symbol=symbol)
                continue
            if self.hub.instrument(symbol) is None:
                error = f"Currency pair not supported {symbol}"
                session.fail("subscribe", error, req_id, time_in, symbol=symbol)
                continue
            if symbol in self.by_symbol:
                session.fail("subscribe", ERR_DUPLICATE, req_id, time_in, symbol=symbol)
                continue
            if session.attach("subscribe", token, req_id, time_in) is None:
                return
            self.by_symbol[symbol] = (depth, token)
            session.subscribed = True
            session.venue.ensure_depth(symbol, depth)
            frame, checksum = self.hub.subscribe(session, id(session), symbol, depth)
            result = {"channel": CHANNEL, "symbol": symbol, "depth": depth, "snapshot": snapshot}
            session.ack("subscribe", result, req_id, time_in)
            if snapshot:
                session.send_book(symbol, frame, checksum)

    def unsubscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        session = self.session
        symbols = params.get("symbol")
        if type(symbols) is not list or not symbols or not all(type(s) is str for s in symbols):
            session.fail("unsubscribe", ERR_ARGS, req_id, time_in)
            return
        if session.account_of("unsubscribe", params, req_id, time_in, CHANNEL) is None:
            return
        for symbol in symbols:
            held = self.by_symbol.pop(symbol, None)
            if held is None:
                session.fail("unsubscribe", ERR_NOT_FOUND, req_id, time_in, symbol=symbol)
                continue
            depth, token = held
            self.hub.unsubscribe(id(session), symbol)
            session.detach(token)
            result = {"channel": CHANNEL, "symbol": symbol, "depth": depth}
            session.ack("unsubscribe", result, req_id, time_in)

    def revoke(self) -> None:
        """Fault: the tokens are invalid now; every level3 subscription ends, and is told."""
        if not self.by_symbol:
            return
        tokens = {token for _, token in self.by_symbol.values()}
        self.session.revoked.update(tokens)
        now = self.session.now()
        for symbol in list(self.by_symbol):
            result = {"channel": CHANNEL, "symbol": symbol}
            self.session.fail("subscribe", INVALID_TOKEN, None, now, result=result)
        self.release()

    def release(self) -> None:
        for symbol, (_, token) in list(self.by_symbol.items()):
            self.hub.unsubscribe(id(self.session), symbol)
            self.session.detach(token)
        self.by_symbol.clear()


class Level3Session(AuthSession):
    """One connection to the level3 endpoint (``ws-l3``): ``level3`` only."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        venue: SimVenue,
        *,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        super().__init__(ws, request, venue, max_queue=max_queue)
        self.level3 = Level3Subscriptions(self)

    def handle(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> bool:
        if method not in ("subscribe", "unsubscribe"):
            return False
        channel = params.get("channel")
        if channel != CHANNEL:
            self.fail(method, ERR_CHANNEL if type(channel) is str else ERR_ARGS, req_id, time_in)
        elif method == "subscribe":
            self.level3.subscribe(params, req_id, time_in)
        else:
            self.level3.unsubscribe(params, req_id, time_in)
        return True

    def revoke_token(self) -> None:
        self.level3.revoke()

    def release(self) -> None:
        self.level3.release()


async def level3_ws_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /v2`` on the level3 port: Kraken's ``wss://ws-l3.kraken.com/v2``."""
    venue = venue_of(request)
    return await accept(request, lambda ws: Level3Session(ws, request, venue))
