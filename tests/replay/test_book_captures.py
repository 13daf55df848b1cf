"""The book on real Kraken captures: every recorded checksum must verify.

Captures (../shared/data/kraken/README.md):

- python-kraken-sdk_orderbook-v2.json: WS v2, BTC/USD, depth 10, 1 snapshot + 509
  updates, all 510 checksummed. Numbers are JSON floats: converted with the instrument's
  precisions from the recorded instrument snapshot.
- python-kraken-sdk_orderbook-v1.json: WS v1, XBT/USD book-10, 979 checksummed updates.
- cryptofeed_KRAKEN.ws.50.0: WS v1 book-1000, 10 pairs, 4,269 checksummed updates.

v1 prints every number as text with its pair's fixed decimals, so its scaled int is the text
without the dot, and the precision is the number of digits after it. v1 snapshots carry no
checksum: the test gives the snapshot frame the checksum of its own levels (from the v1
text rule), and every update is then checked against Kraken's.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.book_stream import StreamSpec, generate_frames
from bot.kraken.checksum import book_checksum_v1
from bot.kraken.instruments import Instrument, InstrumentTable, instruments_from_ws_frame
from bot.kraken.protocol import BookFrame, Parser
from bot.market.book import Book, BookApplied, BookMismatch
from bot.market.frames import parse_into

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/kraken"


def load(name: str) -> Any:
    return orjson.loads((DATA / name).read_bytes())


@pytest.fixture(scope="module")
def btc_usd() -> Instrument:
    table = InstrumentTable(
        instruments_from_ws_frame(load("kraken-data-recorder_instrument_snapshot.json"))
    )
    inst = table["BTC/USD"]
    assert (inst.price_precision, inst.qty_precision) == (1, 8)
    return inst


def v2_frame(msg: dict[str, Any], inst: Instrument) -> BookFrame:
    (data,) = msg["data"]
    price, qty = inst.price, inst.qty
    return BookFrame(
        symbol=data["symbol"],
        snapshot=msg["type"] == "snapshot",
        bids=tuple((price(lv["price"]), qty(lv["qty"])) for lv in data["bids"]),
        asks=tuple((price(lv["price"]), qty(lv["qty"])) for lv in data["asks"]),
        checksum=data["checksum"],
        timestamp=data.get("timestamp", ""),
    )


@pytest.fixture(scope="module")
def v2_frames(btc_usd: Instrument) -> list[BookFrame]:
    capture = load("python-kraken-sdk_orderbook-v2.json")
    return [v2_frame(msg, btc_usd) for msg in [capture["init"], *capture["updates"]]]


def test_v2_capture_every_checksum_verifies(
    btc_usd: Instrument, v2_frames: list[BookFrame]
) -> None:
    assert len(v2_frames) == 510
    assert v2_frames[0].snapshot and not any(f.snapshot for f in v2_frames[1:])
    book = Book(btc_usd, depth=10)
    verified = 0
    for f in v2_frames:
        assert book.apply(f) is None, f
        assert book.valid
        verified += 1
    assert verified == 510
    assert book.checksum == v2_frames[-1].checksum
    assert book.mismatches == 0 and book.ignored == 0
    assert len(book.bids()) == 10 and len(book.asks()) == 10
    assert not book.is_crossed()


def test_v2_capture_needs_depth_10_truncation(
    btc_usd: Instrument, v2_frames: list[BookFrame]
) -> None:
    book = Book(btc_usd, depth=25)  # wrong depth: levels pushed out by Kraken linger
    results = [book.apply(f) for f in v2_frames]
    assert any(isinstance(r, BookMismatch) for r in results)


def test_v2_corrupt_frame_is_caught_and_resync_recovers(
    btc_usd: Instrument, v2_frames: list[BookFrame]
) -> None:
    k = 100
    target = v2_frames[k]
    if target.bids:
        (p, q), *rest = target.bids
        corrupt = target._replace(bids=((p, q + 1), *rest))
    else:
        (p, q), *rest = target.asks
        corrupt = target._replace(asks=((p, q + 1), *rest))

    book = Book(btc_usd, depth=10)
    for f in v2_frames[:k]:
        assert book.apply(f) is None
    result = book.apply(corrupt)
    assert isinstance(result, BookMismatch)
    assert result.symbol == "BTC/USD"
    assert result.expected == target.checksum
    assert result.computed != target.checksum
    assert not book.valid
    # The rest of the stream is ignored until a snapshot arrives...
    for f in v2_frames[k + 1 :]:
        assert book.apply(f) is None
    assert book.ignored == len(v2_frames) - k - 1
    assert not book.valid
    # ... and a snapshot (here: the capture's own) makes the book valid again.
    assert book.apply(v2_frames[0]) is None
    assert book.valid


# -- v1 -----------------------------------------------------------------------------------


def v1_levels(
    raw: list[list[str]], precisions: set[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    out = []
    for price, qty, *_ in raw:  # a 4th element "r" marks a republished level
        precisions.add((len(price.partition(".")[2]), len(qty.partition(".")[2])))
        out.append((int(price.replace(".", "")), int(qty.replace(".", ""))))
    return tuple(out)


def v1_stream(messages: list[Any]) -> Iterator[tuple[str, BookFrame, list[dict[str, Any]]]]:
    """(pair, frame, raw dicts) for each v1 book message; snapshots get their own CRC."""
    precisions: dict[str, set[tuple[int, int]]] = {}
    for msg in messages:
        if not isinstance(msg, list):
            continue  # events: heartbeat, systemStatus, subscriptionStatus, pong
        pair, dicts = msg[-1], msg[1:-2]
        seen = precisions.setdefault(pair, set())
        if "as" in dicts[0] or "bs" in dicts[0]:
            raw_asks, raw_bids = dicts[0].get("as", []), dicts[0].get("bs", [])
            asks, bids = v1_levels(raw_asks, seen), v1_levels(raw_bids, seen)
            text_asks = sorted(((p, q) for p, q, *_ in raw_asks), key=lambda lv: float(lv[0]))
            text_bids = sorted(((p, q) for p, q, *_ in raw_bids), key=lambda lv: -float(lv[0]))
            checksum = book_checksum_v1(text_asks, text_bids)
            yield pair, BookFrame(pair, True, bids, asks, checksum, ""), dicts
        else:
            asks = tuple(lv for d in dicts for lv in v1_levels(d.get("a", []), seen))
            bids = tuple(lv for d in dicts for lv in v1_levels(d.get("b", []), seen))
            checksum = int(dicts[-1]["c"])
            yield pair, BookFrame(pair, False, bids, asks, checksum, ""), dicts
        assert len(seen) == 1, f"{pair}: mixed decimals {seen}"


def test_v1_book_10_capture_verifies() -> None:
    capture = load("python-kraken-sdk_orderbook-v1.json")
    book = Book(Instrument("XBT/USD", "XBT", "USD", 5, 8), depth=10)
    # The v1 text rule on a plain string book, as a check of book_checksum_v1 itself.
    text: dict[str, dict[str, str]] = {"a": {}, "b": {}}
    checked = 0
    for _, frame, dicts in v1_stream([*capture["init"], *capture["updates"]]):
        assert book.apply(frame) is None
        assert book.valid
        for d in dicts:
            for key in ("a", "b"):
                for price, qty, *_ in d.get(key, d.get(key + "s", [])):
                    if float(qty):
                        text[key][price] = qty
                    else:
                        text[key].pop(price, None)
        asks = sorted(text["a"].items(), key=lambda lv: float(lv[0]))[:10]
        bids = sorted(text["b"].items(), key=lambda lv: -float(lv[0]))[:10]
        text = {"a": dict(asks), "b": dict(bids)}
        if not frame.snapshot:
            assert book_checksum_v1(asks, bids) == frame.checksum
            checked += 1
    assert checked == 979


def test_v1_book_1000_capture_verifies_for_ten_pairs() -> None:
    lines = (DATA / "cryptofeed_KRAKEN.ws.50.0").read_text().splitlines()
    # "<ts>: <json>" per received message; the header and "<-" (sent) lines are skipped.
    messages = [
        orjson.loads(line.partition(": ")[2])
        for line in lines[1:]
        if line and " <- " not in line.partition(":")[0]
    ]
    books: dict[str, Book] = {}
    checked = 0
    for pair, frame, _ in v1_stream(messages):
        book = books.get(pair)
        if book is None:
            book = books[pair] = Book(Instrument(pair, "", "", 0, 0), depth=1000)
        assert book.apply(frame) is None, (pair, checked)
        checked += not frame.snapshot
    assert checked == 4269
    assert len(books) == 10
    assert all(b.valid and b.mismatches == 0 for b in books.values())
    assert max(len(b.bids()) for b in books.values()) > 100  # deep books, not just the top


# -- the fused path (frames.parse_into) against the two-step one (parse, then apply) ------


def snapshot_of(book: Book) -> bytes:
    """A WS v2 snapshot of ``book``'s levels, printed as Kraken prints numbers."""
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


