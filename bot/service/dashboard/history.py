"""The dashboard's charts: the session's time series, thinned as the session grows (pure).

``History.add(observation)`` samples, every ``stride`` observations, one point of every
series on a shared time axis:

* ``equity:Q``, ``pnl:Q`` (realised + unrealised) and ``today:Q`` per quote currency Q;
* ``mid:S``, ``bid:S`` / ``ask:S`` (our best open buy and sell) and ``inv:S`` (the net
  position, base units) per symbol S;

and keeps every fill (per symbol, the last ``fills_per_symbol``; the first picture's
recorded fills too, so the markers start with the fills before this session). When ``capacity``
points are held, every other one is dropped and the stride doubles, so a session of any
length fits in a fixed size at a coarser step; ``epoch`` counts these thinnings (a client
holding the series fetches them again when it changes). Values are floats: charts are the
one place where the exact figures become approximate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from bot.kraken.instruments import from_scaled
from bot.service.dashboard.figures import equity, our_quotes
from bot.service.observe import FillSeen, Observation

__all__ = ["CAPACITY", "FILLS_PER_SYMBOL", "History", "Point"]

CAPACITY: Final = 2000
FILLS_PER_SYMBOL: Final = 500


@dataclass(frozen=True, slots=True)
class Point:
    """One sample: milliseconds since the epoch and each series' value (None: unknown)."""

    t_ms: int
    values: Mapping[str, float | None]

    def json(self) -> dict[str, Any]:
        return {"t": self.t_ms, "values": dict(self.values)}


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def fill_point(seen: FillSeen) -> dict[str, Any]:
    fill = seen.fill
    return {
        "t": fill.ts_ns // 1_000_000,
        "symbol": fill.symbol,
        "side": fill.side,
        "price": float(from_scaled(fill.price, fill.price_precision)),
        "qty": float(from_scaled(fill.qty, fill.qty_precision)),
        "strategy": seen.strategy,
    }


class History:
    """See the module docstring."""

    def __init__(self, capacity: int = CAPACITY, fills_per_symbol: int = FILLS_PER_SYMBOL) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.stride = 1
        self.epoch = 0
        self._points: list[Point] = []
        self._names: dict[str, None] = {}  # every series seen, in order
        self._fills: dict[str, deque[dict[str, Any]]] = {}
        self._fills_per_symbol = fills_per_symbol
        self._skipped = 0
        self._seeded = False

    def __len__(self) -> int:
        return len(self._points)

    def add(self, obs: Observation) -> tuple[Point | None, list[dict[str, Any]]]:
        """Take ``obs``: the point it sampled (None between samples) and its new fills."""
        if not obs.running:
            return None, []
        if not self._seeded:  # the fills recorded before: markers from the start
            self._seeded = True
            self._keep([fill_point(f) for f in obs.fills if f not in obs.new_fills])
        fills = [fill_point(f) for f in obs.new_fills]
        self._keep(fills)
        self._skipped += 1
        if self._skipped < self.stride and self._points:
            return None, fills
        self._skipped = 0
        point = Point(obs.at_ns // 1_000_000, sample(obs))
        self._names.update(dict.fromkeys(point.values))
        self._points.append(point)
        if len(self._points) >= self.capacity:
            self._points = self._points[::-1][::2][::-1]  # keep the newest, drop every other
            self.stride *= 2
            self.epoch += 1
        return point, fills

    def _keep(self, fills: list[dict[str, Any]]) -> None:
        for point in fills:
            kept = self._fills.setdefault(point["symbol"], deque(maxlen=self._fills_per_symbol))
            kept.append(point)

    def json(self) -> dict[str, Any]:
        """``/api/history``: the time axis, each series aligned to it, fills per symbol."""
        names = list(self._names)
        return {
            "epoch": self.epoch,
            "stride": self.stride,
            "t": [p.t_ms for p in self._points],
            "series": {n: [p.values.get(n) for p in self._points] for n in names},
            "fills": {s: list(kept) for s, kept in sorted(self._fills.items())},
        }


def sample(obs: Observation) -> dict[str, float | None]:
    """Every series' value in ``obs``."""
    values: dict[str, float | None] = {}
    for quote, value in sorted(equity(obs).items()):
        values[f"equity:{quote}"] = float(value)
    for quote, pnl in sorted(obs.pnl.items()):
        values[f"pnl:{quote}"] = float(pnl.total)
        values[f"today:{quote}"] = float(pnl.today)
    quotes = our_quotes(obs.open_orders)
    inventory = {p.symbol: p.qty for p in obs.totals}
    for symbol in sorted(obs.instruments):
        bid, ask = quotes.get(symbol, (None, None))
        values[f"mid:{symbol}"] = _f(obs.mids.get(symbol))
        values[f"bid:{symbol}"] = _f(bid)
        values[f"ask:{symbol}"] = _f(ask)
        values[f"inv:{symbol}"] = float(inventory.get(symbol, Decimal(0)))
    return values
