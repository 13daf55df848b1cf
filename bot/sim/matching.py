"""One symbol's limit order book and its matching (pure): price-time priority.

Prices and quantities are ints scaled by the instrument's precisions (see
``bot.kraken.instruments``). A ``Book`` holds resting ``Order`` records, user and market
alike, in FIFO queues per price level, keeps each level's aggregate quantity up to date
as it changes, and records every changed level as ``(side, price, qty)`` with ``side`` in
``"bid"``/``"ask"`` and ``qty == 0`` for a level that is gone. ``drain_changes`` hands
them over once per engine call, coalesced per level, ready to become book frames.

``match`` walks the opposite side from the best price while the taker crosses, filling
against makers in time order at the maker's price, and applies self-trade prevention
(``stptype`` of the taker: ``cancel-newest`` stops the taker, ``cancel-oldest`` cancels
the resting order and goes on, ``cancel-both`` does both). One account (the market's)
may trade with itself.

It also defines the values the engine reports (``OrderRequest`` in; ``OrderState``,
``ExecEvent``, ``Fill``, ``PublicTrade`` and ``Result`` out), so that the server can turn
them into Kraken's REST answers and WS ``executions``/``book``/``trade`` frames.

This module owns the order record, the book and those values; it knows nothing of
balances or fees.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "BOOK_SIDES",
    "STP_TYPES",
    "Book",
    "BookChange",
    "BookDelta",
    "ExecEvent",
    "Fill",
    "Level",
    "MatchResult",
    "Order",
    "OrderRequest",
    "OrderState",
    "PublicTrade",
    "Result",
]

Side = Literal["buy", "sell"]
BookChange = tuple[str, int, int]  # ("bid" | "ask", price, aggregate qty; 0 = removed)
BookDelta = tuple[str, str, int, int]  # (symbol, "bid" | "ask", price, qty; 0 = removed)
BOOK_SIDES: Final = ("bid", "ask")
STP_TYPES: Final = ("cancel-newest", "cancel-oldest", "cancel-both")
_BID: Final = 0
_ASK: Final = 1


@dataclass(slots=True, eq=False)
class Order:
    """One order's live state (mutable, owned by the engine; read it through snapshots).

    ``cost`` is the exact quote cost of the fills so far in units of
    ``10**-(price_precision + qty_precision)``; ``fee_acc``/``fee_units`` are the fee
    accumulators kept by ``bot.sim.accounts``; ``ref`` is the market source's id.
    """

    txid: str
    account: str
    symbol: str
    side: Side
    ord_type: str
    price: int | None
    qty: int
    opentm: int
    time_in_force: str = "GTC"
    expire_at: int | None = None
    post_only: bool = False
    fee_in_base: bool = False
    stptype: str = "cancel-newest"
    cl_ord_id: str | None = None
    userref: int | None = None
    filled: int = 0
    cost: int = 0
    fee_acc: int = 0
    fee_units: int = 0
    status: str = "pending"
    closetm: int | None = None
    reason: str | None = None
    amended: bool = False
    ref: int | None = None
    trades: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in ("pending", "open")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as the server decoded it (AddOrder / WS ``add_order``).

    ``qty`` and ``price`` are scaled ints; ``expire_at`` is ns since the epoch (GTD);
    ``fee_in_base`` is oflag ``fcib`` (default: fee in quote, ``fciq``).
    """

    symbol: str
    side: str
    ord_type: str
    qty: int
    price: int | None = None
    time_in_force: str = "GTC"
    expire_at: int | None = None
    post_only: bool = False
    fee_in_base: bool = False
    cl_ord_id: str | None = None
    userref: int | None = None
    stptype: str = "cancel-newest"
    validate: bool = False


_WS_STATUS: Final = {
    "closed": "filled",
    "canceled": "canceled",
    "expired": "expired",
}


