"""Kraken's REST call counter and per-pair trading counter, against the documented figures.

Figures: https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits (REST counter) and
https://docs.kraken.com/api/docs/guides/spot-ratelimits (trading counter), KRAKEN.md §2.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.kraken.ratelimit import (
    ACCOUNT_WIDE,
    REST_LIMITS,
    TRADING_LIMITS,
    CounterLimits,
    RestCounter,
    Tier,
    TradingCost,
    TradingCounter,
    start_value,
)

# --- REST call counter ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "maximum", "decay"),
    [("starter", 15, 0.33), ("intermediate", 20, 0.5), ("pro", 20, 1.0)],
)
def test_rest_tier_table(tier: str, maximum: float, decay: float) -> None:
    counter = RestCounter(tier)
    assert counter.tier is Tier(tier)
    assert counter.limits == CounterLimits(maximum, decay)
    assert REST_LIMITS[Tier(tier)] == CounterLimits(maximum, decay)


@pytest.mark.parametrize(
    ("method", "cost"),
    [
        ("Balance", 1),
        ("OpenOrders", 1),
        ("QueryOrders", 1),
        ("CancelAllOrdersAfter", 1),
        ("GetWebSocketsToken", 1),
        ("TradesHistory", 2),
        ("Ledgers", 2),
        ("QueryLedgers", 2),
        ("QueryTrades", 2),
        ("ClosedOrders", 2),  # conservative: see the module
        ("/0/private/Ledgers", 2),
        ("AddOrder", 0),  # the docs' only two exemptions: "a different limiter"
        ("CancelOrder", 0),
        ("/0/private/CancelOrder", 0),
        ("AmendOrder", 1),  # not exempt: on the REST counter and the trading counter
        ("EditOrder", 1),
        ("AddOrderBatch", 0),  # the exempt calls' batch forms
        ("/0/private/CancelOrderBatch", 0),
    ],
)
def test_rest_costs(method: str, cost: float) -> None:
    assert RestCounter.cost(method) == cost


def test_rest_counter_fills_then_decays() -> None:
    counter = RestCounter(Tier.STARTER)
    for _ in range(15):
        assert counter.wait_time(1, 100.0) == 0.0
        counter.charge(1, 100.0)
    assert counter.value(100.0) == 15
    assert counter.headroom(100.0) == 0
    # Full: the next call must wait for 1 unit of decay at 0.33/s.
    assert counter.wait_time(1, 100.0) == pytest.approx(1 / 0.33)
    assert counter.wait_time(2, 100.0) == pytest.approx(2 / 0.33)
    assert counter.value(110.0) == pytest.approx(15 - 3.3)
    assert counter.value(200.0) == 0.0
    waited = 100.0 + counter.wait_time(1, 100.0)
    assert counter.wait_time(1, waited) == 0.0


def test_rest_counter_time_going_backwards_never_decays() -> None:
    counter = RestCounter(Tier.PRO)
    counter.charge(5, 10.0)
    assert counter.value(9.0) == 5
    assert counter.value(12.0) == pytest.approx(3)


def test_rest_try_charge_refuses_like_kraken() -> None:
    server = RestCounter(Tier.INTERMEDIATE)
    accepted = [server.try_charge(1, 0.0) for _ in range(20)]
    assert all(accepted)
    assert not server.try_charge(1, 0.0)  # -> EAPI:Rate limit exceeded
    # The refused call still counted: calls made while limited prolong the restriction.
    assert server.value(0.0) == 21
    assert not server.try_charge(1, 2.0)  # 21 - 1 = 20, +1 would be 21
    assert server.try_charge(1, 6.0)  # 22 - 3 = 19, +1 = 20


def test_rest_try_charge_without_counting_refusals() -> None:
    server = RestCounter(Tier.INTERMEDIATE, refused_calls_count=False)
    for _ in range(20):
        server.try_charge(1, 0.0)
    assert not server.try_charge(2, 0.0)
    assert server.value(0.0) == 20
    assert server.try_charge(1, 2.0)


def test_rest_order_entry_is_never_held_back_by_the_rest_counter() -> None:
    counter = RestCounter(Tier.STARTER)
    counter.saturate(0.0)
    cost = RestCounter.cost("AddOrder")
    assert counter.wait_time(cost, 0.0) == 0.0
    assert counter.try_charge(cost, 0.0)
    assert counter.wait_time(RestCounter.cost("Balance"), 0.0) > 0


def test_rest_saturate_after_a_refusal() -> None:
    counter = RestCounter(Tier.PRO)
    counter.charge(3, 0.0)
    counter.saturate(0.0)
    assert counter.value(0.0) == 20
    assert counter.wait_time(1, 0.0) == pytest.approx(1.0)


def test_rest_reserve_queues_concurrent_callers() -> None:
    counter = RestCounter(Tier.PRO)  # max 20, decay 1/s
    waits = [counter.reserve(1, 50.0) for _ in range(25)]
    assert waits[:20] == [0.0] * 20
    assert waits[20:] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])
    # A caller arriving later queues behind the booked ones.
    assert counter.reserve(1, 52.0) == pytest.approx(4.0)


def test_rest_client_and_server_agree() -> None:
    """A client that waits as its counter says is never refused by the server's counter."""
    client = RestCounter(Tier.STARTER)
    server = RestCounter(Tier.STARTER)
    now = 0.0
    methods = ["Balance", "Ledgers", "OpenOrders", "TradesHistory", "QueryOrders"] * 30
    for method in methods:
        cost = RestCounter.cost(method)
        now += client.reserve(cost, now)
        assert server.try_charge(cost, now), (method, now)
        now += 0.01
    assert now > 100  # it really was throttled


