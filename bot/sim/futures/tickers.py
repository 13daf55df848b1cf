"""The Futures simulator's tickers: ``GET /tickers`` entries and ``ticker`` feed frames.

Both are built from the venue's live state: best bid and ask with their sizes, the last
trade, the mark and index prices, 24-hour statistics of the trades seen (volume in
contracts and in USD, open, high, low, change), open interest (the sum of long
positions), and funding. Funding is shown as Kraken shows it
(https://docs.kraken.com/api/docs/futures-api/trading/get-tickers and
https://docs.kraken.com/api/docs/futures-api/websocket/ticker): the ``relative`` rate per
interval (``relative_funding_rate``) and the ``absolute`` one, the relative rate times
the mark (``fundingRate`` / ``funding_rate``); ``next_funding_rate_time`` is the time of
the next charge in ms.

This module owns those two renderings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.sim.futures.render import iso_ms, ms
from bot.sim.futures.venue import FuturesVenue

__all__ = ["rest_ticker", "ws_ticker"]


def _common(venue: FuturesVenue, symbol: str) -> dict[str, Any]:
    contract = venue.contracts[symbol]
    ex = venue.exchange
    book = ex.book(symbol)
    bid, ask = book.best_bid(), book.best_ask()
    trades = venue.stats(symbol)
    last = ex.last[symbol]
    mark = contract.price_decimal(ex.mark(symbol))
    relative = ex.funding_rate
    volume = sum(q for _, _, q in trades)
    quote = sum(contract.notional(q, p) for _, p, q in trades)
    opened = contract.price_decimal(trades[0][1]) if trades else None
    last_dec = None if last is None else contract.price_decimal(last)
    change = (
        (last_dec - opened) / opened * 100 if opened and last_dec is not None else Decimal(0)
    ).quantize(Decimal("0.0001"))
    return {
        "bid": None if bid is None else contract.price_decimal(bid),
        "bid_size": None if bid is None else contract.qty_decimal(book.level_qty("bid", bid)),
        "ask": None if ask is None else contract.price_decimal(ask),
        "ask_size": None if ask is None else contract.qty_decimal(book.level_qty("ask", ask)),
        "last": last_dec,
        "last_size": contract.qty_decimal(trades[-1][2]) if trades else None,
        "last_ns": trades[-1][0] if trades else None,
        "mark": mark,
        "index": contract.price_decimal(ex.index(symbol)),
        "volume": contract.qty_decimal(volume),
        "volume_quote": quote,
        "open": opened,
        "high": max((contract.price_decimal(p) for _, p, _ in trades), default=None),
        "low": min((contract.price_decimal(p) for _, p, _ in trades), default=None),
        "change": change,
        "open_interest": contract.qty_decimal(venue.open_interest(symbol)),
        "relative": relative,
        "absolute": (relative * mark).quantize(Decimal("0.00000001")),
        "pair": f"{contract.base}:{contract.quote}",
    }


def rest_ticker(venue: FuturesVenue, symbol: str) -> dict[str, Any]:
    """A ``tickers`` entry."""
    c = _common(venue, symbol)
    out: dict[str, Any] = {"symbol": symbol, "last": c["last"]}
    if c["last_ns"] is not None:
        out["lastTime"] = iso_ms(c["last_ns"])
        out["lastSize"] = c["last_size"]
    out.update(
        {
            "tag": "perpetual",
            "pair": c["pair"],
            "markPrice": c["mark"],
            "bid": c["bid"],
            "bidSize": c["bid_size"],
            "ask": c["ask"],
            "askSize": c["ask_size"],
            "vol24h": c["volume"],
            "volumeQuote": c["volume_quote"],
            "openInterest": c["open_interest"],
            "open24h": c["open"],
            "high24h": c["high"],
            "low24h": c["low"],
            "fundingRate": c["absolute"],
            "fundingRatePrediction": c["absolute"],
            "suspended": False,
            "indexPrice": c["index"],
            "postOnly": False,
            "change24h": c["change"],
        }
    )
    return {k: v for k, v in out.items() if v is not None}


def ws_ticker(venue: FuturesVenue, symbol: str) -> dict[str, Any]:
    """A ``ticker`` feed frame."""
    c = _common(venue, symbol)
    due = venue.exchange.funding_due_in_ns()
    mark, index = c["mark"], c["index"]
    out: dict[str, Any] = {
        "time": ms(venue.now_ns()),
        "product_id": symbol,
        "funding_rate": c["absolute"],
        "funding_rate_prediction": c["absolute"],
        "relative_funding_rate": c["relative"],
        "relative_funding_rate_prediction": c["relative"],
        "next_funding_rate_time": ms(venue.now_ns() + (due or 0)),
        "feed": "ticker",
        "bid": c["bid"],
        "ask": c["ask"],
        "bid_size": c["bid_size"],
        "ask_size": c["ask_size"],
        "volume": c["volume"],
        "dtm": 0,
        "leverage": "50x",
        "index": index,
        "premium": ((mark - index) / index * 100).quantize(Decimal("0.0001")) if index else None,
        "last": c["last"],
        "change": c["change"],
        "suspended": False,
        "tag": "perpetual",
        "pair": c["pair"],
        "openInterest": c["open_interest"],
        "markPrice": mark,
        "maturityTime": 0,
        "post_only": False,
        "volumeQuote": c["volume_quote"],
        "open": c["open"],
        "high": c["high"],
        "low": c["low"],
    }
    return {k: v for k, v in out.items() if v is not None}
