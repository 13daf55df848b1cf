"""The simulator's live market source: an upstream book mirrored, and the paper fill rule.

``LiveMarket`` (pure: upstream events in, market actions out) keeps the simulator's books
equal to an upstream venue's (Kraken's public WS v2, through ``bot.service.paper_live``) and
decides when the paper account's resting orders fill. Its rules:

* **Mirror.** Each upstream level is one resting order of the market account. A verified
  upstream book frame changes only the levels whose upstream quantity changed, to exactly
  that quantity (decreases and removals first, so a moving book never crosses itself).
  With no paper order in view the venue's book is the upstream's, checksum for checksum.
* **Taking.** A paper order that crosses the mirrored book trades at once against it, at
  the mirrored levels' prices (the engine's own matching). The quantity it took stays gone
  from the mirror until the upstream changes that level (the paper order never moved the
  real market).
* **Queue.** A resting paper order joins the back of its level: the quantity ahead of it
  is the upstream's quantity at its price when the source first sees it (at the next
  upstream message after it rested; a price change or a larger quantity starts again
  from the back). An upstream trade (a *print*) fills paper orders on the side it hit:
  first every order priced *through* it (a bid above a sell print, an ask below a buy
  print), best price first, then orders at its price, each after the print has used up
  the quantity ahead of it; all from the print's quantity, which bounds what the paper
  account gets. A level's quantity falling without a print (cancels) moves the orders
  there up pro rata (the cancelled quantity is spread over the whole level); a fall a print
  already explained moves nothing twice; the quantity ahead never exceeds the level's.
* **Crossing.** An upstream level that appears at or through a resting paper order's price
  trades with it (the paper order is the maker, at its price), as that incoming order
  would have on Kraken.

Limits: the paper account's orders never change the upstream market (a take does not move
it, a quote does not attract flow); the mirror sees only the subscribed depth; when Kraken
sends a level's book change before the print that caused it, that print counts once as a
cancel too (an order may move up by at most that print's size too early); upstream frames
apply as they arrive, the venue adds no latency of its own.

This module owns the mirror's state and the fill rule; the connection is
``bot.service.paper_live``'s, the matching engine ``exchange``'s (read here only through
``resting_orders``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.kraken.instruments import InstrumentTable
from bot.sim.market_data import (
    MarketAction,
    MarketAdd,
    MarketAmend,
    MarketCancel,
    MarketFill,
    MarketPrint,
)

if TYPE_CHECKING:
    from bot.sim.exchange import Exchange

__all__ = ["LiveMarket", "LiveStats", "Print"]

Key = tuple[str, int]  # (resting side "buy" | "sell", price)
Levels = Sequence[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Print:
    """One upstream trade: ``side`` is the taker's; price and qty scaled ints."""

    symbol: str
    side: str
    price: int
    qty: int
    ord_type: str = "limit"


@dataclass
class LiveStats:
    book_frames: int = 0
    prints: int = 0
    fills: int = 0  # MarketFill actions (queue and through fills)
    filled_qty: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Spot:
    """A resting paper order as the fill rule sees it."""

    side: str
    price: int
    qty: int  # remaining, as last seen
    ahead: int  # upstream quantity ahead of it in its level's queue


