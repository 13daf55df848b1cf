"""Kraken's system status on the simulator: the WS v2 ``status`` frame pushed on every
connection when the engine pauses, resumes or changes state, the admin route that sets each
of Kraken's states, SystemStatus, and order entry as Kraken allows it in each state
(https://docs.kraken.com/api/docs/websocket-v2/status,
https://docs.kraken.com/api/docs/rest-api/get-system-status,
https://docs.kraken.com/api/docs/guides/spot-errors: ``EService:Market in cancel_only mode``,
``EService:Market in post_only mode``)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from bot.kraken.protocol import Status
from tests.loopback.conftest import SimHandle
from tests.loopback.test_sim_faults import admin
from tests.loopback.test_sim_ws_public import WsClient

ADD: dict[str, Any] = {
    "pair": "XBTUSD",
    "type": "buy",
    "ordertype": "limit",
    "price": "50000.0",
    "volume": "0.001",
}


async def status_of(client: WsClient) -> str:
    event = await client.event()
    assert isinstance(event, Status), event
    return event.system


async def test_every_connection_is_told_when_the_engine_pauses_and_resumes(
    fake_sim: SimHandle,
) -> None:
    public = await WsClient.open(fake_sim.ws_public_url, fake_sim.venue)
    private = await WsClient.open(fake_sim.ws_private_url, fake_sim.venue)
    assert await status_of(public) == await status_of(private) == "online"
    await fake_sim.venue.faults.inject(kind="pause_engine", duration_s=5.0)
    assert await status_of(public) == await status_of(private) == "maintenance"
    late = await WsClient.open(fake_sim.ws_public_url, fake_sim.venue)
    assert await status_of(late) == "maintenance"  # on connect too
    fake_sim.clock.advance(5.0)  # type: ignore[attr-defined]
    await fake_sim.venue.step()  # the fault's duration is over: the engine resumes
    assert await status_of(public) == await status_of(private) == await status_of(late) == "online"
    status, _ = await admin(fake_sim, "POST", "/engine/pause")
    assert status == 200 and await status_of(public) == "maintenance"
    status, _ = await admin(fake_sim, "POST", "/engine/resume")
    assert status == 200 and await status_of(public) == "online"
    assert await public.barrier() == []  # one frame per change, nothing more
    for client in (public, private, late):
        await client.close()


@pytest.mark.parametrize("system", ["maintenance", "cancel_only", "post_only", "limit_only"])
async def test_the_admin_route_sets_each_state_and_back(fake_sim: SimHandle, system: str) -> None:
    public = await WsClient.open(fake_sim.ws_public_url, fake_sim.venue)
    assert await status_of(public) == "online"
    status, body = await admin(fake_sim, "POST", "/status", {"system": system})
    assert status == 200 and body == {"system": system, "paused": system == "maintenance"}
    assert await status_of(public) == system
    reply = await fake_sim.client.public("SystemStatus")
    assert reply.result["status"] == system
    status, body = await admin(fake_sim, "GET", "/status")
    assert body["system"] == system
    status, body = await admin(fake_sim, "POST", "/status", {"system": "online"})
    assert status == 200 and body == {"system": "online", "paused": False}
    assert await status_of(public) == "online"
    assert (await fake_sim.client.public("SystemStatus")).result["status"] == "online"
    await public.close()


async def test_the_admin_route_refuses_an_unknown_state(fake_sim: SimHandle) -> None:
    for body in ({"system": "closed"}, {}, {"system": 1}):
        status, answer = await admin(fake_sim, "POST", "/status", body)
        assert status == 400 and "online" in answer["error"]
    assert fake_sim.venue.system_status == "online"


async def test_cancel_only_refuses_new_orders_and_amends_but_cancels(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    txid = (await client.private("AddOrder", **ADD)).result["txid"][0]
    await admin(fake_sim, "POST", "/status", {"system": "cancel_only"})
    refused = "EService:Market in cancel_only mode"
    assert (await client.private("AddOrder", **ADD)).error == [refused]
    assert (await client.private("AddOrder", **ADD, validate="true")).error == [refused]
    amend = await client.private("AmendOrder", txid=txid, order_qty="0.002")
    assert amend.error == [refused]
    edit = await client.private("EditOrder", txid=txid, pair="XBTUSD", volume="0.002")
    assert edit.error == [refused]
    batch = await client.private(
        "AddOrderBatch",
        pair="XBTUSD",
        orders=[{**_batch_order(), "price": "50000.0"}, {**_batch_order(), "price": "50001.0"}],
        as_json=True,
    )
    assert batch.error == [refused]
    assert (await client.private("CancelOrder", txid=txid)).error == []
    assert (await client.private("CancelAll")).error == []
    assert (await client.private("CancelAllOrdersAfter", timeout=60)).error == []
    async with fake_sim.session.ws_connect(fake_sim.ws_private_url) as ws:
        await ws.receive(timeout=5)  # status
        token = (await client.private("GetWebSocketsToken")).result["token"]
        answer = await _ws_call(ws, "add_order", token, **_ws_order(post_only=True))
        assert answer["success"] is False and answer["error"] == refused


async def test_post_only_accepts_only_post_only_limit_orders(fake_sim: SimHandle) -> None:
    client, venue = fake_sim.client, fake_sim.venue
    await admin(fake_sim, "POST", "/status", {"system": "post_only"})
    refused = "EService:Market in post_only mode"
    assert (await client.private("AddOrder", **ADD)).error == [refused]
    market = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.001"}
    assert (await client.private("AddOrder", **market)).error == [refused]
    posted = await client.private("AddOrder", **ADD, oflags="post")
    assert posted.error == []
    txid = posted.result["txid"][0]
    (ask, _), *_ = venue.exchange.book("BTC/USD").depth("ask", 1)
    crossing = venue.instruments["BTC/USD"].price_text(ask)
    amend = await client.private("AmendOrder", txid=txid, limit_price=crossing)
    assert amend.error == [refused]
    assert (await client.private("AmendOrder", txid=txid, limit_price="50001.0")).error == []


async def test_limit_only_refuses_market_orders(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    await admin(fake_sim, "POST", "/status", {"system": "limit_only"})
    market = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.001"}
    refused = (await client.private("AddOrder", **market)).error
    assert refused == ["EService:Market in limit_only mode"]
    assert (await client.private("AddOrder", **ADD)).error == []


async def test_maintenance_pauses_and_a_new_state_resumes(fake_sim: SimHandle) -> None:
    client, venue = fake_sim.client, fake_sim.venue
    await admin(fake_sim, "POST", "/status", {"system": "maintenance"})
    assert venue.paused and (await client.private("AddOrder", **ADD)).error == [
        "EService:Unavailable"
    ]
    _, faults = await admin(fake_sim, "GET", "/faults")
    assert [f["kind"] for f in faults["faults"] if f["state"] == "active"] == ["pause_engine"]
    await admin(fake_sim, "POST", "/status", {"system": "cancel_only"})
    assert not venue.paused and venue.system_status == "cancel_only"
    _, faults = await admin(fake_sim, "GET", "/faults")
    assert [f for f in faults["faults"] if f["state"] == "active"] == []


def _batch_order() -> dict[str, Any]:
    return {"ordertype": "limit", "type": "buy", "volume": "0.001", "oflags": "post"}


def _ws_order(**extra: Any) -> dict[str, Any]:
    return {"order_type": "limit", "side": "buy", "order_qty": 0.001, "limit_price": 50000,
            "symbol": "BTC/USD", **extra}  # fmt: skip


async def _ws_call(
    ws: aiohttp.ClientWebSocketResponse, method: str, token: str, **params: Any
) -> dict[str, Any]:
    await ws.send_str(json.dumps({"method": method, "params": {**params, "token": token}}))
    for _ in range(50):  # bounded: the answer comes before any report it causes
        frame: dict[str, Any] = json.loads((await ws.receive(timeout=5)).data)
        if frame.get("method") == method:
            return frame
    raise AssertionError("no answer")
