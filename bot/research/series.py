"""Streaming views of a value over time: drawdown, bucket closes, time weights, chart points.

The report core (``bot.research.figures``) replays a run once, event by event, and feeds
each curve's new value here; nothing keeps the full curve, so a backtest of millions of
book frames reports in memory that does not grow with its length.

* ``Drawdown``: the running peak and the largest fall from it (exact).
* ``BucketCloses``: the value at the end of every whole bucket of the window (exact), for
  the returns of ``bot.research.stats``.
* ``TimeWeighted``: the time-weighted mean of ``|value|``, its maximum and the share of
  the window it was not zero (exact, ns resolution).
* ``Decimator``: chart points. The window is cut into ``buckets`` equal slices; each slice
  keeps its first, lowest, highest and last point, so a chart of a million values draws
  from a few thousand and still shows every spike and trough. Floats: chart coordinates
  only.

Every tracker takes values that hold *from* their timestamp on (step functions), in time
order. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

__all__ = ["BucketCloses", "Decimator", "Drawdown", "Points", "TimeWeighted"]

_ZERO: Final = Decimal(0)
_CTX: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)  # the one quotient (a mean)
# Sums and products of exact figures: wide enough never to round them.
_WIDE: Final = Context(prec=200, rounding=ROUND_HALF_EVEN)


@dataclass(slots=True)
class Drawdown:
    """Peak-to-trough: ``max_drawdown`` ≥ 0 is the largest fall below an earlier peak."""

    start_ns: int
    peak: Decimal = _ZERO
    peak_ns: int = 0
    max_drawdown: Decimal = _ZERO
    max_peak_ns: int | None = None
    max_trough_ns: int | None = None

    def __post_init__(self) -> None:
        self.peak_ns = self.start_ns

    def observe(self, ts_ns: int, value: Decimal) -> Decimal:
        """Take a new value; return the current drawdown (≤ 0: value − peak)."""
        if value > self.peak:
            self.peak, self.peak_ns = value, ts_ns
            return _ZERO
        fall = _WIDE.subtract(self.peak, value)
        if fall > self.max_drawdown:
            self.max_drawdown = fall
            self.max_peak_ns, self.max_trough_ns = self.peak_ns, ts_ns
        return -fall


@dataclass(slots=True)
class BucketCloses:
    """The value at the end of each whole bucket ``[start + k·b, start + (k+1)·b)``."""

    start_ns: int
    bucket_ns: int
    end_ns: int
    value: Decimal = _ZERO
    closes: list[Decimal] = field(default_factory=list)

    @property
    def buckets(self) -> int:
        return max(self.end_ns - self.start_ns, 0) // self.bucket_ns

    def _close_until(self, ts_ns: int) -> None:
        limit = self.buckets
        closes = self.closes
        while len(closes) < limit and self.start_ns + (len(closes) + 1) * self.bucket_ns <= ts_ns:
            closes.append(self.value)

    def observe(self, ts_ns: int, value: Decimal) -> None:
        """``value`` holds from ``ts_ns`` on (an event at a boundary opens the next bucket)."""
        self._close_until(ts_ns)
        self.value = value

    def returns(self) -> list[Decimal]:
        """Each whole bucket's change, the first from 0 (the value at the window's start)."""
        self._close_until(self.end_ns)
        out, before = [], _ZERO
        for close in self.closes:
            out.append(_WIDE.subtract(close, before))
            before = close
        return out


@dataclass(slots=True)
class TimeWeighted:
    """∫|value| dt, the maximum |value| and the time |value| > 0, from ``start_ns``."""

    start_ns: int
    value: Decimal = _ZERO
    since_ns: int = 0
    integral: Decimal = _ZERO
    nonzero_ns: int = 0
    maximum: Decimal = _ZERO

    def __post_init__(self) -> None:
        self.since_ns = self.start_ns

    def _accrue(self, ts_ns: int) -> None:
        dt = ts_ns - self.since_ns
        if dt > 0 and self.value:
            self.integral = _WIDE.fma(abs(self.value), Decimal(dt), self.integral)
            self.nonzero_ns += dt
        self.since_ns = max(self.since_ns, ts_ns)

    def observe(self, ts_ns: int, value: Decimal) -> None:
        self._accrue(ts_ns)
        self.value = value
        self.maximum = max(self.maximum, abs(value))

    def mean(self, end_ns: int) -> Decimal:
        """Time-weighted mean of |value| over ``[start, end]`` (the value itself if empty)."""
        self._accrue(end_ns)
        span = end_ns - self.start_ns
        if span <= 0:
            return abs(self.value)
        return _CTX.divide(self.integral, Decimal(span))

    def share(self, end_ns: int) -> Decimal | None:
        """The fraction of ``[start, end]`` the value was not zero (``None`` if empty)."""
        self._accrue(end_ns)
        span = end_ns - self.start_ns
        return None if span <= 0 else _CTX.divide(Decimal(self.nonzero_ns), Decimal(span))


@dataclass(frozen=True, slots=True)
class Points:
    """A chart's coordinates: ns timestamps and float values (same length)."""

    x: tuple[int, ...]
    y: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.x)


class Decimator:
    """First, lowest, highest and last point of each of ``buckets`` slices of the window."""

    __slots__ = ("_kept", "_last", "_slices", "_until", "buckets", "end_ns", "start_ns")

    def __init__(self, start_ns: int, end_ns: int, buckets: int = 600) -> None:
        if buckets < 1:
            raise ValueError("a decimator needs at least one bucket")
        self.start_ns, self.end_ns, self.buckets = start_ns, max(end_ns, start_ns), buckets
        # slice -> [first, lowest, highest, last], each (ts_ns, value)
        self._slices: dict[int, list[tuple[int, float]]] = {}
        self._last: tuple[int, float] | None = None
        self._kept: list[tuple[int, float]] | None = None  # the slice of the last point...
        self._until = self.start_ns  # ...which holds the points before this time

    def _slice(self, ts_ns: int) -> int:
        span = self.end_ns - self.start_ns
        if span <= 0:
            return 0
        return min((ts_ns - self.start_ns) * self.buckets // span, self.buckets - 1)

    def add(self, ts_ns: int, value: float) -> None:
        """A point; points come in time order (most land in the slice of the one before)."""
        point = (ts_ns, value)
        self._last = point
        kept = self._kept
        if kept is None or ts_ns >= self._until:
            k = self._slice(ts_ns)
            span = self.end_ns - self.start_ns
            # the first ts of slice k + 1: ceil(start + (k + 1) * span / buckets)
            self._until = self.start_ns + (-(-(k + 1) * span // self.buckets) if span else 1)
            kept = self._slices.get(k)
            if kept is None:
                kept = self._slices[k] = [point, point, point, point]
                self._kept = kept
                return
            self._kept = kept
        if value < kept[1][1]:
            kept[1] = point
        if value > kept[2][1]:
            kept[2] = point
        kept[3] = point

    def points(self, *, hold_to_end: bool = True) -> Points:
        """The kept points in time order; with ``hold_to_end`` the last value is repeated
        at the window's end, so a step line reaches it."""
        chosen: list[tuple[int, float]] = []
        for k in sorted(self._slices):
            chosen.extend(sorted(set(self._slices[k])))
        if hold_to_end and self._last is not None and self._last[0] < self.end_ns:
            chosen.append((self.end_ns, self._last[1]))
        return Points(tuple(p[0] for p in chosen), tuple(p[1] for p in chosen))