class LiveMarket:
    """A ``MarketSource`` mirroring an upstream venue; see the module docstring."""

    def __init__(self, instruments: InstrumentTable) -> None:
        self.instruments = instruments
        self.stats = LiveStats()
        self._exchange: Exchange | None = None
        self._levels: dict[str, dict[Key, int]] = {s: {} for s in instruments}
        self._sides: dict[str, tuple[Levels, Levels]] = {}  # each symbol's last frame's
        self._refs: dict[str, dict[Key, int]] = {s: {} for s in instruments}
        self._printed: dict[str, dict[Key, int]] = {s: {} for s in instruments}
        self._spots: dict[str, dict[str, _Spot]] = {s: {} for s in instruments}
        self._valid: set[str] = set()
        self._next_ref = 0

    def attach(self, exchange: Exchange) -> None:
        """The exchange whose resting paper orders the fill rule watches."""
        self._exchange = exchange

    @property
    def ready(self) -> bool:
        """Every symbol's mirror is verified (its upstream book valid)."""
        return self._valid.issuperset(self._levels)

    def is_valid(self, symbol: str) -> bool:
        return symbol in self._valid

    def ahead(self, txid: str) -> int | None:
        """The upstream quantity ahead of a resting paper order (None: not seen yet)."""
        for spots in self._spots.values():
            spot = spots.get(txid)
            if spot is not None:
                return spot.ahead
        return None

    # -- MarketSource ---------------------------------------------------------------------

    def step(self, now_ns: int) -> list[MarketAction]:
        """Nothing on the pump: upstream messages are applied as they arrive."""
        return []

    def on_fill(self, symbol: str, ref: int, remaining: int) -> None:
        """A paper order took a mirrored level: gone when empty, until upstream changes it."""
        if remaining > 0:
            return
        refs = self._refs.get(symbol, {})
        for key, held in refs.items():
            if held == ref:
                del refs[key]
                return

    # -- upstream in ----------------------------------------------------------------------

    def on_book(self, symbol: str, bids: Levels, asks: Levels) -> list[MarketAction]:
        """A verified upstream book (its top levels, best first): the mirror follows."""
        self.stats.book_frames += 1
        self._valid.add(symbol)
        self._sync(symbol)
        levels = self._levels[symbol]
        # Only the levels whose quantity changed (a frame changes one or two of the 20),
        # in the order of their keys; a side equal to its last frame's has none.
        last, sides = self._sides.get(symbol), (tuple(bids), tuple(asks))
        changed: list[tuple[Key, int]] = []
        if last is None or sides[0] != last[0]:
            changed += _changes("buy", levels, bids)
        if last is None or sides[1] != last[1]:
            changed += _changes("sell", levels, asks)
        self._sides[symbol] = sides
        changed.sort()
        falls: list[MarketAction] = []
        rises: list[MarketAction] = []
        for key, after in changed:
            before = levels.get(key, 0)
            self._queue_on_level(symbol, key, before, after)
            action = self._mirror(symbol, key, after)
            if action is not None:
                (falls if after < before else rises).append(action)
        for key, after in changed:
            if after:
                levels[key] = after
            else:
                del levels[key]
        return falls + rises

    def on_prints(self, prints: Iterable[Print]) -> list[MarketAction]:
        """Upstream trades (not a snapshot's history): published, and paper orders filled."""
        out: list[MarketAction] = []
        synced: set[str] = set()
        for p in prints:
            if p.symbol not in self._levels:
                continue
            if p.symbol not in synced:
                self._sync(p.symbol)
                synced.add(p.symbol)
            self.stats.prints += 1
            out.append(MarketPrint(p.symbol, p.side, p.price, p.qty, p.ord_type))
            out.extend(self._fills_for(p))
        return out

    def on_invalid(self, symbol: str, *, clear: bool) -> list[MarketAction]:
        """The upstream book of ``symbol`` is not trustworthy. ``clear``: the mirror is
        emptied (a lost connection: nothing trades on stale prices); else it is frozen
        until the snapshot that follows (a one-symbol resync)."""
        self._valid.discard(symbol)
        if not clear or symbol not in self._levels:
            return []
        out: list[MarketAction] = [MarketCancel(symbol, ref) for ref in self._refs[symbol].values()]
        self._refs[symbol] = {}
        self._levels[symbol] = {}
        self._sides.pop(symbol, None)
        self._printed[symbol] = {}
        return out

    def on_disconnected(self) -> list[MarketAction]:
        """The upstream connection is lost: every mirror emptied."""
        out: list[MarketAction] = []
        for symbol in self._levels:
            out.extend(self.on_invalid(symbol, clear=True))
        return out

    # -- the mirror -----------------------------------------------------------------------

    def _mirror(self, symbol: str, key: Key, qty: int) -> MarketAction | None:
        """The action that sets the mirror's order at ``key`` to ``qty`` (None: none)."""
        refs = self._refs[symbol]
        ref = refs.get(key)
        if qty == 0:
            if ref is None:  # taken whole by a paper order: nothing left to remove
                return None
            del refs[key]
            return MarketCancel(symbol, ref)
        if ref is None:
            self._next_ref += 1
            ref = refs[key] = self._next_ref
            return MarketAdd(symbol, ref, key[0], key[1], qty)
        return MarketAmend(symbol, ref, qty)

    # -- the fill rule --------------------------------------------------------------------

    def _sync(self, symbol: str) -> None:
        """Track the paper orders resting now: new ones join the back of their level."""
        if self._exchange is None:
            return
        spots = self._spots[symbol]
        levels = self._levels[symbol]
        seen: set[str] = set()
        for order in self._exchange.resting_orders(symbol):
            assert order.price is not None
            txid = order.txid
            seen.add(txid)
            spot = spots.get(txid)
            remaining = order.qty - order.filled
            if spot is None or spot.price != order.price or remaining > spot.qty:
                ahead = levels.get((order.side, order.price), 0)
                spots[txid] = _Spot(order.side, order.price, remaining, ahead)
            else:
                spot.qty = remaining
        for txid in [t for t in spots if t not in seen]:
            del spots[txid]

    def _queue_on_level(self, symbol: str, key: Key, before: int, after: int) -> None:
        """A level's upstream quantity changed: the paper orders there move up."""
        printed = self._printed[symbol]
        at_level = [s for s in self._spots[symbol].values() if (s.side, s.price) == key]
        if after == 0:
            printed.pop(key, None)
            for spot in at_level:
                spot.ahead = 0
            return
        if after > before:
            return  # newcomers join behind
        fall = before - after
        explained = min(fall, printed.get(key, 0))
        if explained:
            printed[key] -= explained
        cancelled = fall - explained
        for spot in at_level:
            if cancelled:
                spot.ahead -= cancelled * spot.ahead // before
            spot.ahead = min(spot.ahead, after)

    def _fills_for(self, p: Print) -> list[MarketAction]:
        side = "buy" if p.side == "sell" else "sell"  # the resting side the print hit
        spots = [(txid, s) for txid, s in self._spots[p.symbol].items() if s.side == side]
        if side == "buy":
            through = sorted((x for x in spots if x[1].price > p.price), key=lambda x: -x[1].price)
        else:
            through = sorted((x for x in spots if x[1].price < p.price), key=lambda x: x[1].price)
        budget = p.qty
        out: list[MarketAction] = []
        for txid, spot in through:
            budget -= self._fill(p.symbol, txid, spot, budget, out)
        for txid, spot in spots:
            if spot.price != p.price:
                continue
            used = min(spot.ahead, budget)
            spot.ahead -= used
            budget -= self._fill(p.symbol, txid, spot, budget - used, out)
        key = (side, p.price)
        printed = self._printed[p.symbol]
        printed[key] = printed.get(key, 0) + p.qty
        return out

    def _fill(self, symbol: str, txid: str, spot: _Spot, room: int, out: list[MarketAction]) -> int:
        qty = min(spot.qty, room)
        if qty <= 0:
            return 0
        spot.qty -= qty
        out.append(MarketFill(symbol, txid, qty))
        self.stats.fills += 1
        self.stats.filled_qty[symbol] = self.stats.filled_qty.get(symbol, 0) + qty
        return qty


def _changes(side: str, levels: dict[Key, int], frame: Levels) -> list[tuple[Key, int]]:
    """The levels of ``side`` whose mirrored quantity ``frame`` changes: (key, new qty)."""
    new = dict(frame)
    out = [((side, p), q) for p, q in new.items() if levels.get((side, p), 0) != q]
    out += [(key, 0) for key in levels if key[0] == side and key[1] not in new]
    return out
