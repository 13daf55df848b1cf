"""The simulator's rate limits (``bot.sim.limits``), pinned by Kraken's rate-limit pages:
https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits (REST call counter) and
https://docs.kraken.com/api/docs/guides/spot-ratelimits (trading counter), with their
tables and worked examples."""

from __future__ import annotations

import pytest

from bot.sim.limits import (
    OPEN_ORDER_LIMITS,
    REST_TIERS,
    TRADING_TIERS,
    Cost,
    RestCounter,
    Tier,
    TradingCounter,
    rest_cost,
)


def test_the_tables_are_krakens() -> None:
    assert {t: (lim.maximum, lim.decay_centi_per_s) for t, lim in REST_TIERS.items()} == {
        Tier.STARTER: (15, 33),
        Tier.INTERMEDIATE: (20, 50),
        Tier.PRO: (20, 100),
    }
    assert {t: (lim.maximum, lim.decay_centi_per_s) for t, lim in TRADING_TIERS.items()} == {
        Tier.STARTER: (60, 100),
        Tier.INTERMEDIATE: (125, 234),
        Tier.PRO: (180, 375),
    }
    assert OPEN_ORDER_LIMITS == {Tier.STARTER: 60, Tier.INTERMEDIATE: 80, Tier.PRO: 225}


def test_rest_costs() -> None:
    # "Ledger/trade history calls increase the counter by 2. All other API calls increase
    # this counter by 1 (except AddOrder, CancelOrder which operate on a different limiter)"
    assert rest_cost("Ledgers") == rest_cost("TradesHistory") == 2
    assert rest_cost("Balance") == rest_cost("OpenOrders") == rest_cost("GetWebSocketsToken") == 1
    assert rest_cost("AddOrder") == rest_cost("CancelOrder") == 0


def test_amend_and_edit_cost_1_only_add_and_cancel_are_exempt() -> None:
    # The page exempts "AddOrder, CancelOrder which operate on a different limiter" and no
    # other call: AmendOrder and EditOrder cost 1 like every other call. The batch forms of
    # the two exempt calls (many adds, many cancels) are exempt with them.
    assert rest_cost("AmendOrder") == rest_cost("EditOrder") == 1
    assert rest_cost("AddOrderBatch") == rest_cost("CancelOrderBatch") == 0


def test_the_simulators_rest_costs_agree_with_the_clients() -> None:
    # Two readings of the same page, written apart (bot.sim must not import the client's
    # model; a test may compare them): they must agree on every method either knows.
    from bot.kraken.ratelimit import RestCounter as ClientRestCounter

    methods = (
        "AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder",
        "CancelOrderBatch", "CancelAll", "CancelAllOrdersAfter", "Balance", "BalanceEx",
        "OpenOrders", "ClosedOrders", "QueryOrders", "TradesHistory", "QueryTrades",
        "Ledgers", "QueryLedgers", "GetWebSocketsToken",
    )  # fmt: skip
    assert {m: rest_cost(m) for m in methods} == {
        m: int(ClientRestCounter.cost(m)) for m in methods
    }


@pytest.mark.parametrize(("tier", "maximum", "decay"), [("starter", 15, 0.33), ("pro", 20, 1.0)])
def test_rest_counter_fills_refuses_and_decays(tier: str, maximum: int, decay: float) -> None:
    counter = RestCounter(tier)
    assert all(counter.try_charge(1, 100.0) for _ in range(maximum))
    assert not counter.try_charge(1, 100.0)  # refused, and counted
    assert counter.value(100.0) == maximum + 1
    # After 3 s: maximum + 1 - 3 * decay; one more call fits once the excess has decayed.
    assert counter.value(103.0) == pytest.approx(maximum + 1 - 3 * decay)
    wait = 2 / decay
    assert not counter.try_charge(1, 100.0 + wait * 0.99)
    assert counter.try_charge(0, 100.0)  # a free call is never refused


def test_the_guides_worked_example_add_amend_cancel_costs_8() -> None:
    # "add, amend after 7 s, then cancel 36 s later" = 1 + (1 + 2) + 4 = 8
    counter = TradingCounter("pro")
    assert counter.try_charge("BTC/USD", TradingCounter.add(), 0.0)
    assert counter.try_charge("BTC/USD", TradingCounter.amend(7.0), 0.0)
    assert counter.try_charge("BTC/USD", TradingCounter.cancel(36.0), 0.0)
    assert counter.value("BTC/USD", 0.0) == 8


def test_the_guides_decay_example() -> None:
    # "(50 * 1) - (10 * 2.34) = 26.6": Intermediate, 50 counts, 10 s later
    counter = TradingCounter("intermediate")
    for _ in range(50):
        assert counter.try_charge("ETH/USD", TradingCounter.add(), 10.0)
    assert counter.value("ETH/USD", 20.0) == pytest.approx(26.6)
    assert counter.value_centi("ETH/USD", 20.0) == 2660  # exact, no float drift


@pytest.mark.parametrize(
    ("age", "amend", "edit", "cancel"),
    [
        (0.0, 4, 7, 8),
        (4.99, 4, 7, 8),
        (5.0, 3, 6, 6),
        (10.0, 2, 5, 5),
        (15.0, 1, 3, 4),
        (45.0, 1, 2, 2),
        (90.0, 1, 1, 1),
        (300.0, 1, 1, 0),
    ],
)
def test_age_bands(age: float, amend: int, edit: int, cancel: int) -> None:
    assert TradingCounter.amend(age).total == amend * 100
    assert TradingCounter.edit(age).total == edit * 100
    assert TradingCounter.cancel(age).total == cancel * 100


def test_a_refused_request_keeps_its_fixed_count_and_batches_overshoot() -> None:
    counter = TradingCounter("starter")
    for _ in range(59):
        assert counter.try_charge("X", TradingCounter.add(), 0.0)
    assert not counter.try_charge("X", TradingCounter.amend(0.0), 0.0)  # 59 + 4 > 60
    assert counter.value("X", 0.0) == 60  # the fixed +1 stays
    assert not counter.try_charge(
        "X", TradingCounter.batch_add(4), 0.0, batch=True
    )  # at the threshold
    assert counter.value("X", 0.5) == pytest.approx(61.5)
    assert not counter.try_charge(
        "X", TradingCounter.batch_add(2), 2.0, batch=True
    )  # 62 - 2 = 60: full
    # Refused, it kept its fixed +1: 61 at 2 s, 59 at 4 s, below the threshold.
    assert counter.try_charge("X", TradingCounter.batch_add(15), 4.0, batch=True)
    assert counter.value("X", 4.0) == pytest.approx(66.5)  # charged in full: 59 + 7.5
    assert TradingCounter.batch_add(3) == Cost(fixed=150)
    counter.prune(100.0)
    assert counter.pairs() == []
