"""WebSocket order requests matched to their answers, and what the answers mean
(bot.execution.ws_requests): the same Kraken string gives the same error as over REST."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import (
    ExchangeError,
    InsufficientFunds,
    OrderStateUnknown,
    ProtocolError,
    RateLimitError,
    RejectedError,
    TokenError,
    TransientError,
)
from bot.execution import ws_requests as wr
from bot.execution.orders import amend_post_only, new_order
from bot.kraken import codec
from bot.kraken.codec import dumps, loads_exact
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import MethodResponse
from bot.kraken.rest import kraken_failure

BTC = Instrument(symbol="BTC/USD", base="BTC", quote="USD", price_precision=1, qty_precision=8)


def refused(method: str, error: str, req_id: int | None = None) -> MethodResponse:
    return MethodResponse(method=method, success=False, req_id=req_id, error=error)


def ok(method: str, req_id: int) -> MethodResponse:
    return MethodResponse(method=method, success=True, req_id=req_id, raw_result={})


def test_answers_are_matched_by_req_id_whatever_their_order() -> None:
    c = wr.Correlator()
    first, second = c.open("add_order"), c.open("cancel_order")
    assert first.req_id == wr.FIRST_REQ_ID and second.req_id == first.req_id + 1
    assert c.answer(ok("cancel_order", second.req_id)) is second
    assert c.answer(ok("add_order", first.req_id)) is first
    assert len(c) == 0
    assert c.answer(ok("add_order", first.req_id)) is None  # a repeat matches nothing
    assert c.answer(ok("add_order", 7)) is None  # nor a foreign req_id


def test_a_request_answered_several_times_is_done_at_its_last_answer() -> None:
    c = wr.Correlator()
    p = c.open("cancel_order", expected=2)
    assert c.answer(ok("cancel_order", p.req_id)) is None
    assert c.answer(ok("cancel_order", p.req_id)) is p and len(p.answers) == 2


def test_forgotten_and_lost_requests() -> None:
    c = wr.Correlator()
    late, lost = c.open("add_order"), c.open("amend_order")
    c.forget(late.req_id)
    assert c.answer(ok("add_order", late.req_id)) is None and not late.done
    assert c.lose_all("closed") == [lost] and lost.done and lost.lost == "closed"
    assert len(c) == 0


def test_an_answer_for_another_method_is_not_trusted() -> None:
    c = wr.Correlator()
    p = c.open("add_order")
    with pytest.raises(ProtocolError):
        c.answer(ok("cancel_order", p.req_id))


@pytest.mark.parametrize(
    ("method", "error", "cls"),
    [
        ("add_order", "EOrder:Insufficient funds", InsufficientFunds),
        ("add_order", "EService:Unavailable", OrderStateUnknown),  # a write's transient
        ("amend_order", "EService:Busy", OrderStateUnknown),
        ("cancel_order", "EGeneral:Internal error", OrderStateUnknown),
        ("cancel_order", "EOrder:Unknown order", RejectedError),
        ("add_order", "EOrder:Rate limit exceeded", RateLimitError),
        ("add_order", "EAPI:Invalid token", TokenError),
        (
            "batch_add",
            "EOrder:Invalid price:BTC/USD price can only be specified up to 1 decimals",
            RejectedError,
        ),
        ("cancel_all", "EGeneral:Unknown", ExchangeError),
    ],
)
def test_refusals_are_rests_errors_for_the_twin_method(
    method: str, error: str, cls: type[ExchangeError]
) -> None:
    got = wr.answer_error(refused(method, error))
    assert type(got) is cls and got is not None and got.code == error
    rest = kraken_failure(wr.REST_TWIN[method], error)
    assert type(rest) is type(got) and rest.code == got.code


def test_success_is_no_error_and_a_missing_error_string_is_still_one() -> None:
    assert wr.answer_error(ok("add_order", 1)) is None
    assert type(wr.answer_error(refused("add_order", ""))) is ExchangeError


def test_a_lost_answer_is_unknown_for_writes() -> None:
    for method in wr.REST_TWIN:
        lost = wr.lost_error(method, "EWS:Connection lost", "dropped")
        assert type(lost) is OrderStateUnknown, method
    assert type(wr.lost_error("ping", "EWS:Timeout", "")) is TransientError


def test_frames_carry_exact_numbers_the_cl_ord_id_and_the_token() -> None:
    order = new_order(
        cl_ord_id="c1", instrument=BTC, side="buy", order_type="limit", qty=BTC.qty("0.01"),
        price=BTC.price("50000.5"), strategy="s", now_ns=0, time_in_force="IOC", post_only=True,
    )  # fmt: skip
    fields = wr.order_fields(order, BTC)
    assert fields == {
        "order_type": "limit", "side": "buy", "order_qty": Decimal("0.01"),
        "limit_price": Decimal("50000.5"), "time_in_force": "ioc", "post_only": True,
        "fee_preference": "quote", "cl_ord_id": "c1",
    }  # fmt: skip
    two = [order, replace(order, cl_ord_id="c2")]
    frame = json.loads(wr.batch_add(two, BTC, token="t", req_id=9))
    assert frame["req_id"] == 9 and frame["params"]["token"] == "t"
    assert [o["cl_ord_id"] for o in frame["params"]["orders"]] == ["c1", "c2"]
    assert b'"order_qty":0.01' in wr.batch_add(two, BTC, token="t", req_id=9)
    with pytest.raises(ValueError, match="2 to 15"):
        wr.batch_add([order], BTC, token="t", req_id=1)
    cancel = json.loads(wr.batch_cancel(order_ids=["O1"], cl_ord_ids=["c2"], token="t", req_id=2))
    assert cancel["params"] == {"orders": ["O1"], "cl_ord_id": ["c2"], "token": "t"}
    with pytest.raises(ValueError, match="Kraken's id"):  # ``orders`` is required
        wr.batch_cancel(order_ids=[], cl_ord_ids=["c1", "c2"], token="t", req_id=2)
    with pytest.raises(ValueError, match="Kraken's id"):
        wr.edit_order(order, BTC, qty=None, price=1, token="t", req_id=3)


@pytest.mark.parametrize(
    "case",
    [
        ("limit", "50000.5", "GTC", True, "c1", "abc+/="),
        ("limit", "0.1", "IOC", False, "6d1b345e-2821-40e2-ad83-4ecb18a06876", "t"),
        ("market", None, "GTC", False, "c3", "t"),
        ("limit", "1", "GTC", False, 'needs "escaping"', "t"),  # the general way
        ("limit", "1", "GTC", False, "c4", "tok\\en"),
        ("stop-loss", "1", "GTD", False, "c5", "t"),
    ],
)
def test_the_one_pass_add_order_frame_is_the_general_one(
    case: tuple[str, str | None, str, bool, str, str],
) -> None:
    order_type, price, tif, post_only, cl_ord_id, token = case
    order = new_order(
        cl_ord_id="c0", instrument=BTC, side="sell", order_type=order_type,
        qty=BTC.qty("0.00012345"), price=None if price is None else BTC.price(price),
        strategy="s", now_ns=0, time_in_force=tif, post_only=post_only,
    )  # fmt: skip
    order = replace(order, cl_ord_id=cl_ord_id)
    fast = wr.add_order_frame(order, BTC, token=token, req_id=1 << 20)
    general = {
        "method": "add_order",
        "params": {**wr.order_fields(order, BTC), "symbol": "BTC/USD", "token": token},
        "req_id": 1 << 20,
    }
    assert loads_exact(fast) == loads_exact(dumps(general))


_SHAPES = st.tuples(
    st.sampled_from(["limit", "market", "stop-loss"]),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 10**12),  # qty, scaled
    st.integers(1, 10**9),  # price, scaled
    st.sampled_from(["GTC", "IOC", "GTD"]),
    st.booleans(),  # post_only
    st.sampled_from(
        ["c1", "6d1b345e28212e2ad834ecb18a068761", 'needs "escaping"', "a-b", "\u00fc1", "x\ty"]
    ),
    st.sampled_from(["t", "abc+/=", "tok\\en"]),
    st.sampled_from([(1, 8), (5, 0), (0, 3)]),  # price and qty precisions
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SHAPES, min_size=1, max_size=12))
def test_add_order_frames_from_templates_are_the_one_pass_frames(
    shapes: list[tuple[str, str, int, int, str, bool, str, str, tuple[int, int]]],
) -> None:
    frames = wr.AddOrderFrames(limit=4)  # small: the cache starts afresh within a list
    for req_id, shape in enumerate(shapes, start=1 << 20):
        order_type, side, qty, price, tif, post_only, cl_ord_id, token, (pp, qp) = shape
        inst = replace(BTC, price_precision=pp, qty_precision=qp)
        order = new_order(
            cl_ord_id="c0", instrument=inst, side=side, order_type=order_type, qty=qty,
            price=None if order_type == "market" else price, strategy="s", now_ns=0,
            time_in_force=tif, post_only=post_only,
        )  # fmt: skip
        order = replace(order, cl_ord_id=cl_ord_id)
        expected = wr.add_order_frame(order, inst, token=token, req_id=req_id)
        assert frames(order, inst, token=token, req_id=req_id) == expected
        assert frames(order, inst, token=token, req_id=req_id) == expected  # from the cache
        assert len(frames) <= 4


def test_add_order_frames_keep_one_template_per_shape_and_token() -> None:
    frames = wr.AddOrderFrames()
    order = new_order(
        cl_ord_id="c1", instrument=BTC, side="buy", order_type="limit",
        qty=BTC.qty("0.01"), price=BTC.price("50000.5"), strategy="s", now_ns=0,
        post_only=True,
    )  # fmt: skip
    for n, price in enumerate(("50000.5", "49999.9", "1")):  # a new price and id: one template
        moved = replace(order, price=BTC.price(price), cl_ord_id=f"c{n}")
        frame = frames(moved, BTC, token="t1", req_id=n)
        assert frame == wr.add_order_frame(moved, BTC, token="t1", req_id=n)
    assert len(frames) == 1
    renewed = frames(order, BTC, token="t2", req_id=9)  # a new session's token
    assert json.loads(renewed)["params"]["token"] == "t2" and len(frames) == 2
    bigger = replace(order, qty=BTC.qty("0.02"))
    assert json.loads(frames(bigger, BTC, token="t2", req_id=9))["params"]["order_qty"] == 0.02
    assert len(frames) == 3
    with pytest.raises(ValueError, match="at least one"):
        wr.AddOrderFrames(limit=0)


_AMENDS = st.tuples(
    st.one_of(st.none(), st.integers(-2, 10**12)),  # new qty, scaled (None: the order's own)
    st.one_of(st.none(), st.integers(-2, 10**9)),  # new price, scaled (None: unchanged)
    st.one_of(st.none(), st.sampled_from(["OABCDE-FGHIJ-KLMNOP", 'O"1', ""])),  # Kraken's id
    st.sampled_from(["c1", "6d1b345e28212e2ad834ecb18a068761", 'needs "escaping"', "\u00fc1"]),
    st.sampled_from(["t", "abc+/=", "tok\\en", ""]),
    st.booleans(),  # post_only
    st.sampled_from([(1, 8), (5, 0), (0, 3)]),  # price and qty precisions
    st.one_of(st.integers(0, 2**40), st.just("1")),  # req_id
)


@settings(max_examples=400, deadline=None)
@given(_AMENDS)
def test_the_one_pass_amend_order_frame_is_codec_s(case: tuple[Any, ...]) -> None:
    """The same JSON as ``codec.amend_order`` (the same keys, in the same order, the same
    exact numbers), and the same ``ValueError`` for what it refuses."""
    qty, price, order_id, cl_ord_id, token, post_only, (pp, qp), req_id = case
    inst = replace(BTC, price_precision=pp, qty_precision=qp)
    order = new_order(
        cl_ord_id="c0", instrument=inst, side="buy", order_type="limit", qty=7,
        price=5, strategy="s", now_ns=0, post_only=post_only,
    )  # fmt: skip
    order = replace(order, cl_ord_id=cl_ord_id, order_id=order_id)

    def general() -> bytes:
        return codec.amend_order(
            inst, token=token, req_id=req_id, order_id=order_id or None,
            cl_ord_id=None if order_id else cl_ord_id, qty=order.qty if qty is None else qty,
            limit_price=price, post_only=amend_post_only(order, price),
        )  # fmt: skip

    try:
        expected = general()
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            wr.amend_order_frame(order, inst, qty, price, token, req_id)
        return
    fast = wr.amend_order_frame(order, inst, qty, price, token, req_id)
    assert list(loads_exact(fast)["params"]) == list(loads_exact(expected)["params"])
    assert loads_exact(fast) == loads_exact(expected)
