"""The L2 book: snapshot, updates, truncation, checksum verification, resync, views."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from bot.core.errors import ChecksumMismatch, ConfigError, ProtocolError
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument, PrecisionLost
from bot.kraken.protocol import BookFrame
from bot.market.book import Book, BookApplied, BookMismatch, BookView

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
Levels = list[tuple[int, int]]


def frame(
    bids: Levels,
    asks: Levels,
    *,
    snapshot: bool = False,
    expect: tuple[Levels, Levels] | None = None,
    checksum: int | None = None,
    symbol: str = "BTC/USD",
) -> BookFrame:
    """A frame whose checksum is that of the book ``expect`` (bids, asks) says results.

    ``expect`` is written out by hand in each test; for a snapshot it defaults to the
    frame's own levels sorted.
    """
    if checksum is None:
        if expect is None:
            assert snapshot
            expect = (sorted(bids, reverse=True), sorted(asks))
        checksum = book_checksum(expect[1], expect[0])
    return BookFrame(symbol, snapshot, tuple(bids), tuple(asks), checksum, "2023-07-30T15:29:58Z")


def ladder(best_bid: int, best_ask: int, n: int, step: int = 10) -> tuple[Levels, Levels]:
    bids = [(best_bid - i * step, 100 + i) for i in range(n)]
    asks = [(best_ask + i * step, 200 + i) for i in range(n)]
    return bids, asks


def loaded(depth: int = 10, n: int = 10) -> tuple[Book, Levels, Levels]:
    book = Book(BTC, depth)
    bids, asks = ladder(1000, 1010, n)
    assert book.apply(frame(bids, asks, snapshot=True)) is None
    return book, bids, asks


def test_new_book_is_invalid_and_ignores_updates() -> None:
    book = Book(BTC)
    assert not book.valid
    assert book.apply(frame([(1000, 1)], [], expect=([(1000, 1)], []))) is None
    assert book.ignored == 1
    assert book.bids() == [] and book.asks() == []


def test_snapshot_sorts_and_validates() -> None:
    book = Book(BTC)
    bids = [(990, 3), (1000, 1), (995, 2)]
    asks = [(1020, 6), (1010, 4), (1015, 5)]
    assert book.apply(frame(bids, asks, snapshot=True)) is None
    assert book.valid
    assert book.bids() == [(1000, 1), (995, 2), (990, 3)]
    assert book.asks() == [(1010, 4), (1015, 5), (1020, 6)]
    assert book.checksum == book_checksum(book.asks(), book.bids())
    assert book.timestamp == "2023-07-30T15:29:58Z"


def test_snapshot_replaces_the_book() -> None:
    book, _, _ = loaded()
    assert book.apply(frame([(500, 1)], [(600, 2)], snapshot=True)) is None
    assert book.top() == ([(500, 1)], [(600, 2)])


def test_snapshot_deeper_than_the_subscription_is_truncated() -> None:
    book = Book(BTC, 10)
    bids, asks = ladder(1000, 1010, 12)
    assert book.apply(frame(bids, asks, snapshot=True)) is None
    assert book.top(100) == (bids[:10], asks[:10])


def test_snapshot_with_bad_checksum_is_a_mismatch() -> None:
    book = Book(BTC)
    bids, asks = ladder(1000, 1010, 10)
    good = frame(bids, asks, snapshot=True)
    bad = good._replace(checksum=good.checksum ^ 1)
    result = book.apply(bad)
    assert result == BookMismatch("BTC/USD", good.checksum ^ 1, good.checksum)
    assert not book.valid
    assert book.mismatches == 1


def test_update_modifies_inserts_and_deletes() -> None:
    book, bids, asks = loaded(depth=25)
    update = frame(
        [(1000, 7), (970, 0), (1002, 9)],  # modify best, delete 4th, insert new best
        [(1010, 0), (1013, 8)],  # delete best ask, insert between
        expect=(
            [(1002, 9), (1000, 7), *bids[1:3], *bids[4:]],
            [(1013, 8), *asks[1:]],
        ),
    )
    assert book.apply(update) is None
    assert book.valid
    assert book.bids(3) == [(1002, 9), (1000, 7), (990, 101)]
    assert book.asks(2) == [(1013, 8), (1020, 201)]
    assert (970, 103) not in book.bids()
    assert len(book.bids()) == 10 and len(book.asks()) == 10


def test_delete_of_an_absent_level_changes_nothing() -> None:
    book, bids, asks = loaded()
    assert book.apply(frame([(1001, 0)], [(5000, 0)], expect=(bids, asks))) is None
    assert book.top() == (bids, asks)


def test_same_level_updated_several_times_in_one_message() -> None:
    book, bids, asks = loaded(depth=25)
    # Processed in sequence: set, delete, set again -> the last quantity stands.
    update = frame([(1000, 5), (1000, 0), (1000, 7)], [], expect=([(1000, 7), *bids[1:]], asks))
    assert book.apply(update) is None
    assert book.best_bid() == (1000, 7)
    # ... and set then delete -> gone.
    update = frame([], [(1011, 3), (1011, 0)], expect=([(1000, 7), *bids[1:]], asks))
    assert book.apply(update) is None
    assert 1011 not in [p for p, _ in book.asks()]


def test_truncation_at_depth_10() -> None:
    book, bids, asks = loaded(depth=10)
    # An insert into the middle makes 11 bids: the 11th worst must go (Kraken sends no
    # delete for it).
    update = frame([(995, 50)], [], expect=([*bids[:1], (995, 50), *bids[1:9]], asks))
    assert book.apply(update) is None
    assert len(book.bids()) == 10
    assert bids[-1] not in book.bids()
    # Deleting the best bid does not bring the dropped level back; Kraken republishes it.
    after_delete = [(995, 50), *bids[1:9]]
    assert book.apply(frame([(1000, 0)], [], expect=(after_delete, asks))) is None
    assert book.bids() == after_delete
    assert book.apply(frame([bids[-1]], [], expect=([*after_delete, bids[-1]], asks))) is None


def test_truncation_at_depth_25_and_deep_levels_rising_into_the_checksum() -> None:
    book, bids, asks = loaded(depth=25, n=25)
    # A new best ask pushes the 25th ask out.
    new_asks = [(1005, 9), *asks[:24]]
    assert book.apply(frame([], [(1005, 9)], expect=(bids, new_asks))) is None
    assert book.asks() == new_asks
    # An update deep in the book leaves the top 10 (and so the checksum) unchanged.
    crc = book.checksum
    deep = bids[20][0]
    bids[20] = (deep, 4242)
    assert book.apply(frame([(deep, 4242)], [], expect=(bids, new_asks))) is None
    assert book.checksum == crc
    # Deleting three top levels lifts levels 11-13, set deep, into the checksummed top 10.
    update = frame([(p, 0) for p, _ in bids[:3]], [], expect=(bids[3:], new_asks))
    assert book.apply(update) is None
    assert book.bids(10) == bids[3:13]
    assert book.checksum != crc
    # A deep level that rose, then changes, must be reflected too.
    bids[12] = (bids[12][0], 1)
    assert book.apply(frame([bids[12]], [], expect=(bids[3:], new_asks))) is None


def test_mismatch_invalidates_until_next_snapshot() -> None:
    book, bids, asks = loaded()
    bad = frame([(1000, 5)], [], checksum=12345)
    result = book.apply(bad)
    assert isinstance(result, BookMismatch)
    assert result.symbol == "BTC/USD"
    assert result.expected == 12345
    assert result.computed == book_checksum(asks, [(1000, 5), *bids[1:]])
    assert not book.valid
    # Updates to an invalid book are ignored, whatever their checksum.
    assert book.apply(frame([(1000, 6)], [], checksum=1)) is None
    assert book.apply(frame([(1000, 6)], [], checksum=2)) is None
    assert book.ignored == 2
    assert book.mismatches == 1
    assert book.best_bid() == (1000, 5)  # the last state applied, not the ignored ones
    # A snapshot brings the book back.
    assert book.apply(frame(bids, asks, snapshot=True)) is None
    assert book.valid
    assert book.apply(frame([(1000, 6)], [], expect=([(1000, 6), *bids[1:]], asks))) is None
    assert book.best_bid() == (1000, 6)


def test_mismatch_as_error() -> None:
    error = BookMismatch("BTC/USD", 1, 2).error()
    assert isinstance(error, ChecksumMismatch)
    assert isinstance(error, ProtocolError)
    assert (error.symbol, error.expected, error.computed) == ("BTC/USD", 1, 2)


def test_invalidate_and_reset() -> None:
    book, bids, asks = loaded()
    book.invalidate()
    assert not book.valid
    assert book.apply(frame([(1000, 6)], [], expect=([(1000, 6), *bids[1:]], asks))) is None
    assert book.ignored == 1
    assert book.best_bid() == bids[0]
    book.reset()
    assert not book.valid
    assert book.top() == ([], [])
    assert book.checksum == 0


def test_frame_for_another_symbol_is_refused() -> None:
    book, _, _ = loaded()
    with pytest.raises(ProtocolError):
        book.apply(frame([(1, 1)], [], snapshot=True, symbol="ETH/USD"))


@pytest.mark.parametrize("depth", [0, 1, 9])
def test_depth_below_the_checksums_is_refused(depth: int) -> None:
    with pytest.raises(ConfigError):
        Book(BTC, depth)


# -- the fused path: apply_wire_update --------------------------------------------------


def wire(levels: Levels) -> list[dict[str, Any]]:
    """Levels as orjson decodes Kraken's JSON: BTC/USD numbers as floats (ints if whole)."""
    out: list[dict[str, Any]] = []
    for price, qty in levels:
        p: Any = price // 10 if price % 10 == 0 else price / 10
        q: Any = qty // 10**8 if qty % 10**8 == 0 else qty / 10**8
        out.append({"price": p, "qty": q})
    return out


