"""WS v2 frames to events, and requests to bytes (bot/kraken/protocol.py, codec.py).

Frame examples come from Kraken's documentation (the page is cited on each), from
KRAKEN.md (which quotes the docs and one captured error frame), and from the real
capture ../shared/data/kraken/python-kraken-sdk_orderbook-v2.json.
"""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.errors import (
    ExchangeError,
    InsufficientFunds,
    ProtocolError,
    RejectedError,
    TokenError,
)
from bot.kraken import codec
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import (
    Instrument,
    InstrumentTable,
    PrecisionLost,
    instruments_from_ws_frame,
)
from bot.kraken.protocol import (
    AddOrderResult,
    AmendOrderResult,
    BookFrame,
    CancelAfterResult,
    CancelAllResult,
    CancelOrderResult,
    Event,
    ExecutionsFrame,
    Fee,
    Heartbeat,
    InstrumentFrame,
    MethodResponse,
    Parser,
    Pong,
    Status,
    SubscribeAck,
    Ticker,
    Trade,
    TradeFrame,
    UnknownInstrument,
    Unparsed,
    UnsubscribeAck,
)
from bot.market.book import Book, BookApplied
from bot.market.frames import parse_into, parse_into_safe

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/kraken"

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
MATIC = Instrument("MATIC/USD", "MATIC", "USD", price_precision=4, qty_precision=8)
ALGO = Instrument("ALGO/USD", "ALGO", "USD", price_precision=5, qty_precision=8)


def parser() -> Parser:
    return Parser(InstrumentTable([BTC, MATIC, ALGO]))


def loaded_btc_book() -> Book:
    """A valid depth-10 BTC/USD book: bids 29430.0 down, asks 29431.0 up."""
    book = Book(BTC, depth=10)
    bids = tuple((294300 - 3 * i, 10**8 + i) for i in range(10))
    asks = tuple((294310 + 2 * i, 2 * 10**8 + i) for i in range(10))
    assert book.apply(BookFrame("BTC/USD", True, bids, asks, book_checksum(asks, bids), "")) is None
    return book


def one(raw: str | bytes, p: Parser | None = None) -> Any:
    events = (p or parser()).parse(raw)
    assert len(events) == 1
    return events[0]


def frame(obj: Any) -> bytes:
    return orjson.dumps(obj)


@pytest.fixture(scope="module")
def capture() -> dict[str, Any]:
    with (DATA / "python-kraken-sdk_orderbook-v2.json").open() as f:
        data: dict[str, Any] = json.load(f)
    return data


@pytest.fixture(scope="module")
def instrument_snapshot() -> bytes:
    return (DATA / "kraken-data-recorder_instrument_snapshot.json").read_bytes()


# ------------------------------------------------------------------------------- book


def test_book_snapshot_from_the_docs() -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/book (snapshot example, KRAKEN.md §5.3)
    raw = (
        '{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD",'
        '"bids":[{"price":0.5666,"qty":4831.75496356},{"price":0.5665,"qty":6658.22734739}],'
        '"asks":[{"price":0.5668,"qty":4410.79769741},{"price":0.566,"qty":18097.1547}],'
        '"checksum":2439117997,"timestamp":"2023-10-06T17:35:55.440295Z"}]}'
    )
    ev = one(raw)
    assert ev == BookFrame(
        symbol="MATIC/USD",
        snapshot=True,
        bids=((5666, 483175496356), (5665, 665822734739)),
        asks=((5668, 441079769741), (5660, 1809715470000)),
        checksum=2439117997,
        timestamp="2023-10-06T17:35:55.440295Z",
    )


def test_book_frames_are_real_frozen_book_frames() -> None:
    raw = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],'
        '"asks":[{"price":29431.1,"qty":0.0},{"price":29433.3,"qty":0.8}],'
        '"checksum":3547452596,"timestamp":"2023-07-30T15:29:58.343415Z"}]}'
    )
    ev = one(raw)
    built = BookFrame(
        "BTC/USD", False, (), ((294311, 0), (294333, 80000000)), 3547452596, ev.timestamp
    )
    assert type(ev) is BookFrame
    assert ev == built
    assert hash(ev) == hash(built)
    assert repr(ev) == repr(built)
    with pytest.raises(AttributeError):
        ev.checksum = 1  # type: ignore[misc]
    assert ev._replace(checksum=1).checksum == 1


def test_the_real_v2_capture_parses_exactly_and_every_checksum_verifies(
    capture: dict[str, Any],
) -> None:
    p = parser()
    book = Book(BTC, depth=10)
    messages = [capture["init"], *capture["updates"]]
    for msg in messages:
        raw = frame(msg)
        (ev,) = p.parse(raw)
        # An independent exact conversion: the text decoded as Decimal, times 10**p.
        exact = json.loads(raw, parse_float=Decimal)["data"][0]
        for side in ("bids", "asks"):
            expected = tuple((int(lv["price"] * 10), int(lv["qty"] * 10**8)) for lv in exact[side])
            assert getattr(ev, side) == expected
        assert ev.checksum == exact["checksum"]
        assert ev.snapshot is (msg["type"] == "snapshot")
        assert book.apply(ev) is None, f"checksum mismatch at {ev.timestamp}"
    assert book.valid
    assert book.mismatches == 0
    assert len(messages) == 510


def test_the_capture_snapshot_has_no_timestamp_and_parses(capture: dict[str, Any]) -> None:
    assert "timestamp" not in capture["init"]["data"][0]
    ev = one(frame(capture["init"]))
    assert ev.timestamp == ""
    assert ev.bids[0] == (294302, 18967538)
    assert len(ev.bids) == len(ev.asks) == 10


