"""Public market statistics for the REST ``Ticker``, ``Trades`` and ``Depth`` answers (pure).

``MarketStats`` listens to every published ``Result`` (the venue subscribes it to the bus)
and keeps, per symbol: the last trades (for ``Trades``, at most ``recent`` of them), one
bucket per minute of traded volume, price × volume, count, high, low, open and close over
the last 24 hours (for ``Ticker``'s today / last-24-hours pairs and ``OHLC`` candles), and
the time each book level last changed (``Depth`` prints it). Memory is bounded: 1440
buckets and ``recent`` trades per symbol, one entry per live book level.

Numbers stay exact: volumes are scaled ints, price × volume sums are ints scaled by
``price_precision + qty_precision``. Time comes with each trade, from the injected
``now_ns`` callable (level changes, stamped at publication) and as ``now_ns`` arguments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from bot.kraken.instruments import Instrument
from bot.sim.matching import PublicTrade, Result

__all__ = ["Candle", "MarketStats", "Window"]

_MINUTE_NS: Final = 60_000_000_000
_DAY_MINUTES: Final = 1440


@dataclass(slots=True)
class _Bucket:
    minute: int
    count: int = 0
    volume: int = 0
    notional: int = 0
    high: int = 0
    low: int = 0
    open: int = 0
    close: int = 0


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLC interval: its start (minutes since the epoch), prices as scaled ints,
    ``volume`` scaled by qty precision, ``notional`` by price + qty precision."""

    minute: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    notional: int
    count: int


@dataclass(slots=True)
class Window:
    """Trading over one window: ``volume`` scaled by qty precision, ``notional`` by
    price + qty precision; prices are 0 when nothing traded."""

    count: int = 0
    volume: int = 0
    notional: int = 0
    high: int = 0
    low: int = 0
    open: int = 0

    def add(self, bucket: _Bucket) -> None:
        if not bucket.count:
            return
        if not self.count:
            self.open, self.high, self.low = bucket.open, bucket.high, bucket.low
        else:
            self.high = max(self.high, bucket.high)
            self.low = min(self.low, bucket.low)
        self.count += bucket.count
        self.volume += bucket.volume
        self.notional += bucket.notional


@dataclass(slots=True)
class _Symbol:
    recent: deque[PublicTrade]
    buckets: deque[_Bucket] = field(default_factory=lambda: deque(maxlen=_DAY_MINUTES + 1))
    levels: dict[tuple[str, int], int] = field(default_factory=dict)


class MarketStats:
    """Per-symbol trade tape, minute buckets and level times (see the module docstring)."""

    def __init__(
        self, instruments: Iterable[Instrument], now_ns: Callable[[], int], recent: int = 1000
    ) -> None:
        self._now_ns = now_ns
        self._symbols = {inst.symbol: _Symbol(deque(maxlen=recent)) for inst in instruments}

    def on_result(self, result: Result) -> None:
        """A bus listener: record the trades and level changes of one ``Result``."""
        for trade in result.trades:
            st = self._symbols.get(trade.symbol)
            if st is None:
                continue
            st.recent.append(trade)
            minute = trade.timestamp // _MINUTE_NS
            buckets = st.buckets
            if not buckets or buckets[-1].minute != minute:
                buckets.append(_Bucket(minute, high=trade.price, low=trade.price, open=trade.price))
            b = buckets[-1]
            b.count += 1
            b.volume += trade.qty
            b.notional += trade.qty * trade.price
            b.high = max(b.high, trade.price)
            b.low = min(b.low, trade.price)
            b.close = trade.price
        if result.book:
            stamp = self._now_ns()
            for symbol, side, price, qty in result.book:
                st = self._symbols.get(symbol)
                if st is None:
                    continue
                if qty:
                    st.levels[(side, price)] = stamp
                else:
                    st.levels.pop((side, price), None)

    def level_time_ns(self, symbol: str, side: str, price: int, default: int) -> int:
        """When the level last changed (``default`` if unknown)."""
        st = self._symbols.get(symbol)
        return st.levels.get((side, price), default) if st is not None else default

    def trades(
        self, symbol: str, since_ns: int | None = None, count: int = 1000
    ) -> list[PublicTrade]:
        """The last trades after ``since_ns`` (oldest first, at most ``count``)."""
        st = self._symbols.get(symbol)
        if st is None:
            return []
        picked = [t for t in st.recent if since_ns is None or t.timestamp > since_ns]
        return picked[-count:] if count > 0 else picked

    def last_trade(self, symbol: str) -> PublicTrade | None:
        st = self._symbols.get(symbol)
        return st.recent[-1] if st is not None and st.recent else None

    def candles(self, symbol: str, interval_min: int) -> list[Candle]:
        """The last 24 hours in ``interval_min``-minute candles, oldest first (intervals
        with no trade are left out)."""
        st = self._symbols.get(symbol)
        out: list[Candle] = []
        if st is None:
            return out
        for b in st.buckets:
            if not b.count:
                continue
            start = b.minute - b.minute % interval_min
            if out and out[-1].minute == start:
                c = out[-1]
                out[-1] = Candle(
                    start,
                    c.open,
                    max(c.high, b.high),
                    min(c.low, b.low),
                    b.close,
                    c.volume + b.volume,
                    c.notional + b.notional,
                    c.count + b.count,
                )
            else:
                out.append(
                    Candle(start, b.open, b.high, b.low, b.close, b.volume, b.notional, b.count)
                )
        return out

    def windows(self, symbol: str, now_ns: int) -> tuple[Window, Window]:
        """(today since 00:00 UTC, the last 24 hours) for ``symbol``."""
        today, day = Window(), Window()
        st = self._symbols.get(symbol)
        if st is None:
            return today, day
        now_minute = now_ns // _MINUTE_NS
        midnight = now_minute - now_minute % _DAY_MINUTES
        for bucket in st.buckets:
            if bucket.minute > now_minute - _DAY_MINUTES:
                day.add(bucket)
            if bucket.minute >= midnight:
                today.add(bucket)
        return today, day
