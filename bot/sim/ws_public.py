"""The simulator's public WebSocket v2 endpoint, ``/v2``: book, trade, ticker, ohlc,
instrument.

``public_ws_handler`` accepts a connection (``ws_common.WsSession``: status on connect,
heartbeat, ping) and answers ``subscribe`` / ``unsubscribe`` as Kraken does (KRAKEN.md
§5.1-§5.8): one ack per symbol, with the request's ``req_id``, ``time_in`` and
``time_out``; a failure per symbol for an unknown pair (``Currency pair not supported
<SYM>``), ``Subscription name invalid`` for an unknown channel, ``Subscription depth not
supported`` for a book depth outside 10/25/100/500/1000, ``EGeneral:Invalid arguments``
for a missing or malformed ``symbol`` or parameter, ``Already subscribed`` and
``Subscription Not Found`` for duplicates and strays.

One ``PublicHub`` per venue listens to the bus once and serves every connection: book
frames come from ``book_stream.BookFanout`` (built once per Result per symbol and depth,
shared by all subscribers); trade frames are built once per Result per symbol (all the
Result's trades of that symbol in one message), and a trade snapshot is the last 50 trades
of the venue's ``MarketStats`` tape; ticker frames carry the best bid and ask and the last
24 hours from the same tape (``last``, ``volume``, ``vwap``, ``low``, ``high``, ``change``,
``change_pct``; ``vwap`` at the price precision, ``change_pct`` to 0.01), pushed on every
trade (``event_trigger: trades``, the default) or on every change of the best bid or ask
(``bbo``). ``ohlc`` (https://docs.kraken.com/api/docs/websocket-v2/ohlc; ``interval`` in
minutes, 1 by default) sends the candles of the same tape (at most ``OHLC_SNAPSHOT``) as its
snapshot, then the running candle on every trade of the pair; its unsubscribe repeats the
interval. The ``instrument`` snapshot lists the venue's pairs and their assets with the
field names and types of a real capture.

This module owns the public channels' subscriptions and frames; it never steps the market
and never changes the exchange (``ensure_depth`` asks the venue to quote deeper).
"""

from __future__ import annotations

import weakref
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bot.core.clock import Clock
from bot.kraken.codec import dumps
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.sim.book_stream import BOOK_DEPTHS, BookFanout, format_number
from bot.sim.bus import Bus
from bot.sim.exchange import Exchange
from bot.sim.matching import PublicTrade, Result
from bot.sim.pairs import ASSET_PRECISION, DISPLAY_DECIMALS
from bot.sim.rest_stats import Candle, MarketStats
from bot.sim.ws_common import MAX_QUEUE, WsSession, accept, rfc3339, rfc3339_ns, venue_of

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = ["CHANNELS", "PublicHub", "PublicSession", "public_hub", "public_ws_handler"]

ERR_ARGS: Final = "EGeneral:Invalid arguments"
ERR_CHANNEL: Final = "Subscription name invalid"
ERR_DEPTH: Final = "Subscription depth not supported"
ERR_DUPLICATE: Final = "Already subscribed"
ERR_NOT_FOUND: Final = "Subscription Not Found"
TRADE_HISTORY: Final = 50
_MINUTE_NS: Final = 60_000_000_000
CHANNELS: Final = ("book", "trade", "ticker", "ohlc", "instrument")
_INSTRUMENT: Final = ("instrument", "", 0)
_SNAPSHOT_DEFAULT: Final = {
    "book": True, "trade": False, "ticker": True, "ohlc": True, "instrument": True,
}  # fmt: skip
OHLC_INTERVALS: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
OHLC_SNAPSHOT: Final = 720
"""Candles in an ``ohlc`` snapshot at most (REST OHLC's documented maximum)."""


