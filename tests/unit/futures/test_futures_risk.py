"""``bot.execution.futures_risk``: derivatives limits, reducing orders, liquidation distance."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bot.core.clock import FakeClock
from bot.execution import orders as o
from bot.execution.commands import AmendOrder, PlaceOrder
from bot.execution.futures_feed import MarginState, PositionState
from bot.execution.futures_risk import (
    DerivativesLimits,
    FuturesRiskGate,
    derivatives_refusal,
    liquidation_ok,
    usd_value,
)
from bot.execution.orders import new_order
from bot.execution.pnl import PositionBook
from bot.execution.risk import RiskContext
from bot.futures.instruments import FuturesInstrument
from bot.kraken.instruments import Instrument

D = Decimal
P = "PF_XBTUSD"
INST = Instrument(P, "XBT", "USD", price_precision=1, qty_precision=4, price_increment=5)


def pos(size: str, *, mark: str = "50000", liq: str | None = None) -> PositionState:
    return PositionState(
        symbol=P, size=D(size), entry_price=D(mark), mark_price=D(mark),
        unrealized_pnl=D(0), unrealized_funding=D(0),
        liquidation_price=None if liq is None else D(liq), effective_leverage=None,
    )  # fmt: skip


def margin(equity: str) -> MarginState:
    e = D(equity)
    return MarginState(e, e, D(0), D(0), e, D(0), D(0))


def refusal(delta: str, *, held: str = "0", resting: str = "0", equity: str | None = "10000",
            liq: str | None = None, price: str | None = "50000",
            **limits: object) -> str | None:  # fmt: skip
    error = derivatives_refusal(
        symbol=P, delta=D(delta), price=None if price is None else D(price),
        resting_same_side=D(resting), positions={P: pos(held, liq=liq)},
        margin=None if equity is None else margin(equity),
        limits=DerivativesLimits(**limits),  # type: ignore[arg-type]
    )  # fmt: skip
    return None if error is None else error.reason


def test_contracts_count_the_resting_orders_on_the_same_side() -> None:
    caps = {"max_contracts": {P: D("0.05")}}
    assert refusal("0.02", held="0.02", **caps) is None
    assert refusal("0.02", held="0.02", resting="0.02", **caps) == "max_contracts"


def test_notional_and_leverage_are_in_the_settlement_currency() -> None:
    assert refusal("0.1", max_notional=D(4000)) == "max_notional"  # 0.1 x 50000 = 5000
    assert refusal("0.1", max_notional=D(5000)) is None
    assert refusal("0.1", equity="1000", max_leverage=D(4)) == "max_leverage"  # 5x
    assert refusal("0.1", equity="2000", max_leverage=D(4)) is None  # 2.5x
    assert refusal("0.1", equity=None, max_leverage=D(4)) == "no_margin_state"
    assert refusal("0.1", price=None, max_notional=D(10**6)) == "no_mid"


def test_a_reducing_order_passes_every_limit_but_a_flip_does_not() -> None:
    tight = {"max_contracts": {P: D("0.01")}, "max_notional": D(1), "max_leverage": D("0.001")}
    assert refusal("-0.02", held="0.05", **tight) is None  # reduces a long
    assert refusal("-0.05", held="0.05", **tight) is None  # closes it
    assert refusal("-0.07", held="0.05", **tight) is not None  # flips it short


def test_liquidation_distance_blocks_growth_and_readiness() -> None:
    close = {"min_liquidation_distance": D("0.1")}
    assert refusal("0.01", held="0.05", liq="47500", **close) == "liquidation_distance"  # 5 %
    assert refusal("0.01", held="0.05", liq="40000", **close) is None  # 20 %
    assert refusal("-0.01", held="0.05", liq="47500", **close) is None  # reducing: allowed
    assert not liquidation_ok({P: pos("0.05", liq="47500")}, D("0.1"))
    assert liquidation_ok({P: pos("0.05", liq="40000")}, D("0.1"))
    assert liquidation_ok({P: pos("0", liq="49999")}, D("0.1"))  # no position, no risk


def contract(kind: str, size: str) -> FuturesInstrument:
    return FuturesInstrument(
        symbol=P, kind=kind, base="XBT", quote="USD", tick_size=D("0.5"), price_precision=1,
        price_increment=5, contract_size=D(size), contract_value_precision=4, qty_precision=4,
        qty_increment=1,
    )  # fmt: skip


def test_inverse_contracts_are_valued_by_their_usd_size() -> None:
    linear, inverse = contract("flexible_futures", "1"), contract("futures_inverse", "1")
    assert usd_value(linear, D(2), D(50000)) == D(100000)
    assert usd_value(inverse, D(2000), D(50000)) == D(2000)  # 2000 contracts of 1 USD
    caps = DerivativesLimits(max_notional=D(5000))

    def why(spec: FuturesInstrument, delta: str) -> str | None:
        error = derivatives_refusal(
            symbol=P, delta=D(delta), price=D(50000), resting_same_side=D(0), positions={},
            margin=margin("10000"), limits=caps, contracts={P: spec},
        )  # fmt: skip
        return None if error is None else error.reason

    assert why(inverse, "4000") is None  # 4000 USD
    assert why(inverse, "6000") == "max_notional"
    assert why(linear, "0.2") == "max_notional"  # 10000 USD


@dataclass
class State:
    positions: dict[str, PositionState] = field(default_factory=dict)
    margin: MarginState | None = None


def test_the_gate_refuses_before_spots_checks_and_passes_what_fits() -> None:
    clock = FakeClock()
    state = State({P: pos("0")}, margin("10000"))
    gate = FuturesRiskGate(
        clock, PositionBook(clock), None, None,
        derivatives=DerivativesLimits(max_contracts={P: D("0.01")}), state=state,
        resting=lambda symbol, side: D(0),
    )  # fmt: skip

    def place(qty: str) -> PlaceOrder:
        order = new_order(
            cl_ord_id="a" * 32, instrument=INST, side="buy", order_type="limit",
            qty=INST.qty(qty), price=INST.price("50000"), strategy="mm", now_ns=0,
        )  # fmt: skip
        return PlaceOrder(order, INST)

    refused = gate.check(place("0.02"), RiskContext())
    assert refused.error is not None and refused.error.reason == "max_contracts"
    assert gate.check(place("0.01"), RiskContext()).accepted
    # Never decided on values (the pre-trade stage's fast accept knows spot's limits only):
    # the place that breaks max_contracts goes by ``check`` too.
    gate.evaluate()
    for qty in ("0.02", "0.01"):
        assert not gate.accept_place(
            "mm", INST, "buy", INST.qty(qty), INST.price("50000"), {}, {}, 0
        )
        resting = o.acknowledge(place(qty).order, "OF1", now_ns=0)
        grown = AmendOrder(resting, INST, INST.qty("0.03"), None)
        assert not gate.accept_amend(grown, {}, {}, 0)  # nor an amend: ``check`` decides it
    assert gate.check(AmendOrder(resting, INST, INST.qty("0.03"), None)).error is not None
