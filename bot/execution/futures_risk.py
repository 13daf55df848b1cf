"""Risk for derivatives: the limits a Futures order must pass beside spot's risk gate.

Spot's ``RiskGate`` (``bot.execution.risk``) still runs for Futures (states ACTIVE /
REDUCING / HALTED, order size and notional, price band, open orders, rates, the daily
loss limit; positions by the contract's base, one contract of a linear perpetual being one
unit of it). ``FuturesRiskGate`` adds, from ``futures.risk`` (``FuturesRiskConfig``),
before spot's checks so a refused order is never counted in its rate windows:

- ``max_contracts``: the position per contract after the order plus the resting orders on
  the same side, in contracts (``max_contracts``);
- ``max_notional``: the position's value after the order in USD, at the order's price
  (market orders: the mid): contracts x contract size x price for linear contracts, and
  contracts x contract size for inverse ones (their size is in USD) (``max_notional``);
- ``max_leverage``: the account's open notional after the order over its margin equity
  (the private feed's ``balances``); no margin state yet refuses (``no_margin_state``);
- ``min_liquidation_distance``: an order that grows a position whose liquidation price
  is closer to the mark than this fraction is refused (``liquidation_distance``), and
  the daemon's readiness check of the same name fails while any position is that close.

An order that reduces the position (not flipping it) passes every derivatives limit: it
only takes risk away. Positions and margin are Kraken's as last reported (the exchange
is the truth). Pure except for reading the state it is given; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol

from bot.config.futures_schema import FuturesRiskConfig
from bot.core.clock import Clock
from bot.core.errors import RiskError
from bot.execution.commands import AmendOrder, Command, PlaceOrder
from bot.execution.futures_feed import MarginState, PositionState
from bot.execution.pnl import PositionBook
from bot.execution.risk import RiskContext, RiskDecision, RiskGate, RiskLimits
from bot.futures.instruments import FuturesInstrument
from bot.kraken.instruments import Instrument, from_scaled

__all__ = [
    "LIQUIDATION_CHECK",
    "DerivativesLimits",
    "FuturesRiskGate",
    "FuturesState",
    "derivatives_refusal",
    "liquidation_distance",
    "liquidation_ok",
    "usd_value",
]

LIQUIDATION_CHECK: Final = "liquidation_distance"
_ZERO: Final = Decimal(0)


class FuturesState(Protocol):
    """What the gate reads of the private feed (``FuturesPrivateFeed`` has it)."""

    @property
    def positions(self) -> Mapping[str, PositionState]: ...
    @property
    def margin(self) -> MarginState | None: ...


@dataclass(frozen=True, slots=True)
class DerivativesLimits:
    max_contracts: Mapping[str, Decimal] = field(default_factory=dict)
    max_notional: Decimal | None = None
    max_leverage: Decimal | None = None
    min_liquidation_distance: Decimal | None = None

    @classmethod
    def from_config(cls, risk: FuturesRiskConfig) -> DerivativesLimits:
        return cls(
            dict(risk.max_contracts), risk.max_notional, risk.max_leverage,
            risk.min_liquidation_distance,
        )  # fmt: skip


def liquidation_distance(pos: PositionState) -> Decimal | None:
    """How far the liquidation price is from the mark, as a fraction of the mark."""
    if pos.liquidation_price is None or pos.mark_price is None or pos.mark_price <= 0:
        return None
    return abs(pos.mark_price - pos.liquidation_price) / pos.mark_price


def liquidation_ok(positions: Mapping[str, PositionState], limit: Decimal) -> bool:
    """Every open position's liquidation price at least ``limit`` away from its mark."""
    for pos in positions.values():
        distance = liquidation_distance(pos)
        if pos.size and distance is not None and distance < limit:
            return False
    return True


def usd_value(contract: FuturesInstrument | None, size: Decimal, price: Decimal) -> Decimal:
    """``size`` contracts' value in USD at ``price``: ``size x contractSize x price`` for a
    linear contract; ``size x contractSize`` for an inverse one, whose contract size is
    in USD already (PI_XBTUSD: 1 USD a contract)."""
    units = size * (contract.contract_size if contract is not None else Decimal(1))
    return units if contract is not None and not contract.linear else units * price


def _reduces(position: Decimal, delta: Decimal) -> bool:
    after = position + delta
    return abs(after) < abs(position) and (after == 0 or (after > 0) == (position > 0))


