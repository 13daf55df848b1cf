"""Fidelity of the Futures simulator's WebSocket v1, checked frame by frame.

Frames are compared with the pages under
https://docs.kraken.com/api/docs/futures-api/websocket/ (field names and types); the
book test also runs the frames through ``bot.futures.book`` to show that a sequence gap is
seen and healed by a fresh snapshot.
"""

from __future__ import annotations

import json
from typing import Any

from bot.futures.book import FuturesBook, Resync
from bot.futures.instruments import FuturesInstrumentTable, instruments_from_response
from bot.futures.ws_protocol import BookDelta, BookSnapshot, parse_frame
from bot.kraken.codec import loads_exact

from .client import DocSocket
from .conftest import FuturesSim

S = "PF_XBTUSD"


async def order(sim: FuturesSim, **params: Any) -> dict[str, Any]:
    base = {"orderType": "lmt", "symbol": S, "side": "buy", "size": "0.01"}
    base.update({k: str(v) for k, v in params.items()})
    answer = await sim.client.post("sendorder", base)
    assert answer.ok, answer.text
    return answer.body["sendStatus"]  # type: ignore[no-any-return]


async def best(sim: FuturesSim) -> tuple[float, float]:
    book = (await sim.client.public("orderbook", {"symbol": S})).body["orderBook"]
    return book["bids"][0][0], book["asks"][0][0]


async def test_errors_and_acks(sim: FuturesSim) -> None:
    sock = await sim.socket()
    await sock.ws.send_str("not json")
    assert await sock.recv() == {"event": "error", "message": "Json Error"}
    await sock.send({"event": "subscribe", "feed": "nope", "product_ids": [S]})
    assert await sock.recv() == {"event": "error", "message": "Invalid feed"}
    await sock.send({"event": "subscribe", "feed": "book", "product_ids": ["PF_NOPEUSD"]})
    assert await sock.recv() == {"event": "error", "message": "Invalid product id"}
    await sock.send({"event": "subscribe", "feed": "heartbeat"})
    assert await sock.recv() == {"event": "subscribed", "feed": "heartbeat"}
    await sim.advance(5)
    beat = await sock.recv()
    assert beat["feed"] == "heartbeat" and isinstance(beat["time"], int)
    await sock.send({"event": "unsubscribe", "feed": "heartbeat"})
    assert await sock.recv() == {"event": "unsubscribed", "feed": "heartbeat"}
    await sock.ws.close()


async def test_book_trade_and_ticker_feeds(sim: FuturesSim) -> None:
    sock = await sim.socket()
    for feed in ("book", "trade", "ticker"):
        await sock.send({"event": "subscribe", "feed": feed, "product_ids": [S]})
        ack = await sock.recv()
        assert ack == {"event": "subscribed", "feed": feed, "product_ids": [S]}
        first = await sock.recv()
        if feed == "book":
            assert first["feed"] == "book_snapshot" and first["tickSize"] is None
            assert set(first) == {
                "feed",
                "product_id",
                "timestamp",
                "seq",
                "tickSize",
                "bids",
                "asks",
            }
            assert set(first["bids"][0]) == {"price", "qty"}
            seq = first["seq"]
        elif feed == "trade":
            assert first["feed"] == "trade_snapshot" and first["product_id"] == S
        else:
            assert first["feed"] == "ticker" and first["product_id"] == S
            for key in (
                "bid",
                "ask",
                "bid_size",
                "ask_size",
                "markPrice",
                "index",
                "tag",
                "funding_rate",
                "relative_funding_rate",
                "next_funding_rate_time",
            ):
                assert key in first, key
    _, ask = await best(sim)
    await order(sim, orderType="ioc", limitPrice=ask, cliOrdId="t1")
    trade = await sock.recv_until(lambda f: f.get("feed") == "trade")
    assert set(trade) == {
        "feed",
        "product_id",
        "uid",
        "side",
        "type",
        "seq",
        "time",
        "qty",
        "price",
    }
    assert trade["side"] == "buy" and trade["type"] == "fill" and trade["price"] == ask
    await sock.ws.close()
    sock = await sim.socket()
    await sock.send({"event": "subscribe", "feed": "book", "product_ids": [S]})
    await sock.recv()
    snapshot = await sock.recv()
    assert snapshot["seq"] > seq  # the venue's numbers, shared by every connection
    await sim.advance(1)
    delta = await sock.recv_until(lambda f: f.get("feed") == "book")
    assert delta["seq"] == snapshot["seq"] + 1 and delta["side"] in ("buy", "sell")
    await sock.ws.close()


