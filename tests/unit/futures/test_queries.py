"""Reads parsed from answers shaped as Kraken's pages, and the lookup by cliOrdId."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.core.errors import ProtocolError
from bot.futures import queries as q
from bot.kraken.codec import loads_exact

OPEN_ORDERS = b"""{"result":"success","serverTime":"2019-09-05T17:02:00Z","openOrders":[
 {"order_id":"59302619","symbol":"PF_XBTUSD","side":"sell","orderType":"lmt","limitPrice":10640,
  "unfilledSize":304,"receivedTime":"2019-09-05T17:01:17.410Z","status":"untouched",
  "filledSize":0,"reduceOnly":true,"lastUpdateTime":"2019-09-05T17:01:17.410Z","cliOrdId":"a1"},
 {"order_id":"c8135f52","symbol":"pf_xbtusd","side":"buy","orderType":"take_profit",
  "stopPrice":1880.4,"receivedTime":"t","status":"untouched","filledSize":0.0,
  "reduceOnly":false,"triggerSignal":"last","lastUpdateTime":"t","cli_ord_id":"a2"}]}"""

FILLS = b"""{"result":"success","serverTime":"2020-07-22T13:44:24.311Z","fills":[
 {"fill_id":"3d57ed09","symbol":"PF_XBTUSD","side":"buy","order_id":"693af756","size":0.25,
  "price":9400,"fillTime":"2020-07-22T13:37:27.077Z","fillType":"maker","cliOrdId":"f1"},
 {"fill_id":"56b86ada","symbol":"PF_XBTUSD","side":"buy","order_id":"3f513c4c","size":0.5,
  "price":9456,"fillTime":"2020-07-21T12:41:52.790Z","fillType":"taker"}]}"""


def test_open_orders_read_both_spellings_of_the_client_id() -> None:
    orders = q.parse_open_orders(loads_exact(OPEN_ORDERS))
    assert [o.cli_ord_id for o in orders] == ["a1", "a2"]
    assert orders[0].unfilled_size == 304 and orders[0].reduce_only
    assert orders[1].symbol == "PF_XBTUSD" and orders[1].stop_price == Decimal("1880.4")


def test_fills_positions_accounts_tickers_and_book() -> None:
    fills = q.parse_fills(loads_exact(FILLS))
    assert fills[0].size == Decimal("0.25") and fills[0].cli_ord_id == "f1"
    positions = q.parse_open_positions(
        loads_exact(
            b'{"result":"success","openPositions":[{"side":"short","symbol":"pf_xbtusd",'
            b'"price":27523.75,"fillTime":"t","size":0.8,"unrealizedFunding":0.0001}]}'
        )
    )
    assert positions[0].signed_size == Decimal("-0.8")
    accounts = q.parse_accounts(
        loads_exact(
            b'{"result":"success","accounts":{"cash":{"type":"cashAccount","balances":{"xbt":0.1}},'
            b'"flex":{"type":"multiCollateralMarginAccount","currencies":{"USD":{"quantity":1000.5,'
            b'"value":1000.5,"collateral":1000.5,"available":900}},"initialMargin":10,'
            b'"initialMarginWithOrders":20,"maintenanceMargin":5,"balanceValue":1000.5,'
            b'"portfolioValue":1001,"collateralValue":1000.5,"pnl":0.5,"unrealizedFunding":0,'
            b'"totalUnrealized":0.5,"totalUnrealizedAsMargin":0.5,"availableMargin":981,'
            b'"marginEquity":1001}}}'
        )
    )
    assert accounts.cash == {"xbt": Decimal("0.1")}
    assert accounts.flex is not None and accounts.flex.available_margin == 981
    assert accounts.flex.currencies == {"USD": Decimal("1000.5")}
    tickers = q.parse_tickers(
        loads_exact(
            b'{"result":"success","tickers":[{"symbol":"PF_XBTUSD","last":65000.5,'
            b'"markPrice":65001,"bid":65000,"bidSize":1,"ask":65001,"askSize":2,'
            b'"fundingRate":0.0001,"suspended":false,"postOnly":false,"tag":"perpetual"}]}'
        )
    )
    assert tickers[0].funding_rate == Decimal("0.0001") and tickers[0].tag == "perpetual"
    book = q.parse_orderbook(
        loads_exact(b'{"result":"success","orderBook":{"bids":[[65000,1.5]],"asks":[[65000.5,2]]}}')
    )
    assert book.bids == ((Decimal(65000), Decimal("1.5")),)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"openPositions":[{"side":"up","symbol":"x","price":1,"size":1}]}',
        b'{"orderBook":{"bids":[[1]],"asks":[]}}',
        b'{"orderBook":{"bids":[[1,true]],"asks":[]}}',
    ],
)
def test_malformed_reads(raw: bytes) -> None:
    body = loads_exact(raw)
    with pytest.raises(ProtocolError):
        if "openPositions" in body:
            q.parse_open_positions(body)
        else:
            q.parse_orderbook(body)


def test_find_order_open_filled_absent() -> None:
    orders = q.parse_open_orders(loads_exact(OPEN_ORDERS))
    fills = q.parse_fills(loads_exact(FILLS))
    resting = q.find_order("a1", orders, fills)
    assert (resting.state, resting.order_id) == ("open", "59302619")
    filled = q.find_order("f1", orders, fills)
    assert (filled.state, filled.order_id, filled.filled_size) == (
        "filled",
        "693af756",
        Decimal("0.25"),
    )
    missing = q.find_order("nope", orders, fills)
    assert missing.state == "absent" and missing.order_id is None
