"""``RiskGate.accept_place`` in C (``bot/execution/_riskfast.c``) against its reference.

Two gates are built alike on twin worlds; one keeps the C ``accept_place``, the other runs
the Python reference (``RiskGate._accept_place``). Every operation of the fast path's own
property test (fills, marks, states, time, checks) is applied to both, with places offered
on their values in between, and every answer must be equal: accepted or not (or the same
exception), and everything the gate shows after it (counters, rate windows stamp by stamp,
states), the plan's band and the positions it holds.
"""

from __future__ import annotations

import gc
import os
import sys
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.execution import risk as risk_module
from bot.execution.commands import PlaceOrder
from bot.execution.risk import RiskContext, RiskGate, RiskLimits
from tests.unit.risk_commands import place_cmd
from tests.unit.test_risk_fast import (
    BTC,
    INSTRUMENTS,
    MID,
    STRATEGIES,
    World,
    apply,
    contexts,
    limits,
    make_world,
    observe,
    operations,
    prices_near,
    quantities,
    sharp_checks,
)

PURE = os.environ.get("KRAKENBOT_PURE_RISK", "") not in ("", "0")
needs_c = pytest.mark.skipif(PURE, reason="KRAKENBOT_PURE_RISK: the C accept_place is not used")


def test_the_core_is_the_one_the_environment_asks_for() -> None:
    """A broken or missing build fails here, instead of falling back silently."""
    assert ("python" if PURE else "c") == risk_module.FAST_CORE
    gate = make_world(None, {}, fast=True).gate
    if PURE:
        assert gate.accept_place == gate._accept_place
    else:
        from bot.execution import _riskfast

        assert gate.accept_place.func is _riskfast.accept_place  # type: ignore[attr-defined]


def reference(world: World) -> World:
    world.gate.accept_place = world.gate._accept_place
    return world


def offer(gate: RiskGate, intent: PlaceOrder, ctx: RiskContext | None) -> tuple[Any, ...]:
    """``accept_place`` on the place's values, as the pre-trade stage calls it."""
    ctx = ctx if ctx is not None else RiskContext()
    order = intent.order
    try:
        accepted = gate.accept_place(
            order.strategy, intent.instrument, order.side, order.qty, order.price,
            ctx.mids, ctx.open_orders, ctx.open_orders_total,
        )  # fmt: skip
    except Exception as exc:  # both must fail alike on what the gate cannot take
        return ("raised", type(exc).__name__)
    return ("answered", accepted)


def inner(gate: RiskGate) -> tuple[Any, ...]:
    """The plans' caches: the band's range and last mid, the positions held."""
    plans = []
    for key, plan in sorted(gate._plans.items()):
        band = None if plan.band is None else (plan.band.lo, plan.band.hi, plan.band.mid)
        plans.append((key, band, tuple(plan.held)))
    return (gate._accepted, gate._exact_accepted, tuple(plans))


@st.composite
def offers(draw: st.DrawFn) -> tuple[Any, ...]:
    """A place (``intents``' draws, never a cancel or an amend) and a context."""
    inst = draw(st.sampled_from(INSTRUMENTS))
    side = draw(st.sampled_from(["buy", "buy", "buy", "sell", "sell", "sell", "hold"]))
    intent = place_cmd(
        draw(st.sampled_from(STRATEGIES)), inst, side,  # type: ignore[arg-type]
        draw(quantities()), draw(prices_near(inst)),
    )  # fmt: skip
    return ("offer", intent, draw(contexts()))


class Asked:
    """Counts the calls the C ``accept_place`` hands to the reference's ``_accept_values``
    (an instance attribute: the C looks the method up on the gate)."""

    def __init__(self, gate: RiskGate) -> None:
        self.calls = 0
        self._values = gate._accept_values
        gate._accept_values = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self._values(*args)


@settings(max_examples=300, deadline=None)
@given(
    bot=st.one_of(st.none(), limits()),
    own=st.dictionaries(st.sampled_from(["mm", "other"]), limits()),
    data=st.data(),
)
def test_the_c_accept_place_answers_and_counts_as_the_reference(
    bot: RiskLimits | None, own: dict[str, RiskLimits], data: st.DataObject
) -> None:
    c, py = make_world(bot, own, fast=True), reference(make_world(bot, own, fast=True))
    asked = Asked(c.gate)
    in_c = accepted = 0
    for _ in range(data.draw(st.integers(5, 30), label="operations")):
        kind = data.draw(st.integers(0, 5))
        if kind <= 3 and data.draw(st.booleans()):
            # The daily loss evaluated for the book as it is (``check`` does it first):
            # without it, every offer after a fill is the exact path's, in C and in Python.
            assert apply(c, ("evaluate",)) == apply(py, ("evaluate",))
        if kind <= 3:
            # The same strategy and pair again and again, as a strategy quotes: the first
            # builds the plan (in Python), the next are C's to decide.
            op = data.draw(offers() if kind <= 2 else sharp_checks(bot, own, c.book))
            if data.draw(st.integers(0, 5)) == 0:  # the offering strategy's own state moves
                action = data.draw(st.sampled_from(["halt", "reduce_only", "resume"]))
                scope = op[1].order.strategy
                assert apply(c, ("state", action, scope)) == apply(py, ("state", action, scope))
            if data.draw(st.booleans()):
                # Its plan the gate's last (as it is while a strategy quotes one pair), so
                # that C decides even the first offer, in whatever state the gate is.
                order = op[1].order
                for gate in (c.gate, py.gate):
                    gate._plan(order.strategy, op[1].instrument)
            for _ in range(data.draw(st.integers(1, 4))):
                before = asked.calls
                answer = offer(c.gate, op[1], op[2])
                in_c += asked.calls == before
                assert answer == offer(py.gate, op[1], op[2]), op
                assert observe(c) == observe(py), op
                assert inner(c.gate) == inner(py.gate), op
                accepted += answer == ("answered", True)
        else:
            op = data.draw(operations)
            assert apply(c, op) == apply(py, op), op
        assert observe(c) == observe(py), op
        assert inner(c.gate) == inner(py.gate), op
    event(f"offers accepted: {min(accepted, 3)}+")
    event(f"offers decided in C: {min(in_c, 5)}+")


