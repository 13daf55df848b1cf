"""Balances, funds held by open orders, and fees: the simulator's ledger (pure).

Numbers: every balance is an ``int`` scaled by its asset's *ledger scale*, chosen per asset
when ``Accounts`` is built so that every trade moves exact amounts: at least Kraken's asset
precision (``pairs.ASSET_PRECISION``, e.g. USD 4, BTC 10), at least each pair's
``qty_precision`` for a base asset, and at least ``price_precision + qty_precision`` (the
exact cost of a fill) for a quote asset. USD is therefore kept to 15 decimals when DOGE/USD
(7 + 8) is loaded. ``Decimal`` appears only at the edges (``deposit``, ``balances``).

Fees: ``FeeSchedule`` holds maker/taker rates in basis points (Kraken Starter 25/40 by
default). A fee in quote currency is rounded *up* to the pair's ``cost_precision``, a fee
in base to its ``qty_precision``; rounding is cumulative per order (the order's total fee
is ``ceil(sum(cost_i * rate_i))``), so partial fills never pay more than one fill would.
Collected fees go to ``FEE_ACCOUNT``, so the sum of each asset over all accounts is constant.

Holds: an open order holds what it may still need: a buy holds quote for ``price *
remaining`` plus the taker fee on it (unless its fee is taken in base); a sell holds base
(plus the fee when it is paid in base). Holds are recomputed from the order's state after
every change and never grow by a fill, so a fill is always covered. ``available = total -
held``. Accounts in ``unlimited`` (the market account) have no holds and no funds checks;
their balances may go negative.

This module owns the ledger and the fee and hold arithmetic; it knows nothing of books.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from bot.core.errors import InsufficientFunds, RejectedError
from bot.kraken.instruments import Instrument, from_scaled
from bot.sim.pairs import ASSET_PRECISION

__all__ = [
    "FEE_ACCOUNT",
    "MARKET_ACCOUNT",
    "Accounts",
    "FeeSchedule",
    "PairMath",
]

MARKET_ACCOUNT: Final = "~market"
FEE_ACCOUNT: Final = "~fees"
_PPM: Final = 1_000_000
_DEFAULT_ASSET_PRECISION: Final = 8


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fees in basis points (1 bp = 0.01 %), exact to 0.01 bp."""

    maker_bps: Decimal = Decimal(25)
    taker_bps: Decimal = Decimal(40)

    def __post_init__(self) -> None:
        for bps in (self.maker_bps, self.taker_bps):
            ppm = Decimal(bps) * 100
            if ppm != ppm.to_integral_value() or not 0 <= ppm < _PPM:
                raise ValueError(f"fee {bps} bps is not a multiple of 0.01 bp in [0, 10000)")

    @property
    def maker_ppm(self) -> int:
        return int(Decimal(self.maker_bps) * 100)

    @property
    def taker_ppm(self) -> int:
        return int(Decimal(self.taker_bps) * 100)

    @property
    def max_ppm(self) -> int:
        return max(self.maker_ppm, self.taker_ppm)