async def test_a_sequence_gap_makes_the_book_keeper_resync(sim: FuturesSim) -> None:
    raw = await sim.client.public("instruments")
    table = FuturesInstrumentTable(instruments_from_response(loads_exact(raw.text)))
    keeper = FuturesBook(table[S])
    sock = await sim.socket()
    await sock.send({"event": "subscribe", "feed": "book", "product_ids": [S]})
    await sock.recv()

    async def next_book() -> BookSnapshot | BookDelta:
        frame = await sock.recv_until(lambda f: f.get("feed") in ("book", "book_snapshot"))
        event = parse_frame(json.dumps(frame))
        assert isinstance(event, BookSnapshot | BookDelta)
        return event

    assert keeper.apply(await next_book()) is None and keeper.synced
    await sim.advance(1)
    assert keeper.apply(await next_book()) is None  # in sequence
    await sim.admin("POST", "/faults", {"kind": "book_gap", "symbol": S})
    bid, _ = await best(sim)
    await order(sim, limitPrice=bid - 50, cliOrdId="g1")  # one level changes: skipped
    await order(sim, limitPrice=bid - 55, cliOrdId="g2")  # the next one arrives
    results = []
    while not results or results[-1] is None:
        results.append(keeper.apply(await next_book()))
    assert isinstance(results[-1], Resync) and results[-1].reason == "gap"
    assert not keeper.synced
    # The remedy: subscribe again, take the snapshot.
    await sock.send({"event": "unsubscribe", "feed": "book", "product_ids": [S]})
    await sock.send({"event": "subscribe", "feed": "book", "product_ids": [S]})
    snapshot = await sock.recv_until(lambda f: f.get("feed") == "book_snapshot")
    assert keeper.apply(parse_frame(json.dumps(snapshot))) is None and keeper.synced
    rest = (await sim.client.public("orderbook", {"symbol": S})).body["orderBook"]
    assert keeper.bids(3) == [
        (keeper.inst.price(str(p)), keeper.inst.qty(str(q))) for p, q in rest["bids"][:3]
    ]
    await sock.ws.close()


async def test_private_feeds_need_the_signed_challenge(sim: FuturesSim) -> None:
    sock = await sim.socket()
    await sock.authenticate(sim.api_key)
    bad = {
        "event": "subscribe",
        "feed": "open_orders",
        "api_key": sim.api_key,
        "original_challenge": sock.challenge,
        "signed_challenge": "x" * 88,
    }
    await sock.send(bad)
    assert await sock.recv() == {
        "event": "alert",
        "message": "Failed to subscribe to authenticated feed",
    }
    await sock.send({**bad, "original_challenge": "a-challenge-never-issued"})
    assert (await sock.recv())["event"] == "alert"
    await sock.ws.close()


async def subscribed(sim: FuturesSim, feeds: list[str]) -> tuple[DocSocket, dict[str, Any]]:
    sock = await sim.socket()
    await sock.authenticate(sim.api_key)
    first: dict[str, Any] = {}
    for feed in feeds:
        await sock.subscribe_private(feed, sim.api_key, sim.api_secret)
        ack = await sock.recv()
        assert ack["event"] == "subscribed" and ack["feed"] == feed
        assert ack["original_challenge"] == sock.challenge and "signed_challenge" in ack
        first[feed] = await sock.recv()
    return sock, first


async def test_private_feeds(sim: FuturesSim) -> None:
    bid, ask = await best(sim)
    await order(sim, limitPrice=bid - 100, cliOrdId="w0")
    sock, first = await subscribed(sim, ["open_orders", "fills", "open_positions", "balances"])
    snap = first["open_orders"]
    assert snap["feed"] == "open_orders_snapshot" and len(snap["account"]) == 36
    (resting,) = snap["orders"]
    assert set(resting) >= {
        "instrument",
        "time",
        "last_update_time",
        "qty",
        "filled",
        "limit_price",
        "stop_price",
        "type",
        "order_id",
        "direction",
        "reduce_only",
        "cli_ord_id",
    }
    assert resting["type"] == "limit" and resting["direction"] == 0
    assert first["fills"] == {"feed": "fills_snapshot", "account": snap["account"], "fills": []}
    assert first["open_positions"]["feed"] == "open_positions"
    assert first["open_positions"]["positions"] == []
    balances = first["balances"]
    assert balances["feed"] == "balances_snapshot"
    assert balances["flex_futures"]["currencies"]["USD"]["quantity"] == 100000
    await order(sim, orderType="ioc", limitPrice=ask, cliOrdId="w1")
    fills = await sock.recv_until(lambda f: f.get("feed") == "fills")
    (fill,) = fills["fills"]
    assert fill["buy"] is True and fill["fill_type"] == "taker" and fill["cli_ord_id"] == "w1"
    assert fill["fee_currency"] == "USD" and fill["fee_paid"] > 0
    positions = await sock.recv_until(lambda f: f.get("feed") == "open_positions")
    (pos,) = positions["positions"]
    assert pos["instrument"] == S and pos["balance"] == 0.01 and pos["entry_price"] == ask
    for key in (
        "pnl",
        "mark_price",
        "index_price",
        "liquidation_threshold",
        "initial_margin",
        "maintenance_margin",
        "unrealized_funding",
    ):
        assert key in pos, key
    delta = await sock.recv_until(lambda f: f.get("feed") == "balances")
    assert delta["flex_futures"]["initial_margin"] > 0
    await sim.client.post("cancelorder", {"cliOrdId": "w0"})
    gone = await sock.recv_until(lambda f: f.get("feed") == "open_orders")
    assert gone == {
        "feed": "open_orders",
        "order_id": resting["order_id"],
        "is_cancel": True,
        "reason": "cancelled_by_user",
    }
    await sock.ws.close()
