"""WS v2 ``batch_add``, ``batch_cancel`` and ``edit_order`` on the private endpoint: the same
order entry, checks, errors and rate limits as REST AddOrderBatch, CancelOrderBatch and
EditOrder (https://docs.kraken.com/api/docs/websocket-v2/batch_add, .../batch_cancel,
.../edit_order)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.loopback.conftest import SimHandle


class Ws:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        self.ws = ws
        self.token = token
        self.req_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.req_id += 1
        body = {"method": method, "params": {**params, "token": self.token}, "req_id": self.req_id}
        await self.ws.send_str(json.dumps(body))
        for _ in range(100):  # bounded: the answer comes before any report it causes
            frame: dict[str, Any] = json.loads((await self.ws.receive(timeout=5)).data)
            if frame.get("req_id") == self.req_id:
                return frame
        raise AssertionError("no answer")


def limit(price: float, **extra: Any) -> dict[str, Any]:
    return {"order_type": "limit", "side": "buy", "order_qty": 0.001, "limit_price": price,
            "post_only": True, **extra}  # fmt: skip


async def test_batch_add_batch_cancel_and_edit(fake_sim: SimHandle) -> None:
    token = (await fake_sim.client.private("GetWebSocketsToken")).result["token"]
    counter = fake_sim.venue.trading_counter(fake_sim.account)
    async with fake_sim.session.ws_connect(fake_sim.ws_private_url) as raw:
        await raw.receive(timeout=5)  # status
        ws = Ws(raw, token)
        added = await ws.call(
            "batch_add",
            symbol="BTC/USD",
            orders=[limit(50000, cl_ord_id="b-1"), limit(50001, order_userref=9), limit(50002)],
        )
        assert added["success"] is True, added
        ids = [r["order_id"] for r in added["result"]]
        assert added["result"][0]["cl_ord_id"] == "b-1"
        assert added["result"][1]["order_userref"] == 9
        # Batch add: +n/2 on the pair.
        assert counter.value("BTC/USD", fake_sim.clock.monotonic()) == 1.5
        one_bad = await ws.call(
            "batch_add", symbol="BTC/USD", orders=[limit(50000), limit(50000.05)]
        )
        assert one_bad["success"] is False  # the whole batch is refused
        assert one_bad["error"].startswith("EOrder:Invalid price:BTC/USD")
        assert (await ws.call("batch_add", symbol="BTC/USD", orders=[limit(1)]))["error"] == (
            "EGeneral:Invalid arguments"
        )
        edited = await ws.call("edit_order", order_id=ids[2], symbol="BTC/USD", limit_price=50003)
        assert edited["success"] is True and edited["result"]["original_order_id"] == ids[2]
        new_id = edited["result"]["order_id"]
        assert new_id != ids[2]
        gone = await ws.call("edit_order", order_id=ids[2], symbol="BTC/USD", limit_price=50004)
        assert gone["error"] == "EOrder:Unknown order"
        only_ours = await ws.call("batch_cancel", cl_ord_id=["b-1", "nope"])
        assert only_ours["error"] == "EGeneral:Invalid arguments:orders"  # required
        cancelled = await ws.call("batch_cancel", orders=[ids[0], 9], cl_ord_id=["nope"])
        assert cancelled["success"] is True and cancelled["result"] == {"count": 2}
    open_ = (await fake_sim.client.private("OpenOrders")).result["open"]
    assert list(open_) == [new_id] and open_[new_id]["descr"]["price"] == "50003.0"


async def test_a_sells_fee_is_in_base_unless_it_asks_for_quote(fake_sim: SimHandle) -> None:
    """``fee_preference``: "quote is the default for buy orders, base is the default for
    sell orders" (Kraken's add_order); the order's ``oflags`` show it (``fcib``/``fciq``)."""
    token = (await fake_sim.client.private("GetWebSocketsToken")).result["token"]
    sell = {"order_type": "limit", "side": "sell", "order_qty": 0.001, "limit_price": 90000}
    async with fake_sim.session.ws_connect(fake_sim.ws_private_url) as raw:
        await raw.receive(timeout=5)  # status
        ws = Ws(raw, token)
        ids = []
        for extra in ({}, {"fee_preference": "quote"}, {"fee_preference": "base"}):
            added = await ws.call("add_order", symbol="BTC/USD", **sell, **extra)
            assert added["success"] is True, added
            ids.append(added["result"]["order_id"])
        bought = await ws.call("add_order", symbol="BTC/USD", **{**sell, "side": "buy",
                                                               "limit_price": 1000})  # fmt: skip
        ids.append(bought["result"]["order_id"])
        bad = await ws.call("add_order", symbol="BTC/USD", **sell, fee_preference="usd")
        assert (
            bad["success"] is False and bad["error"] == "EGeneral:Invalid arguments:fee_preference"
        )
    open_ = (await fake_sim.client.private("OpenOrders")).result["open"]
    assert [open_[i]["oflags"] for i in ids] == ["fcib", "fciq", "fcib", "fciq"]


