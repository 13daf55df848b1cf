"""The simulator's public REST methods: ``/0/public/<Method>`` (GET or POST).

``Time``, ``SystemStatus``, ``Assets``, ``AssetPairs``, ``Ticker``, ``OHLC``, ``Depth``
and ``Trades``, answered in Kraken's shapes (``krakenfx/api-specs``
``spot-rest/examples/responses/public``): results keyed by the REST pair name
(``XXBTZUSD``), prices and volumes as fixed-decimal strings at the pair's precision, times
as seconds (``Depth``: integer, ``Trades``: 4 decimals). A pair is named by REST name,
altname, WS v2 or v1 name; a ``BASE/QUOTE`` name keys the answer as given.
Public calls need no key and count on no counter (Kraken limits them per IP).

This module owns those answers; the book, the tape and the statistics come from the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from bot.core.errors import ExchangeError, RejectedError
from bot.kraken.instruments import Instrument
from bot.sim.pairs import ASSET_PRECISION, DISPLAY_DECIMALS
from bot.sim.rest_common import (
    ERR_UNKNOWN_METHOD,
    Params,
    error_response,
    form_params,
    invalid,
    ok_response,
    parse_body,
    rest_faults,
)
from bot.sim.rest_format import (
    asset_code,
    fixed,
    pair_info,
    rfc1123,
    rfc3339,
    unix_seconds,
    v1_asset,
    wsname,
)
from bot.sim.venue import VENUE_KEY, SimVenue

__all__ = ["PUBLIC_METHODS", "public_handler"]

ERR_UNKNOWN_PAIR: Final = "EQuery:Unknown asset pair"
ERR_UNKNOWN_ASSET: Final = "EQuery:Unknown asset"
_NS: Final = 1_000_000_000


def lookup_pair(venue: SimVenue, name: str) -> Instrument | None:
    """A pair by REST name (``XXBTZUSD``), altname (``XBTUSD``), WS v2 symbol (``BTC/USD``)
    or WS v1 name (``XBT/USD``), as Kraken's public methods accept them."""
    inst = venue.instruments.lookup(name)
    if inst is None and "/" in name:
        inst = next((i for i in venue.instruments.values() if wsname(i) == name), None)
    return inst


def _pairs(
    venue: SimVenue, params: Params, *, required: bool = False
) -> list[tuple[str, Instrument]]:
    """(result key, pair) for each pair asked for (all if none). Kraken keys a result by
    the pair's REST name, except a pair asked for by a ``BASE/QUOTE`` name, which is keyed
    by that name as given (python-kraken-sdk's book client relies on it)."""
    names = params.ids("pair")
    if not names:
        if required:
            raise invalid("pair", "missing")
        return [(_key(inst), inst) for inst in venue.instruments.values()]
    out = []
    for name in names:
        inst = lookup_pair(venue, name)
        if inst is None:
            raise RejectedError(ERR_UNKNOWN_PAIR, name)
        out.append((name if "/" in name else _key(inst), inst))
    return out


def _one_pair(venue: SimVenue, params: Params) -> tuple[str, Instrument]:
    pairs = _pairs(venue, params, required=True)
    if len(pairs) != 1:
        raise invalid("pair", "one pair only")
    return pairs[0]


def _key(inst: Instrument) -> str:
    return inst.rest_name or inst.altname or inst.symbol


