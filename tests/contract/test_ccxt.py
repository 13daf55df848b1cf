"""ccxt's ``kraken`` exchange against ``krakenbot sim``: its two REST base URLs changed,
nothing else (``exchange.urls['api']``)."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from tests.contract.conftest import Account, Sim


@pytest.fixture
def kraken(sim: Sim, account: Account) -> Any:
    exchange = ccxt.kraken({"apiKey": account.api_key, "secret": account.api_secret})
    exchange.urls["api"] = {**exchange.urls["api"], "public": sim.rest, "private": sim.rest}
    exchange.enableRateLimit = False  # loopback; the simulator counts Kraken's limits itself
    return exchange


def test_public_rest(kraken: Any) -> None:
    markets = kraken.load_markets()  # AssetPairs and Assets
    btc = markets["BTC/USD"]
    assert btc["id"] == "XXBTZUSD" and btc["precision"]["price"] == 0.1
    assert btc["limits"]["amount"]["min"] == 0.0001
    assert {"BTC", "USD", "ETH"} <= set(kraken.currencies)
    for _ in range(5):  # the market moves about once a second: agree between two steps
        ticker = kraken.fetch_ticker("BTC/USD")
        book = kraken.fetch_order_book("BTC/USD", 10)
        if book["bids"][0][0] == ticker["bid"] and book["asks"][0][0] == ticker["ask"]:
            break
    assert 0 < ticker["bid"] < ticker["ask"]
    assert len(book["bids"]) == len(book["asks"]) == 10
    assert book["bids"][0][0] == ticker["bid"] and book["asks"][0][0] == ticker["ask"]
    kraken.create_order("BTC/USD", "market", "buy", 0.001)  # so there is a trade and a candle
    trades = kraken.fetch_trades("BTC/USD")
    assert trades and all(t["price"] > 0 for t in trades)
    candles = kraken.fetch_ohlcv("BTC/USD", "1m")
    assert candles and sum(c[5] for c in candles) == pytest.approx(sum(t["amount"] for t in trades))


def test_private_rest_orders_by_client_id_amend_cancel_history(kraken: Any) -> None:
    assert kraken.fetch_balance()["total"]["USD"] == 100_000
    placed = kraken.create_order(
        "BTC/USD", "limit", "buy", 0.001, 50_000, {"clientOrderId": "ccxt-1", "postOnly": True}
    )
    open_orders = kraken.fetch_open_orders("BTC/USD")
    assert [(o["id"], o["clientOrderId"]) for o in open_orders] == [(placed["id"], "ccxt-1")]
    fetched = kraken.fetch_order(placed["id"], "BTC/USD")
    assert fetched["status"] == "open" and fetched["price"] == 50_000
    kraken.edit_order(placed["id"], "BTC/USD", "limit", "buy", 0.002, 50_010)  # AmendOrder
    amended = kraken.fetch_order(placed["id"], "BTC/USD")
    assert (amended["amount"], amended["price"]) == (0.002, 50_010)
    kraken.cancel_order(placed["id"], "BTC/USD")
    assert kraken.fetch_open_orders("BTC/USD") == []
    kraken.create_order("BTC/USD", "limit", "buy", 0.001, 50_000, {"clientOrderId": "ccxt-2"})
    kraken.create_order("BTC/USD", "limit", "buy", 0.001, 50_001)
    kraken.cancel_all_orders()
    assert kraken.fetch_open_orders("BTC/USD") == []
    armed = kraken.cancel_all_orders_after(60_000)
    assert armed["result"]["triggerTime"] > armed["result"]["currentTime"]
    kraken.cancel_all_orders_after(0)
    bought = kraken.create_order("BTC/USD", "market", "buy", 0.001)
    closed = {o["id"]: o for o in kraken.fetch_closed_orders("BTC/USD")}
    assert closed[placed["id"]]["status"] == "canceled"
    assert closed[bought["id"]]["status"] == "closed"
    assert closed[bought["id"]]["filled"] == 0.001
    mine = kraken.fetch_my_trades("BTC/USD")
    assert {t["order"] for t in mine} == {bought["id"]}
    assert sum(t["amount"] for t in mine) == pytest.approx(0.001)


def test_errors_reach_ccxt_as_its_exceptions(kraken: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        kraken.create_order("BTC/USD", "limit", "buy", 100, 60_000)
    with pytest.raises(ccxt.OrderNotFound):
        kraken.cancel_order("OAAAAA-BBBBB-CCCCCC", "BTC/USD")
    # ccxt rounds a price to the pair's precision itself; its raw API sends what it is given.
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001"}
    with pytest.raises(ccxt.ExchangeError, match="price can only be specified up to 1 decimals"):
        kraken.private_post_addorder({**order, "price": "50000.05"})
