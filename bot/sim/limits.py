"""The simulator's rate limits, as Kraken's rate-limit pages state them (pure, exact).

Written from Kraken's pages, apart from the client's model (``bot.kraken.ratelimit``), so
that two readings of the docs meet in the tests instead of one reading tested against
itself. Pinned by the pages' tables and worked examples in ``tests/unit/sim/test_limits.py``.

**REST call counter** (https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits), one
per API key: "Ledger/trade history calls increase the counter by 2. All other API calls
increase this counter by 1 (except AddOrder, CancelOrder which operate on a different
limiter)". So AmendOrder and EditOrder cost 1 (they count on the trading counter as well),
and AddOrderBatch and CancelOrderBatch, the two exempt calls' batch forms, cost 0. Maximum
and decay by tier: Starter 15, -0.33/s; Intermediate 20, -0.5/s; Pro 20, -1/s. Over the
maximum: ``EAPI:Rate limit exceeded``; "additional calls will be restricted for a few
seconds (or possibly longer if calls continue to be made while the rate limits are
active)", so a refused call is counted too.

**Trading counter** (https://docs.kraken.com/api/docs/guides/spot-ratelimits), one per
pair per account, shared by REST, WebSocket and FIX: a fixed count "applied on receipt,
even if the transaction fails validation", plus a decaying count by the order's age
(seconds since it was placed or last amended):

===============  =======  =====  =====  =====  =====  =====  ======
Transaction      Fixed    <5s    <10s   <15s   <45s   <90s   <300s
===============  =======  =====  =====  =====  =====  =====  ======
Add Order        +1
Amend Order      +1       +3     +2     +1
Edit Order       +1       +6     +5     +4     +2     +1
Cancel Order              +8     +6     +5     +4     +2     +1
Batch Add        +n/2
Batch Cancel              +8n    +6n    +5n    +4n    +2n    +1n
===============  =======  =====  =====  =====  =====  =====  ======

Threshold and decay: Starter 60, -1/s; Intermediate 125, -2.34/s; Pro 180, -3.75/s. Over the
threshold: ``EOrder:Rate limit exceeded``; "If the rate counter in the batch exceeds maximum
for a batch cancel, the requests in batch are still accepted" (a batch is refused only when
the counter is already at its threshold). Open orders per pair: Starter 60, Intermediate 80,
Pro 225. ``CancelAll`` adds 1 to each pair it touches and ``CancelAllOrdersAfter`` 1 to no
pair (Kraken's SDK, KRAKEN.md §2.2).

Arithmetic: a counter is an ``int`` in units of 1e-11 (a hundredth of a count per
nanosecond of decay), so Kraken's decimal rates (0.33, 2.34) decay it exactly; time is the
monotonic clock in seconds, taken to whole nanoseconds, and elapsed time counts in whole
microseconds rounded up (a client that waits ``1 / 0.33`` s on a float clock must not
miss by a nanosecond). A call of cost ``c`` fits when ``value + c <= maximum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "NO_PAIR",
    "OPEN_ORDER_LIMITS",
    "REST_TIERS",
    "TRADING_TIERS",
    "Cost",
    "RestCounter",
    "Tier",
    "TradingCounter",
    "rest_cost",
]


class Tier(StrEnum):
    """The account's verification tier (it sets every limit)."""

    STARTER = "starter"
    INTERMEDIATE = "intermediate"
    PRO = "pro"


_UNIT: Final = 100 * 1_000_000_000  # one count, in counter units
_CENTI: Final = 1_000_000_000  # a hundredth of a count
_US: Final = 1000  # ns


@dataclass(frozen=True, slots=True)
class _Limit:
    maximum: int  # whole counts
    decay_centi_per_s: int  # hundredths of a count per second


REST_TIERS: Final = {
    Tier.STARTER: _Limit(15, 33),
    Tier.INTERMEDIATE: _Limit(20, 50),
    Tier.PRO: _Limit(20, 100),
}
TRADING_TIERS: Final = {
    Tier.STARTER: _Limit(60, 100),
    Tier.INTERMEDIATE: _Limit(125, 234),
    Tier.PRO: _Limit(180, 375),
}
OPEN_ORDER_LIMITS: Final = {Tier.STARTER: 60, Tier.INTERMEDIATE: 80, Tier.PRO: 225}

# The methods that cost 2 ("Ledger/trade history"; ClosedOrders and QueryTrades counted with
# them, as Kraken's CLI and an unconfirmed report do) and 0: only "AddOrder, CancelOrder
# which operate on a different limiter", and their batch forms (many adds or cancels in one
# call). AmendOrder and EditOrder are not on the page's list, so they cost 1 here as every
# other call does (and count on the trading counter too).
_COSTS_2: Final = frozenset(
    {"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades", "ClosedOrders"}
)
_COSTS_0: Final = frozenset({"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch"})

# Age bands in seconds and the decaying count (hundredths) for each transaction.
_BANDS: Final = (5, 10, 15, 45, 90, 300)
_AMEND: Final = (300, 200, 100, 0, 0, 0)
_EDIT: Final = (600, 500, 400, 200, 100, 0)
_CANCEL: Final = (800, 600, 500, 400, 200, 100)

NO_PAIR: Final = ""
"""The trading counter that ``CancelAllOrdersAfter`` charges (no pair)."""