@given(
    st.lists(
        st.tuples(st.sampled_from([1.0, 2.0]), st.floats(0, 5, allow_nan=False)),
        max_size=80,
    ),
    st.sampled_from(list(Tier)),
)
def test_rest_waiting_always_fits(calls: list[tuple[float, float]], tier: Tier) -> None:
    client = RestCounter(tier)
    server = RestCounter(tier)
    now = 0.0
    for cost, gap in calls:
        now += gap
        wait = client.wait_time(cost, now)
        assert wait >= 0
        now += wait
        client.charge(cost, now)
        assert server.try_charge(cost, now)
        assert client.value(now) <= client.limits.maximum + 1e-6


# --- after refusals, and at start (issue 10 item 2) --------------------------------------


def test_rest_refusals_in_a_row_double_the_excess_assumed_and_a_pass_ends_them() -> None:
    counter = RestCounter(Tier.STARTER)  # max 15, decay 0.33/s
    waits = [counter.refused(1, 0.0) for _ in range(7)]
    # Over the maximum by 0, 1, 3, 7, 15, then capped at the maximum: the next call of 1
    # fits 1/0.33, 2/0.33, 4/0.33, 8/0.33, 16/0.33 s later.
    assert waits == pytest.approx([n / 0.33 for n in (1, 2, 4, 8, 16, 16, 16)])
    assert counter.streak == 7 and counter.refusals == 7
    counter.accepted()
    assert counter.streak == 0 and counter.refusals == 7
    assert counter.refused(1, 1000.0) == pytest.approx(1 / 0.33)  # a new streak
    # A refusal never lowers what the counter already holds.
    counter.charge(25, 1000.0)
    assert counter.refused(2, 1000.0) == pytest.approx(counter.wait_time(2, 1000.0))
    assert counter.value(1000.0) >= 15 + 25


def probe_until_accepted(server: RestCounter, client: RestCounter, *, old: bool) -> int:
    """A client that probes with calls of 1 whenever its counter says one fits, against a
    server that counts refused calls (as Kraken does): how many refusals until one passes.
    ``old``: the policy before issue 10 (assume exactly full, wait one decay step)."""
    now, refusals = 0.0, 0
    while refusals < 200:
        now += client.wait_time(1, now)
        client.charge(1, now)
        if server.try_charge(1, now):
            client.accepted()
            return refusals
        refusals += 1
        if old:
            client.saturate(now)
        else:
            client.refused(1, now)
    return refusals


@pytest.mark.parametrize("tier", list(Tier))
def test_rest_probes_get_through_however_far_over_kraken_is(tier: Tier) -> None:
    """The lockout seen after quick restarts: Kraken's counter over its maximum (refused
    calls count too), the client probing at the decay rate kept it there for ever. Backing
    off as the refusals go on lets it decay: a handful of refusals, whatever the excess."""
    limits = REST_LIMITS[tier]
    for excess in (0.5, 1, 3, 6, 10, 15, 20, 30):
        server = RestCounter(tier)
        server.assume(limits.maximum + excess, 0.0)
        refusals = probe_until_accepted(server, RestCounter(tier), old=False)
        assert refusals <= 6, (excess, refusals)
    stuck = RestCounter(Tier.STARTER)
    stuck.assume(15 + 10, 0.0)
    assert probe_until_accepted(stuck, RestCounter(Tier.STARTER), old=True) == 200  # never


