"""The order path's written-out counter arithmetic (``_Counters.admit``, ``headroom``)
equals the composed one (``settled``, ``_target``) it replaces, on random histories."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.kraken.ratelimit import EPSILON, CounterLimits, TradingCounter, _Counters

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["charge", "admit", "set"]),
        st.sampled_from(["BTC/USD", "ETH/USD", None]),
        st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
        st.floats(min_value=0.0, max_value=5.0, allow_nan=False),  # time step (s)
    ),
    max_size=40,
)


def _admit_composed(c: _Counters[str | None], key: str | None, cost: float, now: float) -> bool:
    value, at = c.settled(key, now)
    if cost > 0 and (at > now or value - c._target(cost) > EPSILON):
        return False
    c._state[key] = (value + cost, at)
    return True


@given(
    _OPS,
    st.floats(min_value=1.0, max_value=200.0),
    st.floats(min_value=0.1, max_value=10.0),
    st.floats(min_value=-3.0, max_value=3.0),
)
def test_admit_and_headroom_equal_the_composed_arithmetic(
    ops: list[tuple[str, str | None, float, float]], maximum: float, decay: float, skew: float
) -> None:
    limits = CounterLimits(maximum, decay)
    fast, composed = _Counters[str | None](limits), _Counters[str | None](limits)
    now = 100.0
    for op, key, amount, step in ops:
        now += step
        if op == "charge":  # a booking in the future too (skew): ``at`` after ``now``
            fast.charge(key, amount, now + skew)
            composed.charge(key, amount, now + skew)
        elif op == "set":
            fast.set_value(key, amount, now)
            composed.set_value(key, amount, now)
        else:
            assert fast.admit(key, amount, now) == _admit_composed(composed, key, amount, now)
        for k in ("BTC/USD", "ETH/USD", None):
            assert fast.headroom(k, now) == limits.maximum - composed.value(k, now)
        assert fast._state == composed._state


def test_a_trading_counter_admits_a_float_and_a_cost_alike() -> None:
    a, b = TradingCounter("pro"), TradingCounter("pro")
    cost = TradingCounter.add_cost()
    for i in range(300):
        assert a.admit("BTC/USD", cost, i * 0.01) == b.admit("BTC/USD", cost.total, i * 0.01)
        assert a.headroom("BTC/USD", i * 0.01) == b.headroom("BTC/USD", i * 0.01)
    assert not a.admit("BTC/USD", cost, 3.0)  # filled up: the same refusal
