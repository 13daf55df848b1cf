"""The simulator's private WebSocket v2 (``/v2-auth``) against an independent client.

Tokens come from the REST ``GetWebSocketsToken`` (signed by the tests' own client); frames
are decoded by ``bot.kraken.protocol.Parser``. The tests run on ``fake_sim`` (FakeClock,
no pump): token ages are set by advancing the clock, and the market moves only when a test
steps it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bot.kraken.protocol import (
    ExecutionReport,
    ExecutionsFrame,
    MethodResponse,
    Status,
    SubscribeAck,
    UnsubscribeAck,
)
from bot.sim.tokens import TOKEN_LIFETIME_S
from tests.loopback.conftest import SimHandle
from tests.loopback.test_sim_ws_public import WsClient, fake_clock, session_of, step

INVALID = "EAPI:Invalid token"


async def token_of(sim: SimHandle) -> str:
    token = (await sim.client.private("GetWebSocketsToken")).result["token"]
    assert isinstance(token, str)
    return token


async def open_private(sim: SimHandle) -> WsClient:
    client = await WsClient.open(sim.ws_private_url, sim.venue)
    assert isinstance(await client.event(), Status)
    return client


async def subscribe(client: WsClient, token: str, **params: Any) -> ExecutionsFrame:
    """Subscribe to executions; returns the snapshot."""
    await client.send("subscribe", 1, channel="executions", token=token, **params)
    ack, _ = await client.until(SubscribeAck)
    assert ack.success, ack.error
    assert ack.channel == "executions" and ack.maxratecount == 60  # Starter tier
    snapshot, _ = await client.until(ExecutionsFrame)
    assert isinstance(snapshot, ExecutionsFrame) and snapshot.snapshot and snapshot.sequence == 1
    return snapshot


async def frames(client: WsClient) -> list[ExecutionsFrame]:
    events = [e for raw in await client.barrier() for e in client.parser.parse(raw)]
    return [e for e in events if isinstance(e, ExecutionsFrame)]


def reports(found: list[ExecutionsFrame]) -> list[ExecutionReport]:
    return [r for f in found for r in f.reports]


async def add_rest(sim: SimHandle, **params: Any) -> str:
    reply = await sim.client.private("AddOrder", pair="XBTUSD", **params)
    (txid,) = reply.result["txid"]
    return str(txid)


def best(sim: SimHandle) -> tuple[Decimal, Decimal]:
    bids, asks = sim.venue.exchange.depth("BTC/USD", 1)
    inst = sim.venue.instruments["BTC/USD"]
    return inst.price_decimal(bids[0][0]), inst.price_decimal(asks[0][0])


# ----------------------------------------------------------------------- tokens
async def test_a_token_is_required_and_checked(fake_sim: SimHandle) -> None:
    client = await open_private(fake_sim)
    await client.send("subscribe", 1, channel="executions")
    await client.send("subscribe", 2, channel="executions", token="not-a-token")
    await client.send("cancel_all_orders_after", 3, timeout=60, token="not-a-token")
    missing, _ = await client.until(SubscribeAck)
    unknown, _ = await client.until(SubscribeAck)
    rejected, _ = await client.until(MethodResponse)
    assert not missing.success and missing.error == "EGeneral:Invalid arguments"
    assert not unknown.success and unknown.error == INVALID and unknown.req_id == 2
    assert not rejected.success and rejected.error == INVALID and rejected.req_id == 3
    assert rejected.exception() is not None
    assert await client.barrier() == []  # the socket stays open and answers
    await client.close()


async def test_a_stale_token_is_refused_a_live_one_stays_valid(fake_sim: SimHandle) -> None:
    stale = await token_of(fake_sim)
    used = await token_of(fake_sim)
    client = await open_private(fake_sim)
    await subscribe(client, used)
    fake_clock(fake_sim).advance(TOKEN_LIFETIME_S + 1)
    other = await open_private(fake_sim)
    await other.send("subscribe", 1, channel="executions", token=stale)
    ack, _ = await other.until(SubscribeAck)
    assert not ack.success and ack.error == INVALID
    # The used token lives on with its subscription, past its 15 minutes.
    await client.send("cancel_all_orders_after", 5, timeout=60, token=used)
    reply, _ = await client.until(MethodResponse)
    assert reply.success and reply.req_id == 5
    await client.close()
    await other.close()


# ----------------------------------------------------------------------- executions
async def test_ratecounter_streams_the_pairs_trading_counter_on_each_report(
    fake_sim: SimHandle,
) -> None:
    # https://docs.kraken.com/api/docs/websocket-v2/executions: with ``ratecounter: true``
    # "the rate-limit counter is included in the stream"; each report carries ``ratecount``
    # (the v1 openOrders name), which is what krakenbot's parser reads.
    bid, _ = best(fake_sim)
    resting = await add_rest(
        fake_sim, type="buy", ordertype="limit", price=str(bid - 100), volume="0.01"
    )  # +1 on BTC/USD
    counting = await open_private(fake_sim)
    quiet = await open_private(fake_sim)
    snapshot = await subscribe(counting, await token_of(fake_sim), ratecounter=True)
    assert [r.ratecount for r in snapshot.reports] == [Decimal(1)]
    await subscribe(quiet, await token_of(fake_sim))
    other = await add_rest(
        fake_sim, type="buy", ordertype="limit", price=str(bid - 200), volume="0.01"
    )  # +1: 2
    assert (await fake_sim.client.private("CancelOrder", txid=other)).error == []  # +8: 10
    counted = reports(await frames(counting))
    assert [(r.exec_type, r.ratecount) for r in counted] == [
        ("pending_new", Decimal(2)),
        ("new", Decimal(2)),
        ("canceled", Decimal(10)),
    ]
    assert all(r.ratecount is None for r in reports(await frames(quiet)))
    fake_clock(fake_sim).advance(2.5)  # Starter decays 1 a second: 7.5
    cancel = await fake_sim.client.private("CancelOrder", txid=resting)  # 2.5 s old: +8
    assert cancel.error == []
    (cancelled,) = reports(await frames(counting))
    assert cancelled.ratecount == Decimal("15.5")
    await counting.close()
    await quiet.close()


async def test_snapshot_then_every_transition_with_increasing_sequence(
    fake_sim: SimHandle,
) -> None:
    bid, ask = best(fake_sim)
    resting = await add_rest(
        fake_sim, type="buy", ordertype="limit", price=str(bid - 100), volume="0.01",
        cl_ord_id="rest-1",
    )  # fmt: skip
    client = await open_private(fake_sim)
    snapshot = await subscribe(client, await token_of(fake_sim))
    (order,) = snapshot.reports
    assert order.order_id == resting and order.cl_ord_id == "rest-1"
    assert order.order_status == "new" and order.symbol == "BTC/USD" and order.side == "buy"
    assert order.order_qty == Decimal("0.01") and order.limit_price == bid - 100
    assert order.time_in_force == "GTC" and order.cum_qty == 0
    taker = await add_rest(
        fake_sim, type="buy", ordertype="limit", price=str(ask + 50), volume="0.002",
        cl_ord_id="take-1",
    )  # fmt: skip
    found = await frames(client)
    assert [f.sequence for f in found] == list(range(2, 2 + len(found)))
    assert all(len(f.reports) == 1 for f in found)  # one report per message
    assert not any(f.snapshot for f in found)
    got = reports(found)
    kinds = [r.exec_type for r in got]
    assert kinds[:2] == ["pending_new", "new"] and kinds[-1] == "filled"
    assert set(kinds[2:-1]) == {"trade"}
    assert all(r.order_id == taker and r.cl_ord_id == "take-1" for r in got)
    pending, new, *trades, filled = got
    assert pending.symbol == "BTC/USD" and pending.order_qty == Decimal("0.002")
    assert pending.limit_price == ask + 50 and pending.order_status == "pending_new"
    assert new.order_status == "new" and new.symbol is None  # sparse, as Kraken's
    assert sum(t.last_qty or 0 for t in trades) == Decimal("0.002")
    for t in trades:
        assert t.exec_id and t.trade_id and t.liquidity_ind == "t"
        assert t.last_price is not None and t.last_price <= ask + 50
        assert t.fees and t.fees[0].asset == "USD" and t.fees[0].qty > 0
        assert t.cost == t.last_price * (t.last_qty or 0)
    assert trades[-1].order_status == "filled" and trades[-1].cum_qty == Decimal("0.002")
    assert filled.order_status == "filled" and filled.cum_qty == Decimal("0.002")
    assert filled.avg_price is not None and filled.cum_cost == sum(t.cost or 0 for t in trades)
    await client.close()


async def test_snap_trades_and_order_status_filter(fake_sim: SimHandle) -> None:
    taken = await add_rest(fake_sim, type="buy", ordertype="market", volume="0.001")
    client = await open_private(fake_sim)
    snapshot = await subscribe(
        client, await token_of(fake_sim), snap_orders=False, snap_trades=True, order_status=False
    )
    assert snapshot.reports and {r.exec_type for r in snapshot.reports} == {"trade"}
    assert {r.order_id for r in snapshot.reports} == {taken}
    bid, _ = best(fake_sim)
    await add_rest(fake_sim, type="buy", ordertype="limit", price=str(bid - 10), volume="0.001")
    found = await frames(client)
    assert [r.exec_type for r in reports(found)] == ["new"]  # no pending_new without order_status
    await client.close()


async def test_order_entry_over_the_socket(fake_sim: SimHandle) -> None:
    client = await open_private(fake_sim)
    token = await token_of(fake_sim)
    await subscribe(client, token)
    bid, _ = best(fake_sim)
    await client.send(
        "add_order", 2, order_type="limit", side="buy", order_qty=0.01, symbol="BTC/USD",
        limit_price=float(bid - 20), cl_ord_id="ws-1", token=token,
    )  # fmt: skip
    answer, before = await client.until(MethodResponse)
    assert not before  # the answer comes before the reports it caused
    assert answer.success and answer.method == "add_order" and answer.req_id == 2
    order_id = answer.result.order_id
    assert fake_sim.venue.exchange.order(fake_sim.account, order_id) is not None
    await client.send("amend_order", 3, order_id=order_id, order_qty=0.02, token=token)
    await client.send("cancel_order", 4, cl_ord_id=["ws-1"], token=token)
    await client.send("cancel_order", 5, order_id=["OUNKNO-WNORD-ERID00"], token=token)
    await client.send(
        "add_order", 6, order_type="limit", side="buy", order_qty=0.01, symbol="BTC/USD",
        limit_price=float(bid - 20), token=token, post_only=True, order_userref=9,
    )  # fmt: skip
    await client.send("cancel_all", 7, token=token)
    events = [e for raw in await client.barrier() for e in client.parser.parse(raw)]
    answers = {e.req_id: e for e in events if isinstance(e, MethodResponse)}
    assert answers[3].success and answers[4].success and answers[6].success
    assert not answers[5].success and answers[5].error == "EOrder:Unknown order"
    assert answers[7].success and answers[7].raw_result == {"count": 1}
    got = reports([e for e in events if isinstance(e, ExecutionsFrame)])
    kinds = [(r.exec_type, r.order_status) for r in got]
    assert kinds == [
        ("pending_new", "pending_new"),
        ("new", "new"),
        ("amended", "new"),
        ("canceled", "canceled"),
        ("pending_new", "pending_new"),
        ("new", "new"),
        ("canceled", "canceled"),
    ]
    assert got[0].order_qty == Decimal("0.01") and got[2].order_qty == Decimal("0.02")
    assert got[2].amended is True and got[3].reason == "User requested"
    assert got[4].post_only is True and got[4].order_userref == 9
    await client.close()


async def test_cancel_all_orders_after(fake_sim: SimHandle) -> None:
    client = await open_private(fake_sim)
    token = await token_of(fake_sim)
    await client.send("cancel_all_orders_after", 1, timeout=60, token=token)
    armed, _ = await client.until(MethodResponse)
    assert armed.success and armed.method == "cancel_all_orders_after" and armed.req_id == 1
    current = armed.result.current_time
    trigger = armed.result.trigger_time
    assert current.endswith("Z") and trigger > current
    assert fake_sim.venue.deadman_trigger(fake_sim.account) is not None
    await client.send("cancel_all_orders_after", 2, timeout=0, token=token)
    disarmed, _ = await client.until(MethodResponse)
    assert disarmed.success and disarmed.result.trigger_time == "0"
    assert fake_sim.venue.deadman_trigger(fake_sim.account) is None
    await client.send("cancel_all_orders_after", 3, timeout=86400, token=token)
    refused, _ = await client.until(MethodResponse)
    assert not refused.success and refused.error
    await client.close()


# ----------------------------------------------------------------------- faults
@pytest.mark.parametrize("via", ["connection", "admin"])
async def test_revoked_token_stops_the_feed_until_a_fresh_subscribe(
    fake_sim: SimHandle, via: str
) -> None:
    client = await open_private(fake_sim)
    token = await token_of(fake_sim)
    await subscribe(client, token)
    if via == "connection":
        session_of(fake_sim.venue, "private").revoke_token()
    else:
        await fake_sim.venue.faults.inject(kind="expire_token", account=fake_sim.account)
    error, _ = await client.until(SubscribeAck)
    assert not error.success and error.error == INVALID and error.channel == "executions"
    bid, _ = best(fake_sim)
    txid = await add_rest(
        fake_sim, type="buy", ordertype="limit", price=str(bid - 30), volume="0.01"
    )
    assert await frames(client) == []  # the feed stopped
    await client.send("subscribe", 2, channel="executions", token=token)
    again, _ = await client.until(SubscribeAck)
    assert not again.success and again.error == INVALID
    snapshot = await subscribe(client, await token_of(fake_sim))
    assert [r.order_id for r in snapshot.reports] == [txid]
    await fake_sim.client.private("CancelOrder", txid=txid)
    found = await frames(client)
    assert [(f.sequence, r.exec_type) for f in found for r in f.reports] == [(2, "canceled")]
    await client.close()


async def test_unsubscribe_then_drop(fake_sim: SimHandle) -> None:
    client = await open_private(fake_sim)
    token = await token_of(fake_sim)
    await subscribe(client, token)
    await client.send("unsubscribe", 2, channel="executions", token=token)
    ack, _ = await client.until(UnsubscribeAck)
    assert ack.success and ack.req_id == 2
    await step(fake_sim, 2)
    bid, _ = best(fake_sim)
    await add_rest(fake_sim, type="buy", ordertype="limit", price=str(bid - 30), volume="0.01")
    assert await frames(client) == []
    await session_of(fake_sim.venue, "private").drop()
    with pytest.raises(Exception, match="no close frame"):
        await client.raw()


async def test_private_websocket_has_its_own_port_and_keeps_the_v2_auth_alias(
    fake_sim: SimHandle,
) -> None:
    server = fake_sim.server
    assert server.private_port not in (None, server.port)
    assert fake_sim.ws_private_url == f"ws://127.0.0.1:{server.private_port}/v2"
    assert server.ws_private_alias_url == f"ws://127.0.0.1:{server.port}/v2-auth"
    token = await token_of(fake_sim)
    for url in (fake_sim.ws_private_url, server.ws_private_alias_url):
        async with fake_sim.session.ws_connect(url) as ws:
            status = await ws.receive_json(timeout=5)
            assert status["channel"] == "status"
            await ws.send_json({"method": "cancel_all", "params": {"token": token}, "req_id": 3})
            answer = await ws.receive_json(timeout=5)
            assert answer["method"] == "cancel_all" and answer["success"] is True, answer
    # The public endpoint on the main port is not the private one.
    async with fake_sim.session.ws_connect(fake_sim.ws_public_url) as ws:
        await ws.receive_json(timeout=5)
        await ws.send_json({"method": "cancel_all", "params": {"token": token}, "req_id": 4})
        answer = await ws.receive_json(timeout=5)
        assert answer["success"] is False and answer["error"] == "Method not found"
