"""``BookCore.view``: ``Book.view`` made in C with no Python frame, against ``_view_py``.

Twin books take the same messages; after each, one makes its view in C, the other in
Python (the reference), at a drawn depth: the views must be equal as ``BookView``s (and
real, frozen ones), and so must each book's last copy of its levels, which the next view
reuses.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kraken.protocol import BookFrame
from bot.market.book import CORE, Book, BookView
from tests.unit.test_book import BTC

pytestmark = pytest.mark.skipif(CORE != "c", reason="KRAKENBOT_PURE_BOOK: no C core")

LEVELS = st.lists(st.tuples(st.integers(990, 1030), st.integers(0, 3)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    depth=st.sampled_from([10, 25]),
    steps=st.lists(
        st.tuples(st.integers(0, 6), LEVELS, LEVELS, st.integers(-3, 30), st.booleans()),
        min_size=1,
        max_size=20,
    ),
)
def test_the_c_view_equals_the_python_view(
    depth: int, steps: list[tuple[int, list[tuple[int, int]], list[tuple[int, int]], int, bool]]
) -> None:
    c_book, py_book = Book(BTC, depth), Book(BTC, depth)
    for kind, bids, asks, n, by_name in steps:
        for book in (c_book, py_book):
            if kind == 0:
                book.apply(BookFrame("BTC/USD", True, tuple(bids), tuple(asks), 0, f"s{n}"))
            elif kind == 1:
                book.invalidate()
            else:
                book._valid = True  # the checksum is not what is tested here
                book.apply(BookFrame("BTC/USD", False, tuple(bids), tuple(asks), 0, f"u{n}"))
        got = c_book.view(n=n) if by_name else c_book.view(n)
        want = py_book._view_py(n)
        assert type(got) is BookView and got == want and hash(got) == hash(want)
        assert repr(got) == repr(want)
        assert c_book._levels == py_book._levels
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.bids = ()  # type: ignore[misc]
    assert c_book.view() == py_book._view_py()  # the default depth


def test_unchanged_levels_are_the_last_copys_objects() -> None:
    book = Book(BTC, 10)
    book.apply(BookFrame("BTC/USD", True, ((1000, 1), (999, 2)), ((1001, 3),), 0, "s"))
    first = book.view()
    book._valid = True
    book.apply(BookFrame("BTC/USD", False, ((999, 5),), (), 0, "u"))
    second = book.view()
    assert second.bids[0] is first.bids[0] and second.bids[1] == (999, 5)
    assert second.asks is first.asks  # a side with no change is the same tuple


def test_a_subclass_is_viewed_alike_and_a_negative_depth_takes_the_python_path() -> None:
    class Mine(Book):
        __slots__ = ("extra",)

    book = Mine(BTC, 10)
    book.apply(BookFrame("BTC/USD", True, ((1000, 1), (999, 2)), ((1001, 3),), 0, "s"))
    assert book.view() == book._view_py() and book.view(-1).bids == ((1000, 1),)
    with pytest.raises(TypeError):
        book.view(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        book.view(m=2)  # type: ignore[call-arg]