# ------------------------------------------------------------------------------ faults


async def _fault(sim: SimHandle, **spec: Any) -> dict[str, Any]:
    async with sim.session.post(
        sim.admin_url + "/faults", json=spec, headers=sim.admin_headers
    ) as reply:
        body: dict[str, Any] = await reply.json()
        assert reply.status == 201, body
        return body["fault"]


async def test_ws_order_faults_through_the_admin_api(fake_sim: SimHandle) -> None:
    """Refused before anything happens; answered late (the order rests at once); executed
    with the connection dropped before the answer: as REST's rest_error, rest_delay and
    lose_response."""
    token = (await fake_sim.client.private("GetWebSocketsToken")).result["token"]
    exchange, account = fake_sim.venue.exchange, fake_sim.account
    async with fake_sim.session.ws_connect(fake_sim.ws_private_url) as raw:
        await raw.receive(timeout=5)  # status
        ws = Ws(raw, token)
        await _fault(fake_sim, kind="ws_order_error", endpoint="add_order", error="EService:Busy")
        refused = await ws.call("add_order", symbol="BTC/USD", **limit(50000, cl_ord_id="f-1"))
        assert (refused["success"], refused["error"]) == (False, "EService:Busy")
        assert exchange.open_orders(account) == []
        # One use only: the next add_order goes through.
        placed = await ws.call("add_order", symbol="BTC/USD", **limit(50000, cl_ord_id="f-2"))
        assert placed["success"] is True

        fault = await _fault(fake_sim, kind="ws_order_delay", endpoint="cancel_order", delay_s=3)
        assert fault["remaining"] == 1
        ws.req_id += 1
        body = {"method": "cancel_order", "req_id": ws.req_id,
                "params": {"cl_ord_id": ["f-2"], "token": token}}  # fmt: skip
        await raw.send_str(json.dumps(body))
        for _ in range(100):  # bounded: executed at once, the answer held back
            if not exchange.open_orders(account):
                break
            await asyncio.sleep(0.01)
        assert exchange.open_orders(account) == []
        # A ping's pong overtakes the held answer (it would follow it otherwise).
        await raw.send_str(json.dumps({"method": "ping", "req_id": 999}))
        before_pong = []
        for _ in range(100):
            frame = json.loads((await raw.receive(timeout=5)).data)
            if frame.get("method") == "pong":
                break
            before_pong.append(frame.get("req_id"))
        assert ws.req_id not in before_pong
        fake_sim.clock.advance(3.0)  # type: ignore[attr-defined]
        for _ in range(100):
            frame = json.loads((await raw.receive(timeout=5)).data)
            if frame.get("req_id") == ws.req_id:
                break
        assert frame["method"] == "cancel_order" and frame["success"] is True

        await _fault(fake_sim, kind="ws_lose_ack", endpoint="add_order")
        ws.req_id += 1
        params = {"symbol": "BTC/USD", **limit(49000, cl_ord_id="f-3"), "token": token}
        body = {"method": "add_order", "req_id": ws.req_id, "params": params}
        await raw.send_str(json.dumps(body))
        answers = []
        for _ in range(100):  # bounded: the connection ends without the answer
            msg = await raw.receive(timeout=5)
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                break
            answers.append(json.loads(msg.data).get("req_id"))
        assert ws.req_id not in answers
    (rests,) = exchange.open_orders(account)  # executed all the same
    assert rests.cl_ord_id == "f-3"
    async with fake_sim.session.get(
        fake_sim.admin_url + "/faults", headers=fake_sim.admin_headers
    ) as reply:
        faults = (await reply.json())["faults"]
    assert [(f["kind"], f["state"]) for f in faults] == [
        ("ws_order_error", "done"),
        ("ws_order_delay", "done"),
        ("ws_lose_ack", "done"),
    ]
