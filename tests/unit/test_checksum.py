"""Kraken's book CRC32 against Kraken's own worked examples and recorded vectors."""

from __future__ import annotations

import zlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import ProtocolError
from bot.kraken.checksum import (
    book_checksum,
    book_checksum_decimal,
    book_checksum_v1,
    level_fragment,
    strip_number,
)
from bot.kraken.instruments import format_scaled, to_scaled

# --- WS v2, BTC/USD (price_precision 1, qty_precision 8) -------------------------------
# Source: Kraken's guide "Spot Websockets (v2) Book Checksum",
# https://docs.kraken.com/api/docs/guides/spot-ws-book-v2 (snapshot decoded with a string
# decoder). The same levels hash to 3310070434 in Kraken's own SDK:
# krakenfx/kraken-api-sdk rust/src/book/checksum_tests.rs, whose 281-char input string is
# BTC_USD_TEXT below.
BTC_USD_ASKS = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]
BTC_USD_BIDS = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
BTC_USD_CHECKSUM = 3310070434
BTC_USD_TEXT = (
    "45285210000045286415457195345286615457110945289615456091145290215890660452918154553491"
    "45294744547494529613538000045297599455424529951877282745283510000000452834154582015452"
    "82110000000452810100000004528031545925864527907990000452776331010345277530000000452773"
    "15460273745276615445238"
)

# --- WS v2, MATIC/USD (price_precision 4, qty_precision 8) -----------------------------
# Source: Kraken's book channel page, https://docs.kraken.com/api/docs/websocket-v2/book:
# its snapshot example (checksum 2439117997) and update example (checksum 2114181697).
# Numbers as the page prints them (JSON numbers): 0.566 must count as 0.5660.
# MATIC/USD's precisions are those of the recorded instrument snapshot (KRAKEN.md §5.8).
MATIC_BIDS = [
    (0.5666, 4831.75496356),
    (0.5665, 6658.22734739),
    (0.5664, 18724.91513344),
    (0.5663, 11563.92544914),
    (0.5662, 14006.65365711),
    (0.5661, 17454.85679807),
    (0.566, 18097.1547),
    (0.5659, 33644.89175666),
    (0.5658, 148.3464),
    (0.5657, 606.70854372),
]
MATIC_ASKS = [
    (0.5668, 4410.79769741),
    (0.5669, 4655.40412487),
    (0.567, 49844.89424998),
    (0.5671, 24306.41678),
    (0.5672, 29783.25223475),
    (0.5673, 57234.71239278),
    (0.5674, 45065.04744),
    (0.5675, 5912.76380354),
    (0.5676, 42514.92434778),
    (0.5677, 36304.0847022),
]
MATIC_SNAPSHOT_CHECKSUM = 2439117997
MATIC_UPDATE = (0.5657, 1098.3947558)  # a bid
MATIC_UPDATE_CHECKSUM = 2114181697

# --- WS v1 ------------------------------------------------------------------------------
# Source: Kraken's guide "Spot Websockets (v1) Book Checksum",
# https://docs.kraken.com/api/docs/guides/spot-ws-book-v1 (checksum 974947235); the book's
# levels as quoted from that guide in bmoscon/orderbook tests/test_checksums.py
# (KRAKEN.md §5.10).
V1_DOC_ASKS = [(f"0.0{5005 + 5 * i}", "0.00000500") for i in range(10)]
V1_DOC_BIDS = [
    (p, "0.00000500")
    for p in [
        "0.05000",
        "0.04995",
        "0.04990",
        "0.04980",
        "0.04975",
        "0.04970",
        "0.04965",
        "0.04960",
        "0.04955",
        "0.04950",
    ]
]
V1_DOC_CHECKSUM = 974947235


def scaled(levels: list[tuple[str, str]], pp: int, qp: int) -> list[tuple[int, int]]:
    return [(to_scaled(p, pp), to_scaled(q, qp)) for p, q in levels]


def test_doc_fragment_example() -> None:
    # The guide's step 1: "45285.2" -> "452852", "0.00100000" -> "100000".
    assert strip_number("45285.2") == "452852"
    assert strip_number("0.00100000") == "100000"
    assert level_fragment(452852, 100000) == b"452852100000"
    # KRAKEN.md §5.10: "0.05000" with volume "0.00000304" formats as "5000304".
    assert strip_number("0.05000") + strip_number("0.00000304") == "5000304"


