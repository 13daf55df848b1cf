"""Kraken's Spot rate limits as decaying counters: the REST call counter and the trading counter.

Kraken refuses a request when a counter would pass its limit (KRAKEN.md §2). The bot keeps the
same counters locally, so it waits *before* Kraken refuses; the simulator keeps them to refuse
exactly as Kraken does. Both use this module.

- ``RestCounter``: one per API key. Each private call adds its ``cost`` (1; 2 for ledger and
  trade history; 0 for AddOrder and CancelOrder and their batch forms, which go to the
  trading counter instead: AmendOrder and EditOrder cost 1 here *and* count on the trading
  counter); the counter decays
  linearly at the tier's rate; above the tier's maximum Kraken answers
  ``EAPI:Rate limit exceeded``.
- ``TradingCounter``: one per pair (shared by REST, WS and FIX on Kraken's side). Adds, amends,
  edits and cancels add a fixed count plus a penalty that falls with the order's age; above the
  tier's threshold Kraken answers ``EOrder:Rate limit exceeded``.

The model: a counter holds ``level`` stamped at time ``t``; at ``now >= t`` its value is
``max(0, level - decay * (now - t))``. Kraken says it decays "every couple of seconds"; the
continuous line is the usual model and the bot keeps a margin by choice of limits if it wants.
A call of ``cost`` fits when ``value + cost <= maximum``; a cost larger than the maximum fits
only an empty counter, and a cost of 0 always fits. ``reserve`` books a call at the first
instant it fits (possibly in the future) and returns the wait, so concurrent callers queue
without racing.

Everything is pure: ``now`` is float seconds from a monotonic clock, passed in by the caller,
and a ``now`` earlier than the last stamp never makes a counter decay. Counters are floats
(they are not prices or sizes); every comparison allows ``EPSILON`` so the float sums of
Kraken's decimal rates (0.33, 2.34, ...) do not flip a decision.

What the client does when Kraken's REST counter is not what it thinks (KRAKEN.md §2.1:
"calls made while the rate limits are active" prolong the restriction, so a refused call
counts on Kraken's side):

- **After a refusal** (``refused``) the counter is known to be over its maximum, by an
  unknown amount: each refusal in a row doubles the excess the client assumes (``maximum``,
  then ``+cost``, ``+3·cost``, ``+7·cost``..., at most ``+maximum``), so probes come
  ever further apart and Kraken's counter, which a probe refused every ``cost/decay``
  seconds would keep level for ever, really decays. A call that passes (``accepted``)
  ends the streak.
- **At start** (``start_value``) the previous process's calls may still be on Kraken's
  counter: after a clean stop the value it recorded, decayed since; after an unclean one
  (a crash, SIGKILL) a full counter at the last moment that process could have sent, its
  persisted nonce mark (nonces are wall-clock nanoseconds, and every nonce issued is
  below the mark); never used before: empty.

This module owns the arithmetic only: no clock, no sleeping; a refusal is a ``False``, which
the caller turns into Kraken's error string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic, TypeVar

__all__ = [
    "ACCOUNT_WIDE",
    "EPSILON",
    "OPEN_ORDER_LIMITS",
    "REST_LIMITS",
    "TRADING_LIMITS",
    "CounterLimits",
    "RestCounter",
    "Tier",
    "TradingCost",
    "TradingCounter",
    "start_value",
]

EPSILON: Final = 1e-9


class Tier(StrEnum):
    """Kraken's verification tier; it sets the limits and cannot be read from the API."""

    STARTER = "starter"
    INTERMEDIATE = "intermediate"
    PRO = "pro"


@dataclass(frozen=True, slots=True)
class CounterLimits:
    """A counter's ceiling and its decay in units per second."""

    maximum: float
    decay_per_s: float

    def __post_init__(self) -> None:
        if self.maximum <= 0 or self.decay_per_s <= 0:
            raise ValueError(f"limits must be positive: {self}")


