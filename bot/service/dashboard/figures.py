"""Figures the dashboard derives from an ``Observation``, exact: equity, holds, our quotes.

* **Equity** per quote currency: the balance of that currency plus every balance of a base
  asset traded against it, valued at the pair's mid. Balances are the daemon's last poll
  (``Balance``, every 30 s); the mids are live. A base traded against two quotes counts
  in both (each currency's own view; nothing is converted).
* **Held** per asset: what the daemon's own open orders hold: a buy's remaining quantity ×
  its limit price in the quote currency, a sell's remaining quantity in the base asset.
  Kraken's own holds (orders of other clients on the account, margin) are not included;
  **free** is the balance minus that.
* **Our quotes** per symbol: the highest price of our open buys and the lowest of our open
  sells (what the charts draw beside the mid).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from bot.execution.orders import Order
from bot.kraken.instruments import from_scaled
from bot.service.observe import Observation

__all__ = ["distance", "equity", "held", "our_quotes"]


def equity(obs: Observation) -> dict[str, Decimal]:
    """Quote currency → the account's value in it (empty until balances are known)."""
    if not obs.balances:
        return {}
    out: dict[str, Decimal] = {}
    counted: set[tuple[str, str]] = set()
    for symbol, inst in obs.instruments.items():
        total = out.get(inst.quote, obs.balances.get(inst.quote, Decimal(0)))
        mid = obs.mids.get(symbol)
        amount = obs.balances.get(inst.base)
        if mid is not None and amount and (inst.base, inst.quote) not in counted:
            counted.add((inst.base, inst.quote))
            total += amount * mid
        out[inst.quote] = total
    return out


def held(orders: tuple[Order, ...], quotes: Mapping[str, tuple[str, str]]) -> dict[str, Decimal]:
    """Asset → amount our open orders hold; ``quotes``: symbol → (base, quote)."""
    out: dict[str, Decimal] = {}
    for order in orders:
        pair = quotes.get(order.symbol)
        if pair is None:
            continue
        left = from_scaled(order.remaining_qty, order.qty_precision)
        if order.side == "sell":
            out[pair[0]] = out.get(pair[0], Decimal(0)) + left
        elif order.price is not None:
            cost = left * from_scaled(order.price, order.price_precision)
            out[pair[1]] = out.get(pair[1], Decimal(0)) + cost
    return out


def our_quotes(orders: tuple[Order, ...]) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """Symbol → (our best bid, our best ask) among open limit orders."""
    out: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for order in orders:
        if order.price is None:
            continue
        price = from_scaled(order.price, order.price_precision)
        bid, ask = out.get(order.symbol, (None, None))
        if order.side == "buy":
            bid = price if bid is None else max(bid, price)
        else:
            ask = price if ask is None else min(ask, price)
        out[order.symbol] = (bid, ask)
    return out


def distance(order: Order, mid: Decimal | None) -> tuple[Decimal, Decimal] | None:
    """(price − mid, the same in basis points of the mid), or None without a price or mid."""
    if order.price is None or mid is None or mid <= 0:
        return None
    gap = from_scaled(order.price, order.price_precision) - mid
    return gap, gap / mid * 10_000
