"""The C core of the book (``bot/market/_bookcore*.c``) against the pure-Python reference.

Both cores run in this process on twin books: the C functions (``_bookcore.apply_update``,
``bot.market.frames.parse_into``) on one, the reference (``Book._apply_wire_update_py``,
``frames._parse_into_py``) on the other, and every observable must agree: the result or the
exception (type and message), and the whole shared state after it. The tests of
``tests/unit/test_book*.py``, ``test_protocol.py`` and the book replays also run once more
on the pure-Python core, in a subprocess (``test_book_suites_pass_on_the_pure_core``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.book_stream import StreamSpec, generate_frames
from bot.core.errors import ProtocolError
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument, InstrumentTable, PrecisionLost
from bot.kraken.protocol import BookFrame, Parser
from bot.market import book as book_module
from bot.market.book import CORE, Book, BookApplied
from bot.market.frames import _parse_into_py, parse_into

ROOT = Path(__file__).resolve().parents[2]
PURE = os.environ.get("KRAKENBOT_PURE_BOOK", "") not in ("", "0")
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)

needs_c = pytest.mark.skipif(CORE != "c", reason="KRAKENBOT_PURE_BOOK: the C core is not used")

if CORE == "c":
    from bot.market import _bookcore

    c_apply: Callable[..., Any] = _bookcore.apply_update


def test_the_core_is_the_one_the_environment_asks_for() -> None:
    """A broken or missing build fails here, instead of falling back silently."""
    expected = "python" if PURE else "c"
    assert expected == CORE
    if not PURE:
        from bot.market._bookcore import BookCore

        assert issubclass(Book, BookCore)
        assert book_module.c_fused_update is not None


@pytest.mark.skipif(PURE, reason="this process already runs the pure-Python core")
@pytest.mark.timeout(600)
def test_book_suites_pass_on_the_pure_core() -> None:
    """The book, property, protocol, frames and replay tests, with ``KRAKENBOT_PURE_BOOK=1``."""
    modules = [
        "tests/unit/test_bookcore.py::test_the_core_is_the_one_the_environment_asks_for",
        "tests/unit/test_book.py",
        "tests/unit/test_book_property.py",
        "tests/unit/test_protocol.py",
        "tests/unit/test_frames.py",
        "tests/replay/test_book_captures.py",
    ]
    env = {**os.environ, "KRAKENBOT_PURE_BOOK": "1"}
    pytest_cmd = [sys.executable, "-m", "pytest", "-qx", "-o", "addopts=", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*pytest_cmd, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary


def test_the_build_compiles_every_c_file_and_depends_on_the_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """setup.py builds every ``bot/market/_bookcore*.c`` into the one module, and names the
    internal header in ``depends``: an edit to it rebuilds the module, and the sdist carries
    it (setuptools puts no header in an sdist by itself)."""
    import runpy

    import setuptools

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: calls.append(kwargs))
    runpy.run_path(str(ROOT / "setup.py"))
    (ext,) = [e for e in calls[0]["ext_modules"] if e.name.startswith("bot.market.")]
    files = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("bot/market/_bookcore*.c"))
    assert ext.name == "bot.market._bookcore"
    assert sorted(ext.sources) == files
    assert "bot/market/_bookcore.c" in files
    assert ext.depends == ["bot/market/_bookcore.h"]
    assert (ROOT / "bot/market/_bookcore.h").is_file()
    assert ext.optional


# -- helpers -------------------------------------------------------------------------------

STATE = (
    "_ap",
    "_aq",
    "_at",
    "_bp",
    "_bq",
    "_bt",
    "_a_crc",
    "_crc",
    "_valid",
    "depth",
    "ignored",
    "mismatches",
    "timestamp",
)


def state(book: Book) -> dict[str, Any]:
    """Every member of the shared state (copies, so later changes do not reach them)."""
    out: dict[str, Any] = {}
    for name in STATE:
        value = getattr(book, name)
        out[name] = value.copy() if isinstance(value, list | dict) else value
    return out


def check_invariants(book: Book, *, cut: bool = True) -> None:
    """What every path must keep: sides sorted, in step with their dicts, cut to depth
    (unless an error stopped a side half-way: the frame is then applied again, or the book
    stays invalid until a snapshot), fragments and CRCs those of the top 10."""
    for prices, qtys, frags, sign in (
        (book._ap, book._aq, book._at, 1),
        (book._bp, book._bq, book._bt, -1),
    ):
        assert prices == sorted(qtys) and len(prices) == len(qtys)
        assert len(prices) <= book.depth or not (cut and book.valid)
        assert all(type(p) is int for p in prices)
        assert all(type(q) is int and q > 0 for q in qtys.values())
        assert frags == [b"%d%d" % (sign * p, qtys[p]) for p in prices[:10]]
    a_crc = zlib.crc32(b"".join(book._at))
    assert (book._a_crc, book._crc) == (a_crc, zlib.crc32(b"".join(book._bt), a_crc))
    assert book.checksum == book_checksum(book.asks(10), book.bids(10))


Outcome = tuple[Any, ...]


def outcome(book: Book, call: Callable[[], BookApplied]) -> Outcome:
    """What a call did, comparable across twin books: its result or its exception."""
    try:
        result = call()
    except Exception as exc:  # compared, never swallowed: the twin must raise the same
        return ("raised", type(exc), str(exc))
    assert type(result) is BookApplied and result.book is book
    return ("returned", result.snapshot, result.mismatch, result is book._updated)


def both_apply(
    c_book: Book, py_book: Book, bids: Any, asks: Any, checksum: int, *, ts: str = "t"
) -> Outcome:
    """One update through each core; the outcomes and the states must be equal."""
    got = outcome(c_book, lambda: c_apply(c_book, bids, asks, checksum, ts))
    want = outcome(py_book, lambda: py_book._apply_wire_update_py(bids, asks, checksum, ts))
    assert got == want
    assert state(c_book) == state(py_book)
    check_invariants(c_book, cut=got[0] == "returned")
    return got


def loaded(inst: Instrument = BTC, depth: int = 10, n: int = 12) -> Book:
    book = Book(inst, depth)
    bids = tuple((10_000 - 7 * i, 10**6 + i) for i in range(n))
    asks = tuple((10_010 + 5 * i, 2 * 10**6 + i) for i in range(n))
    truth = book_checksum(sorted(asks)[:10], sorted(bids, reverse=True)[:10])
    assert book.apply(BookFrame(inst.symbol, True, bids, asks, truth, "s")) is None
    return book


def twins(inst: Instrument = BTC, depth: int = 10, n: int = 12) -> tuple[Book, Book]:
    return loaded(inst, depth, n), loaded(inst, depth, n)


def wire(levels: list[tuple[int, int]], inst: Instrument = BTC) -> list[dict[str, Any]]:
    """Levels as orjson decodes Kraken's JSON for them: a float, or an int if whole."""
    out: list[dict[str, Any]] = []
    for p, q in levels:
        out.append(
            {
                "price": orjson.loads(inst.price_text(p).rstrip("0").rstrip(".") or "0"),
                "qty": orjson.loads(inst.qty_text(q).rstrip("0").rstrip(".") or "0"),
            }
        )
    return out