def test_rest_start_value_after_a_clean_stop_an_unclean_one_and_never() -> None:
    starter, s = REST_LIMITS[Tier.STARTER], 10**9
    now = 1_000_000 * s
    # Clean stop: the value recorded, decayed since (0.33/s).
    assert start_value(starter, now, saved=(10.0, now - 10 * s)) == pytest.approx(10 - 3.3)
    assert start_value(starter, now, saved=(10.0, now - 100 * s)) == 0.0
    # Unclean: full at the last moment a call could have left (the nonce mark).
    assert start_value(starter, now, last_sent_bound_ns=now - 3 * s) == pytest.approx(15 - 0.99)
    assert start_value(starter, now, last_sent_bound_ns=now + 9 * s) == 15.0  # mark ahead
    assert start_value(starter, now, last_sent_bound_ns=now - 60 * s) == 0.0
    # The clean record wins over the mark; nothing known: never used here.
    assert start_value(starter, now, saved=(0.0, now), last_sent_bound_ns=now) == 0.0
    assert start_value(starter, now) == 0.0


# --- trading counter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "threshold", "decay"),
    [("starter", 60, 1.0), ("intermediate", 125, 2.34), ("pro", 180, 3.75)],
)
def test_trading_tier_table(tier: str, threshold: float, decay: float) -> None:
    assert TradingCounter(tier).limits == CounterLimits(threshold, decay)
    assert TRADING_LIMITS[Tier(tier)] == CounterLimits(threshold, decay)


@pytest.mark.parametrize(
    ("age", "amend", "edit", "cancel"),
    [
        (0.0, 4, 7, 8),
        (4.999, 4, 7, 8),
        (5.0, 3, 6, 6),
        (9.9, 3, 6, 6),
        (10.0, 2, 5, 5),
        (14.9, 2, 5, 5),
        (15.0, 1, 3, 4),
        (44.9, 1, 3, 4),
        (45.0, 1, 2, 2),
        (89.9, 1, 2, 2),
        (90.0, 1, 1, 1),
        (299.9, 1, 1, 1),
        (300.0, 1, 1, 0),
        (86_400.0, 1, 1, 0),
        (-1.0, 4, 7, 8),  # clock skew: treated as brand new
    ],
)
def test_trading_costs_by_age(age: float, amend: float, edit: float, cancel: float) -> None:
    assert TradingCounter.amend_cost(age).total == amend
    assert TradingCounter.edit_cost(age).total == edit
    assert TradingCounter.cancel_cost(age).total == cancel
    # The fixed counts, applied even to a refused request.
    assert TradingCounter.amend_cost(age).fixed == 1
    assert TradingCounter.edit_cost(age).fixed == 1
    assert TradingCounter.cancel_cost(age).fixed == 0


def test_other_trading_costs() -> None:
    assert TradingCounter.add_cost() == TradingCost(fixed=1)
    assert TradingCounter.batch_add_cost(5) == TradingCost(fixed=2.5)
    assert TradingCounter.batch_cancel_cost([1.0, 7.0, 400.0]) == TradingCost(penalty=14)
    assert TradingCounter.batch_cancel_cost([]) == TradingCost()
    assert TradingCounter.cancel_all_cost() == TradingCost(fixed=1)
    assert TradingCounter.cancel_all_orders_after_cost() == TradingCost(fixed=1)
    with pytest.raises(ValueError, match="batch"):
        TradingCounter.batch_add_cost(0)


def test_documented_worked_example_add_amend_cancel_is_8() -> None:
    # "add, amend after 7 s, then cancel 36 s later" = 1 + 1 + 2 + 4 = 8 (no decay counted).
    counter = TradingCounter(Tier.STARTER, limits=CounterLimits(60, 1e-12))
    counter.charge("XBT/USD", TradingCounter.add_cost(), 0.0)
    counter.charge("XBT/USD", TradingCounter.amend_cost(7.0), 7.0)
    counter.charge("XBT/USD", TradingCounter.cancel_cost(36.0), 43.0)
    assert counter.value("XBT/USD", 43.0) == pytest.approx(8)
    assert (
        TradingCounter.add_cost() + TradingCounter.amend_cost(7) + TradingCounter.cancel_cost(36)
    ).total == 8


def test_documented_decay_example() -> None:
    # "(50 * 1) - (10 * 2.34) = 26.6": 50 adds, then 10 s at the Intermediate decay.
    counter = TradingCounter(Tier.INTERMEDIATE)
    for _ in range(50):
        counter.charge("ETH/USD", TradingCounter.add_cost(), 0.0)
    assert counter.value("ETH/USD", 0.0) == 50
    assert counter.value("ETH/USD", 10.0) == pytest.approx(26.6)


