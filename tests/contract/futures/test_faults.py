"""Faults on demand in the Futures simulator, through its admin API."""

from __future__ import annotations

import aiohttp

from .conftest import FuturesSim

S = "PF_XBTUSD"


async def test_admin_needs_its_token(sim: FuturesSim) -> None:
    async with sim.session.get(sim.server.admin_url + "/faults") as r:
        assert r.status == 401
    bad = await sim.session.post(
        sim.server.admin_url + "/faults",
        json={"kind": "nope"},
        headers={"X-Admin-Token": sim.venue.admin_token},
    )
    assert bad.status == 400
    bad.release()


async def test_ws_drop_and_silence(sim: FuturesSim) -> None:
    sock = await sim.socket()
    await sock.send({"event": "subscribe", "feed": "heartbeat"})
    await sock.recv()
    await sim.admin("POST", "/faults", {"kind": "ws_silence", "hold_s": 12})
    await sim.advance(10)  # two heartbeats due, both swallowed
    await sim.advance(5)  # silence over: the next one arrives
    beat = await sock.recv()
    assert beat["feed"] == "heartbeat" and beat["time"] >= (sim.clock.time_ns() // 10**6) - 1
    await sim.admin("POST", "/faults", {"kind": "ws_drop"})
    msg = await sock.ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    faults = (await sim.admin("GET", "/faults"))["faults"]
    assert [(f["kind"], f["state"], f["fired"]) for f in faults] == [
        ("ws_silence", "done", 1),
        ("ws_drop", "done", 1),
    ]


async def test_rest_faults_and_an_engine_pause(sim: FuturesSim) -> None:
    await sim.admin(
        "POST", "/faults", {"kind": "rest_error", "endpoint": "openorders", "status": 503}
    )
    failed = await sim.client.get("openorders")
    assert failed.status == 503 and failed.body is None
    assert (await sim.client.get("openorders")).ok  # used up
    await sim.admin("POST", "/faults", {"kind": "rate_limit", "count": 2})
    assert (await sim.client.get("accounts")).error == "apiLimitExceeded"
    assert (await sim.client.get("fills")).error == "apiLimitExceeded"
    assert (await sim.client.get("fills")).ok
    await sim.admin("POST", "/faults", {"kind": "pause_engine", "duration_s": 30})
    order = {"orderType": "mkt", "symbol": S, "side": "buy", "size": "0.01"}
    assert (await sim.client.post("sendorder", order)).error == "marketUnavailable"
    assert (await sim.client.get("openorders")).ok  # reads still answer
    await sim.advance(31)
    assert (await sim.client.post("sendorder", order)).ok
    cancelled = await sim.admin("DELETE", "/faults")
    assert cancelled == {"cancelled": 0}