# -- CRC-32 --------------------------------------------------------------------------------


@needs_c
def test_crc32_is_zlibs_at_every_length_both_ways() -> None:
    """The table and, where the CPU has it, the carry-less multiplication."""
    data = os.urandom(2100)
    for n in [*range(700), 1024, 2047, 2100]:
        for value in (0, 0xFFFFFFFF, zlib.crc32(data[n:])):
            chunk = data[:n]
            want = zlib.crc32(chunk, value)
            assert _bookcore.crc32(chunk, value) == want, n
            assert _bookcore.crc32(chunk, value, True) == want, n
    assert isinstance(_bookcore.CRC32_CLMUL, bool)


# -- the exactness rule, at its edges ------------------------------------------------------


def edge_values(precision: int) -> list[Any]:
    scale = 10.0**precision
    limit = 2.0**49 / scale
    floats = [
        1.0,
        0.5,
        10.0**-precision,
        3 * 10.0**-precision,
        7.0 * 10.0 ** -(precision + 1),  # one decimal more than the precision
        0.1 + 0.2,  # 17 significant digits
        29430.2,
        12345.6789,
        1e-9,
        5e-324,
        2.2250738585072014e-308,
        1e15,
        1e20,
        1e300,
        limit,
        math.nextafter(limit, 0.0),
        math.nextafter(limit, math.inf),
        math.floor(limit),
        float(2**53),
        0.0,
        -0.0,
        -1.0,
        -(10.0**-precision),
        math.nan,
        math.inf,
        -math.inf,
    ]
    ints = [0, 1, 7, 10**12, 2**49, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -1, -(2**70)]
    return [*floats, *ints, True, False, None, "1.0", [1], {}]