def run_both(raws: Iterable[bytes], inst: Instrument, depth: int) -> list[BookMismatch | None]:
    """Each frame through both paths, on twin books: same results, same books."""
    fused_parser, plain_parser = Parser(InstrumentTable([inst])), Parser(InstrumentTable([inst]))
    fused, plain = Book(inst, depth), Book(inst, depth)
    results: list[BookMismatch | None] = []
    for n, raw in enumerate(raws):
        (frame,) = plain_parser.parse(raw)
        assert type(frame) is BookFrame
        expected = plain.apply(frame)
        assert parse_into(fused_parser, raw, {inst.symbol: fused}) == [
            BookApplied(fused, frame.snapshot, expected)
        ]
        assert (fused.checksum, fused.valid, fused.timestamp) == (
            plain.checksum,
            plain.valid,
            plain.timestamp,
        )
        assert (fused.ignored, fused.mismatches) == (plain.ignored, plain.mismatches)
        if n % 50 == 0 or expected is not None:
            assert fused.top(depth) == plain.top(depth)
        results.append(expected)
    assert fused.top(depth) == plain.top(depth)
    return results


def test_v2_capture_fused_path_agrees_including_a_corrupt_frame(btc_usd: Instrument) -> None:
    capture = load("python-kraken-sdk_orderbook-v2.json")
    messages = [capture["init"], *capture["updates"]]
    raws = [orjson.dumps(msg) for msg in messages]
    assert run_both(raws, btc_usd, 10) == [None] * 510
    # A wrong qty in update 100: a mismatch, 409 ignored updates, then the snapshot again.
    corrupt = copy.deepcopy(messages[100])
    (item,) = corrupt["data"]
    side = item["bids"] or item["asks"]
    side[0]["qty"] = round(side[0]["qty"] + 0.00000001, 8)
    results = run_both([*raws[:100], orjson.dumps(corrupt), *raws[101:], raws[0]], btc_usd, 10)
    assert results[:100] == [None] * 100
    assert isinstance(results[100], BookMismatch)
    assert results[101:] == [None] * 410


