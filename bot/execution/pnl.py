"""Positions and profit-and-loss from fills and marks, exact, per strategy and in total.

This module owns the ``PositionBook``: what each strategy holds of each symbol, at what
average cost, what it has realised and what its open positions are worth at the latest
mark (the book's mid), and the baseline that makes "today's PnL" for the daily loss
limit. It is pure: no I/O, no ``await``; the only time it reads is the injected ``Clock``'s
wall clock, to know the UTC day. It does not decide anything: ``bot.execution.risk``
reads it; the engine feeds it (``apply_fill`` on every fill, ``mark`` on book updates).

Accounting rules
================

* **Average cost.** A fill that opens or grows a position adds its cost to the position's
  cost basis; a fill that shrinks it takes out the closed share of the basis and realises
  ``closed qty × fill price − that share``. A fill larger than the position closes it and
  opens the rest the other way at the fill price (a flip through zero).
* **Exact.** Quantities are ints scaled by ``qty_precision``; the cost basis and the
  realised trading PnL are ints scaled by ``price_precision + qty_precision`` (quote units
  to the last digit a price × qty can have). A fill price may be finer than the pair's
  precision (Kraken's average over the levels a taker order crossed): a position then
  keeps its numbers at that finer price precision from that fill on (rescaling is a
  multiplication by a power of ten: exact). The only division, the closed share of the
  basis on a *partial* close, is truncated toward zero to that last digit and the remainder
  stays in the basis, so nothing is ever lost: a position closed in full gives back its
  whole basis, and over any round trip the realised PnL equals the cash difference exactly.
  Every ``Decimal`` operation runs in a context that raises on any rounding.
* **Fees** are a realised cost. A fee in the quote currency is charged as is; a fee in the
  base asset is charged at the fill price; a fee in any other asset is not converted (it
  is kept in ``Position.other_fees`` and in that asset's ``asset_position``).
* **Unrealised** PnL is ``qty × mark − basis``. Until a symbol has a mark, its positions
  are marked at their last fill price.
* **Assets.** Besides positions per symbol, every fill moves asset balances: a buy adds
  the base and spends the quote (``qty × price``), a sell the reverse, and a fee is taken
  from its asset. ``asset_position("BTC")`` is the bot's net BTC since the book started,
  whatever pairs moved it (the risk gate's ``max_position`` reads this).
* **PnL is per quote currency.** Nothing is converted between currencies: a deployment
  trading BTC/USD and ETH/BTC has a USD PnL and a BTC PnL.
* **Marks under a guard.** ``revision`` moves whenever a PnL figure may have changed,
  unless a reader said how far marks may move first: ``guard_marks`` takes, for each
  (scope, quote) daily PnL that matters to it, how far it may fall (the risk gate's room
  to its daily loss limit), and turns that into bounds on each held symbol's mark. A daily
  PnL is linear in each mark (its slope is the scope's net qty of the symbol), so a mark
  inside its bounds cannot take any listed PnL down by more than its room. Until
  ``revision`` next moves (a fill, a new UTC day, a mark outside its bounds), such marks
  leave it as it is. Figures read from the book are current either way.
* **The UTC day.** ``daily_pnl`` is equity (realised + unrealised) now minus equity at the
  start of the UTC day. The book notices midnight at its first call after it (any call)
  and takes the baseline then, with the marks it holds at that moment. A fill stamped
  (``ts_ns``) before the current day, such as one replayed from the store after a
  restart, is folded into the baseline: it moves positions and totals, never today's PnL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)
from typing import Final, Literal, TypeAlias

from bot.core.clock import Clock
from bot.kraken.instruments import Instrument, from_scaled

__all__ = ["NS_PER_DAY", "Position", "PositionBook", "Side", "utc_day"]

Side = Literal["buy", "sell"]

NS_PER_DAY: Final = 86_400 * 1_000_000_000
_ZERO: Final = Decimal(0)
# Wide enough for any sum of these numbers; rounding of any kind raises instead.
_EXACT: Final = Context(
    prec=200, traps=[Inexact, Rounded, InvalidOperation, DivisionByZero, Overflow]
)
# For the one displayed quotient (the average price), rounded on purpose.
_WIDE: Final = Context(prec=200, rounding=ROUND_HALF_EVEN)
# A guard's bounds are rounded inwards (never wider than exact): down for a room and a
# move, up for a lower bound, down for an upper one.
_DOWN: Final = Context(prec=200, rounding=ROUND_FLOOR)
_UP: Final = Context(prec=200, rounding=ROUND_CEILING)

Bounds: TypeAlias = tuple[Decimal | None, Decimal | None]
"""A mark's bounds under a guard, both inclusive; None: that side is free."""


