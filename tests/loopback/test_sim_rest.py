"""The simulator's REST API over real sockets, driven by an independent signing client.

Shapes are checked against Kraken's documented examples (krakenfx/api-specs
``spot-rest/examples/responses``, the docs' OpenOrders example) and the real AssetPairs
capture in ``../shared/data/kraken/cryptofeed_KRAKEN.0``.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.kraken.instruments import instruments_from_asset_pairs
from bot.sim.matching import ExecEvent
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.kraken_client import sign

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/kraken"

# Kraken's auth guide, "Examples": buy 1.25 XBTUSD at $37,500.
DOC_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
DOC_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)

# Field names of Kraken's documented order object (docs example for OpenOrders).
ORDER_FIELDS = {
    "refid": (type(None), str),
    "userref": (int,),
    "status": (str,),
    "opentm": (float, int),
    "starttm": (float, int),
    "expiretm": (float, int),
    "descr": (dict,),
    "vol": (str,),
    "vol_exec": (str,),
    "cost": (str,),
    "fee": (str,),
    "price": (str,),
    "stopprice": (str,),
    "limitprice": (str,),
    "misc": (str,),
    "oflags": (str,),
}
DESCR_FIELDS = {"pair", "type", "ordertype", "price", "price2", "leverage", "order", "close"}
# api-specs examples/responses/user/trades/history.yaml (minus the margin-position fields).
TRADE_FIELDS = {
    "ordertxid": str,
    "postxid": str,
    "pair": str,
    "time": (float, int),
    "type": str,
    "ordertype": str,
    "price": str,
    "cost": str,
    "fee": str,
    "vol": str,
    "margin": str,
    "leverage": str,
    "misc": str,
    "trade_id": int,
}
FIXED = re.compile(r"-?[0-9]+\.[0-9]+")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def decimals(text: str) -> int:
    assert FIXED.fullmatch(text), text
    return len(text.split(".")[1])


async def place(sim: SimHandle, price: str = "50000.0", volume: str = "0.001", **kw: Any) -> str:
    reply = await sim.client.private(
        "AddOrder",
        pair="XBTUSD",
        type="buy",
        ordertype="limit",
        price=price,
        volume=volume,
        oflags="post",
        **kw,
    )
    return str(reply.result["txid"][0])


def test_independent_client_matches_krakens_documented_signature() -> None:
    assert sign(DOC_SECRET, "/0/private/AddOrder", 1616492376594, DOC_BODY) == DOC_SIGN


# ---------------------------------------------------------------------- public
async def test_time_and_system_status(fake_sim: SimHandle) -> None:
    now = fake_sim.clock.time_ns()
    result = (await fake_sim.client.public("Time")).result
    assert result == {"unixtime": now // 10**9, "rfc1123": "Tue, 14 Nov 23 22:13:20 +0000"}
    status = (await fake_sim.client.public("SystemStatus")).result
    assert status == {"status": "online", "timestamp": "2023-11-14T22:13:20Z"}


async def test_asset_pairs_match_the_real_capture_and_round_trip(sim: SimHandle) -> None:
    line = (DATA / "cryptofeed_KRAKEN.0").read_text().splitlines()[0]
    real = json.loads(line.split(": ", 1)[1])["result"]["XXBTZUSD"]
    reply = await sim.client.public("AssetPairs", pair="XBTUSD,ETHUSD")
    ours = reply.result
    assert set(ours) == {"XXBTZUSD", "XETHZUSD"}
    btc = ours["XXBTZUSD"]
    for key, value in real.items():
        assert key in btc, key
        assert type(btc[key]) is type(value), (key, btc[key], value)
    assert btc["fees"][0][0] == 0 and isinstance(btc["fees"][0][1], float)
    assert (btc["altname"], btc["wsname"], btc["base"], btc["quote"]) == (
        "XBTUSD",
        "XBT/USD",
        "XXBT",
        "ZUSD",
    )
    # Modern fields, as in api-specs' example: strings for minimums and tick size.
    assert (btc["ordermin"], btc["costmin"], btc["tick_size"], btc["status"]) == (
        "0.0001",
        "0.5",
        "0.1",
        "online",
    )
    # The project's own AssetPairs parser reads our answer back to the same instruments.
    parsed = {i.symbol: i for i in instruments_from_asset_pairs(ours)}
    assert parsed["BTC/USD"] == sim.venue.instruments["BTC/USD"]
    assert parsed["ETH/USD"] == sim.venue.instruments["ETH/USD"]
    every = (await sim.client.public("AssetPairs")).result
    assert len(every) == len(sim.venue.instruments)
    fees = (await sim.client.public("AssetPairs", pair="XBTUSD", info="fees")).result
    assert set(fees["XXBTZUSD"]) == {"fees", "fees_maker", "fee_volume_currency"}
    bad = await sim.client.public("AssetPairs", pair="NOPE")
    assert bad.data == {"error": ["EQuery:Unknown asset pair"]}


async def test_ticker_depth_trades_shapes(fake_sim: SimHandle) -> None:
    sim = fake_sim
    assert isinstance(sim.clock, FakeClock)
    for _ in range(100):  # step the market until it has traded
        if sim.venue.stats.last_trade("BTC/USD") is not None:
            break
        sim.clock.advance(0.5)
        await sim.venue.step()
    await place(sim, price="60000.0")
    inst = sim.venue.instruments["BTC/USD"]
    reply = await sim.client.public("Ticker", pair="XBTUSD")
    tick = reply.result["XXBTZUSD"]
    assert set(tick) == {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
    bids, asks = sim.venue.exchange.depth("BTC/USD", 1)
    assert tick["a"][0] == inst.price_text(asks[0][0])
    assert tick["b"][0] == inst.price_text(bids[0][0])
    assert tick["a"][2] == inst.qty_text(asks[0][1]) and decimals(tick["a"][2]) == 8
    assert [len(tick[k]) for k in "abcvptlh"] == [3, 3, 2, 2, 2, 2, 2, 2]
    assert all(isinstance(n, int) for n in tick["t"]) and tick["t"][1] >= 1
    last = sim.venue.stats.last_trade("BTC/USD")
    assert last is not None and tick["c"] == [inst.price_text(last.price), inst.qty_text(last.qty)]
    assert Decimal(tick["l"][1]) <= Decimal(tick["p"][1]) <= Decimal(tick["h"][1])
    assert isinstance(tick["o"], str) and decimals(tick["o"]) == 1

    depth = (await sim.client.public("Depth", pair="XBTUSD", count=5)).result["XXBTZUSD"]
    assert len(depth["asks"]) == len(depth["bids"]) == 5
    for price, volume, stamp in depth["asks"] + depth["bids"]:
        assert decimals(price) == 1 and decimals(volume) == 8 and isinstance(stamp, int)
        assert stamp <= sim.clock.time_ns() // 10**9
    ask_prices = [Decimal(p) for p, _, _ in depth["asks"]]
    bid_prices = [Decimal(p) for p, _, _ in depth["bids"]]
    assert ask_prices == sorted(ask_prices) and bid_prices == sorted(bid_prices, reverse=True)
    assert bid_prices[0] < ask_prices[0]

    trades_reply = await sim.client.public("Trades", pair="XBTUSD", count=3)
    trades = trades_reply.result
    stamps = re.findall(r'",([0-9.]+),"[bs]"', trades_reply.text)  # as Kraken: 4 decimals
    assert stamps and all(re.fullmatch(r"[0-9]+\.[0-9]{4}", t) for t in stamps)
    assert set(trades) == {"XXBTZUSD", "last"} and isinstance(trades["last"], str)
    rows = trades["XXBTZUSD"]
    assert 1 <= len(rows) <= 3
    for price, volume, when, side, kind, misc, trade_id in rows:
        assert decimals(price) == 1 and decimals(volume) == 8
        assert isinstance(when, float) and side in "bs" and kind in "lm" and misc == ""
        assert isinstance(trade_id, int)
    sim.clock.advance(5.0)
    await sim.venue.step()
    later = await sim.client.public("Trades", pair="XBTUSD", since=trades["last"])
    assert all(r[6] > rows[-1][6] for r in later.result["XXBTZUSD"])
    assert (await sim.client.public("Trades", pair="XBTUSD", since=0)).result["XXBTZUSD"]
    assert (await sim.client.public("Depth")).error == ["EGeneral:Invalid arguments:pair"]
    assert (await sim.client.public("Nope")).error == ["EGeneral:Unknown method"]


# ---------------------------------------------------------------------- authentication
@pytest.mark.parametrize("as_json", [False, True])
async def test_signed_form_and_json_bodies_are_accepted(fake_sim: SimHandle, as_json: bool) -> None:
    reply = await fake_sim.client.private("Balance", as_json=as_json)
    assert reply.status == 200
    assert reply.result == {
        "XETH": "100.0000000000",
        "SOL": "1000.0000000000",
        "XXBT": "10.0000000000",
        "ZEUR": "100000.0000",
        "ZUSD": "100000.0000",
    }


async def test_wrong_signature_unknown_key_and_nonces_are_rejected(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    path, body, headers = client.build("Balance", {}, as_json=False, nonce=None)
    first_nonce = client.last_nonce
    bad = dict(headers, **{"API-Sign": sign(fake_sim.api_secret, path, 1, body)})
    assert (await client.send(path, body, bad)).error == ["EAPI:Invalid signature"]
    # Signed for another endpoint: the URI path is part of the signature.
    other = dict(headers, **{"API-Sign": sign(fake_sim.api_secret, "/0/private/X", 1, body)})
    assert (await client.send(path, body, other)).error == ["EAPI:Invalid signature"]
    # The JSON body re-serialised differently than signed.
    jpath, jbody, jheaders = client.build("Balance", {}, as_json=True, nonce=None)
    spaced = jbody.replace(b":", b": ")
    assert (await client.send(jpath, spaced, jheaders)).error == ["EAPI:Invalid signature"]
    no_sign = {k: v for k, v in headers.items() if k != "API-Sign"}
    assert (await client.send(path, body, no_sign)).error == ["EAPI:Invalid signature"]
    stranger = fake_sim.client_for("bm9ib2R5", fake_sim.api_secret)
    assert (await stranger.private("Balance")).error == ["EAPI:Invalid key"]
    # Nonces: strictly increasing per key; the rejected requests above consumed none.
    assert (await client.send(path, body, headers)).status == 200
    assert (await client.send(path, body, headers)).error == ["EAPI:Invalid nonce"]
    lower = first_nonce - 1
    assert (await client.private("Balance", nonce=lower)).error == ["EAPI:Invalid nonce"]
    assert (await client.private("Balance")).error == []
    assert (await client.private("Balance", nonce="12x")).error == ["EAPI:Invalid nonce"]


# ---------------------------------------------------------------------- orders
async def test_add_order_variants_and_open_orders_shape(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    reply = await client.private(
        "AddOrder",
        pair="XBTUSD",
        type="buy",
        ordertype="limit",
        price="50000.0",
        volume="1.25",
        cl_ord_id="my-order-1",
        oflags="post",
    )
    assert reply.result["descr"] == {"order": "buy 1.25000000 XBTUSD @ limit 50000.0"}
    (txid,) = reply.result["txid"]
    assert re.fullmatch(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", txid)
    json_reply = await client.private(
        "AddOrder",
        as_json=True,
        pair="BTC/USD",
        type="sell",
        ordertype="limit",
        price="90000.0",
        volume="0.5",
        userref=42,
        timeinforce="GTD",
        expiretm="+3600",
    )
    sell = json_reply.result["txid"][0]
    checked = await client.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price="1000.0", volume="1",
        validate=True,
    )  # fmt: skip
    assert checked.result == {"descr": {"order": "buy 1.00000000 XBTUSD @ limit 1000.0"}}

    opened = (await client.private("OpenOrders")).result["open"]
    assert set(opened) == {txid, sell}
    order = opened[txid]
    for key, types in ORDER_FIELDS.items():
        assert isinstance(order[key], types), (key, order[key])
    assert set(order["descr"]) == DESCR_FIELDS
    assert order["descr"]["order"] == "buy 1.25000000 XBTUSD @ limit 50000.0"
    assert (order["status"], order["vol"], order["vol_exec"]) == (
        "open",
        "1.25000000",
        "0.00000000",
    )
    assert order["cl_ord_id"] == "my-order-1" and order["oflags"] == "post,fciq"
    assert order["opentm"] == pytest.approx(fake_sim.clock.time_ns() / 1e9, abs=1e-3)
    assert opened[sell]["userref"] == 42 and opened[sell]["expiretm"] > opened[sell]["opentm"]
    held = (await client.private("BalanceEx", as_json=True)).result
    assert held["ZUSD"] == {"balance": "100000.0000", "hold_trade": "62750.0000"}  # + taker fee
    # The sell gave no fee flag: Kraken's default for a sell is the fee in base (``fcib``),
    # so its hold is the 0.5 BTC and the taker fee on it (0.4 %), in BTC.
    assert held["XXBT"] == {"balance": "10.0000000000", "hold_trade": "0.5020000000"}
    assert opened[sell]["oflags"] == "fcib"
    by_ref = (await client.private("OpenOrders", userref=42)).result["open"]
    assert list(by_ref) == [sell]
    by_cl = (await client.private("OpenOrders", cl_ord_id="my-order-1")).result["open"]
    assert list(by_cl) == [txid]

    errors = [
        ({"pair": "NOPE"}, "EQuery:Unknown asset pair"),
        ({"volume": "0.000000001"}, "EGeneral:Invalid arguments:volume"),
        (
            {"price": "50000.05"},
            "EOrder:Invalid price:BTC/USD price can only be specified up to 1 decimals.",
        ),
        ({"price": "+5"}, "EGeneral:Invalid arguments:price"),
        ({"ordertype": "stop-loss"}, "EGeneral:Invalid arguments:ordertype"),
        ({"oflags": "post,bogus"}, "EGeneral:Invalid arguments:oflags"),
        ({"volume": "0.00001"}, "EOrder:Order minimum not met"),
        ({"volume": "1000"}, "EOrder:Insufficient funds"),
        ({"cl_ord_id": "my-order-1"}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"cl_ord_id": "x", "userref": "1"}, "EGeneral:Invalid arguments:cl_ord_id"),
    ]
    base = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "50000.0"}
    for change, error in errors:
        params = {**base, "volume": "0.01", **change}
        assert (await client.private("AddOrder", **params)).error == [error], change


async def test_post_only_that_would_cross_is_accepted_then_cancelled(fake_sim: SimHandle) -> None:
    _, asks = fake_sim.venue.exchange.depth("BTC/USD", 1)
    inst = fake_sim.venue.instruments["BTC/USD"]
    txid = await place(fake_sim, price=inst.price_text(asks[0][0]))
    closed = (await fake_sim.client.private("ClosedOrders")).result["closed"]
    assert closed[txid]["status"] == "canceled"
    assert closed[txid]["reason"] == "Post only order"


async def test_market_order_fills_and_trades_history(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    reply = await client.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01", as_json=True
    )
    txid = reply.result["txid"][0]
    info = (await client.private("QueryOrders", txid=txid, trades=True)).result[txid]
    assert info["status"] == "closed" and info["vol_exec"] == "0.01000000"
    assert decimals(info["cost"]) == 5 and decimals(info["price"]) == 1
    assert Decimal(info["fee"]) > 0 and info["trades"]
    history = (await client.private("TradesHistory")).result
    assert history["count"] == len(info["trades"]) == len(history["trades"])
    for trade_id, trade in history["trades"].items():
        assert trade_id in info["trades"]
        for key, types in TRADE_FIELDS.items():
            assert isinstance(trade[key], types), (key, trade[key])
        assert trade["ordertxid"] == txid and trade["pair"] == "XXBTZUSD"
        assert trade["type"] == "buy" and trade["ordertype"] == "market"
    total = sum(Decimal(t["vol"]) for t in history["trades"].values())
    assert total == Decimal("0.01")
    balance = (await client.private("Balance")).result
    assert Decimal(balance["XXBT"]) == Decimal("10.01")
    assert Decimal(balance["ZUSD"]) < Decimal(100000)


async def test_batch_amend_cancel_and_queries(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    limit = {"ordertype": "limit", "type": "buy"}
    orders = [
        {**limit, "volume": "0.01", "price": "50000.0", "cl_ord_id": "b1"},
        {**limit, "volume": "0.02", "price": "49000.0", "userref": 7},
    ]
    batch = (
        await client.private("AddOrderBatch", as_json=True, pair="XBTUSD", orders=orders)
    ).result
    assert [set(o) for o in batch["orders"]] == [{"txid", "descr"}] * 2
    first, second = (o["txid"] for o in batch["orders"])
    assert isinstance(first, str)
    assert batch["orders"][1]["descr"] == {"order": "buy 0.02000000 XBTUSD @ limit 49000.0"}
    # A form-encoded batch with bracketed keys; one bad order rejects the whole batch.
    form = {
        "pair": "XBTUSD",
        "orders[0][ordertype]": "limit", "orders[0][type]": "buy",
        "orders[0][volume]": "0.01", "orders[0][price]": "48000.0",
        "orders[1][ordertype]": "limit", "orders[1][type]": "buy",
        "orders[1][volume]": "0.01", "orders[1][price]": "48000.05",
    }  # fmt: skip
    rejected = await client.private("AddOrderBatch", **form)
    assert rejected.error == [
        "EOrder:Invalid price:BTC/USD price can only be specified up to 1 decimals."
    ]
    form["orders[1][price]"] = "47000.0"
    assert len((await client.private("AddOrderBatch", **form)).result["orders"]) == 2
    too_small = await client.private(
        "AddOrderBatch", as_json=True, pair="XBTUSD", orders=orders[:1]
    )
    assert too_small.error == ["EGeneral:Invalid arguments:orders"]

    amend = await client.private("AmendOrder", cl_ord_id="b1", order_qty="0.005")
    assert re.fullmatch(r"T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", amend.result["amend_id"])
    await client.private("AmendOrder", txid=second, limit_price="49500.0")
    queried = (await client.private("QueryOrders", txid=f"{first},{second}")).result
    assert queried[first]["vol"] == "0.00500000" and queried[first]["misc"] == "amended"
    assert queried[second]["descr"]["price"] == "49500.0"
    by_cl = (await client.private("QueryOrders", cl_ord_id="b1")).result
    assert list(by_cl) == [first]
    unknown = await client.private("AmendOrder", txid="OAAAAA-BBBBB-CCCCCC", order_qty="1")
    assert unknown.error == ["EOrder:Unknown order"]

    assert (await client.private("CancelOrder", cl_ord_id="b1")).result == {
        "count": 1,
        "pending": False,
    }
    assert (await client.private("CancelOrder", txid="7")).result["count"] == 1  # userref
    gone = await client.private("CancelOrder", txid=second)
    assert gone.error == ["EOrder:Unknown order"]  # as public reports show (ccxt#7338)
    assert (await client.private("QueryOrders", txid="OAAAAA-BBBBB-CCCCCC")).error == [
        "EOrder:Invalid order"
    ]
    assert (await client.private("CancelAll")).result == {"count": 2}
    assert (await client.private("OpenOrders")).result == {"open": {}}
    closed = (await client.private("ClosedOrders")).result
    assert closed["count"] == 4 and len(closed["closed"]) == 4
    newest_first = [o["closetm"] for o in closed["closed"].values()]
    assert newest_first == sorted(newest_first, reverse=True)
    page = (await client.private("ClosedOrders", ofs=3)).result
    assert page["count"] == 4 and len(page["closed"]) == 1
    only = (await client.private("ClosedOrders", cl_ord_id="b1")).result
    assert list(only["closed"]) == [first] and only["count"] == 1


async def test_websockets_token(fake_sim: SimHandle) -> None:
    result = (await fake_sim.client.private("GetWebSocketsToken")).result
    assert set(result) == {"token", "expires"} and result["expires"] == 900
    assert fake_sim.venue.tokens.check(result["token"], fake_sim.clock.monotonic()) == (
        fake_sim.account
    )


async def test_unknown_private_method(fake_sim: SimHandle) -> None:
    assert (await fake_sim.client.private("Withdraw")).error == ["EGeneral:Unknown method"]


# ---------------------------------------------------------------------- rate limits
async def test_rest_counter_refuses_a_starter_burst_then_recovers(fake_sim: SimHandle) -> None:
    client, clock = fake_sim.client, fake_sim.clock
    assert isinstance(clock, FakeClock)
    for _ in range(13):
        assert (await client.private("Balance")).error == []
    assert (await client.private("TradesHistory")).error == []  # costs 2: counter at 15
    for _ in range(3):  # AddOrder costs nothing on this counter
        await place(fake_sim)
    assert (await client.private("Balance")).error == ["EAPI:Rate limit exceeded"]
    clock.advance(2.0)  # 16 (the refused call counts) - 0.66: still full
    assert (await client.private("Balance")).error == ["EAPI:Rate limit exceeded"]
    clock.advance(10.0)  # 16.34 (refused calls count) - 3.3 = 13.04
    assert (await client.private("Balance")).error == []


async def test_amend_and_edit_count_on_the_rest_counter(sim_factory: SimFactory) -> None:
    # https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits exempts only "AddOrder,
    # CancelOrder which operate on a different limiter": an amend or an edit costs 1 (Pro:
    # 20 calls fill the counter; the trading counter, 180, is nowhere near its threshold).
    handle = await sim_factory(clock=FakeClock(), tier="pro")
    client = handle.client
    txid = await place(handle)
    for i in range(19):
        reply = await client.private("AmendOrder", txid=txid, order_qty=f"0.00{2 + i % 2}")
        assert reply.error == []
    edited = await client.private("EditOrder", txid=txid, pair="XBTUSD", volume="0.002")
    assert edited.error == []  # the 20th call: the counter is full now
    assert (await client.private("Balance")).error == ["EAPI:Rate limit exceeded"]
    assert (
        handle.venue.trading_counter(handle.account).value("BTC/USD", handle.clock.monotonic())
        < 180
    )


async def test_trading_counter_cancel_penalties_then_decay(fake_sim: SimHandle) -> None:
    client, clock = fake_sim.client, fake_sim.clock
    assert isinstance(clock, FakeClock)
    counter = fake_sim.venue.trading_counter(fake_sim.account)
    for cycle in range(6):  # add (+1) and cancel at once (+8): 9 a cycle
        txid = await place(fake_sim)
        assert (await client.private("CancelOrder", txid=txid)).error == []
        assert counter.value("BTC/USD", clock.monotonic()) == pytest.approx(9 * (cycle + 1))
    txid = await place(fake_sim)  # 55
    refused = await client.private("CancelOrder", txid=txid)
    assert refused.error == ["EOrder:Rate limit exceeded"]
    assert txid in (await client.private("OpenOrders")).result["open"]
    clock.advance(10.0)  # 45 left; the order is 10 s old: a cancel now costs 5
    assert (await client.private("CancelOrder", txid=txid)).error == []
    assert counter.value("BTC/USD", clock.monotonic()) == pytest.approx(50)
    # Amends: +1 and +3 under 5 s since the order was placed or last amended.
    txid = await place(fake_sim)  # 51
    for qty, total in (("0.002", 55), ("0.003", 59)):
        assert (await client.private("AmendOrder", txid=txid, order_qty=qty)).error == []
        assert counter.value("BTC/USD", clock.monotonic()) == pytest.approx(total)
    again = await client.private("AmendOrder", txid=txid, order_qty="0.004")
    assert again.error == ["EOrder:Rate limit exceeded"]
    assert counter.value("BTC/USD", clock.monotonic()) == pytest.approx(60)  # fixed +1 kept


async def test_adds_past_the_starter_threshold_are_refused(sim_factory: SimFactory) -> None:
    handle = await sim_factory(clock=FakeClock(), open_orders_limit=1000)
    for _ in range(60):
        await place(handle)
    extra = await handle.client.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price="50000.0", volume="0.001"
    )
    assert extra.error == ["EOrder:Rate limit exceeded"]
    assert len((await handle.client.private("OpenOrders")).result["open"]) == 60
    handle.clock.advance(3.0)  # type: ignore[attr-defined]
    await place(handle)


# ---------------------------------------------------------------------- dead man's switch
async def test_cancel_all_orders_after_fires_once_and_stays_off(fake_sim: SimHandle) -> None:
    client, clock, venue = fake_sim.client, fake_sim.clock, fake_sim.venue
    assert isinstance(clock, FakeClock)
    events: list[ExecEvent] = []
    venue.bus.subscribe_private(fake_sim.account, events.extend)
    first, second = await place(fake_sim), await place(fake_sim, price="49000.0")
    armed = (await client.private("CancelAllOrdersAfter", timeout=5)).result
    assert armed == {"currentTime": "2023-11-14T22:13:20Z", "triggerTime": "2023-11-14T22:13:25Z"}
    clock.advance(4.0)
    await venue.step()
    assert len((await client.private("OpenOrders")).result["open"]) == 2
    pushed = (await client.private("CancelAllOrdersAfter", timeout=5)).result
    assert pushed["triggerTime"] == "2023-11-14T22:13:29Z"
    clock.advance(5.5)
    events.clear()
    await venue.step()
    assert (await client.private("OpenOrders")).result == {"open": {}}
    cancelled = {e.order.txid for e in events if e.exec_type == "canceled"}
    assert cancelled == {first, second}
    assert venue.deadman_trigger(fake_sim.account) is None
    # The timer stays off until armed again.
    third = await place(fake_sim)
    clock.advance(30.0)
    await venue.step()
    assert list((await client.private("OpenOrders")).result["open"]) == [third]
    # Timeout 0 disarms.
    await client.private("CancelAllOrdersAfter", timeout=3)
    disarmed = (await client.private("CancelAllOrdersAfter", timeout=0)).result
    assert disarmed["triggerTime"] == "0" and RFC3339.fullmatch(disarmed["currentTime"])
    clock.advance(10.0)
    await venue.step()
    assert list((await client.private("OpenOrders")).result["open"]) == [third]
    too_long = await client.private("CancelAllOrdersAfter", timeout=86400)
    assert too_long.error == ["EGeneral:Invalid arguments:timeout"]


async def test_dead_mans_switch_fires_on_the_real_pump(sim: SimHandle) -> None:
    await place(sim)
    await sim.client.private("CancelAllOrdersAfter", timeout=1)
    for _ in range(60):  # bounded wait: at most 3 s on the real clock
        if not sim.venue.exchange.open_orders(sim.account):
            break
        await asyncio.sleep(0.05)
    assert sim.venue.exchange.open_orders(sim.account) == []


# ---------------------------------------------------------------------- determinism
async def test_same_seed_and_clock_give_the_same_answers(sim_factory: SimFactory) -> None:
    answers = []
    for _ in range(2):
        handle = await sim_factory(clock=FakeClock(), seed=11)
        assert isinstance(handle.clock, FakeClock)
        for _ in range(5):
            handle.clock.advance(0.7)
            await handle.venue.step()
        txid = await place(handle)
        market = await handle.client.private(
            "AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="1"
        )
        history = (await handle.client.private("TradesHistory")).result
        depth = (await handle.client.public("Depth", pair="XBTUSD", count=20)).text
        answers.append((txid, market.result, history, depth))
    assert answers[0] == answers[1]
    now_s = handle.clock.time_ns() // 10**9
    later = (await handle.client.private("TradesHistory", start=now_s + 1)).result
    assert later == {"trades": {}, "count": 0}
    since = (await handle.client.private("TradesHistory", start=now_s - 1, ofs=1)).result
    assert (
        since["count"] == answers[1][2]["count"] >= 2 and len(since["trades"]) == since["count"] - 1
    )
    closed = await handle.client.private("ClosedOrders", start=now_s - 1)
    assert closed.result["count"] == 1


async def test_unsupported_options_pass_when_off_and_are_refused_when_on(
    fake_sim: SimHandle,
) -> None:
    # Clients such as python-kraken-sdk send reduce_only=False (form) or false (JSON).
    client = fake_sim.client
    base = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "1000.0"}
    for as_json, off in ((False, "False"), (False, "false"), (True, False)):
        reply = await client.private(
            "AddOrder", as_json=as_json, volume="0.001", reduce_only=off, **base
        )
        assert reply.error == [], (as_json, off)
    refused = await client.private("AddOrder", volume="0.001", reduce_only="true", **base)
    assert refused.error == ["EGeneral:Invalid arguments:reduce_only"]
