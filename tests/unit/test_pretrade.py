"""The pre-trade stage (bot.execution.pretrade), the rate room it reads
(bot.execution.rate_room) and the commands it judges (bot.execution.commands): pure, no
loop, no engine."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal

import pytest

from bot.core.clock import FakeClock
from bot.execution.commands import AmendOrder, CancelOrder, PlaceOrder
from bot.execution.orders import OrderState, PlaceTerms, new_order
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import RATE_LIMIT, REST_LIMIT, PreTrade, Refusal
from bot.execution.rate_room import AMEND_COST_MAX, CANCEL_RESERVE, REST_RESERVE, RateRoom
from bot.execution.readiness import ReadinessGate
from bot.execution.reconcile import OrderIndex
from bot.execution.risk import RiskGate, RiskLimits, Transition
from bot.kraken.instruments import Instrument

D = Decimal
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
CID = "0123456789abcdef0123456789abcdef"


def placing(qty: str = "0.01", *, post_only: bool = False) -> PlaceOrder:
    order = new_order(
        cl_ord_id=CID, instrument=BTC, side="buy", order_type="limit", qty=BTC.qty(qty),
        price=BTC.price("50000"), strategy="mm", now_ns=0, post_only=post_only,
    )  # fmt: skip
    return PlaceOrder(order, BTC)


def amending(price: str = "50000.1") -> AmendOrder:
    live = replace(placing().order, state=OrderState.NEW, order_id="O1")
    return AmendOrder(live, BTC, None, BTC.price(price))


class Room:
    """The venue's counters as the test sets them."""

    def __init__(self) -> None:
        self.trading, self.rest = 1000.0, 15.0

    def room(self) -> RateRoom:
        return RateRoom(lambda symbol: self.trading, lambda: self.rest)


class World:
    """A stage whose every input the test controls."""

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.clock = FakeClock()
        self.gate = ReadinessGate(["books"], clock=self.clock)
        self.gate.set("books")
        self.status: str | None = "online"
        self.counters = Room()
        self.positions = PositionBook(self.clock)
        self.risk = RiskGate(self.clock, self.positions, limits)
        self.transitions: list[tuple[Transition, ...]] = []
        self.stage = PreTrade(
            self.gate, risk=self.risk, mids=lambda: {"BTC/USD": D("50000.0")},
            room=self.counters.room(), exchange_status=lambda: self.status,
            on_transitions=self.transitions.append,
        )  # fmt: skip
        self.orders = OrderIndex()


def test_a_place_passes_each_check_in_order() -> None:
    w = World(RiskLimits(max_order_qty=D("0.05")))
    command = placing("0.1")  # over the size limit
    w.status, w.counters.trading = "cancel_only", 0.0
    w.gate.clear("books", "resyncing")
    refusal = w.stage.check(command, w.orders)
    assert refusal == Refusal("desk", "exchange_status", "cancel_only: no new orders, cancels only")
    w.status = "online"
    assert w.stage.check(command, w.orders) == Refusal("desk", "not_ready", "waiting for: books")
    w.gate.set("books")
    assert w.stage.check(command, w.orders) == Refusal("desk", "rate_limit", RATE_LIMIT)
    w.counters.trading = 1000.0
    refusal = w.stage.check(command, w.orders)
    assert refusal is not None and (refusal.source, refusal.reason) == ("risk", "max_order_qty")
    assert w.risk.accepted == 0  # nothing counted before the risk gate's turn
    assert w.stage.check(placing(), w.orders) is None
    assert w.risk.accepted == 1


def test_a_post_only_place_passes_the_post_only_state() -> None:
    w = World()
    w.status = "post_only"
    assert w.stage.check(placing(post_only=True), w.orders) is None
    refusal = w.stage.check(placing(), w.orders)
    assert refusal is not None and refusal.reason == "exchange_status"


def test_the_place_room_keeps_a_cancel_for_each_open_order_and_the_new_one() -> None:
    w = World()
    for n in range(3):  # three open orders on the pair
        other = replace(placing().order, cl_ord_id=f"{n:032x}")
        w.orders.put(other)
    w.counters.trading = 1.0 + CANCEL_RESERVE * 4  # exactly enough: the boundary passes
    assert w.stage.check(placing(), w.orders) is None
    w.counters.trading -= 0.01
    assert w.stage.check(placing(), w.orders) == Refusal("desk", "rate_limit", RATE_LIMIT)


