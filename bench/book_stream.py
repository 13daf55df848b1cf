"""A deterministic synthetic Kraken WS v2 book stream, with correct checksums.

The stream is what a depth-N subscriber of Kraken's ``book`` channel receives: one
snapshot, then updates that touch levels near the top of the book (size changes, new
levels, deleted levels and the replacement level that scrolls into the window, best
levels taken by trades). The generator keeps a deeper "exchange" book than the
subscriber sees, so a delete inside the window brings the next level in exactly as
Kraken does, and the subscriber must truncate inserts that push a level out.

Frames are bytes, printed the way Kraken prints them (JSON numbers, trailing zeros
dropped). Same seed, same stream.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument, format_scaled

__all__ = ["BTC_USD", "StreamSpec", "generate_frames"]

BTC_USD = Instrument(
    symbol="BTC/USD",
    base="BTC",
    quote="USD",
    price_precision=1,
    qty_precision=8,
    price_increment=1,
    qty_min=10_000,
)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What to generate: ``frames`` frames (snapshot included) at subscription ``depth``."""

    frames: int = 100_000
    depth: int = 10
    seed: int = 42
    instrument: Instrument = BTC_USD
    mid: int = 300_000  # 30000.0 at price precision 1
    symbol_override: str | None = None


def _number(n: int, precision: int) -> str:
    text = format_scaled(n, precision)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class _Side:
    """One side of the exchange's book: qty by price, prices sorted best first."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.qty: dict[int, int] = {}
        self.keys: list[int] = []  # sort key: -price for bids, price for asks

    def price_at(self, index: int) -> int:
        key = self.keys[index]
        return -key if self.is_bid else key

    def set(self, price: int, qty: int) -> None:
        if price not in self.qty:
            bisect.insort(self.keys, -price if self.is_bid else price)
        self.qty[price] = qty

    def delete(self, price: int) -> None:
        del self.qty[price]
        key = -price if self.is_bid else price
        del self.keys[bisect.bisect_left(self.keys, key)]

    def index(self, price: int) -> int:
        return bisect.bisect_left(self.keys, -price if self.is_bid else price)

    def top(self, n: int) -> list[tuple[int, int]]:
        return [
            (self.price_at(i), self.qty[self.price_at(i)]) for i in range(min(n, len(self.keys)))
        ]


class _Generator:
    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.depth = spec.depth
        self.reserve = spec.depth + max(20, spec.depth // 4)
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)
        self.symbol = spec.symbol_override or spec.instrument.symbol
        self.ts_us = 1_690_731_000_000_000
        for i in range(self.reserve):
            self.bids.set(spec.mid - 1 - i * self._gap(), self._qty())
            self.asks.set(spec.mid + 1 + i * self._gap(), self._qty())

    def _gap(self) -> int:
        return self.rng.choice((1, 1, 1, 2, 3, 5))

    def _qty(self) -> int:
        # Sizes from dust to a few coins, with Kraken's 8 decimals used in full.
        return max(1, int(self.rng.lognormvariate(16.0, 2.0)))

    def _level_index(self) -> int:
        # Activity concentrates at the top of the book.
        return min(int(self.rng.expovariate(0.35)), self.depth - 1)

    def _refill(self, side: _Side) -> None:
        while len(side.keys) < self.reserve:
            worst = side.price_at(len(side.keys) - 1)
            step = self._gap()
            side.set(worst - step if side.is_bid else worst + step, self._qty())

    def _window(self, side: _Side) -> set[int]:
        return {side.price_at(i) for i in range(min(self.depth, len(side.keys)))}

    def step(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """One exchange event; returns the (bids, asks) levels a depth-N subscriber sees."""
        side = self.bids if self.rng.random() < 0.5 else self.asks
        other = self.asks if side is self.bids else self.bids
        before = self._window(side)
        action = self.rng.random()
        changed: list[tuple[int, int]] = []
        spread = self.asks.price_at(0) - self.bids.price_at(0)
        if spread > 8 and action < 0.6:  # liquidity returns inside a wide spread
            improve = self.rng.randint(1, spread // 2)
            price = side.price_at(0) + (improve if side.is_bid else -improve)
            qty = self._qty()
            side.set(price, qty)
            changed.append((price, qty))
        elif action < 0.5:  # size change on a visible level
            price = side.price_at(self._level_index())
            qty = self._qty()
            side.set(price, qty)
            changed.append((price, qty))
        elif action < 0.72:  # a new level inside the window (in a gap), or improve the best
            i = self._level_index()
            price = side.price_at(i)
            best_other = other.price_at(0)
            candidate = price + 1 if side.is_bid else price - 1
            crosses = candidate >= best_other if side.is_bid else candidate <= best_other
            if candidate in side.qty or crosses:
                qty = self._qty()
                side.set(price, qty)
                changed.append((price, qty))
            else:
                qty = self._qty()
                side.set(candidate, qty)
                changed.append((candidate, qty))
        else:  # a level leaves: cancelled, or the best level taken by a trade
            i = 0 if action > 0.92 else self._level_index()
            price = side.price_at(i)
            side.delete(price)
            changed.append((price, 0))
            self._refill(side)
        after = self._window(side)
        # Levels that scrolled into the window are published (Kraken sends replacements).
        entered = sorted(after - before - {p for p, _ in changed})
        changed.extend((price, side.qty[price]) for price in entered)
        visible = [(p, q) for p, q in changed if p in after or (q == 0 and p in before)]
        if side.is_bid:
            return visible, []
        return [], visible

    def checksum(self) -> int:
        return book_checksum(self.asks.top(10), self.bids.top(10))

    def _levels(self, levels: list[tuple[int, int]]) -> str:
        pp = self.spec.instrument.price_precision
        qp = self.spec.instrument.qty_precision
        return ",".join(f'{{"price":{_number(p, pp)},"qty":{_number(q, qp)}}}' for p, q in levels)

    def _timestamp(self) -> str:
        self.ts_us += self.rng.randint(50, 5000)
        seconds, micros = divmod(self.ts_us, 1_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"

    def frame(self, kind: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> bytes:
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{self.symbol}",'
            f'"bids":[{self._levels(bids)}],"asks":[{self._levels(asks)}],'
            f'"checksum":{self.checksum()},"timestamp":"{self._timestamp()}"}}]}}'
        ).encode()

    def frames(self) -> Iterator[bytes]:
        yield self.frame("snapshot", self.bids.top(self.depth), self.asks.top(self.depth))
        emitted = 1
        while emitted < self.spec.frames:
            bids, asks = self.step()
            if not bids and not asks:
                continue
            yield self.frame("update", bids, asks)
            emitted += 1


def generate_frames(spec: StreamSpec) -> Iterator[bytes]:
    """The stream for ``spec``: a snapshot, then ``spec.frames - 1`` updates."""
    return _Generator(spec).frames()
