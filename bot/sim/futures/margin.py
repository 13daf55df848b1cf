"""Margin arithmetic of the Futures simulator (pure): one account's multi-collateral view.

For each contract with a position or open orders, at the mark price:

- position notional ``|q| * contractSize * mark``; its initial and maintenance margin
  are that notional times the schedule's fractions for it (``Contract.rates``);
- with orders, the worst exposure ``max(|q + open buys|, |q - open sells|)`` (resting
  orders that are not reduce-only) is margined the same way: ``initialMarginWithOrders``;
- unrealised PnL ``(mark - entry) * q * contractSize`` and the funding accrued.

The account adds them up as Kraken's ``accounts.flex`` and ``balances.flex_futures`` name
them: ``portfolioValue = balance + pnl + unrealizedFunding`` (= ``marginEquity``: USD
collateral has no haircut here), ``availableMargin = marginEquity -
initialMarginWithOrders``. A new order is accepted when it leaves ``availableMargin >= 0``
(checked at the mark price). ``liquidation_price`` estimates where one position alone
would meet its maintenance margin.

This module owns those formulas; it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.sim.futures.contracts import Contract
from bot.sim.futures.records import Account, FuturesOrder, Position

__all__ = ["ContractMargin", "MarginView", "liquidation_price", "margin_view"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ContractMargin:
    symbol: str
    qty: int
    entry: Decimal
    mark: int
    pnl: Decimal
    unrealized_funding: Decimal
    initial: Decimal
    initial_with_orders: Decimal
    maintenance: Decimal


@dataclass(frozen=True, slots=True)
class MarginView:
    balance: Decimal
    pnl: Decimal
    unrealized_funding: Decimal
    initial: Decimal
    initial_with_orders: Decimal
    maintenance: Decimal
    contracts: Mapping[str, ContractMargin] = field(default_factory=dict)

    @property
    def portfolio_value(self) -> Decimal:
        return self.balance + self.pnl + self.unrealized_funding

    @property
    def margin_equity(self) -> Decimal:
        return self.portfolio_value

    @property
    def available_margin(self) -> Decimal:
        return self.margin_equity - self.initial_with_orders


def _exposure(pos: Position | None, orders: list[FuturesOrder], extra: tuple[str, int]) -> int:
    q = pos.qty if pos is not None else 0
    buys = sum(o.qty - o.filled for o in orders if o.side == "buy" and not o.reduce_only)
    sells = sum(o.qty - o.filled for o in orders if o.side == "sell" and not o.reduce_only)
    side, qty = extra
    if side == "buy":
        buys += qty
    elif side == "sell":
        sells += qty
    return max(abs(q + buys), abs(q - sells))


def margin_view(
    account: Account,
    contracts: Mapping[str, Contract],
    marks: Mapping[str, int],
    *,
    extra: tuple[str, str, int] | None = None,
) -> MarginView:
    """The account's margin at ``marks``; ``extra`` = (symbol, side, qty) adds one more
    resting order, to test whether it would fit."""
    by_symbol: dict[str, list[FuturesOrder]] = {}
    for order in account.open_orders.values():
        if not order.is_trigger:
            by_symbol.setdefault(order.symbol, []).append(order)
    symbols = set(account.positions) | set(by_symbol)
    if extra is not None:
        symbols.add(extra[0])
    out: dict[str, ContractMargin] = {}
    pnl = funding = initial = with_orders = maintenance = ZERO
    for symbol in sorted(symbols):
        contract = contracts[symbol]
        mark = marks[symbol]
        pos = account.positions.get(symbol)
        q = pos.qty if pos is not None else 0
        more = (extra[1], extra[2]) if extra is not None and extra[0] == symbol else ("", 0)
        worst = _exposure(pos, by_symbol.get(symbol, []), more)
        notional = contract.notional(q, mark)
        im, mm = contract.rates(notional)
        worst_notional = contract.notional(worst, mark)
        im_orders = worst_notional * contract.rates(worst_notional)[0]
        c_pnl = (
            (contract.price_decimal(mark) - pos.entry)
            * contract.qty_decimal(q)
            * contract.contract_size
            if pos is not None and q
            else ZERO
        )
        c_funding = pos.unrealized_funding if pos is not None else ZERO
        entry = pos.entry if pos is not None else ZERO
        out[symbol] = ContractMargin(
            symbol, q, entry, mark, c_pnl, c_funding, notional * im, im_orders, notional * mm
        )
        pnl += c_pnl
        funding += c_funding
        initial += notional * im
        with_orders += im_orders
        maintenance += notional * mm
    return MarginView(account.balance, pnl, funding, initial, with_orders, maintenance, out)


def liquidation_price(
    contract: Contract, qty: int, entry: Decimal, equity_elsewhere: Decimal
) -> Decimal | None:
    """The mark at which this one position's equity (``equity_elsewhere`` plus its PnL)
    meets its maintenance margin at the first margin step; None without a position or
    when no positive price does (a long fully backed by collateral)."""
    if qty == 0:
        return None
    size = contract.qty_decimal(qty) * contract.contract_size  # signed
    mm = contract.margin_levels[0][2]
    # equity_elsewhere + (p - entry) * size = |size| * p * mm
    denominator = size - abs(size) * mm
    if denominator == 0:
        return None
    price = (entry * size - equity_elsewhere) / denominator
    return price if price > 0 else None
