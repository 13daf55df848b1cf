"""Book against a plain reference model (dict + sort + truncate) on random message streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import BookFrame
from bot.market.book import Book, BookApplied, BookMismatch

INST = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)

Levels = list[tuple[int, int]]


@dataclass
class Reference:
    """Kraken's maintenance rules, written the slow obvious way."""

    depth: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    valid: bool = False

    def apply(self, snapshot: bool, bids: Levels, asks: Levels) -> None:
        if snapshot:
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.bids = dict(self.sorted_bids()[: self.depth])
        self.asks = dict(self.sorted_asks()[: self.depth])

    def sorted_bids(self) -> Levels:
        return sorted(self.bids.items(), reverse=True)

    def sorted_asks(self) -> Levels:
        return sorted(self.asks.items())

    def checksum(self) -> int:
        return book_checksum(self.sorted_asks()[:10], self.sorted_bids()[:10])


# Few distinct prices, so updates hit existing levels, delete them and push levels out.
prices = st.integers(1, 60)
qtys = st.one_of(st.just(0), st.integers(1, 10**12))


def message(snapshot: bool, size: int) -> st.SearchStrategy[tuple[bool, Levels, Levels, int]]:
    levels = st.lists(st.tuples(prices, qtys), max_size=size)
    # The last item: 0 -> send a corrupt checksum.
    return st.tuples(st.just(snapshot), levels, levels, st.integers(0, 9))


# Snapshots can be deeper than the book; updates carry a few levels, like Kraken's.
messages = st.lists(message(True, 40) | message(False, 6) | message(False, 6), max_size=40)


@settings(max_examples=300, deadline=None)
@given(depth=st.sampled_from([10, 11, 25]), stream=messages)
def test_book_agrees_with_reference(
    depth: int, stream: list[tuple[bool, Levels, Levels, int]]
) -> None:
    book = Book(INST, depth)
    ref = Reference(depth)
    for snapshot, bids, asks, corrupt in stream:
        if not snapshot and not ref.valid:
            ignored = book.ignored
            result = book.apply(BookFrame("BTC/USD", False, tuple(bids), tuple(asks), 0, "t"))
            assert result is None
            assert book.ignored == ignored + 1
        else:
            ref.apply(snapshot, bids, asks)
            truth = ref.checksum()
            sent = truth ^ 0x5A5A if corrupt == 0 else truth
            result = book.apply(BookFrame("BTC/USD", snapshot, tuple(bids), tuple(asks), sent, "t"))
            if sent == truth:
                assert result is None
                ref.valid = True
            else:
                assert result == BookMismatch("BTC/USD", sent, truth)
                ref.valid = False
            assert book.checksum == truth
        assert book.valid == ref.valid
        assert book.bids() == ref.sorted_bids()
        assert book.asks() == ref.sorted_asks()
        best_bid = ref.sorted_bids()[0] if ref.bids else None
        best_ask = ref.sorted_asks()[0] if ref.asks else None
        assert book.best_bid() == best_bid
        assert book.best_ask() == best_ask
        for price in (0, 15, 30, 61):
            assert book.size_to_price("bid", price) == sum(
                q for p, q in ref.bids.items() if p >= price
            )
            assert book.size_to_price("ask", price) == sum(
                q for p, q in ref.asks.items() if p <= price
            )


def _wire(levels: Levels) -> list[dict[str, Any]]:
    """Levels as orjson decodes them: floats, or ints for whole numbers."""
    out: list[dict[str, Any]] = []
    for price, qty in levels:
        p: Any = price // 10 if price % 10 == 0 else price / 10
        q: Any = qty // 10**8 if qty % 10**8 == 0 else qty / 10**8
        out.append({"price": p, "qty": q})
    return out


@settings(max_examples=300, deadline=None)
@given(depth=st.sampled_from([10, 11, 25]), stream=messages)
def test_the_fused_path_agrees_with_the_ordinary_one(
    depth: int, stream: list[tuple[bool, Levels, Levels, int]]
) -> None:
    """``apply_wire_update`` (decoded JSON levels) against ``apply`` (BookFrame), side by
    side on the same random streams, corrupt checksums included."""
    fused = Book(INST, depth)
    plain = Book(INST, depth)
    ref = Reference(depth)
    for snapshot, bids, asks, corrupt in stream:
        if snapshot or ref.valid:
            ref.apply(snapshot, bids, asks)
        truth = ref.checksum()
        sent = truth ^ 0x5A5A if corrupt == 0 else truth
        message = BookFrame("BTC/USD", snapshot, tuple(bids), tuple(asks), sent, "t")
        expected = plain.apply(message)
        if snapshot:
            assert fused.apply(message) == expected
        else:
            applied = fused.apply_wire_update(_wire(bids), _wire(asks), sent, "t")
            assert applied == BookApplied(fused, False, expected)
        if expected is None and (snapshot or ref.valid):
            ref.valid = True
        elif expected is not None:
            ref.valid = False
        assert fused.valid == plain.valid == ref.valid
        assert fused.checksum == plain.checksum
        assert (fused.ignored, fused.mismatches) == (plain.ignored, plain.mismatches)
        assert fused.bids() == plain.bids() and fused.asks() == plain.asks()
        if fused.valid:
            assert fused.bids() == ref.sorted_bids() and fused.asks() == ref.sorted_asks()
