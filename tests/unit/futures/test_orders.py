"""Order-entry requests as Kraken's pages shape them, and their answers parsed."""

from __future__ import annotations

import json
import urllib.parse
from decimal import Decimal

import pytest

from bot.core.errors import InsufficientFunds, OrderStateUnknown, RejectedError
from bot.futures import orders as o
from bot.futures.auth import encode_params
from bot.futures.instruments import FuturesInstrument
from bot.kraken.codec import loads_exact


def test_send_order_limit(inst: FuturesInstrument) -> None:
    req = o.send_order(
        inst,
        side="buy",
        order_type="lmt",
        size=inst.qty("0.0012"),
        limit_price=inst.price("65000.5"),
        cli_ord_id="my-1",
        reduce_only=True,
    )
    assert (req.http_method, req.path, req.cost) == ("POST", "/derivatives/api/v3/sendorder", 10)
    assert req.param_dict == {
        "orderType": "lmt",
        "symbol": "PF_XBTUSD",
        "side": "buy",
        "size": "0.0012",
        "limitPrice": "65000.5",
        "reduceOnly": "true",
        "cliOrdId": "my-1",
    }


def test_send_order_stops_and_market(inst: FuturesInstrument) -> None:
    stp = o.send_order(
        inst,
        side="sell",
        order_type=o.OrderType.STOP,
        size=10,
        stop_price=inst.price("60000"),
        limit_price=inst.price("59000"),
        trigger_signal="mark",
        cli_ord_id="s",
    )
    assert stp.param_dict["stopPrice"] == "60000.0"
    assert stp.param_dict["triggerSignal"] == "mark"
    mkt = o.send_order(inst, side="buy", order_type="mkt", size=10, cli_ord_id="m")
    assert "limitPrice" not in mkt.param_dict


@pytest.mark.parametrize(
    "kwargs",
    [
        {"order_type": "lmt"},  # no limit price
        {"order_type": "stp", "limit_price": 650000},  # no stop price
        {"order_type": "mkt", "limit_price": 650000},
        {"order_type": "lmt", "limit_price": 650003},  # off the tick
        {"order_type": "lmt", "limit_price": 650000, "size": 0},
        {"order_type": "lmt", "limit_price": 650000, "cli_ord_id": "x" * 101},
        {"order_type": "lmt", "limit_price": 650000, "cli_ord_id": "has space"},
        {"order_type": "lmt", "limit_price": 650000, "side": "long"},
        {"order_type": "lmt", "limit_price": 650000, "trigger_signal": "mark"},
        {"order_type": "trailing_stop", "limit_price": 650000},
    ],
)
def test_send_order_refuses_what_kraken_would(inst: FuturesInstrument, kwargs: dict) -> None:
    base = {"side": "buy", "size": 10, "cli_ord_id": "c1"}
    base.update(kwargs)
    with pytest.raises(ValueError):
        o.send_order(inst, **base)


def test_batch_order_is_one_json_parameter(inst: FuturesInstrument) -> None:
    req = o.batch_order(
        [
            o.BatchSend("1", inst, "buy", "lmt", inst.qty("0.5"), "b1", limit_price=650000),
            o.BatchEdit(inst, order_id="abc", limit_price=650005),
            o.BatchCancel(cli_ord_id="b0"),
        ]
    )
    assert req.endpoint == "batchorder" and req.cost == 12
    document = json.loads(req.param_dict["json"])
    assert document == {
        "batchOrder": [
            {
                "order": "send",
                "order_tag": "1",
                "orderType": "lmt",
                "symbol": "PF_XBTUSD",
                "side": "buy",
                "size": 0.5,
                "limitPrice": 65000.0,
                "cliOrdId": "b1",
            },
            {"order": "edit", "order_id": "abc", "limitPrice": 65000.5},
            {"order": "cancel", "cliOrdId": "b0"},
        ]
    }
    # What is sent (and signed) decodes back to exactly that document.
    sent = encode_params(req.param_dict)
    assert urllib.parse.parse_qs(sent)["json"] == [req.param_dict["json"]]
    with pytest.raises(ValueError):
        o.batch_order([])


