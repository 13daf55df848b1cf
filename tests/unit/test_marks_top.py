"""``Marks.mark``: a book change that leaves the top of book where it was marks nothing again."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from bot.execution.pnl import PositionBook
from bot.kraken.protocol import BookFrame
from bot.market.book import Book
from bot.strategy.marks import Marks
from tests.unit.test_book import BTC, frame, ladder


class RecordingPositions(PositionBook):
    """A real position book that also keeps every mark it was given, in order."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.marked: list[tuple[str, Decimal]] = []

    def mark(self, symbol: str, price: Decimal) -> None:
        self.marked.append((symbol, price))
        super().mark(symbol, price)


def _setup() -> tuple[Book, Marks, RecordingPositions]:
    book = Book(BTC, 25)
    bids, asks = ladder(1000, 1010, 10)
    assert book.apply(frame(bids, asks, snapshot=True)) is None
    positions = RecordingPositions()
    return book, Marks(lambda: {"BTC/USD": book}, positions), positions


def test_a_book_change_below_the_top_marks_nothing_again() -> None:
    book, marks, positions = _setup()
    marks.mark("BTC/USD", book)
    assert positions.marked == [("BTC/USD", Decimal("100.50"))]
    bids, asks = ladder(1000, 1010, 10)
    deeper = frame(  # the 6th bid changed, the 5th ask deleted
        [(950, 5)], [(1050, 0)], expect=([*bids[:5], (950, 5), *bids[6:]], asks[:4] + asks[5:])
    )
    assert book.apply(deeper) is None and book.top_prices() == (1000, 1010)
    marks.mark("BTC/USD", book)  # the same mid: no second mark
    assert positions.marked == [("BTC/USD", Decimal("100.50"))]
    assert marks.mids() == {"BTC/USD": Decimal("100.50")}


def test_a_move_of_either_side_of_the_top_marks_the_new_mid() -> None:
    book, marks, positions = _setup()
    marks.mark("BTC/USD", book)
    bids, asks = ladder(1000, 1010, 10)
    better_ask = frame([], [(1008, 3)], expect=(bids, [(1008, 3), *asks]))
    assert book.apply(better_ask) is None
    marks.mark("BTC/USD", book)
    assert marks.mids() == {"BTC/USD": Decimal("100.40")}
    asks = [(1008, 3), *asks]
    better_bid = frame([(1004, 2)], [], expect=([(1004, 2), *bids], asks))
    assert book.apply(better_bid) is None
    marks.mark("BTC/USD", book)
    assert [p for _, p in positions.marked] == [
        Decimal("100.50"),
        Decimal("100.40"),
        Decimal("100.60"),
    ]
    assert marks.mids() == {"BTC/USD": Decimal("100.60")}


def test_mids_follow_a_book_that_moved_without_a_mark_and_skip_an_invalid_one() -> None:
    book, marks, _ = _setup()
    marks.mark("BTC/USD", book)
    bids, asks = ladder(1000, 1010, 10)
    assert book.apply(frame([(1006, 1)], [], expect=([(1006, 1), *bids], asks))) is None
    assert marks.mids() == {"BTC/USD": Decimal("100.80")}  # not the cached 100.50
    book.invalidate()
    marks.mark("BTC/USD", book)
    assert marks.mids() == {}


class ReferenceMarks(Marks):
    """``Marks.mark`` through the book's public reads (``valid``, ``top_prices``,
    ``mid``): what the hot path, which reads the book's state directly, must equal."""

    def mark(self, symbol: str, book: Book) -> None:
        if not book.valid:
            return
        top = book.top_prices()
        if top is None:
            return
        seen = self._cache.get(symbol)
        if seen is not None and seen[0] == top and seen[1] is book.instrument:
            return
        mid = book.mid()
        if mid is not None:
            self._cache[symbol] = (top, book.instrument, mid)
            if mid > 0:
                self._positions.mark(symbol, mid)

    def mid(self, symbol: str) -> Decimal | None:
        book = self._books().get(symbol)
        if book is None or not book.valid:
            return None
        seen = self._cache.get(symbol)
        if seen is not None and seen[0] == book.top_prices() and seen[1] is book.instrument:
            return seen[2]
        return book.mid()


LEVELS = st.lists(st.tuples(st.integers(990, 1020), st.integers(0, 3)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 9), LEVELS, LEVELS, st.booleans()), min_size=1, max_size=25
    )
)
def test_mark_equals_the_reference_through_the_public_reads(
    steps: list[tuple[int, list[tuple[int, int]], list[tuple[int, int]], bool]],
) -> None:
    book = Book(BTC, 10)
    fast_positions, ref_positions = RecordingPositions(), RecordingPositions()
    fast = Marks(lambda: {"BTC/USD": book}, fast_positions)
    ref = ReferenceMarks(lambda: {"BTC/USD": book}, ref_positions)
    for kind, bids, asks, swap in steps:
        if kind == 0:  # a snapshot: sides may be empty, the top anywhere
            book.apply(BookFrame("BTC/USD", True, tuple(bids), tuple(asks), book.checksum, "s"))
            book._valid = True  # whatever its checksum: the levels are what counts here
        elif kind == 1:
            book.invalidate()
        elif kind == 2 and swap:  # a new instrument object, the same precisions
            book.instrument = dataclasses.replace(book.instrument)
        else:
            book.apply(BookFrame("BTC/USD", False, tuple(bids), tuple(asks), 0, "t"))
            book._valid = kind != 3  # an update that did or did not verify
        if kind != 5:  # else the book moved with no mark: the cached mid is stale
            fast.mark("BTC/USD", book)
            ref.mark("BTC/USD", book)
        assert fast_positions.marked == ref_positions.marked
        assert fast._cache == ref._cache
        assert fast.mids() == ref.mids() and fast.mid("BTC/USD") == ref.mid("BTC/USD")
        assert fast.live().get("BTC/USD") == ref.mid("BTC/USD")  # what the risk gate reads
