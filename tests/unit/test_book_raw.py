"""``_bookcore.raw_update``: a book update read from the received text, with no JSON decoder.

It only ever declines (returns None, the book untouched) or does what the decoding path
would do. So every frame here goes through ``raw_update`` and, when it declines, through
``parse_into``, on one book, and through ``frames._parse_into_py`` (the pure-Python
reference) on its twin: the outcome and the whole state must agree. The frames are text
written token by token, in the forms Kraken sends and in the many others JSON allows
(key orders, whitespace, escapes, repeated keys, numbers with trailing zeros, exponents,
signs, leading zeros, more decimals than the precision), so both the strict form and its
edges are compared; a frame the scanner must take is checked to be taken.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.core.errors import ProtocolError
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.kraken.protocol import BookFrame, Parser
from bot.market.book import CORE, Book, BookApplied
from bot.market.frames import _parse_into_py, parse_into
from tests.unit.test_bookcore import check_invariants, state

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
WHOLE = Instrument("WHOLE/USD", "WHOLE", "USD", price_precision=0, qty_precision=0)
INSTRUMENTS = {inst.symbol: inst for inst in (BTC, WHOLE)}

pytestmark = pytest.mark.skipif(CORE != "c", reason="KRAKENBOT_PURE_BOOK: no C core")

if CORE == "c":
    from bot.market._bookcore import raw_update


def loaded(inst: Instrument, depth: int) -> Book:
    book = Book(inst, depth)
    bids = tuple((10_000 - 7 * i, 10**6 + i) for i in range(15))
    asks = tuple((10_010 + 5 * i, 2 * 10**6 + i) for i in range(15))
    probe = Book(inst, depth)
    probe.apply(BookFrame(inst.symbol, True, bids, asks, 0, "s"))
    assert book.apply(BookFrame(inst.symbol, True, bids, asks, probe.checksum, "s")) is None
    return book


def checksum_after(book: Book, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> int:
    """The CRC the book would have after this update (applied to a copy)."""
    probe = Book(book.instrument, book.depth)
    for name, value in state(book).items():
        setattr(probe, name, value.copy() if isinstance(value, list | dict) else value)
    probe._valid = True
    probe.apply(BookFrame(book.symbol, False, tuple(bids), tuple(asks), 0, "t"))
    return probe.checksum


# -- the text ------------------------------------------------------------------------------


def number_text(n: int, precision: int, form: int) -> str:
    """A scaled ``n`` as JSON text in one of several forms (``form``); most are the same
    value, some are not JSON, some carry a decimal past the precision."""
    whole, frac = divmod(n, 10**precision)
    digits = f"{frac:0{precision}d}" if precision else ""
    plain = f"{whole}.{digits}".rstrip("0").rstrip(".") if precision else str(whole)
    if form == 1:  # trailing zeros, past the precision too
        return f"{whole}.{digits}000"
    if form == 2:  # an exponent
        return f"{n}e-{precision}" if precision else f"{n}e0"
    if form == 3:  # a decimal past the precision
        return f"{whole}.{digits}7"
    if form == 4:  # a leading zero: not JSON
        return f"0{plain}"
    if form == 5:
        return f"-{plain}"
    if form == 6:  # the same value, always with a fraction (a float to orjson)
        return f"{whole}.{digits or '0'}"
    if form == 7:  # a large value
        return f"{n}{'0' * 12}"
    if form == 8:  # zero, a price's fault
        return "0"
    if form == 9:
        return "0.0"
    return plain


WS = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n  "])


@st.composite
def json_object(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> str:
    """``{"k": v, ...}`` from the pairs in a drawn order, with drawn whitespace; sometimes a
    key repeated with another value or an extra key."""
    pairs = draw(st.permutations(pairs)) if draw(st.booleans()) else list(pairs)
    twist = draw(st.integers(0, 30))
    if twist == 0 and pairs:
        key, _ = pairs[0]
        pairs = [*pairs, (key, pairs[-1][1])]  # orjson keeps the last
    elif twist == 1:
        pairs = [*pairs, ("extra", "1")]
    parts = [f"{draw(WS)}{json.dumps(k)}{draw(WS)}:{draw(WS)}{v}{draw(WS)}" for k, v in pairs]
    return "{" + ",".join(parts) + "}"


LEVEL = st.tuples(st.integers(9_900, 10_120), st.one_of(st.just(0), st.integers(1, 10**9)))
NUMBER_FORM = st.one_of(st.just(0), st.just(0), st.just(0), st.integers(0, 9))


@st.composite
def frame(draw: st.DrawFn, book: Book) -> str:
    """One book update as text (mostly the strict form, often not)."""
    inst = book.instrument
    bids = draw(st.lists(LEVEL, max_size=4))
    asks = draw(st.lists(LEVEL, max_size=4))
    checksum = checksum_after(book, bids, asks)

    def side(levels: list[tuple[int, int]]) -> str:
        out = []
        for p, q in levels:
            pairs = [
                ("price", number_text(p, inst.price_precision, draw(NUMBER_FORM))),
                ("qty", number_text(q, inst.qty_precision, draw(NUMBER_FORM))),
            ]
            out.append(draw(json_object(pairs)))
        return "[" + ",".join(out) + "]"

    symbol = json.dumps(inst.symbol)
    kind = draw(st.integers(0, 40))
    if kind == 0:
        symbol = symbol.replace("/", "\\/")  # an escape: the same symbol to a decoder
    elif kind == 1:
        symbol = '"ETH/USD"'  # no book for it
    cs = str(checksum)
    if kind == 2:
        cs = str(checksum ^ 0x5A5A)  # a mismatch
    elif kind == 3:
        cs = cs + ".0"
    elif kind == 4:
        cs = str(2**32 + checksum)
    elif kind == 5:
        cs = "0" + cs
    item = [
        ("symbol", symbol),
        ("bids", side(bids)),
        ("asks", side(asks)),
        ("checksum", cs),
        ("timestamp", '"2023-07-30T15:29:58.000000Z"'),
    ]
    if kind == 6:
        item = item[:-1]  # no timestamp
    data = "[" + draw(json_object(item)) + "]"
    if kind == 7:
        data = "[" + draw(json_object(item)) + "," + draw(json_object(item)) + "]"
    kind_text = '"snapshot"' if kind == 8 else '"update"'
    channel = '"trade"' if kind == 9 else '"book"'
    text = draw(json_object([("channel", channel), ("type", kind_text), ("data", data)]))
    if kind == 10:
        text = text[:-1]  # cut short: not JSON
    elif kind == 11:
        text += " x"
    return text


def run(call: Any, books: dict[str, Book]) -> tuple[Any, ...]:
    try:
        events = call()
    except ProtocolError as exc:
        return ("raised", str(exc))
    out = []
    for ev in events:
        assert type(ev) is BookApplied and books[ev.book.symbol] is ev.book
        out.append((ev.book.symbol, ev.snapshot, ev.mismatch, ev.book.valid))
    return ("returned", *out)


def through_both(raw: str | bytes, c_books: dict[str, Book], py_books: dict[str, Book]) -> bool:
    """``raw`` through ``raw_update`` (then ``parse_into`` if it declines) and through the
    reference on twin books: equal outcomes and states. Whether ``raw_update`` took it."""
    table = InstrumentTable(list(INSTRUMENTS.values()))
    taken = False

    def fast() -> list[Any]:
        nonlocal taken
        before = {s: state(b) for s, b in c_books.items()}
        got = raw_update(raw, c_books)
        if got is not None:
            taken = True
            return got
        assert {s: state(b) for s, b in c_books.items()} == before  # declined: untouched
        return parse_into(Parser(table), raw, c_books)

    got = run(fast, c_books)
    want = run(lambda: _parse_into_py(Parser(table), raw, py_books), py_books)
    assert got == want, raw
    for symbol, book in c_books.items():
        assert state(book) == state(py_books[symbol]), (symbol, raw)
        check_invariants(book, cut=got[0] == "returned")
    return taken


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), symbol=st.sampled_from(sorted(INSTRUMENTS)), depth=st.sampled_from([10, 25]))
def test_raw_frames_agree_with_the_reference(data: st.DataObject, symbol: str, depth: int) -> None:
    inst = INSTRUMENTS[symbol]
    c_books = {symbol: loaded(inst, depth)}
    py_books = {symbol: loaded(inst, depth)}
    for _ in range(data.draw(st.integers(1, 6))):
        text = data.draw(frame(c_books[symbol]))
        raw: str | bytes = text.encode() if data.draw(st.booleans()) else text
        event("taken" if through_both(raw, c_books, py_books) else "declined")
        if not c_books[symbol].valid:  # a mismatch or a bad frame: a fresh snapshot
            c_books[symbol] = loaded(inst, depth)
            py_books[symbol] = loaded(inst, depth)


def kraken_update(
    book: Book, bids: list[tuple[int, int]], asks: list[tuple[int, int]], spoil: int = 0
) -> str:
    """An update as Kraken writes it: its key order, no whitespace, plain numbers (its
    checksum xor ``spoil``)."""
    inst = book.instrument

    def side(levels: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [
            {
                "price": orjson.Fragment(number_text(p, inst.price_precision, 0)),
                "qty": orjson.Fragment(number_text(q, inst.qty_precision, 0)),
            }
            for p, q in levels
        ]

    item = {
        "symbol": book.symbol,
        "bids": side(bids),
        "asks": side(asks),
        "checksum": checksum_after(book, bids, asks) ^ spoil,
        "timestamp": "2023-07-30T15:29:58.000000Z",
    }
    return orjson.dumps({"channel": "book", "type": "update", "data": [item]}).decode()


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        ([(10_001, 5)], []),  # an insert at the top
        ([], [(10_010, 0)]),  # a delete at the top
        ([(9_993, 7), (9_000, 1)], [(10_015, 10**8), (10_016, 3)]),  # both sides, a deep one
        ([], []),
    ],
)
def test_the_strict_form_is_taken_and_verifies(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]]
) -> None:
    c_books = {"BTC/USD": loaded(BTC, 10)}
    py_books = {"BTC/USD": loaded(BTC, 10)}
    raw = kraken_update(c_books["BTC/USD"], bids, asks)
    assert through_both(raw, c_books, py_books)
    assert through_both(raw.encode(), c_books, py_books)  # the same levels again: no change
    assert c_books["BTC/USD"].valid and c_books["BTC/USD"].timestamp.startswith("2023")


def test_a_mismatch_and_an_invalid_book_are_taken_as_the_fused_path_takes_them() -> None:
    c_books = {"BTC/USD": loaded(BTC, 10)}
    py_books = {"BTC/USD": loaded(BTC, 10)}
    good = kraken_update(c_books["BTC/USD"], [(10_001, 5)], [])
    bad = kraken_update(c_books["BTC/USD"], [(10_001, 5)], [], spoil=0x5A5A)
    assert through_both(bad, c_books, py_books)
    assert not c_books["BTC/USD"].valid and c_books["BTC/USD"].mismatches == 1
    assert through_both(good, c_books, py_books)  # ignored by the invalid book
    assert c_books["BTC/USD"].ignored == 1


def test_parse_into_is_the_c_entry_and_declined_frames_take_the_decoding_path() -> None:
    from bot.market import _bookcore, frames

    assert parse_into is _bookcore.parse_into
    c_books = {"BTC/USD": loaded(BTC, 10)}
    py_books = {"BTC/USD": loaded(BTC, 10)}
    update = kraken_update(c_books["BTC/USD"], [(10_001, 5)], [])
    escaped = update.replace("BTC/USD", "BTC\\/USD")  # the same to JSON, not the strict form
    assert raw_update(escaped, c_books) is None
    for raw in (escaped, update.replace('"update"', '"snapshot"'), "[1]", "not json"):
        got = run(lambda raw=raw: parse_into(Parser(InstrumentTable([BTC])), raw, c_books), c_books)
        want = run(
            lambda raw=raw: frames._parse_into_c(Parser(InstrumentTable([BTC])), raw, py_books),
            py_books,
        )
        assert got == want and state(c_books["BTC/USD"]) == state(py_books["BTC/USD"])
        if raw is escaped:  # applied and verified by the decoding path
            assert got == ("returned", ("BTC/USD", False, None, True))


def test_many_levels_and_alternating_symbols() -> None:
    """More levels than the scanner holds are declined (and decoded); books of two symbols
    in turn each get their own updates (the scanner keeps the last symbol's str)."""
    c_books = {"BTC/USD": loaded(BTC, 100), "WHOLE/USD": loaded(WHOLE, 100)}
    py_books = {"BTC/USD": loaded(BTC, 100), "WHOLE/USD": loaded(WHOLE, 100)}
    many = [(9_000 + i, i % 3) for i in range(65)]
    assert not through_both(kraken_update(c_books["BTC/USD"], many, []), c_books, py_books)
    for i in range(6):
        symbol = ("BTC/USD", "WHOLE/USD")[i % 2]
        raw = kraken_update(c_books[symbol], [(10_001 + i, 2)], [(10_012, i)])
        assert through_both(raw, c_books, py_books)
    assert all(book.valid for book in c_books.values())