class PublicHub:
    """Every public subscription of one venue, fed by one bus listener."""

    def __init__(
        self,
        clock: Clock,
        exchange: Exchange,
        instruments: InstrumentTable,
        bus: Bus,
        stats: MarketStats,
    ) -> None:
        self.clock = clock
        self.exchange = exchange
        self.instruments = instruments
        self.stats = stats
        self.books = BookFanout(self.instrument, exchange.depth, rfc3339)
        self._trade_subs: dict[str, dict[int, WsSession]] = {}
        self._ticker_subs: dict[str, dict[int, tuple[WsSession, str]]] = {}
        self._ohlc_subs: dict[str, dict[tuple[int, int], tuple[WsSession, int]]] = {}
        self._bbo: dict[str, tuple[int, int, int, int]] = {}
        self._instrument_frame: bytes | None = None
        self.unsubscribe_bus = bus.subscribe_public(self.on_result)

    def instrument(self, symbol: str) -> Instrument | None:
        """The pair named exactly ``symbol`` (v2 names only: no REST aliases)."""
        inst = self.instruments.lookup(symbol)
        return inst if inst is not None and inst.symbol == symbol else None

    # -- the bus ------------------------------------------------------------------------------

    def on_result(self, result: Result) -> None:
        now = self.clock.time_ns()
        if result.book:
            self.books.publish(result.book, now)
        if not (result.trades or self._ticker_subs or self._ohlc_subs):
            return
        timestamp = rfc3339(now)
        if result.trades:
            by_symbol: dict[str, list[PublicTrade]] = {}
            for trade in result.trades:
                by_symbol.setdefault(trade.symbol, []).append(trade)
            for symbol, trades in by_symbol.items():
                self._on_trades(symbol, trades, timestamp)
        if result.book and self._ticker_subs:
            symbols = {delta[0] for delta in result.book}
            for symbol in symbols:
                self._on_book(symbol, timestamp)

    def _on_trades(self, symbol: str, trades: list[PublicTrade], timestamp: str) -> None:
        subs = self._trade_subs.get(symbol)
        if subs:
            frame = self.trade_frame(symbol, trades, snapshot=False)
            for session in subs.values():
                session.send(frame)
        tickers = self._ticker_subs.get(symbol)
        if tickers:
            frame = self.ticker_frame(symbol, timestamp, snapshot=False)
            for session, trigger in tickers.values():
                if trigger == "trades":
                    session.send(frame)
        candles = self._ohlc_subs.get(symbol)
        if candles:
            frames: dict[int, bytes] = {}
            for session, interval in candles.values():
                if interval not in frames:
                    frames[interval] = self.ohlc_frame(symbol, interval, snapshot=False)
                session.send(frames[interval])

    def _on_book(self, symbol: str, timestamp: str) -> None:
        tickers = self._ticker_subs.get(symbol)
        if not tickers:
            return
        bbo = self._top(symbol)
        if self._bbo.get(symbol) == bbo:
            return
        self._bbo[symbol] = bbo
        frame: bytes | None = None
        for session, trigger in tickers.values():
            if trigger == "bbo":
                frame = frame or self.ticker_frame(symbol, timestamp, snapshot=False)
                session.send(frame)

    # -- frames -------------------------------------------------------------------------------

    def _top(self, symbol: str) -> tuple[int, int, int, int]:
        book = self.exchange.book(symbol)
        bid = book.best_bid() or 0
        ask = book.best_ask() or 0
        bid_qty = book.level_qty("bid", bid) if bid else 0
        ask_qty = book.level_qty("ask", ask) if ask else 0
        return bid, bid_qty, ask, ask_qty

    def trade_frame(self, symbol: str, trades: list[PublicTrade], *, snapshot: bool) -> bytes:
        inst = self.instruments[symbol]
        pp, qp = inst.price_precision, inst.qty_precision
        items = ",".join(
            [
                f'{{"symbol":"{symbol}","side":"{t.side}","price":{format_number(t.price, pp)},'
                f'"qty":{format_number(t.qty, qp)},"ord_type":"{t.ord_type}",'
                f'"trade_id":{t.trade_id},"timestamp":"{rfc3339(t.timestamp)}"}}'
                for t in trades
            ]
        )
        kind = "snapshot" if snapshot else "update"
        return f'{{"channel":"trade","type":"{kind}","data":[{items}]}}'.encode()

    def ticker_frame(self, symbol: str, timestamp: str, *, snapshot: bool) -> bytes:
        inst = self.instruments[symbol]
        pp, qp = inst.price_precision, inst.qty_precision
        _, day = self.stats.windows(symbol, self.clock.time_ns())
        bid, bid_qty, ask, ask_qty = self._top(symbol)
        last_trade = self.stats.last_trade(symbol)
        last = last_trade.price if last_trade is not None else bid
        if day.count:
            vwap = (Decimal(day.notional) / day.volume).scaleb(-pp)
            vwap = vwap.quantize(Decimal(1).scaleb(-pp), ROUND_HALF_EVEN)
            low, high, first = day.low, day.high, day.open
        else:
            vwap, low, high, first = from_scaled(last, pp), last, last, last
        change = from_scaled(last - first, pp)
        pct = Decimal(0)
        if first:
            pct = (Decimal((last - first) * 100) / first).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        data = {
            "symbol": symbol,
            "bid": from_scaled(bid, pp),
            "bid_qty": from_scaled(bid_qty, qp),
            "ask": from_scaled(ask, pp),
            "ask_qty": from_scaled(ask_qty, qp),
            "last": from_scaled(last, pp),
            "volume": from_scaled(day.volume, qp),
            "vwap": vwap,
            "low": from_scaled(low, pp),
            "high": from_scaled(high, pp),
            "change": change,
            "change_pct": pct,
            "timestamp": timestamp,
        }
        kind = "snapshot" if snapshot else "update"
        return dumps({"channel": "ticker", "type": kind, "data": [data]})

    def ohlc_frame(self, symbol: str, interval: int, *, snapshot: bool) -> bytes:
        """The running candle of ``interval`` minutes (``snapshot``: the last
        ``OHLC_SNAPSHOT`` candles of the day the venue keeps)."""
        inst = self.instruments[symbol]
        candles = self.stats.candles(symbol, interval)
        chosen = candles[-OHLC_SNAPSHOT:] if snapshot else candles[-1:]
        data = [_candle(inst, c, interval) for c in chosen]
        kind = "snapshot" if snapshot else "update"
        now = rfc3339_ns(self.clock.time_ns())
        return dumps({"channel": "ohlc", "type": kind, "timestamp": now, "data": data})

    def instrument_frame(self) -> bytes:
        """The ``instrument`` snapshot, in the recorded capture's field names and types."""
        if self._instrument_frame is None:
            pairs = [_pair(inst) for inst in self.instruments.values()]
            assets: dict[str, dict[str, Any]] = {}
            for inst in self.instruments.values():
                for asset in (inst.base, inst.quote):
                    assets.setdefault(asset, _asset(asset))
            data = {"assets": list(assets.values()), "pairs": pairs}
            body = {"channel": "instrument", "type": "snapshot", "data": data}
            self._instrument_frame = dumps(body)
        return self._instrument_frame

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe_trades(self, session: WsSession, symbol: str) -> None:
        self._trade_subs.setdefault(symbol, {})[id(session)] = session

    def subscribe_ticker(self, session: WsSession, symbol: str, trigger: str) -> None:
        self._ticker_subs.setdefault(symbol, {})[id(session)] = (session, trigger)

    def subscribe_ohlc(self, session: WsSession, symbol: str, interval: int) -> None:
        self._ohlc_subs.setdefault(symbol, {})[(id(session), interval)] = (session, interval)

    def unsubscribe(self, session: WsSession, channel: str, symbol: str, depth: int) -> bool:
        """End one subscription (``depth``: the book's depth, the ohlc interval)."""
        key = id(session)
        if channel == "book":
            return self.books.unsubscribe(key, symbol, depth)
        if channel == "ohlc":
            candles = self._ohlc_subs.get(symbol, {})
            found = candles.pop((key, depth), None) is not None
            if not candles:
                self._ohlc_subs.pop(symbol, None)
            return found
        table: dict[str, dict[int, Any]] = (
            self._trade_subs if channel == "trade" else self._ticker_subs
        )
        subs = table.get(symbol)
        if not subs or subs.pop(key, None) is None:
            return False
        if not subs:
            del table[symbol]
        return True

    def unsubscribe_all(self, session: WsSession) -> None:
        key = id(session)
        self.books.unsubscribe_all(key)
        for table in (self._trade_subs, self._ticker_subs):
            for symbol in list(table):
                subs: dict[int, Any] = table[symbol]
                subs.pop(key, None)
                if not subs:
                    del table[symbol]
        for symbol in list(self._ohlc_subs):
            candles = self._ohlc_subs[symbol]
            for sub in [k for k in candles if k[0] == key]:
                del candles[sub]
            if not candles:
                del self._ohlc_subs[symbol]

    def recent_trades(self, symbol: str) -> list[PublicTrade]:
        return self.stats.trades(symbol, count=TRADE_HISTORY)


