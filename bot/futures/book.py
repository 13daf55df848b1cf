"""A Kraken Futures order book kept from the WS v1 ``book`` feed, and its resync signal.

The feed sends one ``book_snapshot`` (every level, with the product's ``seq``) and then
one ``book`` delta per changed level, each with the next ``seq``
(https://docs.kraken.com/api/docs/futures-api/websocket/book). Unlike spot, Futures sends
**no checksum**, so the keeper cannot compare its book with Kraken's; what it can check:

- **a sequence gap**: a delta whose ``seq`` is not the last one plus 1 (a frame was lost,
  or arrived out of order): the local book may differ from Kraken's;
- **a crossed book**: a best bid at or above the best ask after a frame: impossible on
  the exchange, so the local book is wrong.

Either makes ``apply`` return a ``Resync`` (once): the book is marked not ``synced`` and
ignores deltas (counted in ``dropped``) until the next snapshot, which the caller obtains
by unsubscribing and subscribing again. A delta before any snapshot is a ``Resync`` too.

Prices and quantities are scaled ints of the contract (``FuturesInstrument``), levels in
sorted lists, so the best level is O(1) and a change O(log n) to find. This module owns
the book's state and the checks; it does no I/O and never sleeps.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Literal

from bot.futures.instruments import FuturesInstrument
from bot.futures.ws_protocol import BookDelta, BookSnapshot

__all__ = ["FuturesBook", "Resync"]


@dataclass(frozen=True, slots=True)
class Resync:
    """Why the book must be fetched again. ``expected``/``got``: the sequence numbers of a
    gap (None for a crossed book)."""

    product_id: str
    reason: Literal["gap", "crossed", "no_snapshot"]
    expected: int | None = None
    got: int | None = None


class _Side:
    __slots__ = ("keys", "levels")

    def __init__(self) -> None:
        self.keys: list[int] = []  # ascending prices
        self.levels: dict[int, int] = {}

    def clear(self) -> None:
        self.keys.clear()
        self.levels.clear()

    def set(self, price: int, qty: int) -> None:
        if qty == 0:
            if self.levels.pop(price, None) is not None:
                del self.keys[bisect.bisect_left(self.keys, price)]
            return
        if price not in self.levels:
            bisect.insort(self.keys, price)
        self.levels[price] = qty


class FuturesBook:
    """One product's book (see the module docstring)."""

    __slots__ = ("_asks", "_bids", "dropped", "inst", "resyncs", "seq", "synced")

    def __init__(self, inst: FuturesInstrument) -> None:
        self.inst = inst
        self._bids = _Side()
        self._asks = _Side()
        self.seq: int | None = None
        self.synced = False
        self.dropped = 0
        self.resyncs = 0

    @property
    def symbol(self) -> str:
        return self.inst.symbol

    # -- reading -----------------------------------------------------------------------
    def best_bid(self) -> tuple[int, int] | None:
        keys = self._bids.keys
        return (keys[-1], self._bids.levels[keys[-1]]) if keys else None

    def best_ask(self) -> tuple[int, int] | None:
        keys = self._asks.keys
        return (keys[0], self._asks.levels[keys[0]]) if keys else None

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        """(price, qty), best (highest) first."""
        keys = self._bids.keys[::-1] if n is None else self._bids.keys[: -n - 1 : -1]
        return [(k, self._bids.levels[k]) for k in keys]

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        """(price, qty), best (lowest) first."""
        keys = self._asks.keys if n is None else self._asks.keys[:n]
        return [(k, self._asks.levels[k]) for k in keys]

    def crossed(self) -> bool:
        bid, ask = self._bids.keys, self._asks.keys
        return bool(bid and ask and bid[-1] >= ask[0])

    # -- applying ------------------------------------------------------------------------
    def apply(self, frame: BookSnapshot | BookDelta) -> Resync | None:
        """Apply a snapshot or delta of this product; a ``Resync`` when the book can no
        longer be trusted (returned once; later deltas are dropped until a snapshot).
        A number off the contract's precision raises ``ProtocolError``."""
        if frame.product_id != self.inst.symbol:
            raise ValueError(f"{frame.product_id} frame given to the {self.symbol} book")
        if isinstance(frame, BookSnapshot):
            return self._snapshot(frame)
        if not self.synced:
            if self.seq is None and self.resyncs == 0:
                return self._lose(Resync(self.symbol, "no_snapshot", None, frame.seq))
            self.dropped += 1
            return None
        assert self.seq is not None
        if frame.seq != self.seq + 1:
            return self._lose(Resync(self.symbol, "gap", self.seq + 1, frame.seq))
        side = self._bids if frame.side == "buy" else self._asks
        side.set(self.inst.price(frame.price), self.inst.qty(frame.qty))
        self.seq = frame.seq
        if self.crossed():
            return self._lose(Resync(self.symbol, "crossed"))
        return None

    def _snapshot(self, frame: BookSnapshot) -> Resync | None:
        bids = [(self.inst.price(p), self.inst.qty(q)) for p, q in frame.bids]
        asks = [(self.inst.price(p), self.inst.qty(q)) for p, q in frame.asks]
        self._bids.clear()
        self._asks.clear()
        for price, qty in bids:
            self._bids.set(price, qty)
        for price, qty in asks:
            self._asks.set(price, qty)
        self.seq = frame.seq
        self.synced = True
        if self.crossed():
            return self._lose(Resync(self.symbol, "crossed"))
        return None

    def _lose(self, resync: Resync) -> Resync:
        self.synced = False
        self.resyncs += 1
        return resync