def test_btc_usd_worked_example_text_is_krakens() -> None:
    asks = scaled(BTC_USD_ASKS, 1, 8)
    bids = scaled(BTC_USD_BIDS, 1, 8)
    text = b"".join(level_fragment(p, q) for p, q in asks + bids)
    assert len(BTC_USD_TEXT) == 281
    assert text == BTC_USD_TEXT.encode()
    assert zlib.crc32(text) == BTC_USD_CHECKSUM


def test_btc_usd_worked_example() -> None:
    asks = scaled(BTC_USD_ASKS, 1, 8)
    bids = scaled(BTC_USD_BIDS, 1, 8)
    assert book_checksum(asks, bids) == BTC_USD_CHECKSUM
    assert book_checksum_decimal(BTC_USD_ASKS, BTC_USD_BIDS, 1, 8) == BTC_USD_CHECKSUM
    decimals = [(Decimal(p), Decimal(q)) for p, q in BTC_USD_ASKS]
    assert book_checksum_decimal(decimals, BTC_USD_BIDS, 1, 8) == BTC_USD_CHECKSUM
    # v1's string rule gives the same answer when the text carries full precision.
    assert book_checksum_v1(BTC_USD_ASKS, BTC_USD_BIDS) == BTC_USD_CHECKSUM


def test_sides_are_not_interchangeable() -> None:
    asks = scaled(BTC_USD_ASKS, 1, 8)
    bids = scaled(BTC_USD_BIDS, 1, 8)
    assert book_checksum(bids, asks) != BTC_USD_CHECKSUM
    assert book_checksum(asks[::-1], bids) != BTC_USD_CHECKSUM


def test_matic_usd_snapshot_and_update() -> None:
    assert book_checksum_decimal(MATIC_ASKS, MATIC_BIDS, 4, 8) == MATIC_SNAPSHOT_CHECKSUM
    bids = [*MATIC_BIDS[:-1], MATIC_UPDATE]
    assert MATIC_BIDS[-1][0] == MATIC_UPDATE[0]
    assert book_checksum_decimal(MATIC_ASKS, bids, 4, 8) == MATIC_UPDATE_CHECKSUM


def test_matic_usd_needs_repadding() -> None:
    # Formatting the numbers as printed (0.566 -> "566") is what Kraken warns against.
    naive = book_checksum_v1(
        [(repr(p), repr(q)) for p, q in MATIC_ASKS], [(repr(p), repr(q)) for p, q in MATIC_BIDS]
    )
    assert naive != MATIC_SNAPSHOT_CHECKSUM
    padded = book_checksum_v1(
        [(f"{p:.4f}", f"{q:.8f}") for p, q in MATIC_ASKS],
        [(f"{p:.4f}", f"{q:.8f}") for p, q in MATIC_BIDS],
    )
    assert padded == MATIC_SNAPSHOT_CHECKSUM


def test_v1_doc_example() -> None:
    assert book_checksum_v1(V1_DOC_ASKS, V1_DOC_BIDS) == V1_DOC_CHECKSUM
    assert book_checksum(scaled(V1_DOC_ASKS, 5, 8), scaled(V1_DOC_BIDS, 5, 8)) == V1_DOC_CHECKSUM


