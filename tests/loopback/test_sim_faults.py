"""Faults on demand: each kind acts, is bounded, is listed and logged; the admin API needs
its token. WebSocket faults are checked on stand-in connections that implement the
``WsConnection`` protocol (the WS handlers' own tests drive real sockets)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.core.errors import TokenError
from bot.sim.faults import FaultKind, FaultSpec
from bot.sim.venue import WsConnection
from tests.loopback.conftest import SimHandle

ADD = {
    "pair": "XBTUSD",
    "type": "buy",
    "ordertype": "limit",
    "price": "50000.0",
    "volume": "0.001",
    "oflags": "post",
}


@dataclass
class StandInConnection:
    """Records what the faults asked of it."""

    conn_id: str
    kind: str
    account: str | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def drop(self) -> None:
        self.calls.append(("drop", None))

    def silence(self, seconds: float) -> None:
        self.calls.append(("silence", seconds))

    def corrupt_checksum(self, symbol: str | None = None) -> None:
        self.calls.append(("corrupt", symbol))

    def revoke_token(self) -> None:
        self.calls.append(("revoke", None))

    def send_status(self, system: str) -> None:
        self.calls.append(("status", system))


def connect(sim: SimHandle) -> tuple[StandInConnection, StandInConnection, StandInConnection]:
    public1 = StandInConnection("p1", "public")
    public2 = StandInConnection("p2", "public")
    private = StandInConnection("x1", "private", sim.account)
    for conn in (public1, public2, private):
        assert isinstance(conn, WsConnection)
        sim.venue.register(conn)
    return public1, public2, private


async def admin(
    sim: SimHandle, verb: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"X-Admin-Token": sim.admin_token if token is None else token}
    async with sim.session.request(
        verb, f"{sim.admin_url}{path}", json=body, headers=headers
    ) as reply:
        return reply.status, await reply.json()


# ---------------------------------------------------------------------- admin API
async def test_admin_api_needs_its_token(fake_sim: SimHandle) -> None:
    for token in ("", "wrong", fake_sim.api_key):
        status, body = await admin(fake_sim, "GET", "/faults", token=token)
        assert status == 401 and "X-Admin-Token" in body["error"]
        status, _ = await admin(fake_sim, "POST", "/faults", {"kind": "ws_drop"}, token=token)
        assert status == 401
    assert fake_sim.venue.faults.list() == []
    status, body = await admin(fake_sim, "GET", "/faults")
    assert (status, body) == (200, {"faults": []})
    status, body = await admin(fake_sim, "GET", "/status")
    assert status == 200 and body["paused"] is False and body["tier"] == "starter"


async def test_admin_injects_lists_and_cancels_faults(fake_sim: SimHandle) -> None:
    spec = {"kind": "rest_error", "error": "EService:Busy", "endpoint": "AddOrder", "count": 2}
    status, body = await admin(fake_sim, "POST", "/faults", spec)
    assert status == 201
    fault = body["fault"]
    assert (fault["kind"], fault["state"], fault["remaining"]) == ("rest_error", "active", 2)
    assert (await fake_sim.client.private("AddOrder", **ADD)).error == ["EService:Busy"]
    status, listed = await admin(fake_sim, "GET", "/faults")
    (entry,) = listed["faults"]
    assert entry["id"] == fault["id"] and entry["fired"] == 1 and entry["remaining"] == 1
    status, _ = await admin(fake_sim, "DELETE", f"/faults/{fault['id']}")
    assert status == 200
    assert (await fake_sim.client.private("AddOrder", **ADD)).error == []
    _, one = await admin(fake_sim, "GET", f"/faults/{fault['id']}")
    assert one["fault"]["state"] == "cancelled"
    for bad in ({"kind": "nope"}, {"kind": "rest_error", "status": 404}, {"count": 1}):
        status, body = await admin(fake_sim, "POST", "/faults", bad)
        assert status == 400 and body["error"]
    assert (await admin(fake_sim, "GET", "/faults/F999"))[0] == 404


async def test_admin_adds_an_account(fake_sim: SimHandle) -> None:
    status, body = await admin(
        fake_sim, "POST", "/accounts", {"account": "bob", "balances": {"USD": "1000"}}
    )
    assert status == 201 and body["account"] == "bob"
    bob = fake_sim.client_for(body["api_key"], body["api_secret"])
    assert (await bob.private("Balance")).result == {"ZUSD": "1000.0000"}
    status, listed = await admin(fake_sim, "GET", "/accounts")
    assert [a["account"] for a in listed["accounts"]] == ["trader", "bob"]
    assert all("api_secret" not in a for a in listed["accounts"])
    assert (await admin(fake_sim, "POST", "/accounts", {"account": "bob"}))[0] == 409


# ---------------------------------------------------------------------- WebSocket faults
async def test_ws_faults_reach_matching_connections_only(fake_sim: SimHandle) -> None:
    public1, public2, private = connect(fake_sim)
    faults = fake_sim.venue.faults
    drop = await faults.inject(kind="ws_drop", conn_kind="public", count=1)
    assert public1.calls == [("drop", None)] and public2.calls == [] and private.calls == []
    assert drop.state == "done" and drop.fired == 1
    await faults.inject(kind="ws_silence", conn_id="p2", hold_s=3.0)
    assert public2.calls == [("silence", 3.0)] and len(public1.calls) == 1
    await faults.inject(FaultSpec(FaultKind.WS_CORRUPT_CHECKSUM, symbol="ETH/USD"))
    assert public1.calls[-1] == ("corrupt", "ETH/USD") == public2.calls[-1]
    assert private.calls[-1] == ("corrupt", "ETH/USD")
    status, _ = await admin(
        fake_sim, "POST", "/faults", {"kind": "ws_drop", "conn_kind": "private"}
    )
    assert status == 201 and private.calls[-1] == ("drop", None)
    _, body = await admin(fake_sim, "GET", "/connections")
    assert {c["conn_id"] for c in body["connections"]} == {"p1", "p2", "x1"}


async def test_scheduled_fault_waits_for_its_start(fake_sim: SimHandle) -> None:
    public1, _, _ = connect(fake_sim)
    clock = fake_sim.clock
    assert isinstance(clock, FakeClock)
    fault = await fake_sim.venue.faults.inject(kind="ws_drop", conn_id="p1", after_s=5.0)
    assert fault.state == "scheduled" and public1.calls == []
    clock.advance(4.0)
    await fake_sim.venue.step()
    assert public1.calls == []
    clock.advance(1.0)
    await fake_sim.venue.step()
    assert public1.calls == [("drop", None)] and fault.state == "done"


async def test_expire_token_revokes_tokens_and_tells_private_connections(
    fake_sim: SimHandle,
) -> None:
    public1, _, private = connect(fake_sim)
    token = (await fake_sim.client.private("GetWebSocketsToken")).result["token"]
    now = fake_sim.clock.monotonic()
    assert fake_sim.venue.tokens.check(token, now) == fake_sim.account
    await fake_sim.venue.faults.inject(kind="expire_token", account=fake_sim.account)
    with pytest.raises(TokenError):
        fake_sim.venue.tokens.check(token, now)
    assert private.calls == [("revoke", None)] and public1.calls == []
    fresh = (await fake_sim.client.private("GetWebSocketsToken")).result["token"]
    assert fake_sim.venue.tokens.check(fresh, now) == fake_sim.account


# ---------------------------------------------------------------------- REST faults
async def test_http_5xx_is_bounded_and_places_nothing(fake_sim: SimHandle) -> None:
    client = fake_sim.client
    await fake_sim.venue.faults.inject(kind="rest_error", status=503, endpoint="AddOrder", count=2)
    for _ in range(2):
        reply = await client.private("AddOrder", **ADD)
        assert reply.status == 503 and reply.data is None
    assert (await client.private("Balance")).status == 200  # another endpoint: untouched
    assert (await client.private("OpenOrders")).result == {"open": {}}
    assert (await client.private("AddOrder", **ADD)).error == []


async def test_kraken_error_fault_is_bounded_by_its_duration(fake_sim: SimHandle) -> None:
    clock = fake_sim.clock
    assert isinstance(clock, FakeClock)
    fault = await fake_sim.venue.faults.inject(
        kind="rest_error", error="EService:Unavailable", duration_s=10.0
    )
    for _ in range(3):
        assert (await fake_sim.client.private("Balance")).error == ["EService:Unavailable"]
        assert (await fake_sim.client.public("Time")).error == ["EService:Unavailable"]
    clock.advance(10.0)
    await fake_sim.venue.step()
    assert fault.state == "done" and fault.fired == 6
    assert (await fake_sim.client.private("Balance")).error == []


async def test_rest_delay(fake_sim: SimHandle) -> None:
    await fake_sim.venue.faults.inject(kind="rest_delay", delay_s=0.2, endpoint="Time")
    started = time.monotonic()
    assert (await fake_sim.client.public("Time")).error == []
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    await fake_sim.client.public("Time")
    assert time.monotonic() - started < 0.2


@pytest.mark.parametrize("mode", ["abort", "hang"])
async def test_lost_response_after_the_order_was_placed(fake_sim: SimHandle, mode: str) -> None:
    await fake_sim.venue.faults.inject(kind="lose_response", mode=mode, hold_s=0.5)
    with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
        await fake_sim.client.private("AddOrder", cl_ord_id="lost-1", http_timeout=0.2, **ADD)
    # The order exists and rests on the book: the client must look it up, not resend.
    found = (await fake_sim.client.private("OpenOrders", cl_ord_id="lost-1")).result["open"]
    (order,) = found.values()
    assert order["status"] == "open" and order["descr"]["price"] == "50000.0"
    inst = fake_sim.venue.instruments["BTC/USD"]
    book = fake_sim.venue.exchange.book("BTC/USD")
    assert book.level_qty("bid", inst.price("50000.0")) >= inst.qty("0.001")
    again = await fake_sim.client.private("AddOrder", cl_ord_id="lost-1", **ADD)
    assert again.error == ["EGeneral:Invalid arguments:cl_ord_id"]  # the fault was used up


async def test_forced_nonce_and_rate_limit_errors(fake_sim: SimHandle) -> None:
    client, faults = fake_sim.client, fake_sim.venue.faults
    await faults.inject(kind="invalid_nonce")
    assert (await client.private("Balance")).error == ["EAPI:Invalid nonce"]
    assert (await client.private("Balance")).error == []
    await faults.inject(kind="rate_limit", count=2)
    assert (await client.private("Balance")).error == ["EAPI:Rate limit exceeded"]
    assert (await client.private("OpenOrders")).error == ["EAPI:Rate limit exceeded"]
    assert (await client.private("Balance")).error == []
    await faults.inject(kind="rate_limit", error="EOrder:Rate limit exceeded", endpoint="AddOrder")
    assert (await client.private("Balance")).error == []
    assert (await client.private("AddOrder", **ADD)).error == ["EOrder:Rate limit exceeded"]
    assert (await client.private("AddOrder", **ADD)).error == []
    # Public calls carry no nonce and no key: these faults leave them alone.
    await faults.inject(kind="invalid_nonce", duration_s=60.0)
    assert (await client.public("Time")).error == []


async def test_pause_engine_stops_order_entry_and_the_market(fake_sim: SimHandle) -> None:
    client, venue, clock = fake_sim.client, fake_sim.venue, fake_sim.clock
    assert isinstance(clock, FakeClock)
    txid = (await client.private("AddOrder", **ADD)).result["txid"][0]
    await venue.faults.inject(kind="pause_engine", duration_s=5.0)
    assert (await client.private("AddOrder", **ADD)).error == ["EService:Unavailable"]
    assert (await client.private("CancelOrder", txid=txid)).error == ["EService:Unavailable"]
    assert (await client.public("SystemStatus")).result["status"] == "maintenance"
    assert list((await client.private("OpenOrders")).result["open"]) == [txid]  # queries work
    before = venue.exchange.depth("BTC/USD", 20)
    clock.advance(2.0)
    await venue.step()
    assert venue.exchange.depth("BTC/USD", 20) == before  # no market step while paused
    clock.advance(3.0)
    await venue.step()
    assert venue.paused is False
    assert (await client.private("AddOrder", **ADD)).error == []
    # Through the admin API, until resumed.
    status, _ = await admin(fake_sim, "POST", "/engine/pause")
    assert status == 200 and venue.paused
    clock.advance(100.0)
    await venue.step()
    assert venue.paused
    status, body = await admin(fake_sim, "POST", "/engine/resume")
    assert (status, body) == (200, {"paused": False}) and not venue.paused


async def test_faults_are_logged(fake_sim: SimHandle) -> None:
    with capture_logs() as logs:
        fault = await fake_sim.venue.faults.inject(kind="rest_error", status=500)
        await fake_sim.client.public("Time")
    events = [(e["event"], e.get("fault")) for e in logs if e.get("fault") == fault.id]
    assert events == [
        ("fault_scheduled", fault.id),
        ("fault_fired", fault.id),
        ("fault_ended", fault.id),
    ]
