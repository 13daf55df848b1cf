"""The account history of executions, pure: the request, the two shapes Kraken has printed,
malformed elements, the answer's errors by remedy, the pages of one read and the merge
with ``fills``."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from bot.core.errors import (
    AuthError,
    ExchangeError,
    ProtocolError,
    RateLimitError,
    TransientError,
)
from bot.futures import history as h
from bot.futures.ratelimit import HISTORY_BUDGET, HISTORY_WINDOW_S, history_budget, history_cost
from bot.kraken.codec import loads_exact

ACCOUNT = "e8d555f5-e7d3-42a5-b9fa-66fcdf856405"

# The current shape: one order, executionType and orderData, as a real answer of 2023
# printed it (KRAKEN.md §6.4), numbers as strings.
CURRENT = {
    "accountUid": ACCOUNT,
    "len": 1,
    "serverTime": "2023-05-26T19:49:50.000Z",
    "elements": [
        {
            "uid": "6cdb3700-757b-4a5f-8a87-34db75903caa",
            "timestamp": 1685130589916,
            "event": {
                "execution": {
                    "execution": {
                        "uid": "45c4bb6f-9ce3-4258-82b1-b27b8f9815ae",
                        "order": {
                            "uid": "57b4e666-ddfa-44bb-810b-caabca9f9bb2",
                            "accountUid": ACCOUNT,
                            "tradeable": "PF_ATOMUSD",
                            "direction": "Buy",
                            "quantity": "1",
                            "filled": "0",
                            "timestamp": 1685130589916,
                            "limitPrice": "10.6650000000",
                            "orderType": "IoC",
                            "clientId": "",
                            "reduceOnly": False,
                            "lastUpdateTimestamp": 1685130589916,
                        },
                        "timestamp": 1685130589916,
                        "quantity": "1",
                        "price": "10.56000000",
                        "markPrice": "10.55708715830",
                        "limitFilled": False,
                        "executionType": "taker",
                        "usdValue": "10.56",
                        "orderData": {"positionSize": "3", "fee": "0.00528000000"},
                    },
                    "takerReducedQuantity": "",
                }
            },
        }
    ],
}


def order(uid: str, account: str, direction: str = "Sell", client: str = "c-1") -> dict[str, Any]:
    return {
        "uid": uid,
        "accountUid": account,
        "tradeable": "pi_xbtusd",
        "direction": direction,
        "quantity": "2",
        "filled": "0",
        "timestamp": 1605126171852,
        "limitPrice": "27002.5",
        "orderType": "Post",
        "clientId": client,
        "reduceOnly": False,
        "lastUpdateTimestamp": 1605126171852,
    }


# The older shape: both orders with their data, under ``Execution`` (the rendered page).
BOTH = {
    "accountUid": ACCOUNT,
    "len": 1,
    "elements": [
        {
            "uid": "el-1",
            "timestamp": 1605126171852,
            "event": {
                "Execution": {
                    "execution": {
                        "uid": "ex-1",
                        "makerOrder": order("mk-1", ACCOUNT),
                        "takerOrder": order("tk-1", "someone-else", "Buy", ""),
                        "timestamp": 1605126171852,
                        "quantity": "0.5",
                        "price": "27001.5",
                        "markPrice": "27001.56",
                        "limitFilled": False,
                        "usdValue": "13500.75",
                        "makerOrderData": {"fee": "-0.0001", "positionSize": "-0.5"},
                        "takerOrderData": None,
                    },
                    "takerReducedQuantity": "",
                }
            },
        }
    ],
    "continuationToken": "MTYwNTEyNjE3MTg1Mi8x",
}


def execution_of(body: dict[str, Any]) -> dict[str, Any]:
    event = body["elements"][0]["event"]
    inner: dict[str, Any] = next(iter(event.values()))["execution"]
    return inner


# ---------------------------------------------------------------------------- request


def test_the_request_is_a_get_of_the_v3_path_signed_as_it_is_and_costs_one() -> None:
    req = h.executions(since_ms=1_700_000_000_000, continuation_token="abc=", count=50)
    assert req.path == "/api/history/v3/executions" and req.http_method == "GET"
    assert req.params == (
        ("since", "1700000000000"),
        ("sort", "desc"),
        ("continuation_token", "abc="),
        ("count", "50"),
    )
    assert req.cost == 1.0 == history_cost("executions")
    assert h.executions(sort="asc", count=None).params == (("sort", "asc"),)


@pytest.mark.parametrize(
    "kwargs",
    [{"since_ms": -1}, {"before_ms": 1.5}, {"sort": "up"}, {"count": 0}, {"count": "10"}],
)
def test_a_parameter_kraken_refuses_is_refused_here(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        h.executions(**kwargs)


def test_the_history_pool_is_its_own_100_per_ten_minutes() -> None:
    assert (HISTORY_BUDGET, HISTORY_WINDOW_S) == (100.0, 600.0)
    pool = history_budget()
    for _ in range(100):
        assert pool.wait_time(1.0, 0.0) == 0.0
        pool.charge(1.0, 0.0)
    assert pool.wait_time(1.0, 0.0) == pytest.approx(6.0)  # one token every 6 s
    assert history_cost("orders") == 1.0 and history_cost("account-log") == 10.0


# ----------------------------------------------------------------------------- parser


def test_the_current_shape_reads_exactly_with_its_fee() -> None:
    page = h.parse_executions(loads_exact(json.dumps(CURRENT).encode()))
    (e,) = page.executions
    assert page.account_uid == ACCOUNT and page.continuation_token is None
    assert e == h.Execution(
        exec_id="45c4bb6f-9ce3-4258-82b1-b27b8f9815ae",
        order_id="57b4e666-ddfa-44bb-810b-caabca9f9bb2",
        cli_ord_id=None,  # "" is no client id
        symbol="PF_ATOMUSD",
        side="buy",
        qty=Decimal(1),
        price=Decimal("10.56000000"),
        time_ms=1685130589916,
        liquidity="t",
        fee=Decimal("0.00528000000"),
        order_type="IoC",
        position_size=Decimal(3),
    )
    assert str(e.fee) == "0.00528000000"  # every digit Kraken printed


def test_the_older_shape_takes_the_accounts_side_of_both_orders() -> None:
    page = h.parse_executions(BOTH)
    (e,) = page.executions
    assert (e.exec_id, e.order_id, e.cli_ord_id) == ("ex-1", "mk-1", "c-1")
    assert (e.symbol, e.side, e.liquidity) == ("PI_XBTUSD", "sell", "m")
    assert (e.qty, e.price, e.fee) == (Decimal("0.5"), Decimal("27001.5"), Decimal("-0.0001"))
    assert page.continuation_token == "MTYwNTEyNjE3MTg1Mi8x"


def test_without_the_account_uid_the_side_with_data_is_the_accounts() -> None:
    body = copy.deepcopy(BOTH)
    del body["accountUid"]
    ex = execution_of(body)
    ex["makerOrderData"], ex["takerOrderData"] = None, {"fee": "0.7", "positionSize": "1"}
    (e,) = h.parse_executions(body).executions
    assert (e.order_id, e.side, e.liquidity, e.fee) == ("tk-1", "buy", "t", Decimal("0.7"))


def test_numbers_printed_as_json_numbers_are_read_exactly_too() -> None:
    body = copy.deepcopy(CURRENT)
    ex = execution_of(body)
    ex["quantity"], ex["price"] = 2, Decimal("10.5")
    (e,) = h.parse_executions(body).executions
    assert (e.qty, e.price) == (Decimal(2), Decimal("10.5"))


def test_an_element_without_order_data_has_no_fee_and_an_unknown_type_no_liquidity() -> None:
    body = copy.deepcopy(CURRENT)
    ex = execution_of(body)
    ex["orderData"] = None
    ex["executionType"] = "liquidation"
    (e,) = h.parse_executions(body).executions
    assert e.fee is None and e.liquidity is None and e.position_size is None


def test_an_execution_typed_taker_after_edit_is_a_takers() -> None:
    body = copy.deepcopy(CURRENT)
    execution_of(body)["executionType"] = "takerAfterEdit"
    (e,) = h.parse_executions(body).executions
    assert e.liquidity == "t"


def broken(edit: Any) -> dict[str, Any]:
    body = copy.deepcopy(CURRENT)
    edit(execution_of(body))
    return body


@pytest.mark.parametrize(
    ("edit", "names"),
    [
        (lambda ex: ex.pop("price"), ["elements[0].event.execution.execution", "'price'"]),
        (lambda ex: ex.update(quantity="1,5"), ["execution", "quantity", "'1,5'"]),
        (lambda ex: ex.update(price=True), ["price"]),
        (lambda ex: ex.update(price="0"), ["quantity and price must be positive"]),
        (lambda ex: ex.update(timestamp="1685130589916"), ["timestamp", "milliseconds"]),
        (lambda ex: ex.pop("uid"), ["execution", "uid"]),
        (lambda ex: ex["order"].update(direction="Unknown"), ["order", "direction", "Unknown"]),
        (lambda ex: ex["order"].pop("tradeable"), ["order", "tradeable"]),
        (lambda ex: ex.update(orderData={"fee": "a lot"}), ["orderData", "fee"]),
        (lambda ex: ex.pop("order"), ["missing 'order'"]),
    ],
)
def test_a_malformed_element_is_a_protocol_error_naming_the_field(
    edit: Any, names: list[str]
) -> None:
    with pytest.raises(ProtocolError) as err:
        h.parse_executions(broken(edit))
    for name in names:
        assert name in str(err.value)


def test_malformed_envelopes_and_orders_of_nobody() -> None:
    with pytest.raises(ProtocolError, match="elements must be a list"):
        h.parse_executions({"accountUid": ACCOUNT, "elements": None})
    with pytest.raises(ProtocolError, match=r"elements\[0\].event"):
        h.parse_executions({"elements": [{"uid": "x", "timestamp": 1}]})
    body = copy.deepcopy(BOTH)
    execution_of(body)["makerOrderData"] = None
    body["accountUid"] = "not-us"
    with pytest.raises(ProtocolError, match="neither makerOrder nor takerOrder"):
        h.parse_executions(body)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "raw", "error"),
    [
        (401, b'{"status":"unauthorized","reason":"You are not authorized"}', AuthError),
        (403, b"<html>Forbidden</html>", AuthError),
        (429, b"Rate limited.", RateLimitError),
        (503, b"<html>503</html>", TransientError),
        (408, b"", TransientError),
        (404, b"not here", ExchangeError),
        (200, b"<html>maintenance</html>", ProtocolError),
        (200, b"[1, 2]", ProtocolError),
        (200, b'{"result":"error","error":"apiLimitExceeded"}', RateLimitError),
    ],
)
def test_an_answer_that_is_not_a_listing_is_an_error_by_remedy(
    status: int, raw: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error) as err:
        h.decode_answer("history/executions", status, raw)
    assert type(err.value) is error


def test_a_listing_is_its_body() -> None:
    raw = json.dumps(CURRENT).encode()
    assert h.decode_answer("history/executions", 200, raw)["accountUid"] == ACCOUNT


# ------------------------------------------------------------------------------ pages


def ex(exec_id: str, time_ms: int, order_id: str = "o-1") -> h.Execution:
    return h.Execution(
        exec_id, order_id, None, "PF_XBTUSD", "buy", Decimal(1), Decimal(100), time_ms,
        "m", Decimal("0.02"), "Limit", None,
    )  # fmt: skip


def page(*execs: h.Execution, token: str | None = None) -> h.ExecutionsPage:
    return h.ExecutionsPage(ACCOUNT, execs, token)


def test_pages_follow_the_token_until_none_comes_back() -> None:
    pager = h.ExecutionPager(1000, count=2, max_pages=5)
    first = pager.next_request()
    assert first is not None and dict(first.params)["since"] == "1000"
    assert "continuation_token" not in dict(first.params)
    pager.take(page(ex("c", 30), ex("b", 20), token="t1"))
    second = pager.next_request()
    assert second is not None and dict(second.params)["continuation_token"] == "t1"
    assert dict(second.params)["count"] == "2" and dict(second.params)["sort"] == "desc"
    pager.take(page(ex("a", 10)))
    assert pager.next_request() is None
    found = pager.result()
    assert [e.exec_id for e in found.executions] == ["c", "b", "a"]
    assert (found.pages, found.truncated) == (2, False)


def test_a_read_stops_at_its_bound_and_says_it_was_cut_short() -> None:
    pager = h.ExecutionPager(None, count=1, max_pages=3)
    for n in range(3):
        assert pager.next_request() is not None
        pager.take(page(ex(f"e{n}", 100 - n), token=f"t{n}"))
    assert pager.next_request() is None
    found = pager.result()
    assert (found.pages, found.truncated, len(found.executions)) == (3, True, 3)
    with pytest.raises(RuntimeError):
        pager.take(page())


def test_an_empty_page_ends_the_read_even_with_a_token() -> None:
    pager = h.ExecutionPager(None, max_pages=5)
    pager.take(page(token="t0"))
    assert pager.next_request() is None and not pager.result().truncated


def test_a_token_that_comes_back_unchanged_is_a_protocol_error() -> None:
    pager = h.ExecutionPager(None, max_pages=5)
    pager.take(page(ex("a", 2), token="same"))
    with pytest.raises(ProtocolError, match="unchanged"):
        pager.take(page(ex("b", 1), token="same"))


def test_an_execution_listed_on_two_pages_is_kept_once() -> None:
    pager = h.ExecutionPager(None, max_pages=5)
    pager.take(page(ex("b", 2), ex("a", 1), token="t"))
    pager.take(page(ex("a", 1)))
    assert [e.exec_id for e in pager.result().executions] == ["b", "a"]


def test_the_bound_is_at_least_one_page() -> None:
    with pytest.raises(ValueError):
        h.ExecutionPager(None, max_pages=0)


# ---------------------------------------------------------------------- with fills


def fill(fill_id: str, time_ms: int, liquidity: str = "m", order_id: str = "o-1") -> h.Execution:
    """A ``fills`` entry as the venue reads it: an execution without a fee."""
    return h.Execution(
        fill_id, order_id, "cid-1", "PF_XBTUSD", "buy", Decimal(1), Decimal(100), time_ms,
        liquidity, None, None, None,
    )  # fmt: skip


def test_a_fill_the_history_shows_is_kept_once_with_its_fee() -> None:
    merged = h.merge_fills((ex("a", 1_000),), (fill("a", 1_000),))
    (only,) = merged.executions
    assert only.fee == Decimal("0.02") and (merged.fills_only, merged.renamed) == (0, 0)


def test_a_fill_the_history_has_not_caught_up_with_is_kept_without_a_fee() -> None:
    merged = h.merge_fills((ex("a", 1_000),), (fill("b", 2_000, "t"),))
    assert [(e.exec_id, e.fee, e.liquidity) for e in merged.executions] == [
        ("b", None, "t"),
        ("a", Decimal("0.02"), "m"),
    ]
    assert (merged.fills_only, merged.renamed) == (1, 0)


def test_the_same_execution_under_another_id_keeps_the_fill_id_and_the_fee() -> None:
    merged = h.merge_fills((ex("hist-id", 5_000), ex("older", 4_000)), (fill("fill-id", 5_000),))
    assert [(e.exec_id, e.fee) for e in merged.executions] == [
        ("fill-id", Decimal("0.02")),
        ("older", Decimal("0.02")),
    ]
    assert merged.executions[0].cli_ord_id == "cid-1"
    assert (merged.fills_only, merged.renamed) == (0, 1)


def test_executions_of_one_millisecond_keep_the_order_they_were_listed_in() -> None:
    merged = h.merge_fills((ex("z", 7), ex("a", 7), ex("m", 6)), (fill("new", 7, order_id="o-2"),))
    assert [e.exec_id for e in merged.executions] == ["z", "a", "new", "m"]
