"""Batch orders at the venue port: what a batch-capable venue offers, and the legal calls.

A venue that can place or cancel several orders in one request implements ``BatchVenue``
beside ``bot.execution.venue.Venue`` (a venue without it gets one call per order from
the engine, so every venue stays correct). ``BatchLimits`` says what one call may hold;
``split`` cuts the engine's list into legal calls, pure and in order:

- orders on several pairs go in one call per pair where the venue wants one pair a call
  (Kraken spot: AddOrderBatch, ``batch_add``); Kraken Futures' ``batchorder`` mixes them;
- a group larger than the venue's limit (spot: 15 places, 50 cancels) is cut into the
  fewest calls of sizes that differ by one at most (20 places: 10 + 10, not 15 + 5), so
  that no call is left with a single order where it could hold two;
- a call of one order is a single call (``place``/``cancel``): Kraken's spot batches take
  two at least, and one order gains nothing from a batch.

``place_batch`` answers one entry per order, in order: the venue's order id, or the
``ExchangeError`` that order met (``OrderStateUnknown`` for an order whose fate the answer
does not tell; any other: Kraken refused it, nothing placed). A whole call that failed
raises as ``place`` does (``OrderStateUnknown``: every order of it is unknown).
``cancel_batch`` answers one entry per order: None (asked; the executions or a query tell
the end) or the ``ExchangeError`` Kraken gave for that order. A venue that also takes
cancels, amends and places in one request (Kraken Futures' ``batchorder``, its ``edit``
instructions the amends) implements ``EditBatchVenue``: ``edit_batch`` answers three
lists, one entry per cancel, amend (``BatchAmend``) and place, the cancels carried out
first; an amend's entry is None (amended) or the ``ExchangeError`` it met
(``OrderStateUnknown``: amended or not, look it up). Spot has no batch amend and no mixed
request: a venue without ``EditBatchVenue`` gets its cancels and places in separate calls
and each amend alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar, runtime_checkable

from bot.core.errors import ExchangeError
from bot.execution.orders import Order
from bot.kraken.instruments import Instrument

__all__ = [
    "FUTURES_LIMITS",
    "SPOT_LIMITS",
    "BatchAmend",
    "BatchAnswers",
    "BatchLimits",
    "BatchVenue",
    "EditBatchVenue",
    "PlaceAnswer",
    "chunks",
    "split",
]

PlaceAnswer = str | ExchangeError
"""One order's answer in a batch place: its venue id, or what refused or hid it."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchAmend:
    """One amend of a batch: ``order`` as it stands (live, with its venue id), its new
    total quantity and/or price (scaled; None keeps a field), and its age for the rate
    counter (``Venue.amend``'s ``order_age_s``)."""

    order: Order
    qty: int | None
    price: int | None
    age_s: float


BatchAnswers = tuple[list[ExchangeError | None], list[ExchangeError | None], list[PlaceAnswer]]
"""An ``edit_batch``'s answers: the cancels', the amends' and the places', each in order."""


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """What one batch call may hold: ``max_place`` and ``max_cancel`` orders (a batch
    takes two at least), ``one_pair``: all of one pair (symbol)."""

    max_place: int
    max_cancel: int
    one_pair: bool

    def __post_init__(self) -> None:
        if self.max_place < 2 or self.max_cancel < 2:
            raise ValueError("a batch holds two orders at least")


SPOT_LIMITS: Final = BatchLimits(max_place=15, max_cancel=50, one_pair=True)
"""Kraken spot (AddOrderBatch and ``batch_add``: 2 to 15 on one pair; CancelOrderBatch and
``batch_cancel``: up to 50). KRAKEN.md §8.2, §8.3."""
FUTURES_LIMITS: Final = BatchLimits(max_place=50, max_cancel=50, one_pair=False)
"""Kraken Futures' ``batchorder``: contracts mixed; Kraken documents no size limit, so
the bot keeps a call to 50 instructions (cost 9 + 50 of the 500 per 10 s budget)."""


@runtime_checkable
class BatchVenue(Protocol):
    """A venue that places and cancels several orders in one request (module docstring).
    ``instrument`` is the one pair of every order of the call, where the venue wants one
    pair a call; otherwise the first order's."""

    @property
    def batch_limits(self) -> BatchLimits: ...

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[PlaceAnswer]: ...

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]: ...


@runtime_checkable
class EditBatchVenue(Protocol):
    """A ``BatchVenue`` whose one request may carry cancels, amends and places (at most
    ``batch_limits.max_place`` instructions in all), sent in that order."""

    @property
    def batch_limits(self) -> BatchLimits: ...

    async def edit_batch(
        self,
        cancels: Sequence[Order],
        amends: Sequence[BatchAmend],
        places: Sequence[Order],
        *,
        ages_s: Sequence[float],
    ) -> BatchAnswers: ...


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in the fewest runs of at most ``size``, their lengths differing by one at
    most, in order."""
    if size < 1:
        raise ValueError("a chunk holds one item at least")
    n = len(items)
    if n == 0:
        return []
    count = -(-n // size)
    base, extra = divmod(n, count)
    out, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def split(
    items: Sequence[T], limit: int, *, one_pair: bool, symbol: Callable[[T], str]
) -> list[list[T]]:
    """The legal calls for ``items``: by pair first where ``one_pair`` (pairs in the order
    they first appear), each group cut by ``chunks(limit)``. A call of one is a single
    call (the caller sends it with ``place``/``cancel``)."""
    if not one_pair:
        return chunks(items, limit)
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(symbol(item), []).append(item)
    return [run for group in groups.values() for run in chunks(group, limit)]