# https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits (KRAKEN.md §2.1)
REST_LIMITS: Final[Mapping[Tier, CounterLimits]] = {
    Tier.STARTER: CounterLimits(15, 0.33),
    Tier.INTERMEDIATE: CounterLimits(20, 0.5),
    Tier.PRO: CounterLimits(20, 1.0),
}
# https://docs.kraken.com/api/docs/guides/spot-ratelimits (KRAKEN.md §2.2)
TRADING_LIMITS: Final[Mapping[Tier, CounterLimits]] = {
    Tier.STARTER: CounterLimits(60, 1.0),
    Tier.INTERMEDIATE: CounterLimits(125, 2.34),
    Tier.PRO: CounterLimits(180, 3.75),
}
# Open orders per pair before ``EOrder:Orders limit exceeded`` (same page).
OPEN_ORDER_LIMITS: Final[Mapping[Tier, int]] = {
    Tier.STARTER: 60,
    Tier.INTERMEDIATE: 80,
    Tier.PRO: 225,
}

# REST call counter costs. The docs say only "Ledger/trade history calls increase the counter
# by 2"; Kraken's CLI names Ledgers, trade history and query-ledgers. ClosedOrders is charged 2
# as well, conservatively (a history call too, and an unconfirmed report says it costs more).
_REST_COST_2: Final = frozenset(
    {"TradesHistory", "Ledgers", "QueryLedgers", "QueryTrades", "ClosedOrders"}
)
# "All other API calls increase this counter by 1 (except AddOrder, CancelOrder which operate
# on a different limiter)" (KRAKEN.md §2.1). AmendOrder and EditOrder are not on that list
# and no source exempts them (Kraken's docs, its SDK and CLI notes say nothing of it), so
# they cost 1 (and count on the trading counter as well). The batch forms of the two
# exempt calls are taken as exempt with them (AddOrderBatch is many AddOrders in one).
_REST_COST_0: Final = frozenset({"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch"})

# (age upper bound in seconds, penalty): the first band with age < bound applies, else 0.
_AMEND_PENALTY: Final = ((5.0, 3.0), (10.0, 2.0), (15.0, 1.0))
_EDIT_PENALTY: Final = ((5.0, 6.0), (10.0, 5.0), (15.0, 4.0), (45.0, 2.0), (90.0, 1.0))
_CANCEL_PENALTY: Final = (
    (5.0, 8.0),
    (10.0, 6.0),
    (15.0, 5.0),
    (45.0, 4.0),
    (90.0, 2.0),
    (300.0, 1.0),
)

ACCOUNT_WIDE: Final = None
"""The trading counter key for a charge tied to no pair (``CancelAllOrdersAfter``)."""


def _penalty(table: tuple[tuple[float, float], ...], age_s: float) -> float:
    age = max(age_s, 0.0)  # a negative age (clock skew) is a brand-new order: the dearest band
    for bound, cost in table:
        if age < bound:
            return cost
    return 0.0


K = TypeVar("K")


class _Counters(Generic[K]):
    """Decaying counters by key, all with the same limits. The shared arithmetic."""

    __slots__ = ("_limits", "_state")

    def __init__(self, limits: CounterLimits) -> None:
        self._limits = limits
        self._state: dict[K, tuple[float, float]] = {}  # key -> (level, stamp)

    @property
    def limits(self) -> CounterLimits:
        return self._limits

    def settled(self, key: K, now: float) -> tuple[float, float]:
        """(value, at): the value at ``at = max(now, stamp)``; a booked future stays booked."""
        state = self._state.get(key)
        if state is None:
            return 0.0, now
        level, stamp = state
        if now <= stamp:
            return level, stamp
        return max(0.0, level - (now - stamp) * self._limits.decay_per_s), now

    def value(self, key: K, now: float) -> float:
        return self.settled(key, now)[0]

    def _target(self, cost: float) -> float:
        # The highest value at which ``cost`` still fits; an oversized cost needs an empty counter.
        return max(self._limits.maximum - cost, 0.0)

    def fits(self, key: K, cost: float, now: float) -> bool:
        # A free call (order entry on the REST counter) is never held back by the counter.
        return cost <= 0 or self.settled(key, now)[0] <= self._target(cost) + EPSILON

    def wait_time(self, key: K, cost: float, now: float) -> float:
        if cost <= 0:
            return 0.0
        value, at = self.settled(key, now)
        excess = value - self._target(cost)
        wait = at - now
        if excess > EPSILON:
            wait += excess / self._limits.decay_per_s
        return wait

    def charge(self, key: K, cost: float, now: float) -> None:
        value, at = self.settled(key, now)
        self._state[key] = (value + cost, at)

    def admit(self, key: K, cost: float, now: float) -> bool:
        """``charge`` if ``wait_time`` is 0 (one settlement for both); else change nothing.
        (``settled`` and ``_target`` written out: it is on every order's path.)"""
        limits = self._limits
        state = self._state.get(key)
        if state is None:
            value, at = 0.0, now
        elif now <= state[1]:
            value, at = state
        else:
            value, at = max(0.0, state[0] - (now - state[1]) * limits.decay_per_s), now
        if cost > 0 and (at > now or value - max(limits.maximum - cost, 0.0) > EPSILON):
            return False
        self._state[key] = (value + cost, at)
        return True

    def headroom(self, key: K, now: float) -> float:
        """``limits.maximum - value(key, now)`` (``settled`` written out: it is read on
        every order's path)."""
        limits = self._limits
        state = self._state.get(key)
        if state is None:
            return limits.maximum - 0.0
        level, stamp = state
        if now <= stamp:
            return limits.maximum - level
        return limits.maximum - max(0.0, level - (now - stamp) * limits.decay_per_s)

    def reserve(self, key: K, cost: float, now: float) -> float:
        wait = self.wait_time(key, cost, now)
        self.charge(key, cost, now + wait)
        return wait

    def set_value(self, key: K, value: float, now: float) -> None:
        self._state[key] = (max(value, 0.0), now)

    def prune(self, now: float) -> None:
        for key in [k for k, (_, stamp) in self._state.items() if stamp <= now]:
            if self.value(key, now) <= EPSILON:
                del self._state[key]

    def keys(self) -> list[K]:
        return list(self._state)