def wire_apply(book: Book, f: BookFrame) -> BookApplied:
    assert not f.snapshot
    return book.apply_wire_update(wire(list(f.bids)), wire(list(f.asks)), f.checksum, f.timestamp)


def test_wire_update_ends_where_apply_ends() -> None:
    """Every update kind, at depth 10 and 25, against the ordinary path on a twin book."""
    for depth in (10, 25):
        fused, bids, asks = loaded(depth=depth, n=depth)
        plain, _, _ = loaded(depth=depth, n=depth)
        updates = [
            ([(1000, 7), (970, 0), (1002, 9)], [(1010, 0), (1013, 8)]),  # set, delete, insert
            ([(1001, 5), (1001, 0), (1001, 6)], []),  # one level three times
            ([], [(1011, 3), (1011, 0)]),  # set then delete
            ([(5, 0)], [(10**6, 0)]),  # deletes of absent levels
            ([(999, 1), (998, 2), (997, 3)], []),  # inserts that push levels out
            ([(p, 0) for p, _ in bids[:4]], [(p, 0) for p, _ in asks[:4]]),  # deep rises
            ([], [(1005, 123456789)]),  # a new best ask with a fractional qty
        ]
        for new_bids, new_asks in updates:
            before = (plain.bids(), plain.asks())
            plain_result = plain.apply(frame(new_bids, new_asks, checksum=0))
            assert plain_result is not None  # checksum 0: learn the true CRC from it
            truth = plain_result.computed
            plain.reset()
            plain.apply(frame(before[0], before[1], snapshot=True))
            assert plain.apply(frame(new_bids, new_asks, checksum=truth)) is None
            applied = wire_apply(fused, frame(new_bids, new_asks, checksum=truth))
            assert applied == BookApplied(fused, False, None)
            assert fused.top(depth) == plain.top(depth)
            assert fused.checksum == plain.checksum == truth
            assert fused.timestamp == "2023-07-30T15:29:58Z"
        assert fused.valid and fused.mismatches == 0


