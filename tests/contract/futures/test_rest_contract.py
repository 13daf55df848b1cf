"""Fidelity of the Futures simulator's REST v3, checked by a client written from the docs.

Every answer is compared with the shapes of Kraken's pages under
https://docs.kraken.com/api/docs/futures-api/trading/: field names, types and statuses.
"""

from __future__ import annotations

import json
from decimal import Decimal

from .client import Answer
from .conftest import FuturesSim

S = "PF_XBTUSD"


async def best(sim: FuturesSim) -> tuple[Decimal, Decimal]:
    book = await sim.client.public("orderbook", {"symbol": S})
    assert book.ok, book.text
    bids, asks = book.body["orderBook"]["bids"], book.body["orderBook"]["asks"]
    return Decimal(str(bids[0][0])), Decimal(str(asks[0][0]))


def send_status(answer: Answer) -> dict:  # type: ignore[type-arg]
    assert answer.ok, answer.text
    assert set(answer.body) == {"result", "sendStatus", "serverTime"}
    return answer.body["sendStatus"]  # type: ignore[no-any-return]


async def test_public_endpoints(sim: FuturesSim) -> None:
    instruments = await sim.client.public("instruments")
    assert instruments.ok and instruments.body["serverTime"].endswith("Z")
    xbt = next(i for i in instruments.body["instruments"] if i["symbol"] == S)
    for key in (
        "tickSize",
        "contractSize",
        "contractValueTradePrecision",
        "maxPositionSize",
        "marginLevels",
        "tradeable",
        "type",
        "pair",
        "base",
        "quote",
    ):
        assert key in xbt, key
    assert xbt["type"] == "flexible_futures" and xbt["tickSize"] == 0.5
    assert set(xbt["marginLevels"][0]) == {
        "numNonContractUnits",
        "initialMargin",
        "maintenanceMargin",
    }
    tickers = await sim.client.public("tickers", {"symbol": S})
    (ticker,) = tickers.body["tickers"]
    assert ticker["symbol"] == S and ticker["tag"] == "perpetual" and ticker["pair"] == "XBT:USD"
    assert ticker["bid"] < ticker["ask"] and "markPrice" in ticker and "fundingRate" in ticker
    bid, ask = await best(sim)
    assert bid < ask
    unknown = await sim.client.public("orderbook", {"symbol": "PF_NOPEUSD"})
    assert unknown.body == {
        "result": "error",
        "serverTime": unknown.body["serverTime"],
        "error": "invalidArgument",
    }


async def test_signing_and_nonce_rejection(sim: FuturesSim) -> None:
    client = sim.client
    assert (await client.get("openorders", nonce="1000")).ok
    assert (await client.get("openorders", nonce="1000")).error == "nonceDuplicate"
    assert (await client.get("openorders", nonce="999")).error == "nonceBelowThreshold"
    assert (await client.get("openorders", nonce="1001")).ok
    wrong = "A" * 86 + "=="
    assert (await client.get("accounts", nonce="1002", secret=wrong)).error == (
        "authenticationError"
    )
    # The nonce is optional: then it is hashed as the empty string.
    assert (await client.get("accounts", nonce="")).ok


async def test_the_url_encoded_text_is_what_is_signed(sim: FuturesSim) -> None:
    """The 2024 rule: hash the encoded query as sent (batchorder's JSON most of all)."""
    document = json.dumps({"batchOrder": [{"order": "cancel", "order_id": "no such id"}]})
    encoded = await sim.client.post("batchorder", {"json": document})
    assert encoded.ok, encoded.text
    assert encoded.body["batchStatus"][0]["status"] == "notFound"
    decoded = await sim.client.post("batchorder", {"json": document}, sign_decoded=True)
    assert decoded.error == "authenticationError"