class RestCounter:
    """Kraken's per-key REST call counter (client side: wait; server side: refuse).

    ``limits`` overrides the tier's (e.g. a lower maximum for a safety margin). On the server,
    ``refused_calls_count`` makes a refused call still add its cost, as Kraken warns that
    calls made while limited prolong the restriction. On the client, ``refused`` and
    ``accepted`` track Kraken's refusals (see the module docstring); ``streak`` counts the
    refusals in a row and ``refusals`` all of them.
    """

    __slots__ = ("_counters", "_refused_calls_count", "refusals", "streak", "tier")

    def __init__(
        self,
        tier: Tier | str,
        *,
        limits: CounterLimits | None = None,
        refused_calls_count: bool = True,
    ) -> None:
        self.tier = Tier(tier)
        self._counters: _Counters[None] = _Counters(limits or REST_LIMITS[self.tier])
        self._refused_calls_count = refused_calls_count
        self.streak = 0
        self.refusals = 0

    @property
    def limits(self) -> CounterLimits:
        return self._counters.limits

    @staticmethod
    def cost(method: str) -> float:
        """What one call adds: 2 for ledger/trade history (and ClosedOrders), 0 for AddOrder
        and CancelOrder (and their batches: the trading counter's), 1 otherwise (AmendOrder
        and EditOrder included). ``method`` is a name or a ``/0/private/`` path.
        Public endpoints are limited per IP, not by this counter: do not charge them here."""
        name = method.rstrip("/").rsplit("/", 1)[-1]
        if name in _REST_COST_2:
            return 2.0
        if name in _REST_COST_0:
            return 0.0
        return 1.0

    def value(self, now: float) -> float:
        return self._counters.value(None, now)

    def headroom(self, now: float) -> float:
        """How much more the counter takes now before it is over its maximum."""
        return self.limits.maximum - self.value(now)

    def wait_time(self, cost: float, now: float) -> float:
        """Seconds from ``now`` until a call of ``cost`` fits (0.0 if it fits now)."""
        return self._counters.wait_time(None, cost, now)

    def charge(self, cost: float, now: float) -> None:
        """Record a call sent at ``now`` (even if it does not fit: the counter tells the truth)."""
        self._counters.charge(None, cost, now)

    def reserve(self, cost: float, now: float) -> float:
        """Book a call at the first instant it fits and return the wait until then."""
        return self._counters.reserve(None, cost, now)

    def saturate(self, now: float) -> None:
        """Assume the counter is full now (at least)."""
        self._counters.set_value(None, max(self.value(now), self.limits.maximum), now)

    def assume(self, value: float, now: float) -> None:
        """Start from ``value`` at ``now`` (``start_value``: what a new process assumes)."""
        self._counters.set_value(None, value, now)

    def refused(self, cost: float, now: float) -> float:
        """Kraken refused a call of ``cost`` (``EAPI:Rate limit exceeded``, HTTP 429): its
        counter is over the maximum, by more after each refusal in a row (the module
        docstring). Returns the seconds until a call of ``cost`` fits again: the probe."""
        self.streak += 1
        self.refusals += 1
        maximum = self.limits.maximum
        step = max(cost, 1.0)
        excess = min(step * (2 ** min(self.streak - 1, 32) - 1), maximum)
        self._counters.set_value(None, max(self.value(now), maximum + excess), now)
        return self.wait_time(step, now)

    def accepted(self) -> None:
        """Kraken accepted a call that counts: a streak of refusals is over."""
        self.streak = 0

    def try_charge(self, cost: float, now: float) -> bool:
        """Server side: accept (and charge) a call that fits, refuse one that does not."""
        if self._counters.fits(None, cost, now):
            self._counters.charge(None, cost, now)
            return True
        if self._refused_calls_count:
            self._counters.charge(None, cost, now)
        return False