def test_an_amend_needs_trading_room_then_rest_room_then_the_risk_gate() -> None:
    w = World(RiskLimits(price_band_pct=D(1)))
    w.orders.put(amending().order)
    w.gate.clear("books", "resyncing")  # amends do not wait for readiness
    w.counters.trading = AMEND_COST_MAX + CANCEL_RESERVE - 0.01
    assert w.stage.check(amending(), w.orders) == Refusal("desk", "rate_limit", RATE_LIMIT)
    w.counters.trading += 0.01
    w.counters.rest = 1.0 + REST_RESERVE - 0.01
    assert w.stage.check(amending(), w.orders) == Refusal("desk", "rate_limit", REST_LIMIT)
    w.counters.rest += 0.01
    refusal = w.stage.check(amending("51000.0"), w.orders)  # 2 % from the mid
    assert refusal is not None and (refusal.source, refusal.reason) == ("risk", "price_band")
    assert w.stage.check(amending(), w.orders) is None
    w.status = "post_only"  # the order as it stands is not post-only
    refusal = w.stage.check(amending(), w.orders)
    assert refusal is not None and refusal.reason == "exchange_status"


def test_an_amend_on_its_values_says_yes_only_where_check_accepts_it() -> None:
    """``accepts_amend``: True (counted as ``check`` counts) only with the exchange online,
    room on both counters and the risk gate's fast accept; False, with nothing counted,
    wherever ``check`` could refuse; readiness is not asked, as ``check`` does not ask it."""
    w = World(RiskLimits(price_band_pct=D(1)))
    w.risk.evaluate()  # the day's loss evaluated: the risk gate's fast accept can decide
    w.orders.put(amending().order)
    w.gate.clear("books", "resyncing")  # amends do not wait for readiness
    assert w.stage.accepts_amend(amending(), w.orders) and w.risk.accepted == 1
    w.counters.trading = AMEND_COST_MAX + CANCEL_RESERVE - 0.01
    assert not w.stage.accepts_amend(amending(), w.orders)
    w.counters.trading += 0.01
    w.counters.rest = 1.0 + REST_RESERVE - 0.01
    assert not w.stage.accepts_amend(amending(), w.orders)
    w.counters.rest += 0.01
    assert not w.stage.accepts_amend(amending("51000.0"), w.orders)  # out of the band
    w.status = "post_only"
    assert not w.stage.accepts_amend(amending(), w.orders)  # read: nothing followed
    changed = w.stage.follow_status()
    w.status = "online"
    assert not w.stage.accepts_amend(amending(), w.orders)  # followed, and not told yet
    changed()
    assert w.stage.accepts_amend(amending(), w.orders)
    assert w.risk.accepted == 2  # the two Trues, and nothing else


def test_a_cancel_always_passes() -> None:
    w = World(RiskLimits(max_orders_per_minute=0))
    w.status, w.counters.trading, w.counters.rest = "maintenance", 0.0, 0.0
    w.gate.clear("books")
    w.risk.halt("manual")
    assert w.stage.check(CancelOrder(amending().order), w.orders) is None
    assert w.risk.accepted == 0  # the risk gate is not asked: cancels count nowhere


def test_a_loss_limit_transition_is_handed_on_whatever_the_decision() -> None:
    w = World(RiskLimits(daily_loss_limit=D(10)))
    w.positions.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1"), BTC.price("50000.0"), fee=D(11),
                           fee_asset="USD", strategy="mm")  # fmt: skip
    refusal = w.stage.check(placing(), w.orders)
    assert refusal is not None and refusal.reason == "daily_loss"
    ((halt,),) = w.transitions
    assert halt.cancel_orders and halt.to_state == "halted"


def test_without_risk_or_room_only_readiness_and_the_state_decide() -> None:
    gate = ReadinessGate(["books"], clock=FakeClock())
    stage = PreTrade(gate)
    assert stage.check(placing(), OrderIndex()) == Refusal(
        "desk", "not_ready", "waiting for: books"
    )
    gate.set("books")
    assert stage.check(placing(), OrderIndex()) is None
    assert stage.check(amending(), OrderIndex()) is None
    with pytest.raises(TypeError):
        stage.check(placing().order, OrderIndex())  # type: ignore[arg-type]