def test_a_17_digit_quantity_falls_back_to_the_exact_decoder() -> None:
    # 90071992.54740993 BTC is 2**53 + 1 satoshi: no float can carry it.
    raw = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
        '"bids":[{"price":29430.2,"qty":90071992.54740993}],"asks":[],'
        '"checksum":1,"timestamp":"t"}]}'
    )
    assert orjson.loads(raw)["data"][0]["bids"][0]["qty"] * 10**8 != 2**53 + 1
    assert one(raw).bids == ((294302, 2**53 + 1),)


def test_huge_price_and_integer_numbers_are_exact() -> None:
    raw = (
        '{"channel":"book","type":"snapshot","data":[{"symbol":"ALGO/USD",'
        '"bids":[{"price":123456789012.12345,"qty":5}],"asks":[{"price":1,"qty":0}],'
        '"checksum":0,"timestamp":"t"}]}'
    )
    ev = one(raw)
    assert ev.bids == ((12345678901212345, 500000000),)
    assert ev.asks == ((100000, 0),)


def test_more_decimals_than_the_precision_is_an_error_at_any_magnitude() -> None:
    for qty in ("0.123456789", "600000.123456789", "12345678.123456789"):
        raw = (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
            f'"bids":[{{"price":29430.2,"qty":{qty}}}],"asks":[],"checksum":1}}]}}'
        )
        with pytest.raises(ProtocolError, match="more than 8 decimals"):
            parser().parse(raw)


def test_a_frame_for_an_unknown_symbol_names_it() -> None:
    raw = (
        '{"channel":"book","type":"update","data":[{"symbol":"DOGE/MARS","bids":[],'
        '"asks":[],"checksum":1,"timestamp":"t"}]}'
    )
    with pytest.raises(UnknownInstrument, match="DOGE/MARS") as info:
        parser().parse(raw)
    assert info.value.symbol == "DOGE/MARS"
    assert isinstance(info.value, ProtocolError)


def test_an_instrument_frame_makes_a_stream_self_sufficient(
    instrument_snapshot: bytes, capture: dict[str, Any]
) -> None:
    p = Parser()
    with pytest.raises(UnknownInstrument):
        p.parse(frame(capture["updates"][0]))
    (ev,) = p.parse(instrument_snapshot)
    assert isinstance(ev, InstrumentFrame)
    assert ev.snapshot
    assert len(ev.instruments) == 683
    assert p.instruments["BTC/USD"].price_precision == 1
    assert p.parse(frame(capture["updates"][0]))[0].asks[0] == (294311, 0)


def test_an_instrument_update_changes_the_precision_used() -> None:
    p = parser()
    update = {
        "channel": "instrument",
        "type": "update",
        "data": {"pairs": [{"symbol": "BTC/USD", "price_precision": 2, "qty_precision": 8}]},
    }
    book = {
        "channel": "book",
        "type": "update",
        "data": [{"symbol": "BTC/USD", "bids": [{"price": 1.5, "qty": 1.0}], "asks": []}],
    }
    book["data"][0]["checksum"] = 0
    assert p.parse(frame(book))[0].bids == ((15, 10**8),)
    (ev,) = p.parse(frame(update))
    assert not ev.snapshot
    assert p.parse(frame(book))[0].bids == ((150, 10**8),)


# ------------------------------------------------------------- the fused path


def _update(bids: list[Any], asks: list[Any], checksum: int = 1, **extra: Any) -> bytes:
    item = {"symbol": "BTC/USD", "bids": bids, "asks": asks, "checksum": checksum}
    return frame({"channel": "book", "type": "update", "data": [{**item, **extra}]})


def test_parse_into_applies_book_items_and_passes_the_rest_through() -> None:
    p = parser()
    book = Book(BTC, depth=10)
    books = {"BTC/USD": book}
    bids = [{"price": 29430.0 - i, "qty": 1.0} for i in range(10)]
    asks = [{"price": 29431.0 + i, "qty": 2.0} for i in range(10)]
    snapshot = frame(
        {
            "channel": "book",
            "type": "snapshot",
            "data": [{"symbol": "BTC/USD", "bids": bids, "asks": asks, "checksum": 0}],
        }
    )
    (applied,) = parse_into(p, snapshot, books)
    assert type(applied) is BookApplied and applied.book is book and applied.snapshot
    assert applied.mismatch is not None  # checksum 0: learn the true one
    crc = applied.mismatch.computed
    snapshot = snapshot.replace(b'"checksum":0', b'"checksum":%d' % crc)
    assert parse_into(p, snapshot, books) == [BookApplied(book, True, None)]
    assert book.valid and book.best_bid() == (294300, 10**8) and book.timestamp == ""
    # A frame for a symbol with no book in ``books`` stays a BookFrame; others pass.
    other = {"channel": "book", "type": "update", "data": [{"symbol": "MATIC/USD", "bids": []}]}
    other["data"][0].update({"asks": [], "checksum": 5, "timestamp": "t"})
    assert parse_into(p, frame(other), books) == p.parse(frame(other))
    assert type(parse_into(p, frame(other), books)[0]) is BookFrame
    for raw in ('{"channel":"heartbeat"}', '{"method":"pong","req_id":7}'):
        assert parse_into(p, raw, books) == p.parse(raw)
    assert book.valid and book.ignored == 0


