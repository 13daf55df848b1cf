"""``Marks.mark``: a book change that leaves the top of book where it was marks nothing again."""

from __future__ import annotations

from decimal import Decimal

from bot.core.clock import FakeClock
from bot.execution.pnl import PositionBook
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