def _candle(inst: Instrument, candle: Candle, interval: int) -> dict[str, Any]:
    """One ``ohlc`` item, in the page's field order; ``timestamp`` is the interval's end."""
    pp, qp = inst.price_precision, inst.qty_precision
    vwap = (Decimal(candle.notional) / candle.volume).scaleb(-pp) if candle.volume else Decimal(0)
    begin_ns = candle.minute * _MINUTE_NS
    return {
        "symbol": inst.symbol,
        "open": from_scaled(candle.open, pp),
        "high": from_scaled(candle.high, pp),
        "low": from_scaled(candle.low, pp),
        "close": from_scaled(candle.close, pp),
        "trades": candle.count,
        "volume": from_scaled(candle.volume, qp),
        "vwap": vwap.quantize(Decimal(1).scaleb(-pp), ROUND_HALF_EVEN),
        "interval_begin": rfc3339_ns(begin_ns),
        "interval": interval,
        "timestamp": rfc3339(begin_ns + interval * _MINUTE_NS),
    }


def _pair(inst: Instrument) -> dict[str, Any]:
    pp, qp = inst.price_precision, inst.qty_precision
    return {
        "symbol": inst.symbol,
        "base": inst.base,
        "quote": inst.quote,
        "status": inst.status,
        "qty_precision": qp,
        "qty_increment": from_scaled(inst.qty_increment, qp),
        "price_precision": pp,
        "cost_precision": inst.cost_precision,
        "marginable": False,
        "has_index": True,
        "cost_min": inst.cost_min,
        "tick_size": from_scaled(inst.price_increment, pp),
        "price_increment": from_scaled(inst.price_increment, pp),
        "qty_min": from_scaled(inst.qty_min, qp),
    }


