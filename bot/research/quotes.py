"""A strategy's quotes, derived from the lives of its limit orders when nobody recorded them.

A backtest hands the report its strategies' quotes; a paper or live run's store has only
the orders. This module rebuilds, per strategy and symbol, the best resting bid and ask
over time from the orders that reached the book (``new``, ``partially_filled``,
``filled``, ``canceled``, ``expired``): each lived from ``created_ns`` to its last update
if it is done, or to the window's end if it is still open, at its last known price (the
store keeps an order's final price only, so an amended order shows that price for its whole
life). An order done at the instant it was placed (one that took liquidity at once) never
rested and draws nothing. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final, NamedTuple

from bot.execution.orders import DONE_STATES, Order, OrderState
from bot.kraken.instruments import from_scaled
from bot.research.record import QuoteSample

__all__ = ["RESTED_STATES", "quotes_from_orders"]

RESTED_STATES: Final = frozenset(
    {
        OrderState.NEW,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
        OrderState.CANCELED,
        OrderState.EXPIRED,
    }
)
_GONE, _ADDED = 0, 1  # at one instant, orders leave before others arrive (a replacement)


class _Edge(NamedTuple):
    ts_ns: int
    kind: int  # _GONE or _ADDED
    side: str
    price: int  # scaled by ``precision``
    precision: int


def quotes_from_orders(
    orders: Iterable[Order], end_ns: int
) -> dict[tuple[str, str], list[QuoteSample]]:
    """``(strategy, symbol)`` → best bid and ask of its resting limit orders, each sample
    holding from its ``ts_ns`` until the next one."""
    events: dict[tuple[str, str], list[_Edge]] = {}
    precision: dict[tuple[str, str], int] = {}
    for order in orders:
        if order.price is None or order.state not in RESTED_STATES:
            continue
        key = (order.strategy, order.symbol)
        # One scale per key: prices compared as ints at the highest precision seen.
        precision[key] = max(precision.get(key, 0), order.price_precision)
        gone = order.updated_ns if order.state in DONE_STATES else end_ns
        if gone <= order.created_ns:
            continue  # done at the instant it was placed (a taker): it never rested
        out = events.setdefault(key, [])
        out.append(_Edge(order.created_ns, _ADDED, order.side, order.price, order.price_precision))
        out.append(_Edge(gone, _GONE, order.side, order.price, order.price_precision))
    return {key: _sweep(key_events, precision[key]) for key, key_events in events.items()}


def _sweep(events: list[_Edge], precision: int) -> list[QuoteSample]:
    bids: Counter[int] = Counter()
    asks: Counter[int] = Counter()
    samples: list[QuoteSample] = []
    last: tuple[int | None, int | None] = (None, None)
    events.sort(key=lambda e: (e.ts_ns, e.kind))
    for i, (ts, kind, side, price, pp) in enumerate(events):
        scaled = price * 10 ** (precision - pp)
        book = bids if side == "buy" else asks
        if kind == _ADDED:
            book[scaled] += 1
        else:
            book[scaled] -= 1
            if book[scaled] <= 0:
                del book[scaled]
        if i + 1 < len(events) and events[i + 1].ts_ns == ts:
            continue  # one sample per instant, after everything that happened at it
        best = (max(bids) if bids else None, min(asks) if asks else None)
        if best != last:
            last = best
            samples.append(
                QuoteSample(
                    ts,
                    None if best[0] is None else from_scaled(best[0], precision),
                    None if best[1] is None else from_scaled(best[1], precision),
                )
            )
    return samples