def test_parse_into_falls_back_to_the_exact_decoder_and_ends_in_the_same_state() -> None:
    """A 17-digit qty after a level already applied: the frame is decoded exactly and
    applied again; the book ends as the two-step path leaves it."""
    book, twin = loaded_btc_book(), loaded_btc_book()
    raw = _update(
        [{"price": 29430.0, "qty": 0}, {"price": 29429.9, "qty": 1.5}],
        [{"price": 29431.0, "qty": 0}],
        timestamp="t",
    ).replace(b"1.5", b"90071992.54740993")  # as printed: no float carries it
    (ev,) = parser().parse(raw)
    assert ev.bids[1] == (294299, 2**53 + 1)
    expected = twin.apply(ev)
    assert parse_into(parser(), raw, {"BTC/USD": book}) == [BookApplied(book, False, expected)]
    assert (book.top(), book.checksum, book.valid) == (twin.top(), twin.checksum, twin.valid)


def test_a_bad_level_invalidates_the_book_a_bad_envelope_leaves_it_alone() -> None:
    book = loaded_btc_book()
    before = book.top()
    # Envelope faults are found before the book is touched: ProtocolError, book intact.
    for raw in (
        _update([{"price": 29430.0, "qty": 0}], [], checksum=-1, timestamp="t"),
        _update([{"price": 29430.0, "qty": 0}], [], timestamp=5),
        _update([{"price": 29430.0, "qty": 0}], [], checksum=1.0, timestamp="t"),
    ):
        with pytest.raises(ProtocolError):
            parse_into(parser(), raw, {"BTC/USD": book})
        assert book.valid and book.top() == before
    # A level (or side) found bad once the book has started on the levels: the book may
    # hold part of the message, so it is invalid until the next snapshot.
    for bids, asks in (
        ([{"price": 29430.0, "qty": 0}, {"price": 29430.25, "qty": 1.0}], []),
        ([{"price": 29430.0, "qty": 0}, {"price": 29430.2}], []),
        ([{"price": 29430.0, "qty": 0}, {"price": "1", "qty": 1}], []),
        (None, [{"price": 29431.0, "qty": 0}]),
    ):
        book = loaded_btc_book()
        raw = _update(bids, asks, timestamp="t")  # type: ignore[arg-type]
        with pytest.raises(ProtocolError):
            parse_into(parser(), raw, {"BTC/USD": book})
        assert not book.valid
        (unparsed,) = parse_into_safe(parser(), raw, {"BTC/USD": loaded_btc_book()})
        assert isinstance(unparsed, Unparsed) and unparsed.excerpt == codec.excerpt(raw)


# ------------------------------------------------------------------- other channels


TS = "2023-09-25T07:49:37.708706Z"


def test_trade_from_the_docs() -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/trade (KRAKEN.md §5.5)
    raw = (
        '{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell",'
        '"price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,'
        '"timestamp":"2023-09-25T07:49:37.708706Z"},{"symbol":"MATIC/USD","side":"buy",'
        '"price":0.5118,"qty":0.00000001,"ord_type":"limit","trade_id":4665907,'
        '"timestamp":"2023-09-25T07:49:37.708706Z"}]}'
    )
    assert one(raw) == TradeFrame(
        snapshot=False,
        trades=(
            Trade(
                "MATIC/USD",
                "sell",
                5117,
                4000000000,
                "market",
                4665906,
                "2023-09-25T07:49:37.708706Z",
            ),
            Trade("MATIC/USD", "buy", 5118, 1, "limit", 4665907, "2023-09-25T07:49:37.708706Z"),
        ),
    )


def test_ticker_numbers_are_scaled_and_statistics_exact() -> None:
    # Field set of https://docs.kraken.com/api/docs/websocket-v2/ticker (KRAKEN.md §5.6)
    raw = (
        '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":105944.2,'
        '"bid_qty":2.5,"ask":105944.3,"ask_qty":3.2,"last":105899.4,"volume":163.28908096,'
        '"vwap":105904.39279,"low":104711.0,"high":106613.1,"change":-250.0,'
        '"change_pct":-0.24,"timestamp":"2022-12-25T09:30:59.123456Z"}]}'
    )
    assert one(raw) == Ticker(
        symbol="BTC/USD",
        snapshot=True,
        bid=1059442,
        bid_qty=250000000,
        ask=1059443,
        ask_qty=320000000,
        last=1058994,
        volume=16328908096,
        vwap=Decimal("105904.39279"),
        low=1047110,
        high=1066131,
        change=Decimal("-250.0"),
        change_pct=Decimal("-0.24"),
        timestamp="2022-12-25T09:30:59.123456Z",
    )


def test_ticker_last_low_and_high_are_optional_as_documented() -> None:
    # A pair with no trade in 24 h: no last, no low, no high (absent, or null).
    for extra in ("", '"last":null,"low":null,"high":null,'):
        raw = (
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":105944.2,'
            '"bid_qty":2.5,"ask":105944.3,"ask_qty":3.2,' + extra + '"volume":0,"vwap":0,'
            '"change":0,"change_pct":0}]}'
        )
        ticker = one(raw)
        assert isinstance(ticker, Ticker)
        assert (ticker.last, ticker.low, ticker.high) == (None, None, None)
        assert (ticker.bid, ticker.volume) == (1059442, 0)
    # Present, they are checked like any price: a bad one is still an error.
    bad = '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last":"1"}]}'
    with pytest.raises(ProtocolError):
        parser().parse(bad)


def test_status_heartbeat_and_pong() -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/status, …/heartbeat, …/ping (§5.2)
    status = (
        '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",'
        '"api_version":"v2","connection_id":12393906104898154338}]}'
    )
    assert one(status) == Status("online", "v2", 12393906104898154338, "2.0.0")
    assert one('{"channel":"heartbeat"}') == Heartbeat()
    pong = (
        '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z",'
        '"time_out":"2023-09-24T14:10:23.799703Z"}'
    )
    assert one(pong) == Pong(101, "2023-09-24T14:10:23.799685Z", "2023-09-24T14:10:23.799703Z")