def _asset(asset: str) -> dict[str, Any]:
    precision = ASSET_PRECISION.get(asset, 8)
    display = DISPLAY_DECIMALS.get(asset, min(precision, 5))
    return {
        "id": asset,
        "status": "enabled",
        "precision": precision,
        "precision_display": display,
        "borrowable": False,
        "collateral_value": Decimal(0),
    }


_hubs: weakref.WeakKeyDictionary[Any, PublicHub] = weakref.WeakKeyDictionary()


def public_hub(venue: SimVenue) -> PublicHub:
    """The venue's hub, made on first use. A venue that calls this at start-up gives the
    ticker and trade snapshots the trades from before the first WebSocket connection."""
    hub = _hubs.get(venue)
    if hub is None:
        hub = PublicHub(venue.clock, venue.exchange, venue.instruments, venue.bus, venue.stats)
        _hubs[venue] = hub
    return hub


class PublicSession(WsSession):
    """One ``/v2`` connection: its subscriptions, answered through the venue's hub."""

    kind = "public"

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        venue: SimVenue,
        hub: PublicHub,
        *,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        super().__init__(ws, request, venue, max_queue=max_queue)
        self.hub = hub
        self.subscriptions: set[tuple[str, str, int]] = set()

    def handle(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> bool:
        if method == "subscribe":
            self._subscribe(params, req_id, time_in)
        elif method == "unsubscribe":
            self._unsubscribe(params, req_id, time_in)
        else:
            return False
        return True

    def release(self) -> None:
        self.hub.unsubscribe_all(self)
        self.subscriptions.clear()

    # -- subscribe ------------------------------------------------------------------------------

    def _parse(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str
    ) -> tuple[str, list[str], int, bool, str] | None:
        """(channel, symbols, depth, snapshot, event_trigger), or None after a failure; for
        ``ohlc`` the third is the ``interval`` (1 by default)."""
        channel = params.get("channel")
        if type(channel) is not str:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return None
        if channel not in CHANNELS:
            self.fail(method, ERR_CHANNEL, req_id, time_in)
            return None
        snapshot = params.get("snapshot", _SNAPSHOT_DEFAULT[channel])
        depth = params.get("interval", 1) if channel == "ohlc" else params.get("depth", 10)
        trigger = params.get("event_trigger", "trades")
        if type(snapshot) is not bool or type(depth) is not int or trigger not in ("trades", "bbo"):
            self.fail(method, ERR_ARGS, req_id, time_in)
            return None
        if channel == "ohlc" and depth not in OHLC_INTERVALS:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return None
        if channel == "instrument":
            return channel, [], depth, snapshot, trigger
        symbols = params.get("symbol")
        if type(symbols) is not list or not symbols or not all(type(s) is str for s in symbols):
            self.fail(method, ERR_ARGS, req_id, time_in)
            return None
        return channel, symbols, depth, snapshot, trigger

    def _subscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        parsed = self._parse("subscribe", params, req_id, time_in)
        if parsed is None:
            return
        channel, symbols, depth, snapshot, trigger = parsed
        if channel == "instrument":
            if _INSTRUMENT in self.subscriptions:
                self.fail("subscribe", ERR_DUPLICATE, req_id, time_in)
                return
            self.subscriptions.add(_INSTRUMENT)
            self.subscribed = True
            result = {"channel": "instrument", "snapshot": snapshot}
            self.ack("subscribe", result, req_id, time_in)
            if snapshot:
                self.send(self.hub.instrument_frame())
            return
        for symbol in symbols:
            if channel == "book" and depth not in BOOK_DEPTHS:
                self.fail("subscribe", ERR_DEPTH, req_id, time_in, symbol=symbol)
                continue
            if self.hub.instrument(symbol) is None:
                error = f"Currency pair not supported {symbol}"
                self.fail("subscribe", error, req_id, time_in, symbol=symbol)
                continue
            key = (channel, symbol, depth if channel in ("book", "ohlc") else 0)
            if key in self.subscriptions or (
                channel == "book" and any(s[:2] == key[:2] for s in self.subscriptions)
            ):
                self.fail("subscribe", ERR_DUPLICATE, req_id, time_in, symbol=symbol)
                continue
            self.subscriptions.add(key)
            self.subscribed = True
            self._start(channel, symbol, (depth, snapshot, trigger), req_id, time_in)

    def _start(
        self,
        channel: str,
        symbol: str,
        options: tuple[int, bool, str],
        req_id: int | None,
        time_in: str,
    ) -> None:
        depth, snapshot, trigger = options
        hub = self.hub
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            result["depth"] = depth
            self.venue.ensure_depth(symbol, depth)
            frame, _ = hub.books.subscribe(self, id(self), symbol, depth, self.now())
            result["snapshot"] = snapshot
            result["symbol"] = symbol
            self.ack("subscribe", result, req_id, time_in)
            if snapshot:
                self.send_book(symbol, frame, _)
            return
        if channel == "ticker":
            result["event_trigger"] = trigger
        if channel == "ohlc":
            result["interval"] = depth
        result["snapshot"] = snapshot
        result["symbol"] = symbol
        self.ack("subscribe", result, req_id, time_in)
        if channel == "ohlc":
            hub.subscribe_ohlc(self, symbol, depth)
            if snapshot:
                self.send(hub.ohlc_frame(symbol, depth, snapshot=True))
        elif channel == "trade":
            hub.subscribe_trades(self, symbol)
            if snapshot:
                recent = hub.recent_trades(symbol)
                self.send(hub.trade_frame(symbol, recent, snapshot=True))
        else:
            hub.subscribe_ticker(self, symbol, trigger)
            if snapshot:
                self.send(hub.ticker_frame(symbol, self.now(), snapshot=True))

    def _unsubscribe(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        parsed = self._parse("unsubscribe", params, req_id, time_in)
        if parsed is None:
            return
        channel, symbols, depth, _, _ = parsed
        if channel == "instrument":
            if _INSTRUMENT not in self.subscriptions:
                self.fail("unsubscribe", ERR_NOT_FOUND, req_id, time_in)
                return
            self.subscriptions.discard(_INSTRUMENT)
            self.ack("unsubscribe", {"channel": "instrument"}, req_id, time_in)
            return
        for symbol in symbols:
            key = (channel, symbol, depth if channel in ("book", "ohlc") else 0)
            if key not in self.subscriptions:
                self.fail("unsubscribe", ERR_NOT_FOUND, req_id, time_in, symbol=symbol)
                continue
            self.subscriptions.discard(key)
            self.hub.unsubscribe(self, channel, symbol, depth)
            result: dict[str, Any] = {"channel": channel}
            if channel == "book":
                result["depth"] = depth
            elif channel == "ohlc":
                result["interval"] = depth
            result["symbol"] = symbol
            self.ack("unsubscribe", result, req_id, time_in)


async def public_ws_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /v2``: Kraken's public WebSocket v2 on the simulator."""
    venue = venue_of(request)
    if not venue.market_ready:  # a live source whose upstream is down: no valid book to give
        raise web.HTTPServiceUnavailable(text="market data unavailable: upstream feed down")
    hub = public_hub(venue)
    return await accept(request, lambda ws: PublicSession(ws, request, venue, hub))
