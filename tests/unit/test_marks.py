"""``Marks``: the live mids the pre-trade stage reads are ``mids()``, read one book at a time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal

import pytest

from bot.core.clock import FakeClock
from bot.execution.pnl import PositionBook
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import BookFrame
from bot.market.book import Book
from bot.strategy.marks import Marks


def instrument(symbol: str) -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(symbol, base, quote, price_precision=1, qty_precision=8)


def loaded(symbol: str, best_bid: int, ts: str = "s") -> Book:
    book = Book(instrument(symbol), 10)
    bids = tuple((best_bid - 7 * i, 10**6 + i) for i in range(3))
    asks = tuple((best_bid + 5 + 5 * i, 2 * 10**6 + i) for i in range(3))
    crc = book_checksum(sorted(asks), sorted(bids, reverse=True))
    assert book.apply(BookFrame(symbol, True, bids, asks, crc, ts)) is None
    return book


class CountingBooks(Mapping[str, Book]):
    """The feed's books, recording which symbols were read and whether all were walked."""

    def __init__(self, books: dict[str, Book]) -> None:
        self._books = books
        self.read: list[str] = []
        self.walked = 0

    def __getitem__(self, symbol: str) -> Book:
        self.read.append(symbol)
        return self._books[symbol]

    def __iter__(self) -> Iterator[str]:
        self.walked += 1
        return iter(self._books)

    def __len__(self) -> int:
        return len(self._books)


def marks_over(books: Mapping[str, Book]) -> Marks:
    return Marks(lambda: books, PositionBook(FakeClock()))


def test_live_mids_equal_mids_for_valid_invalid_changed_and_missing_books() -> None:
    books = {
        "BTC/USD": loaded("BTC/USD", 500_000),
        "ETH/USD": loaded("ETH/USD", 30_000),
        "SOL/USD": loaded("SOL/USD", 1_500),
        "XRP/USD": Book(instrument("XRP/USD"), 10),  # never loaded: not valid, no mid
    }
    marks = marks_over(books)
    for symbol in ("BTC/USD", "ETH/USD"):
        marks.mark(symbol, books[symbol])
    books["ETH/USD"] = loaded("ETH/USD", 31_000, ts="later")  # changed since it was marked
    books["SOL/USD"].invalidate()
    live = marks.live()
    want = marks.mids()
    assert want == {"BTC/USD": Decimal("50000.25"), "ETH/USD": Decimal("3100.25")}
    assert dict(live) == want and len(live) == 2
    for symbol in (*books, "ADA/USD"):
        assert live.get(symbol) == want.get(symbol)
        assert (symbol in live) is (symbol in want)
    assert live["BTC/USD"] == Decimal("50000.25")
    with pytest.raises(KeyError):
        live["SOL/USD"]
    assert live.get("XRP/USD", Decimal(0)) == Decimal(0)
    assert marks.live() is live  # one object, read when asked


def test_a_symbols_live_mid_reads_that_book_only() -> None:
    """The pre-trade stage asks for one symbol's mid per command: however many books the
    daemon follows, that reads one of them, and walks none."""
    books = CountingBooks({f"C{i}/USD": loaded(f"C{i}/USD", 1_000 + 10 * i) for i in range(300)})
    marks = marks_over(books)
    assert marks.live().get("C7/USD") == Decimal("107.25")
    assert (books.read, books.walked) == (["C7/USD"], 0)