def test_trading_counters_are_per_pair() -> None:
    counter = TradingCounter(Tier.STARTER)
    for _ in range(60):
        counter.charge("XBT/USD", 1, 0.0)
    assert counter.wait_time("XBT/USD", TradingCounter.add_cost(), 0.0) == pytest.approx(1.0)
    assert counter.wait_time("ETH/USD", TradingCounter.add_cost(), 0.0) == 0.0
    assert counter.headroom("XBT/USD", 0.0) == 0
    assert counter.headroom("ETH/USD", 0.0) == 60
    counter.charge(ACCOUNT_WIDE, TradingCounter.cancel_all_orders_after_cost(), 0.0)
    assert counter.value(ACCOUNT_WIDE, 0.0) == 1
    assert set(counter.pairs()) == {"XBT/USD", ACCOUNT_WIDE}
    counter.prune(100.0)
    assert counter.pairs() == []


def test_trading_try_charge_applies_the_fixed_count_even_when_refused() -> None:
    server = TradingCounter(Tier.STARTER)
    for _ in range(58):
        assert server.try_charge("XBT/USD", TradingCounter.add_cost(), 0.0)
    # An amend of a 2 s old order costs 1 + 3: over 60, so refused (EOrder:Rate limit
    # exceeded), but its fixed +1 is counted.
    assert not server.try_charge("XBT/USD", TradingCounter.amend_cost(2.0), 0.0)
    assert server.value("XBT/USD", 0.0) == 59
    # A cancel has no fixed part: a refused cancel adds nothing.
    assert not server.try_charge("XBT/USD", TradingCounter.cancel_cost(1.0), 0.0)
    assert server.value("XBT/USD", 0.0) == 59
    assert server.try_charge("XBT/USD", TradingCounter.add_cost(), 0.0)
    assert not server.try_charge("XBT/USD", TradingCounter.add_cost(), 0.0)
    assert server.value("XBT/USD", 0.0) == 61
    # After decay the cancel fits.
    assert server.try_charge("XBT/USD", TradingCounter.cancel_cost(1.0), 9.0)


def test_trading_batch_cancel_is_accepted_below_the_threshold_even_if_it_overshoots() -> None:
    server = TradingCounter(Tier.STARTER)
    server.charge("XBT/USD", 50, 0.0)
    batch = TradingCounter.batch_cancel_cost([1.0] * 5)  # 40
    assert not server.try_charge("XBT/USD", batch, 0.0)
    assert server.try_charge("XBT/USD", batch, 0.0, batch=True)
    assert server.value("XBT/USD", 0.0) == 90
    assert not server.try_charge("XBT/USD", batch, 0.0, batch=True)


def test_trading_cost_larger_than_the_threshold_waits_for_an_empty_counter() -> None:
    counter = TradingCounter(Tier.STARTER)
    big = TradingCounter.batch_cancel_cost([0.0] * 10)  # 80 > 60
    counter.charge("XBT/USD", 10, 0.0)
    assert counter.wait_time("XBT/USD", big, 0.0) == pytest.approx(10.0)
    assert counter.try_charge("XBT/USD", big, 10.0)


def test_trading_saturate_and_observe() -> None:
    counter = TradingCounter(Tier.PRO)
    counter.saturate("XBT/USD", 0.0)
    assert counter.headroom("XBT/USD", 0.0) == 0
    counter.observe("XBT/USD", 30.0, 1.0)
    assert counter.value("XBT/USD", 1.0) == 30
    assert counter.value("XBT/USD", 3.0) == pytest.approx(30 - 7.5)


def test_trading_reserve_paces_cancel_and_replace() -> None:
    """Cancel-and-replace of a 0.2 s old order costs 9 a cycle: Starter throttles it."""
    client = TradingCounter(Tier.STARTER)
    server = TradingCounter(Tier.STARTER)
    now = 0.0
    for _ in range(50):
        for cost in (TradingCounter.cancel_cost(0.2), TradingCounter.add_cost()):
            now += client.reserve("XBT/USD", cost, now)
            assert server.try_charge("XBT/USD", cost, now)
        now += 0.2
    # 450 units at 1/s, less the 60 of burst: at least 390 s.
    assert now >= 389


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "amend", "edit", "cancel"]),
            st.floats(0, 400, allow_nan=False),
            st.floats(0, 3, allow_nan=False),
        ),
        max_size=80,
    ),
    st.sampled_from(list(Tier)),
)
def test_trading_waiting_always_fits(calls: list[tuple[str, float, float]], tier: Tier) -> None:
    client = TradingCounter(tier)
    server = TradingCounter(tier)
    now = 0.0
    for kind, age, gap in calls:
        cost = {
            "add": TradingCounter.add_cost(),
            "amend": TradingCounter.amend_cost(age),
            "edit": TradingCounter.edit_cost(age),
            "cancel": TradingCounter.cancel_cost(age),
        }[kind]
        now += gap
        now += client.reserve("P", cost, now)
        assert server.try_charge("P", cost, now)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CounterLimits(0, 1)
    with pytest.raises(ValueError, match="positive"):
        CounterLimits(10, 0)
    with pytest.raises(ValueError):
        RestCounter("diamond")


