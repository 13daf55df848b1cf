"""The market maker's volatility window, kept in constant time per book, says exactly what
the plain min and max over the window's mids say (it runs on every book of a backtest)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bot.strategy.testing import StrategyHarness
from strategies.market_maker import MarketMaker

MM = {"spread_bps": 20, "size": "0.01", "max_inventory": "0.02", "vol_limit_bps": 5}


@pytest.mark.parametrize(("seed", "window_s"), [(1, 0.5), (2, 5.0), (3, 30.0)])
def test_the_rolling_low_and_high_are_the_windows(seed: int, window_s: float) -> None:
    rng = random.Random(seed)
    h = StrategyHarness(MarketMaker, {**MM, "vol_window_s": window_s})
    mm = h.strategy
    seen: list[tuple[float, Decimal]] = []
    now, mid = 0.0, Decimal(30000)
    answers = []
    for _ in range(3000):
        now += rng.choice((0.0, 0.001, 0.05, 0.3, 1.0))
        mid += Decimal(rng.randint(-8, 8))
        seen.append((now, mid))
        inside = [m for t, m in seen if t >= now - window_s]
        low, high = min(inside), max(inside)
        expected = (high - low) / low * 10_000 > Decimal(5)
        got = mm.volatile("BTC/USD", now, mid)
        answers.append(got)
        assert got == expected
    assert True in answers and False in answers  # both answers were exercised
    assert len(mm.lows["BTC/USD"]) <= len(seen)