async def test_limit_order_shapes(sim: FuturesSim) -> None:
    bid, _ = await best(sim)
    status = send_status(
        await sim.client.post(
            "sendorder",
            {
                "orderType": "lmt",
                "symbol": S,
                "side": "buy",
                "size": "0.01",
                "limitPrice": str(bid - 100),
                "cliOrdId": "doc-1",
            },
        )
    )
    assert status["status"] == "placed" and status["cliOrdId"] == "doc-1"
    (event,) = status["orderEvents"]
    assert event["type"] == "PLACE" and event["reducedQuantity"] is None
    order = event["order"]
    assert set(order) == {
        "orderId",
        "cliOrdId",
        "type",
        "symbol",
        "side",
        "quantity",
        "filled",
        "limitPrice",
        "reduceOnly",
        "timestamp",
        "lastUpdateTimestamp",
    }
    assert order["orderId"] == status["order_id"] and order["type"] == "lmt"
    assert order["symbol"] == "pf_xbtusd" and order["quantity"] == 0.01
    opened = await sim.client.get("openorders")
    (resting,) = opened.body["openOrders"]
    assert resting["order_id"] == status["order_id"] and resting["cliOrdId"] == "doc-1"
    assert resting["orderType"] == "lmt" and resting["status"] == "untouched"
    assert resting["unfilledSize"] == 0.01 and resting["filledSize"] == 0


async def test_every_order_type(sim: FuturesSim) -> None:
    bid, ask = await best(sim)
    post = sim.client.post

    async def send(**params: object) -> dict:  # type: ignore[type-arg]
        base = {"symbol": S, "side": "buy", "size": "0.01"}
        base.update({k: str(v) if not isinstance(v, str) else v for k, v in params.items()})
        return send_status(await post("sendorder", base))

    assert (await send(orderType="post", limitPrice=ask, cliOrdId="p1"))["status"] == (
        "postWouldExecute"
    )
    rejected = await send(orderType="post", limitPrice=ask, cliOrdId="p2")
    assert rejected["orderEvents"][0]["type"] == "REJECT"
    assert rejected["orderEvents"][0]["reason"] == "POST_WOULD_EXECUTE"
    assert (await send(orderType="post", limitPrice=bid - 50, cliOrdId="p3"))["status"] == "placed"
    ioc = await send(orderType="ioc", limitPrice=ask, cliOrdId="i1")
    assert ioc["status"] == "placed" and ioc["orderEvents"][0]["type"] == "EXECUTION"
    execution = ioc["orderEvents"][0]
    assert {
        "executionId",
        "price",
        "amount",
        "orderPriorExecution",
        "orderPriorEdit",
        "takerReducedQuantity",
    } <= set(execution)
    assert (await send(orderType="ioc", limitPrice=bid - 500, cliOrdId="i2"))["status"] == (
        "iocWouldNotExecute"
    )
    market = await send(orderType="mkt", cliOrdId="m1")
    assert market["status"] == "placed"
    assert market["orderEvents"][0]["orderPriorExecution"]["type"] == "ioc"
    stop = await send(orderType="stp", stopPrice=ask + 1000, limitPrice=ask + 1010, cliOrdId="s1")
    trigger = stop["orderEvents"][0]["orderTrigger"]
    assert stop["status"] == "placed" and trigger["triggerSide"] == "trigger_above"
    assert trigger["triggerSignal"] == "last_price" and trigger["clientId"] == "s1"
    tp = await send(
        orderType="take_profit",
        side="sell",
        stopPrice=ask + 2000,
        triggerSignal="mark",
        reduceOnly="true",
        cliOrdId="t1",
    )
    assert tp["status"] == "placed"
    assert tp["orderEvents"][0]["orderTrigger"]["triggerSignal"] == "mark_price"
    reduce = await send(
        orderType="lmt",
        side="sell",
        limitPrice=ask + 500,
        size="1",
        reduceOnly="true",
        cliOrdId="r1",
    )
    assert reduce["status"] == "placed"
    assert reduce["orderEvents"][0]["reducedQuantity"] == 0.98  # position 0.02
    kinds = {
        o["cliOrdId"]: o["orderType"]
        for o in (await sim.client.get("openorders")).body["openOrders"]
    }
    assert kinds == {"p3": "lmt", "s1": "stop", "t1": "take_profit", "r1": "lmt"}
    positions = (await sim.client.get("openpositions")).body["openPositions"]
    assert positions[0]["side"] == "long" and positions[0]["size"] == 0.02
    assert set(positions[0]) == {
        "side",
        "symbol",
        "price",
        "fillTime",
        "size",
        "unrealizedFunding",
        "pnlCurrency",
    }
    again = await send(orderType="lmt", limitPrice=bid - 100, cliOrdId="p3")
    assert again["status"] == "clientOrderIdAlreadyExist"