# Recorded v1 books and their checksums, from bmoscon/orderbook tests/test_checksums.py
# ("The following checksums are from recorded data"). Sides hold up to 11 levels: only the
# top 10 count. The last one has a volume of 0.00000048, which must become "48".
V1_RECORDED = [
    (
        [("0.620000", "40.00000000"), ("0.830000", "380.86649128"), ("1.500000", "333.33333333")],
        [
            ("0.520300", "3943.09454867"),
            ("0.403200", "454.31671175"),
            ("0.403100", "1522.68122054"),
            ("0.403000", "43.31058726"),
            ("0.353200", "49.38467346"),
            ("0.261600", "66.67686034"),
            ("0.111000", "99.09909910"),
            ("0.110000", "909.09090909"),
            ("0.000600", "3333.33333333"),
            ("0.000400", "5000.00000000"),
            ("0.000100", "1000000.00000000"),
        ],
        577149452,
    ),
    (
        [
            ("0.814900", "297.71298000"),
            ("0.815000", "500.00000000"),
            ("0.815100", "500.00399385"),
            ("0.815200", "42.03000000"),
            ("0.815300", "21.50000000"),
            ("0.815400", "10.75000000"),
            ("0.829900", "1442.34063708"),
            ("0.830000", "380.86649128"),
            ("1.500000", "333.33333333"),
        ],
        [
            ("0.473400", "1284.67569684"),
            ("0.441000", "40.00415721"),
            ("0.342200", "51.43191116"),
            ("0.261600", "66.92596839"),
            ("0.111000", "99.09909910"),
            ("0.110000", "909.09090909"),
            ("0.000600", "3333.33333333"),
            ("0.000400", "5000.00000000"),
            ("0.000100", "1000000.00000000"),
        ],
        2369158246,
    ),
    (
        [
            ("0.000017680", "38663.54992198"),
            ("0.000017690", "20623.74841086"),
            ("0.000017700", "103797.62636430"),
            ("0.000017710", "40745.97057228"),
            ("0.000017720", "13296.04740856"),
            ("0.000017730", "42078.86085768"),
            ("0.000017740", "64.38065876"),
            ("0.000017760", "1131.70427847"),
            ("0.000017780", "43891.46024565"),
            ("0.000017790", "43908.00000000"),
            ("0.000017810", "0.00005437"),
        ],
        [
            ("0.000017670", "0.00000048"),
            ("0.000017660", "50.29884341"),
            ("0.000017650", "16958.37856622"),
            ("0.000017640", "16735.08043085"),
            ("0.000017630", "61895.21671233"),
            ("0.000017620", "86958.66158205"),
            ("0.000017610", "8564.64738216"),
            ("0.000017600", "59539.93801826"),
            ("0.000017580", "52578.63046424"),
            ("0.000017570", "46812.60266777"),
            ("0.000017560", "640.09877588"),
        ],
        1611253991,
    ),
]


@pytest.mark.parametrize(("asks", "bids", "expected"), V1_RECORDED)
def test_v1_recorded_vectors(
    asks: list[tuple[str, str]], bids: list[tuple[str, str]], expected: int
) -> None:
    assert book_checksum_v1(asks, bids) == expected
    pp = len(asks[0][0].split(".")[1])
    assert book_checksum(scaled(asks, pp, 8), scaled(bids, pp, 8)) == expected


def test_only_the_top_ten_count() -> None:
    asks = [(100 + i, 1 + i) for i in range(15)]
    bids = [(99 - i, 1 + i) for i in range(15)]
    assert book_checksum(asks, bids) == book_checksum(asks[:10], bids[:10])
    assert book_checksum(asks, bids) != book_checksum(asks[:9], bids[:10])
    assert book_checksum(iter(asks), iter(bids)) == book_checksum(asks[:10], bids[:10])


def test_short_and_empty_books() -> None:
    assert book_checksum([], []) == zlib.crc32(b"") == 0
    assert book_checksum([(452852, 100000)], []) == zlib.crc32(b"452852100000")
    assert book_checksum([], [(452852, 100000)]) == zlib.crc32(b"452852100000")


def test_checksum_is_unsigned() -> None:
    assert book_checksum_decimal(BTC_USD_ASKS, BTC_USD_BIDS, 1, 8) > 2**31  # high bit set


def test_decimal_helper_rejects_excess_precision() -> None:
    with pytest.raises(ProtocolError):
        book_checksum_decimal([("45285.25", "1")], [], 1, 8)


levels = st.lists(
    st.tuples(st.integers(1, 10**12), st.integers(1, 10**15)), min_size=0, max_size=12
)


@given(asks=levels, bids=levels, pp=st.integers(0, 10), qp=st.integers(0, 10))
def test_int_and_text_constructions_agree(
    asks: list[tuple[int, int]], bids: list[tuple[int, int]], pp: int, qp: int
) -> None:
    def text(side: list[tuple[int, int]]) -> list[tuple[str, str]]:
        return [(format_scaled(p, pp), format_scaled(q, qp)) for p, q in side]

    expected = book_checksum(asks, bids)
    assert book_checksum_v1(text(asks), text(bids)) == expected
    assert book_checksum_decimal(text(asks), text(bids), pp, qp) == expected
