"""The simulator's ``book`` channel: exchange book changes in, Kraken v2 book frames out (pure).

Every published ``Result`` carries the changed levels of the books it touched as
``BookDelta`` tuples ``(symbol, "bid" | "ask", price, qty)`` (qty 0: the level is gone),
coalesced per level. ``BookFanout.publish`` turns them into one ``book`` update frame per
(symbol, depth) that has subscribers, built once and handed, as the same ``bytes``, to
every subscriber of that symbol and depth.

Depth-N semantics, as Kraken publishes them (KRAKEN.md §5.3, §5.4). A depth-N subscriber
holds the best N levels of each side. After a Result it gets

- every level inside its window whose quantity changed, and every new level that lands
  inside it;
- ``qty 0`` for a level deleted from inside the window;
- the levels that scroll into the window from below when deletions make room (Kraken's
  "replacement levels");
- nothing for a level pushed out of the window by an insert above it (the client
  truncates it), and nothing for changes below the window.

One ``SymbolMirror`` per symbol, a full copy of its book kept from the published deltas,
serves every depth, so nothing reads the live exchange book after the first snapshot. A
window is determined by the mirror: before a Result, the depth-N window is everything up
to the N-th level (its *edge*). So a change is visible when it is at or above the old
edge; and afterwards the new window's levels beyond the old edge, which the subscriber has
never seen, are the ones that scrolled in. The CRC32 (top 10 levels, the same for every
depth, since a window is at least 10 deep) is computed once per symbol per Result.

Frame text is written directly from scaled ints with the instrument's precisions
(``29430.2``, ``0.00100000``): exact, never through a float. Keys are in Kraken's order
(``symbol, bids, asks, checksum, timestamp``).

This module owns the mirrors, the routing of changes to depths and the frame bytes. It
knows nothing of sockets: a subscriber is any ``BookSink`` (``send_book``).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from bot.kraken.instruments import Instrument
from bot.sim.matching import BookDelta

__all__ = [
    "BOOK_DEPTHS",
    "BookFanout",
    "BookSink",
    "BookStream",
    "SymbolMirror",
    "format_number",
    "levels_formatter",
]

BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)
_TOP: Final = 10  # Kraken's checksum covers the top 10 levels of each side, at any depth
_NO_EDGE: Final = 1 << 62  # a window not yet full: every level is inside it

Levels = list[tuple[int, int]]
"""(price, qty) pairs, scaled ints, in wire order."""


class BookSink(Protocol):
    """A subscriber of book frames (a WebSocket connection)."""

    def send_book(self, symbol: str, frame: bytes, checksum: int) -> None: ...


def format_number(n: int, precision: int) -> str:
    """A scaled int as Kraken's JSON number text at full precision (``0.00100000``)."""
    if precision == 0:
        return str(n)
    digits = str(n)
    if len(digits) <= precision:
        return "0." + digits.rjust(precision, "0")
    return digits[:-precision] + "." + digits[-precision:]


