"""Marks: each book's mid, the price positions are marked at and the risk gate reads.

``Marks.mark(symbol, book)`` runs on every book change (``Daemon._on_market``): it takes
the book's mid (exact, ``Decimal``), marks the positions in ``symbol`` at it
(``PositionBook.mark``) and keeps it with the top of book it came from (best bid and ask,
the instrument), so that ``mids()`` computes a mid again only for a book whose top moved
since. A book change that leaves the top where it was (most of them) marks nothing: the mid
and so the positions' mark are the same (``PositionBook.mark`` at an unchanged price changes
no figure). An invalid book has no mid. ``live()`` is the same mids as a read-only mapping
that reads a symbol's book only when that symbol is asked for: the pre-trade stage reads it
on every command, and a command asks for one symbol's mid, whatever the number of books.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TypeVar, overload

from bot.execution.pnl import PositionBook
from bot.market.book import Book

__all__ = ["LiveMids", "Marks"]

T = TypeVar("T")


class Marks:
    """See the module docstring; ``books`` reads the public feed's books."""

    __slots__ = ("_books", "_cache", "_live", "_positions")

    def __init__(self, books: Callable[[], Mapping[str, Book]], positions: PositionBook) -> None:
        self._books, self._positions = books, positions
        # symbol -> (top prices, instrument, mid) of the book state ``mark`` last saw
        self._cache: dict[str, tuple[tuple[int, int], object, Decimal]] = {}
        self._live = LiveMids(self)

    def book(self, symbol: str) -> Book | None:
        return self._books().get(symbol)

    def mark(self, symbol: str, book: Book) -> None:
        """A book changed: its mid is the mark of positions in ``symbol``.

        Once per book message, before the strategies see it: the book's state is read
        directly (``valid`` and ``top_prices()`` without their calls), so an unchanged top
        costs no call at all (``tests/unit/test_marks_top.py`` holds it to those reads)."""
        bp, ap = book._bp, book._ap
        if not (book._valid and bp and ap):
            return
        top = (-bp[0], ap[0])  # book.top_prices()
        seen = self._cache.get(symbol)
        if seen is not None and seen[0] == top and seen[1] is book.instrument:
            return  # the same mid as the last mark: nothing to do
        mid = book.mid()
        if mid is not None:
            self._cache[symbol] = (top, book.instrument, mid)
            if mid > 0:
                self._positions.mark(symbol, mid)

    def mid(self, symbol: str) -> Decimal | None:
        """``mids()``'s entry for ``symbol`` (None: no book, or not valid), reading only
        that book (``live().get``, which the pre-trade stage reads on every order)."""
        return self._live.get(symbol)

    def live(self) -> Mapping[str, Decimal]:
        """``mids()`` as a mapping read when asked (the same object every time)."""
        return self._live

    def mids(self) -> dict[str, Decimal]:
        """The mid of every valid book (from ``mark``'s cache while a book is unchanged)."""
        mids: dict[str, Decimal] = {}
        cache = self._cache
        for symbol, book in self._books().items():
            if not book.valid:
                continue
            seen = cache.get(symbol)
            if seen is not None and seen[0] == book.top_prices() and seen[1] is book.instrument:
                mid: Decimal | None = seen[2]
            else:
                mid = book.mid()
            if mid is not None:
                mids[symbol] = mid
        return mids


class LiveMids(Mapping[str, Decimal]):
    """``Marks.mids()`` as a mapping: ``get`` and ``[]`` read one book, as they are now;
    iterating builds ``mids()``."""

    __slots__ = ("_books", "_cache", "_marks")

    def __init__(self, marks: Marks) -> None:
        self._marks = marks
        self._books, self._cache = marks._books, marks._cache  # ``Marks.mid`` reads here

    @overload
    def get(self, key: str, /) -> Decimal | None: ...
    @overload
    def get(self, key: str, /, default: Decimal | T) -> Decimal | T: ...
    def get(self, key: str, /, default: object = None) -> object:
        """The mid of ``key``'s book, reading only that book. The pre-trade stage reads it
        on every order, so the book's state is read directly, as ``Marks.mark`` reads it,
        and the mid ``mark`` kept is taken while the top is where it was
        (``tests/unit/test_marks_top.py``)."""
        book = self._books().get(key)
        if book is None or not book._valid:  # book.valid, without its call (per order)
            return default
        bp, ap = book._bp, book._ap
        if bp and ap:  # book.top_prices() is not None, and is (-bp[0], ap[0])
            seen = self._cache.get(key)
            if (
                seen is not None
                and seen[0][0] == -bp[0]
                and seen[0][1] == ap[0]
                and seen[1] is book.instrument
            ):
                return seen[2]
        mid = book.mid()
        return default if mid is None else mid

    def __getitem__(self, key: str) -> Decimal:
        mid = self.get(key)
        if mid is None:
            raise KeyError(key)
        return mid

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._marks.mids())

    def __len__(self) -> int:
        return len(self._marks.mids())
