"""Kraken's L2 book checksum: CRC32 of the top 10 levels (KRAKEN.md §5.4, §5.10).

The construction, for WS v2 and v1 alike: take the top 10 asks from the lowest price up,
then the top 10 bids from the highest price down; for each level write its price and then
its quantity with the decimal point removed and leading zeros stripped; concatenate; take
the standard (zlib/IEEE) CRC-32 as an unsigned 32-bit integer.

Written at the instrument's full precision, "remove the dot, strip leading zeros" of a
price is exactly ``str(n)`` of its scaled integer (``29430.2`` at precision 1 is
``294302``; ``0.00100000`` at precision 8 is ``100000``), so on scaled ints a level's
fragment is ``b"%d%d" % (price, qty)``. ``bot.market.book`` inlines that fragment in its
hot path and caches it per level; this module is the readable reference and serves the
simulator and the tests.

This module owns the checksum construction only. It does no I/O and keeps no state; it
does not sort or truncate: callers pass levels best first.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from decimal import Decimal
from itertools import islice
from typing import Final

from bot.kraken.instruments import to_scaled

__all__ = [
    "CHECKSUM_LEVELS",
    "book_checksum",
    "book_checksum_decimal",
    "book_checksum_v1",
    "level_fragment",
    "strip_number",
]

CHECKSUM_LEVELS: Final = 10
"""The checksum covers this many levels per side, whatever the subscribed depth."""

Number = Decimal | str | int | float


def level_fragment(price: int, qty: int) -> bytes:
    """One level's part of the checksummed text, from scaled ints: ``b"%d%d"``."""
    return b"%d%d" % (price, qty)


def book_checksum(asks: Iterable[tuple[int, int]], bids: Iterable[tuple[int, int]]) -> int:
    """CRC32 of a book given as scaled ``(price, qty)`` ints, each side best first.

    ``asks`` ascend, ``bids`` descend; only the first ten of each are read, so a whole
    side may be passed. Quantities and prices must be non-negative.
    """
    parts = [b"%d%d" % level for level in islice(asks, CHECKSUM_LEVELS)]
    parts.extend(b"%d%d" % level for level in islice(bids, CHECKSUM_LEVELS))
    return zlib.crc32(b"".join(parts))


def book_checksum_decimal(
    asks: Iterable[tuple[Number, Number]],
    bids: Iterable[tuple[Number, Number]],
    price_precision: int,
    qty_precision: int,
) -> int:
    """CRC32 of a book given in Kraken's numbers (``Decimal``, text, or a JSON float).

    Each value is scaled by the instrument's precision first (``0.566`` at precision 4
    is ``5660``), which is the re-padding Kraken's v2 checksum requires. A value with more
    decimals than its precision raises ``ProtocolError``.
    """
    return book_checksum(
        (
            (to_scaled(p, price_precision), to_scaled(q, qty_precision))
            for p, q in islice(asks, CHECKSUM_LEVELS)
        ),
        (
            (to_scaled(p, price_precision), to_scaled(q, qty_precision))
            for p, q in islice(bids, CHECKSUM_LEVELS)
        ),
    )


def strip_number(text: str) -> str:
    """Kraken's formatting of one number's text: remove ``.``, strip leading ``0``."""
    return text.replace(".", "").lstrip("0")


def book_checksum_v1(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> int:
    """The WS v1 checksum, on price and volume strings exactly as received.

    v1 prints every number with its pair's fixed decimals (``"27120.00000"``), so the text
    needs no re-padding. Levels best first; only the first ten of each side are read.
    """
    parts = [strip_number(p) + strip_number(q) for p, q in islice(asks, CHECKSUM_LEVELS)]
    parts.extend(strip_number(p) + strip_number(q) for p, q in islice(bids, CHECKSUM_LEVELS))
    return zlib.crc32("".join(parts).encode("ascii"))