def levels_formatter(price_precision: int, qty_precision: int) -> Callable[[Levels], str]:
    """``text(levels)``: the levels' JSON text, ``{"price":…,"qty":…},…``, exact."""
    pp, qp = price_precision, qty_precision
    if pp and qp:
        ps, qs = 10**pp, 10**qp
        template = '{"price":%d.%0' + str(pp) + 'd,"qty":%d.%0' + str(qp) + "d}"

        def text(levels: Levels) -> str:
            return ",".join([template % (p // ps, p % ps, q // qs, q % qs) for p, q in levels])

        return text

    def text_any(levels: Levels) -> str:
        return ",".join(
            [f'{{"price":{format_number(p, pp)},"qty":{format_number(q, qp)}}}' for p, q in levels]
        )

    return text_any


class _Side:
    """One side of a book: keys ascending from the best level (bids are negated prices),
    qty per key, and each level's checksum fragment ``b"%d%d" % (price, qty)``."""

    __slots__ = ("blob", "frag", "keys", "qty", "sign")

    def __init__(self, levels: Iterable[tuple[int, int]], sign: int) -> None:
        self.sign = sign
        self.qty = {sign * p: q for p, q in levels if q}
        self.keys = sorted(self.qty)
        self.frag = {k: b"%d%d" % (sign * k, q) for k, q in self.qty.items()}
        self.blob: bytes | None = None  # the top 10's checksum text, None when stale

    def edges(self, depths: Sequence[int]) -> list[int]:
        """Each depth's window edge: the key of its N-th level (``_NO_EDGE`` if not full)."""
        keys = self.keys
        n = len(keys)
        return [keys[d - 1] if n >= d else _NO_EDGE for d in depths]

    def apply(self, changes: Levels) -> list[bool]:
        """Apply changes (one per level); returns, per change, whether the level existed."""
        keys, qty, frag, sign = self.keys, self.qty, self.frag, self.sign
        existed: list[bool] = []
        top = self.blob is None
        for price, q in changes:
            k = sign * price
            had = k in qty
            existed.append(had)
            if not top and (len(keys) <= _TOP or k <= keys[_TOP - 1]):
                top = True
            if q:
                if not had:
                    keys.insert(bisect_left(keys, k), k)
                qty[k] = q
                frag[k] = b"%d%d" % (price, q)
            elif had:
                del qty[k], frag[k]
                del keys[bisect_left(keys, k)]
        if top:
            self.blob = None
        return existed

    def route(self, changes: Levels, existed: list[bool], depth: int, edge: int) -> Levels:
        """What a depth-``depth`` subscriber whose window ended at ``edge`` before the
        changes must receive, now that they are applied (see the module docstring)."""
        keys = self.keys
        if edge == _NO_EDGE:  # the window held the whole side: every change is visible
            out = [c for c, had in zip(changes, existed, strict=False) if c[1] or had]
        else:
            sign = self.sign
            out = [
                (p, q)
                for (p, q), had in zip(changes, existed, strict=False)
                if sign * p <= edge and (q or had)
            ]
            start = bisect_right(keys, edge)
            if start < depth:  # deletions made room: levels scroll in from below the old edge
                qty = self.qty
                out.extend([(sign * k, qty[k]) for k in keys[start:depth]])
        if out and len(keys) > depth and False in existed:
            # A level added and then pushed out of the window by the same Result need not go.
            last = self.sign * keys[depth - 1]
            if self.sign > 0:
                out = [(p, q) for p, q in out if not q or p <= last]
            else:
                out = [(p, q) for p, q in out if not q or p >= last]
        return out

    def top_text(self) -> bytes:
        blob = self.blob
        if blob is None:
            blob = self.blob = b"".join(map(self.frag.__getitem__, self.keys[:_TOP]))
        return blob

    def levels(self, n: int | None = None) -> Levels:
        qty, sign = self.qty, self.sign
        return [(sign * k, qty[k]) for k in self.keys[:n]]


class SymbolMirror:
    """A full copy of one symbol's book, kept from the published deltas.

    For the checksum each level keeps its fragment (made when the level changes) and each
    side the text of its top 10 (rebuilt only after a change at or above its 10th level).
    """

    __slots__ = ("asks", "bids", "symbol")

    def __init__(
        self, symbol: str, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]
    ) -> None:
        self.symbol = symbol
        self.bids = _Side(bids, -1)
        self.asks = _Side(asks, 1)

    def checksum(self) -> int:
        """Kraken's CRC32 of the top 10 asks (low to high) then bids (high to low)."""
        asks, bids = self.asks, self.bids
        a = asks.blob if asks.blob is not None else asks.top_text()
        b = bids.blob if bids.blob is not None else bids.top_text()
        return zlib.crc32(b, zlib.crc32(a))

    def top(self, n: int | None = None) -> tuple[Levels, Levels]:
        """``(bids, asks)``, the best ``n`` levels of each side (all if None), best first."""
        return self.bids.levels(n), self.asks.levels(n)

    def update(
        self, bids: Levels, asks: Levels, depths: Sequence[int]
    ) -> list[tuple[Levels, Levels]]:
        """Apply one Result's changes; return, per depth, the ``(bids, asks)`` to send."""
        b_edges = self.bids.edges(depths) if bids else []
        a_edges = self.asks.edges(depths) if asks else []
        b_had = self.bids.apply(bids) if bids else []
        a_had = self.asks.apply(asks) if asks else []
        out: list[tuple[Levels, Levels]] = []
        for i, depth in enumerate(depths):
            b = self.bids.route(bids, b_had, depth, b_edges[i]) if bids else []
            a = self.asks.route(asks, a_had, depth, a_edges[i]) if asks else []
            out.append((b, a))
        return out


class BookStream:
    """The book frames of one (symbol, depth), shared by all its subscribers."""

    __slots__ = ("_head", "_text", "depth", "instrument", "sinks", "symbol")

    def __init__(self, instrument: Instrument, depth: int) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.depth = depth
        self.sinks: dict[int, BookSink] = {}
        self._text = levels_formatter(instrument.price_precision, instrument.qty_precision)
        self._head = f'{{"symbol":"{instrument.symbol}","bids":['

    def render(
        self, bids: Levels, asks: Levels, checksum: int, timestamp: str, *, snapshot: bool = False
    ) -> bytes:
        text = self._text
        b = text(bids) if bids else ""
        a = text(asks) if asks else ""
        kind = "snapshot" if snapshot else "update"
        return (
            f'{{"channel":"book","type":"{kind}","data":[{self._head}{b}],"asks":[{a}],'
            f'"checksum":{checksum},"timestamp":"{timestamp}"}}]}}'
        ).encode()


class BookFanout:
    """Every (symbol, depth) stream of one venue, fed from the bus.

    ``source(symbol)`` returns the exchange's whole book as ``(bids, asks)``, best first;
    it is read once, when a symbol gets its first subscriber, to seed the mirror. From then
    on the mirror follows ``publish``, which must see every Result in order.
    ``timestamp(ns)`` writes a frame's timestamp (once per Result, only if a frame is sent).
    """

    def __init__(
        self,
        instruments: Callable[[str], Instrument | None],
        source: Callable[[str], tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]]],
        timestamp: Callable[[int], str],
    ) -> None:
        self._instruments = instruments
        self._source = source
        self._timestamp = timestamp
        self._mirrors: dict[str, SymbolMirror] = {}
        self._streams: dict[str, dict[int, BookStream]] = {}
        self._depths: dict[str, tuple[int, ...]] = {}
        self.frames_built = 0

    def stream(self, symbol: str, depth: int) -> BookStream | None:
        return self._streams.get(symbol, {}).get(depth)

    def mirror(self, symbol: str) -> SymbolMirror | None:
        return self._mirrors.get(symbol)

    def subscribe(
        self, sink: BookSink, key: int, symbol: str, depth: int, timestamp: str
    ) -> tuple[bytes, int]:
        """Add ``sink`` (identified by ``key``) to a stream; returns its snapshot frame and
        the checksum in it."""
        inst = self._instruments(symbol)
        if inst is None:
            raise KeyError(symbol)
        mirror = self._mirrors.get(symbol)
        if mirror is None:
            bids, asks = self._source(symbol)
            mirror = self._mirrors[symbol] = SymbolMirror(symbol, bids, asks)
        by_depth = self._streams.setdefault(symbol, {})
        stream = by_depth.get(depth)
        if stream is None:
            stream = by_depth[depth] = BookStream(inst, depth)
            self._depths[symbol] = tuple(by_depth)
        stream.sinks[key] = sink
        checksum = mirror.checksum()
        bids, asks = mirror.top(depth)
        return stream.render(bids, asks, checksum, timestamp, snapshot=True), checksum

    def unsubscribe(self, key: int, symbol: str, depth: int) -> bool:
        by_depth = self._streams.get(symbol)
        stream = by_depth.get(depth) if by_depth else None
        if stream is None or stream.sinks.pop(key, None) is None:
            return False
        if not stream.sinks:
            self._drop(symbol, depth)
        return True

    def unsubscribe_all(self, key: int) -> None:
        for symbol, by_depth in list(self._streams.items()):
            for depth, stream in list(by_depth.items()):
                if stream.sinks.pop(key, None) is not None and not stream.sinks:
                    self._drop(symbol, depth)

    def _drop(self, symbol: str, depth: int) -> None:
        by_depth = self._streams[symbol]
        del by_depth[depth]
        if by_depth:
            self._depths[symbol] = tuple(by_depth)
        else:
            del self._streams[symbol], self._mirrors[symbol], self._depths[symbol]

    def publish(self, deltas: Sequence[BookDelta], now_ns: int) -> int:
        """Feed one Result's book changes (published at ``now_ns``); send the frames;
        return how many were built."""
        mirrors = self._mirrors
        if not mirrors or not deltas:
            return 0
        first = deltas[0][0]
        if first in mirrors:  # the common case: one symbol's changes
            bids: Levels = []
            asks: Levels = []
            for symbol, side, price, qty in deltas:
                if symbol != first:
                    break
                if side == "ask":
                    asks.append((price, qty))
                else:
                    bids.append((price, qty))
            else:
                return self._publish(first, bids, asks, now_ns)
        changed: dict[str, tuple[Levels, Levels]] = {}
        for symbol, side, price, qty in deltas:
            if symbol in mirrors:
                sides = changed.get(symbol)
                if sides is None:
                    sides = changed[symbol] = ([], [])
                sides[side == "ask"].append((price, qty))
        return sum(self._publish(s, b, a, now_ns) for s, (b, a) in changed.items())

    def _publish(self, symbol: str, bids: Levels, asks: Levels, now_ns: int) -> int:
        mirror = self._mirrors[symbol]
        routed = mirror.update(bids, asks, self._depths[symbol])
        checksum = -1
        timestamp = ""
        built = 0
        for stream, (b, a) in zip(self._streams[symbol].values(), routed, strict=False):
            if not (b or a):
                continue
            if checksum < 0:
                checksum = mirror.checksum()
                timestamp = self._timestamp(now_ns)
            frame = stream.render(b, a, checksum, timestamp)
            built += 1
            for sink in stream.sinks.values():
                sink.send_book(symbol, frame, checksum)
        self.frames_built += built
        return built