# --- admit: the REST client's one-step check-and-charge --------------------------------


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BTC/USD", "ETH/USD"]),
            st.sampled_from([0.0, 1.0, 1.5, 8.0, 400.0]),  # 400: more than any threshold
            st.floats(0, 3, allow_nan=False),
            st.booleans(),  # book a reservation in the future first
        ),
        max_size=60,
    ),
    st.sampled_from(list(Tier)),
)
def test_admit_is_charge_when_wait_time_is_zero(
    calls: list[tuple[str, float, float, bool]], tier: Tier
) -> None:
    admitted, reference = TradingCounter(tier), TradingCounter(tier)
    now = 0.0
    for pair, cost, gap, reserve in calls:
        now += gap
        if reserve:  # a future booking: nothing fits before it
            admitted.reserve(pair, 1.0, now)
            reference.reserve(pair, 1.0, now)
        fits = reference.wait_time(pair, cost, now) <= 0
        if fits:
            reference.charge(pair, cost, now)
        assert admitted.admit(pair, cost, now) is fits
        for key in ("BTC/USD", "ETH/USD"):
            assert admitted.value(key, now) == reference.value(key, now)
            assert admitted.wait_time(key, 1.0, now) == reference.wait_time(key, 1.0, now)


def test_admit_refuses_at_the_threshold_and_changes_nothing() -> None:
    counter = TradingCounter(Tier.STARTER)  # threshold 60
    for _ in range(60):
        assert counter.admit("BTC/USD", TradingCounter.add_cost(), 0.0)
    assert counter.value("BTC/USD", 0.0) == 60
    assert not counter.admit("BTC/USD", TradingCounter.add_cost(), 0.0)
    assert counter.value("BTC/USD", 0.0) == 60
    assert counter.admit("BTC/USD", TradingCounter.add_cost(), 1.0)  # 1/s decayed


def test_trading_adopts_krakens_threshold_only_when_stricter() -> None:
    counter = TradingCounter("pro")  # threshold 180
    assert counter.threshold == 180
    assert counter.adopt_threshold(125)  # Kraken's maxratecount says Intermediate
    assert counter.threshold == 125 and counter.limits.decay_per_s == 3.75
    assert not counter.adopt_threshold(180)  # looser: ours stays
    assert not counter.adopt_threshold(0)
    assert counter.threshold == 125
    counter.charge("BTC/USD", 125.0, 0.0)
    assert counter.wait_time("BTC/USD", 1.0, 0.0) > 0  # the stricter threshold holds


def test_trading_observe_floor_never_lets_the_model_run_below_krakens_count() -> None:
    counter = TradingCounter("starter")  # decay 1/s
    counter.charge("BTC/USD", 10.0, 0.0)
    counter.observe_floor("BTC/USD", 4.0, 0.0)  # Kraken counts less: ours stays (stricter)
    assert counter.value("BTC/USD", 0.0) == 10.0
    counter.observe_floor("BTC/USD", 30.0, 5.0)  # Kraken counts more: the floor rises
    assert counter.value("BTC/USD", 5.0) == 30.0 and counter.value("BTC/USD", 10.0) == 25.0
    # A slot booked ahead keeps its place: the report raises the level it decays from.
    wait = counter.reserve("ETH/USD", 61.0 - 1.0, 100.0)  # books 60 at once
    assert wait == 0.0
    booked = counter.reserve("ETH/USD", 10.0, 100.0)  # waits 10 s: booked at t=110
    assert booked == 10.0
    counter.observe_floor("ETH/USD", 70.0, 100.0)  # Kraken: 70 now, 60 at t=110
    assert counter.value("ETH/USD", 110.0) == 60.0  # the booking (50 + 10) already covers it
    counter.observe_floor("ETH/USD", 85.0, 100.0)  # 75 at t=110: above the booking
    assert counter.value("ETH/USD", 110.0) == 75.0
