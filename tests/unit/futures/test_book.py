"""The Futures book keeper: no checksum, so a sequence gap or a crossed book resyncs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import ProtocolError
from bot.futures.book import FuturesBook, Resync
from bot.futures.instruments import FuturesInstrument
from bot.futures.ws_protocol import BookDelta, BookSnapshot
from tests.unit.futures.conftest import xbt

D = Decimal


def snapshot(seq: int = 100) -> BookSnapshot:
    return BookSnapshot(
        "PF_XBTUSD",
        seq,
        1,
        ((D("100.0"), D("1")), (D("99.5"), D("2"))),
        ((D("100.5"), D("3")), (D("101.0"), D("4"))),
    )


def delta(seq: int, side: str, price: str, qty: str) -> BookDelta:
    return BookDelta("PF_XBTUSD", seq, 1, side, D(price), D(qty))


def test_snapshot_and_deltas_in_sequence(inst: FuturesInstrument) -> None:
    book = FuturesBook(inst)
    assert book.apply(snapshot()) is None
    assert book.synced and book.seq == 100
    assert book.best_bid() == (1000, 10000) and book.best_ask() == (1005, 30000)
    assert book.apply(delta(101, "buy", "100.0", "0")) is None  # level gone
    assert book.apply(delta(102, "sell", "100.5", "0.5")) is None  # level changed
    assert book.apply(delta(103, "buy", "99.0", "7")) is None  # level added
    assert book.bids() == [(995, 20000), (990, 70000)]
    assert book.asks(1) == [(1005, 5000)]


def test_a_sequence_gap_asks_for_a_resync_once(inst: FuturesInstrument) -> None:
    book = FuturesBook(inst)
    book.apply(snapshot())
    assert book.apply(delta(101, "buy", "99.5", "5")) is None
    resync = book.apply(delta(103, "buy", "99.5", "6"))  # 102 was lost
    assert resync == Resync("PF_XBTUSD", "gap", 102, 103)
    assert not book.synced
    assert book.apply(delta(104, "buy", "99.5", "6")) is None  # dropped, not applied
    assert book.dropped == 1
    assert book.bids() == [(1000, 10000), (995, 50000)]  # 104 was not applied
    assert book.apply(snapshot(200)) is None  # the fresh snapshot heals it
    assert book.synced and book.seq == 200


def test_a_repeated_or_older_seq_is_a_gap_too(inst: FuturesInstrument) -> None:
    book = FuturesBook(inst)
    book.apply(snapshot())
    assert book.apply(delta(100, "buy", "99.5", "5")) == Resync("PF_XBTUSD", "gap", 101, 100)


def test_a_crossed_book_asks_for_a_resync(inst: FuturesInstrument) -> None:
    book = FuturesBook(inst)
    book.apply(snapshot())
    assert book.apply(delta(101, "buy", "100.5", "1")) == Resync("PF_XBTUSD", "crossed")
    assert not book.synced
    crossed = BookSnapshot("PF_XBTUSD", 5, 1, ((D(101), D(1)),), ((D(100), D(1)),))
    assert FuturesBook(inst).apply(crossed) == Resync("PF_XBTUSD", "crossed")


def test_a_delta_before_any_snapshot(inst: FuturesInstrument) -> None:
    book = FuturesBook(inst)
    assert book.apply(delta(7, "buy", "1", "1")) == Resync("PF_XBTUSD", "no_snapshot", None, 7)
    assert book.apply(delta(8, "buy", "1", "1")) is None


def test_off_grid_numbers_and_wrong_products(inst: FuturesInstrument) -> None:
    book = FuturesBook(inst)
    book.apply(snapshot())
    with pytest.raises(ProtocolError):
        book.apply(delta(101, "buy", "99.55", "1"))  # two decimals on a one-decimal contract
    with pytest.raises(ValueError):
        book.apply(BookDelta("PF_ETHUSD", 101, 1, "buy", D(1), D(1)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["buy", "sell"]),
            st.integers(min_value=900, max_value=1100),
            st.integers(min_value=0, max_value=5),
        ),
        max_size=60,
    )
)
def test_in_sequence_deltas_keep_a_sorted_uncrossed_book_or_resync(
    changes: list[tuple[str, int, int]],
) -> None:
    """Applied in sequence, the book equals a plain dict model until it reports crossed."""
    inst = xbt()
    book = FuturesBook(inst)
    book.apply(BookSnapshot("PF_XBTUSD", 0, 0, (), ()))
    model: dict[str, dict[int, int]] = {"buy": {}, "sell": {}}
    for seq, (side, tick, lots) in enumerate(changes, start=1):
        price, qty = tick * 5, lots * 10
        result = book.apply(
            delta(seq, side, str(inst.price_decimal(price)), str(inst.qty_decimal(qty)))
        )
        if qty:
            model[side][price] = qty
        else:
            model[side].pop(price, None)
        bids = sorted(model["buy"].items(), reverse=True)
        asks = sorted(model["sell"].items())
        crossed = bool(bids and asks and bids[0][0] >= asks[0][0])
        if crossed:
            assert result == Resync("PF_XBTUSD", "crossed")
            return
        assert result is None
        assert book.bids() == bids and book.asks() == asks