# The doc's sequence for one order (https://docs.kraken.com/api/docs/websocket-v2/executions,
# KRAKEN.md §5.7): pending_new (seq 8), new (seq 9, sparse), trade (seq 10).
PENDING = (
    '{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5",'
    '"order_userref":3,"symbol":"BTC/USD","order_qty":0.005,"cum_cost":0.0,'
    '"time_in_force":"GTC","exec_type":"pending_new","side":"sell","order_type":"limit",'
    '"limit_price_type":"static","limit_price":26500.0,"stop_price":0.0,'
    '"order_status":"pending_new","fee_usd_equiv":0.0,"fee_ccy_pref":"fciq",'
    '"timestamp":"2023-09-22T10:33:05.709950Z"}],"sequence":8}'
)
NEW = (
    '{"channel":"executions","type":"update","data":[{"timestamp":"2023-09-22T10:33:05.709993Z",'
    '"order_status":"new","exec_type":"new","order_userref":3,'
    '"order_id":"OK4GJX-KSTLS-7DZZO5"}],"sequence":9}'
)
FILL = (
    '{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5",'
    '"order_userref":3,"exec_id":"TGBB7L-HT5LX-J3BZ4A","exec_type":"trade",'
    '"trade_id":62887576,"symbol":"BTC/USD","side":"sell","last_qty":0.005,'
    '"last_price":26599.9,"liquidity_ind":"t","cost":132.9995,"order_type":"limit",'
    '"timestamp":"2023-09-22T10:33:05.709993Z","order_status":"partially_filled",'
    '"cum_qty":0.005,"cum_cost":132.9995,"avg_price":26599.9,"fee_usd_equiv":0.3458,'
    '"fees":[{"asset":"USD","qty":0.3458}]}],"sequence":10}'
)


def test_executions_from_the_docs() -> None:
    pending = one(PENDING)
    assert isinstance(pending, ExecutionsFrame)
    assert (pending.snapshot, pending.sequence) == (False, 8)
    (r,) = pending.reports
    assert (r.exec_type, r.order_status, r.symbol, r.side) == (
        "pending_new",
        "pending_new",
        "BTC/USD",
        "sell",
    )
    assert r.order_qty == Decimal("0.005")
    assert r.limit_price == Decimal("26500.0")
    assert r.fee_ccy_pref == "fciq"
    assert r.fees is None and r.exec_id is None

    new = one(NEW)
    (r,) = new.reports
    assert new.sequence == 9
    assert (r.exec_type, r.order_id, r.order_userref) == ("new", "OK4GJX-KSTLS-7DZZO5", 3)
    assert r.symbol is None and r.order_qty is None and r.cum_qty is None

    fill = one(FILL)
    (r,) = fill.reports
    assert fill.sequence == 10
    assert (r.exec_id, r.trade_id, r.liquidity_ind) == ("TGBB7L-HT5LX-J3BZ4A", 62887576, "t")
    assert (r.last_qty, r.last_price, r.cost) == (
        Decimal("0.005"),
        Decimal("26599.9"),
        Decimal("132.9995"),
    )
    assert r.fees == (Fee("USD", Decimal("0.3458")),)
    assert r.fee_usd_equiv == Decimal("0.3458")
    # The order tracker converts with the order's instrument, exactly.
    assert BTC.qty(r.cum_qty) == 500000
    assert BTC.price(r.last_price) == 265999


def test_execution_numbers_keep_every_digit() -> None:
    raw = (
        '{"channel":"executions","type":"snapshot","data":[{"order_id":"O","exec_type":"new",'
        '"order_qty":90071992.54740993,"cum_cost":1234567890.123456789,"post_only":true,'
        '"amended":false,"reduce_only":false}],"sequence":1}'
    )
    (r,) = one(raw).reports
    assert r.order_qty == Decimal("90071992.54740993")
    assert r.cum_cost == Decimal("1234567890.123456789")
    assert (r.post_only, r.amended, r.reduce_only) == (True, False, False)


# ---------------------------------------------------------------- acks and responses


def test_subscribe_ack_from_the_docs() -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/book (ack example, KRAKEN.md §5.3)
    raw = (
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
        '"symbol":"ALGO/USD"},"success":true,"time_in":"2023-10-06T17:35:55.219022Z",'
        '"time_out":"2023-10-06T17:35:55.219067Z"}'
    )
    ack = one(raw)
    assert isinstance(ack, SubscribeAck)
    assert (ack.method, ack.success, ack.channel, ack.symbol) == (
        "subscribe",
        True,
        "book",
        "ALGO/USD",
    )
    assert (ack.depth, ack.snapshot, ack.req_id) == (10, True, None)
    assert ack.exception() is None


def test_executions_ack_carries_the_rate_counter_limit() -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/executions (ack example, §5.7)
    raw = (
        '{"method":"subscribe","result":{"channel":"executions","maxratecount":125,'
        '"snap_orders":true,"snap_trades":true},"success":true,'
        '"time_in":"2023-10-16T13:18:35.303171Z","time_out":"2023-10-16T13:18:35.318297Z"}'
    )
    ack = one(raw)
    assert (ack.channel, ack.maxratecount) == ("executions", 125)
    assert ack.result == {
        "channel": "executions",
        "maxratecount": 125,
        "snap_orders": True,
        "snap_trades": True,
    }