ZERO_FEES: Final = FeeSchedule(Decimal(0), Decimal(0))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class PairMath:
    """Exact conversions for one pair between book units and ledger units, and its fees."""

    __slots__ = (
        "base",
        "base_fee_mul",
        "base_mul",
        "inst",
        "quote",
        "quote_fee_div",
        "quote_fee_mul",
        "quote_mul",
    )

    def __init__(self, inst: Instrument, scales: dict[str, int]) -> None:
        pp, qp, cp = inst.price_precision, inst.qty_precision, inst.cost_precision
        lb, lq = scales[inst.base], scales[inst.quote]
        self.inst: Instrument = inst
        self.base: str = inst.base
        self.quote: str = inst.quote
        self.base_mul: int = 10 ** (lb - qp)  # qty units -> base ledger units
        self.quote_mul: int = 10 ** (lq - pp - qp)  # price*qty units -> quote ledger units
        # Quote fees are counted in units of 10**-cp; cost is at pp+qp, a rate in ppm.
        self.quote_fee_div: int = _PPM * 10 ** max(pp + qp - cp, 0)
        self.quote_fee_mul: int = 10 ** (lq - min(cp, pp + qp))
        self.base_fee_mul: int = self.base_mul  # base fees are counted in qty units

    def fee_base_amount(self, fee_in_base: bool, price: int, qty: int) -> int:
        """What a fee is a fraction of: cost (quote fee) or qty (base fee), in book units."""
        return qty if fee_in_base else price * qty

    def fee_units(self, fee_in_base: bool, acc: int) -> int:
        """Total fee units charged for an accumulated ``sum(amount * ppm)``."""
        return _ceil_div(acc, _PPM if fee_in_base else self.quote_fee_div)

    def fee_ledger(self, fee_in_base: bool, units: int) -> int:
        return units * (self.base_fee_mul if fee_in_base else self.quote_fee_mul)

    def fee_decimal(self, fee_in_base: bool, units: int) -> Decimal:
        inst = self.inst
        if fee_in_base:
            return from_scaled(units, inst.qty_precision)
        return from_scaled(
            units, min(inst.cost_precision, inst.price_precision + inst.qty_precision)
        )

    def hold(
        self,
        side: str,
        fee_in_base: bool,
        price: int,
        remaining: int,
        *,
        fee_acc: int = 0,
        fee_units: int = 0,
        rate_ppm: int,
    ) -> tuple[str, int]:
        """(asset, ledger amount) an order must hold to cover ``remaining`` at ``price``."""
        if remaining <= 0:
            return (self.quote if side == "buy" else self.base), 0
        extra = 0
        if side == "buy":
            amount = price * remaining * self.quote_mul
            if not fee_in_base:
                acc = fee_acc + price * remaining * rate_ppm
                extra = (self.fee_units(False, acc) - fee_units) * self.quote_fee_mul
            return self.quote, amount + extra
        amount = remaining * self.base_mul
        if fee_in_base:
            acc = fee_acc + remaining * rate_ppm
            extra = (self.fee_units(True, acc) - fee_units) * self.base_fee_mul
        return self.base, amount + extra


def ledger_scales(instruments: Iterable[Instrument]) -> dict[str, int]:
    """Per asset, the smallest scale at which every trade on these pairs is exact."""
    scales: dict[str, int] = dict(ASSET_PRECISION)
    for inst in instruments:
        pp, qp, cp = inst.price_precision, inst.qty_precision, inst.cost_precision
        b = scales.get(inst.base, _DEFAULT_ASSET_PRECISION)
        q = scales.get(inst.quote, _DEFAULT_ASSET_PRECISION)
        scales[inst.base] = max(b, qp)
        scales[inst.quote] = max(q, pp + qp, cp)
    return scales