def derivatives_refusal(
    *,
    symbol: str,
    delta: Decimal,
    price: Decimal | None,
    resting_same_side: Decimal,
    positions: Mapping[str, PositionState],
    margin: MarginState | None,
    limits: DerivativesLimits,
    contracts: Mapping[str, FuturesInstrument] | None = None,
) -> RiskError | None:
    """Why an order changing ``symbol``'s position by ``delta`` contracts at ``price``
    may not be sent (None: it may). ``contracts`` value positions (``usd_value``); a
    contract missing there is taken as linear with contract size 1."""
    specs = contracts or {}
    held = positions.get(symbol)
    position = held.size if held is not None else _ZERO
    if delta == 0 or _reduces(position, delta):
        return None
    after = position + delta
    cap = limits.max_contracts.get(symbol)
    exposure = abs(after) + resting_same_side
    if cap is not None and exposure > cap:
        detail = f"{symbol}: {exposure} contracts with resting orders (now {position}), max {cap}"
        return RiskError("max_contracts", detail)
    if price is None:
        if limits.max_notional is not None or limits.max_leverage is not None:
            return RiskError("no_mid", f"{symbol}: no price to value the position at")
        price = _ZERO
    notional = usd_value(specs.get(symbol), abs(after), price)
    if limits.max_notional is not None and notional > limits.max_notional:
        return RiskError(
            "max_notional", f"{symbol}: position value {notional}, max {limits.max_notional}"
        )
    if limits.max_leverage is not None:
        if margin is None or margin.margin_equity <= 0:
            return RiskError("no_margin_state", "the margin account is not known yet")
        others = sum(
            (
                usd_value(specs.get(s), abs(p.size), p.mark_price or p.entry_price)
                for s, p in positions.items()
                if s != symbol
            ),
            _ZERO,
        )
        leverage = (others + notional) / margin.margin_equity
        if leverage > limits.max_leverage:
            detail = f"leverage would be {leverage:.2f}, max {limits.max_leverage}"
            return RiskError("max_leverage", detail)
    least = limits.min_liquidation_distance
    distance = None if held is None else liquidation_distance(held)
    if least is not None and distance is not None and distance < least:
        detail = f"{symbol}: liquidation {distance:.4f} of the mark away, min {least}"
        return RiskError("liquidation_distance", detail)
    return None


class FuturesRiskGate(RiskGate):
    """Spot's gate with the derivatives limits checked first (see the module docstring).
    ``resting``: the open quantity (contracts) on one side of one symbol, ours."""

    def __init__(
        self,
        clock: Clock,
        positions: PositionBook,
        limits: RiskLimits | None,
        strategy_limits: Mapping[str, RiskLimits] | None,
        *,
        derivatives: DerivativesLimits,
        state: FuturesState,
        resting: Callable[[str, str], Decimal],
        contracts: Mapping[str, FuturesInstrument] | None = None,
    ) -> None:
        super().__init__(clock, positions, limits, strategy_limits)
        self._contracts = dict(contracts or {})
        self.derivatives = derivatives
        self._futures = state
        self._resting = resting

    def accept_place(  # noqa: PLR0917 (the spot gate's signature)
        self,
        strategy: str,
        inst: Instrument,
        side: str,
        qty: int,
        price: int | None,
        mids: Mapping[str, Decimal],
        open_orders: Mapping[str, int],
        open_total: int | None,
    ) -> bool:
        """Never: the fast accept on a place's values knows spot's limits only, so every
        place (and every amend: ``accept_amend`` asks this) here goes by ``check``, which
        checks the derivatives' limits first."""
        return False

    def check(self, command: Command, context: RiskContext | None = None) -> RiskDecision:
        if type(command) is PlaceOrder or type(command) is AmendOrder:
            error = self._derivatives(command, context or RiskContext())
            if error is not None:
                return RiskDecision(command, error)
        return super().check(command, context)

    def _derivatives(self, command: PlaceOrder | AmendOrder, ctx: RiskContext) -> RiskError | None:
        order = command.order
        qp, pp = order.qty_precision, order.price_precision
        if type(command) is AmendOrder:
            if command.new_qty is None or command.new_qty <= order.qty:
                return None  # a smaller or same size takes no risk on
            qty = from_scaled(command.new_qty - order.qty, qp)
            scaled_price = command.new_price if command.new_price is not None else order.price
        else:
            qty = from_scaled(order.qty, qp)
            scaled_price = order.price
        price = (
            from_scaled(scaled_price, pp)
            if scaled_price is not None
            else ctx.mids.get(order.symbol)
        )
        delta = qty if order.side == "buy" else -qty
        return derivatives_refusal(
            symbol=order.symbol, delta=delta, price=price,
            resting_same_side=self._resting(order.symbol, order.side),
            positions=self._futures.positions, margin=self._futures.margin, limits=self.derivatives,
            contracts=self._contracts,
        )  # fmt: skip