def utc_day(ts_ns: int) -> int:
    """Days since the epoch of a UTC timestamp: it changes exactly at UTC midnight."""
    return ts_ns // NS_PER_DAY


def _add(a: Decimal, b: Decimal) -> Decimal:
    return _EXACT.add(a, b)


def _within(price: Decimal, bounds: Bounds) -> bool:
    lo, hi = bounds
    return (lo is None or lo <= price) and (hi is None or price <= hi)


def _mul(a: Decimal, b: Decimal) -> Decimal:
    return _EXACT.multiply(a, b)


@dataclass(frozen=True, slots=True)
class Position:
    """One position, a snapshot. ``strategy`` is ``None`` for the total over strategies.

    ``qty`` is signed base units (negative: short); ``qty_scaled`` is the same scaled by
    the instrument's ``qty_precision``. Money is in the ``quote`` currency. ``avg_price``
    is ``cost_basis / qty`` rounded to ``price_precision + qty_precision`` decimals (the
    finest price precision of its fills; for display, the accounting uses the exact basis)
    and ``None`` when flat.
    """

    strategy: str | None
    symbol: str
    base: str
    quote: str
    qty: Decimal
    qty_scaled: int
    cost_basis: Decimal
    avg_price: Decimal | None
    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    other_fees: tuple[tuple[str, Decimal], ...]
    mark: Decimal | None

    @property
    def is_flat(self) -> bool:
        return self.qty_scaled == 0

    @property
    def equity(self) -> Decimal:
        """Realised plus unrealised, in the quote currency."""
        return _add(self.realised, self.unrealised)