def server_time(venue: SimVenue, params: Params) -> dict[str, Any]:
    now = venue.now_ns()
    return {"unixtime": now // _NS, "rfc1123": rfc1123(now)}


def system_status(venue: SimVenue, params: Params) -> dict[str, Any]:
    return {
        "status": venue.system_status,
        "timestamp": rfc3339(venue.now_ns()),
    }


_INFO_FIELDS: Final = {
    "leverage": ("leverage_buy", "leverage_sell"),
    "fees": ("fees", "fees_maker", "fee_volume_currency"),
    "margin": ("margin_call", "margin_stop"),
}


def asset_pairs(venue: SimVenue, params: Params) -> dict[str, Any]:
    info = params.text("info") or "info"
    if info != "info" and info not in _INFO_FIELDS:
        raise invalid("info")
    out: dict[str, Any] = {}
    for key, inst in _pairs(venue, params):
        entry = pair_info(inst, venue.fees)
        if info != "info":
            entry = {k: entry[k] for k in _INFO_FIELDS[info]}
        out[key] = entry
    return out


def _level(inst: Instrument, level: tuple[int, int] | None) -> list[str]:
    if level is None:
        return [inst.price_text(0), "0", inst.qty_text(0)]
    price, qty = level
    whole = qty // 10**inst.qty_precision
    return [inst.price_text(price), str(whole), inst.qty_text(qty)]


def _vwap(inst: Instrument, notional: int, volume: int) -> str:
    if not volume:
        return inst.price_text(0)
    return fixed((Decimal(notional) / volume).scaleb(-inst.price_precision), inst.price_precision)


def ticker(venue: SimVenue, params: Params) -> dict[str, Any]:
    now = venue.now_ns()
    out: dict[str, Any] = {}
    for key, inst in _pairs(venue, params):
        bids, asks = venue.exchange.depth(inst.symbol, 1)
        last = venue.stats.last_trade(inst.symbol)
        today, day = venue.stats.windows(inst.symbol, now)
        price = inst.price_text
        out[key] = {
            "a": _level(inst, asks[0] if asks else None),
            "b": _level(inst, bids[0] if bids else None),
            "c": [price(last.price), inst.qty_text(last.qty)]
            if last is not None
            else [price(0), inst.qty_text(0)],
            "v": [inst.qty_text(today.volume), inst.qty_text(day.volume)],
            "p": [_vwap(inst, today.notional, today.volume), _vwap(inst, day.notional, day.volume)],
            "t": [today.count, day.count],
            "l": [price(today.low), price(day.low)],
            "h": [price(today.high), price(day.high)],
            "o": price(today.open),
        }
    return out


def depth(venue: SimVenue, params: Params) -> dict[str, Any]:
    key, inst = _one_pair(venue, params)
    count = params.integer("count")
    if count is None:
        count = 100
    if not 1 <= count <= 500:
        raise invalid("count")
    now_s = venue.now_ns() // _NS
    bids, asks = venue.exchange.depth(inst.symbol, count)

    def rows(side: str, levels: list[tuple[int, int]]) -> list[list[Any]]:
        stamp = venue.stats.level_time_ns
        return [
            [inst.price_text(p), inst.qty_text(q), stamp(inst.symbol, side, p, now_s * _NS) // _NS]
            for p, q in levels
        ]

    return {key: {"asks": rows("ask", asks), "bids": rows("bid", bids)}}


def _since_ns(params: Params) -> int | None:
    text = params.text("since")
    if text is None:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError as exc:
        raise invalid("since") from exc
    if not value.is_finite() or value < 0:
        raise invalid("since")
    # Kraken takes seconds or a nanosecond id; 10**12 tells them apart for centuries.
    return int(value) if value >= 10**12 else int(value.scaleb(9))


def trades(venue: SimVenue, params: Params) -> dict[str, Any]:
    key, inst = _one_pair(venue, params)
    count = params.integer("count")
    if count is None:
        count = 1000
    if not 1 <= count <= 1000:
        raise invalid("count")
    tape = venue.stats.trades(inst.symbol, _since_ns(params), count)
    rows = [
        [
            inst.price_text(t.price),
            inst.qty_text(t.qty),
            unix_seconds(t.timestamp),
            "b" if t.side == "buy" else "s",
            "l" if t.ord_type == "limit" else "m",
            "",
            t.trade_id,
        ]
        for t in tape
    ]
    last = tape[-1].timestamp if tape else (_since_ns(params) or venue.now_ns())
    return {key: rows, "last": str(last)}


_INTERVALS: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)


def ohlc(venue: SimVenue, params: Params) -> dict[str, Any]:
    """OHLC: ``[time, open, high, low, close, vwap, volume, count]`` per ``interval``
    minutes (1 by default), from the last 24 hours of trades; ``since`` keeps the candles
    after it; ``last`` is the start of the last closed candle."""
    key, inst = _one_pair(venue, params)
    interval = params.integer("interval") or 1
    if interval not in _INTERVALS:
        raise invalid("interval")
    since = _since_ns(params)
    candles = venue.stats.candles(inst.symbol, interval)
    rows = []
    for c in candles:
        start_ns = c.minute * 60 * _NS
        if since is not None and start_ns <= since:
            continue
        rows.append(
            [
                c.minute * 60,
                inst.price_text(c.open),
                inst.price_text(c.high),
                inst.price_text(c.low),
                inst.price_text(c.close),
                _vwap(inst, c.notional, c.volume),
                inst.qty_text(c.volume),
                c.count,
            ]
        )
    now_minute = venue.now_ns() // (60 * _NS)
    closed = [c.minute for c in candles if c.minute + interval <= now_minute]
    last = closed[-1] * 60 if closed else (now_minute - now_minute % interval - interval) * 60
    return {key: rows, "last": last}


def assets(venue: SimVenue, params: Params) -> dict[str, Any]:
    """Assets: every asset of the venue's pairs, keyed by Kraken's code (``XXBT``), or
    those named in ``asset`` (by code, altname ``XBT`` or WS v2 name ``BTC``)."""
    aclass = params.text("aclass") or "currency"
    if aclass != "currency":
        raise invalid("aclass")
    known: dict[str, str] = {}
    for inst in venue.instruments.values():
        for name in (inst.base, inst.quote):
            known.setdefault(name, name)
    wanted = params.ids("asset")
    chosen = list(known)
    if wanted:
        aliases = {alias: a for a in known for alias in (a, asset_code(a), v1_asset(a))}
        missing = [w for w in wanted if w not in aliases]
        if missing:
            raise RejectedError(ERR_UNKNOWN_ASSET, missing[0])
        chosen = list(dict.fromkeys(aliases[w] for w in wanted))
    return {
        asset_code(a): {
            "aclass": "currency",
            "altname": v1_asset(a),
            "decimals": ASSET_PRECISION.get(a, 8),
            "display_decimals": DISPLAY_DECIMALS.get(a, min(ASSET_PRECISION.get(a, 8), 5)),
            "status": "enabled",
        }
        for a in chosen
    }


PublicMethod = Callable[[SimVenue, Params], dict[str, Any]]
PUBLIC_METHODS: Final[dict[str, PublicMethod]] = {
    "Time": server_time,
    "SystemStatus": system_status,
    "AssetPairs": asset_pairs,
    "Ticker": ticker,
    "Depth": depth,
    "Trades": trades,
    "OHLC": ohlc,
    "Assets": assets,
}


async def public_handler(request: web.Request) -> web.Response:
    """``GET|POST /0/public/{method}``."""
    venue = request.app[VENUE_KEY]
    method = request.match_info["method"]
    fn = PUBLIC_METHODS.get(method)
    if fn is None:
        return error_response(ERR_UNKNOWN_METHOD)
    early = await rest_faults(venue, method, private=False)
    if early is not None:
        return early
    try:
        raw = form_params(list(request.query.items()))
        if request.method == "POST":
            raw.update(parse_body(await request.read(), request.headers.get("Content-Type")))
        return ok_response(fn(venue, Params(raw)))
    except ExchangeError as exc:
        return error_response(exc.code)
