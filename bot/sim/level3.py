"""The ``level3`` channel: the book order by order, Kraken's way (pure).

https://docs.kraken.com/api/docs/websocket-v2/level3 and the checksum guide,
https://docs.kraken.com/api/docs/guides/spot-ws-l3-v2. A subscriber of depth N (10, 100 or
1000) holds every resting order of the best N price levels of each side, in queue order.
The snapshot lists them (``order_id``, ``limit_price``, ``order_qty``: what remains,
``timestamp``); each update lists order events: ``add`` (the order joins the back of its
level), ``modify`` (its quantity changed in place, as a partial fill or a shrinking amend
leave it) and ``delete`` (it left the book: filled, cancelled, expired, or moved). An
order that loses its place (an amend to a new price or a larger size) is a ``delete`` then
an ``add``, so a client that appends every ``add`` keeps the queue exactly. As with
``book``, levels scroll in from below when levels inside the window go (their orders come as
``add``), and a level pushed out by a new better one is not deleted: the client truncates
to its depth after each message.

The checksum (the guide's algorithm): for the top 10 ask levels, low to high, then the top
10 bid levels, high to low, every order in queue order contributes its ``limit_price`` and
``order_qty`` as printed, each with the ``.`` removed and the leading zeros stripped; the
CRC32 of the whole string, unsigned. It covers the top 10 levels at any depth. The
simulator prints numbers at the pair's full precision, so the printed text is what the
client hashes. Written from the guide, apart from the client's book checksum, and pinned by
the guide's worked example.

Market liquidity (the synthetic or replayed market) rests as orders too; their internal ids
are printed in Kraken's id shape (``l3_order_id``).

This module owns the checksum, the per-(symbol, depth) view and its frames. It reads a
``Book``; it never changes one.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.kraken.instruments import Instrument
from bot.sim.book_stream import format_number
from bot.sim.matching import Book, Order
from bot.sim.ws_common import rfc3339_ns

__all__ = [
    "LEVEL3_DEPTHS",
    "Level3View",
    "book_checksum",
    "l3_checksum",
    "l3_checksum_text",
    "l3_order_id",
]

LEVEL3_DEPTHS: Final = (10, 100, 1000)
_TOP: Final = 10
_SIDES: Final = ("bid", "ask")
_B36: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

OrderText = tuple[str, str]
"""One order as printed: (``limit_price``, ``order_qty``)."""


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def l3_checksum_text(
    asks: Iterable[Iterable[OrderText]], bids: Iterable[Iterable[OrderText]]
) -> str:
    """The string the guide hashes: ``asks`` levels low to high, then ``bids`` high to low
    (the callers pass the top 10 of each), every order of a level in queue order."""
    parts = []
    for side in (asks, bids):
        for level in side:
            for price, qty in level:
                parts.append(_digits(price) + _digits(qty))
    return "".join(parts)


def l3_checksum(asks: Iterable[Iterable[OrderText]], bids: Iterable[Iterable[OrderText]]) -> int:
    """CRC32 (unsigned) of ``l3_checksum_text``."""
    return zlib.crc32(l3_checksum_text(asks, bids).encode()) & 0xFFFFFFFF


def l3_order_id(txid: str) -> str:
    """The id a level3 subscriber sees: user orders keep theirs; the market's internal ids
    (``M123``) are printed in Kraken's shape (``OM0000-00000-00003F``), one per order."""
    if not (txid.startswith("M") and txid[1:].isdigit()):
        return txid
    n, digits = int(txid[1:]), []
    while n:
        n, r = divmod(n, 36)
        digits.append(_B36[r])
    s = "M" + "".join(reversed(digits)).rjust(15, "0")
    return f"O{s[:5]}-{s[5:10]}-{s[10:]}"


@dataclass(slots=True)
class _Held:
    """One resting order as the subscriber holds it."""

    order_id: str
    qty: int
    since: int  # ns: when it took its place in the queue


@dataclass(slots=True)
class _Side:
    levels: dict[int, list[_Held]] = field(default_factory=dict)  # price -> queue


