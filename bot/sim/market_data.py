"""Market liquidity for the simulator: the ``MarketSource`` protocol and a synthetic source.

A market source says, step by step, what the market account does in the books: add,
amend or cancel resting limit orders (``MarketAdd``/``MarketAmend``/``MarketCancel``, each
named by the source's own integer ``ref``) and send market orders that trade
(``MarketTake``). The exchange applies them and tells the source, through ``on_fill``,
whenever one of its resting orders trades, so the source's view stays exact.

``SyntheticMarket`` is pure: given instruments, a seed and the times it is stepped at, it
always produces the same actions. Per symbol it walks a mid price (Gaussian steps, stdev
``vol_bps`` per √s, in whole ticks), keeps one order per price level on each side from a
few ticks either side of the mid out to ``depth`` levels (100 by default; ``set_depth``
grows it, e.g. to 1000 for a deep subscriber), re-sizes and re-quotes levels near the top
(``churn_per_s``) and sends market orders (``trades_per_s``, Poisson). Spreads, gaps and
sizes come from ``pairs.PROFILES``. Floats appear only inside the random model; every
price and quantity it emits is an exact scaled int on the instrument's grid.

This module owns the source side of market data; it never touches a book.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

from bot.kraken.instruments import Instrument
from bot.sim.pairs import PROFILES, PairProfile

__all__ = [
    "MarketAction",
    "MarketAdd",
    "MarketAmend",
    "MarketCancel",
    "MarketFill",
    "MarketPrint",
    "MarketSource",
    "MarketTake",
    "SyntheticMarket",
]

_MAX_EVENT_DT: Final = 1.0  # seconds of trades/churn simulated per step, at most
_MIN_MID_TICKS: Final = 100


@dataclass(frozen=True, slots=True)
class MarketAdd:
    """Rest a market limit order of ``qty`` at ``price`` (it trades first if it crosses)."""

    symbol: str
    ref: int
    side: str
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class MarketAmend:
    """Set order ``ref``'s remaining qty (and price). Shrinking in place keeps priority."""

    symbol: str
    ref: int
    qty: int
    price: int | None = None


@dataclass(frozen=True, slots=True)
class MarketCancel:
    symbol: str
    ref: int


@dataclass(frozen=True, slots=True)
class MarketTake:
    """A market order: ``side`` is the taker's."""

    symbol: str
    side: str
    qty: int


@dataclass(frozen=True, slots=True)
class MarketPrint:
    """A trade printed on another venue (a live source's upstream): published as the
    venue's public trade; the book is not touched (the upstream's book frames carry its
    effect). ``side`` is the taker's."""

    symbol: str
    side: str
    price: int
    qty: int
    ord_type: str = "limit"


@dataclass(frozen=True, slots=True)
class MarketFill:
    """The market trades ``qty`` with user order ``txid`` resting in the book, at the
    order's price (it is the maker): a live source's fill rule decided it. No public trade
    (the print that caused it was published)."""

    symbol: str
    txid: str
    qty: int


MarketAction = MarketAdd | MarketAmend | MarketCancel | MarketTake | MarketPrint | MarketFill


class MarketSource(Protocol):
    """What the exchange needs of a market source."""

    def step(self, now_ns: int) -> Sequence[MarketAction]:
        """The market's actions up to ``now_ns``."""
        ...

    def on_fill(self, symbol: str, ref: int, remaining: int) -> None:
        """Resting order ``ref`` traded; ``remaining`` is what is left (0: gone)."""
        ...


class _Side:
    """The source's own resting orders on one side: one per tick, ``ticks`` ascending."""

    __slots__ = ("is_bid", "levels", "ticks")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.ticks: list[int] = []
        self.levels: dict[int, list[int]] = {}  # tick -> [ref, qty]

    def best(self) -> int | None:
        if not self.ticks:
            return None
        return self.ticks[-1] if self.is_bid else self.ticks[0]

    def worst(self) -> int | None:
        if not self.ticks:
            return None
        return self.ticks[0] if self.is_bid else self.ticks[-1]

    def nth_from_best(self, i: int) -> int:
        return self.ticks[-1 - i] if self.is_bid else self.ticks[i]

    def remove(self, tick: int) -> list[int]:
        del self.ticks[bisect.bisect_left(self.ticks, tick)]
        return self.levels.pop(tick)


