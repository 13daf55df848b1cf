"""Capped exponential backoff with jitter (bot.core.backoff): pure, no clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.backoff import Backoff, BackoffPolicy


def test_without_jitter_the_series_doubles_up_to_the_cap() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=0.5, max_s=5.0, factor=2.0, jitter=0.0))
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff.attempts == 7


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=0.1, max_s=10.0, factor=3.0, jitter=0.0))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.peek_base() == 0.1
    assert backoff.next_delay() == 0.1
    assert backoff.next_delay() == pytest.approx(0.3)


def test_jitter_takes_a_random_share_off_the_base() -> None:
    draws = iter([0.0, 0.5, 0.999])
    policy = BackoffPolicy(initial_s=1.0, max_s=1.0, jitter=0.5)
    backoff = Backoff(policy, random=lambda: next(draws))
    assert backoff.next_delay() == 1.0
    assert backoff.next_delay() == 0.75
    assert backoff.next_delay() == pytest.approx(0.5005)


def test_full_jitter_can_reach_zero() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=2.0, max_s=2.0, jitter=1.0), random=lambda: 1.0)
    assert backoff.next_delay() == 0.0


def test_seeded_series_are_reproducible_and_spread_out() -> None:
    policy = BackoffPolicy(initial_s=1.0, max_s=1.0, jitter=0.5)
    a = Backoff(policy, random=random.Random(7).random)
    b = Backoff(policy, random=random.Random(7).random)
    first = [a.next_delay() for _ in range(20)]
    assert first == [b.next_delay() for _ in range(20)]
    assert len(set(first)) == 20  # jitter actually varies the delays


def test_many_attempts_never_overflow() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=0.001, max_s=60.0, factor=10.0, jitter=0.0))
    for _ in range(10_000):
        delay = backoff.next_delay()
    assert delay == 60.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": 5.0, "max_s": 1.0},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(**kwargs)


policies = st.builds(
    lambda initial, extra, factor, jitter: BackoffPolicy(initial, initial + extra, factor, jitter),
    st.floats(0.001, 10.0),
    st.floats(0.0, 100.0),
    st.floats(1.0, 5.0),
    st.floats(0.0, 1.0),
)


@given(policy=policies, seed=st.integers(0, 2**32), n=st.integers(1, 60))
def test_every_delay_lies_within_its_jitter_band_and_under_the_cap(
    policy: BackoffPolicy, seed: int, n: int
) -> None:
    backoff = Backoff(policy, random=random.Random(seed).random)
    jitter, cap = policy.jitter, policy.max_s
    for _ in range(n):
        base = backoff.peek_base()
        delay = backoff.next_delay()
        assert base * (1 - jitter) - 1e-12 <= delay <= base <= cap
        assert backoff.peek_base() >= base  # never shrinks until reset