class Level3View:
    """What the depth-N subscribers of one symbol hold, and the frames that keep them so.

    ``snapshot`` prints the current view; ``update(book, changed, now_ns)`` moves the view
    to the book after one exchange call (``changed``: the levels that call touched, as
    ``(side, price)``) and returns the update frame, or None when the subscriber's view did
    not change. The checksum is the caller's (one per symbol and call, for every depth)."""

    def __init__(self, instrument: Instrument, depth: int, book: Book) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.depth = depth
        self._pp, self._qp = instrument.price_precision, instrument.qty_precision
        self._sides = {side: _Side() for side in _SIDES}
        for side in _SIDES:
            for price, _ in book.depth(side, depth):
                self._sides[side].levels[price] = [_held(o) for o in book.queue(side, price)]

    # -- frames ---------------------------------------------------------------------------
    def _order(self, held: _Held, price: int, event: str | None = None) -> str:
        head = f'{{"event":"{event}",' if event is not None else "{"
        text = f'{head}"order_id":"{held.order_id}","limit_price":{format_number(price, self._pp)}'
        if event != "delete":
            text += f',"order_qty":{format_number(held.qty, self._qp)}'
        return text + f',"timestamp":"{rfc3339_ns(held.since)}"}}'

    def _frame(
        self, kind: str, bids: list[str], asks: list[str], checksum: int, now_ns: int
    ) -> bytes:
        return (
            f'{{"channel":"level3","type":"{kind}","data":[{{"symbol":"{self.symbol}",'
            f'"checksum":{checksum},"bids":[{",".join(bids)}],"asks":[{",".join(asks)}],'
            f'"timestamp":"{rfc3339_ns(now_ns)}"}}]}}'
        ).encode()

    def snapshot(self, checksum: int, now_ns: int) -> bytes:
        out: dict[str, list[str]] = {}
        for side in _SIDES:
            levels = self._sides[side].levels
            prices = sorted(levels, reverse=side == "bid")
            out[side] = [self._order(h, p) for p in prices for h in levels[p]]
        return self._frame("snapshot", out["bid"], out["ask"], checksum, now_ns)

    # -- updates --------------------------------------------------------------------------
    def update(
        self, book: Book, changed: Iterable[tuple[str, int]], checksum: int, now_ns: int
    ) -> bytes | None:
        touched: dict[str, set[int]] = {side: set() for side in _SIDES}
        for side, price in changed:
            touched[side].add(price)
        events = {side: self._update_side(book, side, touched[side], now_ns) for side in _SIDES}
        if not (events["bid"] or events["ask"]):
            return None
        return self._frame("update", events["bid"], events["ask"], checksum, now_ns)

    def _update_side(self, book: Book, side: str, touched: set[int], now_ns: int) -> list[str]:
        held = self._sides[side].levels
        top = [price for price, _ in book.depth(side, self.depth)]
        window = set(top)
        out: list[str] = []
        for price in [p for p in held if p not in window]:
            queue = held.pop(price)
            if not book.level_qty(side, price):  # the level is gone: its orders too
                out.extend(self._order(h, price, "delete") for h in queue)
            # else it was pushed out by a better level: the client truncates it
        for price in top:
            old = held.get(price)
            if old is None:  # a new level, or one scrolling in from below
                held[price] = queue = [_held(o) for o in book.queue(side, price)]
                out.extend(self._order(h, price, "add") for h in queue)
            elif price in touched:
                held[price] = self._diff(old, book.queue(side, price), price, now_ns, out)
        return out

    def _diff(
        self, old: list[_Held], orders: Sequence[Order], price: int, now_ns: int, out: list[str]
    ) -> list[_Held]:
        """Events turning ``old`` into the level's queue ``orders``; returns the new view.

        The queue is the orders that kept their place (in their old order) followed by the
        ones that joined the back; the longest prefix of the new queue that keeps the old
        order is taken as in place, the rest as joined."""
        position = {h.order_id: i for i, h in enumerate(old)}
        by_id = {h.order_id: h for h in old}
        new = [(l3_order_id(o.txid), o.qty - o.filled) for o in orders]
        k, last = 0, -1
        while k < len(new) and position.get(new[k][0], -1) > last:
            last = position[new[k][0]]
            k += 1
        in_place = {order_id for order_id, _ in new[:k]}
        out.extend(
            self._order(_stamped(h, now_ns), price, "delete")
            for h in old
            if h.order_id not in in_place
        )
        view: list[_Held] = []
        for order_id, qty in new[:k]:
            h = by_id[order_id]
            if h.qty != qty:
                h.qty = qty
                out.append(self._order(_stamped(h, now_ns), price, "modify"))
            view.append(h)
        for order_id, qty in new[k:]:
            h = _Held(order_id, qty, now_ns)
            out.append(self._order(h, price, "add"))
            view.append(h)
        return view


def _stamped(held: _Held, now_ns: int) -> _Held:
    """``held`` stamped with an event's time (for its ``modify``/``delete`` entry)."""
    return _Held(held.order_id, held.qty, now_ns)


def _held(order: Order) -> _Held:
    return _Held(l3_order_id(order.txid), order.qty - order.filled, order.opentm)


def book_checksum(book: Book, instrument: Instrument) -> int:
    """The level3 checksum of ``book`` (its top 10 levels, printed at full precision)."""
    pp, qp = instrument.price_precision, instrument.qty_precision

    def levels(side: str) -> list[list[OrderText]]:
        return [
            [
                (format_number(price, pp), format_number(o.qty - o.filled, qp))
                for o in book.queue(side, price)
            ]
            for price, _ in book.depth(side, _TOP)
        ]

    return l3_checksum(levels("ask"), levels("bid"))
