"""The C core on the real Kraken captures, frame by frame against the pure-Python core.

The v2 BTC/USD capture goes through ``bot.market.frames.parse_into`` (the C core) and
through ``_parse_into_py`` (the reference) on twin books. The v1 captures (XBT/USD book-10, and
book-1000 for ten pairs) are rewritten as the v2 frames Kraken would send for them, their
numbers printed at the pair's v1 decimals (which the v1 checksum is computed at), so the
C core also meets real deep books, real numbers and several precisions. Every checksum
must verify, and after every frame the two books' whole state must be equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest

from bot.kraken.instruments import Instrument, InstrumentTable
from bot.kraken.protocol import BookFrame, Parser
from bot.market.book import CORE, Book
from tests.replay.test_book_captures import DATA, load, v1_stream
from tests.unit.test_bookcore import check_invariants, parse_both

pytestmark = pytest.mark.skipif(CORE != "c", reason="KRAKENBOT_PURE_BOOK: no C core to compare")


def replay(raws: Iterable[bytes], instruments: list[Instrument], depth: int) -> int:
    """Each frame through both cores; returns how many book updates verified."""
    table = InstrumentTable(instruments)
    c_parser, py_parser = Parser(table), Parser(table)
    c_books = {inst.symbol: Book(inst, depth) for inst in instruments}
    py_books = {inst.symbol: Book(inst, depth) for inst in instruments}
    verified = 0
    for raw in raws:
        result = parse_both(raw, c_parser, c_books, py_parser, py_books, only_applied=True)
        assert result[0] == "returned", result
        for item in result[1:]:
            if type(item) is tuple:  # (symbol, snapshot, mismatch) of a BookApplied
                symbol, snapshot, mismatch = item
                assert mismatch is None, (symbol, mismatch)
                verified += not snapshot
    for book in c_books.values():
        assert book.valid and book.mismatches == 0 and book.ignored == 0
        check_invariants(book)
    return verified


def test_v2_capture_through_both_cores() -> None:
    capture = load("python-kraken-sdk_orderbook-v2.json")
    raws = [orjson.dumps(msg) for msg in [capture["init"], *capture["updates"]]]
    btc = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
    assert replay(raws, [btc], 10) == 509


def decimals(dicts: list[dict[str, Any]]) -> tuple[int, int]:
    for d in dicts:
        for key in ("as", "bs", "a", "b"):
            for price, qty, *_ in d.get(key, []):
                return len(price.partition(".")[2]), len(qty.partition(".")[2])
    raise AssertionError("no level")


def as_v2(messages: list[Any]) -> tuple[list[bytes], list[Instrument]]:
    """v1 book messages as v2 frames, numbers printed at the pair's v1 decimals."""
    instruments: dict[str, Instrument] = {}
    raws: list[bytes] = []
    for pair, frame, dicts in v1_stream(messages):
        inst = instruments.get(pair)
        if inst is None:
            inst = instruments[pair] = Instrument(pair, "", "", *decimals(dicts))
        raws.append(v2_frame(frame, inst))
    return raws, list(instruments.values())


def v2_frame(frame: BookFrame, inst: Instrument) -> bytes:
    def levels(side: Iterable[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        for p, q in side:
            yield {
                "price": orjson.Fragment(inst.price_text(p)),
                "qty": orjson.Fragment(inst.qty_text(q)),
            }

    item = {
        "symbol": frame.symbol,
        "bids": list(levels(frame.bids)),
        "asks": list(levels(frame.asks)),
        "checksum": frame.checksum,
        "timestamp": "2021-04-17T16:48:53.000000Z",
    }
    kind = "snapshot" if frame.snapshot else "update"
    return orjson.dumps({"channel": "book", "type": kind, "data": [item]})


def test_v1_book_10_capture_as_v2_through_both_cores() -> None:
    capture = load("python-kraken-sdk_orderbook-v1.json")
    raws, instruments = as_v2([*capture["init"], *capture["updates"]])
    assert [(i.symbol, i.price_precision, i.qty_precision) for i in instruments] == [
        ("XBT/USD", 5, 8)
    ]
    assert replay(raws, instruments, 10) == 979


def test_v1_book_1000_capture_as_v2_through_both_cores() -> None:
    lines = (DATA / "cryptofeed_KRAKEN.ws.50.0").read_text().splitlines()
    messages = [
        orjson.loads(line.partition(": ")[2])
        for line in lines[1:]
        if line and " <- " not in line.partition(":")[0]
    ]
    raws, instruments = as_v2(messages)
    assert len(instruments) == 10
    assert len({(i.price_precision, i.qty_precision) for i in instruments}) > 2
    assert replay(raws, instruments, 1000) == 4269
