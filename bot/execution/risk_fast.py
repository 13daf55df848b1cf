"""The risk gate's fast accept path: one strategy's limits on one instrument, as scaled ints.

This module owns ``FastPlan`` and ``build_plan``: the limits of a strategy's scopes (the
bot's, then its own) turned once into integers in the instrument's own units, so that
``RiskGate`` can decide the common case (a priced ``PlaceOrder`` well inside every limit,
every state ACTIVE, no loss-limit transition) with a few integer comparisons: no
``Decimal`` built, no dict per call. It decides nothing by itself. ``Lane`` is a plan made
live for the positions of one revision of the ``PositionBook`` (the caps folded with the
qty limit into the largest qty each side accepts), and ``Band`` caches the price range for
the last mid. ``RiskGate`` decides on a lane; it accepts only when the exact path
(``RiskGate._check_order``) would accept, and otherwise returns nothing for the exact path
to decide, so every rejection and its message come from the exact path.

Why the integers decide exactly as the ``Decimal`` code does: every comparison is turned
into one between integers with the same outcome (``x > c`` for an integer ``x`` and a
rational ``c`` is ``x > floor(c)``), and the plan bounds the operands so that every
``Decimal`` operation of the exact path on an order it accepts is exact at 28 digits (the
default context's precision, which the daemon never lowers: ``from_scaled`` relies on it
too): quantities and positions below 10**27 units, price × qty below 10**28, and for the
band, prices and mids below 10**G quote units with G chosen so that ``band × mid`` keeps
within 28 digits. An order or a limit outside those bounds, a limit that is not a finite
``Decimal`` or ``int``, a mid with more decimals than the book's (price precision + 1), or
a position that is not a whole number of qty units takes the exact path.

A plan reads the limits once: like the gate's scope cache, it relies on a gate's limits
never changing after it is built (``RiskLimits`` is frozen; nothing replaces them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from decimal import Context, Decimal
from fractions import Fraction
from typing import Final, NamedTuple

from bot.execution.commands import AmendOrder
from bot.execution.risk_limits import RiskLimits
from bot.kraken.instruments import Instrument

__all__ = [
    "EXACT_DIGITS", "FastPlan", "Lane", "amend_terms", "build_lane", "build_plan",
    "position_units", "side_max",
]  # fmt: skip

EXACT_DIGITS: Final = 28  # the default decimal context's precision: the bounds assume it
_QTY_BOUND: Final = 10**27  # qty and positions below it: position ± qty within 28 digits
_COST_BOUND: Final = 10**EXACT_DIGITS  # price × qty below it: the cost within 28 digits
_WIDE: Final = Context(prec=10_000)  # to normalise a limit without rounding it


class Band:
    """The tightest price band of the scopes, as the range of prices (scaled ints) it
    accepts around the last mid seen: ``lo <= price <= hi`` (empty: take the exact path).

    With ``m`` the mid in units of 10**-(price_precision + 1), a price ``p`` is inside a
    band ``c2 / c1`` (``c1`` is 100 × the band's denominator) when
    ``|10·p − m| · c1 <= c2 · m``; the mid and the price must stay below 10**G quote units.
    """

    __slots__ = ("_c1", "_c2", "_max_mid", "_max_price", "_units", "hi", "lo", "mid")

    def __init__(self, band: Fraction, price_precision: int, g: int) -> None:
        self._units = 10 ** (price_precision + 1)  # a mid times this must be an integer
        self._max_mid = 10 ** (g + price_precision + 1)
        self._max_price = 10 ** (g + price_precision)
        self._c1, self._c2 = 100 * band.denominator, band.numerator
        self.mid: Decimal | None = None
        self.lo, self.hi = 1, 0

    def update(self, mid: Decimal) -> None:
        """Set the range of prices for ``mid`` (empty for a mid the band cannot take)."""
        self.lo, self.hi = 1, 0
        if not mid.is_finite():
            self.mid = None  # never kept: a signalling NaN would raise at the next compare
            return
        self.mid = mid
        num, den = mid.as_integer_ratio()
        if num <= 0 or self._units % den or self._c2 < 0:
            return
        m = num * (self._units // den)
        if m >= self._max_mid:
            return
        # |10·p − m| <= floor(c2·m / c1): an integer within a rational bound is within its floor
        t = self._c2 * m // self._c1
        self.lo = -((t - m) // 10)  # ceil((m − t) / 10)
        self.hi = min((m + t) // 10, self._max_price - 1)


class FastPlan(NamedTuple):
    """What the fast path reads for one (strategy, instrument); ``enabled=False``: the pair
    always takes the exact path (a limit the integers cannot represent exactly)."""

    strategy: str
    inst: Instrument
    enabled: bool
    qty_max: int  # accept a qty (scaled) up to this
    notional_max: int | None  # accept price × qty (scaled ints) up to this; None: no cap
    band: Band | None  # None: no band in any scope
    needs_price: bool  # a band or a notional cap: a market order takes the exact path
    cap_bot: int | None  # the bot's max_position of the base asset, qty units
    cap_strategy: int | None  # the strategy's own, qty units
    open_bot: int | None  # max_open_orders: the bot's
    open_strategy: int | None  # the strategy's own
    rates: tuple[tuple[deque[float], int], ...]  # (window, max_orders_per_minute) per scope


class Lane:
    """A plan made live: what the fast path reads for one (strategy, instrument) while the
    gate's states, its last daily-loss evaluation (``epoch``) and the positions
    (``revision``) stay as they were when it was made, and until ``until_ns`` (the end of
    that evaluation's UTC day). The position caps are folded with the qty limit into the
    largest qty each side accepts (``buy_max``, ``sell_max``: 0 accepts none), so the
    decision reads this one object, the mid, the open-order counts and the rate windows.
    """

    __slots__ = (
        "band", "buy_max", "epoch", "inst", "needs_price", "notional_max", "open_bot",
        "open_strategy", "pos", "rates", "revision", "sell_max", "strategy", "until_ns",
    )  # fmt: skip

    def __init__(
        self, plan: FastPlan, epoch: int, revision: int, until_ns: int,
        *, pos: int, buy_max: int, sell_max: int,
    ) -> None:  # fmt: skip
        self.strategy, self.inst = plan.strategy, plan.inst
        self.epoch, self.revision, self.until_ns = epoch, revision, until_ns
        self.notional_max, self.band = plan.notional_max, plan.band
        self.needs_price, self.rates = plan.needs_price, plan.rates
        self.open_bot, self.open_strategy = plan.open_bot, plan.open_strategy
        self.pos, self.buy_max, self.sell_max = pos, buy_max, sell_max


def side_max(cap: int | None, pos: int) -> tuple[int, int]:
    """The largest buy and sell qty (units) that a position cap ``cap`` accepts at the
    position ``pos``: an order within the cap afterwards, or one that only reduces the
    position (``qty <= |pos|`` against it). Each side's accepted qtys are ``1..max``."""
    if cap is None:
        return _QTY_BOUND, _QTY_BOUND
    buy = cap - pos if pos >= 0 else max(-pos, cap - pos)
    sell = cap + pos if pos <= 0 else max(pos, cap + pos)
    return buy, sell


def build_lane(
    plan: FastPlan, epoch: int, revision: int, until_ns: int, *, bot: Decimal, own: Decimal
) -> Lane | None:
    """The lane of ``plan`` for the bot's and the strategy's positions in its base asset
    (``bot``, ``own``); None when the fast path cannot decide at these positions (a plan
    disabled, a position not a whole number of qty units or too large)."""
    if not plan.enabled:
        return None
    qp = plan.inst.qty_precision
    pos = position_units(bot, qp)
    if pos is None:
        return None
    buy, sell = side_max(plan.cap_bot, pos)
    if plan.cap_strategy is not None:
        mine = position_units(own, qp)
        if mine is None:
            return None
        own_buy, own_sell = side_max(plan.cap_strategy, mine)
        buy, sell = min(buy, own_buy), min(sell, own_sell)
    return Lane(
        plan, epoch, revision, until_ns, pos=pos,
        buy_max=max(0, min(plan.qty_max, buy)), sell_max=max(0, min(plan.qty_max, sell)),
    )  # fmt: skip


def _fraction(value: object) -> Fraction | None:
    """A limit as an exact fraction; None for anything but a finite ``Decimal`` or ``int``."""
    if type(value) is int:
        return Fraction(value)
    if type(value) is Decimal and value.is_finite():
        return Fraction(value)
    return None


def _digits(value: Decimal | int) -> int:
    """Significant digits of a band (its coefficient without trailing zeros)."""
    return len(Decimal(value).normalize(_WIDE).as_tuple().digits)


def _floor_units(value: Fraction, precision: int) -> int:
    """``floor(value × 10**precision)``: a limit in scaled units (``x <= c`` is
    ``x <= floor(c)`` for an integer ``x``)."""
    scale: int = 10**precision
    return value.numerator * scale // value.denominator


def position_units(position: Decimal, precision: int) -> int | None:
    """A position in qty units, or None if it is not a whole number of them (a fee in the
    base asset with more decimals) or too large for the fast path."""
    if not position.is_finite():
        return None
    num, den = position.as_integer_ratio()
    scale: int = 10**precision
    units, rest = divmod(num * scale, den)
    if rest or abs(units) >= _QTY_BOUND:
        return None
    return units


def _disabled(strategy: str, inst: Instrument) -> FastPlan:
    return FastPlan(strategy, inst, False, 0, None, None, True, None, None, None, None, ())


def build_plan(
    strategy: str,
    scopes: Sequence[tuple[str | None, RiskLimits]],
    inst: Instrument,
    window: Callable[[str | None], deque[float]],
) -> FastPlan:
    """The plan for ``strategy``'s orders on ``inst`` under ``scopes`` (the bot's, then the
    strategy's own if it has limits).

    ``window`` gives a scope's order-rate window (the gate's own deque: the fast path
    counts in it as the exact path does).
    """
    pp, qp = inst.price_precision, inst.qty_precision
    if type(pp) is not int or type(qp) is not int or pp < 0 or qp < 0:
        return _disabled(strategy, inst)
    qty_max = _QTY_BOUND - 1
    notionals: list[Fraction] = []
    bands: list[Fraction] = []
    band_digits = 0
    caps: list[int | None] = []
    for _, lim in scopes:
        for value, kind in (
            (lim.max_order_qty, "qty"),
            (lim.max_order_notional, "notional"),
            (lim.price_band_pct, "band"),
        ):
            if value is None:
                continue
            exact = _fraction(value)
            if exact is None:
                return _disabled(strategy, inst)
            if kind == "qty":
                qty_max = min(qty_max, _floor_units(exact, qp))
            elif kind == "notional":
                notionals.append(exact)
            else:
                bands.append(exact)
                band_digits = max(band_digits, _digits(value))
        cap = lim.max_position.get(inst.base)
        if cap is None:
            caps.append(None)
            continue
        exact_cap = _fraction(cap)
        if exact_cap is None:
            return _disabled(strategy, inst)
        caps.append(_floor_units(exact_cap, qp))
    notional_max = None
    if notionals:
        notional_max = min(_COST_BOUND - 1, *(_floor_units(c, pp + qp) for c in notionals))
    band = None
    if bands:
        # |price − mid| < 10**G and the mid's digits (G + pp + 1) times the band's must fit.
        g = EXACT_DIGITS - (pp + 1) - band_digits
        if g < 1:
            return _disabled(strategy, inst)
        band = Band(min(bands), pp, g)
    own = scopes[1][1] if len(scopes) > 1 else None
    return FastPlan(
        strategy=strategy,
        inst=inst,
        enabled=True,
        qty_max=qty_max,
        notional_max=notional_max,
        band=band,
        needs_price=bool(bands or notionals),
        cap_bot=caps[0],
        cap_strategy=caps[1] if len(caps) > 1 else None,
        open_bot=scopes[0][1].max_open_orders,
        open_strategy=None if own is None else own.max_open_orders,
        rates=tuple(
            (window(scope), lim.max_orders_per_minute)
            for scope, lim in scopes
            if lim.max_orders_per_minute is not None
        ),
    )


def amend_terms(command: AmendOrder) -> tuple[int, int | None] | None:
    """The qty and price an amend is decided on by the fast path: a place of its new qty at
    its new price. The exact path checks it so, but for the price band (skipped there when
    the price is unchanged) and the open orders (an amend adds none): the fast path checks
    both, so it is only ever stricter. None for an order with a fill: its position counts
    what is left of the order and its size the whole, so the exact path decides it."""
    order = command.order
    if order.filled_qty:
        return None
    qty, price = command.new_qty, command.new_price
    return order.qty if qty is None else qty, order.price if price is None else price