def exact_scaled(value: Any, precision: int) -> int | None:
    """What the rule must give: the decimal the number prints as, scaled, if exact."""
    if type(value) is int:
        return value * 10**precision
    if type(value) is not float or not math.isfinite(value):
        return None
    n = Decimal(repr(value)).scaleb(precision)
    return int(n) if n == n.to_integral_value() else None


@needs_c
@pytest.mark.parametrize("precision", range(11))
def test_exactness_rule_edges_at_every_precision(precision: int) -> None:
    inst = Instrument("X/Y", "X", "Y", price_precision=precision, qty_precision=precision)
    accepted = refused = 0
    for value in edge_values(precision):
        for as_price in (True, False):
            c_book, py_book = twins(inst, depth=25)
            level = {"price": value, "qty": 2.0} if as_price else {"price": 1.0, "qty": value}
            result = both_apply(c_book, py_book, [level], [], 0)
            if result[0] == "raised":
                assert result[1] is PrecisionLost, result
                assert state(c_book) == state(loaded(inst, 25))  # nothing applied
                refused += 1
                continue
            accepted += 1
            scaled = exact_scaled(value, precision)
            assert scaled is not None, value  # accepted only if exactly the printed decimal
            price = scaled if as_price else 10**precision
            qty = 2 * 10**precision if as_price else scaled
            bids = dict(c_book.bids())
            assert bids.get(price) == (qty or None), (value, bids)
    assert accepted >= 8 and refused >= 20


@needs_c
def test_bools_are_not_ints_and_neither_are_int_subclasses() -> None:
    class Int(int):
        pass

    for value in (True, False, Int(5)):
        for level in ({"price": value, "qty": 1.0}, {"price": 100.0, "qty": value}):
            c_book, py_book = twins()
            result = both_apply(c_book, py_book, [level], [], 0)
            assert result[:2] == ("raised", PrecisionLost)


# -- malformed levels and sides ------------------------------------------------------------


class SubDict(dict[str, Any]):
    pass