def start_value(
    limits: CounterLimits,
    now_ns: int,
    *,
    saved: tuple[float, int] | None = None,
    last_sent_bound_ns: int | None = None,
) -> float:
    """What a new process assumes Kraken's REST counter holds at wall time ``now_ns``.

    ``saved``: ``(value, at_ns)`` recorded by the previous process as it stopped cleanly
    (after its last call): that value, decayed since. Else ``last_sent_bound_ns``: a wall
    time no call of any earlier process was sent after (its persisted nonce mark): a full
    counter then, decayed since (full now if that time is still ahead). Neither: 0, no call
    was ever made with this key here.
    """
    if saved is not None:
        value, at_ns = saved
        start, at = max(value, 0.0), at_ns
    elif last_sent_bound_ns is not None:
        start, at = limits.maximum, last_sent_bound_ns
    else:
        return 0.0
    elapsed = max(now_ns - at, 0) / 1e9
    return max(start - elapsed * limits.decay_per_s, 0.0)


@dataclass(frozen=True, slots=True)
class TradingCost:
    """A trading-counter charge: ``fixed`` is applied even to a refused request."""

    fixed: float = 0.0
    penalty: float = 0.0

    @property
    def total(self) -> float:
        return self.fixed + self.penalty

    def __add__(self, other: TradingCost) -> TradingCost:
        return TradingCost(self.fixed + other.fixed, self.penalty + other.penalty)


def _total(cost: TradingCost | float) -> float:
    return cost.total if isinstance(cost, TradingCost) else float(cost)


