"""The order lifecycle: the transition table, exchange reports, client ids."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import BotError, ProtocolError
from bot.execution.orders import (
    DONE_STATES,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    Order,
    OrderState,
    acknowledge,
    amend_failed,
    apply_execution,
    cancel_failed,
    canonical_cl_ord_id,
    fill_from_report,
    fill_price,
    is_valid_cl_ord_id,
    mark_unknown,
    new_cl_ord_id,
    new_order,
    request_amend,
    request_cancel,
    timestamp_ns,
    transition,
)
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import ExecutionReport, ExecutionsFrame, Fee, Parser

S = OrderState
BTC_USD = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
T0 = 1_700_000_000_000_000_000
CID = "0123456789abcdef0123456789abcdef"
TXID = "OU22CG-KLAF2-FWUDD7"


def order(state: OrderState = S.PENDING_NEW, **changes: Any) -> Order:
    base = new_order(
        cl_ord_id=CID,
        instrument=BTC_USD,
        side="buy",
        order_type="limit",
        qty=100_000_000,  # 1 BTC
        price=294_302,  # 29430.2
        strategy="grid",
        now_ns=T0,
    )
    return dataclasses.replace(base, state=state, **changes)


def wire(**fields: Any) -> ExecutionReport:
    """One report as Kraken sends it, through the real frame parser."""
    frame = {"channel": "executions", "type": "update", "sequence": 1, "data": [fields]}
    [event] = Parser().parse(json.dumps(frame))
    assert isinstance(event, ExecutionsFrame)
    [report] = event.reports
    return report


def rep(**fields: Any) -> ExecutionReport:
    """A report built directly; numbers given as text become ``Decimal``."""
    converted: dict[str, Any] = {
        k: Decimal(v) if k in _NUMBERS and v is not None else v for k, v in fields.items()
    }
    return ExecutionReport(**converted)


_NUMBERS = {"cum_qty", "cum_cost", "avg_price", "order_qty", "limit_price", "last_qty"}


# -- the table ---------------------------------------------------------------------------


def test_every_state_has_a_row_and_terminal_states_have_no_exit() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    assert {S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED} == TERMINAL_STATES
    assert TERMINAL_STATES | {S.LOST} == DONE_STATES
    assert {S.PENDING_NEW, S.UNKNOWN, S.NEW, S.PARTIALLY_FILLED} == OPEN_STATES


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(OrderState, OrderState)))
def test_transition_follows_the_table_exactly(src: OrderState, dst: OrderState) -> None:
    start = order(src)
    if dst in TRANSITIONS[src]:
        moved = transition(start, dst, now_ns=T0 + 5)
        assert moved.state is dst
        assert moved.updated_ns == T0 + 5
    else:
        with pytest.raises(IllegalTransition) as info:
            transition(start, dst, now_ns=T0 + 5)
        assert (info.value.from_state, info.value.to_state) == (src, dst)
        assert isinstance(info.value, BotError)


def test_key_moves_of_the_lifecycle() -> None:
    # The rules spelled out in the module docstring, as facts about the table.
    assert S.UNKNOWN in TRANSITIONS[S.PENDING_NEW]
    assert S.LOST in TRANSITIONS[S.UNKNOWN]
    assert S.LOST not in TRANSITIONS[S.PENDING_NEW]  # reconcile first: via UNKNOWN
    assert S.UNKNOWN not in TRANSITIONS[S.NEW]  # once acked, existence is known
    assert S.NEW not in TRANSITIONS[S.FILLED]
    assert S.NEW not in TRANSITIONS[S.PARTIALLY_FILLED]
    assert S.FILLED in TRANSITIONS[S.LOST]  # the exchange is the truth


def test_transition_refuses_identity_changes_and_shrinking_fills() -> None:
    live = order(S.PARTIALLY_FILLED, filled_qty=10)
    with pytest.raises(IllegalTransition, match="cl_ord_id"):
        transition(live, S.PARTIALLY_FILLED, now_ns=T0, cl_ord_id="other")
    with pytest.raises(IllegalTransition, match="updated_ns"):
        transition(live, S.PARTIALLY_FILLED, now_ns=T0, updated_ns=1)
    with pytest.raises(IllegalTransition, match="went down"):
        transition(live, S.PARTIALLY_FILLED, now_ns=T0, filled_qty=5)


def test_done_states_clear_in_flight_flags() -> None:
    live = order(S.NEW, cancel_pending=True, amend_pending=True)
    done = transition(live, S.CANCELED, now_ns=T0 + 1)
    assert (done.cancel_pending, done.amend_pending) == (False, False)


def test_new_order_validates_its_input() -> None:
    o = order()
    assert (o.state, o.created_ns, o.price_precision, o.qty_precision) == (S.PENDING_NEW, T0, 1, 8)
    assert o.is_open and not o.is_terminal and o.remaining_qty == 100_000_000
    for bad in ({"cl_ord_id": "x" * 19}, {"side": "long"}, {"qty": 0}):
        kwargs: dict[str, Any] = {
            "cl_ord_id": CID,
            "instrument": BTC_USD,
            "side": "buy",
            "order_type": "limit",
            "qty": 1,
            "price": 1,
            "strategy": "s",
            "now_ns": T0,
        }
        kwargs.update(bad)
        with pytest.raises(ProtocolError):
            new_order(**kwargs)


# -- client order ids --------------------------------------------------------------------


def test_new_cl_ord_id_is_a_short_uuid_and_deterministic_with_a_seed() -> None:
    a = new_cl_ord_id(random.Random(7).randbytes)
    b = new_cl_ord_id(random.Random(7).randbytes)
    c = new_cl_ord_id(random.Random(8).randbytes)
    assert a == b != c
    assert len(a) == 32 and int(a, 16) >= 0 and a == a.lower()
    assert a[12] == "4"  # version-4 UUID
    assert is_valid_cl_ord_id(a)
    assert len({new_cl_ord_id() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("6d1b345e-2821-40e2-ad83-4ecb18a06876", True),
        ("6d1b345e282140e2ad834ecb18a06876", True),
        ("my-order-1", True),
        ("x" * 18, True),
        ("x" * 19, False),
        ("", False),
        ("has space", False),
        ("ordre-né", False),
    ],
)
def test_is_valid_cl_ord_id(value: str, valid: bool) -> None:
    assert is_valid_cl_ord_id(value) is valid


# -- exchange reports --------------------------------------------------------------------


def test_kraken_doc_sequence_pending_new_new_trade_filled() -> None:
    o = order()
    o = apply_execution(
        o,
        wire(
            exec_type="pending_new",
            order_status="pending_new",
            order_id=TXID,
            cl_ord_id=CID,
            symbol="BTC/USD",
            side="buy",
            order_type="limit",
            order_qty=1.0,
            limit_price=29430.2,
            timestamp="2023-09-22T10:33:05.709950Z",
        ),
        now_ns=T0 + 1,
    )
    assert (o.state, o.order_id, o.updated_ns) == (S.PENDING_NEW, TXID, T0 + 1)
    # The doc's "new" event is sparse: no cl_ord_id, no quantities.
    o = apply_execution(
        o,
        wire(exec_type="new", order_status="new", order_id=TXID, order_userref=0),
        now_ns=T0 + 2,
    )
    assert o.state is S.NEW
    o = apply_execution(
        o,
        wire(
            exec_type="trade",
            order_status="partially_filled",
            order_id=TXID,
            exec_id="TKH2SE-M7IF5-CFI7LT",
            trade_id=365573,
            last_qty=0.25,
            last_price=29430.2,
            cost=7357.55,
            cum_qty=0.25,
            cum_cost=7357.55,
            avg_price=29430.2,
            liquidity_ind="m",
            fees=[{"asset": "USD", "qty": 1.91296}],
            timestamp="2023-09-22T10:33:06.000001Z",
        ),
        now_ns=T0 + 3,
    )
    assert (o.state, o.filled_qty, o.cum_cost) == (
        S.PARTIALLY_FILLED,
        25_000_000,
        Decimal("7357.55"),
    )
    assert o.avg_price == Decimal("29430.2")
    # Kraken: a trade can say partially_filled even when it completes the order; a separate
    # "filled" report closes it.
    o = apply_execution(
        o, rep(exec_type="filled", order_status="filled", cum_qty="1.0"), now_ns=T0 + 4
    )
    assert (o.state, o.filled_qty, o.remaining_qty) == (S.FILLED, 100_000_000, 0)


def test_duplicate_report_returns_the_same_object() -> None:
    report = rep(exec_type="trade", order_status="partially_filled", cum_qty="0.5", order_id=TXID)
    once = apply_execution(order(S.NEW, order_id=TXID), report, now_ns=T0 + 1)
    assert apply_execution(once, report, now_ns=T0 + 2) is once


def test_stale_fill_report_with_lower_cum_qty_is_ignored() -> None:
    o = order(S.PARTIALLY_FILLED, order_id=TXID, filled_qty=50_000_000)
    stale = rep(exec_type="trade", order_status="partially_filled", cum_qty="0.25")
    assert apply_execution(o, stale, now_ns=T0 + 1) is o
    # A stale report is ignored whole: its other fields are as old as its cum_qty.
    old_amend = rep(exec_type="restated", cum_qty="0.25", order_qty="2.0", limit_price="1.0")
    assert apply_execution(o, old_amend, now_ns=T0 + 1) is o


def test_report_behind_the_known_state_moves_nothing_back() -> None:
    o = order(S.PARTIALLY_FILLED, order_id=TXID, filled_qty=50_000_000)
    assert apply_execution(o, rep(exec_type="new", order_status="new"), now_ns=T0 + 1) is o


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_absorb_late_reports_without_error(terminal: OrderState) -> None:
    o = order(terminal, order_id=TXID, filled_qty=10)
    for report in (
        rep(exec_type="new", order_status="new"),
        rep(exec_type="pending_new", order_status="pending_new"),
        rep(exec_type="canceled", order_status="canceled"),
        rep(exec_type="trade", order_status="partially_filled", cum_qty="0.0000001"),
    ):
        assert apply_execution(o, report, now_ns=T0 + 1) is o


def test_terminal_order_still_learns_of_more_fills_but_keeps_its_state() -> None:
    o = order(S.CANCELED, order_id=TXID, filled_qty=10)
    late = rep(
        exec_type="trade", order_status="partially_filled", cum_qty="0.0000002", cum_cost="1"
    )
    merged = apply_execution(o, late, now_ns=T0 + 1)
    assert (merged.state, merged.filled_qty, merged.cum_cost) == (S.CANCELED, 20, Decimal(1))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("new", S.NEW),
        ("partially_filled", S.PARTIALLY_FILLED),
        ("filled", S.FILLED),
        ("canceled", S.CANCELED),
        ("expired", S.EXPIRED),
        ("pending_new", S.PENDING_NEW),
    ],
)
@pytest.mark.parametrize("start", [S.UNKNOWN, S.LOST])
def test_unknown_and_lost_resolve_to_whatever_the_exchange_reports(
    start: OrderState, status: str, expected: OrderState
) -> None:
    o = order(start, reason="AddOrder timed out")
    report = rep(exec_type="status", order_status=status, order_id=TXID, reason="why")
    resolved = apply_execution(o, report, now_ns=T0 + 1)
    assert (resolved.state, resolved.order_id, resolved.reason) == (expected, TXID, "why")


def test_unknown_proven_absent_becomes_lost_and_is_done() -> None:
    o = mark_unknown(order(), "AddOrder timed out", now_ns=T0 + 1)
    assert (o.state, o.reason, o.is_open) == (S.UNKNOWN, "AddOrder timed out", True)
    lost = transition(o, S.LOST, now_ns=T0 + 2, reason="not found at exchange")
    assert lost.state is S.LOST and not lost.is_open and not lost.is_terminal
    with pytest.raises(IllegalTransition):
        transition(order(), S.LOST, now_ns=T0)


def test_mark_unknown_never_overrides_a_fate_the_exchange_already_reported() -> None:
    filled = order(S.FILLED, order_id=TXID)
    assert mark_unknown(filled, "timeout", now_ns=T0 + 1) is filled
    live = order(S.NEW, order_id=TXID)
    assert mark_unknown(live, "timeout", now_ns=T0 + 1) is live


def test_acknowledge_after_the_feed_overtook_the_rest_answer() -> None:
    acked = acknowledge(order(), TXID, now_ns=T0 + 1)
    assert (acked.state, acked.order_id) == (S.NEW, TXID)
    filled = order(S.FILLED, order_id=TXID, filled_qty=100_000_000)
    assert acknowledge(filled, TXID, now_ns=T0 + 2) is filled
    with pytest.raises(ProtocolError):
        acknowledge(filled, "OTHER-TXID", now_ns=T0 + 2)


@pytest.mark.parametrize(
    "other", [{"cl_ord_id": "someone-else"}, {"order_id": "O-OTHER"}, {"symbol": "ETH/USD"}]
)
def test_report_for_another_order_is_a_protocol_error(other: dict[str, str]) -> None:
    with pytest.raises(ProtocolError):
        apply_execution(order(order_id=TXID), rep(exec_type="new", **other), now_ns=T0)


def test_trade_without_order_status_marks_partial_fill() -> None:
    o = order(S.NEW, order_id=TXID)
    traded = apply_execution(o, rep(exec_type="trade", cum_qty="0.1"), now_ns=T0 + 1)
    assert (traded.state, traded.filled_qty) == (S.PARTIALLY_FILLED, 10_000_000)


def test_cancel_flag_lifecycle() -> None:
    o = request_cancel(order(S.NEW, order_id=TXID), now_ns=T0 + 1)
    assert o.cancel_pending and o.state is S.NEW
    failed = cancel_failed(o, "EOrder:Unknown order", now_ns=T0 + 2)
    assert not failed.cancel_pending and failed.reason == "EOrder:Unknown order"
    done = apply_execution(
        o,
        rep(exec_type="canceled", order_status="canceled", reason="User requested"),
        now_ns=T0 + 3,
    )
    assert (done.state, done.cancel_pending, done.reason) == (S.CANCELED, False, "User requested")
    assert cancel_failed(done, "late", now_ns=T0 + 4) is done
    assert request_cancel(order(S.UNKNOWN), now_ns=T0).cancel_pending  # cancel by cl_ord_id
    for state in DONE_STATES:
        with pytest.raises(IllegalTransition):
            request_cancel(order(state), now_ns=T0)


def test_amend_flag_and_amended_report() -> None:
    o = request_amend(order(S.NEW, order_id=TXID), now_ns=T0 + 1)
    assert o.amend_pending
    amended = apply_execution(
        o, rep(exec_type="amended", order_qty="0.5", limit_price="29000.0"), now_ns=T0 + 2
    )
    assert (amended.qty, amended.price, amended.amend_pending) == (50_000_000, 290_000, False)
    assert amended.state is S.NEW
    assert not amend_failed(o, "EOrder:Invalid price", now_ns=T0 + 3).amend_pending
    for state in (S.PENDING_NEW, S.UNKNOWN, S.FILLED, S.LOST):
        with pytest.raises(IllegalTransition):
            request_amend(order(state), now_ns=T0)


# -- parsing and fills -------------------------------------------------------------------


def test_timestamps_are_exact_nanoseconds() -> None:
    assert timestamp_ns("2023-09-22T10:33:05.709950123Z") == 1_695_378_785_709_950_123
    assert timestamp_ns("2023-09-22T10:33:05.70995Z") == 1_695_378_785_709_950_000
    assert timestamp_ns("2023-09-22T12:33:05+02:00") == 1_695_378_785_000_000_000
    for bad in ("yesterday", "2023-09-22 10:33:05Z", "2023-02-30T00:00:00Z"):
        with pytest.raises(ProtocolError):
            timestamp_ns(bad)


@pytest.mark.parametrize(
    "report",
    [
        rep(exec_type="status", order_status="weird"),
        rep(exec_type="trade", cum_qty="0.123456789"),  # finer than qty_precision 8
        rep(exec_type="amended", limit_price="29430.25"),  # finer than price_precision 1
    ],
)
def test_reports_that_cannot_be_trusted_raise(report: ExecutionReport) -> None:
    with pytest.raises(ProtocolError):
        apply_execution(order(S.NEW, order_id=TXID), report, now_ns=T0)


def test_fill_from_trade_report() -> None:
    o = order(S.NEW, order_id=TXID)
    report = wire(
        exec_type="trade",
        order_status="partially_filled",
        exec_id="TKH2SE-M7IF5-CFI7LT",
        trade_id=365573,
        last_qty=0.25,
        last_price=29430.2,
        cost=7357.55,
        liquidity_ind="t",
        fees=[{"asset": "USD", "qty": 1.91296}],
        timestamp="2023-09-22T10:33:06Z",
    )
    fill = fill_from_report(o, report)
    assert fill is not None
    assert (fill.exec_id, fill.trade_id, fill.cl_ord_id, fill.order_id) == (
        "TKH2SE-M7IF5-CFI7LT",
        "365573",
        CID,
        TXID,
    )
    assert (fill.price, fill.qty, fill.price_precision, fill.qty_precision) == (
        294_302,
        25_000_000,
        1,
        8,
    )
    assert (fill.cost, fill.fee, fill.fee_asset, fill.liquidity) == (
        Decimal("7357.55"),
        Decimal("1.91296"),
        "USD",
        "t",
    )
    assert fill.ts_ns == 1_695_378_786_000_000_000
    assert fill_from_report(o, wire(exec_type="new")) is None
    with pytest.raises(ProtocolError):
        fill_from_report(o, wire(exec_type="trade", last_qty=0.1))  # no exec_id, no price
    two_assets = (Fee("USD", Decimal(1)), Fee("BTC", Decimal("0.00001")))
    with pytest.raises(ProtocolError, match="several assets"):
        fill_from_report(o, dataclasses.replace(report, fees=two_assets))
    summed = fill_from_report(
        o, dataclasses.replace(report, fees=(Fee("USD", Decimal("0.1")),) * 3)
    )
    assert summed is not None and summed.fee == Decimal("0.3")


def test_an_average_fill_price_finer_than_the_pair_is_kept_exact() -> None:
    """A taker order across levels: Kraken's ``last_price`` is the trade event's average,
    with more decimals than BTC/USD's 1. The report (fill and status change) is applied
    whole, the price exactly as sent, the long one through the exact decoder."""
    o = order(S.NEW, order_id=TXID)
    for text, scaled, precision in (
        ("29430.25", 2_943_025, 2),
        ("29430.2333333333333", 294_302_333_333_333_333, 13),  # 18 digits: no float carries it
    ):
        raw = (
            '{"channel":"executions","type":"update","sequence":3,"data":[{"exec_type":"trade",'
            f'"order_id":"{TXID}","order_status":"filled","exec_id":"T1","trade_id":7,'
            f'"last_qty":1.0,"last_price":{text},"cum_qty":1.0,"cost":29430.23,'
            '"liquidity_ind":"t","fees":[{"asset":"USD","qty":0.5}]}]}'
        )
        [frame] = Parser().parse(raw)
        assert isinstance(frame, ExecutionsFrame)
        [report] = frame.reports
        assert report.last_price == Decimal(text)
        new = apply_execution(o, report, now_ns=T0)
        fill = fill_from_report(new, report)
        assert new.state is S.FILLED and fill is not None
        assert (fill.price, fill.price_precision, fill.qty_precision) == (scaled, precision, 8)


def test_fill_price_is_the_pairs_scale_or_finer_never_rounded() -> None:
    assert fill_price(Decimal("29430.2"), 1) == (294_302, 1)
    assert fill_price(Decimal("29430.20"), 1) == (294_302, 1)  # a zero is no decimal
    assert fill_price(Decimal("29430"), 1) == (294_300, 1)
    assert fill_price(Decimal("29430.2"), 3) == (29_430_200, 3)
    assert fill_price(Decimal("29430.05"), 1) == (2_943_005, 2)
    assert fill_price(Decimal("3E+4"), 1) == (300_000, 1)
    for bad in ("0", "-1", "NaN", "Infinity", "1E-19"):
        with pytest.raises(ProtocolError):
            fill_price(Decimal(bad), 1)


# -- property: any delivery order of one true history ends in the same place -------------


def _history(fills: list[int], end: str) -> list[ExecutionReport]:
    reports = [
        ExecutionReport(exec_type="pending_new", order_status="pending_new", order_id=TXID),
        ExecutionReport(exec_type="new", order_status="new", order_id=TXID),
    ]
    cum = 0
    for qty in fills:
        cum += qty
        reports.append(
            ExecutionReport(
                exec_type="trade", order_status="partially_filled", cum_qty=Decimal(cum) / 10**8
            )
        )
    final = S.FILLED if end == "filled" else S.CANCELED
    reports.append(
        ExecutionReport(exec_type=end, order_status=final.value, cum_qty=Decimal(cum) / 10**8)
    )
    return reports


@settings(max_examples=200, deadline=None)
@given(
    fills=st.lists(st.integers(min_value=1, max_value=10**6), max_size=5),
    end=st.sampled_from(["filled", "canceled"]),
    data=st.data(),
)
def test_any_delivery_order_with_duplicates_converges(
    fills: list[int], end: str, data: st.DataObject
) -> None:
    history = _history(fills, end)
    delivered = data.draw(st.permutations(history + data.draw(st.lists(st.sampled_from(history)))))
    o = order()
    for i, report in enumerate(delivered):
        o = apply_execution(o, report, now_ns=T0 + i)
    assert o.state is (S.FILLED if end == "filled" else S.CANCELED)
    assert o.filled_qty == sum(fills)
    assert o.order_id == TXID
    again = o
    for report in delivered:
        again = apply_execution(again, report, now_ns=T0 + 10**6)
    assert again is o


def test_a_uuid_cl_ord_id_has_one_canonical_form() -> None:
    long_form = "6d1b345e-2821-40e2-ad83-4ecb18a06876"
    for form in (long_form, long_form.upper(), long_form.replace("-", "").upper()):
        assert canonical_cl_ord_id(form) == "6d1b345e282140e2ad834ecb18a06876"
    assert canonical_cl_ord_id(CID) == CID
    for text in ("My-Order-7", "ABC", "6d1b345e-2821-40e2-ad83"):
        assert canonical_cl_ord_id(text) == text
    placed = dataclasses.replace(order(), cl_ord_id="6d1b345e282140e2ad834ecb18a06876")
    report = ExecutionReport(exec_type="new", order_status="new", cl_ord_id=long_form.upper())
    assert apply_execution(placed, report, now_ns=T0).state is S.NEW  # the same order
    given = new_order(
        cl_ord_id=long_form, instrument=BTC_USD, side="buy", order_type="limit", qty=1,
        price=1, strategy="s", now_ns=T0,
    )  # fmt: skip
    assert given.cl_ord_id == "6d1b345e282140e2ad834ecb18a06876"


def test_new_cl_ord_id_is_the_version_4_uuid_of_its_random_bytes() -> None:
    import uuid

    for seed in range(2000):
        expected = uuid.UUID(bytes=random.Random(seed).randbytes(16), version=4).hex
        assert new_cl_ord_id(random.Random(seed).randbytes) == expected
    assert uuid.UUID(hex=new_cl_ord_id()).version == 4


_ID_CHARS = st.sampled_from("0123456789abcdefABCDEF-gxz_ ")


@given(
    st.text(_ID_CHARS, min_size=28, max_size=36)
    | st.text(st.sampled_from("0123456789abcdefABCDEF"), min_size=32, max_size=32)
    | st.uuids().map(lambda u: u.hex)
    | st.uuids().map(str)
)
def test_new_order_keeps_a_cl_ord_id_as_the_regex_rules_say(cid: str) -> None:
    """``new_order``'s check without a regex for 32 lowercase hex digits decides as the
    regexes do: the same canonical id, the same refusal."""
    try:
        made = new_order(
            cl_ord_id=cid, instrument=BTC_USD, side="buy", order_type="limit", qty=1, price=1,
            strategy="s", now_ns=0,
        )  # fmt: skip
    except ProtocolError:
        assert not is_valid_cl_ord_id(cid)
        return
    assert is_valid_cl_ord_id(cid) and made.cl_ord_id == canonical_cl_ord_id(cid)


def _every_field_set(state: OrderState) -> Order:
    """An order whose every field holds a value of its own, none its default: a field
    that ``orders._flagged`` forgot, or put in another's place, shows."""
    values: dict[str, object] = {}
    for i, f in enumerate(dataclasses.fields(Order), start=2):
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if f.name == "state":
            values[f.name] = state
        elif kind in ("str", "str | None"):
            values[f.name] = f"{f.name}-{i}"
        elif kind in ("int", "int | None"):
            values[f.name] = 1000 + i
        elif kind in ("Decimal", "Decimal | None"):
            values[f.name] = Decimal(i) / 7
        elif kind == "bool":
            values[f.name] = i % 2 == 0
        else:
            raise AssertionError(f"a field of a new type: {f.name}: {kind}")
    return Order(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", sorted(OPEN_STATES, key=str))
@pytest.mark.parametrize(("cancel", "amend"), [(False, False), (True, False), (False, True)])
def test_the_flags_are_set_as_transition_sets_them(
    state: OrderState, cancel: bool, amend: bool
) -> None:
    """``request_cancel`` and ``request_amend`` (``_flagged``, field by field) make the
    order ``transition`` makes, every other field kept."""
    order = dataclasses.replace(_every_field_set(state), cancel_pending=cancel, amend_pending=amend)
    assert request_cancel(order, now_ns=7) == dataclasses.replace(
        order, cancel_pending=True, updated_ns=7
    )
    if state in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
        assert request_amend(order, now_ns=9) == dataclasses.replace(
            order, amend_pending=True, updated_ns=9
        )
