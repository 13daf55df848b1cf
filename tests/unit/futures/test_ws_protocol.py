"""WS v1 frames as Kraken's feed pages show them, requests out, and bad frames.

Every example frame is shaped as its page under
https://docs.kraken.com/api/docs/futures-api/websocket/ prints it (values ours).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import AuthError, ProtocolError, RejectedError
from bot.futures import ws_private as p
from bot.futures import ws_protocol as w


def frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def test_requests() -> None:
    assert json.loads(w.subscribe("book", ["PF_XBTUSD"])) == {
        "event": "subscribe",
        "feed": "book",
        "product_ids": ["PF_XBTUSD"],
    }
    assert json.loads(w.subscribe("heartbeat")) == {"event": "subscribe", "feed": "heartbeat"}
    assert json.loads(w.unsubscribe("trade", ["PF_ETHUSD"]))["event"] == "unsubscribe"
    assert json.loads(w.challenge_request("KEY")) == {"event": "challenge", "api_key": "KEY"}
    for bad in (
        lambda: w.subscribe("book"),
        lambda: w.subscribe("fills"),
        lambda: w.subscribe("x", ["a"]),
    ):
        with pytest.raises(ValueError):
            bad()


def test_control_frames() -> None:
    assert w.parse_frame(b'{"event":"info","version":1}') == w.Info(1)
    assert w.parse_frame(b'{"event":"challenge","message":"226aee50"}') == w.ChallengeIssued(
        "226aee50"
    )
    sub = w.parse_frame(b'{"event":"subscribed","feed":"book","product_ids":["PF_XBTUSD"]}')
    assert isinstance(sub, w.SubscriptionChange) and sub.ok and sub.product_ids == ("PF_XBTUSD",)
    failed = w.parse_frame(b'{"event":"subscribed_failed","feed":"book"}')
    assert isinstance(failed, w.SubscriptionChange) and not failed.ok
    alert = w.parse_frame(
        b'{"event":"alert","message":"Failed to subscribe to authenticated feed"}'
    )
    assert isinstance(alert, w.Alert) and isinstance(alert.exception(), AuthError)
    error = w.parse_frame(b'{"event":"error","message":"Invalid product id"}')
    assert isinstance(error, w.WsError) and isinstance(error.exception(), RejectedError)
    assert w.parse_frame(b'{"feed":"heartbeat","time":1534262350627}') == w.Heartbeat(1534262350627)


def test_book_frames() -> None:
    snap = w.parse_frame(
        b'{"feed":"book_snapshot","product_id":"PF_XBTUSD","timestamp":1612269825817,'
        b'"seq":326072249,"tickSize":null,"bids":[{"price":34892.5,"qty":6385}],'
        b'"asks":[{"price":34911.5,"qty":0.25}]}'
    )
    assert snap == w.BookSnapshot(
        "PF_XBTUSD",
        326072249,
        1612269825817,
        ((Decimal("34892.5"), Decimal(6385)),),
        ((Decimal("34911.5"), Decimal("0.25")),),
    )
    delta = w.parse_frame(
        b'{"feed":"book","product_id":"PF_XBTUSD","side":"sell","seq":326094134,'
        b'"price":34981,"qty":0,"timestamp":1612269953629}'
    )
    assert delta == w.BookDelta("PF_XBTUSD", 326094134, 1612269953629, "sell", Decimal(34981), 0)


def test_trade_and_ticker_frames() -> None:
    snap = w.parse_frame(
        b'{"feed":"trade_snapshot","product_id":"PF_XBTUSD","trades":[{"uid":"caa9c653",'
        b'"side":"sell","type":"fill","seq":655508,"time":1612269657781,"qty":0.44,"price":34893}]}'
    )
    assert isinstance(snap, w.TradeSnapshot) and snap.trades[0].qty == Decimal("0.44")
    trade = w.parse_frame(
        b'{"feed":"trade","product_id":"PF_XBTUSD","uid":"05af78ac","side":"buy","type":"fill",'
        b'"seq":653355,"time":1612266317519,"qty":1.5,"price":34969.5}'
    )
    assert isinstance(trade, w.Trade) and trade.side == "buy" and trade.seq == 653355
    ticker = w.parse_frame(
        b'{"time":1676393235406,"product_id":"PF_XBTUSD","funding_rate":-6.2604214e-11,'
        b'"feed":"ticker","bid":21978.5,"ask":21987.0,"bid_size":2.5,"ask_size":1.25,'
        b'"volume":314.5,"dtm":0,"leverage":"50x","index":21984.54,"premium":-0.0,'
        b'"last":21983.5,"change":1.99,"suspended":false,"tag":"perpetual","pair":"XBT:USD",'
        b'"openInterest":300.5,"markPrice":21979.68641534714,"maturityTime":0,'
        b'"post_only":false,"volumeQuote":314.5}'
    )
    assert isinstance(ticker, w.TickerFrame)
    assert ticker.funding_rate == Decimal("-6.2604214E-11")
    assert ticker.mark_price == Decimal("21979.68641534714")


def test_private_frames() -> None:
    snap = w.parse_frame(
        b'{"feed":"open_orders_snapshot","account":"e258dba9","orders":[{"instrument":'
        b'"PF_XBTUSD","time":1612275024153,"last_update_time":1612275024153,"qty":1,"filled":0,'
        b'"limit_price":34900,"stop_price":13789,"type":"stop","order_id":"723ba95f",'
        b'"direction":1,"reduce_only":false,"triggerSignal":"last","cli_ord_id":"c1"}]}'
    )
    assert isinstance(snap, p.OpenOrdersSnapshot)
    order = snap.orders[0]
    assert (order.side, order.order_type, order.cli_ord_id) == ("sell", "stop", "c1")
    update = w.parse_frame(
        b'{"feed":"open_orders","order":{"instrument":"PF_XBTUSD","time":1567702877410,'
        b'"last_update_time":1567702877410,"qty":0.304,"filled":0.1,"limit_price":10640.0,'
        b'"stop_price":0.0,"type":"limit","order_id":"59302619","direction":0,'
        b'"reduce_only":true},"is_cancel":false,"reason":"partial_fill"}'
    )
    assert isinstance(update, p.OpenOrderUpdate)
    assert update.order.stop_price is None and update.order.remaining == Decimal("0.204")
    gone = w.parse_frame(
        b'{"feed":"open_orders","order_id":"660c6b23","is_cancel":true,"reason":"cancelled_by_user"}'
    )
    assert gone == p.OpenOrderGone("660c6b23", None, "cancelled_by_user")
    fills = w.parse_frame(
        b'{"feed":"fills_snapshot","account":"DemoUser","fills":[{"instrument":"PF_XBTUSD",'
        b'"time":1600256910739,"price":10937.5,"seq":36,"buy":true,"qty":0.5,'
        b'"remaining_order_qty":0.0,"order_id":"9e30258b","fill_id":"cad76f07",'
        b'"fill_type":"maker","fee_paid":0.001,"fee_currency":"USD","taker_order_type":"ioc",'
        b'"order_type":"limit","cli_ord_id":"c1"}]}'
    )
    assert isinstance(fills, p.FillsFrame) and fills.snapshot
    assert fills.fills[0].side == "buy" and fills.fills[0].cli_ord_id == "c1"
    positions = w.parse_frame(
        b'{"feed":"open_positions","account":"DemoUser","positions":[{"instrument":"PF_XBTUSD",'
        b'"balance":-0.5,"pnl":-2.4,"entry_price":30000.5,"mark_price":30005,"index_price":30004,'
        b'"liquidation_threshold":55000,"effective_leverage":0.17,"return_on_equity":-2.36,'
        b'"initial_margin":300,"initial_margin_with_orders":310,"maintenance_margin":150}],'
        b'"seq":4,"timestamp":1687383625330}'
    )
    assert isinstance(positions, p.OpenPositionsFrame)
    assert positions.positions[0].balance == Decimal("-0.5") and positions.seq == 4
    balances = w.parse_frame(
        b'{"feed":"balances_snapshot","account":"4a012c31","holding":{"USD":5000.0},"futures":{},'
        b'"flex_futures":{"currencies":{"USD":{"quantity":5000.0,"value":5000.0,'
        b'"collateral_value":5000.0,"available":5000.0,"haircut":0.0,"conversion_spread":0.0}},'
        b'"balance_value":5000.0,"portfolio_value":5000.0,"collateral_value":5000.0,'
        b'"initial_margin":0.0,"initial_margin_without_orders":0.0,"maintenance_margin":0.0,'
        b'"pnl":0.0,"unrealized_funding":0.0,"total_unrealized":0.0,'
        b'"total_unrealized_as_margin":0.0,"margin_equity":5000.0,"available_margin":5000.0},'
        b'"timestamp":1640995200000,"seq":0}'
    )
    assert isinstance(balances, p.BalancesFrame) and balances.snapshot
    assert balances.flex is not None and balances.flex.available_margin == 5000


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1,2]",
        b'{"event":7}',
        b'{"event":"nope"}',
        b'{"feed":"nope"}',
        b'{"feed":"book","product_id":"X","side":"up","seq":1,"price":1,"qty":1,"timestamp":1}',
        b'{"feed":"book","product_id":"X","side":"buy","seq":"1","price":1,"qty":1,"timestamp":1}',
        b'{"feed":"book_snapshot","product_id":"X","seq":1,"timestamp":1,"bids":[[1,2]],"asks":[]}',
        b'{"feed":"open_orders","is_cancel":false}',
        b'{"feed":"open_orders_snapshot","account":"a","orders":[{"direction":2}]}',
        b'{"feed":"heartbeat","time":1.5}',
        b'{"feed":"ticker","product_id":"X","time":1,"bid":true}',
        b'{"feed":"book","product_id":"X","side":"buy","seq":1,"price":NaN,"qty":1,"timestamp":1}',
        b'{"feed":"book","product_id":"X","side":"buy","seq":1,"price":1e999,"qty":1,"timestamp":1}',
    ],
)
def test_bad_frames_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        w.parse_frame(raw)


EVENT_TYPES = (
    w.Info,
    w.ChallengeIssued,
    w.SubscriptionChange,
    w.Alert,
    w.WsError,
    w.Heartbeat,
    w.BookSnapshot,
    w.BookDelta,
    w.Trade,
    w.TradeSnapshot,
    w.TickerFrame,
    p.OpenOrdersSnapshot,
    p.OpenOrderUpdate,
    p.OpenOrderGone,
    p.FillsFrame,
    p.OpenPositionsFrame,
    p.BalancesFrame,
)


def parses_or_refuses(raw: bytes) -> None:
    """An event of a known type, or ProtocolError: any other exception fails the test."""
    try:
        event = w.parse_frame(raw)
    except ProtocolError:
        return
    assert isinstance(event, EVENT_TYPES)


_text = st.text(alphabet="abcXYZ_09 .-", max_size=10)
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.one_of(
    _json_leaf,
    st.lists(_json_leaf, max_size=3),
    st.dictionaries(_text, _json_leaf, max_size=3),
    st.lists(st.dictionaries(_text, _json_leaf, max_size=3), max_size=2),
)
_feed_names = st.sampled_from(
    [
        "book",
        "book_snapshot",
        "trade",
        "trade_snapshot",
        "ticker",
        "heartbeat",
        "open_orders",
        "open_orders_snapshot",
        "fills",
        "fills_snapshot",
        "open_positions",
        "balances",
        "balances_snapshot",
    ]
)


@settings(max_examples=150, deadline=None)
@given(feed=_feed_names, body=st.dictionaries(_text, _json, max_size=4))
def test_any_feed_frame_parses_or_raises_protocol_error(feed: str, body: dict[str, Any]) -> None:
    """Whatever arrives under a known feed name: an event, or ProtocolError, nothing else."""
    body["feed"] = feed
    parses_or_refuses(json.dumps(body).encode())


_keys = st.sampled_from(
    [
        "product_id",
        "seq",
        "timestamp",
        "side",
        "price",
        "qty",
        "bids",
        "asks",
        "order",
        "orders",
        "account",
        "is_cancel",
        "order_id",
        "fills",
        "positions",
        "instrument",
        "direction",
        "time",
        "type",
        "filled",
        "last_update_time",
        "flex_futures",
        "holding",
        "event",
        "message",
        "version",
        "feed",
        "trades",
        "uid",
        "buy",
        "fill_id",
        "fill_type",
    ]
)


_shallow = st.one_of(
    _json_leaf,
    st.lists(st.dictionaries(_keys, _json_leaf, max_size=8), max_size=3),
    st.dictionaries(_keys, _json_leaf, max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(feed=_feed_names, body=st.dictionaries(_keys, _shallow, max_size=12))
def test_frames_with_known_keys_parse_or_raise_protocol_error(
    feed: str, body: dict[str, Any]
) -> None:
    body.setdefault("feed", feed)
    parses_or_refuses(json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_protocol_error(raw: bytes) -> None:
    parses_or_refuses(raw)