class Raising(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise ValueError(f"no {key} here")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


GOOD = {"price": 1000.5, "qty": 0.25}
MALFORMED: list[tuple[Any, Any]] = [
    ([{"price": 100.0}], []),
    ([{"qty": 1.0}], []),
    ([{}], []),
    ([[100.0, 1.0]], []),
    (["x"], []),
    ([None], []),
    ([7], []),
    ([Raising()], []),
    ({"price": 100.0, "qty": 1.0}, []),
    ("x", []),
    (None, []),
    (0, []),
    ({}, []),
    ((), []),
    (7, []),
    ([], None),
    ([], {}),
    ([], 7),
    ([], "asks"),
    ([GOOD, {"price": 1.0}], []),  # the first level applied, then a KeyError
    ([GOOD], [{"price": 1001.0, "qty": 0}, 5]),  # asks first: an ask applied, then TypeError
    ([GOOD, {"price": 1.05, "qty": 1.0}], []),  # PrecisionLost after a level
    ([{"price": 999.9, "qty": 0}], [{"price": 1001.0, "qty": 0.5}, {"qty": 1}]),
]
FINE: list[tuple[Any, Any]] = [
    ((GOOD,), []),  # a tuple iterates like a list
    ([SubDict(GOOD)], []),  # a dict subclass is subscripted, not read as a dict
    ([{**GOOD, "extra": 1}], []),
    ([GOOD, GOOD, {"price": 1000.5, "qty": 0}], [{"price": 1001.1, "qty": 7}]),
]


@needs_c
@pytest.mark.parametrize(("bids", "asks"), MALFORMED)
def test_malformed_levels_raise_the_same_and_leave_the_same_book(bids: Any, asks: Any) -> None:
    for depth in (10, 25):
        c_book, py_book = twins(depth=depth)
        result = both_apply(c_book, py_book, bids, asks, 0)
        assert result[0] == "raised"
        assert result[1] in (KeyError, TypeError, ValueError, PrecisionLost)


@needs_c
@pytest.mark.parametrize(("bids", "asks"), FINE)
def test_unusual_but_valid_levels_apply_the_same(bids: Any, asks: Any) -> None:
    for depth in (10, 25):
        c_book, py_book = twins(depth=depth)
        assert both_apply(c_book, py_book, bids, asks, 0)[0] == "returned"
    # Any iterable that is not empty is iterated, as Python's ``for`` would.
    c_book, py_book = twins()
    c_out = outcome(c_book, lambda: c_apply(c_book, iter([GOOD]), [], 0, "t"))
    py_out = outcome(
        py_book,
        lambda: py_book._apply_wire_update_py(iter([GOOD]), [], 0, "t"),  # type: ignore[arg-type]
    )
    assert c_out == py_out and state(c_book) == state(py_book)


@needs_c
def test_arguments_outside_the_contract_are_refused_before_anything_is_read() -> None:
    book = loaded()
    before = state(book)
    for checksum in (-1, 2**32, 1.0, True, None, "1"):
        with pytest.raises(TypeError, match="checksum"):
            c_apply(book, [GOOD], [], checksum, "t")
    with pytest.raises(TypeError, match="timestamp"):
        c_apply(book, [GOOD], [], 0, 5)
    with pytest.raises(TypeError, match="BookCore"):
        c_apply(object(), [GOOD], [], 0, "t")
    with pytest.raises(TypeError):
        c_apply(book, [GOOD], [], 0)
    assert state(book) == before


@needs_c
def test_a_state_broken_from_python_raises_instead_of_crashing() -> None:
    for name, value in [
        ("_ap", None),
        ("_aq", []),
        ("_bt", ()),
        ("_scales", (1.0, 1.0)),
        ("_scales", (1, 1.0, 1, 1, 1.0, 1.0)),
        ("depth", -1),
    ]:
        book = loaded()
        setattr(book, name, value)
        with pytest.raises(RuntimeError, match="book state"):
            c_apply(book, [GOOD], [], 0, "t")
    book = loaded()
    del book._updated
    with pytest.raises(RuntimeError, match="_updated"):
        c_apply(book, [GOOD], [], 0, "t")
    fresh = Book.__new__(Book)  # no __init__: every member missing
    with pytest.raises(RuntimeError, match="book state"):
        c_apply(fresh, [GOOD], [], 0, "t")
    with pytest.raises(AttributeError):
        _ = fresh._ap


@needs_c
def test_an_invalid_book_ignores_even_a_malformed_update() -> None:
    c_book, py_book = twins()
    c_book.invalidate()
    py_book.invalidate()
    for bids, asks in MALFORMED[:6]:
        assert both_apply(c_book, py_book, bids, asks, 0) == ("returned", False, None, True)
    assert c_book.ignored == 6


# -- the envelope: which messages the C core takes -----------------------------------------


def update_msg(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "symbol": "BTC/USD",
        "bids": [{"price": 1000.2, "qty": 1.5}],
        "asks": [],
        "checksum": 12345,
        "timestamp": "2023-07-30T15:29:58.000000Z",
    }
    msg: dict[str, Any] = {"channel": "book", "type": "update", "data": [item]}
    for name, value in changes.items():
        target = item if name in item else msg
        if value is KeyError:
            del target[name]
        else:
            target[name] = value
    return msg


OTHER_SHAPES = [
    update_msg(type="snapshot"),
    update_msg(channel="trade"),
    update_msg(channel=None),
    update_msg(channel=KeyError),
    update_msg(type=KeyError),
    update_msg(data=KeyError),
    update_msg(data=[]),
    update_msg(data="x"),
    update_msg(data={"symbol": "BTC/USD"}),
    update_msg(checksum=KeyError),
    update_msg(checksum=1.0),
    update_msg(checksum=True),
    update_msg(checksum=-1),
    update_msg(checksum=2**32),
    update_msg(checksum="1"),
    update_msg(timestamp=KeyError),
    update_msg(timestamp=1),
    update_msg(bids=KeyError),
    update_msg(asks=KeyError),
    update_msg(symbol=KeyError),
    update_msg(symbol="ETH/USD"),  # no book for it
    update_msg(symbol=["BTC/USD"]),  # unhashable
]


@needs_c
@pytest.mark.parametrize("msg", OTHER_SHAPES)
def test_other_shapes_are_left_to_the_ordinary_path(msg: dict[str, Any]) -> None:
    book = loaded()
    before = state(book)
    assert _bookcore.fused_update(msg, {"BTC/USD": book}) is None
    assert _bookcore.fused_update([msg], {"BTC/USD": book}) is None
    assert state(book) == before
    two = update_msg()
    two["data"] = two["data"] * 2
    assert _bookcore.fused_update(two, {"BTC/USD": book}) is None


@needs_c
def test_the_books_mapping_may_be_any_mapping_but_only_books_are_taken() -> None:
    book = loaded()
    msg = update_msg(bids=[{"price": 1000.1, "qty": 3}])
    proxy = MappingProxyType({"BTC/USD": book})
    (applied,) = _bookcore.fused_update(msg, proxy)
    assert applied.book is book and applied.mismatch is not None  # checksum 12345: wrong
    assert _bookcore.fused_update(update_msg(), {"BTC/USD": object()}) is None

    class Broken(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("not a shape fault")

    with pytest.raises(RuntimeError, match="not a shape fault"):
        _bookcore.fused_update(update_msg(), MappingProxyType(Broken()))


def parse_both(
    raw: bytes,
    c_parser: Parser,
    c_books: dict[str, Book],
    py_parser: Parser,
    py_books: dict[str, Book],
    *,
    only_applied: bool = False,
) -> Outcome:
    """A frame through ``parse_into`` (C) and ``_parse_into_py`` on twin books; then every
    book's state compared, or only the ones the frame was applied to."""

    def run(call: Callable[[], list[Any]], books: dict[str, Book]) -> Outcome:
        try:
            events = call()
        except ProtocolError as exc:
            return ("raised", type(exc), str(exc))
        out: list[Any] = []
        for ev in events:
            if type(ev) is BookApplied:
                assert books[ev.book.symbol] is ev.book
                out.append((ev.book.symbol, ev.snapshot, ev.mismatch))
            else:
                out.append(ev)
        return ("returned", *out)

    got = run(lambda: parse_into(c_parser, raw, c_books), c_books)
    want = run(lambda: _parse_into_py(py_parser, raw, py_books), py_books)
    assert got == want
    compared = c_books
    if only_applied:
        compared = {item[0]: c_books[item[0]] for item in got[1:] if type(item) is tuple}
    for symbol, c_book in compared.items():
        assert state(c_book) == state(py_books[symbol]), symbol
        if not only_applied:
            check_invariants(c_book, cut=got[0] == "returned")
    return got


def verified_update() -> dict[str, Any]:
    """``update_msg()`` with the checksum of the book it makes of ``loaded()``."""
    msg = update_msg()
    probe = loaded()
    probe._apply_wire_update_py(msg["data"][0]["bids"], [], 0, "t")
    msg["data"][0]["checksum"] = probe.checksum
    return msg


@needs_c
@pytest.mark.parametrize("msg", [verified_update(), update_msg(), *OTHER_SHAPES])
def test_parse_into_agrees_with_the_python_path_on_every_shape(msg: dict[str, Any]) -> None:
    c_book, py_book = twins()
    table = InstrumentTable([BTC])
    result = parse_both(
        orjson.dumps(msg), Parser(table), {"BTC/USD": c_book}, Parser(table), {"BTC/USD": py_book}
    )
    if msg is OTHER_SHAPES[0]:  # a snapshot: applied by the ordinary path
        assert result[1][1] is True


# -- streams: the synthetic one, and random ones -------------------------------------------


def snapshot_of(book: Book) -> bytes:
    """A WS v2 snapshot of ``book``'s levels, as a resubscription would bring it."""
    inst = book.instrument

    def levels(side: list[tuple[int, int]]) -> str:
        return ",".join(
            f'{{"price":{inst.price_text(p)},"qty":{inst.qty_text(q)}}}' for p, q in side
        )

    return (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{book.symbol}",'
        f'"bids":[{levels(book.bids())}],"asks":[{levels(book.asks())}],'
        f'"checksum":{book.checksum},"timestamp":"resync"}}]}}'
    ).encode()


def extra_decimal(match: re.Match[bytes]) -> bytes:
    return b'"price":%s%s1' % (match[1], match[2] or b".0")


def corrupt(spec: StreamSpec, every: int) -> Iterator[bytes]:
    """``spec``'s stream with every ``every``-th update spoiled (a wrong qty, a price
    with a decimal too many, or a malformed level), each followed by a snapshot of the
    true book."""
    truth = Book(spec.instrument, spec.depth)
    parser = Parser(InstrumentTable([spec.instrument]))
    for n, raw in enumerate(generate_frames(spec)):
        (frame,) = parser.parse(raw)
        assert truth.apply(frame) is None
        if n == 0 or n % every:
            yield raw
            continue
        if n % 3 == 0:
            yield raw.replace(b'"qty":', b'"qty":1', 1)
        elif n % 3 == 1:  # 30000.5 -> 30000.51, 30000 -> 30000.01: one decimal too many
            yield re.sub(rb'"price":(\d+)(\.\d+)?', extra_decimal, raw, count=1)
        else:
            yield raw.replace(b'"qty":', b'"qty_":', 1)
        yield snapshot_of(truth)


@needs_c
@pytest.mark.parametrize("depth", [10, 25, 1000])
def test_synthetic_stream_frame_by_frame(depth: int) -> None:
    spec = StreamSpec(frames=2500, depth=depth, seed=depth)
    table = InstrumentTable([spec.instrument])
    c_parser, py_parser = Parser(table), Parser(table)
    c_books = {spec.instrument.symbol: Book(spec.instrument, depth)}
    py_books = {spec.instrument.symbol: Book(spec.instrument, depth)}
    seen: dict[Any, int] = {}
    for raw in corrupt(spec, 97):
        result = parse_both(raw, c_parser, c_books, py_parser, py_books)
        kind = result[0] if result[0] == "raised" else result[1][2] is None
        seen[kind] = seen.get(kind, 0) + 1
    # Errors, mismatches and (most of all) verified updates, every one compared.
    assert seen["raised"] >= 10 and seen[False] >= 5 and seen[True] >= 2400, seen


PRICES = st.integers(1, 80)
QTYS = st.one_of(st.just(0), st.integers(1, 10**11))
BAD_NUMBERS = st.sampled_from([-1, -0.5, True, False, None, "1", 0.05, 1e-9, 1e20, [], 0])


@st.composite
def level(draw: st.DrawFn) -> Any:
    """A wire level: mostly what orjson makes of a good one, sometimes not."""
    kind = draw(st.integers(0, 24))
    p, q = draw(PRICES), draw(QTYS)
    (good,) = wire([(p, q)])
    if kind == 0:
        return {"price": draw(BAD_NUMBERS), "qty": good["qty"]}
    if kind == 1:
        return {"price": good["price"], "qty": draw(BAD_NUMBERS)}
    if kind == 2:
        return draw(st.sampled_from([{"price": good["price"]}, [1, 2], None, {}]))
    if kind == 3:  # a whole price as an int, a zero qty as a float
        return {"price": p // 10 or 1, "qty": 0.0}
    return good


INT_LEVELS = st.lists(st.tuples(PRICES, st.integers(1, 10**11)), max_size=30)
messages = st.lists(
    st.tuples(
        st.integers(0, 9),  # 0: a snapshot, 1: a wrong checksum, 2: an invalidation
        st.lists(level(), max_size=5),
        st.lists(level(), max_size=5),
        INT_LEVELS,
    ),
    max_size=25,
)


@needs_c
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.sampled_from([10, 11, 25, 1000]), stream=messages)
def test_random_updates_agree_between_the_cores(
    depth: int, stream: list[tuple[int, list[Any], list[Any], list[tuple[int, int]]]]
) -> None:
    c_book, py_book = twins(depth=depth, n=15)
    for kind, bids, asks, snapshot in stream:
        if kind == 0:  # a snapshot through the shared Python code
            frame = BookFrame("BTC/USD", True, tuple(snapshot), tuple(snapshot[::2]), 0, "s")
            assert c_book.apply(frame) == py_book.apply(frame)
            assert state(c_book) == state(py_book)
            continue
        if kind == 2:
            c_book.invalidate()
            py_book.invalidate()
        probe = Book(BTC, depth)  # learns the checksum this update should bring
        for name, value in state(c_book).items():
            setattr(probe, name, value)
        probe._valid = True
        with contextlib.suppress(PrecisionLost, KeyError, TypeError):
            probe._apply_wire_update_py(bids, asks, 0, "t")
        checksum = probe.checksum ^ 0x5A5A if kind == 1 else probe.checksum
        result = both_apply(c_book, py_book, bids, asks, checksum)
        if result[0] == "returned":
            continue
        # What parse_into does next: apply the exactly decoded frame, or drop the book.
        frame = exact_update(bids, asks, checksum)
        if result[1] is PrecisionLost and frame is not None:
            assert c_book.apply(frame) == py_book.apply(frame)
        else:
            c_book.invalidate()
            py_book.invalidate()
        assert state(c_book) == state(py_book)
        check_invariants(c_book)


def exact_update(bids: list[Any], asks: list[Any], checksum: int) -> BookFrame | None:
    """The update as the exact decoder reads it (BTC/USD), or None if it refuses it."""

    def scaled(value: Any, precision: int, least: int) -> int:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ValueError(value)
        n = Decimal(repr(value)).scaleb(precision)
        if n != n.to_integral_value() or n < least:
            raise ValueError(value)
        return int(n)

    try:
        levels = [
            tuple((scaled(lv["price"], 1, 1), scaled(lv["qty"], 8, 0)) for lv in side)
            for side in (bids, asks)
        ]
    except (ValueError, KeyError, TypeError):
        return None
    return BookFrame("BTC/USD", False, levels[0], levels[1], checksum, "t")


# -- memory: no leak on any path -----------------------------------------------------------


def mixed_stream(depth: int) -> list[bytes]:
    """A snapshot, then updates with mismatches, inexact numbers and malformed levels."""
    frames = 1500 if depth < 100 else 500  # each spoiled frame brings a whole snapshot
    return list(corrupt(StreamSpec(frames=frames, depth=depth, seed=3), 41))


def run_stream(raws: list[bytes], parser: Parser, books: dict[str, Book]) -> None:
    for raw in raws:
        with contextlib.suppress(ProtocolError):
            parse_into(parser, raw, books)


@needs_c
@pytest.mark.parametrize("depth", [10, 1000])
def test_no_memory_is_kept_per_frame(depth: int) -> None:
    """tracemalloc sees every allocation, the C core's included: rounds over the same
    frames must end where they started."""
    raws = mixed_stream(depth)
    parser = Parser(InstrumentTable([BTC]))
    books = {"BTC/USD": Book(BTC, depth)}
    for _ in range(2):
        run_stream(raws, parser, books)
    gc.collect()
    tracemalloc.start()
    try:
        run_stream(raws, parser, books)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(16):
            run_stream(raws, parser, books)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # A leak of one small object per frame would be 16 x 500 x 32 bytes (256 kB) or more.
    # What does grow without a leak is bounded: CPython's free lists keep freed dicts and
    # tuples, still traced at their first allocation (the exact path's JSON decoder), and
    # fill up over the rounds; 4 to 25 kB here, once 17 kB over 4 rounds after the suite.
    assert grown < 64_000, grown


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


@needs_c
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_refcounts_and_rss_stay_flat_over_300k_frames() -> None:
    spec = StreamSpec(frames=3000, depth=10, seed=11)
    raws = list(generate_frames(spec))
    msgs = [orjson.loads(raw) for raw in raws[1:]]
    parser = Parser(InstrumentTable([spec.instrument]))
    book = Book(spec.instrument, 10)
    books = {spec.instrument.symbol: book}
    fused = book_module.c_fused_update
    assert fused is not None

    def rounds(n: int) -> None:
        for _ in range(n):
            parse_into(parser, raws[0], books)
            for msg in msgs:
                fused(msg, books)
            assert book.valid and book.mismatches == 0

    rounds(10)
    gc.collect()
    watched = [book, book._updated, books, msgs[0], msgs[0]["data"][0], raws[0]]
    refs = [sys.getrefcount(x) for x in watched]
    rss = rss_kib()
    rounds(100)  # 300,000 updates
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == refs
    assert rss_kib() - rss < 2048


@needs_c
def test_books_are_collected_with_their_cycle() -> None:
    """``_updated`` refers back to its book: the GC must see through BookCore."""
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(3):
            for _ in range(500):
                book = loaded()
                c_apply(book, [GOOD], [], 0, "t")
            del book
            gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            book = loaded()
            c_apply(book, [GOOD], [], 0, "t")
        del book
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 16_000, grown


# ------------------------------------------------------------------ the view's levels


_UPDATES = st.lists(st.tuples(st.integers(9_900, 10_100), st.integers(0, 5)), max_size=20)


def _change_levels(book: Book, updates: list[tuple[int, int]]) -> None:
    """Holes, changed quantities and new levels on both sides (bids below 10,005), set in
    the book's state directly."""
    for price, qty in updates:
        side = book._bq if price < 10_005 else book._aq
        keys = book._bp if price < 10_005 else book._ap
        key = -price if price < 10_005 else price
        if qty:
            if key not in side:
                keys.append(key)
                keys.sort()
            side[key] = qty
        elif key in side:
            del side[key]
            keys.remove(key)


@needs_c
@settings(max_examples=150, deadline=None)
@given(
    n_levels=st.integers(0, 30),
    n=st.integers(0, 40),
    updates=_UPDATES,
)
def test_levels_copy_what_bids_and_asks_list(
    n_levels: int, n: int, updates: list[tuple[int, int]]
) -> None:
    book = loaded(n=n_levels) if n_levels else Book(BTC, 1000)
    _change_levels(book, updates)
    bids, asks = _bookcore.levels(book, n)
    assert bids == tuple(book.bids(n)) and asks == tuple(book.asks(n))
    view = book.view(n)
    assert (view.bids, view.asks) == (bids, asks)
    assert all(type(x) is tuple and len(x) == 2 for x in bids + asks)


@needs_c
def test_levels_refuses_what_it_cannot_read() -> None:
    book = loaded()
    with pytest.raises(ValueError, match="count"):
        _bookcore.levels(book, -1)
    with pytest.raises(TypeError, match="BookCore"):
        _bookcore.levels(object(), 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _bookcore.levels(book, 1, 2)  # type: ignore[call-arg]
    broken = loaded()
    broken._bq = {}  # a price listed with no quantity
    with pytest.raises(KeyError):
        _bookcore.levels(broken, 3)
    broken._bq = dict(book._bq)
    broken._ap = ()  # type: ignore[assignment]
    with pytest.raises(TypeError, match="sides"):
        _bookcore.levels(broken, 3)
    with pytest.raises(AttributeError, match="no sides"):
        _bookcore.levels(Book.__new__(Book), 1)
    assert book.view(-1).bids == tuple(book.bids(-1))  # Python's slice rule, as before
    watched = [book._bp[0], book._bq[book._bp[0]], book._ap[0], book._aq[book._ap[0]]]
    for _ in range(10):
        _bookcore.levels(book, 10)
    before = [sys.getrefcount(x) for x in watched]
    for _ in range(1000):
        _bookcore.levels(book, 10)
    assert [sys.getrefcount(x) for x in watched] == before  # no reference kept per call


@needs_c
def test_a_view_reuses_the_levels_a_message_did_not_change() -> None:
    book = loaded()
    first = book.view()
    again = book.view()
    assert again.bids is first.bids and again.asks is first.asks  # nothing changed
    price, qty = first.bids[3][0], first.bids[3][1] + 1
    bids = [*first.bids[:3], (price, qty), *first.bids[4:]]
    truth = book_checksum(list(first.asks), bids)
    assert book.apply(BookFrame(BTC.symbol, False, ((price, qty),), (), truth, "t")) is None
    second = book.view()
    assert second.bids == tuple(book.bids(10)) == tuple(bids)
    assert second.asks is first.asks  # the side the message did not touch
    assert [a is b for a, b in zip(first.bids, second.bids, strict=True)] == [
        True, True, True, False, True, True, True, True, True, True,
    ]  # fmt: skip


_LEVEL = st.tuples(st.integers(-(2**70), 2**70), st.integers(0, 2**70))


@needs_c
@settings(max_examples=200, deadline=None)
@given(
    n_levels=st.integers(0, 15),
    n=st.integers(0, 12),
    updates=_UPDATES,
    foreign=st.tuples(st.lists(_LEVEL, max_size=12), st.lists(_LEVEL, max_size=12)),
    shift=st.integers(-3, 3).filter(bool),
)
def test_levels_from_an_earlier_copy_are_the_levels_now(
    n_levels: int,
    n: int,
    updates: list[tuple[int, int]],
    foreign: tuple[list[tuple[int, int]], list[tuple[int, int]]],
    shift: int,
) -> None:
    """Whatever the earlier copy (this book's before the changes, or any levels at all),
    the result is the book's levels now."""
    book = loaded(n=n_levels) if n_levels else Book(BTC, 1000)
    earlier = _bookcore.levels(book, n)
    _change_levels(book, updates)
    now = (tuple(book.bids(n)), tuple(book.asks(n)))
    assert _bookcore.levels(book, n, earlier) == now
    assert _bookcore.levels(book, n, (tuple(foreign[0]), tuple(foreign[1]))) == now
    assert _bookcore.levels(book, n, now) == now
    assert _bookcore.levels(book, n, None) == now
    # The same quantity objects at other prices: a quantity alone does not make a level.
    moved = tuple(tuple((p + shift, q) for p, q in side) for side in now)
    assert _bookcore.levels(book, n, moved) == now  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prev"):
        _bookcore.levels(book, n, [now[0], now[1]])  # type: ignore[arg-type]