@dataclass(frozen=True, slots=True)
class OrderState:
    """An order as it was at one moment. ``status`` is REST's (pending/open/closed/
    canceled/expired); ``order_status`` is WS ``executions``' (pending_new/new/
    partially_filled/filled/canceled/expired). ``cost``/``fee``/``avg_price`` are exact."""

    txid: str
    account: str
    symbol: str
    side: str
    ord_type: str
    price: int | None
    qty: int
    filled: int
    cost: Decimal
    fee: Decimal
    fee_asset: str
    avg_price: Decimal | None
    status: str
    opentm: int
    closetm: int | None
    time_in_force: str
    expire_at: int | None
    post_only: bool
    fee_in_base: bool
    stptype: str
    cl_ord_id: str | None
    userref: int | None
    reason: str | None
    amended: bool
    trades: tuple[str, ...]

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def order_status(self) -> str:
        if self.status == "pending":
            return "pending_new"
        if self.status == "open":
            if self.filled:
                return "filled" if self.filled == self.qty else "partially_filled"
            return "new"
        return _WS_STATUS[self.status]

    @property
    def oflags(self) -> str:
        """Kraken's comma-separated ``oflags`` text."""
        flags = ["post"] if self.post_only else []
        flags.append("fcib" if self.fee_in_base else "fciq")
        return ",".join(flags)


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of one trade, as its account sees it (``TradesHistory``, WS ``trade``)."""

    exec_id: str
    trade_id: int
    txid: str
    account: str
    symbol: str
    side: str
    ord_type: str
    price: int
    qty: int
    cost: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: str  # "m" maker, "t" taker
    timestamp: int


@dataclass(frozen=True, slots=True)
class ExecEvent:
    """One execution report. ``exec_type`` is one of Kraken's: pending_new, new, trade,
    filled, canceled, expired, amended, restated. ``order`` is the order after the change."""

    exec_type: str
    order: OrderState
    timestamp: int
    reason: str | None = None
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """A trade on the public tape: ``side`` and ``ord_type`` are the taker's."""

    symbol: str
    side: str
    price: int
    qty: int
    ord_type: str
    trade_id: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Result:
    """Everything one engine call changed, in order.

    ``order`` is the order added or amended (None after ``validate``, cancels and
    ``advance``); ``count`` the orders cancelled; ``book`` the changed levels.
    """

    order: OrderState | None = None
    count: int = 0
    executions: tuple[ExecEvent, ...] = ()
    trades: tuple[PublicTrade, ...] = ()
    book: tuple[BookDelta, ...] = ()


class Level:
    """One price level: FIFO of resting orders by txid, and their total remaining qty."""

    __slots__ = ("orders", "price", "qty")

    def __init__(self, price: int) -> None:
        self.price = price
        self.qty = 0
        self.orders: OrderedDict[str, Order] = OrderedDict()


@dataclass(slots=True)
class MatchResult:
    """What ``Book.match`` did, in order: ``steps`` are ``(maker, price, qty)``, where
    ``qty == 0`` marks a maker cancelled by self-trade prevention; ``taker_stopped`` says
    STP stopped the taker."""

    steps: list[tuple[Order, int, int]] = field(default_factory=list)
    taker_stopped: bool = False

    @property
    def fills(self) -> list[tuple[Order, int, int]]:
        return [step for step in self.steps if step[2]]

    @property
    def stp_cancelled(self) -> list[Order]:
        return [maker for maker, _, qty in self.steps if not qty]


