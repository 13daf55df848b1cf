"""Bucket counts of one latency series: plain ints a component keeps on its own path.

``Histogram.observe`` is one ``bisect`` and two additions (no lock, no allocation beyond
the float it is given), so a component can time its own requests where they happen and
``bot.service.metrics`` reads the counts at scrape time as a Prometheus histogram. The
bounds are ascending upper limits; the last bucket (above every bound) is +Inf's.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["Histogram"]


class Histogram:
    """Counts per bucket (not cumulative), the sum and the number of observations."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram bounds must be ascending and distinct: {bounds}")
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        """Prometheus's view: observations at or below each bound, then the total count."""
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out