def test_wire_update_result_is_one_object_per_book_and_mismatches_are_reported() -> None:
    book, bids, asks = loaded()
    ok = wire_apply(book, frame([(1000, 5)], [], expect=([(1000, 5), *bids[1:]], asks)))
    again = wire_apply(book, frame([(1000, 6)], [], expect=([(1000, 6), *bids[1:]], asks)))
    assert ok is again and ok.book is book and ok.mismatch is None and not ok.snapshot
    bad = wire_apply(book, frame([(1000, 7)], [], checksum=99))
    assert bad.mismatch == BookMismatch("BTC/USD", 99, book_checksum(asks, book.bids()))
    assert not book.valid and book.mismatches == 1
    ignored = wire_apply(book, frame([(1000, 8)], [], checksum=1))
    assert ignored is ok and book.ignored == 1 and book.best_bid() == (1000, 7)


@pytest.mark.parametrize(
    "level",
    [
        {"price": 100.05, "qty": 1.0},  # more decimals than the price precision
        {"price": 100.0, "qty": 0.123456789},  # ... or the qty's
        {"price": 1e20, "qty": 1.0},  # beyond what a float carries exactly
        {"price": -100.0, "qty": 1.0},
        {"price": 0.0, "qty": 1.0},
        {"price": 0, "qty": 1.0},
        {"price": 100.0, "qty": -1.0},
        {"price": 100.0, "qty": -1},
        {"price": True, "qty": 1.0},
        {"price": 100.0, "qty": False},
        {"price": "100.0", "qty": 1.0},
        {"price": None, "qty": 1.0},
    ],
)
def test_wire_numbers_it_cannot_prove_exact_raise_precision_lost(level: dict[str, Any]) -> None:
    book, bids, asks = loaded()
    with pytest.raises(PrecisionLost):
        book.apply_wire_update([level], [], 1, "t")
    assert book.valid and book.top() == (bids, asks)  # nothing was applied


