"""Sharpe and Sortino on a stated sampling: hand-computed cases, and when there is no number."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.research.record import BadInput
from bot.research.stats import MIN_RETURNS, SAMPLINGS, choose_sampling, sharpe, sortino

D = Decimal
MINUTE = 60 * 10**9
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# 15 winning buckets of +3 and 15 losing ones of -1: mean 1, deviations ±2.
UP_DOWN = [D(3), D(-1)] * 15


def test_auto_picks_the_coarsest_bucket_with_enough_returns() -> None:
    assert choose_sampling(40 * DAY).name == "1d"
    assert choose_sampling(30 * DAY).name == "1d"
    assert choose_sampling(30 * DAY - 1).name == "1h"  # 29 whole days: hours instead
    assert choose_sampling(2 * DAY).name == "1h"
    assert choose_sampling(3 * HOUR).name == "1m"
    assert choose_sampling(10 * MINUTE).name == "1m"  # too short for any: minutes, n/a later


def test_a_named_sampling_is_taken_as_asked_and_a_bad_name_is_refused() -> None:
    assert choose_sampling(40 * DAY, "1m") is SAMPLINGS["1m"]
    with pytest.raises(BadInput, match=r"sampling '2h': expected one of auto, 1m, 1h, 1d"):
        choose_sampling(DAY, "2h")


def test_sharpe_by_hand() -> None:
    # sample variance = 30 * 2² / 29 = 120/29; per bucket 1 / sqrt(120/29); per year
    # sqrt(365) times that = sqrt(29 * 365 / 120) = sqrt(88.208333...) = 9.39193...
    ratio = sharpe(UP_DOWN, SAMPLINGS["1d"])
    assert ratio.value == D("9.3919")
    assert ratio.note == ""
    # the same returns on minutes: sqrt(29 * 525600 / 120) = sqrt(127020) = 356.3987...
    assert sharpe(UP_DOWN, SAMPLINGS["1m"]).value == D("356.3987")


def test_sortino_by_hand() -> None:
    # downside deviation = sqrt(15 * 1² / 30) = sqrt(1/2); mean 1: per bucket sqrt(2);
    # per year sqrt(2 * 365) = sqrt(730) = 27.018512...
    assert sortino(UP_DOWN, SAMPLINGS["1d"]).value == D("27.0185")
    # hours: sqrt(2 * 8760) = 132.3631...
    assert sortino(UP_DOWN, SAMPLINGS["1h"]).value == D("132.3631")


def test_the_ratios_are_scale_free_as_the_readme_says() -> None:
    scaled = [r * D("0.37") for r in UP_DOWN]
    assert sharpe(scaled, SAMPLINGS["1d"]) == sharpe(UP_DOWN, SAMPLINGS["1d"])
    assert sortino(scaled, SAMPLINGS["1d"]) == sortino(UP_DOWN, SAMPLINGS["1d"])


def test_too_few_returns_give_a_reason_not_a_number() -> None:
    few = UP_DOWN[: MIN_RETURNS - 1]
    for ratio in (sharpe(few, SAMPLINGS["1h"]), sortino(few, SAMPLINGS["1h"])):
        assert ratio.value is None
        assert ratio.note == "only 29 one-hour returns (30 needed)"
        assert ratio.text() == "n/a"


def test_flat_returns_and_no_losses_are_undefined_and_say_so() -> None:
    flat = [D(2)] * 30
    assert sharpe(flat, SAMPLINGS["1h"]).value is None
    assert "no variation" in sharpe(flat, SAMPLINGS["1h"]).note
    assert sortino(flat, SAMPLINGS["1h"]).value is None
    assert "no losing bucket" in sortino(flat, SAMPLINGS["1h"]).note


def test_losing_returns_give_negative_ratios() -> None:
    losing = [-r for r in UP_DOWN]
    assert sharpe(losing, SAMPLINGS["1d"]).value == D("-9.3919")
    # downside: 15 buckets of -3: sqrt(15 * 9 / 30) = sqrt(4.5); mean -1
    # -1 / sqrt(4.5) * sqrt(365) = -sqrt(365 / 4.5) = -9.0062...
    assert sortino(losing, SAMPLINGS["1d"]).value == D("-9.0062")