def test_a_batch_sends_no_market_order(inst: FuturesInstrument) -> None:
    """``BatchOrderSend.orderType`` (Kraken's OpenAPI) is lmt, ioc, post, stp,
    take_profit or fok: a ``mkt`` send is refused here, not by Kraken."""
    with pytest.raises(ValueError, match="send it alone"):
        o.batch_order([o.BatchSend("1", inst, "buy", "mkt", inst.qty("0.5"), "m1")])
    stop = o.BatchSend("2", inst, "sell", "stp", inst.qty("0.5"), "s1", stop_price=640000)
    assert json.loads(o.batch_order([stop]).param_dict["json"])["batchOrder"][0]["stopPrice"]


def test_cancel_and_dead_man_requests() -> None:
    assert o.cancel_order(order_id="x").param_dict == {"order_id": "x"}
    assert o.cancel_order(cli_ord_id="c").param_dict == {"cliOrdId": "c"}
    with pytest.raises(ValueError):
        o.cancel_order(order_id="x", cli_ord_id="c")
    assert o.cancel_all_orders_after(60).param_dict == {"timeout": "60"}
    assert o.cancel_all_orders_after(60).cost == 25
    with pytest.raises(ValueError):
        o.cancel_all_orders_after(-1)
    assert o.cancel_all_orders("PF_XBTUSD").param_dict == {"symbol": "PF_XBTUSD"}


# The answers below are shaped as the pages' examples (values ours).
SEND_PLACED = b"""{"result":"success","serverTime":"2023-04-07T15:18:04.700Z","sendStatus":{
 "order_id":"2ce038ae-c144-4de7-a0f1-82f7f4fca864","cliOrdId":"c1","status":"placed",
 "receivedTime":"2023-04-07T15:18:04.699Z","orderEvents":[{"order":{
  "orderId":"2ce038ae-c144-4de7-a0f1-82f7f4fca864","cliOrdId":"c1","type":"lmt",
  "symbol":"pf_xbtusd","side":"buy","quantity":0.5,"filled":0,"limitPrice":65000.5,
  "reduceOnly":false,"timestamp":"2023-04-07T15:18:04.699Z",
  "lastUpdateTimestamp":"2023-04-07T15:18:04.699Z"},"reducedQuantity":null,"type":"PLACE"}]}}"""

SEND_EXECUTED = b"""{"result":"success","serverTime":"2023-04-08T11:59:23.888Z","sendStatus":{
 "order_id":"67d3a732","status":"placed","receivedTime":"2023-04-08T11:59:23.887Z",
 "orderEvents":[{"executionId":"495aae73","price":1869.175,"amount":5,"orderPriorEdit":null,
  "orderPriorExecution":{"orderId":"67d3a732","cliOrdId":null,"type":"ioc","symbol":"pi_ethusd",
  "side":"buy","quantity":5,"filled":0,"limitPrice":1887.85,"reduceOnly":false,
  "timestamp":"2023-04-08T11:59:23.887Z","lastUpdateTimestamp":"2023-04-08T11:59:23.887Z"},
  "takerReducedQuantity":null,"type":"EXECUTION"}]}}"""


def test_parse_send_placed_and_executed() -> None:
    placed = o.parse_send(loads_exact(SEND_PLACED))
    assert placed.ok and placed.error() is None
    assert placed.order_id == "2ce038ae-c144-4de7-a0f1-82f7f4fca864"
    event = placed.events[0]
    assert event.kind == "PLACE" and event.order is not None
    assert event.order.symbol == "PF_XBTUSD" and event.order.limit_price == Decimal("65000.5")
    executed = o.parse_send(loads_exact(SEND_EXECUTED))
    ex = executed.events[0]
    assert ex.kind == "EXECUTION" and ex.price == Decimal("1869.175") and ex.amount == 5
    assert ex.order is not None and ex.order.order_type == "ioc"


def test_success_is_not_placed() -> None:
    body = loads_exact(
        b'{"result":"success","serverTime":"x","sendStatus":{"status":"insufficientAvailableFunds",'
        b'"receivedTime":"x","orderEvents":[]}}'
    )
    result = o.parse_send(body)
    assert not result.ok
    assert isinstance(result.error(), InsufficientFunds)