@pytest.mark.parametrize(
    ("raw", "cls", "symbol"),
    [
        # Kraken SDK error-handling.md: unsupported pair, no result, symbol at the top.
        (
            '{"error":"Currency pair not supported BTC/XYZ","method":"subscribe","req_id":7,'
            '"success":false,"symbol":"BTC/XYZ","time_in":"t0","time_out":"t1"}',
            RejectedError,
            "BTC/XYZ",
        ),
        (
            '{"error":"Subscription name invalid","method":"subscribe","req_id":8,'
            '"success":false,"time_in":"t0","time_out":"t1"}',
            RejectedError,
            None,
        ),
        # The captured frame in KRAKEN.md §4.
        (
            '{"error":"ESession:Invalid session","method":"subscribe","req_id":42,'
            '"status":"error","success":false,"time_in":"2023-04-19T12:04:41.320119Z",'
            '"time_out":"2023-04-19T12:04:41.980119Z"}',
            TokenError,
            None,
        ),
    ],
)
def test_failed_subscribe_acks_map_to_errors(raw: str, cls: type, symbol: str | None) -> None:
    ack = one(raw)
    assert isinstance(ack, SubscribeAck)
    assert not ack.success
    assert ack.symbol == symbol
    exc = ack.exception()
    assert type(exc) is cls
    assert exc is not None and exc.code == ack.error


def test_success_must_be_the_boolean_true() -> None:
    for success in ('"true"', "1", "null"):
        raw = f'{{"method":"unsubscribe","success":{success},"result":{{"channel":"book"}}}}'
        ack = one(raw)
        assert isinstance(ack, UnsubscribeAck)
        assert not ack.success
        assert isinstance(ack.exception(), ExchangeError)
    raw = '{"method":"unsubscribe","result":{"channel":"book","symbol":"BTC/USD"}}'
    assert not one(raw).success


def test_add_order_responses() -> None:
    # Shapes as in nautilus_trader test_data ws_add_order_response_*.json (KRAKEN.md §5.1, §5.9)
    ok = (
        '{"method":"add_order","req_id":42,"success":true,"time_in":"2026-05-05T10:00:00.123Z",'
        '"time_out":"2026-05-05T10:00:00.125Z","result":{"order_id":"OABCDE-12345-FGHIJ",'
        '"cl_ord_id":"O-20260505-000001","order_userref":0}}'
    )
    resp = one(ok)
    assert resp == MethodResponse(
        method="add_order",
        success=True,
        req_id=42,
        result=AddOrderResult("OABCDE-12345-FGHIJ", "O-20260505-000001", 0),
        raw_result={
            "order_id": "OABCDE-12345-FGHIJ",
            "cl_ord_id": "O-20260505-000001",
            "order_userref": 0,
        },
        time_in="2026-05-05T10:00:00.123Z",
        time_out="2026-05-05T10:00:00.125Z",
    )
    assert resp.exception() is None
    bad = (
        '{"method":"add_order","req_id":99,"success":false,"error":"EOrder:Insufficient funds",'
        '"time_in":"t0","time_out":"t1"}'
    )
    resp = one(bad)
    assert resp.result is None
    assert isinstance(resp.exception(), InsufficientFunds)


def test_typed_results_of_the_order_methods() -> None:
    def result(method: str, body: str) -> Any:
        raw = f'{{"method":"{method}","req_id":1,"success":true,"result":{body}}}'
        return one(raw).result

    # https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/amend_order
    assert result("amend_order", '{"amend_id":"TTW6PD-RC36L-ZZSWNU","cl_ord_id":"c"}') == (
        AmendOrderResult("TTW6PD-RC36L-ZZSWNU", None, "c")
    )
    assert result("cancel_order", '{"order_id":"OA","warnings":["w"]}') == CancelOrderResult(
        "OA", None, ("w",)
    )
    assert result("cancel_all", '{"count":3}') == CancelAllResult(3)
    # KRAKEN.md §3.2
    assert result(
        "cancel_all_orders_after",
        '{"currentTime":"2023-09-21T15:49:29Z","triggerTime":"2023-09-21T15:51:09Z"}',
    ) == CancelAfterResult("2023-09-21T15:49:29Z", "2023-09-21T15:51:09Z")
    assert result("add_order", '{"order_id":""}') == AddOrderResult("")  # validate=true
    # A method without a typed result keeps the raw one, numbers exact.
    resp = one('{"method":"batch_add","success":true,"result":[{"order_id":"A","x":0.1}]}')
    assert resp.result is None
    assert resp.raw_result == [{"order_id": "A", "x": Decimal("0.1")}]


@pytest.mark.parametrize(
    "body",
    ['{"count":"3"}', '{"count":null}', "[]", '"ok"'],
)
def test_a_malformed_typed_result_is_a_protocol_error(body: str) -> None:
    with pytest.raises(ProtocolError):
        parser().parse(f'{{"method":"cancel_all","success":true,"result":{body}}}')


# ------------------------------------------------------------------- bad frames


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b'{"channel":"book"',
        b"[]",
        b'[{"channel":"book"}]',
        b'"book"',
        b"42",
        b"null",
        b"{}",
        b'{"channel":"ohlc","type":"update","data":[]}',
        b'{"channel":42}',
        b'{"channel":null,"method":null}',
        b'{"method":17}',
        b'{"channel":"book","type":"update"}',
        b'{"channel":"book","type":"update","data":[]}',
        b'{"channel":"book","type":"update","data":{}}',
        b'{"channel":"book","type":"update","data":"x"}',
        b'{"channel":"book","type":"partial","data":[]}',
        b'{"channel":"book","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":1}]}',
        b'{"channel":"book","type":"update","data":[{"bids":[],"asks":[],"checksum":1}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":["BTC/USD"]}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":7,"bids":[],"asks":[]}]}',
    ],
)
def test_frames_that_are_not_protocol_are_protocol_errors(raw: bytes) -> None:
    p = parser()
    with pytest.raises(ProtocolError):
        p.parse(raw)
    (ev,) = p.parse_safe(raw)
    assert isinstance(ev, Unparsed)
    assert ev.reason == str(ev.error)
    assert ev.excerpt == codec.excerpt(raw)


