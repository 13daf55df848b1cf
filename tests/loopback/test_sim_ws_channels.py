"""The simulator's ``ohlc`` (public), ``balances`` and ``level3`` (authenticated) WS v2
channels over real sockets, read by a plain JSON client as Kraken's pages describe them:
https://docs.kraken.com/api/docs/websocket-v2/ohlc, .../balances, .../level3 and the
level3 checksum guide. Frames are decoded with exact decimals (``parse_float=Decimal``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.loopback.conftest import SimHandle
from tests.loopback.test_sim_ws_public import step
from tests.unit.sim.test_level3 import L3Client, live_view

TIMEOUT = 5.0
_ids = itertools.count(1)
Msg = dict[str, Any]


class Ws:
    """JSON in, JSON out (numbers as ``Decimal``); a ``ping`` answered in order is the
    barrier: everything sent before it has arrived once its ``pong`` has."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str) -> tuple[Ws, Msg]:
        ws = cls(await connect(url, max_size=None, compression=None, proxy=None))
        status = await ws.next()
        assert status["channel"] == "status"
        return ws, status

    async def send(self, method: str, **params: Any) -> int:
        req_id = next(_ids)
        await self.ws.send(json.dumps({"method": method, "params": params, "req_id": req_id}))
        return req_id

    async def raw(self) -> bytes:
        async with asyncio.timeout(TIMEOUT):
            data = await self.ws.recv(decode=False)
        assert isinstance(data, bytes)
        return data

    async def next(self) -> Msg:
        msg: Msg = json.loads(await self.raw(), parse_float=Decimal)
        return msg

    async def until(self, match: Callable[[Msg], bool]) -> Msg:
        for _ in range(1000):  # bounded
            msg = await self.next()
            if match(msg):
                return msg
        raise AssertionError("not found")

    async def answer(self, method: str, **params: Any) -> Msg:
        req_id = await self.send(method, **params)
        return await self.until(lambda m: m.get("req_id") == req_id)

    async def barrier(self) -> list[bytes]:
        req_id = await self.send("ping")
        frames = []
        while True:
            raw = await self.raw()
            msg = json.loads(raw)
            if msg.get("method") == "pong" and msg.get("req_id") == req_id:
                return frames
            frames.append(raw)

    async def close(self) -> None:
        await self.ws.close()


async def token_of(sim: SimHandle, client: Any = None) -> str:
    reply = await (client or sim.client).private("GetWebSocketsToken")
    assert reply.error == [], reply.error
    return str(reply.result["token"])


async def buy_at_market(sim: SimHandle, volume: str = "0.01") -> str:
    reply = await sim.client.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume=volume
    )
    assert reply.error == []
    return str(reply.result["txid"][0])