def rest_cost(method: str) -> int:
    """What a private REST call adds to its key's counter (whole counts)."""
    if method in _COSTS_2:
        return 2
    return 0 if method in _COSTS_0 else 1


def _ns(now_s: float) -> int:
    return round(now_s * 1_000_000_000)


class _Decaying:
    """One counter: ``level`` units at ``stamp`` ns, falling ``decay`` units per ns."""

    __slots__ = ("decay", "level", "stamp")

    def __init__(self, decay_centi_per_s: int) -> None:
        self.decay = decay_centi_per_s  # units per ns: centi/s = (centi * 1e9 units) / 1e9 ns
        self.level = 0
        self.stamp = 0

    def value(self, now_ns: int) -> int:
        if now_ns <= self.stamp:
            return self.level
        elapsed = -(-(now_ns - self.stamp) // _US) * _US  # whole µs, in the client's favour
        return max(0, self.level - elapsed * self.decay)

    def settle(self, now_ns: int) -> int:
        self.level = self.value(now_ns)
        self.stamp = max(self.stamp, now_ns)
        return self.level


class RestCounter:
    """One API key's REST call counter."""

    __slots__ = ("_counter", "maximum")

    def __init__(self, tier: Tier | str) -> None:
        limit = REST_TIERS[Tier(tier)]
        self.maximum = limit.maximum
        self._counter = _Decaying(limit.decay_centi_per_s)

    def value(self, now_s: float) -> float:
        """The count now (for reports; decisions use the exact units)."""
        return self._counter.value(_ns(now_s)) / _UNIT

    def try_charge(self, cost: int, now_s: float) -> bool:
        """Count a call of ``cost``; False (counted all the same) if it does not fit."""
        level = self._counter.settle(_ns(now_s))
        self._counter.level = level + cost * _UNIT
        return cost == 0 or level + cost * _UNIT <= self.maximum * _UNIT


@dataclass(frozen=True, slots=True)
class Cost:
    """A trading-counter charge in hundredths of a count; ``fixed`` is charged even when
    the request is refused."""

    fixed: int = 0
    decaying: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.fixed + other.fixed, self.decaying + other.decaying)

    @property
    def total(self) -> int:
        return self.fixed + self.decaying


def _band(table: tuple[int, ...], age_s: float) -> int:
    for bound, cost in zip(_BANDS, table, strict=True):
        if age_s < bound:
            return cost
    return 0


class TradingCounter:
    """One account's trading counters, one per pair (``NO_PAIR`` for the dead man's switch)."""

    __slots__ = ("_counters", "_decay", "maximum")

    def __init__(self, tier: Tier | str) -> None:
        limit = TRADING_TIERS[Tier(tier)]
        self.maximum = limit.maximum
        self._decay = limit.decay_centi_per_s
        self._counters: dict[str, _Decaying] = {}

    # -- costs ---------------------------------------------------------------------------
    @staticmethod
    def add() -> Cost:
        return Cost(fixed=100)

    @staticmethod
    def amend(age_s: float) -> Cost:
        return Cost(fixed=100, decaying=_band(_AMEND, age_s))

    @staticmethod
    def edit(age_s: float) -> Cost:
        return Cost(fixed=100, decaying=_band(_EDIT, age_s))

    @staticmethod
    def cancel(age_s: float) -> Cost:
        return Cost(decaying=_band(_CANCEL, age_s))

    @staticmethod
    def batch_add(n: int) -> Cost:
        return Cost(fixed=50 * n)

    @staticmethod
    def cancel_all() -> Cost:
        return Cost(fixed=100)

    @staticmethod
    def cancel_after() -> Cost:
        return Cost(fixed=100)

    # -- counters ------------------------------------------------------------------------
    def _counter(self, pair: str) -> _Decaying:
        counter = self._counters.get(pair)
        if counter is None:
            counter = self._counters[pair] = _Decaying(self._decay)
        return counter

    def value(self, pair: str, now_s: float) -> float:
        counter = self._counters.get(pair)
        return counter.value(_ns(now_s)) / _UNIT if counter is not None else 0.0

    def value_centi(self, pair: str, now_s: float) -> int:
        """The count in hundredths, rounded up (what the executions feed reports)."""
        counter = self._counters.get(pair)
        units = counter.value(_ns(now_s)) if counter is not None else 0
        return -(-units // _CENTI)

    def charge(self, pair: str, cost: Cost, now_s: float) -> None:
        """Count ``cost`` whatever the counter says (cancel-all, the dead man's switch)."""
        counter = self._counter(pair)
        counter.level = counter.settle(_ns(now_s)) + cost.total * _CENTI

    def try_charge(self, pair: str, cost: Cost, now_s: float, *, batch: bool = False) -> bool:
        """Charge ``cost`` if it fits, else refuse and charge its fixed part only. A batch
        fits whenever the counter is below the threshold, and is charged in full."""
        counter = self._counter(pair)
        level = counter.settle(_ns(now_s))
        limit = self.maximum * _UNIT
        ok = level < limit if batch else level + cost.total * _CENTI <= limit
        counter.level = level + (cost.total if ok else cost.fixed) * _CENTI
        return ok

    def prune(self, now_s: float) -> None:
        """Forget counters that decayed to zero."""
        now = _ns(now_s)
        for pair in [p for p, c in self._counters.items() if c.value(now) == 0]:
            del self._counters[pair]

    def pairs(self) -> list[str]:
        return list(self._counters)
