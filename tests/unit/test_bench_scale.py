"""The scale bench: its pure parts (symbols over connections, stamps, lags, the verdict) and a
smoke run of the real thing (3 symbols, a second) that checks the numbers are real.

No timing is asserted: speed belongs to the benchmark's report, not to tests.
"""

from __future__ import annotations

import pytest

from bench.book_stream import BTC_USD
from bench.scale import run_scale_bench
from bench.scale_plan import (
    CONNECTS_PER_10_MIN,
    DAY_US,
    MAX_SYMBOLS_PER_CONNECTION,
    STAMP_LEN,
    highest_kept,
    instruments,
    lag_us,
    percentile,
    spread,
    stamp,
    stamp_us_of_day,
    summary,
)

SYMBOLS = tuple(f"S{i:03d}/USD" for i in range(1, 301))


# -- symbols over connections -------------------------------------------------------------


def test_every_kraken_usd_pair_goes_on_two_connections_within_the_documented_200() -> None:
    groups = spread(SYMBOLS)

    assert [len(g) for g in groups] == [150, 150]
    assert all(len(g) <= MAX_SYMBOLS_PER_CONNECTION for g in groups)
    assert tuple(s for g in groups for s in g) == SYMBOLS  # each once, in order


@pytest.mark.parametrize(
    ("count", "cap", "sizes"),
    [(0, 200, []), (1, 200, [1]), (200, 200, [200]), (201, 200, [101, 100]), (7, 3, [3, 2, 2])],
)
def test_spread_uses_the_fewest_connections_and_keeps_them_even(
    count: int, cap: int, sizes: list[int]
) -> None:
    assert [len(g) for g in spread(SYMBOLS[:count], cap)] == sizes


def test_spread_refuses_a_symbol_twice_a_zero_cap_and_too_many_connections() -> None:
    with pytest.raises(ValueError, match="each symbol once"):
        spread(("BTC/USD", "BTC/USD"))
    with pytest.raises(ValueError, match="at least 1"):
        spread(SYMBOLS, 0)
    names = tuple(f"S{i}/USD" for i in range(CONNECTS_PER_10_MIN + 1))
    assert len(spread(names[:-1], 1)) == CONNECTS_PER_10_MIN
    with pytest.raises(ValueError, match="per 10 min"):
        spread(names, 1)


# -- stamps and lags ----------------------------------------------------------------------


def test_a_stamp_reads_back_as_its_microsecond_of_the_day() -> None:
    wall_ns = 1_796_597_891_123_456_789  # 2026-12-06T22:58:11.123456789Z
    text = stamp(wall_ns)

    assert text == "2026-12-06T22:58:11.123456Z"
    assert len(text) == STAMP_LEN
    assert stamp_us_of_day(text) == wall_ns // 1000 % DAY_US


def test_a_kraken_timestamp_with_fewer_digits_is_not_taken_for_a_stamp() -> None:
    for text in ("2023-10-06T17:35:55.4402Z", "", "2026-12-06 22:58:11.123456Z"):
        with pytest.raises(ValueError, match="not a bench stamp"):
            stamp_us_of_day(text)


def test_lag_is_seen_minus_stamped_and_a_frame_across_midnight_is_not_a_day_early() -> None:
    assert lag_us(5_000_250, 5_000_000) == 250
    before = stamp_us_of_day("2026-12-06T23:59:59.999900Z")
    after = stamp_us_of_day("2026-12-07T00:00:00.000100Z")

    assert lag_us(after, before) == 200


def test_percentiles_are_nearest_rank_and_the_summary_counts_every_lag() -> None:
    lags = list(range(100, 0, -1))  # 1..100, unordered

    assert percentile(sorted(lags), 50) == 50
    assert percentile(sorted(lags), 99) == 99
    assert percentile([7], 99) == 7
    assert percentile([1, 2, 3], 50) == 2  # rank ceil(1.5) = 2
    assert percentile(list(range(1, 11)), 99) == 10  # rank ceil(9.9) = 10: the worst of 10
    assert summary(lags) == {"count": 100, "p50_us": 50, "p99_us": 99, "max_us": 100}
    assert summary([]) == {"count": 0, "p50_us": 0, "p99_us": 0, "max_us": 0}
    with pytest.raises(ValueError):
        percentile([], 50)


def _step(asked: int, rate: int, p99: int, lost: int = 0) -> dict[str, int]:
    return {"rate_asked": asked, "rate": rate, "p99_us": p99,
            "frames_sent": asked, "frames_seen": asked - lost}  # fmt: skip


def test_the_highest_kept_rate_needs_every_frame_seen_and_p99_under_10_ms() -> None:
    steps = [
        _step(2_500, 2_499, 900),
        _step(5_000, 4_990, 9_999),
        _step(10_000, 10_000, 10_000),  # p99 at the limit: not under it
        _step(15_000, 15_000, 800, lost=1),  # a frame lost
    ]
    assert highest_kept(steps) == 5_000
    assert highest_kept([_step(20_000, 12_000, 500)]) == 12_000  # what the server achieved
    assert highest_kept([]) == 0


def test_the_stand_in_pairs_are_distinct_with_btc_usd_precisions() -> None:
    made = instruments(300, BTC_USD)

    assert len({inst.symbol for inst in made}) == 300
    assert made[0].symbol == "S001/USD"
    assert {inst.price_precision for inst in made} == {BTC_USD.price_precision}


# -- the real thing, tiny -----------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_smoke_run_sees_every_frame_sent_over_two_connections() -> None:
    result = run_scale_bench((3,), (300,), seconds=1.0, per_connection=2)

    (both,) = result["runs"]
    assert both["symbols"] == 3
    for name in ("floor", "krakenbot"):
        run = both[name]
        assert run["connections"] == run["server_connections"] == 2, name
        assert run["books_valid"] == 3, name
        (step,) = run["steps"]
        assert step["frames_sent"] == 300, name
        assert step["frames_seen"] == 300, name
        assert step["checksum_failures"] == 0, name
        assert 0 < step["p50_us"] <= step["p99_us"] <= step["max_us"], name
        assert run["rss_first_mb"] > 0, name
    assert set(both["p99_ratio_to_floor"]) == {"300"}
    assert result["machine"]["cpus"] >= 1