def flip_checksum(match: re.Match[bytes]) -> bytes:
    return b'"checksum":%d' % (int(match[1]) ^ 0x5A5A)


def corrupted_stream(spec: StreamSpec) -> Iterator[bytes]:
    """``spec``'s stream with a wrong checksum every 701 frames and a wrong qty every 997,
    each followed by a snapshot of the true book, as a resubscription would bring."""
    truth = Book(spec.instrument, spec.depth)
    parser = Parser(InstrumentTable([spec.instrument]))
    for n, raw in enumerate(generate_frames(spec)):
        (frame,) = parser.parse(raw)
        assert truth.apply(frame) is None
        if n and n % 701 == 0:
            yield re.sub(rb'"checksum":(\d+)', flip_checksum, raw)
        elif n and n % 997 == 0:
            yield raw.replace(b'"qty":', b'"qty":1', 1)  # 0.5 -> 10.5, a delete -> 10
        else:
            yield raw
            continue
        yield snapshot_of(truth)


@pytest.mark.parametrize("depth", [10, 1000])
def test_synthetic_stream_fused_path_agrees_including_corrupt_frames(depth: int) -> None:
    spec = StreamSpec(frames=3000, depth=depth, seed=7)
    assert run_both(generate_frames(spec), spec.instrument, depth) == [None] * 3000
    results = run_both(corrupted_stream(spec), spec.instrument, depth)
    assert len(results) == 3000 + 7  # 4 + 3 corrupt frames, each followed by a snapshot
    assert sum(isinstance(r, BookMismatch) for r in results) >= 4  # a deep qty may hide
    assert results[-1] is None
