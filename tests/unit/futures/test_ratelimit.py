"""The /derivatives budget: Kraken's cost table and 500 per 10 s."""

from __future__ import annotations

import pytest

from bot.futures.ratelimit import FuturesBudget, endpoint_cost


def test_costs_from_the_table() -> None:
    assert endpoint_cost("sendorder") == 10
    assert endpoint_cost("/derivatives/api/v3/editorder") == 10
    assert endpoint_cost("batchorder", batch_size=10) == 19  # the docs' own example
    assert endpoint_cost("fills") == 2
    assert endpoint_cost("fills", last_fill_time=True) == 25
    assert endpoint_cost("cancelallordersafter") == 25
    assert endpoint_cost("accounts") == 2
    assert endpoint_cost("orderbook") == 0
    with pytest.raises(ValueError):
        endpoint_cost("batchorder")


def test_fifty_orders_fit_then_the_budget_drains_at_fifty_a_second() -> None:
    budget = FuturesBudget()
    for _ in range(50):
        assert budget.try_charge(10, now=0.0)
    assert not budget.try_charge(10, now=0.0)  # the 51st in the same instant
    assert budget.wait_time(10, now=0.0) == pytest.approx(0.2)
    assert budget.try_charge(10, now=0.2)
    assert budget.value(now=10.2) == 0


def test_reserve_queues_callers_in_time() -> None:
    budget = FuturesBudget(budget=20, window_s=10)  # drains 2 per second
    assert budget.reserve(20, now=0.0) == 0
    assert budget.reserve(10, now=0.0) == pytest.approx(5.0)
    assert budget.reserve(10, now=0.0) == pytest.approx(10.0)
    budget.saturate(now=20.0)
    assert budget.headroom(now=20.0) == 0
