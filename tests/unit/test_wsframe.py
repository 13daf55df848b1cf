"""The C ``add_order`` frame (``bot/execution/_wsframe.c``) against its Python reference.

Both run in this process: ``_wsframe.AddOrderFrames`` and ``ws_requests.PyAddOrderFrames``
are called in lockstep on the same orders (``PlaceTerms``, so any value reaches them, not
only what ``new_order`` accepts) and must agree on every observable: the bytes or the
exception, and the cache's size after each call. Both also agree with
``add_order_frame``. The ws_requests, submit and WebSocket venue tests run once more with
the Python frames, in a subprocess (``test_ws_suites_pass_with_the_python_frames``).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.execution import ws_requests as wr
from bot.execution.orders import PlaceTerms
from bot.kraken.instruments import Instrument

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared/data/kraken"
PURE = os.environ.get("KRAKENBOT_PURE_WSFRAME", "") not in ("", "0")
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
CID = "6d1b345e28212e2ad834ecb18a068761"

needs_c = pytest.mark.skipif(wr.FRAME_CORE != "c", reason="KRAKENBOT_PURE_WSFRAME: no C frames")

if wr.FRAME_CORE == "c":
    from bot.execution import _wsframe

    CFrames: Callable[..., Any] = _wsframe.AddOrderFrames


def test_the_frames_are_the_ones_the_environment_asks_for() -> None:
    """A broken or missing build fails here, instead of falling back silently."""
    assert ("python" if PURE else "c") == wr.FRAME_CORE
    if PURE:
        assert wr.AddOrderFrames is wr.PyAddOrderFrames
    else:
        from bot.execution._wsframe import AddOrderFrames

        assert wr.AddOrderFrames is AddOrderFrames


@pytest.mark.skipif(PURE, reason="this process already writes its frames in Python")
@pytest.mark.timeout(600)
def test_ws_suites_pass_with_the_python_frames() -> None:
    """The ws_requests, submit and WebSocket venue tests, with ``KRAKENBOT_PURE_WSFRAME=1``."""
    modules = [
        "tests/unit/test_wsframe.py::test_the_frames_are_the_ones_the_environment_asks_for",
        "tests/unit/test_ws_requests.py",
        "tests/unit/test_submit_terms.py",
        "tests/loopback/test_venue_ws.py",
    ]
    env = {**os.environ, "KRAKENBOT_PURE_WSFRAME": "1"}
    pytest_cmd = [sys.executable, "-m", "pytest", "-qx", "-o", "addopts=", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*pytest_cmd, *modules], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary


def test_the_build_lists_the_c_extensions_and_make_rebuilds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """setup.py builds the frame's C file as an optional extension with the book's flags,
    and every C source of every extension is a prerequisite of the Makefile's install (as
    make itself reads it): an edit rebuilds it before ``make test``."""
    import runpy
    import shutil

    import setuptools

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: calls.append(kwargs))
    runpy.run_path(str(ROOT / "setup.py"))
    exts = {ext.name: ext for ext in calls[0]["ext_modules"]}
    book = exts["bot.market._bookcore"]
    frame = exts["bot.execution._wsframe"]
    assert frame.sources == ["bot/execution/_wsframe.c"]
    assert frame.optional and frame.extra_compile_args == book.extra_compile_args
    make = shutil.which("make")
    assert make is not None, "make builds and tests the project (the README's test command)"
    database = subprocess.run(
        [make, "-pnq", "-f", "Makefile", ".venv/.installed"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    rule = next(line for line in database.splitlines() if line.startswith(".venv/.installed:"))
    prerequisites = set(rule.split(":", 1)[1].split())
    for ext in exts.values():
        assert set(ext.sources) <= prerequisites, ext.name


# -- both ways, on random orders -----------------------------------------------------------


def _captured_pairs() -> list[tuple[str, int, int]]:
    with (DATA / "kraken-data-recorder_instrument_snapshot.json").open() as f:
        pairs = json.load(f)["data"]["pairs"]
    return [(p["symbol"], p["price_precision"], p["qty_precision"]) for p in pairs]


_HAND_MADE = [
    ("BTC/USD", 1, 8),
    ('A"B/USD', 2, 2),  # no template: add_order_frame's way
    ("A\\B/USD", 2, 2),
    ("\u00dc/USD", 3, 0),
    ("", 0, 0),
    ("X Y", 10, 10),
]
_INSTRUMENTS = st.one_of(
    st.sampled_from(_captured_pairs()),
    st.sampled_from(_HAND_MADE),
    st.tuples(st.sampled_from(["BTC/USD", "ETH/EUR"]), st.integers(-2, 10), st.integers(0, 10)),
)
_BIG = st.one_of(
    st.integers(-(10**40), 10**40),
    st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**19]),
)
_PRICES = st.one_of(st.none(), st.integers(-5, 10**6), st.integers(1, 10**12), _BIG)
_ODD_IDS = [CID, "6d1b345e-2821-40e2-ad83-4ecb18a06876", "c1", "", "a b", 'q"', "b\\s"]
_IDS = st.one_of(
    st.sampled_from([*_ODD_IDS, "x\ty", "\u00fc1", "~!@#$%^&*()", "\x7f"]),
    st.text(max_size=12),
)
_ORDERS = st.tuples(
    _INSTRUMENTS,
    st.sampled_from(["limit", "market", "stop-loss"]),
    st.sampled_from(["buy", "sell", "hold"]),
    st.one_of(st.integers(1, 10**12), _BIG),  # qty, scaled
    _PRICES,
    st.sampled_from(["GTC", "IOC", "GTD", "gtd", "\u00c7", "G1"]),
    st.booleans(),  # post_only
    _IDS,
    st.sampled_from(["t", "abc+/=", "tok\\en", 'to"k', "\u00e9t", ""]),
    st.one_of(st.integers(0, 2**31), _BIG, st.sampled_from([True, "7", 7.0])),  # req_id
)

_Order = tuple[tuple[str, int, int], str, str, int, int | None, str, bool, str, str, Any]


def outcome(call: Callable[..., bytes], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """The bytes, or the exception's type and text: what a caller could see."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # compared, not swallowed
        return "error", (type(exc), str(exc))


