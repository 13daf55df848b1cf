"""``MarketFrames``: frames in, books and events out (the path the feed, replay and the
backtester share). Streams come from ``bench.book_stream`` (correct checksums)."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

import orjson
import pytest

from bench.book_stream import BTC_USD, StreamSpec, generate_frames
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.kraken.protocol import Event, InstrumentFrame, Pong, Status, TradeFrame, Unparsed
from bot.market.frames import BookInvalid, BookUpdated, BookValid, MarketEvent, MarketFrames

ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)


class Seen:
    """The sink, the control hook and the resync hook in one: every call, in order."""

    def __init__(self) -> None:
        self.events: list[MarketEvent] = []
        self.control: list[Event] = []
        self.resyncs: list[tuple[str, str, bool]] = []

    def sink(self, event: MarketEvent) -> None:
        self.events.append(event)

    def on_control(self, event: Event) -> None:
        self.control.append(event)

    def on_resync(self, symbol: str, reason: str, again: bool) -> None:
        self.resyncs.append((symbol, reason, again))

    def validity(self, symbol: str) -> list[str]:
        return [
            "valid" if isinstance(e, BookValid) else f"invalid:{e.reason}"
            for e in self.events
            if isinstance(e, BookValid | BookInvalid) and e.symbol == symbol
        ]


def market(seen: Seen, *instruments: Instrument, **kw: Any) -> MarketFrames:
    table = InstrumentTable(instruments or (BTC_USD, ETH))
    return MarketFrames(table, seen.sink, control=seen.on_control, on_resync=seen.on_resync, **kw)


def stream(n: int, instrument: Instrument = BTC_USD, seed: int = 5) -> list[bytes]:
    spec = StreamSpec(frames=n, depth=10, seed=seed, instrument=instrument)
    return list(generate_frames(spec))


def corrupt(frame: bytes) -> bytes:
    msg = orjson.loads(frame)
    msg["data"][0]["checksum"] = (msg["data"][0]["checksum"] + 1) % 2**32
    return orjson.dumps(msg)


def test_a_stream_verifies_and_every_update_is_one_event() -> None:
    seen = Seen()
    m = market(seen)
    book = m.track("BTC/USD")
    assert book is not None and m.books == {"BTC/USD": book}
    frames = stream(50)
    for i, raw in enumerate(frames):
        m.push(raw, recv_ns=1000 + i)
    assert seen.validity("BTC/USD") == ["valid"]
    updates = [e for e in seen.events if isinstance(e, BookUpdated)]
    assert len(updates) == 50 and updates[0].snapshot and not updates[1].snapshot
    # A verified update's event is immutable and the same object each time (no allocation).
    assert updates[1] is updates[-1] and updates[1].book is book
    assert m.stats.book_frames == 50 and m.stats.last_recv_ns == {"BTC/USD": 1049}
    assert book.valid and m.is_valid("BTC/USD") and not seen.resyncs


def test_a_mismatch_invalidates_asks_a_resync_and_again_if_it_fails_once_more() -> None:
    seen = Seen()
    m = market(seen)
    m.track("BTC/USD")
    frames = stream(30)
    for raw in frames[:10]:
        m.push(raw)
    m.push(corrupt(frames[10]))
    for raw in frames[11:20]:  # ignored: the book waits for a snapshot
        m.push(raw)
    assert seen.validity("BTC/USD") == ["valid", "invalid:checksum mismatch"]
    assert seen.resyncs == [("BTC/USD", "checksum mismatch", False)]
    assert m.stats.checksum_failures == {"BTC/USD": 1} and m.stats.ignored == {"BTC/USD": 9}
    # The fresh snapshot is corrupt too: asked again, and said so.
    m.push(corrupt(frames[0]))
    assert seen.resyncs[-1] == ("BTC/USD", "checksum mismatch", True)
    m.push(frames[0])  # now good: valid, and the next failure is a first one again
    m.push(corrupt(frames[1]))
    assert seen.validity("BTC/USD") == [
        "valid",
        "invalid:checksum mismatch",
        "valid",
        "invalid:checksum mismatch",
    ]
    assert seen.resyncs[-1] == ("BTC/USD", "checksum mismatch", False)


@pytest.mark.parametrize(
    ("bad", "broken"),
    [
        # The envelope is wrong (checksum not a u32): no level applied, an update missed.
        (
            b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],'
            b'"asks":[],"checksum":"x","timestamp":"t"}]}',
            ["BTC/USD"],
        ),
        (b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD"', ["BTC/USD"]),
        # A book frame whose symbol cannot be read: any book may have missed it.
        (b'{"channel":"book","type":"update","data":[{"bids":[]}]}', ["BTC/USD", "ETH/USD"]),
        (b'{"channel":"book","type":"upd', ["BTC/USD", "ETH/USD"]),
        # Not ours, or not a book frame: every book keeps going.
        (b'{"channel":"book","type":"update","data":[{"symbol":"NOPE/USD"}]}', []),
        (b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD"}]}', []),
        (b"not json at all", []),
    ],
)
def test_a_frame_that_cannot_be_parsed_breaks_the_books_it_may_have_been_for(
    bad: bytes, broken: list[str]
) -> None:
    seen = Seen()
    m = market(seen)
    m.track("BTC/USD")
    m.track("ETH/USD")
    m.push(stream(1)[0])
    m.push(stream(1, ETH)[0])
    m.push(bad)
    assert [type(e) for e in seen.control] == [Unparsed]  # the owner counts and logs it
    assert isinstance(seen.events[-1 - len(broken)], Unparsed)
    assert [s for s, _, _ in seen.resyncs] == broken
    for symbol in ("BTC/USD", "ETH/USD"):
        expected = ["valid", "invalid:bad frame"] if symbol in broken else ["valid"]
        assert seen.validity(symbol) == expected
        assert m.books[symbol].valid is (symbol not in broken)


def test_a_precision_change_replaces_and_resyncs_the_book() -> None:
    seen = Seen()
    m = market(seen)
    old = m.track("BTC/USD")
    m.push(stream(1)[0])
    pair = {"symbol": "BTC/USD", "base": "BTC", "quote": "USD"}
    same = {**pair, "price_precision": 1, "qty_precision": 8, "status": "limit_only"}
    changed = {**pair, "price_precision": 2, "qty_precision": 8}

    def instrument_frame(*pairs: dict[str, Any]) -> bytes:
        frame = {"channel": "instrument", "type": "update", "data": {"pairs": list(pairs)}}
        return json.dumps(frame).encode()

    m.push(instrument_frame(same))  # nothing that matters to the book: it keeps going
    assert m.books["BTC/USD"] is old and old.valid and not seen.resyncs
    assert old.instrument.status == "limit_only"
    m.push(instrument_frame(changed))
    new = m.books["BTC/USD"]
    assert new is not old and new.instrument.price_precision == 2 and not new.valid
    assert seen.validity("BTC/USD") == ["valid", "invalid:instrument changed"]
    assert seen.resyncs == [("BTC/USD", "instrument changed", False)]
    kinds = [type(e) for e in seen.events]
    assert kinds.index(InstrumentFrame) < kinds.index(BookInvalid)  # the frame, then its effect
    assert type(seen.control[-1]) is InstrumentFrame


def test_auto_books_start_at_the_first_frame_with_the_depth_an_ack_named() -> None:
    seen = Seen()
    m = market(seen, BTC_USD, auto_books=True, depth=10)
    ack = {
        "method": "subscribe",
        "result": {"channel": "book", "depth": 25, "symbol": "BTC/USD", "snapshot": True},
        "success": True,
    }
    m.push(json.dumps(ack).encode())
    spec = StreamSpec(frames=5, depth=25, seed=9)
    for raw in generate_frames(spec):
        m.push(raw)
    book = m.books["BTC/USD"]
    assert book.depth == 25 and book.valid and seen.validity("BTC/USD") == ["valid"]
    assert len([e for e in seen.events if isinstance(e, BookUpdated)]) == 5


def test_without_a_book_frames_are_counted_not_passed_on_and_the_rest_is_routed() -> None:
    seen = Seen()
    m = market(seen)  # no book tracked
    for raw in islice(stream(3), 3):
        m.push(raw)
    assert not seen.events and m.stats.book_frames_by_symbol == {"BTC/USD": 3}
    status = {"system": "online", "api_version": "v2", "connection_id": 1, "version": "2"}
    trade = {
        "symbol": "BTC/USD",
        "side": "buy",
        "price": 30000.1,
        "qty": 0.5,
        "ord_type": "limit",
        "trade_id": 1,
        "timestamp": "t",
    }
    m.push(json.dumps({"channel": "status", "type": "update", "data": [status]}).encode())
    m.push(b'{"channel":"heartbeat"}')
    m.push(b'{"method":"pong","req_id":4}')
    m.push(json.dumps({"channel": "trade", "type": "update", "data": [trade]}).encode())
    assert [type(e) for e in seen.control] == [Status, Pong]  # the owner's business
    assert [type(e) for e in seen.events] == [Status, TradeFrame]  # no heartbeat, no pong


def test_invalidate_all_tells_only_about_valid_books_or_nothing_when_quiet() -> None:
    seen = Seen()
    m = market(seen)
    m.track("BTC/USD")
    m.track("ETH/USD")
    m.push(stream(1)[0])  # only BTC/USD became valid
    m.invalidate_all("disconnected")
    assert seen.validity("BTC/USD") == ["valid", "invalid:disconnected"]
    assert seen.validity("ETH/USD") == []
    m.push(stream(1)[0])
    m.invalidate_all(None)
    assert seen.validity("BTC/USD") == ["valid", "invalid:disconnected", "valid"]
    assert not any(book.valid for book in m.books.values())


def test_the_valid_probe_reads_the_books_the_sink_was_told_are_valid() -> None:
    """``valid_probe`` (the daemon's readiness probe of its books) is true exactly while
    every named book is valid as the sink was told: after each one's snapshot, until a
    mismatch, a bad frame or a lost connection, and again after a fresh snapshot; it
    reads the live state, so one probe serves the daemon's whole life."""
    seen = Seen()
    m = market(seen)
    m.track("BTC/USD")
    m.track("ETH/USD")
    both, btc = m.valid_probe(["BTC/USD", "ETH/USD"]), m.valid_probe(("BTC/USD",))
    btc_frames, eth_frames = stream(20), stream(20, ETH, seed=9)
    assert not both() and not btc()
    m.push(btc_frames[0])
    assert btc() and not both()  # ETH/USD has no snapshot yet
    m.push(eth_frames[0])
    assert both()
    for raw in btc_frames[1:5]:
        m.push(raw)
    assert both()
    m.push(corrupt(btc_frames[5]))  # a checksum mismatch: BTC/USD waits for a snapshot
    assert not both() and not btc() and not m.books["BTC/USD"].valid
    m.push(btc_frames[0])
    assert both()
    m.push(b'{"channel":"book","type":"update","data":[{"symbol":"ETH/USD"')  # a bad frame
    assert btc() and not both()
    m.push(eth_frames[0])
    assert both()
    m.invalidate_all("disconnected")
    assert not both() and not btc()
    assert m.valid_probe(())()  # nothing named: nothing to wait for