class Book:
    """Both sides of one symbol's book.

    Each side keeps a dict price -> ``Level`` and a sorted list of keys whose *last*
    element is the best price (bids by price, asks by negated price), so the best level is
    found and removed in O(1) and a new level is inserted with ``bisect``.
    """

    __slots__ = ("_changes", "_keys", "_levels", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._levels: tuple[dict[int, Level], dict[int, Level]] = ({}, {})
        self._keys: tuple[list[int], list[int]] = ([], [])
        self._changes: dict[tuple[int, int], int] = {}

    # -- reading -------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        keys = self._keys[_BID]
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        keys = self._keys[_ASK]
        return -keys[-1] if keys else None

    def depth(self, side: str, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` levels (all if None) of ``"bid"``/``"ask"`` as (price, qty), best first."""
        idx = _BID if side == "bid" else _ASK
        keys = self._keys[idx]
        levels = self._levels[idx]
        chosen = keys[::-1] if n is None else keys[: -n - 1 : -1]
        sign = 1 if idx == _BID else -1
        return [(sign * k, levels[sign * k].qty) for k in chosen]

    def level_count(self, side: str) -> int:
        return len(self._keys[_BID if side == "bid" else _ASK])

    def level_qty(self, side: str, price: int) -> int:
        level = self._levels[_BID if side == "bid" else _ASK].get(price)
        return level.qty if level is not None else 0

    def queue(self, side: str, price: int) -> list[Order]:
        """Orders resting at one level, in priority order."""
        level = self._levels[_BID if side == "bid" else _ASK].get(price)
        return list(level.orders.values()) if level is not None else []

    def crosses(self, side: str, price: int) -> bool:
        """Would a limit order on ``side`` at ``price`` take liquidity?"""
        if side == "buy":
            ask = self.best_ask()
            return ask is not None and price >= ask
        bid = self.best_bid()
        return bid is not None and price <= bid

    # -- changes ----------------------------------------------------------------------------
    def drain_changes(self) -> list[BookChange]:
        """Changed levels since the last drain, one entry per level, in first-change order."""
        if not self._changes:
            return []
        out = [(BOOK_SIDES[s], p, q) for (s, p), q in self._changes.items()]
        self._changes = {}
        return out

    # -- resting ------------------------------------------------------------------------------
    def rest(self, order: Order) -> None:
        """Append ``order`` (a limit with remaining qty) to the back of its level."""
        assert order.price is not None
        idx = _BID if order.side == "buy" else _ASK
        price = order.price
        levels = self._levels[idx]
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level(price)
            bisect.insort(self._keys[idx], price if idx == _BID else -price)
        level.orders[order.txid] = order
        level.qty += order.remaining
        self._changes[(idx, price)] = level.qty

    def unrest(self, order: Order) -> None:
        """Take a resting order out of the book (cancel, expiry, amend that loses priority)."""
        assert order.price is not None
        idx = _BID if order.side == "buy" else _ASK
        level = self._levels[idx][order.price]
        del level.orders[order.txid]
        level.qty -= order.remaining
        self._after_level_change(idx, level)

    def shrink(self, order: Order, new_qty: int) -> None:
        """Lower a resting order's qty in place, keeping its priority."""
        assert order.price is not None and order.filled < new_qty <= order.qty
        idx = _BID if order.side == "buy" else _ASK
        level = self._levels[idx][order.price]
        level.qty -= order.qty - new_qty
        order.qty = new_qty
        self._changes[(idx, order.price)] = level.qty

    def fill_resting(self, order: Order, qty: int, price: int) -> None:
        """Fill ``qty`` of a resting order where it stands (no taker walks the book: the
        market traded with it); it leaves the book when done."""
        assert order.price is not None and 0 < qty <= order.qty - order.filled
        idx = _BID if order.side == "buy" else _ASK
        level = self._levels[idx][order.price]
        order.filled += qty
        order.cost += qty * price
        level.qty -= qty
        if order.filled == order.qty:
            del level.orders[order.txid]
        self._after_level_change(idx, level)

    def _after_level_change(self, idx: int, level: Level) -> None:
        price = level.price
        self._changes[(idx, price)] = level.qty
        if not level.orders:
            del self._levels[idx][price]
            keys = self._keys[idx]
            key = price if idx == _BID else -price
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect.bisect_left(keys, key)]

    # -- matching ------------------------------------------------------------------------------
    def preview(
        self, side: str, limit: int | None, qty: int, *, account: str, stptype: str, exempt: str
    ) -> tuple[int, int]:
        """(qty, cost) that ``match`` would fill now, without changing anything."""
        opp = _ASK if side == "buy" else _BID
        keys = self._keys[opp]
        levels = self._levels[opp]
        sign = 1 if opp == _BID else -1
        want, cost = qty, 0
        stp = account != exempt
        for i in range(len(keys) - 1, -1, -1):
            price = sign * keys[i]
            if limit is not None and (price > limit if opp == _ASK else price < limit):
                break
            for maker in levels[price].orders.values():
                if stp and maker.account == account:
                    if stptype == "cancel-oldest":
                        continue
                    return qty - want, cost
                take = min(want, maker.remaining)
                want -= take
                cost += take * price
                if want == 0:
                    return qty, cost
        return qty - want, cost

    def match(self, taker: Order, limit: int | None, exempt: str) -> MatchResult:
        """Fill ``taker`` against the opposite side while it crosses ``limit`` (None: any).

        Makers are updated here (filled, cost, removed when done); the taker is not: the
        caller applies each fill to it in turn, so that every fill can be reported with the
        taker's cumulative state at that fill.
        """
        result = MatchResult()
        opp = _ASK if taker.side == "buy" else _BID
        keys = self._keys[opp]
        levels = self._levels[opp]
        sign = 1 if opp == _BID else -1
        stp = taker.account != exempt
        steps = result.steps
        left = taker.qty - taker.filled
        while keys and left > 0:
            price = sign * keys[-1]
            if limit is not None and (price > limit if opp == _ASK else price < limit):
                break
            level = levels[price]
            queue = level.orders
            while queue and left > 0:
                maker = next(iter(queue.values()))
                if stp and maker.account == taker.account:
                    mode = taker.stptype
                    if mode != "cancel-newest":
                        queue.popitem(last=False)
                        level.qty -= maker.qty - maker.filled
                        steps.append((maker, price, 0))
                    if mode != "cancel-oldest":
                        result.taker_stopped = True
                        break
                    continue
                take = min(left, maker.qty - maker.filled)
                maker.filled += take
                maker.cost += take * price
                left -= take
                level.qty -= take
                if maker.filled == maker.qty:
                    queue.popitem(last=False)
                steps.append((maker, price, take))
            self._after_level_change(opp, level)
            if result.taker_stopped:
                break
        return result