def _book(**changes: Any) -> bytes:
    item: dict[str, Any] = {
        "symbol": "BTC/USD",
        "bids": [{"price": 29430.2, "qty": 0.5}],
        "asks": [],
        "checksum": 12,
        "timestamp": "t",
    }
    item.update(changes)
    return orjson.dumps({"channel": "book", "type": "update", "data": [item]})


@pytest.mark.parametrize(
    "changes",
    [
        {"bids": None},
        {"bids": {}},
        {"bids": ""},
        {"bids": 0},
        {"bids": "x"},
        {"bids": {"price": 1}},
        {"bids": [[29430.2, 0.5]]},
        {"bids": [{"price": 29430.2}]},
        {"bids": [{"qty": 0.5}]},
        {"bids": [{"price": True, "qty": 0.5}]},
        {"bids": [{"price": None, "qty": 0.5}]},
        {"bids": [{"price": "abc", "qty": 0.5}]},
        {"bids": [{"price": "29430.2", "qty": 0.5}]},
        {"bids": [{"price": [1], "qty": 0.5}]},
        {"bids": [{"price": 29430.2, "qty": -0.5}]},
        {"bids": [{"price": 0.0, "qty": 0.5}]},
        {"bids": [{"price": -29430.2, "qty": 0.5}]},
        {"bids": [{"price": 29430.25, "qty": 0.5}]},
        {"bids": [{"price": 1e300, "qty": 0.5}]},
        {"bids": [{"price": 1.7e308, "qty": 0.5}]},
        {"bids": [{"price": 29430.2, "qty": 5e-324}]},
        {"checksum": -1},
        {"checksum": 2**32},
        {"checksum": 1.0},
        {"checksum": "12"},
        {"checksum": True},
        {"timestamp": 5},
        {"symbol": None},
    ],
)
def test_book_frames_of_the_wrong_shape_are_protocol_errors(changes: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parser().parse(_book(**changes))
    _into_agrees_with_parse(_book(**changes), None)  # the fused path refuses it too


@pytest.mark.parametrize(
    "raw",
    [
        # NaN and Infinity are not JSON; neither decoder accepts them.
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
        b'"bids":[{"price":NaN,"qty":1}],"asks":[],"checksum":1}]}',
        b'{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":Infinity}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
        b'"bids":[{"price":1e400,"qty":1}],"asks":[],"checksum":1}]}',
        # Numbers no market prints, refused before any arithmetic.
        b'{"method":"x","success":true,"result":{"a":1.00000000000000000000000000001}}',
        b'{"method":"x","success":true,"result":{"a":1e-999999}}',
        b'{"method":"x","success":true,"result":{"a":' + b"1" * 50 + b"}}",
    ],
)
def test_nan_infinity_and_absurd_numbers_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parser().parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD"}]}',
        '{"channel":"trade","type":"update","data":{}}',
        '{"channel":"trade","data":[]}',
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        '"price":1.0,"qty":1.0,"ord_type":"limit","trade_id":"7","timestamp":"t"}]}',
        '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":1.0}]}',
        '{"channel":"ticker","type":"update","data":[["BTC/USD"]]}',
        '{"channel":"status","type":"update","data":[{"system":5}]}',
        '{"channel":"status","type":"update","data":null}',
        '{"channel":"executions","type":"update","data":[{"order_id":5}]}',
        '{"channel":"executions","type":"update","data":[{"cum_qty":"x"}]}',
        '{"channel":"executions","type":"update","data":[{"fees":{"asset":"USD"}}]}',
        '{"channel":"executions","type":"update","data":[{"fees":[{"qty":1}]}]}',
        '{"channel":"executions","type":"update","data":[{"post_only":1}]}',
        '{"channel":"executions","type":"update","sequence":"1","data":[]}',
        '{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"X/Y"}]}}',
        '{"channel":"instrument","type":"snapshot","data":[]}',
        '{"method":"subscribe","success":true,"result":[]}',
        '{"method":"subscribe","success":true,"result":{"depth":"10"}}',
        '{"method":"subscribe","success":true,"warnings":"w"}',
        '{"method":"pong","req_id":"1"}',
        '{"method":"add_order","success":true,"result":{"order_id":5}}',
    ],
)
def test_other_frames_of_the_wrong_shape_are_protocol_errors(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parser().parse(raw)


def test_parse_accepts_str_bytes_bytearray_and_memoryview() -> None:
    raw = '{"channel":"heartbeat"}'
    for form in (raw, raw.encode(), bytearray(raw.encode()), memoryview(raw.encode())):
        assert parser().parse(form) == [Heartbeat()]
    exact = '{"method":"cancel_all","success":true,"result":{"count":1}}'
    assert parser().parse(memoryview(exact.encode()))[0].result == CancelAllResult(1)


# ------------------------------------------------------------------------- fuzzing

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["book", "trade", "ticker", "executions", "instrument", "status"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "channel",
                    "type",
                    "data",
                    "method",
                    "result",
                    "success",
                    "symbol",
                    "bids",
                    "asks",
                    "price",
                    "qty",
                    "checksum",
                    "timestamp",
                    "error",
                    "req_id",
                    "pairs",
                    "fees",
                    "sequence",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


def _only_protocol_errors(p: Parser, raw: bytes | str) -> list[Event] | None:
    try:
        events = p.parse(raw)
    except ProtocolError:
        events = None
    safe = p.parse_safe(raw)
    if events is None:
        assert len(safe) == 1 and isinstance(safe[0], Unparsed)
    _into_agrees_with_parse(raw, events)
    return events


def _into_agrees_with_parse(raw: bytes | str, events: list[Event] | None) -> None:
    """``parse_into`` with a valid BTC/USD book raises exactly when ``parse`` does, and
    otherwise gives the same events, each BTC/USD book frame applied as ``Book.apply``
    applies it (the same result, the same book)."""
    book, twin = loaded_btc_book(), loaded_btc_book()
    p = parser()
    try:
        into = parse_into(p, raw, {"BTC/USD": book})
    except ProtocolError:
        assert events is None
        (unparsed,) = parse_into_safe(p, raw, {"BTC/USD": loaded_btc_book()})
        assert isinstance(unparsed, Unparsed)
        return
    assert events is not None
    assert len(into) == len(events)
    for got, event in zip(into, events, strict=True):
        if type(event) is BookFrame and event.symbol == "BTC/USD":
            assert got == BookApplied(book, event.snapshot, twin.apply(event))
        else:
            assert got == event
    assert (book.top(), book.checksum, book.valid) == (twin.top(), twin.checksum, twin.valid)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_protocol_error(raw: bytes) -> None:
    _only_protocol_errors(parser(), raw)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_never_raises_anything_but_protocol_error(value: Any) -> None:
    raw = json.dumps(value)  # may write NaN/Infinity: must be refused too
    _only_protocol_errors(parser(), raw)


LEVEL_VALUE = st.one_of(
    st.floats(),
    # Numbers near the fused path's edges: exact or not, signed, tiny, huge.
    st.sampled_from([29430.2, 0.5, -0.5, 0.0, -0.0, 1e-8, 1e-9, 0.123456789, 5.6e13, 1e20]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.fixed_dictionaries({"price": LEVEL_VALUE, "qty": LEVEL_VALUE}), max_size=3),
    st.sampled_from(["snapshot", "update", "x"]),
    st.one_of(st.integers(min_value=-1, max_value=2**33), st.floats(), st.none()),
)
def test_book_frames_with_random_numbers_are_exact_or_protocol_errors(
    levels: list[dict[str, Any]], kind: str, checksum: Any
) -> None:
    body = {"symbol": "BTC/USD", "bids": levels, "asks": [], "checksum": checksum, "timestamp": "t"}
    raw = json.dumps({"channel": "book", "type": kind, "data": [body]})
    events = _only_protocol_errors(parser(), raw)
    if events is None:
        return
    (ev,) = events
    exact = json.loads(raw, parse_float=Decimal)["data"][0]["bids"]
    with localcontext() as ctx:
        ctx.prec = 200
        for (price, qty), level in zip(ev.bids, exact, strict=True):
            assert type(level["price"]) in (int, Decimal)
            assert type(level["qty"]) in (int, Decimal)
            assert price == Decimal(level["price"]).scaleb(1)
            assert qty == Decimal(level["qty"]).scaleb(8)
            assert price > 0 and qty >= 0


# ------------------------------------------------------------------------ the codec


def test_decimal_of() -> None:
    assert codec.decimal_of(0.1) == Decimal("0.1")
    assert codec.decimal_of(123456789012345.0) == Decimal("123456789012345")
    assert codec.decimal_of(7) == Decimal(7)
    assert codec.decimal_of(Decimal("1.50")) == Decimal("1.50")
    with pytest.raises(PrecisionLost):
        codec.decimal_of(0.1 + 0.2)  # 0.30000000000000004: 17 digits
    for bad in (True, None, "x", "1.5", [], float("nan"), Decimal("Infinity"), float("inf")):
        with pytest.raises(ProtocolError):
            codec.decimal_of(bad)


def test_loads_exact_keeps_the_text() -> None:
    assert codec.loads_exact(b'{"a":0.30000000000000004,"b":10}') == {
        "a": Decimal("0.30000000000000004"),
        "b": 10,
    }
    for bad in (b"NaN", b"[Infinity]", b"{", b"\xff", b"[" * 5000 + b"]" * 5000):
        with pytest.raises(ProtocolError):
            codec.loads_exact(bad)


def test_dumps_writes_decimals_as_exact_numbers() -> None:
    body = {"a": Decimal("0.00100000"), "b": Decimal("29430.0"), "c": Decimal("-0"), "d": 1}
    assert codec.dumps(body) == b'{"a":0.001,"b":29430,"c":0,"d":1}'
    with pytest.raises(TypeError):
        codec.dumps({"a": Decimal("NaN")})
    with pytest.raises(TypeError):
        codec.dumps({"a": object()})


# ----------------------------------------------------------------------- requests


def test_subscribe_requests_match_the_documented_shapes() -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/book (KRAKEN.md §5.3)
    assert json.loads(codec.subscribe_book(["ALGO/USD", "MATIC/USD"], depth=10, req_id=1)) == {
        "method": "subscribe",
        "params": {
            "channel": "book",
            "symbol": ["ALGO/USD", "MATIC/USD"],
            "depth": 10,
            "snapshot": True,
        },
        "req_id": 1,
    }
    assert json.loads(codec.subscribe_trade("MATIC/USD", req_id=2)) == {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": ["MATIC/USD"], "snapshot": False},
        "req_id": 2,
    }
    assert json.loads(codec.subscribe_ticker(("BTC/USD",), req_id=3, event_trigger="bbo")) == {
        "method": "subscribe",
        "params": {
            "channel": "ticker",
            "symbol": ["BTC/USD"],
            "event_trigger": "bbo",
            "snapshot": True,
        },
        "req_id": 3,
    }
    assert codec.subscribe_instrument(req_id=4) == (
        b'{"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":4}'
    )
    # https://docs.kraken.com/api/docs/websocket-v2/executions (KRAKEN.md §5.7)
    assert json.loads(codec.subscribe_executions("TOK", req_id=5, snap_trades=True)) == {
        "method": "subscribe",
        "params": {
            "channel": "executions",
            "token": "TOK",
            "snap_orders": True,
            "snap_trades": True,
            "order_status": True,
            "ratecounter": False,
        },
        "req_id": 5,
    }
    assert json.loads(codec.unsubscribe("book", symbols="BTC/USD", depth=25, req_id=6)) == {
        "method": "unsubscribe",
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25},
        "req_id": 6,
    }
    assert json.loads(codec.unsubscribe("executions", token="TOK", req_id=7))["params"] == {
        "channel": "executions",
        "token": "TOK",
    }
    assert codec.ping(req_id=101) == b'{"method":"ping","req_id":101}'


def test_order_requests_write_exact_numbers() -> None:
    raw = codec.add_order(
        BTC,
        side="buy",
        order_type="limit",
        qty=100_000,
        limit_price=294302,
        cl_ord_id="c-1",
        time_in_force="gtc",
        post_only=True,
        token="TOK",
        req_id=9,
    )
    assert raw == (
        b'{"method":"add_order","params":{"order_type":"limit","side":"buy",'
        b'"order_qty":0.001,"symbol":"BTC/USD","limit_price":29430.2,"time_in_force":"gtc",'
        b'"post_only":true,"cl_ord_id":"c-1","token":"TOK"},"req_id":9}'
    )
    # 2**53 + 1 satoshi survives: the number is written from the int, never a float.
    big = codec.add_order(BTC, side="sell", order_type="market", qty=2**53 + 1, token="T", req_id=1)
    assert b'"order_qty":90071992.54740993' in big
    assert codec.loads_exact(big)["params"]["order_qty"] == Decimal("90071992.54740993")
    assert json.loads(
        codec.amend_order(MATIC, order_id="OA", limit_price=5660, token="T", req_id=2)
    ) == {
        "method": "amend_order",
        "params": {"order_id": "OA", "limit_price": 0.566, "token": "T"},
        "req_id": 2,
    }
    assert json.loads(codec.cancel_order(cl_ord_ids=["a", "b"], token="T", req_id=3)) == {
        "method": "cancel_order",
        "params": {"cl_ord_id": ["a", "b"], "token": "T"},
        "req_id": 3,
    }
    assert codec.cancel_all(token="T", req_id=4) == (
        b'{"method":"cancel_all","params":{"token":"T"},"req_id":4}'
    )
    # KRAKEN.md §3.2
    assert codec.cancel_all_orders_after(60, token="T", req_id=5) == (
        b'{"method":"cancel_all_orders_after","params":{"timeout":60,"token":"T"},"req_id":5}'
    )
    assert b'"timeout":0' in codec.cancel_all_orders_after(0, token="T", req_id=6)


@pytest.mark.parametrize(
    "call",
    [
        lambda: codec.subscribe_book("BTC/USD", depth=20, req_id=1),
        lambda: codec.subscribe_book([], req_id=1),
        lambda: codec.subscribe_book("BTC/USD", req_id="1"),  # type: ignore[arg-type]
        lambda: codec.subscribe_ticker("BTC/USD", req_id=1, event_trigger="x"),
        lambda: codec.subscribe_executions("", req_id=1),
        lambda: codec.unsubscribe("book", symbols="BTC/USD", req_id=1),
        lambda: codec.add_order(BTC, side="hold", order_type="market", qty=1, token="T", req_id=1),
        lambda: codec.add_order(BTC, side="buy", order_type="limit", qty=1, token="T", req_id=1),
        lambda: codec.add_order(BTC, side="buy", order_type="market", qty=0, token="T", req_id=1),
        lambda: codec.add_order(
            BTC,
            side="buy",
            order_type="market",
            qty=1,
            cl_ord_id="a",
            order_userref=1,
            token="T",
            req_id=1,
        ),
        lambda: codec.amend_order(BTC, qty=1, token="T", req_id=1),
        lambda: codec.amend_order(BTC, order_id="O", token="T", req_id=1),
        lambda: codec.amend_order(BTC, order_id="O", limit_price=-1, token="T", req_id=1),
        lambda: codec.cancel_order(token="T", req_id=1),
        lambda: codec.cancel_order(order_ids=["a"], cl_ord_ids=["b"], token="T", req_id=1),
        lambda: codec.cancel_all_orders_after(86400, token="T", req_id=1),
        lambda: codec.cancel_all_orders_after(-1, token="T", req_id=1),
    ],
)
def test_requests_a_caller_can_only_get_wrong_by_a_bug_are_refused(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def test_requests_and_responses_round_trip_through_the_parser() -> None:
    # What the simulator will do: parse our request, answer, and we parse the answer.
    req = json.loads(codec.cancel_all_orders_after(60, token="T", req_id=77))
    answer = {
        "method": req["method"],
        "req_id": req["req_id"],
        "success": True,
        "result": {"currentTime": "2023-09-21T15:49:29Z", "triggerTime": "2023-09-21T15:50:29Z"},
    }
    resp = one(frame(answer))
    assert resp.req_id == 77
    assert isinstance(resp.result, CancelAfterResult)


def test_instruments_from_the_real_snapshot_parse_the_capture(
    instrument_snapshot: bytes, capture: dict[str, Any]
) -> None:
    table = InstrumentTable(instruments_from_ws_frame(json.loads(instrument_snapshot)))
    p = Parser(table)
    assert p.instruments is table
    assert p.parse(frame(capture["updates"][5]))[0].asks == ((294303, 745182177),)