# ----------------------------------------------------------------------------- ohlc
async def test_ohlc_snapshot_then_the_running_candle_on_trades(fake_sim: SimHandle) -> None:
    await step(fake_sim, 40, dt=1.0)  # a few minutes of synthetic trades
    ws, _ = await Ws.open(fake_sim.ws_public_url)
    ack = await ws.answer("subscribe", channel="ohlc", symbol=["BTC/USD"], interval=1)
    assert ack["success"] is True
    assert ack["result"] == {
        "channel": "ohlc",
        "interval": 1,
        "snapshot": True,
        "symbol": "BTC/USD",
    }
    snapshot = await ws.next()
    assert snapshot["channel"] == "ohlc" and snapshot["type"] == "snapshot"
    assert snapshot["timestamp"].endswith("Z") and len(snapshot["timestamp"]) == 30  # ns
    candles = snapshot["data"]
    assert candles and all(c["symbol"] == "BTC/USD" and c["interval"] == 1 for c in candles)
    keys = ["symbol", "open", "high", "low", "close", "trades", "volume", "vwap",
            "interval_begin", "interval", "timestamp"]  # fmt: skip
    assert [list(c) for c in candles] == [keys] * len(candles)
    # The same candles as REST OHLC (its rows: time, open, high, low, close, vwap, volume, count).
    rows = (await fake_sim.client.public("OHLC", pair="XBTUSD", interval=1)).result["XXBTZUSD"]
    for candle, row in zip(candles, rows[-len(candles) :], strict=True):
        assert [str(candle[k]) for k in ("open", "high", "low", "close", "vwap", "volume")] == [
            row[1], row[2], row[3], row[4], row[5], row[6]
        ]  # fmt: skip
        assert candle["trades"] == row[7]
        begin = dt.datetime.fromisoformat(candle["interval_begin"][:19] + "+00:00")
        end = dt.datetime.fromisoformat(candle["timestamp"][:19] + "+00:00")
        assert begin.timestamp() == row[0] and end.timestamp() == row[0] + 60
    last = candles[-1]
    # A trade now: one update, the running candle (the same interval or the next one).
    before = last["trades"]
    await buy_at_market(fake_sim)
    update = await ws.until(lambda m: m.get("channel") == "ohlc")
    (running,) = update["data"]
    assert update["type"] == "update"
    if running["interval_begin"] == last["interval_begin"]:
        assert running["trades"] > before and running["high"] >= last["high"]
    else:
        assert running["interval_begin"] > last["interval_begin"]
    assert running["low"] <= running["open"] <= running["high"]
    assert running["low"] <= running["close"] <= running["high"]
    # Unsubscribe must name the interval.
    wrong = await ws.answer("unsubscribe", channel="ohlc", symbol=["BTC/USD"], interval=5)
    assert wrong["success"] is False and wrong["error"] == "Subscription Not Found"
    gone = await ws.answer("unsubscribe", channel="ohlc", symbol=["BTC/USD"], interval=1)
    assert gone["success"] is True and gone["result"]["interval"] == 1
    await buy_at_market(fake_sim)
    assert [f for f in await ws.barrier() if b'"ohlc"' in f] == []
    await ws.close()


async def test_ohlc_refusals(fake_sim: SimHandle) -> None:
    ws, _ = await Ws.open(fake_sim.ws_public_url)
    bad = await ws.answer("subscribe", channel="ohlc", symbol=["BTC/USD"], interval=2)
    assert bad["success"] is False and bad["error"] == "EGeneral:Invalid arguments"
    unknown = await ws.answer("subscribe", channel="ohlc", symbol=["XBT/USD"])
    assert unknown["error"] == "Currency pair not supported XBT/USD"
    first = await ws.answer("subscribe", channel="ohlc", symbol=["ETH/USD"], snapshot=False)
    assert first["success"] is True and first["result"]["interval"] == 1
    again = await ws.answer("subscribe", channel="ohlc", symbol=["ETH/USD"], interval=1)
    assert again["error"] == "Already subscribed"
    other = await ws.answer("subscribe", channel="ohlc", symbol=["ETH/USD"], interval=60)
    assert other["success"] is True  # another interval is another subscription
    await ws.close()


