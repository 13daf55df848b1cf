"""python-kraken-sdk (Kraken's recommended Python SDK) against ``krakenbot sim``: only the
base URLs change (``url=`` / ``rest_url=``, ``ws_url=``, ``auth_ws_url=``, and the class
attribute ``URL``/``WS_URL`` where a client takes no argument for it). WebSocket clients
append ``/v2`` to the host they are given, as they do to ``wss://ws.kraken.com``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from kraken.exceptions import KrakenInsufficientFundsError, KrakenPermissionDeniedError
from kraken.spot import Market, SpotOrderBookClient, SpotWSClient, Trade, User

from tests.contract.conftest import Account, Sim

WAIT_S = 10.0


def test_public_rest(sim: Sim) -> None:
    market = Market(url=sim.rest)
    assert market.get_system_status()["status"] == "online"
    assert market.get_assets(assets=["XBT"])["XXBT"]["decimals"] == 10
    pair = market.get_asset_pairs(pair="XBTUSD")["XXBTZUSD"]
    assert (pair["pair_decimals"], pair["lot_decimals"], pair["wsname"]) == (1, 8, "XBT/USD")
    # The synthetic market moves about once a second: the ticker and the book agree when no
    # step fell between the two calls, which a few tries make certain.
    for _ in range(5):
        ticker = market.get_ticker(pair="XBTUSD")["XXBTZUSD"]
        book = market.get_order_book(pair="XBTUSD", count=5)["XXBTZUSD"]
        if ticker["b"][0] == book["bids"][0][0] and ticker["a"][0] == book["asks"][0][0]:
            break
    assert ticker["b"][0] == book["bids"][0][0] and ticker["a"][0] == book["asks"][0][0]
    assert "last" in market.get_recent_trades(pair="XBTUSD")
    assert "last" in market.get_ohlc(pair="XBTUSD", interval=5)


def test_private_rest_orders_by_cl_ord_id_amend_cancel_history(sim: Sim, account: Account) -> None:
    trade = Trade(key=account.api_key, secret=account.api_secret, url=sim.rest)
    user = User(key=account.api_key, secret=account.api_secret, url=sim.rest)
    assert user.get_account_balance()["ZUSD"] == "100000.0000"
    placed = trade.create_order(
        ordertype="limit",
        side="buy",
        pair="XBTUSD",
        volume="0.001",
        price="50000",
        oflags=["post"],
        cl_ord_id="sdk-1",
    )
    txid = placed["txid"][0]
    assert list(user.get_open_orders(cl_ord_id="sdk-1")["open"]) == [txid]
    trade.amend_order(cl_ord_id="sdk-1", order_qty="0.002", limit_price="50010")
    info = user.get_orders_info(txid=txid)[txid]
    assert (info["vol"], info["descr"]["price"], info["cl_ord_id"]) == (
        "0.00200000",
        "50010.0",
        "sdk-1",
    )
    edited = trade.edit_order(txid=txid, pair="XBTUSD", price="50020")
    new_txid = edited["txid"]
    assert edited["originaltxid"] == txid
    assert trade.cancel_order(txid=new_txid)["count"] == 1
    trade.create_order(
        ordertype="limit", side="buy", pair="XBTUSD", volume="0.001", price="50000",
        cl_ord_id="sdk-2",
    )  # fmt: skip
    assert trade.cancel_order(cl_ord_id="sdk-2")["count"] == 1
    ids = [
        trade.create_order(
            ordertype="limit", side="buy", pair="XBTUSD", volume="0.001", price=str(49_000 + i)
        )["txid"][0]
        for i in range(3)
    ]
    assert trade.cancel_order_batch(orders=ids[:2])["count"] == 2
    assert trade.cancel_all_orders()["count"] == 1
    armed = trade.cancel_all_orders_after_x(timeout=60)
    assert armed["triggerTime"] > armed["currentTime"]
    trade.cancel_all_orders_after_x(timeout=0)
    bought = trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.001")
    closed = user.get_closed_orders()["closed"]
    assert closed[txid]["status"] == "canceled" and closed[bought["txid"][0]]["status"] == "closed"
    history = user.get_trades_history()["trades"]
    assert {t["ordertxid"] for t in history.values()} == {bought["txid"][0]}
    assert user.get_trades_info(txid=list(history)) == history


def test_errors_become_the_sdks_exceptions(sim: Sim, account: Account) -> None:
    trade = Trade(key=account.api_key, secret=account.api_secret, url=sim.rest)
    with pytest.raises(KrakenInsufficientFundsError):
        trade.create_order(
            ordertype="limit", side="buy", pair="XBTUSD", volume="100", price="60000"
        )
    made = sim.admin("/keys", {"account": account.name, "permissions": ["query_funds"]})
    reader = Trade(key=made["api_key"], secret=made["api_secret"], url=sim.rest)
    with pytest.raises(KrakenPermissionDeniedError):
        reader.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="1", price="1")


class Collector:
    """Messages a client's ``on_message`` receives, to wait on with a bound."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._event = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, dict):
            self.messages.append(message)
            self._event.set()

    async def wait_for(self, check: Any) -> dict[str, Any]:
        """The first message ``check`` accepts (waiting at most ``WAIT_S``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if check(message):
                    return message
            seen = len(self.messages)
            self._event.clear()
            remaining = deadline - loop.time()
            assert remaining > 0, f"no such message in {self.messages[-5:]}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)


def answer(method: str, req_id: int) -> Any:
    return lambda m: m.get("method") == method and m.get("req_id") == req_id


@pytest.mark.parametrize("depth", [10, 25, 100])
async def test_websocket_book_with_the_sdks_checksum_check(
    sim: Sim, depth: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The book client takes no URL: it reads its class attributes (and builds a Market()).
    monkeypatch.setattr(Market, "URL", sim.rest)
    updates: list[dict[str, Any]] = []
    mismatches: list[dict[str, Any]] = []
    enough = asyncio.Event()

    class Book(SpotOrderBookClient):
        WS_URL = sim.ws_host

        async def on_book_update(self, pair: str, message: dict[str, Any]) -> None:
            if "error" in message:
                mismatches.append(message)
            else:
                updates.append(message)
            if len(updates) >= 60:
                enough.set()

    client = Book(depth=depth)
    await client.start()
    try:
        await client.add_book(pairs=["BTC/USD"])
        await asyncio.wait_for(enough.wait(), 30)
        book = client.get(pair="BTC/USD")
        assert book is not None and book["valid"]
        assert len(book["bid"]) == len(book["ask"]) == depth
    finally:
        await client.close()
    assert mismatches == []
    assert updates[0]["type"] == "snapshot" and updates[-1]["type"] == "update"


async def test_websocket_private_executions_and_order_methods(sim: Sim, account: Account) -> None:
    collect = Collector()
    client = SpotWSClient(
        key=account.api_key,
        secret=account.api_secret,
        callback=collect,
        no_public=True,
        rest_url=sim.rest,
        auth_ws_url=sim.ws_auth_host,
    )
    await client.start()
    try:
        await client.subscribe(params={"channel": "executions", "snap_orders": True}, req_id=1)
        ack = await collect.wait_for(answer("subscribe", 1))
        assert ack["success"] is True and ack["result"]["channel"] == "executions"
        order = {
            "order_type": "limit",
            "side": "buy",
            "order_qty": 0.001,
            "limit_price": 50000,
            "symbol": "BTC/USD",
            "post_only": True,
            "cl_ord_id": "ws-1",
        }
        await client.send_message({"method": "add_order", "params": order, "req_id": 2})
        added = await collect.wait_for(answer("add_order", 2))
        assert added["success"] is True and added["result"]["cl_ord_id"] == "ws-1"
        order_id = added["result"]["order_id"]
        new = await collect.wait_for(
            lambda m: (
                m.get("channel") == "executions"
                and any(
                    r.get("exec_type") == "new" and r.get("order_id") == order_id for r in m["data"]
                )
            )
        )
        assert new["type"] == "update"
        amend = {"cl_ord_id": "ws-1", "order_qty": 0.002, "limit_price": 50010}
        await client.send_message({"method": "amend_order", "params": amend, "req_id": 3})
        assert (await collect.wait_for(answer("amend_order", 3)))["success"] is True
        await collect.wait_for(
            lambda m: (
                m.get("channel") == "executions"
                and any(r.get("exec_type") == "amended" for r in m["data"])
            )
        )
        await client.send_message(
            {"method": "cancel_order", "params": {"cl_ord_id": ["ws-1"]}, "req_id": 4}
        )
        assert (await collect.wait_for(answer("cancel_order", 4)))["success"] is True
        await client.send_message(
            {"method": "cancel_all_orders_after", "params": {"timeout": 60}, "req_id": 5}
        )
        armed = await collect.wait_for(answer("cancel_all_orders_after", 5))
        assert armed["success"] is True and armed["result"]["triggerTime"] != "0"
        await client.send_message({"method": "cancel_all", "params": {}, "req_id": 6})
        assert (await collect.wait_for(answer("cancel_all", 6)))["result"] == {"count": 0}
    finally:
        await client.close()


async def test_websocket_ohlc(sim: Sim) -> None:
    collect = Collector()
    client = SpotWSClient(callback=collect, rest_url=sim.rest, ws_url=sim.ws_host)
    await client.start()
    try:
        params = {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 1}
        await client.subscribe(params=params, req_id=1)
        ack = await collect.wait_for(answer("subscribe", 1))
        assert ack["success"] is True
        assert ack["result"] == {**params, "symbol": "BTC/USD", "snapshot": True}
        snapshot = await collect.wait_for(lambda m: m.get("channel") == "ohlc")
        assert snapshot["type"] == "snapshot"
        update = await collect.wait_for(
            lambda m: m.get("channel") == "ohlc" and m.get("type") == "update"
        )
        (candle,) = update["data"]
        assert candle["symbol"] == "BTC/USD" and candle["interval"] == 1 and candle["trades"] > 0
        assert candle["low"] <= candle["close"] <= candle["high"]
    finally:
        await client.close()


async def test_websocket_balances_and_level3(sim: Sim, account: Account) -> None:
    collect = Collector()
    client = SpotWSClient(
        key=account.api_key,
        secret=account.api_secret,
        callback=collect,
        no_public=True,
        rest_url=sim.rest,
        auth_ws_url=sim.ws_auth_host,
    )
    await client.start()
    try:
        await client.subscribe(params={"channel": "balances"}, req_id=1)
        ack = await collect.wait_for(answer("subscribe", 1))
        assert ack["success"] is True and ack["result"] == {"channel": "balances", "snapshot": True}
        snapshot = await collect.wait_for(lambda m: m.get("channel") == "balances")
        assert snapshot["type"] == "snapshot" and snapshot["sequence"] == 1
        assert {a["asset"] for a in snapshot["data"]} >= {"USD", "BTC"}
        trade = Trade(key=account.api_key, secret=account.api_secret, url=sim.rest)
        trade.create_order(ordertype="market", side="buy", volume="0.001", pair="XBTUSD")
        entries = await collect.wait_for(
            lambda m: m.get("channel") == "balances" and m.get("type") == "update"
        )
        assert {e["asset"] for e in entries["data"]} == {"BTC", "USD"}
        assert all(e["type"] == "trade" and e["ref_id"] for e in entries["data"])
        # level3 on the authenticated endpoint, as the channel page names it.
        await client.subscribe(params={"channel": "level3", "symbol": ["BTC/USD"]}, req_id=2)
        level3 = await collect.wait_for(answer("subscribe", 2))
        assert level3["success"] is True and level3["result"]["depth"] == 10
        book = await collect.wait_for(lambda m: m.get("channel") == "level3")
        assert book["type"] == "snapshot" and book["data"][0]["bids"]
    finally:
        await client.close()


async def test_websocket_level3_on_its_own_endpoint(sim: Sim, account: Account) -> None:
    # python-kraken-sdk: "subscribing to level3 requires a separate client instantiated with
    # auth_ws_url="wss://ws-l3.kraken.com"".
    collect = Collector()
    client = SpotWSClient(
        key=account.api_key,
        secret=account.api_secret,
        callback=collect,
        no_public=True,
        rest_url=sim.rest,
        auth_ws_url=sim.ws_l3_host,
    )
    await client.start()
    try:
        params = {"channel": "level3", "symbol": ["BTC/USD", "ETH/USD"], "depth": 100}
        await client.subscribe(params=params, req_id=3)
        acks = [await collect.wait_for(lambda m: m.get("method") == "subscribe")]
        acks.append(
            await collect.wait_for(lambda m: m.get("method") == "subscribe" and m is not acks[0])
        )
        assert {a["result"]["symbol"] for a in acks} == {"BTC/USD", "ETH/USD"}
        assert all(a["success"] and a["result"]["depth"] == 100 for a in acks)
        await collect.wait_for(lambda m: m.get("channel") == "level3" and m.get("type") == "update")
    finally:
        await client.close()