@dataclass(slots=True)
class _Lot:
    """One strategy's position in one symbol (mutable, private)."""

    instrument: Instrument
    price_precision: int  # the instrument's, or finer once a finer fill price came
    qty: int = 0  # signed, scaled by qty_precision
    basis: int = 0  # signed like qty, scaled by price_precision + qty_precision
    traded: int = 0  # realised from trades (no fees), same scale as basis
    fees: Decimal = _ZERO  # fees charged to PnL, quote currency
    last_price: int = 0  # scaled by price_precision

    @property
    def money_precision(self) -> int:
        return self.price_precision + self.instrument.qty_precision

    def price_at(self, price: int, precision: int) -> int:
        """``price`` (scaled by ``precision``) at this lot's price precision, which first
        becomes ``precision`` if that is finer: every number is rescaled exactly."""
        if precision > self.price_precision:
            step = int(10 ** (precision - self.price_precision))
            self.basis, self.traded, self.last_price = (
                self.basis * step, self.traded * step, self.last_price * step,
            )  # fmt: skip
            self.price_precision = precision
        return price * int(10 ** (self.price_precision - precision))

    def realised(self) -> Decimal:
        return _add(from_scaled(self.traded, self.money_precision), -self.fees)

    def unrealised(self, mark: Decimal | None) -> Decimal:
        if self.qty == 0:
            return _ZERO
        if mark is None:
            mark = from_scaled(self.last_price, self.price_precision)
        value = _mul(self.instrument.qty_decimal(self.qty), mark)
        return _add(value, -from_scaled(self.basis, self.money_precision))

    def equity(self, mark: Decimal | None) -> Decimal:
        return _add(self.realised(), self.unrealised(mark))

    def trade(self, signed_qty: int, price: int) -> int:
        """Apply one fill's quantity; return the trading PnL it realised (basis scale)."""
        q = self.qty
        realised = 0
        if q == 0 or (q > 0) == (signed_qty > 0):
            self.qty = q + signed_qty
            self.basis += signed_qty * price
        else:
            closed = min(abs(signed_qty), abs(q))
            sign = 1 if q > 0 else -1
            if closed == abs(q):
                removed = self.basis
            else:
                # Truncated toward zero; the remainder stays in the basis (exact overall).
                removed = sign * (abs(self.basis) * closed // abs(q))
            realised = sign * closed * price - removed
            self.qty = q - sign * closed
            self.basis -= removed
            opened = abs(signed_qty) - closed
            if opened:  # through zero: the rest opens the other way at this price
                self.qty = -sign * opened
                self.basis = -sign * opened * price
        self.traded += realised
        self.last_price = price
        return realised


class PositionBook:
    """Positions and PnL per strategy (``""`` for fills no strategy owns) and in total."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lots: dict[tuple[str, str], _Lot] = {}
        self._marks: dict[str, Decimal] = {}
        self._assets: dict[tuple[str, str], Decimal] = {}
        self._other_fees: dict[tuple[str, str], dict[str, Decimal]] = {}
        self._day = utc_day(clock.time_ns())
        self._baseline: dict[tuple[str, str], Decimal] = {}
        self._held: set[str] = set()  # symbols with a lot: their marks move the PnL
        self._guard: dict[str, Bounds] | None = None  # ``guard_marks``', until ``_moved``
        self.revision = 0
        """Bumped whenever a PnL figure may have changed (a fill, a new mark of a symbol
        with a lot, a new UTC day), except for a mark inside the bounds of ``guard_marks``:
        a reader may skip work while it stays the same."""

    def _moved(self) -> None:
        """``revision`` moves, and a guard set for the last one ends with it."""
        self.revision += 1
        self._guard = None

    # -- the UTC day -----------------------------------------------------------------

    @property
    def day(self) -> date:
        """The UTC day the daily PnL currently covers."""
        self._roll()
        return datetime.fromtimestamp(self._day * 86_400, UTC).date()

    @property
    def day_number(self) -> int:
        """``day`` as days since the epoch (``utc_day``)."""
        self._roll()
        return self._day

    def _roll(self, day: int | None = None) -> None:
        if day is None:
            day = utc_day(self._clock.time_ns())
        if day <= self._day:  # a wall clock set back never un-rolls a day
            return
        baseline: dict[tuple[str, str], Decimal] = {}
        for (strategy, symbol), lot in self._lots.items():
            key = (strategy, lot.instrument.quote)
            equity = lot.equity(self._marks.get(symbol))
            baseline[key] = _add(baseline.get(key, _ZERO), equity)
        self._baseline = baseline
        self._day = day
        self._moved()

    # -- inputs ----------------------------------------------------------------------

    def apply_fill(
        self,
        symbol: str,
        instrument: Instrument,
        side: Side,
        qty: int,
        price: int,
        *,
        fee: Decimal = _ZERO,
        fee_asset: str = "",
        strategy: str = "",
        ts_ns: int | None = None,
        price_precision: int | None = None,
    ) -> Decimal:
        """Account one fill; return the PnL it realised (fees included), quote currency.

        ``qty`` and ``price`` are scaled ints of ``instrument``, ``price`` by
        ``price_precision`` when given (a ``Fill``'s own, which may be finer than the
        pair's: an average price); ``fee`` is in ``fee_asset`` (``""`` when there is no
        fee). ``ts_ns`` is when the fill happened (default: now); a fill from before the
        current UTC day does not count towards today's PnL.
        """
        if price_precision is None:
            price_precision = instrument.price_precision
        if symbol != instrument.symbol:
            raise ValueError(f"fill for {symbol!r} with the instrument of {instrument.symbol!r}")
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        if qty <= 0 or price <= 0:
            raise ValueError(f"fill qty and price must be positive, got {qty} @ {price}")
        if fee and not fee_asset:
            raise ValueError("a fee needs its asset")
        self._roll()
        day = None if ts_ns is None else utc_day(ts_ns)
        if day is not None and day > self._day:  # the exchange's clock crossed midnight first
            self._roll(day)
        self._moved()
        lot = self._lots.get((strategy, symbol))
        if lot is None:
            lot = self._lots[(strategy, symbol)] = _Lot(instrument, instrument.price_precision)
            self._held.add(symbol)
        elif lot.instrument != instrument:
            # Kraken changed the pair's precision: rescale nothing silently.
            raise ValueError(f"{symbol}: instrument changed under an open position book")
        mark = self._marks.get(symbol)
        before = lot.equity(mark)

        price = lot.price_at(price, price_precision)
        signed = qty if side == "buy" else -qty
        realised_int = lot.trade(signed, price)
        realised = from_scaled(realised_int, lot.money_precision)

        fee_charged = _ZERO
        if fee:
            if fee_asset == instrument.quote:
                fee_charged = fee
            elif fee_asset == instrument.base:
                fee_charged = _mul(fee, from_scaled(price, lot.price_precision))
            else:
                other = self._other_fees.setdefault((strategy, symbol), {})
                other[fee_asset] = _add(other.get(fee_asset, _ZERO), fee)
            lot.fees = _add(lot.fees, fee_charged)
            self._move(strategy, fee_asset, -fee)

        cost = from_scaled(signed * price, lot.money_precision)
        self._move(strategy, instrument.base, instrument.qty_decimal(signed))
        self._move(strategy, instrument.quote, -cost)

        if day is not None and day < self._day:
            key = (strategy, instrument.quote)
            delta = _add(lot.equity(mark), -before)
            self._baseline[key] = _add(self._baseline.get(key, _ZERO), delta)
        return _add(realised, -fee_charged)

    def _move(self, strategy: str, asset: str, amount: Decimal) -> None:
        key = (strategy, asset)
        self._assets[key] = _add(self._assets.get(key, _ZERO), amount)

    def mark(self, symbol: str, price: Decimal) -> None:
        """The current value of one unit of ``symbol`` (the book's mid), in price units."""
        if not price.is_finite() or price <= 0:
            raise ValueError(f"{symbol}: a mark must be a positive number, got {price}")
        self._roll()  # the baseline is taken with the marks from before midnight
        if symbol in self._held and self._marks.get(symbol) != price:
            guard = self._guard
            bounds = None if guard is None else guard.get(symbol)
            if bounds is None or not _within(price, bounds):
                self._moved()
        self._marks[symbol] = price

    def guard_marks(self, room: Mapping[tuple[str | None, str], Decimal], revision: int) -> None:
        """Until ``revision`` next moves, a new mark moves it only where it could take one of
        these daily PnLs down by more than its room (the module docstring).

        ``room[(scope, quote)]`` is how far ``daily_pnl(quote, scope)`` may fall (``scope``
        a strategy, or None for the total). Each room is split evenly among the symbols
        that PnL depends on (a net qty in the scope), a symbol's bounds being the
        narrowest its scopes give: a long may fall ``share / qty`` below its mark, a short
        rise as far above it. A held symbol no listed PnL depends on is free; one with no
        mark yet (marked at its last fill price) is not guarded: its first mark moves
        ``revision``. A guard replaces the last one, so one reader sets it: the risk gate
        of this book (each daemon builds its own book and gate). ``revision`` is the one
        the rooms were read at: if it has moved since (a new UTC day, say), no guard is
        set."""
        if revision != self.revision:
            self._guard = None
            return
        guard: dict[str, Bounds] = dict.fromkeys(self._held, (None, None))
        for (scope, quote), headroom in room.items():
            net: dict[str, Decimal] = {}
            for (strategy, symbol), lot in self._lots.items():
                if lot.qty and lot.instrument.quote == quote and scope in (None, strategy):
                    qty = lot.instrument.qty_decimal(lot.qty)
                    net[symbol] = _add(net.get(symbol, _ZERO), qty)
            exposed = {symbol: qty for symbol, qty in net.items() if qty}
            if not exposed:
                continue
            share = _DOWN.divide(max(headroom, _ZERO), Decimal(len(exposed)))
            for symbol, qty in exposed.items():
                bounds = guard.get(symbol)
                mark = self._marks.get(symbol)
                if bounds is None or mark is None:
                    guard.pop(symbol, None)  # not guarded: every new mark moves revision
                    continue
                move = _DOWN.divide(share, abs(qty))
                lo, hi = bounds
                if qty > 0:  # a long loses as the mark falls
                    edge = _UP.subtract(mark, move)
                    lo = edge if lo is None else max(lo, edge)
                else:
                    edge = _DOWN.add(mark, move)
                    hi = edge if hi is None else min(hi, edge)
                guard[symbol] = (lo, hi)
        self._guard = guard

    # -- reading ---------------------------------------------------------------------

    def _position(self, strategy: str | None, symbol: str, lots: list[_Lot]) -> Position:
        inst = lots[0].instrument
        mark = self._marks.get(symbol)
        qty = sum(lot.qty for lot in lots)
        pp = max(lot.price_precision for lot in lots)  # the finest of the lots'
        basis = sum(lot.basis * int(10 ** (pp - lot.price_precision)) for lot in lots)
        money = pp + inst.qty_precision
        avg = None
        if qty:
            avg = _WIDE.divide(Decimal(basis), Decimal(qty)).scaleb(-pp, _WIDE)
            avg = avg.quantize(Decimal(1).scaleb(-money), context=_WIDE)
        realised, unrealised, fees = _ZERO, _ZERO, _ZERO
        for lot in lots:
            realised = _add(realised, lot.realised())
            unrealised = _add(unrealised, lot.unrealised(mark))
            fees = _add(fees, lot.fees)
        other: dict[str, Decimal] = {}
        for (strat, sym), amounts in self._other_fees.items():
            if sym == symbol and strategy in (None, strat):
                for asset, amount in amounts.items():
                    other[asset] = _add(other.get(asset, _ZERO), amount)
        return Position(
            strategy=strategy,
            symbol=symbol,
            base=inst.base,
            quote=inst.quote,
            qty=inst.qty_decimal(qty),
            qty_scaled=qty,
            cost_basis=from_scaled(basis, money),
            avg_price=avg,
            realised=realised,
            unrealised=unrealised,
            fees=fees,
            other_fees=tuple(sorted(other.items())),
            mark=mark,
        )

    def position(self, symbol: str, strategy: str | None = None) -> Position | None:
        """One symbol's position: one strategy's, or (``None``) the total over strategies."""
        self._roll()
        lots = [
            lot
            for (strat, sym), lot in self._lots.items()
            if sym == symbol and strategy in (None, strat)
        ]
        return self._position(strategy, symbol, lots) if lots else None

    def strategy_qty(self, symbol: str, strategy: str) -> Decimal | None:
        """``position(symbol, strategy).qty`` without the rest of the ``Position`` (None:
        never traded): what a strategy reads on every book."""
        self._roll()
        lot = self._lots.get((strategy, symbol))
        return None if lot is None else lot.instrument.qty_decimal(lot.qty)

    def positions(self, strategy: str | None = None) -> list[Position]:
        """Every position ever traded (flat ones too), per strategy or, with ``None``, total."""
        self._roll()
        if strategy is None:
            symbols = dict.fromkeys(sym for _, sym in self._lots)
            return [pos for sym in symbols if (pos := self.position(sym)) is not None]
        return [
            self._position(strat, sym, [lot])
            for (strat, sym), lot in self._lots.items()
            if strat == strategy
        ]

    def strategies(self) -> list[str]:
        """Every strategy with a fill (``""`` for fills no strategy owns)."""
        return list(dict.fromkeys(strat for strat, _ in self._lots))

    def quotes(self) -> list[str]:
        """Every quote currency with a fill."""
        return list(dict.fromkeys(lot.instrument.quote for lot in self._lots.values()))

    def asset_position(self, asset: str, strategy: str | None = None) -> Decimal:
        """Net amount of ``asset`` the fills moved (fees included), one strategy or total."""
        total = _ZERO
        for (strat, name), amount in self._assets.items():
            if name == asset and strategy in (None, strat):
                total = _add(total, amount)
        return total

    def _sum(self, quote: str, strategy: str | None, part: str) -> Decimal:
        total = _ZERO
        for (strat, symbol), lot in self._lots.items():
            if lot.instrument.quote != quote or strategy not in (None, strat):
                continue
            mark = self._marks.get(symbol)
            value = lot.realised() if part == "realised" else lot.unrealised(mark)
            total = _add(total, value)
        return total

    def realised(self, quote: str, strategy: str | None = None) -> Decimal:
        """Realised PnL (fees included) in ``quote`` since the book started."""
        return self._sum(quote, strategy, "realised")

    def unrealised(self, quote: str, strategy: str | None = None) -> Decimal:
        """Unrealised PnL in ``quote`` at the current marks."""
        self._roll()
        return self._sum(quote, strategy, "unrealised")

    def equity(self, quote: str, strategy: str | None = None) -> Decimal:
        """Realised plus unrealised PnL in ``quote``."""
        return _add(self.realised(quote, strategy), self.unrealised(quote, strategy))

    def daily_pnl(self, quote: str, strategy: str | None = None) -> Decimal:
        """PnL in ``quote`` since the start of the current UTC day (realised + unrealised)."""
        self._roll()
        base = _ZERO
        for (strat, q), value in self._baseline.items():
            if q == quote and strategy in (None, strat):
                base = _add(base, value)
        return _add(self.equity(quote, strategy), -base)

    def daily_pnls(self, strategy: str | None = None) -> dict[str, Decimal]:
        """``daily_pnl`` for every quote currency."""
        return {quote: self.daily_pnl(quote, strategy) for quote in self.quotes()}