@pytest.mark.parametrize(
    ("new_bids", "new_asks", "error"),
    [
        ([{"price": 100.0}], [], KeyError),
        ([[100.0, 1.0]], [], TypeError),
        ({"price": 100.0, "qty": 1.0}, [], TypeError),
        ("x", [], TypeError),
        ([], None, TypeError),
        ([], {}, TypeError),
        ([], 7, TypeError),
    ],
)
def test_wire_levels_of_the_wrong_shape_raise(new_bids: Any, new_asks: Any, error: type) -> None:
    book, _, _ = loaded()
    with pytest.raises(error):
        book.apply_wire_update(new_bids, new_asks, 1, "t")


def test_a_failure_after_part_of_the_update_leaves_caches_consistent() -> None:
    """The exact frame applied after a partial wire update ends as if applied once.

    The asks' delete is applied before the bid fails; applying it again is a no-op that
    changes no fragment, so only a checksum cache brought up to date gives the right CRC.
    """
    book, _, _ = loaded(depth=25, n=20)
    twin, _, _ = loaded(depth=25, n=20)
    new_bids, new_asks = [(995, 5)], [(1010, 0)]
    with pytest.raises(PrecisionLost):
        book.apply_wire_update([{"price": 99.5, "qty": 1e-9}], wire(new_asks), 1, "t")
    assert book.valid
    truth = twin.apply(frame(new_bids, new_asks, checksum=0))
    assert truth is not None
    assert book.apply(frame(new_bids, new_asks, checksum=truth.computed)) is None
    assert book.top(25) == twin.top(25)
    assert book.checksum == twin.checksum == truth.computed


# -- views ---------------------------------------------------------------------------------


def test_views_of_an_empty_book() -> None:
    book = Book(BTC)
    assert book.best_bid() is None and book.best_ask() is None
    assert book.spread() is None and book.mid() is None and book.microprice() is None
    assert book.microprice_fraction() is None
    assert not book.is_crossed()
    assert book.size_to_price("bid", 1) == 0 and book.size_to_price("ask", 10**9) == 0
    view = book.view()
    assert view.best_bid() is None and view.mid() is None and view.microprice() is None