class TradingCounter:
    """Kraken's per-pair trading rate counters for one account.

    Keys are pair symbols (any stable spelling, used consistently), or ``ACCOUNT_WIDE``
    (``None``) for ``CancelAllOrdersAfter``, which Kraken's SDK charges to no pair. Costs come
    from the static ``*_cost`` methods; a bare float is a cost with no fixed part.
    """

    __slots__ = ("_counters", "admit_points", "headroom", "tier")

    def __init__(self, tier: Tier | str, *, limits: CounterLimits | None = None) -> None:
        self.tier = Tier(tier)
        self._counters: _Counters[str | None] = _Counters(limits or TRADING_LIMITS[self.tier])
        self.admit_points: Callable[[str | None, float, float], bool] = self._counters.admit
        """``admit`` of a cost given as points (a float): the counters' own, one call on
        every order's path."""
        self.headroom: Callable[[str | None, float], float] = self._counters.headroom
        """``headroom(pair, now)``: how much more ``pair``'s counter takes at ``now`` before
        it is over the threshold (the counters' own: one call on every order's pre-trade
        check)."""

    @property
    def limits(self) -> CounterLimits:
        return self._counters.limits

    # --- costs (KRAKEN.md §2.2); ages are seconds since the order was placed or amended ---

    @staticmethod
    def add_cost() -> TradingCost:
        return TradingCost(fixed=1.0)

    @staticmethod
    def amend_cost(age_s: float) -> TradingCost:
        return TradingCost(fixed=1.0, penalty=_penalty(_AMEND_PENALTY, age_s))

    @staticmethod
    def edit_cost(age_s: float) -> TradingCost:
        return TradingCost(fixed=1.0, penalty=_penalty(_EDIT_PENALTY, age_s))

    @staticmethod
    def cancel_cost(age_s: float) -> TradingCost:
        return TradingCost(penalty=_penalty(_CANCEL_PENALTY, age_s))

    @staticmethod
    def batch_add_cost(n_orders: int) -> TradingCost:
        if n_orders < 1:
            raise ValueError(f"a batch has at least one order, got {n_orders}")
        return TradingCost(fixed=n_orders / 2)

    @staticmethod
    def batch_cancel_cost(ages_s: Iterable[float]) -> TradingCost:
        total = TradingCost()
        for age in ages_s:
            total += TradingCounter.cancel_cost(age)
        return total

    @staticmethod
    def cancel_all_cost() -> TradingCost:
        """Charged to *each* pair that had orders (Kraken's SDK: +1 per affected pair)."""
        return TradingCost(fixed=1.0)

    @staticmethod
    def cancel_all_orders_after_cost() -> TradingCost:
        """Charged to ``ACCOUNT_WIDE`` (Kraken's SDK: +1 trading, no pair)."""
        return TradingCost(fixed=1.0)

    # --- the counters ---

    def value(self, pair: str | None, now: float) -> float:
        return self._counters.value(pair, now)

    def wait_time(self, pair: str | None, cost: TradingCost | float, now: float) -> float:
        """Seconds from ``now`` until ``cost`` fits on ``pair`` (0.0 if it fits now)."""
        return self._counters.wait_time(pair, _total(cost), now)

    def charge(self, pair: str | None, cost: TradingCost | float, now: float) -> None:
        """Record a request sent at ``now``."""
        self._counters.charge(pair, _total(cost), now)

    def admit(self, pair: str | None, cost: TradingCost | float, now: float) -> bool:
        """``charge`` now if ``wait_time`` is 0, and say so; else change nothing."""
        return self._counters.admit(pair, cost if type(cost) is float else _total(cost), now)

    def reserve(self, pair: str | None, cost: TradingCost | float, now: float) -> float:
        """Book a request at the first instant it fits and return the wait until then."""
        return self._counters.reserve(pair, _total(cost), now)

    def saturate(self, pair: str | None, now: float) -> None:
        """Kraken said ``EOrder:Rate limit exceeded`` for ``pair``: assume it is full now."""
        self._counters.set_value(pair, max(self.value(pair, now), self.limits.maximum), now)

    def observe(self, pair: str | None, value: float, now: float) -> None:
        """Adopt a count Kraken reported (WS v2 ``executions`` with ``ratecounter: true``)."""
        self._counters.set_value(pair, value, now)

    @property
    def threshold(self) -> float:
        """The counter value past which Kraken refuses (the tier's, or a stricter one)."""
        return self.limits.maximum

    def adopt_threshold(self, maximum: float) -> bool:
        """Kraken reported its threshold for this account (the executions ack's
        ``maxratecount``): keep the stricter (lower) of it and ours. True if it changed."""
        if not maximum > 0 or maximum >= self.limits.maximum - EPSILON:
            return False
        self._counters._limits = CounterLimits(maximum, self.limits.decay_per_s)
        return True

    def observe_floor(self, pair: str | None, value: float, now: float) -> None:
        """Kraken reported ``value`` for ``pair``'s counter at ``now``: the local model never
        runs below it (the exchange is the truth). A count booked ahead (``reserve``) keeps
        its place: the report only raises the level it decays from."""
        level, at = self._counters.settled(pair, now)
        floor = value - (at - now) * self.limits.decay_per_s  # the report, decayed to ``at``
        if floor > level + EPSILON:
            self._counters.set_value(pair, floor, at)

    def try_charge(
        self, pair: str | None, cost: TradingCost, now: float, *, batch: bool = False
    ) -> bool:
        """Server side: charge ``cost`` if it fits, else refuse and charge only ``cost.fixed``
        (Kraken applies the fixed count on receipt, even to a request that fails).

        ``batch=True`` is Kraken's batch rule: a batch is accepted whenever the counter is
        below the threshold, and charged in full even if that overshoots it.
        """
        if batch:
            ok = self.value(pair, now) < self.limits.maximum - EPSILON
        else:
            ok = self._counters.fits(pair, cost.total, now)
        self._counters.charge(pair, cost.total if ok else cost.fixed, now)
        return ok

    def prune(self, now: float) -> None:
        """Forget pairs whose counters have decayed to zero (a long-running server's hygiene)."""
        self._counters.prune(now)

    def pairs(self) -> list[str | None]:
        """The keys with a counter (possibly decayed to zero until ``prune``)."""
        return self._counters.keys()
