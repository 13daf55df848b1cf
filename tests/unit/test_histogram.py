"""``bot.core.histogram.Histogram``: bucket counts as Prometheus reads them."""

from __future__ import annotations

import pytest

from bot.core.histogram import Histogram


def test_a_value_on_a_bound_counts_in_that_bucket_and_above_all_in_the_last() -> None:
    hist = Histogram((0.01, 0.1))
    for value in (0.0, 0.01, 0.05, 0.1, 7.5):
        hist.observe(value)
    assert hist.counts == [2, 2, 1]  # le=0.01 holds 0.01 itself (Prometheus's "<=")
    assert hist.cumulative() == [2, 4, 5]
    assert hist.count == 5 and hist.total == pytest.approx(7.66)


@pytest.mark.parametrize("bounds", [(0.1, 0.01), (0.1, 0.1)])
def test_bounds_must_ascend(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        Histogram(bounds)