class Accounts:
    """Every account's balances and holds, in ledger units; fee schedules per account."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        fees: FeeSchedule | None = None,
        unlimited: Iterable[str] = (MARKET_ACCOUNT,),
        market_fees: FeeSchedule = ZERO_FEES,
    ) -> None:
        insts = list(instruments)
        self._scales = ledger_scales(insts)
        self._pairs = {inst.symbol: PairMath(inst, self._scales) for inst in insts}
        self._total: dict[str, dict[str, int]] = {}
        self._held: dict[str, dict[str, int]] = {}
        self._holds: dict[str, tuple[str, str, int]] = {}  # key -> (account, asset, amount)
        self._default_fees = fees if fees is not None else FeeSchedule()
        self._fees: dict[str, FeeSchedule] = {}
        self._unlimited = frozenset(unlimited)
        for account in self._unlimited:
            self._fees[account] = market_fees

    # -- scales and pairs ---------------------------------------------------------------
    def scale(self, asset: str) -> int:
        """Decimals of ``asset``'s ledger units."""
        return self._scales.get(asset, _DEFAULT_ASSET_PRECISION)

    def pair(self, symbol: str) -> PairMath:
        return self._pairs[symbol]

    def is_unlimited(self, account: str) -> bool:
        return account in self._unlimited

    # -- fees ----------------------------------------------------------------------------
    def fees(self, account: str) -> FeeSchedule:
        return self._fees.get(account, self._default_fees)

    def set_fees(self, account: str, fees: FeeSchedule) -> None:
        self._fees[account] = fees

    # -- balances ------------------------------------------------------------------------
    def to_ledger(self, asset: str, amount: Decimal | int | str) -> int:
        value = Decimal(amount).scaleb(self.scale(asset))
        if value != value.to_integral_value():
            raise RejectedError(
                "EGeneral:Invalid arguments:amount", f"{amount} {asset}: too many decimals"
            )
        return int(value)

    def deposit(self, account: str, asset: str, amount: Decimal | int | str) -> None:
        """Credit ``amount`` (in asset units, may be negative for a withdrawal)."""
        self.move(account, asset, self.to_ledger(asset, amount))

    def move(self, account: str, asset: str, delta: int) -> None:
        """Add ``delta`` ledger units to ``account``'s total of ``asset``."""
        book = self._total.setdefault(account, {})
        book[asset] = book.get(asset, 0) + delta

    def total(self, account: str, asset: str) -> int:
        return self._total.get(account, {}).get(asset, 0)

    def held(self, account: str, asset: str) -> int:
        return self._held.get(account, {}).get(asset, 0)

    def available(self, account: str, asset: str) -> int:
        return self.total(account, asset) - self.held(account, asset)

    def balances(self, account: str) -> dict[str, Decimal]:
        """Total per asset, exact (Kraken's ``Balance``)."""
        return {
            a: from_scaled(n, self.scale(a))
            for a, n in sorted(self._total.get(account, {}).items())
        }

    def holds(self, account: str) -> dict[str, Decimal]:
        """Held by open orders per asset (Kraken's ``BalanceEx`` ``hold_trade``)."""
        return {
            a: from_scaled(n, self.scale(a))
            for a, n in sorted(self._held.get(account, {}).items())
            if n
        }

    def asset_sum(self, asset: str) -> int:
        """Sum of ``asset`` over every account (constant under trading)."""
        return sum(b.get(asset, 0) for b in self._total.values())

    def assets(self) -> list[str]:
        return sorted({a for b in self._total.values() for a in b})

    # -- holds ---------------------------------------------------------------------------
    def hold_of(self, key: str) -> int:
        entry = self._holds.get(key)
        return entry[2] if entry is not None else 0

    def require(self, key: str, account: str, asset: str, amount: int) -> None:
        """Set ``key``'s hold to ``amount`` or raise ``EOrder:Insufficient funds``."""
        if account in self._unlimited:
            return
        entry = self._holds.get(key)
        current = entry[2] if entry is not None and entry[1] == asset else 0
        if amount > current and self.available(account, asset) < amount - current:
            raise InsufficientFunds("EOrder:Insufficient funds")
        self.set_hold(key, account, asset, amount)

    def check(self, account: str, asset: str, amount: int) -> None:
        """Raise ``EOrder:Insufficient funds`` unless ``amount`` is available."""
        if account not in self._unlimited and self.available(account, asset) < amount:
            raise InsufficientFunds("EOrder:Insufficient funds")

    def set_hold(self, key: str, account: str, asset: str, amount: int) -> None:
        """Hold exactly ``amount`` of ``asset`` for ``key`` (an order id); 0 releases."""
        if account in self._unlimited:
            return
        self.release(key)
        if amount:
            self._holds[key] = (account, asset, amount)
            held = self._held.setdefault(account, {})
            held[asset] = held.get(asset, 0) + amount

    def release(self, key: str) -> None:
        entry = self._holds.pop(key, None)
        if entry is not None:
            account, asset, amount = entry
            self._held[account][asset] -= amount