def terms(order: _Order) -> tuple[PlaceTerms, Instrument, str, Any]:
    (symbol, pp, qp), order_type, side, qty, price, tif, post_only, cid, token, req_id = order
    inst = Instrument(symbol, "B", "Q", price_precision=pp, qty_precision=qp)
    place = PlaceTerms(cid, symbol, side, order_type, qty, price, tif, post_only)
    return place, inst, token, req_id


@needs_c
@settings(max_examples=500, deadline=None)
@given(st.lists(_ORDERS, min_size=1, max_size=16), st.integers(1, 5))
def test_the_c_frames_are_the_python_frames(orders: list[_Order], limit: int) -> None:
    c_frames, py_frames = CFrames(limit), wr.PyAddOrderFrames(limit)
    for order in orders:
        place, inst, token, req_id = terms(order)
        expected = outcome(py_frames, place, inst, token, req_id)
        assert outcome(c_frames, place, inst, token, req_id) == expected
        assert len(c_frames) == len(py_frames) <= limit
        assert outcome(c_frames, place, inst, token=token, req_id=req_id) == expected
        general = outcome(wr.add_order_frame, place, inst, token=token, req_id=req_id)
        assert general == expected


@needs_c
def test_a_price_that_is_not_an_int_takes_add_order_frame_s_way() -> None:
    """An int subclass or a float price is outside ``OrderTerms``; the C type hands it to
    ``add_order_frame`` (format_scaled's digits) rather than writing ``str(True)``."""
    frames = CFrames()
    for price in (True, 5.0):
        place = PlaceTerms(CID, "BTC/USD", "buy", "limit", 10**6, price, "GTC", False)
        assert frames(place, BTC, "t", 9) == wr.add_order_frame(place, BTC, token="t", req_id=9)


@needs_c
def test_a_common_order_s_frame() -> None:
    """The hot case, spelled out: a known shape, our id, an int price and req_id."""
    frames = CFrames()
    place = PlaceTerms(CID, "BTC/USD", "buy", "limit", 1_000_000, 5_000_005, "IOC", True)
    want = (
        b'{"method":"add_order","params":{"order_type":"limit","side":"buy",'
        b'"order_qty":0.01000000,"limit_price":500000.5,"time_in_force":"ioc",'
        b'"post_only":true,"fee_preference":"quote","cl_ord_id":"' + CID.encode() + b'",'
        b'"symbol":"BTC/USD","token":"t"},"req_id":1048576}'
    )
    for _ in range(2):  # the template made, then from the cache
        assert frames(place, BTC, "t", 1 << 20) == want
    assert frames(place._replace(price=5), BTC, "t", 1 << 20) == want.replace(b"500000.5", b"0.5")
    assert b'"limit_price":0.0' in frames(place._replace(price=0), BTC, "t", 1)
    assert b'"limit_price":-0.5' in frames(place._replace(price=-5), BTC, "t", 1)
    big = frames(place._replace(price=10**30 + 7), BTC, "t", -(10**30))
    assert b'"limit_price":' + b"1" + b"0" * 29 + b".7," in big
    assert big.endswith(b'"req_id":-1' + b"0" * 30 + b"}")
    assert len(frames) == 1


# -- the cache ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [wr.AddOrderFrames, wr.PyAddOrderFrames])
def test_the_cache_starts_afresh_past_its_limit(make: Callable[..., Any]) -> None:
    frames = make(limit=3)
    assert len(frames) == 0
    sizes = []
    for n in range(1, 8):  # a new quantity: a new shape each time
        place = PlaceTerms(CID, "BTC/USD", "sell", "limit", n, 10, "GTC", False)
        frames(place, BTC, "t", n)
        frames(place._replace(price=11, cl_ord_id="c2"), BTC, "t", n)  # the same shape
        sizes.append(len(frames))
    assert sizes == [1, 2, 3, 1, 2, 3, 1]
    assert len(make()) == 0  # the default limit: 256
    default = make()
    for n in range(300):
        default(PlaceTerms(CID, "BTC/USD", "sell", "limit", n + 1, 10, "GTC", False), BTC, "t", 1)
    assert len(default) == 300 - 256