def test_best_spread_mid() -> None:
    book = Book(BTC)
    book.apply(frame([(294302, 18967538)], [(294303, 825215653)], snapshot=True))
    assert book.best_bid() == (294302, 18967538)
    assert book.best_ask() == (294303, 825215653)
    assert book.spread() == 1
    assert book.mid() == Decimal("29430.25")  # exact, one digit past the price precision
    assert not book.is_crossed()


def test_microprice_is_exact() -> None:
    book = Book(BTC)
    # bid 100.0 x 1, ask 101.0 x 3: (100*3 + 101*1) / 4 = 100.25
    book.apply(frame([(1000, 1)], [(1010, 3)], snapshot=True))
    assert book.microprice() == Decimal("100.25")
    assert book.microprice_fraction() == Fraction(401, 4)
    # bid 100.0 x 1, ask 100.1 x 2: (1000*2 + 1001*1) / 3 / 10 = 100.0333...
    book.apply(frame([(1000, 1)], [(1001, 2)], snapshot=True))
    exact = Fraction(3001, 30)
    assert book.microprice_fraction() == exact
    micro = book.microprice()
    assert micro is not None
    assert micro == Decimal("100.0333333333333333333333333333333")  # 34 significant digits
    assert abs(Fraction(micro) - exact) < Fraction(1, 10**31)


def test_crossed_and_locked_books() -> None:
    book = Book(BTC)
    book.apply(frame([(1010, 1)], [(1000, 1)], snapshot=True))
    assert book.is_crossed()
    assert book.spread() == -10
    book.apply(frame([(1000, 1)], [(1000, 1)], snapshot=True))
    assert book.is_crossed()  # locked counts
    assert book.spread() == 0
    book.apply(frame([(999, 1)], [(1000, 1)], snapshot=True))
    assert not book.is_crossed()
    book.apply(frame([(999, 1)], [], snapshot=True))
    assert not book.is_crossed()


def test_top_and_sides() -> None:
    book, bids, asks = loaded(depth=25, n=20)
    assert book.top(3) == (bids[:3], asks[:3])
    assert book.top() == (bids[:10], asks[:10])
    assert book.bids() == bids and book.asks() == asks
    assert book.bids(100) == bids
    assert book.top(0) == ([], [])


def test_size_to_price() -> None:
    book, bids, asks = loaded(n=5)  # bids 1000..960 (qty 100..104), asks 1010..1050 (200..204)
    assert book.size_to_price("ask", 1010) == 200
    assert book.size_to_price("ask", 1025) == 200 + 201
    assert book.size_to_price("ask", 1009) == 0
    assert book.size_to_price("ask", 10**9) == sum(q for _, q in asks)
    assert book.size_to_price("bid", 1000) == 100
    assert book.size_to_price("bid", 975) == 100 + 101 + 102
    assert book.size_to_price("bid", 1001) == 0
    assert book.size_to_price("bid", 1) == sum(q for _, q in bids)
    with pytest.raises(ValueError, match="side"):
        book.size_to_price("buy", 1000)  # type: ignore[arg-type]


def test_view_is_an_immutable_copy() -> None:
    book, bids, asks = loaded()
    book.apply(
        frame([(1000, 1)], [(1010, 3)], expect=([(1000, 1), *bids[1:]], [(1010, 3), *asks[1:]]))
    )
    view = book.view(3)
    assert isinstance(view, BookView)
    assert view.symbol == "BTC/USD" and view.valid
    assert view.bids == ((1000, 1), *bids[1:3])
    assert view.asks == ((1010, 3), *asks[1:3])
    assert view.best_bid() == book.best_bid() and view.best_ask() == book.best_ask()
    assert view.spread() == book.spread() == 10
    assert view.mid() == book.mid() == Decimal("100.5")
    assert view.microprice() == book.microprice() == Decimal("100.25")
    assert not view.is_crossed()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.valid = False  # type: ignore[misc]
    # Later updates do not reach the view.
    book.apply(frame([(1000, 0)], [], expect=(bids[1:], [(1010, 3), *asks[1:]])))
    assert view.best_bid() == (1000, 1)
    assert book.best_bid() == bids[1]
