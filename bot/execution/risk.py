"""The pre-trade risk gate and kill switch, between the strategies and the engine.

This module owns the gate's state (ACTIVE / REDUCING / HALTED, for the whole bot and per
strategy), its limits, its order-rate windows and its rejection counters. It is pure: no
I/O, no ``await``; time comes from the injected ``Clock`` (monotonic for the rate window;
the ``PositionBook`` reads the wall clock for the UTC day). It never sends, cancels or
logs anything: ``check`` returns a ``RiskDecision`` and the caller (the engine) logs it,
tells the strategy, and cancels orders when a ``Transition`` says so.

States (the stricter of the bot's and the strategy's own applies)::

    ACTIVE    every check below applies
    REDUCING  only orders that reduce the position pass (not one that flips it)
    HALTED    nothing passes but cancels

Checks on a new order, in order; the first that fails is the rejection's ``reason``:

    invalid          qty <= 0 or price <= 0
    daily_loss       this check found the daily loss limit breached (the gate halts)
    halted           the bot or the strategy is HALTED
    reducing_only    REDUCING and the order does not reduce the position
    max_order_qty    qty above the limit (base units)
    no_mid           no mid for the symbol where the price band or a market order needs one
    price_band       |price − mid| / mid above price_band_pct (percent); boundary passes
    max_notional     qty × price above max_order_notional (quote currency)
    max_position     |position + qty| above max_position[base asset], unless it reduces
    max_open_orders  open orders already at the limit
    order_rate       orders in the last 60 s already at max_orders_per_minute

Every limit is checked twice where both are set: the bot's (``RiskLimits`` from
``config.risk``) against the bot's totals, and the strategy's (``config.strategy_risk``,
the bot's limits with the strategy's overrides) against the strategy's own. Cancels always
pass and count nowhere. An amend is checked like a new order with its new qty and price
(the band only if the price changes; what it can still fill, new qty − filled, for the
position), adds no open order, and counts towards the order rate like a new order.
Reduction and ``max_position`` use ``PositionBook.asset_position`` of the order's base
asset: the bot's total for the bot's limits and state, the strategy's own for the
strategy's. Each order is checked against the filled position as if it filled in full;
other resting orders are not netted in. An order that reduces the position without
flipping it always passes ``max_position``, even when the position is above the cap.

A market order has no price: its notional is estimated as an upper bound of where it can
fill inside the collar: a buy at mid × (1 + band), a sell at the mid (its fills are below
it); without a band, both at the mid. It needs a mid when the band is on or a notional
limit is set (``no_mid`` otherwise). A limit order needs a mid only when the band is on.

The daily loss limit is checked by ``evaluate`` (call it after fills and marks) and at the
start of every ``check``: a daily PnL (realised + unrealised, per quote currency, from the
``PositionBook``) below ``-daily_loss_limit`` halts the bot (or the strategy) once per
UTC day and returns a ``Transition`` with ``cancel_orders=True``. The halt is latched: it
holds across midnight until a human calls ``resume`` or ``reduce_only``, and after such a
call the same day's loss does not halt again (the human decided); the next day's does.
Each evaluation tells the ``PositionBook`` how far each limit not yet reached may still
fall (``guard_marks``), and the book turns that into bounds on the held symbols' marks: a
mark inside them cannot reach a limit and leaves the book's revision (so this evaluation
and the lanes made under it) as it is; one outside them moves it, and the next ``check``
evaluates again.

The fast path. A ``PlaceOrder`` (and an ``AmendOrder`` of an order with nothing filled, as
a place of its new qty at its new price) is first offered to ``_accept_fast``, which
decides the common case with integers from a ``FastPlan`` (``bot.execution.risk_fast``:
each scope's limits in the instrument's units, built once per strategy and symbol): it
accepts only when every check above would pass (every state ACTIVE, no loss-limit
transition, each limit clear), counting the order in the rate windows as the exact path
does; anything else (a limit reached, a reducing or halted scope, a market order against
a band or a notional cap, a missing mid, unusual input) goes to the exact path, so every
rejection and its detail come from the code above. ``RiskGate(..., fast_path=False)``
turns it off.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Context, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Final, NamedTuple

from bot.core.clock import Clock
from bot.core.errors import RiskError
from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.pnl import NS_PER_DAY, PositionBook, Side
from bot.execution.risk_fast import FastPlan, Lane, amend_terms, build_lane, build_plan
from bot.execution.risk_limits import RiskLimits
from bot.kraken.instruments import Instrument

if TYPE_CHECKING:
    from bot.config import Config

__all__ = [
    "RATE_WINDOW_S",
    "REASONS",
    "Reason",
    "RiskContext",
    "RiskDecision",
    "RiskGate",
    "RiskLimits",
    "TradingState",
    "Transition",
]

RATE_WINDOW_S: Final = 60.0


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


_STRICTNESS: Final = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_ACTIVE: Final = TradingState.ACTIVE
_ZERO: Final = Decimal(0)
_FAST_KINDS: Final = (PlaceOrder, AmendOrder)  # what ``_accept_fast`` decides
_ROOM: Final = Context(prec=200, rounding=ROUND_FLOOR)  # a room to a limit: never more than exact


class Reason(StrEnum):
    """Stable rejection codes (metrics labels, log fields, what strategies match on)."""

    INVALID = "invalid"
    DAILY_LOSS = "daily_loss"
    HALTED = "halted"
    REDUCING_ONLY = "reducing_only"
    MAX_ORDER_QTY = "max_order_qty"
    NO_MID = "no_mid"
    PRICE_BAND = "price_band"
    MAX_NOTIONAL = "max_notional"
    MAX_POSITION = "max_position"
    MAX_OPEN_ORDERS = "max_open_orders"
    ORDER_RATE = "order_rate"


REASONS: Final = tuple(r.value for r in Reason)


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the gate reads but does not own, as of this check.

    ``mids``: the book's mid per symbol in price units (``Book.mid()``). ``open_orders``:
    open orders per strategy; ``open_orders_total`` the bot's total (default: their sum).
    """

    mids: Mapping[str, Decimal] = field(default_factory=dict)
    open_orders: Mapping[str, int] = field(default_factory=dict)
    open_orders_total: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of trading state, worth a log line. ``strategy=None``: the whole bot.

    ``cancel_orders``: the caller should cancel the open orders in this scope (every
    order, or the strategy's)."""

    strategy: str | None
    from_state: TradingState
    to_state: TradingState
    reason: str
    detail: str
    ts_ns: int
    cancel_orders: bool = False

    def log_fields(self) -> dict[str, str | bool | int]:
        return {
            "scope": self.strategy if self.strategy is not None else "*",
            "from_state": self.from_state.value,
            "to_state": self.to_state.value,
            "reason": self.reason,
            "detail": self.detail,
            "ts_ns": self.ts_ns,
            "cancel_orders": self.cancel_orders,
        }


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The gate's answer: accepted (``error is None``) or rejected with a ``RiskError``.

    ``transitions`` are state changes this check caused (a loss-limit halt): act on them
    (log; cancel where ``cancel_orders``) whatever the decision.
    """

    command: Command
    error: RiskError | None = None
    is_reduce: bool = False
    transitions: tuple[Transition, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> str | None:
        return None if self.error is None else self.error.reason

    def raise_if_rejected(self) -> None:
        if self.error is not None:
            raise self.error


# The fast path builds its ``RiskDecision(command, None, is_reduce, ())`` by setting the
# slots directly: the frozen dataclass's ``__init__`` (four ``object.__setattr__``) costs
# about twice as much on a cold cache.
_new = object.__new__
_SET_COMMAND, _SET_ERROR, _SET_IS_REDUCE, _SET_TRANSITIONS = (
    RiskDecision.__dict__[name].__set__ for name in ("command", "error", "is_reduce", "transitions")
)


def _reject(reason: Reason, detail: str) -> RiskError:
    return RiskError(reason.value, detail)


def _label(scope: str | None) -> str:
    return "bot" if scope is None else f"strategy {scope}"


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


_Scopes = tuple[tuple[str | None, RiskLimits], ...]


class RiskGate:
    """The gate. One per bot; ``positions`` is the ``PositionBook`` the engine feeds."""

    def __init__(
        self,
        clock: Clock,
        positions: PositionBook,
        limits: RiskLimits | None = None,
        strategy_limits: Mapping[str, RiskLimits] | None = None,
        *,
        fast_path: bool = True,
    ) -> None:
        self._clock = clock
        self._positions = positions
        self._limits = limits if limits is not None else RiskLimits()
        self._strategy_limits = dict(strategy_limits or {})
        self._state = TradingState.ACTIVE
        self._strategy_state: dict[str, TradingState] = {}
        self._windows: dict[str | None, deque[float]] = {}
        self._loss_latch: dict[str | None, int] = {}  # scope -> UTC day of its loss halt
        self._evaluated: tuple[int, int] | None = None  # (positions revision, day) last seen
        self._evaluated_until_ns = 0  # the end of ``_evaluated``'s UTC day (wall clock)
        self._rejections: Counter[tuple[str, str]] = Counter()
        self._accepted = 0
        self._scope_cache: dict[str, _Scopes] = {}  # the limits never change: built once
        self._fast_path = fast_path
        self._plans: dict[tuple[str, str], FastPlan] = {}  # (strategy, symbol): built once
        self._lanes: dict[tuple[str, str], Lane] = {}  # (strategy, symbol): the last made
        self._lane: Lane | None = None  # the last one used
        self._epoch = 0  # bumped when a state or the last evaluation changes: lanes expire
        self._exact_accepted = 0  # of ``_accepted``: those the fast path did not decide
        # The scopes with a daily loss limit, in the order ``evaluate`` looks at them.
        self._loss_scopes: tuple[tuple[str | None, Decimal], ...] = tuple(
            (scope, lim.daily_loss_limit)
            for scope, lim in [(None, self._limits), *self._strategy_limits.items()]
            if lim.daily_loss_limit is not None
        )

    @classmethod
    def from_config(cls, config: Config, clock: Clock, positions: PositionBook) -> RiskGate:
        """The bot's limits from ``config.risk``, each strategy's from ``strategy_risk``."""
        return cls(
            clock,
            positions,
            RiskLimits.from_config(config.risk),
            {s.name: RiskLimits.from_config(config.strategy_risk(s)) for s in config.strategies},
        )

    # -- state -----------------------------------------------------------------------

    @property
    def positions(self) -> PositionBook:
        return self._positions

    @property
    def state(self) -> TradingState:
        """The whole bot's state."""
        return self._state

    def strategy_state(self, strategy: str) -> TradingState:
        """The state in force for ``strategy``: the stricter of the bot's and its own."""
        own = self._strategy_state.get(strategy, TradingState.ACTIVE)
        return max(self._state, own, key=_STRICTNESS.__getitem__)

    def own_state(self, strategy: str) -> TradingState:
        """``strategy``'s own state, without the bot's (a strategy paused on its own)."""
        return self._strategy_state.get(strategy, TradingState.ACTIVE)

    def halt(
        self, reason: str, detail: str = "", *, strategy: str | None = None, cancel: bool = True
    ) -> Transition:
        """Stop trading (only cancels pass); ``cancel``: ask the caller to cancel orders."""
        return self._set(strategy, TradingState.HALTED, reason, detail, cancel)

    def reduce_only(
        self, reason: str, detail: str = "", *, strategy: str | None = None
    ) -> Transition:
        """Let only position-reducing orders through."""
        return self._set(strategy, TradingState.REDUCING, reason, detail, False)

    def resume(
        self, reason: str = "resume", detail: str = "", *, strategy: str | None = None
    ) -> Transition:
        """Back to ACTIVE (a strategy's own state; the bot's still applies to it)."""
        return self._set(strategy, TradingState.ACTIVE, reason, detail, False)

    def _set(
        self, scope: str | None, to: TradingState, reason: str, detail: str, cancel: bool
    ) -> Transition:
        if scope is None:
            old = self._state
            self._state = to
        else:
            old = self._strategy_state.get(scope, TradingState.ACTIVE)
            self._strategy_state[scope] = to
        self._epoch += 1
        return Transition(scope, old, to, reason, detail, self._clock.time_ns(), cancel)

    # -- daily loss ------------------------------------------------------------------

    def evaluate(self) -> tuple[Transition, ...]:
        """Check the daily loss limits now; halt where breached (call after fills, marks)."""
        book = self._positions
        # The same revision and still the same UTC day: ``day_number`` would neither roll the
        # book (any roll bumps the revision) nor return another day, so nothing can change.
        if (
            self._evaluated is not None
            and book.revision == self._evaluated[0]
            and self._clock.time_ns() < self._evaluated_until_ns
        ):
            return ()
        day = book.day_number
        seen = (book.revision, day)
        if seen == self._evaluated:  # no fill, no mark of a held symbol, same day: same PnL
            return ()
        found: list[Transition] = []
        room: dict[tuple[str | None, str], Decimal] = {}  # to each limit not yet reached
        for scope, limit in self._loss_scopes:
            if self._loss_latch.get(scope) == day:
                continue  # halted once today: its loss does not halt it again
            pnls = book.daily_pnls(scope)
            for quote, pnl in pnls.items():
                if pnl < -limit:
                    self._loss_latch[scope] = day
                    detail = f"{_label(scope)}: daily PnL {pnl} {quote} below -{limit}"
                    found.append(self._set(scope, TradingState.HALTED, "daily_loss", detail, True))
                    break
            else:
                for quote, pnl in pnls.items():
                    room[(scope, quote)] = _ROOM.add(pnl, limit)
        # Marks that cannot reach a limit leave the revision (and so this evaluation and
        # the lanes made under it) as they are; one that could moves it.
        book.guard_marks(room, seen[0])
        self._evaluated = seen
        self._evaluated_until_ns = (day + 1) * NS_PER_DAY
        self._epoch += 1
        return tuple(found)

    # -- the check -------------------------------------------------------------------

    def check(self, command: Command, context: RiskContext | None = None) -> RiskDecision:
        """Accept or reject one command; never raises for a rejection (see ``RiskDecision``)."""
        if isinstance(command, CancelOrder):
            self._accepted += 1
            self._exact_accepted += 1
            return RiskDecision(command)
        ctx = context if context is not None else RiskContext()
        evaluated = self._evaluated
        if (
            evaluated is not None
            and self._positions.revision == evaluated[0]
            and self._clock.time_ns() < self._evaluated_until_ns
        ):
            transitions: tuple[Transition, ...] = ()  # evaluate's first test, inlined
        else:
            transitions = self.evaluate()
        if not transitions and self._fast_path and type(command) in _FAST_KINDS:
            decision = self._accept_fast(command, ctx)
            if decision is not None:
                return decision
        is_reduce = False
        strategy = command.order.strategy
        scopes = self._scopes(strategy)
        try:
            for t in transitions:
                if t.strategy in (None, strategy):
                    raise _reject(Reason.DAILY_LOSS, t.detail)
            is_reduce = self._check_order(command, ctx, scopes)
        except RiskError as error:
            self._rejections[(strategy, error.reason)] += 1
            return RiskDecision(command, error, is_reduce, transitions)
        now = self._clock.monotonic()
        for scope, limits in scopes:
            if limits.max_orders_per_minute is not None:
                self._window(scope).append(now)
        self._accepted += 1
        self._exact_accepted += 1
        return RiskDecision(command, None, is_reduce, transitions)

    def _scopes(self, strategy: str) -> _Scopes:
        """The bot's limits, then the strategy's own if it has any."""
        scopes = self._scope_cache.get(strategy)
        if scopes is None:
            own = self._strategy_limits.get(strategy)
            bot: tuple[str | None, RiskLimits] = (None, self._limits)
            scopes = self._scope_cache[strategy] = (bot,) if own is None else (bot, (strategy, own))
        return scopes

    def _window(self, scope: str | None) -> deque[float]:
        window = self._windows.get(scope)
        if window is None:
            window = self._windows[scope] = deque()
        return window

    def accept_place(  # noqa: PLR0917 (positional: the tick's path, cold)
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
        """``check`` of a ``PlaceOrder`` of ``strategy`` on ``inst`` (the order's side, qty
        and price, the ``RiskContext``'s mids and open orders), given as values, for its
        common case only: True when ``check`` would accept it, counted as ``check`` counts
        an acceptance; False when the fast path cannot say, having changed nothing that
        ``check``'s decision depends on (``check`` then decides it). Never a rejection, and
        nothing to tell: a True comes with no ``Transition``."""
        lane = self._lane_for(strategy, inst)
        if lane is None:
            return False  # ``check`` evaluates the daily loss first, or decides it
        if self._clock.time_ns() >= lane.until_ns:
            return False  # a new UTC day: ``check`` evaluates the daily loss first
        return self._decide(lane, side, qty, price, mids, open_orders, open_total) is not None

    def accept_amend(
        self,
        command: AmendOrder,
        mids: Mapping[str, Decimal],
        open_orders: Mapping[str, int],
        open_total: int | None,
    ) -> bool:
        """``check`` of ``command`` (the ``RiskContext``'s mids and open orders given as
        values), for its common case only: ``accept_place`` of its new qty at its new
        price (``amend_terms``), False for an order with a fill."""
        terms = amend_terms(command)
        if terms is None:
            return False
        order = command.order
        return self.accept_place(
            order.strategy, command.instrument, order.side, *terms, mids, open_orders, open_total
        )

    def _accept_fast(
        self, command: PlaceOrder | AmendOrder, ctx: RiskContext
    ) -> RiskDecision | None:
        """Accept ``command`` when the exact path certainly would, counted as it counts, or
        return None, having changed nothing that the exact path's decision depends on. An
        amend is decided on its new qty and price (``amend_terms``)."""
        order = command.order
        if type(command) is AmendOrder:
            terms = amend_terms(command)
            if terms is None:
                return None
            qty, price = terms
        else:
            qty, price = order.qty, order.price
        lane = self._lane_for(order.strategy, command.instrument)
        if lane is None:
            return None
        reduces = self._decide(
            lane, order.side, qty, price, ctx.mids, ctx.open_orders, ctx.open_orders_total
        )
        if reduces is None:
            return None
        decision: RiskDecision = _new(RiskDecision)  # RiskDecision(command, None, reduces, ())
        _SET_COMMAND(decision, command)
        _SET_ERROR(decision, None)
        _SET_IS_REDUCE(decision, reduces)
        _SET_TRANSITIONS(decision, ())
        return decision

    def _lane_for(self, strategy: str, inst: Instrument) -> Lane | None:
        """The lane of (``strategy``, ``inst``) now, made again if a state, the evaluation
        or the positions changed since it was made; None when the fast path cannot decide
        now (not every state ACTIVE, no evaluation of the current positions, a plan or a
        position it cannot represent). The last lane used is read first: the same strategy
        and instrument tick after tick."""
        revision = self._positions.revision
        lane = self._lane
        if (
            lane is not None
            and lane.strategy is strategy
            and lane.inst is inst
            and lane.epoch == self._epoch
            and lane.revision == revision
        ):
            return lane
        evaluated = self._evaluated
        if not self._fast_path or evaluated is None or evaluated[0] != revision:
            return None
        if self._state is not _ACTIVE or self._strategy_state.get(strategy, _ACTIVE) is not _ACTIVE:
            return None
        key = (strategy, inst.symbol)
        lane = self._lanes.get(key)
        if (
            lane is None
            or lane.inst is not inst
            or lane.epoch != self._epoch
            or lane.revision != revision
        ):
            plan = self._plan(strategy, inst)
            book, base = self._positions, inst.base
            own = book.asset_position(base, strategy) if plan.cap_strategy is not None else _ZERO
            made = build_lane(
                plan, self._epoch, revision, self._evaluated_until_ns,
                bot=book.asset_position(base, None), own=own,
            )  # fmt: skip
            if made is None:
                self._lanes.pop(key, None)
                return None
            lane = self._lanes[key] = made
        self._lane = lane
        return lane

    def _decide(  # noqa: PLR0917 (one frame, positional: each call costs, cold)
        self,
        lane: Lane,
        side: str,
        qty: int,
        price: int | None,
        mids: Mapping[str, Decimal],
        open_orders: Mapping[str, int],
        total: int | None,
    ) -> bool | None:
        """A place on ``lane``: whether it reduces the bot's position, when the exact path
        certainly accepts it (counted as it counts, its rate windows stamped); None
        otherwise, having changed nothing the exact path's decision depends on."""
        if type(qty) is not int or qty <= 0:
            return None
        if side == "buy":
            if qty > lane.buy_max:
                return None
            reduces = qty <= -lane.pos
        elif side == "sell":
            if qty > lane.sell_max:
                return None
            reduces = qty <= lane.pos
        else:
            return None
        if price is None:
            if lane.needs_price:
                return None
        elif type(price) is not int or price <= 0:
            return None
        else:
            notional_max = lane.notional_max
            if notional_max is not None and price * qty > notional_max:
                return None
            band = lane.band
            if band is not None:
                mid = mids.get(lane.inst.symbol)
                if type(mid) is not Decimal:
                    return None
                # The range is cached for the last mid (a NaN is never equal; an sNaN raises
                # here as it would at the exact path's ``mid <= 0``).
                if mid is not band.mid and mid != band.mid:
                    band.update(mid)
                if not band.lo <= price <= band.hi:
                    return None
        open_bot = lane.open_bot
        if open_bot is not None:
            if total is None:
                total = sum(open_orders.values())
            if total >= open_bot:
                return None
        open_strategy = lane.open_strategy
        if open_strategy is not None and open_orders.get(lane.strategy, 0) >= open_strategy:
            return None
        rates = lane.rates
        if rates:  # last: a window pruned here is one the exact path would prune too
            now = self._clock.monotonic()
            oldest = now - RATE_WINDOW_S
            for window, most in rates:
                while window and window[0] <= oldest:
                    window.popleft()
                if len(window) >= most:
                    return None
            for window, _ in rates:
                window.append(now)
        self._accepted += 1
        return reduces

    def _plan(self, strategy: str, inst: Instrument) -> FastPlan:
        key = (strategy, inst.symbol)
        plan = self._plans.get(key)
        if plan is None or plan.inst is not inst:
            plan = build_plan(strategy, self._scopes(strategy), inst, self._window)
            self._plans[key] = plan
        return plan

    def _check_order(
        self, command: PlaceOrder | AmendOrder, ctx: RiskContext, scopes: _Scopes
    ) -> bool:
        order = _normalise(command)
        book = self._positions
        base = order.inst.base
        before = {s: book.asset_position(base, s) for s in (None, order.strategy)}
        reduces = {s: _reduces(pos, order.delta) for s, pos in before.items()}
        self._check_state(order, before, reduces)
        _check_size_and_price(order, scopes, ctx.mids.get(order.inst.symbol))
        for scope, lim in scopes:
            cap = lim.max_position.get(base)
            pos = before[scope]
            after = pos + order.delta
            if cap is not None and abs(after) > cap and not reduces[scope]:
                raise _reject(
                    Reason.MAX_POSITION,
                    f"{_label(scope)}: {base} position would be {after} (now {pos}), "
                    f"max_position {cap}",
                )
        if isinstance(command, PlaceOrder):
            _check_open_orders(scopes, ctx)
        self._check_rate(scopes)
        return reduces[None]

    def _check_state(
        self, order: _Order, before: dict[str | None, Decimal], reduces: dict[str | None, bool]
    ) -> None:
        # the bot's state, then the strategy's own, each against its own position
        own = self._strategy_state.get(order.strategy, TradingState.ACTIVE)
        for scope, state in ((None, self._state), (order.strategy, own)):
            if state is TradingState.HALTED:
                raise _reject(Reason.HALTED, f"{_label(scope)} is halted")
            if state is TradingState.REDUCING and not reduces[scope]:
                inst = order.inst
                raise _reject(
                    Reason.REDUCING_ONLY,
                    f"{_label(scope)} is reducing only: {order.side} "
                    f"{inst.qty_text(order.exposure)} {inst.base} does not reduce a position "
                    f"of {before[scope]}",
                )

    def _check_rate(self, scopes: _Scopes) -> None:
        now = self._clock.monotonic()
        for scope, lim in scopes:
            if lim.max_orders_per_minute is None:
                continue
            window = self._window(scope)
            while window and window[0] <= now - RATE_WINDOW_S:
                window.popleft()
            if len(window) >= lim.max_orders_per_minute:
                raise _reject(
                    Reason.ORDER_RATE,
                    f"{_label(scope)}: {len(window)} orders in the last minute, "
                    f"max_orders_per_minute {lim.max_orders_per_minute}",
                )

    # -- metrics ---------------------------------------------------------------------

    @property
    def accepted(self) -> int:
        """Commands accepted (cancels included)."""
        return self._accepted

    @property
    def fast_accepted(self) -> int:
        """Of ``accepted``, the new orders the fast path decided (see the module docstring)."""
        return self._accepted - self._exact_accepted

    def rejections(self) -> dict[str, int]:
        """Rejections per reason code, every code present (zeros too)."""
        counts = dict.fromkeys(REASONS, 0)
        for (_, reason), n in self._rejections.items():
            counts[reason] += n
        return counts

    def rejections_by_strategy(self) -> dict[tuple[str, str], int]:
        """Rejections per (strategy, reason code), only those that happened."""
        return dict(self._rejections)

    def orders_in_window(self, strategy: str | None = None) -> int:
        """Orders counted in the current rate window (where a rate limit is set)."""
        window = self._windows.get(strategy)
        if not window:
            return 0
        now = self._clock.monotonic()
        return sum(1 for t in window if t > now - RATE_WINDOW_S)


class _Order(NamedTuple):
    """A new order or an amend, as the checks see it (a tuple: built on every check)."""

    strategy: str
    inst: Instrument
    side: Side
    qty: int  # the order's (new) size
    price: int | None  # its (new) price; None: market
    band_price: int | None  # the price the band must check (None: none to check)
    exposure: int  # what can still fill
    delta: Decimal  # signed change of the base position if all of it fills


def _normalise(command: PlaceOrder | AmendOrder) -> _Order:
    order = command.order
    if isinstance(command, PlaceOrder):
        qty, price, exposure = order.qty, order.price, order.qty
        band_price = price
    else:
        qty = command.new_qty if command.new_qty is not None else order.qty
        price = command.new_price if command.new_price is not None else order.price
        exposure = qty - order.filled_qty
        band_price = price if price != order.price else None
    if qty <= 0 or exposure <= 0 or (price is not None and price <= 0):
        raise _reject(Reason.INVALID, f"qty {qty} (open {exposure}), price {price}")
    side = order.side
    if side not in ("buy", "sell"):
        raise _reject(Reason.INVALID, f"side {side!r}")
    sign = 1 if side == "buy" else -1
    inst = command.instrument
    delta = inst.qty_decimal(sign * exposure)
    return _Order(order.strategy, inst, side, qty, price, band_price, exposure, delta)  # type: ignore[arg-type]


def _check_size_and_price(order: _Order, scopes: _Scopes, mid: Decimal | None) -> None:
    inst, price = order.inst, order.price
    qty = inst.qty_decimal(order.qty)
    for scope, lim in scopes:
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            raise _reject(
                Reason.MAX_ORDER_QTY,
                f"{_label(scope)}: qty {qty} > max_order_qty {lim.max_order_qty}",
            )
    bands = [(s, lim.price_band_pct) for s, lim in scopes if lim.price_band_pct is not None]
    caps = [(s, cap) for s, lim in scopes if (cap := lim.max_order_notional) is not None]
    needs_mid = bool(bands) and (order.band_price is not None or price is None)
    needs_mid = needs_mid or (price is None and bool(caps))
    if needs_mid and (mid is None or mid <= 0):
        raise _reject(Reason.NO_MID, f"no mid price for {inst.symbol}")
    if order.band_price is not None and mid is not None:
        price_dec = inst.price_decimal(order.band_price)
        for scope, band in bands:
            if abs(price_dec - mid) * 100 > band * mid:
                raise _reject(
                    Reason.PRICE_BAND,
                    f"{_label(scope)}: price {price_dec} is more than {band}% from mid {mid}",
                )
    if not caps:
        return
    if price is not None:
        notional = inst.cost(price, order.qty)
    else:  # a market order: an upper bound of its fills inside the collar
        est = mid if mid is not None else Decimal(0)  # never None here (no_mid above)
        if order.side == "buy" and bands:
            est = est * (1 + min(b for _, b in bands).scaleb(-2))
        notional = qty * est
    for scope, cap in caps:
        if notional > cap:
            raise _reject(
                Reason.MAX_NOTIONAL,
                f"{_label(scope)}: notional {notional} {inst.quote} > max_order_notional {cap}",
            )


def _check_open_orders(scopes: _Scopes, ctx: RiskContext) -> None:
    total = ctx.open_orders_total
    if total is None:
        total = sum(ctx.open_orders.values())
    for scope, lim in scopes:
        count = total if scope is None else ctx.open_orders.get(scope, 0)
        if lim.max_open_orders is not None and count >= lim.max_open_orders:
            raise _reject(
                Reason.MAX_OPEN_ORDERS,
                f"{_label(scope)}: {count} open orders, max_open_orders {lim.max_open_orders}",
            )


def _reduces(position: Decimal, delta: Decimal) -> bool:
    """Does an order moving the position by ``delta`` shrink it, without flipping it?"""
    return position != 0 and _sign(delta) == -_sign(position) and abs(delta) <= abs(position)
