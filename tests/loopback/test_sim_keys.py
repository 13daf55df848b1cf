"""Accounts with several API keys, each with Kraken's permissions, from the simulator's side.

Keys are made through the admin API (``POST /admin/keys``) as a user or a test would; each
private REST method is called with a key that lacks every permission the method accepts
(``EGeneral:Permission denied``) and with one that holds exactly one of them (anything but
that error). WebSocket requests carry the permissions of the key whose token they use.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from bot.sim.keys import ALL_PERMISSIONS, REST_PERMISSIONS, Permission
from bot.sim.rest_private import PRIVATE_METHODS
from tests.loopback.conftest import SimHandle
from tests.loopback.kraken_client import KrakenTestClient

DENIED = "EGeneral:Permission denied"
# Arguments that make each method do something real (a bad argument is not a denial).
ARGS: dict[str, dict[str, Any]] = {
    "AddOrder": {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": "1000",
        "volume": "0.01",
        "oflags": "post",
    },
    "AddOrderBatch": {
        "pair": "XBTUSD",
        "orders": [
            {"ordertype": "limit", "type": "buy", "volume": "0.01", "price": "1000"},
            {"ordertype": "limit", "type": "buy", "volume": "0.01", "price": "1001"},
        ],
    },
    "CancelAllOrdersAfter": {"timeout": 0},
    "QueryOrders": {"txid": "OAAAAA-BBBBB-CCCCCC"},
    "QueryTrades": {"txid": "TAAAAA-BBBBB-CCCCCC"},
}


async def new_key(
    sim: SimHandle, permissions: list[str] | None, *, account: str | None = None, **extra: Any
) -> KrakenTestClient:
    body: dict[str, Any] = {"account": account or sim.account, **extra}
    if permissions is not None:
        body["permissions"] = permissions
    async with sim.session.post(f"{sim.admin_url}/keys", json=body, headers=sim.admin_headers) as r:
        assert r.status == 201, await r.text()
        made = await r.json()
    assert made["account"] == body["account"]
    return sim.client_for(made["api_key"], made["api_secret"])


async def call(client: KrakenTestClient, method: str) -> list[str]:
    return (await client.private(method, as_json=True, **ARGS.get(method, {}))).error


@pytest.mark.parametrize("method", sorted(PRIVATE_METHODS))
async def test_each_method_is_refused_without_its_permission_and_served_with_one(
    fake_sim: SimHandle, method: str
) -> None:
    needed = REST_PERMISSIONS[method]
    others = [p.value for p in ALL_PERMISSIONS - set(needed)]
    without = await new_key(fake_sim, others)
    assert await call(without, method) == [DENIED]
    for permission in needed:
        holder = await new_key(fake_sim, [permission.value])
        assert DENIED not in await call(holder, method), permission


async def test_every_private_method_has_a_permission() -> None:
    assert set(PRIVATE_METHODS) <= set(REST_PERMISSIONS)
    assert all(REST_PERMISSIONS[m] for m in PRIVATE_METHODS)


async def test_a_key_with_no_permission_can_do_nothing_private(fake_sim: SimHandle) -> None:
    nothing = await new_key(fake_sim, [])
    for method in PRIVATE_METHODS:
        assert await call(nothing, method) == [DENIED], method
    # Public calls need no key, and so no permission.
    assert (await nothing.public("Time")).error == []


async def test_observer_sees_another_keys_orders_and_cannot_trade(fake_sim: SimHandle) -> None:
    trader = fake_sim.client
    placed = await trader.private("AddOrder", **ARGS["AddOrder"], cl_ord_id="mine-1")
    txid = placed.result["txid"][0]
    observer = await new_key(
        fake_sim,
        ["query_funds", "query_open_orders", "query_closed_orders", "query_ledger"],
    )
    seen = (await observer.private("OpenOrders")).result["open"]
    assert txid in seen and seen[txid]["cl_ord_id"] == "mine-1"
    assert txid in (await observer.private("QueryOrders", txid=txid)).result
    assert (await observer.private("Balance")).result == (await trader.private("Balance")).result
    assert (await observer.private("CancelOrder", txid=txid)).error == [DENIED]
    assert (await observer.private("CancelAll")).error == [DENIED]
    assert (await observer.private("AddOrder", **ARGS["AddOrder"])).error == [DENIED]
    assert (await observer.private("AmendOrder", txid=txid, order_qty="0.02")).error == [DENIED]
    assert (await observer.private("GetWebSocketsToken")).error == [DENIED]
    # The trader cancels; the observer sees it closed.
    assert (await trader.private("CancelOrder", txid=txid)).result["count"] == 1
    closed = (await observer.private("ClosedOrders")).result["closed"]
    assert closed[txid]["status"] == "canceled"


async def test_query_orders_needs_the_permission_of_each_orders_status(
    fake_sim: SimHandle,
) -> None:
    trader = fake_sim.client
    open_id = (await trader.private("AddOrder", **ARGS["AddOrder"])).result["txid"][0]
    closed_id = (await trader.private("AddOrder", **ARGS["AddOrder"])).result["txid"][0]
    assert (await trader.private("CancelOrder", txid=closed_id)).error == []
    open_only = await new_key(fake_sim, ["query_open_orders"])
    closed_only = await new_key(fake_sim, ["query_closed_orders"])
    assert open_id in (await open_only.private("QueryOrders", txid=open_id)).result
    assert (await open_only.private("QueryOrders", txid=closed_id)).error == [DENIED]
    assert closed_id in (await closed_only.private("QueryOrders", txid=closed_id)).result
    assert (await closed_only.private("QueryOrders", txid=open_id)).error == [DENIED]


async def test_each_key_has_its_own_nonces_and_rest_counter(fake_sim: SimHandle) -> None:
    first = fake_sim.client
    second = await new_key(fake_sim, None)
    assert (await first.private("Balance", nonce=10**15)).error == []
    # Another key of the same account starts its own nonce sequence.
    assert (await second.private("Balance", nonce=5)).error == []
    assert (await first.private("Balance", nonce=6)).error == ["EAPI:Invalid nonce"]
    # Starter: 15 calls fill the first key's counter; the second key's is untouched.
    errors = [(await first.private("Balance")).error for _ in range(16)]
    assert errors[-1] == ["EAPI:Rate limit exceeded"]
    assert (await second.private("Balance")).error == []


async def test_a_nonce_window_lets_late_nonces_in_but_never_a_replay(fake_sim: SimHandle) -> None:
    windowed = await new_key(fake_sim, None, nonce_window=1000)
    strict = await new_key(fake_sim, None)
    assert (await windowed.private("Balance", nonce=10_000)).error == []
    assert (await windowed.private("Balance", nonce=9_500)).error == []  # within the window
    assert (await windowed.private("Balance", nonce=9_500)).error == ["EAPI:Invalid nonce"]
    assert (await windowed.private("Balance", nonce=9_000)).error == ["EAPI:Invalid nonce"]
    assert (await windowed.private("Balance", nonce=10_001)).error == []
    assert (await strict.private("Balance", nonce=10_000)).error == []
    assert (await strict.private("Balance", nonce=9_999)).error == ["EAPI:Invalid nonce"]


async def test_admin_keys_api_checks_its_input(fake_sim: SimHandle) -> None:
    url = f"{fake_sim.admin_url}/keys"
    headers = fake_sim.admin_headers

    async def post(body: dict[str, Any], token: dict[str, str] = headers) -> tuple[int, Any]:
        async with fake_sim.session.post(url, json=body, headers=token) as r:
            return r.status, await r.json()

    assert (await post({"account": "nobody"}))[0] == 404
    status, body = await post({"account": fake_sim.account, "permissions": ["trade_everything"]})
    assert status == 400 and "trade_everything" in body["error"]
    assert (await post({"account": fake_sim.account, "nonce_window": -1}))[0] == 400
    assert (await post({"account": fake_sim.account}, {}))[0] == 401
    # Kraken's own names are accepted and answered as ids.
    status, body = await post(
        {
            "account": fake_sim.account,
            "permissions": ["Funds permissions - Query", "Cancel/Close Orders"],
        }
    )
    assert status == 201 and body["permissions"] == ["cancel_orders", "query_funds"]
    async with fake_sim.session.get(f"{fake_sim.admin_url}/accounts", headers=headers) as r:
        listed = {a["account"]: a for a in (await r.json())["accounts"]}
    keys = listed[fake_sim.account]["keys"]
    assert [k["api_key"] for k in keys] == [fake_sim.api_key, body["api_key"]]
    assert all("api_secret" not in k for k in keys)


# ------------------------------------------------------------------------- WebSocket


async def ws_call(sim: SimHandle, token: str, method: str, **params: Any) -> dict[str, Any]:
    async with sim.session.ws_connect(sim.ws_private_url) as ws:
        await ws.receive_json()  # status
        await ws.send_json({"method": method, "params": {**params, "token": token}, "req_id": 7})
        while True:
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.TEXT
            frame = json.loads(msg.data)
            if frame.get("req_id") == 7:
                return frame


async def test_websocket_token_needs_the_websocket_permission(fake_sim: SimHandle) -> None:
    no_ws = await new_key(fake_sim, [p.value for p in ALL_PERMISSIONS - {Permission.WEBSOCKET}])
    assert (await no_ws.private("GetWebSocketsToken")).error == [DENIED]
    ws_only = await new_key(fake_sim, ["websocket"])
    assert (await ws_only.private("GetWebSocketsToken")).error == []


async def test_websocket_requests_carry_the_permissions_of_the_tokens_key(
    fake_sim: SimHandle,
) -> None:
    ws_only = await new_key(fake_sim, ["websocket"])
    token = (await ws_only.private("GetWebSocketsToken")).result["token"]
    order = {
        "order_type": "limit",
        "side": "buy",
        "order_qty": 0.01,
        "limit_price": 1000,
        "symbol": "BTC/USD",
        "post_only": True,
    }
    answer = await ws_call(fake_sim, token, "add_order", **order)
    assert answer["success"] is False and answer["error"] == DENIED
    answer = await ws_call(fake_sim, token, "subscribe", channel="executions")
    assert answer["success"] is False and answer["error"] == DENIED
    answer = await ws_call(fake_sim, token, "cancel_all")
    assert answer["success"] is False and answer["error"] == DENIED

    trader = await new_key(fake_sim, ["websocket", "create_orders", "query_open_orders"])
    token = (await trader.private("GetWebSocketsToken")).result["token"]
    answer = await ws_call(fake_sim, token, "add_order", **order)
    assert answer["success"] is True, answer
    answer = await ws_call(fake_sim, token, "subscribe", channel="executions")
    assert answer["success"] is True, answer
    # Create & modify orders also allows cancelling, as Kraken's cancel pages say.
    answer = await ws_call(fake_sim, token, "cancel_all")
    assert answer["success"] is True and answer["result"]["count"] == 1