async def test_edit_cancel_and_cancel_all(sim: FuturesSim) -> None:
    bid, _ = await best(sim)
    placed = send_status(
        await sim.client.post(
            "sendorder",
            {
                "orderType": "lmt",
                "symbol": S,
                "side": "buy",
                "size": "0.02",
                "limitPrice": str(bid - 100),
                "cliOrdId": "e1",
            },
        )
    )
    edited = await sim.client.post(
        "editorder",
        {"orderId": placed["order_id"], "size": "0.01", "limitPrice": str(bid - Decimal("99.5"))},
    )
    assert edited.ok, edited.text
    status = edited.body["editStatus"]
    assert status["status"] == "edited" and status["orderId"] == placed["order_id"]
    (event,) = status["orderEvents"]
    assert event["type"] == "EDIT" and event["old"]["quantity"] == 0.02
    assert event["new"]["quantity"] == 0.01 and event["new"]["limitPrice"] == float(
        bid - Decimal("99.5")
    )
    missing = await sim.client.post("editorder", {"orderId": "nope", "size": "1"})
    assert missing.body["editStatus"]["status"] == "orderForEditNotFound"
    cancelled = await sim.client.post("cancelorder", {"cliOrdId": "e1"})
    assert cancelled.body["cancelStatus"]["status"] == "cancelled"
    assert cancelled.body["cancelStatus"]["orderEvents"][0]["type"] == "CANCEL"
    gone = await sim.client.post("cancelorder", {"order_id": placed["order_id"]})
    assert gone.body["cancelStatus"]["status"] == "notFound"
    for n in range(2):
        await sim.client.post(
            "sendorder",
            {
                "orderType": "lmt",
                "symbol": S,
                "side": "buy",
                "size": "0.01",
                "limitPrice": str(bid - 200 - n),
            },
        )
    everything = await sim.client.post("cancelallorders", {"symbol": S})
    status = everything.body["cancelStatus"]
    assert status["status"] == "cancelled" and status["cancelOnly"] == S
    assert len(status["cancelledOrders"]) == 2
    assert (await sim.client.post("cancelallorders")).body["cancelStatus"]["status"] == (
        "noOrdersToCancel"
    )


async def test_batch_orders(sim: FuturesSim) -> None:
    bid, ask = await best(sim)
    keep = send_status(
        await sim.client.post(
            "sendorder",
            {
                "orderType": "lmt",
                "symbol": S,
                "side": "buy",
                "size": "0.01",
                "limitPrice": str(bid - 300),
                "cliOrdId": "b0",
            },
        )
    )
    batch = {
        "batchOrder": [
            {
                "order": "send",
                "order_tag": "1",
                "orderType": "lmt",
                "symbol": S,
                "side": "buy",
                "size": 0.01,
                "limitPrice": float(bid - 100),
                "cliOrdId": "b1",
            },
            {
                "order": "send",
                "order_tag": "2",
                "orderType": "post",
                "symbol": S,
                "side": "buy",
                "size": 0.01,
                "limitPrice": float(ask),
            },
            {"order": "edit", "order_id": keep["order_id"], "size": 0.02},
            {"order": "cancel", "cliOrdId": "b0"},
            {"order": "cancel", "order_id": "not-an-order"},
        ]
    }
    answer = await sim.client.post("batchorder", {"json": json.dumps(batch)})
    assert answer.ok, answer.text
    statuses = answer.body["batchStatus"]
    assert [s["status"] for s in statuses] == [
        "placed",
        "postWouldExecute",
        "edited",
        "cancelled",
        "notFound",
    ]
    assert statuses[0]["order_tag"] == "1" and statuses[0]["cliOrdId"] == "b1"
    assert "dateTimeReceived" in statuses[0] and statuses[1]["order_tag"] == "2"
    open_ids = [o["cliOrdId"] for o in (await sim.client.get("openorders")).body["openOrders"]]
    assert open_ids == ["b1"]
    broken = await sim.client.post("batchorder", {"json": "{not json"})
    assert broken.error == "Json Parse Error"