def test_an_order_well_inside_every_limit_is_accepted_and_counted_in_c() -> None:
    """The common case, decided in C: accepted, counted, its time in the rate window; the
    same order past the qty limit is not; a halted strategy's is not."""
    limits = RiskLimits(
        max_order_qty=Decimal("0.05"), max_order_notional=Decimal(2500),
        max_position={"BTC": Decimal("0.05")}, max_open_orders=3,
        price_band_pct=Decimal(5), max_orders_per_minute=3,
    )  # fmt: skip
    world = make_world(limits, {}, fast=True)
    gate = world.gate
    gate.evaluate()  # the daily loss evaluated for this revision and day, as check does

    def place(qty: str, price: str = "50000.0") -> bool:
        return gate.accept_place(
            "mm", BTC, "buy", BTC.qty(qty), BTC.price(price), MID.mids, {"mm": 1}, 1
        )

    assert place("0.01")
    assert gate.accepted == 1 and gate.fast_accepted == 1
    assert len(gate._windows[None]) == 1
    assert not place("0.06")  # over max_order_qty: the exact path's to refuse
    assert not place("0.01", "60000.0")  # outside the band
    assert gate.accepted == 1
    world.clock.advance(1)
    assert place("0.01") and place("0.01")
    assert not place("0.01")  # three in the window: the fourth is the exact path's
    gate.halt("test", strategy="mm")
    world.clock.advance(61)
    assert not place("0.01")
    assert gate.accepted == 3


@needs_c
def test_the_c_accept_place_keeps_no_reference_it_does_not_own() -> None:
    """Many calls through every branch leave the refcounts of what they read unchanged."""
    world = make_world(
        RiskLimits(max_orders_per_minute=10**9, price_band_pct=Decimal(5)), {}, fast=True
    )
    gate = world.gate
    gate.evaluate()
    mids = {"BTC/USD": Decimal("50000.00")}
    strategy, side, qty, price = "mm", "buy", BTC.qty("0.01"), BTC.price("50000.0")
    watched = (gate, strategy, side, qty, price, mids, BTC)
    for _ in range(100):  # warm: the plan built, the band set
        gate.accept_place(strategy, BTC, side, qty, price, mids, {}, 0)
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    for n in range(20_000):
        gate.accept_place(strategy, BTC, side, qty, price, mids, {}, 0)  # accepted
        gate.accept_place(strategy, BTC, side, qty, price * 2, mids, {}, 0)  # out of the band
        gate.accept_place(strategy, BTC, "hold", qty, price, mids, {}, 0)  # no such side
        if n % 1000 == 0:
            world.clock.advance(61)  # the window pruned
    gc.collect()
    assert [sys.getrefcount(o) for o in watched] == before
    assert gate.accepted == 20_100


def test_the_band_edges_a_reducing_order_and_the_open_orders_in_c() -> None:
    """Each boundary C decides on, as the reference: the band's two edges (in, then one
    tick out), orders that reduce a position already over its cap (in) and ones that add
    to it or flip it past the cap (out), and the open orders at their limit (out) and one
    under it (in)."""
    limits = RiskLimits(
        max_position={"BTC": Decimal("0.05")}, max_open_orders=3, price_band_pct=Decimal(5),
    )  # fmt: skip
    world = make_world(limits, {"mm": RiskLimits(max_open_orders=2)}, fast=True)
    gate, book = world.gate, world.book
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("0.08"), BTC.price("50000.0"),
                    fee=Decimal(0), fee_asset="", strategy="mm")  # fmt: skip
    gate.evaluate()
    mids = {"BTC/USD": Decimal("50000.00")}

    def place(side: str, price: str, qty: str = "0.01", open_mm: int = 0, total: int = 0) -> bool:
        return gate.accept_place(
            "mm", BTC, side, BTC.qty(qty), BTC.price(price), mids, {"mm": open_mm}, total
        )

    assert not place("buy", "50000.0")  # the plan built, the position over its cap
    assert place("sell", "52500.0") and place("sell", "47500.0")  # 5 %: both edges in
    assert not place("sell", "52500.1") and not place("sell", "47499.9")
    assert place("sell", "50000.0", qty="0.08")  # down to flat: reduces
    assert not place("sell", "50000.0", qty="0.14")  # flipped to -0.06: over the cap
    assert place("sell", "50000.0", qty="0.13")  # flipped to -0.05: at the cap, in
    assert not place("sell", "50000.0", total=3) and not place("sell", "50000.0", open_mm=2)
    assert place("sell", "50000.0", open_mm=1, total=2)
    assert gate.fast_accepted == 5