def test_a_refusal_that_reports_an_execution_is_not_a_rejection() -> None:
    """A status that is not a success with an EXECUTION among its ``orderEvents`` (the send
    enum has ``cancelled``; ``OrderError`` has ``REJECTED_AFTER_EXECUTION``): the order
    traded, so its fate is for reconciliation, never a plain rejection."""
    body = loads_exact(SEND_EXECUTED.replace(b'"status":"placed"', b'"status":"cancelled"'))
    result = o.parse_send(body)
    assert not result.ok and result.traded
    error = result.error("cliOrdId c1")
    assert isinstance(error, OrderStateUnknown) and error.code == "cancelled"
    assert "cliOrdId c1" in str(error)
    item = o.BatchItemResult("wouldNotReducePosition", "1", "oid", None, None, result.events)
    assert isinstance(item.error(), OrderStateUnknown)
    refused = o.BatchItemResult("postWouldExecute", "1", "oid", None, None, ())
    assert isinstance(refused.error(), RejectedError)


def test_parse_trigger_place_event() -> None:
    body = loads_exact(
        b'{"result":"success","sendStatus":{"order_id":"t1","status":"placed","orderEvents":[{'
        b'"orderTrigger":{"uid":"t1","clientId":"c9","type":"lmt","symbol":"pf_xbtusd",'
        b'"side":"buy","quantity":1,"limitPrice":2.0,"triggerPrice":3.0,'
        b'"triggerSide":"trigger_above","triggerSignal":"last_price","reduceOnly":false,'
        b'"timestamp":"t","lastUpdateTimestamp":"t","startTime":null},"type":"PLACE"}]}}'
    )
    order = o.parse_send(body).events[0].order
    assert order is not None
    assert (order.order_id, order.cli_ord_id, order.stop_price) == ("t1", "c9", Decimal("3.0"))


def test_parse_edit_cancel_cancel_all_and_dead_man() -> None:
    edit = o.parse_edit(
        loads_exact(
            b'{"result":"success","editStatus":{"status":"orderForEditNotFound",'
            b'"orderId":"x","receivedTime":"t","orderEvents":[]}}'
        )
    )
    assert not edit.ok and isinstance(edit.error(), RejectedError)
    cancel = o.parse_cancel(
        loads_exact(
            b'{"result":"success","cancelStatus":{"status":"cancelled","order_id":"x",'
            b'"receivedTime":"t","orderEvents":[{"type":"CANCEL","uid":"x","order":null}]}}'
        )
    )
    assert cancel.ok and cancel.events[0].kind == "CANCEL"
    everything = o.parse_cancel_all(
        loads_exact(
            b'{"result":"success","cancelStatus":{"receivedTime":"t","cancelOnly":"all",'
            b'"status":"cancelled","cancelledOrders":[{"order_id":"a"},'
            b'{"order_id":"b","cliOrdId":"c"}],"orderEvents":[]}}'
        )
    )
    assert everything.ok and everything.cancelled == (("a", None), ("b", "c"))
    armed = o.parse_dead_man(
        loads_exact(
            b'{"result":"success","status":{"currentTime":"2018-06-19T16:51:23.839Z",'
            b'"triggerTime":"2018-06-19T16:52:23.839Z"},"serverTime":"x"}'
        )
    )
    assert armed.armed
    off = o.parse_dead_man(
        loads_exact(b'{"result":"success","status":{"currentTime":"t","triggerTime":"0"}}')
    )
    assert not off.armed and off.trigger_time is None


def test_parse_batch_in_request_order() -> None:
    body = loads_exact(
        b'{"result":"success","batchStatus":[{"status":"insufficientAvailableFunds",'
        b'"order_tag":"1","orderEvents":[]},{"status":"placed","order_tag":"2","order_id":"z",'
        b'"dateTimeReceived":"t","orderEvents":[]},{"status":"notFound","cliOrdId":"c",'
        b'"orderEvents":[]}]}'
    )
    items = o.parse_batch(body)
    assert [(i.order_tag, i.ok) for i in items] == [("1", False), ("2", True), (None, False)]
    assert isinstance(items[0].error(), InsufficientFunds)