@pytest.mark.parametrize("make", [wr.AddOrderFrames, wr.PyAddOrderFrames])
@pytest.mark.parametrize("limit", [0, -1, -(10**30)])
def test_a_limit_below_one_is_refused(make: Callable[..., Any], limit: int) -> None:
    with pytest.raises(ValueError, match="at least one shape"):
        make(limit)
    with pytest.raises(ValueError, match="at least one shape"):
        make(limit=limit)


@needs_c
def test_a_huge_limit_is_no_limit() -> None:
    frames = CFrames(10**30)
    frames(PlaceTerms(CID, "BTC/USD", "buy", "limit", 1, 10, "GTC", False), BTC, "t", 1)
    assert len(frames) == 1


@needs_c
@pytest.mark.parametrize(
    "call",
    [
        lambda f, o: f(o, BTC, "t"),  # missing req_id
        lambda f, o: f(o, BTC, "t", 1, 2),  # one too many
        lambda f, o: f(o, BTC, "t", 1, token="t"),  # token twice
        lambda f, o: f(o, BTC, "t", reqid=1),  # no such name
        lambda f, o: f(o, BTC, "t", **{"req_id": 1, "x" * 3: 2}),
    ],
)
def test_the_arguments_are_checked_as_the_python_call_checks_them(
    call: Callable[[Any, PlaceTerms], bytes],
) -> None:
    place = PlaceTerms(CID, "BTC/USD", "buy", "limit", 1, 10, "GTC", False)
    with pytest.raises(TypeError):
        call(wr.PyAddOrderFrames(), place)
    with pytest.raises(TypeError, match="AddOrderFrames"):
        call(CFrames(), place)


@needs_c
def test_every_way_of_naming_the_arguments_is_one_frame() -> None:
    place = PlaceTerms(CID, "BTC/USD", "buy", "limit", 1, 10, "GTC", False)
    frames = CFrames()
    want = wr.add_order_frame(place, BTC, token="t", req_id=3)
    assert frames(place, BTC, "t", 3) == want
    assert frames(place, BTC, "t", req_id=3) == want
    assert frames(req_id=3, token="t", instrument=BTC, order=place) == want
    name = "".join(["req", "_id"])  # not the interned name object
    assert frames(place, BTC, "t", **{name: 3}) == want


@needs_c
def test_an_order_without_a_field_raises_as_the_python_frames_do() -> None:
    class NoPrice:
        cl_ord_id, symbol, side, order_type, qty = CID, "BTC/USD", "buy", "limit", 1
        time_in_force, post_only = "GTC", False

    for make in (CFrames, wr.PyAddOrderFrames):
        with pytest.raises(AttributeError, match="price"):
            make()(NoPrice(), BTC, "t", 1)
        with pytest.raises(AttributeError, match="symbol"):
            make()(NoPrice(), object(), "t", 1)


@needs_c
def test_bind_takes_three_callables() -> None:
    with pytest.raises(TypeError, match="three callables"):
        _wsframe._bind(len, len)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="three callables"):
        _wsframe._bind(len, len, 3)  # type: ignore[arg-type]


# -- memory --------------------------------------------------------------------------------


@needs_c
def test_refcounts_and_traced_memory_stay_flat_over_100k_calls() -> None:
    """Every path: the hot one, no price, format_scaled's, big ints, a new shape each
    round (the cache cleared past its limit), add_order_frame's, and an error."""
    frames = CFrames(limit=2)
    token, cid, price, req = "tok", CID, 5_000_005, 1 << 20
    big_price, big_req = 10**30 + 7, -(10**25)
    hot = PlaceTerms(cid, "BTC/USD", "buy", "limit", 1_000_000, price, "GTC", True)
    cases: list[tuple[Any, Instrument, Any]] = [
        (hot, BTC, req),
        (hot._replace(price=None), BTC, req),
        (hot._replace(price=-price), BTC, req),
        (hot, Instrument("BTC/USD", "B", "Q", price_precision=0, qty_precision=8), req),
        (hot._replace(price=big_price), BTC, big_req),
        (hot._replace(cl_ord_id='q"'), BTC, req),
        (hot._replace(side="hold"), BTC, req),
        (hot, BTC, "not an int"),
    ]
    broken = hot._replace(qty=object())  # format_scaled raises on it

    def rounds(n: int) -> None:
        for i in range(n):
            for order, inst, req_id in cases:
                frames(order, inst, token, req_id)
            frames(hot._replace(qty=i % 3 + 1), BTC, token, req)  # a new shape
            with pytest.raises(TypeError):
                frames(broken, BTC, token, req)

    rounds(200)
    gc.collect()
    watched = [token, cid, hot, BTC, big_price, big_req, broken, broken.qty, frames]
    refs = [sys.getrefcount(x) for x in watched]
    tracemalloc.start()
    try:
        rounds(100)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        rounds(10_000)  # 100,000 calls
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(x) for x in watched] == refs
    # A leak of one small object per call would be 100,000 x 32 bytes or more.
    assert grown < 16_000, grown
