"""WS v2 ``batch_add``, ``batch_cancel`` and ``edit_order`` on the private endpoint: the same
order entry, checks, errors and rate limits as REST AddOrderBatch, CancelOrderBatch and
EditOrder (https://docs.kraken.com/api/docs/websocket-v2/batch_add, .../batch_cancel,
.../edit_order)."""

from __future__ import annotations

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
        cancelled = await ws.call("batch_cancel", orders=[ids[0], 9], cl_ord_id=["nope"])
        assert cancelled["success"] is True and cancelled["result"] == {"count": 2}
    open_ = (await fake_sim.client.private("OpenOrders")).result["open"]
    assert list(open_) == [new_id] and open_[new_id]["descr"]["price"] == "50003.0"
