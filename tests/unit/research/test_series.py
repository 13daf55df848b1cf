"""Streaming trackers: drawdown, bucket closes, time weights and chart decimation, by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.research.series import BucketCloses, Decimator, Drawdown, TimeWeighted

D = Decimal


def test_drawdown_is_the_largest_fall_below_an_earlier_peak() -> None:
    dd = Drawdown(start_ns=0)
    falls = [dd.observe(t, D(v)) for t, v in [(1, 10), (2, 4), (3, 12), (4, 2), (5, 8), (6, 13)]]
    assert falls == [0, -6, 0, -10, -4, 0]
    assert dd.max_drawdown == 10
    assert (dd.max_peak_ns, dd.max_trough_ns) == (3, 4)


def test_drawdown_from_the_start_counts_a_loss_below_zero() -> None:
    dd = Drawdown(start_ns=100)
    dd.observe(101, D("-2.5"))
    assert dd.max_drawdown == D("2.5")
    assert (dd.max_peak_ns, dd.max_trough_ns) == (100, 101)


def test_bucket_closes_take_the_last_value_before_each_boundary() -> None:
    closes = BucketCloses(start_ns=0, bucket_ns=10, end_ns=35)  # 3 whole buckets
    closes.observe(5, D(1))
    closes.observe(10, D(3))  # at a boundary: opens the next bucket
    closes.observe(25, D(2))
    closes.observe(34, D(100))  # in the partial last bucket: left out
    assert closes.returns() == [1, 2, -1]


def test_quiet_buckets_carry_the_value_forward() -> None:
    closes = BucketCloses(start_ns=0, bucket_ns=10, end_ns=50)
    closes.observe(3, D(4))
    assert closes.returns() == [4, 0, 0, 0, 0]


def test_time_weighted_mean_max_and_share() -> None:
    tw = TimeWeighted(start_ns=0)
    tw.observe(0, D(2))
    tw.observe(10, D(-4))
    tw.observe(15, D(0))
    # (2 * 10 + 4 * 5 + 0 * 5) / 20 = 2; |value| was above 0 for 15 of 20 ns
    assert tw.mean(20) == 2
    assert tw.share(20) == D("0.75")
    assert tw.maximum == 4


def test_an_empty_window_has_no_share() -> None:
    tw = TimeWeighted(start_ns=5)
    tw.observe(5, D(3))
    assert tw.mean(5) == 3
    assert tw.share(5) is None


def test_decimator_keeps_extremes_in_time_order_and_holds_to_the_end() -> None:
    dec = Decimator(0, 1000, buckets=10)
    for t in range(1000):
        spikes = {500: 99.0, 501: -99.0}
        dec.add(t, spikes.get(t, math.sin(t / 50)))
    points = dec.points()
    assert len(points) <= 10 * 4 + 1
    assert list(points.x) == sorted(points.x)
    assert 99.0 in points.y and -99.0 in points.y
    assert points.x[-1] == 1000  # the last value, repeated at the window's end
    assert points.x[0] == 0


def test_decimator_without_hold_stops_at_the_last_point() -> None:
    dec = Decimator(0, 100, buckets=4)
    dec.add(10, 1.0)
    assert dec.points(hold_to_end=False).x == (10,)


def test_decimator_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="at least one bucket"):
        Decimator(0, 10, buckets=0)


def test_values_after_the_window_make_no_bucket() -> None:
    closes = BucketCloses(start_ns=0, bucket_ns=10, end_ns=35)
    closes.observe(5, D(1))
    closes.observe(80, D(9))  # past the end: closes no bucket beyond the third
    assert closes.returns() == [1, 0, 0]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(1, 50),
    st.lists(st.tuples(st.floats(0, 1), st.floats(-1e6, 1e6)), min_size=1, max_size=200),
)
def test_each_slice_keeps_its_first_lowest_highest_and_last(
    start: int, span: int, buckets: int, raw: list[tuple[float, float]]
) -> None:
    dec = Decimator(start, start + span, buckets)
    points = sorted((start + int(f * span), v) for f, v in raw)
    by_slice: dict[int, list[tuple[int, float]]] = {}
    for ts, value in points:
        dec.add(ts, value)
        k = min((ts - start) * buckets // span, buckets - 1) if span else 0
        by_slice.setdefault(k, []).append((ts, value))
    kept = set(zip(dec.points(hold_to_end=False).x, dec.points(hold_to_end=False).y, strict=True))
    for group in by_slice.values():
        values = [v for _, v in group]
        assert group[0] in kept and group[-1] in kept
        assert min(values) in {v for _, v in kept} and max(values) in {v for _, v in kept}
