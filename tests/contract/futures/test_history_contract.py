"""Fidelity of the Futures simulator's account history (``/api/history/v3/executions``).

python-kraken-sdk's ``kraken.futures.User.get_execution_events`` runs against it unchanged
(only ``url=`` points at the simulator; the SDK calls ``/api/history/v2/executions`` and
signs the path as it is, with a nonce), in a thread because the SDK is synchronous. A
request signed by hand from the docs (``client.authent``, no nonce, as ccxt signs) checks
what the SDK cannot ask: ``count`` pages, the token header, 401 and 429.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from kraken.futures import User
from yarl import URL

from .client import authent
from .conftest import FuturesSim

S = "PF_XBTUSD"
V3 = "/api/history/v3/executions"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DECIMAL = re.compile(r"-?\d+(\.\d+)?")


async def three_fills(sim: FuturesSim) -> list[dict[str, Any]]:
    """Three market buys a second apart; the REST ``fills`` they made, oldest first."""
    for n in range(3):
        book = await sim.client.public("orderbook", {"symbol": S})
        ask = Decimal(str(book.body["orderBook"]["asks"][0][0]))
        sent = await sim.client.post(
            "sendorder",
            {"orderType": "ioc", "symbol": S, "side": "buy", "size": "0.01",
             "limitPrice": str(ask + 50), "cliOrdId": f"h-{n}"},
        )  # fmt: skip
        assert sent.ok and sent.body["sendStatus"]["status"] == "placed", sent.text
        await sim.advance(1.0)
    fills = await sim.client.get("fills")
    assert fills.ok
    listed: list[dict[str, Any]] = list(reversed(fills.body["fills"]))
    return listed


async def signed_get(
    sim: FuturesSim, params: dict[str, Any], *, secret: str | None = None
) -> tuple[int, Any, Any]:
    """A history GET signed from the docs: ``postData`` the query as sent, no nonce, the
    path as it is."""
    query = urlencode(params, quote_via=quote)
    headers = {
        "APIKey": sim.api_key,
        "Authent": authent(secret or sim.api_secret, query, "", V3),
    }
    url = sim.server.rest_url + V3 + (f"?{query}" if query else "")
    async with sim.session.get(URL(url, encoded=True), headers=headers) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, r.headers, body


def user(sim: FuturesSim, secret: str | None = None) -> User:
    return User(key=sim.api_key, secret=secret or sim.api_secret, url=sim.server.rest_url)


def execution(element: dict[str, Any]) -> dict[str, Any]:
    inner: dict[str, Any] = element["event"]["execution"]["execution"]
    return inner


async def test_the_sdks_execution_events_list_the_accounts_fills_with_their_fees(
    sim: FuturesSim,
) -> None:
    fills = await three_fills(sim)
    answer = await asyncio.to_thread(user(sim).get_execution_events)
    assert set(answer) == {"accountUid", "len", "serverTime", "elements"}  # no token: all here
    assert UUID.fullmatch(answer["accountUid"]) and answer["len"] == 3
    elements = answer["elements"]
    assert [execution(e)["uid"] for e in elements] == [f["fill_id"] for f in reversed(fills)]
    for n, (element, fill) in enumerate(zip(reversed(elements), fills, strict=True), 1):
        assert set(element) == {"uid", "timestamp", "event"}
        assert element["event"]["execution"]["takerReducedQuantity"] == ""
        ex = execution(element)
        assert ex["executionType"] == "taker" and ex["quantity"] == "0.0100"
        assert Decimal(ex["price"]) == Decimal(str(fill["price"]))
        for key in ("quantity", "price", "markPrice", "usdValue"):
            assert DECIMAL.fullmatch(ex[key]), (key, ex[key])
        assert Decimal(ex["orderData"]["fee"]) > 0 and DECIMAL.fullmatch(ex["orderData"]["fee"])
        assert Decimal(ex["orderData"]["positionSize"]) == Decimal("0.01") * n  # long after it
        assert Decimal(ex["usdValue"]) == Decimal(ex["price"]) * Decimal(ex["quantity"])
        order = ex["order"]
        assert order["uid"] == fill["order_id"] and order["accountUid"] == answer["accountUid"]
        assert (order["tradeable"], order["direction"], order["orderType"]) == (S, "Buy", "IoC")
        assert order["clientId"] == fill["cliOrdId"] and order["filled"] == "0.0000"
        assert element["timestamp"] == ex["timestamp"] and isinstance(ex["limitFilled"], bool)


async def test_the_sdks_sort_window_and_continuation_token(sim: FuturesSim) -> None:
    fills = await three_fills(sim)
    sdk = user(sim)
    ascending = await asyncio.to_thread(sdk.get_execution_events, sort="asc")
    times = [e["timestamp"] for e in ascending["elements"]]
    assert times == sorted(times) and len(set(times)) == 3
    middle = await asyncio.to_thread(
        sdk.get_execution_events, since=times[1], before=times[2], tradeable=S
    )
    assert [execution(e)["uid"] for e in middle["elements"]] == [fills[1]["fill_id"]]
    none = await asyncio.to_thread(sdk.get_execution_events, tradeable="PF_ETHUSD")
    assert none["elements"] == [] and none["len"] == 0
    status, headers, first = await signed_get(sim, {"count": 2})
    assert status == 200 and first["len"] == 2 and headers["is-truncated"] == "true"
    token = first["continuationToken"]
    assert headers["Next-Continuation-Token"] == token
    rest = await asyncio.to_thread(sdk.get_execution_events, continuation_token=token)
    assert [execution(e)["uid"] for e in rest["elements"]] == [fills[0]["fill_id"]]
    assert "continuationToken" not in rest


async def test_a_bad_signature_is_a_401_and_the_pool_a_429(sim: FuturesSim) -> None:
    wrong = "A" * 88
    status, _, body = await signed_get(sim, {}, secret=wrong)
    assert status == 401 and body["status"] == "unauthorized" and "reason" in body
    with pytest.raises(Exception, match="401"):
        await asyncio.to_thread(user(sim, wrong).get_execution_events)
    status, _, body = await signed_get(sim, {"count": 0})
    assert status == 400 and body["status"] == "badRequest"
    for _ in range(99):  # 100 in all with the 400 (the 401s were never served): pool empty
        assert (await signed_get(sim, {}))[0] == 200
    status, headers, text = await signed_get(sim, {})
    assert status == 429 and headers["rate-limit-reset"] == "6"
    assert headers["Content-Type"].startswith("text/plain") and text
    await sim.advance(6.0)  # 100 tokens every 10 minutes: one every 6 s
    assert (await signed_get(sim, {}))[0] == 200