# ----------------------------------------------------------------------------- balances
async def test_balances_snapshot_then_a_ledger_entry_per_asset_per_fill(
    fake_sim: SimHandle,
) -> None:
    ws, _ = await Ws.open(fake_sim.ws_private_url)
    token = await token_of(fake_sim)
    ack = await ws.answer("subscribe", channel="balances", token=token)
    assert ack["success"] is True and ack["result"] == {"channel": "balances", "snapshot": True}
    snapshot = await ws.next()
    assert (snapshot["channel"], snapshot["type"], snapshot["sequence"]) == (
        "balances", "snapshot", 1
    )  # fmt: skip
    held = {a["asset"]: a["balance"] for a in snapshot["data"]}
    assert held["USD"] == Decimal("100000.0000") and held["BTC"] == Decimal("10.0000000000")
    for asset in snapshot["data"]:
        assert asset["asset_class"] == "currency"
        assert asset["wallets"] == [{"type": "spot", "id": "main", "balance": asset["balance"]}]
    txid = await buy_at_market(fake_sim, "0.5")  # sweeps several levels: several fills
    fills = (await fake_sim.client.private("QueryOrders", txid=txid)).result[txid]
    updates = [json.loads(f, parse_float=Decimal) for f in await ws.barrier()]
    assert len(updates) >= 2  # one message per fill
    assert [u["sequence"] for u in updates] == list(range(2, 2 + len(updates)))
    entries = [e for u in updates for e in u["data"]]
    assert all(len(u["data"]) == 2 and u["type"] == "update" for u in updates)
    assert Decimal(fills["vol_exec"]) == sum(e["amount"] for e in entries if e["asset"] == "BTC")
    # REST prints the order's cost and fee to the pair's cost decimals (5); the ledger is exact.
    cost = sum(e["amount"] for e in entries if e["asset"] == "USD")
    assert abs(Decimal(fills["cost"]) + cost) < Decimal("0.00001")
    assert abs(Decimal(fills["fee"]) - sum(e["fee"] for e in entries)) < Decimal("0.00001")
    for entry in entries:
        assert (entry["type"], entry["category"], entry["wallet_type"], entry["wallet_id"]) == (
            "trade", "trade", "spot", "main"
        )  # fmt: skip
        assert entry["ref_id"].startswith("T") and entry["ledger_id"].startswith("L")
        # Each balance is the one before, plus the amount, minus the fee.
        held[entry["asset"]] += entry["amount"] - entry["fee"]
        assert entry["balance"] == held[entry["asset"]]
    rest = (await fake_sim.client.private("Balance")).result
    assert Decimal(rest["ZUSD"]) == held["USD"].quantize(Decimal("0.0001"), "ROUND_DOWN")
    assert Decimal(rest["XXBT"]) == held["BTC"]
    assert len({e["ledger_id"] for e in entries}) == len(entries)
    gone = await ws.answer("unsubscribe", channel="balances", token=token)
    assert gone["success"] is True and gone["result"] == {"channel": "balances"}
    await buy_at_market(fake_sim)
    assert [f for f in await ws.barrier() if b'"balances"' in f] == []
    await ws.close()


async def test_balances_needs_the_query_funds_permission(fake_sim: SimHandle) -> None:
    creds = fake_sim.venue.add_key(fake_sim.account, frozenset({_p("websocket")}))
    client = fake_sim.client_for(creds.api_key, creds.api_secret)
    ws, _ = await Ws.open(fake_sim.ws_private_url)
    refused = await ws.answer(
        "subscribe", channel="balances", token=await token_of(fake_sim, client)
    )
    assert refused["success"] is False and refused["error"] == "EGeneral:Permission denied"
    again = await ws.answer("subscribe", channel="balances", token=await token_of(fake_sim))
    assert again["success"] is True
    twice = await ws.answer("subscribe", channel="balances", token=await token_of(fake_sim))
    assert twice["error"] == "Already subscribed"
    await ws.close()


def _p(name: str) -> Any:
    from bot.sim.keys import Permission

    return Permission(name)