async def test_dead_man_switch_fires(sim: FuturesSim) -> None:
    bid, _ = await best(sim)
    await sim.client.post(
        "sendorder",
        {
            "orderType": "lmt",
            "symbol": S,
            "side": "buy",
            "size": "0.01",
            "limitPrice": str(bid - 100),
        },
    )
    armed = await sim.client.post("cancelallordersafter", {"timeout": "60"})
    status = armed.body["status"]
    assert set(status) == {"currentTime", "triggerTime"} and status["triggerTime"] != "0"
    sock = await sim.socket()
    await sock.authenticate(sim.api_key)
    await sock.subscribe_private("open_orders", sim.api_key, sim.api_secret)
    await sock.recv_until(lambda f: f.get("feed") == "open_orders_snapshot")
    await sim.advance(30)
    assert len((await sim.client.get("openorders")).body["openOrders"]) == 1  # not yet
    await sim.advance(31)
    assert (await sim.client.get("openorders")).body["openOrders"] == []
    frame = await sock.recv_until(lambda f: f.get("feed") == "open_orders")
    assert frame["is_cancel"] is True and frame["reason"] == "dead_man_switch"
    await sock.ws.close()
    off = await sim.client.post("cancelallordersafter", {"timeout": "0"})
    assert off.body["status"]["triggerTime"] == "0"


async def test_lost_sendorder_reply_resolved_by_cli_ord_id(sim: FuturesSim) -> None:
    bid, _ = await best(sim)
    await sim.admin("POST", "/faults", {"kind": "lose_response", "endpoint": "sendorder"})
    order = {
        "orderType": "lmt",
        "symbol": S,
        "side": "buy",
        "size": "0.01",
        "limitPrice": str(bid - 100),
        "cliOrdId": "lost-1",
    }
    try:
        answer = await sim.client.post("sendorder", order)
    except Exception as exc:  # the connection dropped: no answer at all
        assert "disconnect" in repr(exc).lower() or "connection" in repr(exc).lower()
    else:
        raise AssertionError(f"an answer arrived: {answer.text}")
    # The order's fate, by its cliOrdId: it is open.
    listed = (await sim.client.get("openorders")).body["openOrders"]
    assert [o["cliOrdId"] for o in listed] == ["lost-1"]
    # Sending it again cannot make a duplicate.
    again = send_status(await sim.client.post("sendorder", order))
    assert again["status"] == "clientOrderIdAlreadyExist"
    assert len((await sim.client.get("openorders")).body["openOrders"]) == 1


async def test_rate_limit_and_errors(sim: FuturesSim) -> None:
    bid, _ = await best(sim)
    order = {"orderType": "lmt", "symbol": S, "side": "buy", "size": "0.0001"}
    # 10 each: the 51st in the same instant is over the 500 budget.
    answers = [
        await sim.client.post("sendorder", {**order, "limitPrice": str(bid - 1000 - n)})
        for n in range(52)
    ]
    assert all(a.ok for a in answers[:50])
    assert answers[50].error == "apiLimitExceeded"
    await sim.advance(10)
    missing = await sim.client.post("sendorder", {"orderType": "lmt", "symbol": S})
    assert missing.error == "requiredArgumentMissing"
    off_grid = send_status(
        await sim.client.post(
            "sendorder",
            {
                "orderType": "lmt",
                "symbol": S,
                "side": "buy",
                "size": "0.00001",
                "limitPrice": str(bid),
            },
        )
    )
    assert off_grid["status"] == "invalidSize"
