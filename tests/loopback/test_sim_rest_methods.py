"""The REST methods added for independent clients: Assets, OHLC, EditOrder,
CancelOrderBatch, QueryTrades, and AssetPairs keyed and filtered as Kraken does.

AssetPairs' unfiltered answer is keyed by REST name (the real capture
``../shared/data/kraken/cryptofeed_KRAKEN.0``); a pair asked for by a ``BASE/QUOTE`` name is
keyed by that name as given, which python-kraken-sdk's book client relies on
(``SpotOrderBookClient``: ``get_asset_pairs(pair=pair)[pair]`` with the WS v2 symbol).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.loopback.conftest import SimHandle
from tests.loopback.test_sim_rest import place

CAPTURE = Path(__file__).resolve().parents[2].parent / "shared/data/kraken/cryptofeed_KRAKEN.0"


def captured_pairs() -> dict[str, Any]:
    line = CAPTURE.read_text().splitlines()[0]
    result: dict[str, Any] = json.loads(line.split(": ", 1)[1])["result"]
    return result


async def test_asset_pairs_are_keyed_and_filtered_as_kraken_does(fake_sim: SimHandle) -> None:
    public = fake_sim.client.public
    everything = (await public("AssetPairs")).result
    real = captured_pairs()
    listed = [key for key in everything if key in real]  # SOL/USD was listed after 2021
    assert len(listed) >= 10
    for key in listed:  # REST names and wsnames are Kraken's
        entry = everything[key]
        assert (entry["altname"], entry["wsname"]) == (real[key]["altname"], real[key]["wsname"])
    assert list((await public("AssetPairs", pair="XBTUSD")).result) == ["XXBTZUSD"]
    assert list((await public("AssetPairs", pair="XXBTZUSD")).result) == ["XXBTZUSD"]
    by_ws = (await public("AssetPairs", pair="BTC/USD")).result
    assert list(by_ws) == ["BTC/USD"] and by_ws["BTC/USD"] == everything["XXBTZUSD"]
    assert list((await public("AssetPairs", pair="XBT/USD")).result) == ["XBT/USD"]
    assert list((await public("AssetPairs", pair="XDG/USD")).result) == ["XDG/USD"]
    both = (await public("AssetPairs", pair="ETH/USD,XBTUSD")).result
    assert list(both) == ["ETH/USD", "XXBTZUSD"]
    assert (await public("AssetPairs", pair="BTC/XYZ")).error == ["EQuery:Unknown asset pair"]
    assert list((await public("Ticker", pair="BTC/USD")).result) == ["BTC/USD"]


async def test_assets(fake_sim: SimHandle) -> None:
    public = fake_sim.client.public
    assets = (await public("Assets")).result
    assert assets["XXBT"] == {
        "aclass": "currency",
        "altname": "XBT",
        "decimals": 10,
        "display_decimals": 5,
        "status": "enabled",
    }
    assert assets["ZUSD"]["altname"] == "USD" and assets["ZUSD"]["decimals"] == 4
    assert assets["XXDG"]["altname"] == "XDG"
    for name in ("XBT", "BTC", "XXBT"):
        assert list((await public("Assets", asset=name)).result) == ["XXBT"]
    assert (await public("Assets", asset="NOPE")).error == ["EQuery:Unknown asset"]


async def test_ohlc_from_the_simulators_trades(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    for _ in range(2):
        bought = await client.private(
            "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01"
        )
        assert bought.error == []
    candles = (await client.public("OHLC", pair="XBTUSD")).result
    rows = candles["XXBTZUSD"]
    tape = (await client.public("Trades", pair="XBTUSD")).result["XXBTZUSD"]
    assert rows and sum(r[7] for r in rows) == len(tape)
    time, open_, high, low, close, vwap, volume, count = rows[-1]
    prices = [float(t[0]) for t in tape]
    assert isinstance(time, int) and time % 60 == 0
    assert float(open_) == prices[0] and float(close) == prices[-1]
    assert float(high) == max(prices) and float(low) == min(prices)
    assert float(low) <= float(vwap) <= float(high)
    assert volume == f"{sum(float(t[1]) for t in tape):.8f}" and count == len(tape)
    assert isinstance(candles["last"], int)
    assert (await client.public("OHLC", pair="XBTUSD", interval=7)).error == [
        "EGeneral:Invalid arguments:interval"
    ]
    later = (await client.public("OHLC", pair="XBTUSD", since=time)).result["XXBTZUSD"]
    assert later == []


async def test_edit_order_cancels_and_replaces(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    txid = await place(fake_sim, price="50000.0", volume="0.001", userref=42)
    counter = fake_sim.venue.trading_counter(fake_sim.account)
    before = counter.value("BTC/USD", fake_sim.clock.monotonic())
    edited = await client.private(
        "EditOrder", txid=txid, pair="XBTUSD", price="50100.0", volume="0.002"
    )
    result = edited.result
    assert result["originaltxid"] == txid and result["txid"] != txid
    assert result["status"] == "ok" and result["volume"] == "0.00200000"
    assert result["price"] == "50100.0"
    # Edit Order: +1, and +6 for an order younger than 5 s.
    assert counter.value("BTC/USD", fake_sim.clock.monotonic()) == before + 7
    open_ = (await client.private("OpenOrders")).result["open"]
    assert list(open_) == [result["txid"]]
    assert open_[result["txid"]]["userref"] == 42
    assert open_[result["txid"]]["descr"]["price"] == "50100.0"
    old = (await client.private("QueryOrders", txid=txid)).result[txid]
    assert old["status"] == "canceled"
    # By userref; a cl_ord_id is not EditOrder's (Kraken: use AmendOrder).
    again = await client.private("EditOrder", txid="42", pair="XBTUSD", price="50200.0")
    assert again.error == [] and again.result["originaltxid"] == result["txid"]
    refused = await client.private("EditOrder", txid=txid, pair="XBTUSD", price="1")
    assert refused.error == ["EOrder:Unknown order"]
    with_id = await client.private(
        "EditOrder", txid=again.result["txid"], pair="XBTUSD", cl_ord_id="x"
    )
    assert with_id.error == ["EGeneral:Invalid arguments:cl_ord_id"]


async def test_cancel_order_batch(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    a = await place(fake_sim, price="50000.0")
    await place(fake_sim, price="50001.0", userref=7)
    await place(fake_sim, price="50002.0", cl_ord_id="batch-c")
    keep = await place(fake_sim, price="50003.0")
    reply = await client.private(
        "CancelOrderBatch", as_json=True, orders=[a, 7], cl_ord_ids=["batch-c"]
    )
    assert reply.result == {"count": 3}
    assert list((await client.private("OpenOrders")).result["open"]) == [keep]
    assert (await client.private("CancelOrderBatch", as_json=True, orders=[])).error == [
        "EGeneral:Invalid arguments:orders"
    ]
    too_many = [f"O{i:05d}-AAAAA-BBBBBB" for i in range(51)]
    assert (await client.private("CancelOrderBatch", as_json=True, orders=too_many)).error == [
        "EGeneral:Invalid arguments:orders"
    ]


async def test_query_trades(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    assert (
        await client.private(
            "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01"
        )
    ).error == []
    history = (await client.private("TradesHistory")).result["trades"]
    ids = list(history)
    found = (await client.private("QueryTrades", txid=",".join(ids))).result
    assert found == history
    assert (await client.private("QueryTrades", txid="TNOPE-NOPE-NOPE")).error == [
        "EGeneral:Invalid arguments:txid"
    ]


PRICE_DECIMALS = "EOrder:Invalid price:BTC/USD price can only be specified up to 1 decimals."


async def test_too_many_price_decimals_is_krakens_invalid_price(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001"}
    assert (await client.private("AddOrder", **order, price="50000.05")).error == [PRICE_DECIMALS]
    txid = await place(fake_sim)
    amend = await client.private("AmendOrder", txid=txid, limit_price="50000.25")
    assert amend.error == [PRICE_DECIMALS]
    token = (await client.private("GetWebSocketsToken")).result["token"]
    async with fake_sim.session.ws_connect(fake_sim.ws_private_url) as ws:
        await ws.receive_json(timeout=5)
        params = {
            "order_type": "limit",
            "side": "buy",
            "order_qty": 0.001,
            "limit_price": 50000.05,
            "symbol": "BTC/USD",
            "token": token,
        }
        await ws.send_json({"method": "add_order", "params": params, "req_id": 1})
        answer = await ws.receive_json(timeout=5)
    assert answer["success"] is False and answer["error"] == PRICE_DECIMALS