class _Symbol:
    __slots__ = ("asks", "bids", "depth", "inst", "last_ns", "mid", "min_qty", "profile", "tick")

    def __init__(self, inst: Instrument, profile: PairProfile, depth: int) -> None:
        self.inst = inst
        self.profile = profile
        self.depth = depth
        self.tick = inst.price_increment
        start = int(profile.start_price.scaleb(inst.price_precision))
        self.mid = max(start // self.tick, _MIN_MID_TICKS)
        cost_min = int(inst.cost_min.scaleb(inst.price_precision + inst.qty_precision))
        # Sizes stay valid down to a quarter of the starting price.
        self.min_qty = max(inst.qty_min, 1, -(-4 * cost_min // max(start, 1)))
        self.bids = _Side(True)
        self.asks = _Side(False)
        self.last_ns: int | None = None


def _fallback_profile(inst: Instrument) -> PairProfile:
    start = max(Decimal(100), Decimal(inst.price_increment * 10_000).scaleb(-inst.price_precision))
    lot = max(Decimal(1), Decimal(inst.qty_min * 20).scaleb(-inst.qty_precision))
    return PairProfile(start, (1, 4), (1, 4), lot)


class SyntheticMarket:
    """A seeded random-walk market for several symbols at once (see the module doc)."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        seed: int,
        *,
        depth: int = 100,
        profiles: Mapping[str, PairProfile] | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        table = dict(PROFILES)
        table.update(profiles or {})
        self._rng = random.Random(seed)
        self._symbols: dict[str, _Symbol] = {}
        for inst in instruments:
            profile = table.get(inst.symbol) or _fallback_profile(inst)
            self._symbols[inst.symbol] = _Symbol(inst, profile, depth)
        self._refs: dict[int, tuple[_Symbol, _Side, int]] = {}
        self._next_ref = 0
        self._out: list[MarketAction] = []

    # -- control ------------------------------------------------------------------------
    def set_depth(self, symbol: str, levels: int) -> None:
        """Keep at least ``levels`` levels per side of ``symbol`` from the next step on."""
        if levels < 1:
            raise ValueError("depth must be at least 1")
        st = self._symbols[symbol]
        st.depth = max(st.depth, levels)

    def mid(self, symbol: str) -> int:
        """The current mid price of ``symbol`` (scaled int)."""
        st = self._symbols[symbol]
        return st.mid * st.tick

    # -- MarketSource ---------------------------------------------------------------------
    def on_fill(self, symbol: str, ref: int, remaining: int) -> None:
        entry = self._refs.get(ref)
        if entry is None:
            return
        _, side, tick = entry
        if remaining <= 0:
            side.remove(tick)
            del self._refs[ref]
        else:
            side.levels[tick][1] = remaining

    def step(self, now_ns: int) -> list[MarketAction]:
        self._out = []
        for st in self._symbols.values():
            if st.last_ns is None:
                st.last_ns = now_ns
                self._quote(st)
                continue
            dt = max(now_ns - st.last_ns, 0) / 1e9
            st.last_ns = now_ns
            self._walk(st, dt)
            self._quote(st)
            events_dt = min(dt, _MAX_EVENT_DT)
            for _ in range(self._poisson(st.profile.churn_per_s * events_dt)):
                self._churn(st)
            for _ in range(self._poisson(st.profile.trades_per_s * events_dt)):
                self._trade(st)
        return self._out

    # -- the model --------------------------------------------------------------------------
    def _walk(self, st: _Symbol, dt: float) -> None:
        if dt <= 0:
            return
        rng = self._rng
        move = st.mid * st.profile.vol_bps * 1e-4 * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        st.mid = max(st.mid + math.floor(move + rng.random()), _MIN_MID_TICKS)

    def _quote(self, st: _Symbol) -> None:
        """Keep both sides a few ticks off the mid and ``depth`` levels deep."""
        rng = self._rng
        lo, hi = st.profile.spread_ticks
        spread = rng.randint(lo, hi)
        bid_top = st.mid - spread // 2
        ask_top = bid_top + spread
        bids, asks = st.bids, st.asks
        while bids.ticks and bids.ticks[-1] > bid_top:
            self._cancel(st, bids, bids.ticks[-1])
        while asks.ticks and asks.ticks[0] < ask_top:
            self._cancel(st, asks, asks.ticks[0])
        # A small margin over ``depth`` keeps a full ``depth`` after a sweep.
        target = st.depth + st.depth // 50 + 2
        for side, top in ((bids, bid_top), (asks, ask_top)):
            best = side.best()
            if best is None:
                self._extend(st, side, top, target)
                continue
            if abs(top - best) > target * st.profile.gap_ticks[1]:
                # The mid jumped further than the whole side: quote afresh from the top.
                while side.ticks:
                    self._cancel(st, side, side.ticks[-1])
                self._extend(st, side, top, target)
                continue
            if best != top:
                self._fill_gap(st, side, top, best)
            missing = target - len(side.ticks)
            if missing > 0:
                worst = side.worst()
                assert worst is not None
                step = -self._gap(st) if side.is_bid else self._gap(st)
                self._extend(st, side, worst + step, missing)
            elif missing < -(target // 4 + 1):
                for _ in range(-missing):
                    worst = side.worst()
                    assert worst is not None
                    self._cancel(st, side, worst)

    def _fill_gap(self, st: _Symbol, side: _Side, top: int, best: int) -> None:
        """Add levels from ``top`` towards the current ``best`` (exclusive)."""
        direction = -1 if side.is_bid else 1
        tick = top
        while (tick - best) * direction < 0:
            if tick not in side.levels:
                self._add(st, side, tick)
            tick += direction * self._gap(st)

    def _extend(self, st: _Symbol, side: _Side, start: int, count: int) -> None:
        """Add ``count`` levels from ``start`` away from the mid."""
        direction = -1 if side.is_bid else 1
        tick = start
        for _ in range(count):
            if tick <= 0:
                break
            if tick not in side.levels:
                self._add(st, side, tick)
            tick += direction * self._gap(st)

    def _churn(self, st: _Symbol) -> None:
        rng = self._rng
        side = st.bids if rng.random() < 0.5 else st.asks
        if not side.ticks:
            return
        i = min(int(rng.expovariate(0.1)), len(side.ticks) - 1)
        tick = side.nth_from_best(i)
        ref, _ = side.levels[tick]
        if rng.random() < 0.6:
            qty = self._size(st)
            side.levels[tick][1] = qty
            self._out.append(MarketAmend(st.inst.symbol, ref, qty))
        else:
            self._cancel(st, side, tick)
            self._add(st, side, tick)

    def _trade(self, st: _Symbol) -> None:
        rng = self._rng
        side = "buy" if rng.random() < 0.5 else "sell"
        qty = self._size(st)
        if rng.random() < 0.1:
            qty *= rng.randint(2, 6)
        self._out.append(MarketTake(st.inst.symbol, side, qty))

    # -- primitives ----------------------------------------------------------------------------
    def _gap(self, st: _Symbol) -> int:
        lo, hi = st.profile.gap_ticks
        return self._rng.randint(lo, hi)

    def _size(self, st: _Symbol) -> int:
        inst = st.inst
        lot = float(st.profile.lot.scaleb(inst.qty_precision))
        qty = int(lot * math.exp(self._rng.gauss(0.0, 0.8)))
        qty -= qty % inst.qty_increment
        return max(qty, st.min_qty)

    def _add(self, st: _Symbol, side: _Side, tick: int) -> None:
        self._next_ref += 1
        ref = self._next_ref
        qty = self._size(st)
        bisect.insort(side.ticks, tick)
        side.levels[tick] = [ref, qty]
        self._refs[ref] = (st, side, tick)
        sym = st.inst.symbol
        self._out.append(MarketAdd(sym, ref, "buy" if side.is_bid else "sell", tick * st.tick, qty))

    def _cancel(self, st: _Symbol, side: _Side, tick: int) -> None:
        ref, _ = side.remove(tick)
        del self._refs[ref]
        self._out.append(MarketCancel(st.inst.symbol, ref))

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        rng = self._rng
        if lam > 30:
            return max(0, round(rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