# ----------------------------------------------------------------------------- level3
@pytest.mark.parametrize("endpoint", ["level3", "private"])
async def test_level3_a_client_keeps_the_book_order_by_order(
    fake_sim: SimHandle, endpoint: str
) -> None:
    url = fake_sim.server.ws_level3_url if endpoint == "level3" else fake_sim.ws_private_url
    assert url != fake_sim.ws_private_url or endpoint == "private"
    ws, _ = await Ws.open(url)
    token = await token_of(fake_sim)
    ack = await ws.answer("subscribe", channel="level3", symbol=["BTC/USD"], token=token)
    assert ack["success"] is True
    assert ack["result"] == {
        "channel": "level3",
        "symbol": "BTC/USD",
        "depth": 10,
        "snapshot": True,
    }
    client = L3Client(10)
    client.apply(await ws.raw())
    inst = fake_sim.venue.instruments["BTC/USD"]
    scale = (inst.price_precision, inst.qty_precision)
    assert client.view(scale) == live_view(fake_sim.venue, "BTC/USD", 10)
    bid = inst.price_text(fake_sim.venue.exchange.book("BTC/USD").best_bid() or 0)
    mine = await fake_sim.client.private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", price=bid, volume="0.002",
        oflags="post",
    )  # fmt: skip
    txid = mine.result["txid"][0]

    def held() -> set[str]:
        return {o[0] for level in client.sides["bids"].values() for o in level}

    for frame in await ws.barrier():
        client.apply(frame)
    assert txid in held()  # it joined the best bid: an ``add`` with its own id
    for _ in range(30):
        await step(fake_sim, 1)
        for frame in await ws.barrier():
            client.apply(frame)
        assert client.view(scale) == live_view(fake_sim.venue, "BTC/USD", 10)
    assert client.mismatches == 0 and client.messages > 10
    was_held = txid in held()
    await fake_sim.client.private("CancelOrder", txid=txid)
    frames = await ws.barrier()
    if was_held:
        assert any(txid.encode() in f and b'"delete"' in f for f in frames)
    for frame in frames:
        client.apply(frame)
    assert txid not in held()
    gone = await ws.answer("unsubscribe", channel="level3", symbol=["BTC/USD"], token=token)
    assert gone["success"] is True
    await step(fake_sim, 5)
    assert [f for f in await ws.barrier() if b'"level3"' in f] == []
    await ws.close()


async def test_level3_refusals_and_its_endpoint_serves_nothing_else(fake_sim: SimHandle) -> None:
    ws, _ = await Ws.open(fake_sim.server.ws_level3_url)
    token = await token_of(fake_sim)
    no_token = await ws.answer("subscribe", channel="level3", symbol=["BTC/USD"])
    assert no_token["error"] == "EGeneral:Invalid arguments"
    depth = await ws.answer(
        "subscribe", channel="level3", symbol=["BTC/USD"], depth=25, token=token
    )
    assert depth["error"] == "Subscription depth not supported"
    pair = await ws.answer("subscribe", channel="level3", symbol=["BTC/XYZ"], token=token)
    assert pair["error"] == "Currency pair not supported BTC/XYZ"
    deep = await ws.answer(
        "subscribe", channel="level3", symbol=["ETH/USD"], depth=100, snapshot=False, token=token
    )
    assert deep["success"] is True and deep["result"]["depth"] == 100
    again = await ws.answer(
        "subscribe", channel="level3", symbol=["ETH/USD"], depth=10, token=token
    )
    assert again["error"] == "Already subscribed"  # one depth per symbol
    other = await ws.answer("subscribe", channel="executions", token=token)
    assert other["error"] == "Subscription name invalid"
    order = await ws.answer("add_order", token=token)
    assert order["error"] == "Method not found"
    nothing = await ws.answer("unsubscribe", channel="level3", symbol=["BTC/USD"], token=token)
    assert nothing["error"] == "Subscription Not Found"
    await ws.close()


async def test_an_expired_token_ends_every_private_subscription(fake_sim: SimHandle) -> None:
    ws, _ = await Ws.open(fake_sim.ws_private_url)
    token = await token_of(fake_sim)
    for channel, extra in (
        ("executions", {}),
        ("balances", {}),
        ("level3", {"symbol": ["BTC/USD"]}),
    ):
        ack = await ws.answer("subscribe", channel=channel, token=token, snapshot=False, **extra)
        assert ack["success"] is True, (channel, ack)
    await fake_sim.venue.faults.inject(kind="expire_token", account=fake_sim.account)
    told = [json.loads(f) for f in await ws.barrier()]
    ended = [m["result"]["channel"] for m in told if m.get("error") == "EAPI:Invalid token"]
    assert sorted(ended) == ["balances", "executions", "level3"]
    await buy_at_market(fake_sim)
    await step(fake_sim, 3)
    assert [f for f in await ws.barrier() if b'"channel"' in f and b"heartbeat" not in f] == []
    await ws.close()
