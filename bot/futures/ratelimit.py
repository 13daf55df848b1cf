"""Kraken Futures' request budget for ``/derivatives`` endpoints, as a pure counter.

https://docs.kraken.com/api/docs/guides/futures-rate-limits (KRAKEN.md §2.3): "For
``/derivatives`` endpoints, clients can spend up to 500 every 10 seconds", each call
costing by endpoint (``ENDPOINT_COSTS``): ``sendorder``, ``editorder`` and ``cancelorder``
10; ``batchorder`` 9 plus the number of instructions in the batch; ``accounts``,
``openpositions``, ``openorders`` and ``fills`` 2 (``fills`` with ``lastFillTime`` 25);
``cancelallorders`` and ``cancelallordersafter`` 25; ``orders/status`` 1. Public endpoints
cost nothing. Over budget Kraken answers ``apiLimitExceeded``.

The model: the budget is a counter that fills by each call's cost and drains continuously
at 500/10 s = 50 per second; a call fits when ``value + cost <= 500``. Kraken does not say
whether its window slides or is fixed; the continuous drain never lets more than 500 pass
in any 10 s after an idle spell, so a client that keeps to it is never refused by a
window of either kind. The arithmetic is spot's decaying counter
(``bot.kraken.ratelimit.RestCounter``) with these limits; the client waits on it before
Kraken would refuse, and the simulator uses its own copy of the rule to refuse.

The history API (``/api/history/v3/...``) has a budget of its own, the same page: "For
``/history`` endpoints, clients have a pool of up to 100 tokens that continually
replenishes at a rate of 100 every 10 minutes", ``historicalexecutions``,
``historicalorders`` and ``historicaltriggers`` costing 1 each (``HISTORY_COSTS``): a
``FuturesBudget(HISTORY_BUDGET, HISTORY_WINDOW_S)``, kept apart from the ``/derivatives``
one so that history reads never take room from order entry.

This module owns the cost tables and the budgets' numbers; no clock, no sleeping.
"""

from __future__ import annotations

from typing import Final

from bot.kraken.ratelimit import CounterLimits, RestCounter, Tier

__all__ = [
    "BUDGET",
    "ENDPOINT_COSTS",
    "HISTORY_BUDGET",
    "HISTORY_COSTS",
    "HISTORY_WINDOW_S",
    "WINDOW_S",
    "FuturesBudget",
    "endpoint_cost",
    "history_budget",
    "history_cost",
]

BUDGET: Final = 500.0
WINDOW_S: Final = 10.0
HISTORY_BUDGET: Final = 100.0
HISTORY_WINDOW_S: Final = 600.0

ENDPOINT_COSTS: Final[dict[str, float]] = {
    "sendorder": 10.0,
    "editorder": 10.0,
    "cancelorder": 10.0,
    "accounts": 2.0,
    "openpositions": 2.0,
    "openorders": 2.0,
    "fills": 2.0,
    "cancelallorders": 25.0,
    "cancelallordersafter": 25.0,
    "withdrawaltospotwallet": 100.0,
    "orders/status": 1.0,
    "unwindqueue": 200.0,
    "transfer": 10.0,
}
# The /history table, by path (Kraken's table says historicalexecutions, historicalorders,
# historicaltriggers for /executions, /orders and /triggers).
HISTORY_COSTS: Final[dict[str, float]] = {"executions": 1.0, "orders": 1.0, "triggers": 1.0}
_BATCH_BASE: Final = 9.0
_FILLS_SINCE: Final = 25.0
_PUBLIC: Final = frozenset({"instruments", "tickers", "orderbook", "history", "instruments/status"})


def _name(endpoint: str) -> str:
    path = endpoint.strip("/")
    marker = "api/v3/"
    return path[path.index(marker) + len(marker) :] if marker in path else path


def endpoint_cost(endpoint: str, *, batch_size: int = 0, last_fill_time: bool = False) -> float:
    """What one call to ``endpoint`` (``sendorder`` or ``/derivatives/api/v3/sendorder``)
    costs. ``batch_size``: instructions in a ``batchorder``; ``last_fill_time``: whether a
    ``fills`` call names one. Public endpoints cost 0; an authenticated endpoint missing
    from Kraken's table is charged as an order (10), conservatively."""
    name = _name(endpoint)
    if name == "batchorder":
        if batch_size < 1:
            raise ValueError(f"a batch has at least one instruction, got {batch_size}")
        return _BATCH_BASE + batch_size
    if name == "fills" and last_fill_time:
        return _FILLS_SINCE
    if name in _PUBLIC:
        return 0.0
    return ENDPOINT_COSTS.get(name, 10.0)


def history_cost(endpoint: str) -> float:
    """What one call to a ``/history`` endpoint (``executions``) costs from its pool; one
    missing from Kraken's table is charged 10, conservatively."""
    return HISTORY_COSTS.get(endpoint.strip("/").rsplit("/", 1)[-1], 10.0)


class FuturesBudget:
    """One API key's ``/derivatives`` budget (client side: wait; server side: refuse).

    ``budget``/``window_s`` override Kraken's 500 per 10 s (a client may keep a margin).
    Times are float seconds on a monotonic clock, passed in.
    """

    __slots__ = ("_counter",)

    def __init__(self, budget: float = BUDGET, window_s: float = WINDOW_S) -> None:
        limits = CounterLimits(budget, budget / window_s)
        # The tier is irrelevant here: the limits are given.
        self._counter = RestCounter(Tier.STARTER, limits=limits, refused_calls_count=False)

    @property
    def budget(self) -> float:
        return self._counter.limits.maximum

    def value(self, now: float) -> float:
        """What has been spent and not yet drained."""
        return self._counter.value(now)

    def headroom(self, now: float) -> float:
        return self._counter.headroom(now)

    def wait_time(self, cost: float, now: float) -> float:
        """Seconds until a call of ``cost`` fits (0.0 if it fits now)."""
        return self._counter.wait_time(cost, now)

    def charge(self, cost: float, now: float) -> None:
        """Record a call sent at ``now``."""
        self._counter.charge(cost, now)

    def reserve(self, cost: float, now: float) -> float:
        """Book a call at the first instant it fits; the wait until then."""
        return self._counter.reserve(cost, now)

    def saturate(self, now: float) -> None:
        """Kraken said ``apiLimitExceeded``: assume the budget is spent now."""
        self._counter.saturate(now)

    def try_charge(self, cost: float, now: float) -> bool:
        """Server side: charge and accept a call that fits; refuse (uncharged) one that
        does not."""
        return self._counter.try_charge(cost, now)


def history_budget() -> FuturesBudget:
    """A fresh ``/history`` pool: 100 tokens, refilled at 100 per 600 s."""
    return FuturesBudget(HISTORY_BUDGET, HISTORY_WINDOW_S)