def test_commands_show_their_numbers_in_the_pairs_units() -> None:
    place = placing("0.015")
    assert (place.cl_ord_id, place.strategy, place.symbol, place.side) == (CID, "mm", "BTC/USD",
                                                                            "buy")  # fmt: skip
    assert (place.qty, place.price, place.order_type) == (D("0.015"), D("50000.0"), "limit")
    assert (place.time_in_force, place.post_only) == ("GTC", False)
    amend = AmendOrder(place.order, BTC, BTC.qty("0.02"), None)
    assert (amend.qty, amend.price, amend.new_qty) == (D("0.02"), None, 2_000_000)
    assert CancelOrder(place.order).cl_ord_id == CID
    with pytest.raises(AttributeError):
        place.order = amend.order  # type: ignore[misc]  # frozen


def _terms(command: PlaceOrder) -> PlaceTerms:
    o = command.order
    return PlaceTerms(
        o.cl_ord_id, o.symbol, o.side, o.order_type, o.qty, o.price, o.time_in_force, o.post_only
    )


def test_a_place_on_its_terms_reads_the_followed_state_and_the_gates_open_until() -> None:
    """``accepts_place`` with the exchange's state followed and every readiness check a
    flag: it reads what was pushed, and the gate's certain-open instant, and says nothing
    (False) whenever ``check`` could refuse; a state changed without its owner telling is
    what following means (``check`` still reads it), and a lapsed flag is caught at once."""
    w = World()
    w.risk.evaluate()  # the day's loss evaluated: the risk gate's fast accept can decide
    changed = w.stage.follow_status()
    armed = {"until": w.clock.monotonic() + 10.0}
    w.gate.follow("deadman", lambda: True, until=lambda: armed["until"])
    terms = _terms(placing())
    assert w.gate.open_until == armed["until"]
    assert w.stage.accepts_place(terms, BTC, "mm", w.orders)
    assert w.risk.accepted == 1
    w.status = "cancel_only"
    assert w.stage.check(placing(), w.orders) is not None  # ``check`` reads it itself
    changed()  # the owner tells: the place is check's to decide
    assert not w.stage.accepts_place(terms, BTC, "mm", w.orders)
    w.status = "online"
    changed()
    assert w.stage.accepts_place(terms, BTC, "mm", w.orders)
    w.clock.advance(10.0)  # the switch may have fired: not open, whatever was pushed
    assert not w.stage.accepts_place(terms, BTC, "mm", w.orders)
    assert w.stage.check(placing(), w.orders) == Refusal(
        "desk", "not_ready", "waiting for: deadman"
    )
    armed["until"] = w.clock.monotonic() + 10.0
    w.gate.clear("books", "resyncing")
    assert w.gate.open_until == -math.inf
    assert not w.stage.accepts_place(terms, BTC, "mm", w.orders)
    w.gate.set("books")
    assert not w.stage.accepts_place(terms, BTC, "mm", w.orders)  # the switch not re-armed
    w.gate.follow("deadman", lambda: True, until=lambda: armed["until"])
    assert w.stage.accepts_place(terms, BTC, "mm", w.orders)
    assert w.risk.accepted == 3


def test_a_polled_probe_or_status_is_read_on_every_place() -> None:
    """Nothing followed: ``open_until`` stays -inf while a probe is polled, so the gate
    reads it; the state is read too."""
    w = World()
    w.risk.evaluate()
    ready = {"ok": True}
    w.gate.add("feed", lambda: ready["ok"])
    terms = _terms(placing())
    assert w.gate.open_until == -math.inf
    assert w.stage.accepts_place(terms, BTC, "mm", w.orders)
    ready["ok"] = False
    assert not w.stage.accepts_place(terms, BTC, "mm", w.orders)
    ready["ok"] = True
    w.status = "post_only"
    assert not w.stage.accepts_place(terms, BTC, "mm", w.orders)
    w.status = None  # no state yet: the readiness check on it is the daemon's
    assert w.stage.accepts_place(terms, BTC, "mm", w.orders)
