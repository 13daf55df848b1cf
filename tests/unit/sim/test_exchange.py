"""The exchange facade: order life cycles, Kraken's errors, funds, fees and reports."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from bot.core.errors import InsufficientFunds, RejectedError
from bot.kraken.instruments import Instrument
from bot.sim.accounts import FEE_ACCOUNT, MARKET_ACCOUNT, FeeSchedule
from bot.sim.exchange import (
    REASON_AMEND_BELOW_FILLED,
    REASON_EXPIRED,
    REASON_FOK,
    REASON_IOC,
    REASON_NO_LIQUIDITY,
    REASON_POST_ONLY,
    REASON_STP,
    REASON_USER,
    Exchange,
)
from bot.sim.market_data import MarketAdd, MarketTake
from bot.sim.matching import OrderRequest, Result
from bot.sim.pairs import default_instruments, instrument

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
BTC = instrument("BTC/USD")
TXID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")


def px(text: str) -> int:
    return BTC.price(text)


def qty(text: str) -> int:
    return BTC.qty(text)


def limit(side: str, q: str, p: str, **kw: object) -> OrderRequest:
    return OrderRequest("BTC/USD", side, "limit", qty(q), px(p), **kw)  # type: ignore[arg-type]


def market(side: str, q: str, **kw: object) -> OrderRequest:
    return OrderRequest("BTC/USD", side, "market", qty(q), **kw)  # type: ignore[arg-type]


def kinds(result: Result) -> list[str]:
    return [e.exec_type for e in result.executions]


def make_exchange(**kw: object) -> Exchange:
    ex = Exchange(default_instruments(("BTC/USD", "ETH/USD")).values(), seed=7, **kw)  # type: ignore[arg-type]
    for account in ("alice", "bob"):
        ex.deposit(account, "USD", "100000")
        ex.deposit(account, "BTC", "10")
    return ex


_refs = iter(range(1, 10**9))


def seed(ex: Exchange, side: str, *levels: tuple[str, str]) -> None:
    actions = [MarketAdd("BTC/USD", next(_refs), side, px(p), qty(q)) for p, q in levels]
    ex.apply_market(actions, T0)


@pytest.fixture
def ex() -> Exchange:
    exchange = make_exchange()
    seed(exchange, "sell", ("65000.0", "0.5"), ("65001.0", "0.5"))
    seed(exchange, "buy", ("64999.0", "0.5"), ("64998.0", "0.5"))
    return exchange


def usd(ex: Exchange, account: str) -> Decimal:
    return ex.balances(account).get("USD", Decimal(0))


def btc(ex: Exchange, account: str) -> Decimal:
    return ex.balances(account).get("BTC", Decimal(0))


# ----------------------------------------------------------------------------- placing


def test_resting_limit_order_is_pending_new_then_new_and_holds_cost_plus_taker_fee(
    ex: Exchange,
) -> None:
    res = ex.add_order(
        "alice",
        limit(
            "buy",
            "0.1",
            "64000.0",
            cl_ord_id="c1",
        ),
        T0 + 1,
    )
    assert kinds(res) == ["pending_new", "new"]
    assert [e.order.order_status for e in res.executions] == ["pending_new", "new"]
    assert res.executions[0].order.status == "pending"
    assert res.order is not None and TXID.fullmatch(res.order.txid)
    assert res.order.status == "open" and res.order.opentm == T0 + 1
    assert res.book == (("BTC/USD", "bid", px("64000.0"), qty("0.1")),)
    assert ex.holds("alice") == {"USD": Decimal("6425.6")}  # 6400 + 0.40 %
    assert [o.txid for o in ex.open_orders("alice")] == [res.order.txid]
    assert ex.order_by_cl_ord_id("alice", "c1") == res.order


def test_user_buy_through_the_best_ask_fills_against_the_displayed_book(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "0.8", "65001.0"), T0 + 1)
    assert kinds(res) == ["pending_new", "new", "trade", "trade", "filled"]
    fills = [e.fill for e in res.executions if e.fill is not None]
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [
        (px("65000.0"), qty("0.5"), "t"),
        (px("65001.0"), qty("0.3"), "t"),
    ]
    assert [f.cost for f in fills] == [Decimal("32500.0"), Decimal("19500.3")]
    assert [f.fee for f in fills] == [Decimal("130.00000"), Decimal("78.00120")]
    assert [f.fee_asset for f in fills] == ["USD", "USD"]
    # each trade report carries the order's cumulative state at that fill
    trades = [e.order for e in res.executions if e.exec_type == "trade"]
    assert [(o.filled, o.order_status) for o in trades] == [
        (qty("0.5"), "partially_filled"),
        (qty("0.8"), "filled"),
    ]
    assert res.order is not None and res.order.status == "closed"
    assert res.order.cost == Decimal("52000.3") and res.order.fee == Decimal("208.00120")
    assert res.order.avg_price == Decimal("65000.37500")
    assert [(t.side, t.price, t.qty, t.ord_type, t.trade_id) for t in res.trades] == [
        ("buy", px("65000.0"), qty("0.5"), "limit", 1),
        ("buy", px("65001.0"), qty("0.3"), "limit", 2),
    ]
    assert res.book == (
        ("BTC/USD", "ask", px("65000.0"), 0),
        ("BTC/USD", "ask", px("65001.0"), qty("0.2")),
    )
    assert usd(ex, "alice") == Decimal(100000) - Decimal("52000.3") - Decimal("208.0012")
    assert btc(ex, "alice") == Decimal("10.8")
    assert ex.holds("alice") == {}
    assert ex.balances(FEE_ACCOUNT) == {"USD": Decimal("208.0012")}
    assert [f.exec_id for f in ex.trades("alice")] == [f.exec_id for f in fills]
    assert all(re.fullmatch(r"T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", f.exec_id) for f in fills)
    assert ex.closed_orders("alice")[0].trades == tuple(f.exec_id for f in fills)


def test_crossing_limit_rests_its_remainder_at_its_price(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "1.5", "65001.0"), T0 + 1)
    assert kinds(res)[-1] == "trade"
    assert res.order is not None and res.order.order_status == "partially_filled"
    assert ex.depth("BTC/USD", 1) == ([(px("65001.0"), qty("0.5"))], [])
    # the hold is now for the 0.5 left at 65001.0 plus its taker fee
    assert ex.holds("alice") == {"USD": Decimal("32630.502")}


def test_resting_order_hit_by_market_flow_pays_the_maker_fee(ex: Exchange) -> None:
    res = ex.add_order("bob", limit("sell", "0.2", "64999.5"), T0 + 1)
    assert res.order is not None
    txid = res.order.txid
    hit = ex.apply_market([MarketTake("BTC/USD", "buy", qty("0.3"))], T0 + 2)
    assert [(e.exec_type, e.order.txid) for e in hit.executions] == [
        ("trade", txid),
        ("filled", txid),
    ]
    fill = hit.executions[0].fill
    assert fill is not None and fill.liquidity == "m"
    assert fill.fee == Decimal("32.49975")  # 0.25 % of 12999.9
    assert [(t.side, t.ord_type, t.price) for t in hit.trades] == [
        ("buy", "market", px("64999.5")),
        ("buy", "market", px("65000.0")),
    ]
    assert usd(ex, "bob") == Decimal(100000) + Decimal("12999.9") - Decimal("32.49975")
    assert btc(ex, "bob") == Decimal("9.8")


def test_market_order_sweeps_levels_and_cancels_what_the_book_cannot_fill(ex: Exchange) -> None:
    res = ex.add_order("alice", market("buy", "1.2"), T0 + 1)
    assert kinds(res) == ["pending_new", "new", "trade", "trade", "canceled"]
    assert res.executions[-1].reason == REASON_NO_LIQUIDITY
    assert res.order is not None and res.order.filled == qty("1.0")
    assert res.order.price is None and res.order.time_in_force == "IOC"
    assert ex.holds("alice") == {}
    assert ex.depth("BTC/USD")[1] == []


def test_market_sell(ex: Exchange) -> None:
    res = ex.add_order("alice", market("sell", "0.7"), T0 + 1)
    assert kinds(res)[-1] == "filled"
    assert btc(ex, "alice") == Decimal("9.3")
    assert [t.side for t in res.trades] == ["sell", "sell"]


def test_market_buy_needs_the_walked_cost_plus_fee(ex: Exchange) -> None:
    ex.deposit("carol", "USD", "32629.99")  # 0.5 at 65000 = 32500 + 130 fee = 32630
    with pytest.raises(InsufficientFunds):
        ex.add_order("carol", market("buy", "0.5"), T0 + 1)
    ex.deposit("carol", "USD", "0.01")
    res = ex.add_order("carol", market("buy", "0.5"), T0 + 1)
    assert res.order is not None and res.order.status == "closed"
    assert usd(ex, "carol") == 0


def test_fee_in_base_is_taken_from_the_bought_base(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "0.5", "65000.0", fee_in_base=True), T0 + 1)
    assert res.order is not None and res.order.fee_asset == "BTC"
    assert res.order.fee == Decimal("0.00200000")
    assert res.order.oflags == "fcib"
    assert btc(ex, "alice") == Decimal("10.498")
    assert usd(ex, "alice") == Decimal(100000) - Decimal(32500)
    assert ex.balances(FEE_ACCOUNT) == {"BTC": Decimal("0.002")}


def test_post_only_that_would_take_is_accepted_then_cancelled(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "0.1", "65000.0", post_only=True), T0 + 1)
    assert kinds(res) == ["pending_new", "canceled"]
    assert res.executions[-1].reason == REASON_POST_ONLY
    assert res.order is not None and res.order.status == "canceled" and not res.trades
    assert res.order.reason == REASON_POST_ONLY and res.order.oflags == "post,fciq"
    assert ex.holds("alice") == {} and res.book == ()
    rested = ex.add_order("alice", limit("buy", "0.1", "64999.9", post_only=True), T0 + 2)
    assert kinds(rested) == ["pending_new", "new"]


def test_ioc_fills_what_it_can_and_cancels_the_rest(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "0.7", "65000.0", time_in_force="IOC"), T0 + 1)
    assert kinds(res) == ["pending_new", "new", "trade", "canceled"]
    assert res.executions[-1].reason == REASON_IOC
    assert res.order is not None and res.order.filled == qty("0.5")
    assert ex.open_orders("alice") == [] and ex.holds("alice") == {}


def test_fok_fills_entirely_or_not_at_all(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "1.1", "65001.0", time_in_force="FOK"), T0 + 1)
    assert kinds(res) == ["pending_new", "canceled"]
    assert res.executions[-1].reason == REASON_FOK and not res.trades and res.book == ()
    res = ex.add_order("alice", limit("buy", "1.0", "65001.0", time_in_force="FOK"), T0 + 2)
    assert kinds(res)[-1] == "filled"


def test_gtd_expires_when_time_is_advanced(ex: Exchange) -> None:
    req = limit("buy", "0.1", "60000.0", time_in_force="GTD", expire_at=T0 + 10 * SEC)
    res = ex.add_order("alice", req, T0)
    assert res.order is not None and res.order.expire_at == T0 + 10 * SEC
    assert ex.advance(T0 + 10 * SEC - 1).executions == ()
    done = ex.advance(T0 + 10 * SEC)
    assert kinds(done) == ["expired"]
    assert done.executions[0].reason == REASON_EXPIRED
    assert done.executions[0].order.order_status == "expired"
    assert done.book == (("BTC/USD", "bid", px("60000.0"), 0),)
    assert ex.open_orders("alice") == [] and ex.holds("alice") == {}
    assert ex.closed_orders("alice")[0].status == "expired"


def test_due_expiries_fire_before_any_call(ex: Exchange) -> None:
    req = limit("sell", "0.1", "70000.0", time_in_force="GTD", expire_at=T0 + SEC)
    ex.add_order("alice", req, T0)
    res = ex.add_order("alice", limit("sell", "0.1", "70000.0"), T0 + 2 * SEC)
    assert kinds(res) == ["expired", "pending_new", "new"]


def test_validate_only_changes_nothing(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "0.1", "65000.0", validate=True), T0 + 1)
    assert res == Result()
    assert ex.open_orders("alice") == [] and ex.depth("BTC/USD", 1)[1][0][1] == qty("0.5")
    with pytest.raises(InsufficientFunds):
        ex.add_order("alice", limit("buy", "100", "65000.0", validate=True), T0 + 1)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (OrderRequest("XBT/JPY", "buy", "limit", 1, 1), "EQuery:Unknown asset pair"),
        (OrderRequest("BTC/USD", "hold", "limit", 10**6, 10), "EGeneral:Invalid arguments:type"),
        (OrderRequest("BTC/USD", "buy", "stop", 10**6, 10), "EGeneral:Invalid arguments:ordertype"),
        (OrderRequest("BTC/USD", "buy", "limit", 0, 10), "EGeneral:Invalid arguments:volume"),
        (OrderRequest("BTC/USD", "buy", "limit", 10**6), "EGeneral:Invalid arguments:price"),
        (limit("buy", "0.1", "0.0"), "EGeneral:Invalid arguments:price"),
        (limit("buy", "0.1", "100", time_in_force="DAY"), "EGeneral:Invalid arguments:timeinforce"),
        (market("buy", "0.1", time_in_force="FOK"), "EGeneral:Invalid arguments:timeinforce"),
        (limit("buy", "0.1", "100", time_in_force="GTD"), "EGeneral:Invalid arguments:expiretm"),
        (
            limit("buy", "0.1", "100", time_in_force="GTD", expire_at=T0),
            "EGeneral:Invalid arguments:expiretm",
        ),
        (market("buy", "0.1", post_only=True), "EGeneral:Invalid arguments:oflags"),
        (
            limit("buy", "0.1", "100", post_only=True, time_in_force="IOC"),
            "EGeneral:Invalid arguments:oflags",
        ),
        (limit("buy", "0.1", "100", stptype="cancel-all"), "EGeneral:Invalid arguments:stptype"),
        (limit("buy", "0.1", "100", cl_ord_id="x" * 19), "EGeneral:Invalid arguments:cl_ord_id"),
        (
            limit("buy", "0.1", "100", cl_ord_id="a", userref=1),
            "EGeneral:Invalid arguments:cl_ord_id",
        ),
        (limit("buy", "0.1", "100", userref=2**31), "EGeneral:Invalid arguments:userref"),
        (limit("buy", "0.00009", "65000.0"), "EOrder:Order minimum not met"),
        (limit("buy", "0.0001", "1000.0"), "EOrder:Cost minimum not met"),
        (limit("buy", "2", "65000.0"), "EOrder:Insufficient funds"),
        (limit("sell", "10.1", "65000.0"), "EOrder:Insufficient funds"),
        (market("sell", "10.1"), "EOrder:Insufficient funds"),
    ],
)
def test_rejections_use_krakens_strings(req: OrderRequest, code: str) -> None:
    ex = make_exchange()
    seed(ex, "sell", ("65000.0", "5"))
    ex.deposit("alice", "USD", "-70000")  # 30000 left
    before = (ex.balances("alice"), ex.depth("BTC/USD"))
    with pytest.raises(RejectedError) as info:
        ex.add_order("alice", req, T0 + 1)
    assert info.value.code == code
    assert (ex.balances("alice"), ex.depth("BTC/USD")) == before
    assert ex.open_orders("alice") == []


def test_tick_size_is_checked_on_add_and_amend() -> None:
    coarse = Instrument("X/USD", "X", "USD", 2, 4, price_increment=5, qty_min=1)
    ex = Exchange([coarse], seed=1)
    ex.deposit("alice", "USD", "1000")
    with pytest.raises(RejectedError) as info:
        ex.add_order("alice", OrderRequest("X/USD", "buy", "limit", 10**4, 1001), T0)
    assert info.value.code == "EOrder:Tick size check failed"
    res = ex.add_order("alice", OrderRequest("X/USD", "buy", "limit", 10**4, 1000), T0)
    assert res.order is not None
    with pytest.raises(RejectedError) as info:
        ex.amend_order("alice", T0, txid=res.order.txid, limit_price=1003)
    assert info.value.code == "EOrder:Tick size check failed"
    ex.amend_order("alice", T0, txid=res.order.txid, limit_price=1005)


def test_insufficient_funds_is_its_own_class(ex: Exchange) -> None:
    with pytest.raises(InsufficientFunds):
        ex.add_order("nobody", limit("buy", "0.1", "60000.0"), T0)


def test_funds_held_by_open_orders_are_not_available_twice(ex: Exchange) -> None:
    ex.add_order("alice", limit("sell", "6", "70000.0"), T0)
    with pytest.raises(InsufficientFunds):
        ex.add_order("alice", limit("sell", "4.1", "70000.0"), T0)
    ex.add_order("alice", limit("sell", "4", "70000.0"), T0)


def test_cl_ord_id_is_unique_among_open_orders_only(ex: Exchange) -> None:
    uuid = "6d1b345e-2821-40e2-ad83-4ecb18a06876"
    ex.add_order("alice", limit("buy", "0.1", "60000.0", cl_ord_id=uuid), T0)
    with pytest.raises(RejectedError) as info:
        ex.add_order("alice", limit("buy", "0.1", "60000.0", cl_ord_id=uuid), T0)
    assert info.value.code == "EGeneral:Invalid arguments:cl_ord_id"
    ex.add_order("bob", limit("buy", "0.1", "60000.0", cl_ord_id=uuid), T0)  # other account
    ex.cancel_order("alice", T0, cl_ord_id=uuid)
    again = ex.add_order("alice", limit("buy", "0.1", "60000.0", cl_ord_id=uuid), T0)
    assert again.order is not None and again.order.cl_ord_id == uuid


def test_open_orders_limit_per_pair_counts_resting_orders_only() -> None:
    ex = make_exchange(open_orders_limit=2)
    seed(ex, "sell", ("65000.0", "5"))
    ex.add_order("alice", limit("buy", "0.1", "60000.0"), T0)
    ex.add_order("alice", limit("buy", "0.1", "60000.0"), T0)
    with pytest.raises(RejectedError) as info:
        ex.add_order("alice", limit("buy", "0.1", "60000.0"), T0)
    assert info.value.code == "EOrder:Orders limit exceeded"
    ex.add_order("alice", market("buy", "0.1"), T0)  # never rests: allowed
    ex.add_order("bob", limit("buy", "0.1", "60000.0"), T0)  # per account
    ex.deposit("alice", "ETH", "1")
    eth = OrderRequest("ETH/USD", "sell", "limit", 10**8, 400000)
    ex.add_order("alice", eth, T0)  # per pair


# ----------------------------------------------------------------------------- amend


def _rest(ex: Exchange, account: str, q: str, p: str, **kw: object) -> str:
    res = ex.add_order(account, limit("buy", q, p, **kw), T0)
    assert res.order is not None
    return res.order.txid


def _queue(ex: Exchange, p: str) -> list[str]:
    return [o.account for o in ex.book("BTC/USD").queue("bid", px(p))]


def test_amend_shrinking_keeps_priority(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.3", "64000.0")
    _rest(ex, "bob", "0.3", "64000.0")
    res = ex.amend_order("alice", T0 + 1, txid=a, order_qty=qty("0.2"))
    assert kinds(res) == ["amended"]
    assert res.order is not None and res.order.amended and res.order.qty == qty("0.2")
    assert _queue(ex, "64000.0") == ["alice", "bob"]
    assert res.book == (("BTC/USD", "bid", px("64000.0"), qty("0.5")),)
    assert ex.holds("alice") == {"USD": Decimal("12851.2")}


def test_amend_growing_or_repricing_loses_priority(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.3", "64000.0", cl_ord_id="mine")
    _rest(ex, "bob", "0.3", "64000.0")
    ex.amend_order("alice", T0 + 1, cl_ord_id="mine", order_qty=qty("0.4"))
    assert _queue(ex, "64000.0") == ["bob", "alice"]
    b2 = _rest(ex, "bob", "0.1", "63000.0")
    ex.amend_order("alice", T0 + 2, txid=a, limit_price=px("63000.0"))
    ex.amend_order("alice", T0 + 3, txid=a, limit_price=px("64000.0"))
    assert _queue(ex, "64000.0") == ["bob", "alice"]
    assert _queue(ex, "63000.0") == ["bob"]
    assert b2 in [o.txid for o in ex.open_orders("bob")]


def test_amend_to_a_crossing_price_trades_as_taker(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.3", "64000.0")
    res = ex.amend_order("alice", T0 + 1, txid=a, limit_price=px("65000.0"))
    assert kinds(res) == ["amended", "trade", "filled"]
    fill = res.executions[1].fill
    assert fill is not None and fill.liquidity == "t" and fill.price == px("65000.0")


def test_a_post_only_orders_own_flag_does_not_guard_an_amend(ex: Exchange) -> None:
    """Kraken's AmendOrder ``post_only`` defaults to false and only with it true is a
    price that would take refused (OpenAPI ``amend.yaml``): the order's own ``post``
    flag is not documented to guard an amend, so the simulator does not let it."""
    a = _rest(ex, "alice", "0.3", "64000.0", post_only=True)
    with pytest.raises(RejectedError) as info:
        ex.amend_order("alice", T0 + 1, txid=a, limit_price=px("65000.0"), post_only=True)
    assert info.value.code == "EOrder:Post only order"
    res = ex.amend_order("alice", T0 + 2, txid=a, limit_price=px("65000.0"))
    assert kinds(res) == ["amended", "trade", "filled"]


def test_amend_below_the_filled_qty_cancels_the_rest(ex: Exchange) -> None:
    res = ex.add_order("alice", limit("buy", "0.7", "65000.0"), T0)
    assert res.order is not None and res.order.filled == qty("0.5")
    done = ex.amend_order("alice", T0 + 1, txid=res.order.txid, order_qty=qty("0.4"))
    assert kinds(done) == ["canceled"]
    assert done.executions[0].reason == REASON_AMEND_BELOW_FILLED
    assert done.order is not None and done.order.filled == qty("0.5")
    assert ex.holds("alice") == {}


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"order_qty": qty("0.00001")}, "EOrder:Order minimum not met"),
        ({"limit_price": px("1.0")}, "EOrder:Cost minimum not met"),
        ({"order_qty": qty("5")}, "EOrder:Insufficient funds"),
        ({"limit_price": px("65000.0"), "post_only": True}, "EOrder:Post only order"),
        ({}, "EGeneral:Invalid arguments:order_qty"),
        ({"order_qty": 0}, "EGeneral:Invalid arguments:order_qty"),
    ],
)
def test_amend_rejections_leave_the_order_alone(
    ex: Exchange, kw: dict[str, int | bool], code: str
) -> None:
    ex.deposit("alice", "USD", "-80000")
    a = _rest(ex, "alice", "0.3", "64000.0")
    before = ex.order("alice", a)
    with pytest.raises(RejectedError) as info:
        ex.amend_order("alice", T0 + 1, txid=a, **kw)  # type: ignore[arg-type]
    assert info.value.code == code
    assert ex.order("alice", a) == before


def test_amend_unknown_or_foreign_order(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.3", "64000.0")
    for account, txid in (("alice", "OAAAAA-BBBBB-CCCCCC"), ("bob", a)):
        with pytest.raises(RejectedError) as info:
            ex.amend_order(account, T0, txid=txid, order_qty=qty("0.2"))
        assert info.value.code == "EOrder:Unknown order"


# ----------------------------------------------------------------------------- cancel


def test_cancel_by_txid_cl_ord_id_and_userref(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.1", "60000.0")
    _rest(ex, "alice", "0.1", "60000.0", cl_ord_id="abc")
    _rest(ex, "alice", "0.1", "60000.0", userref=7)
    _rest(ex, "alice", "0.1", "60001.0", userref=7)
    res = ex.cancel_order("alice", T0 + 1, txid=a)
    assert res.count == 1 and kinds(res) == ["canceled"]
    assert res.executions[0].reason == REASON_USER
    assert res.executions[0].order.closetm == T0 + 1
    assert ex.cancel_order("alice", T0 + 1, cl_ord_id="abc").count == 1
    res = ex.cancel_order("alice", T0 + 1, userref=7)
    assert res.count == 2
    assert set(res.book) == {
        ("BTC/USD", "bid", px("60000.0"), 0),
        ("BTC/USD", "bid", px("60001.0"), 0),
    }
    assert ex.open_orders("alice") == [] and ex.holds("alice") == {}
    assert [o.status for o in ex.closed_orders("alice")] == ["canceled"] * 4
    assert ex.cancel_order("alice", T0, userref=8).count == 0


def test_cancel_unknown_closed_or_foreign_order_is_unknown(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.1", "60000.0")
    with pytest.raises(RejectedError) as info:
        ex.cancel_order("bob", T0, txid=a)
    assert info.value.code == "EOrder:Unknown order"
    ex.cancel_order("alice", T0, txid=a)
    with pytest.raises(RejectedError):
        ex.cancel_order("alice", T0, txid=a)
    with pytest.raises(RejectedError) as info:
        ex.cancel_order("alice", T0, txid=a, userref=1)
    assert info.value.code == "EGeneral:Invalid arguments:txid"


def test_cancel_all_with_a_reason(ex: Exchange) -> None:
    _rest(ex, "alice", "0.1", "60000.0")
    _rest(ex, "alice", "0.1", "60000.0")
    _rest(ex, "bob", "0.1", "60000.0")
    res = ex.cancel_all("alice", T0 + 5, reason="Dead man's switch")
    assert res.count == 2 and {e.reason for e in res.executions} == {"Dead man's switch"}
    assert res.book == (("BTC/USD", "bid", px("60000.0"), qty("0.1")),)
    assert ex.cancel_all("alice", T0 + 6).count == 0
    assert len(ex.open_orders("bob")) == 1


# ----------------------------------------------------------------------------- STP, lookups


def test_self_trade_prevention_cancel_newest_by_default(ex: Exchange) -> None:
    mine = _rest(ex, "alice", "0.1", "64999.5")
    res = ex.add_order("alice", limit("sell", "0.1", "64999.0"), T0 + 1)
    assert kinds(res) == ["pending_new", "new", "canceled"]
    assert res.executions[-1].reason == REASON_STP and not res.trades
    assert [o.txid for o in ex.open_orders("alice")] == [mine]


def test_self_trade_prevention_cancel_oldest(ex: Exchange) -> None:
    mine = _rest(ex, "alice", "0.1", "64999.5")
    req = limit("sell", "0.2", "64999.0", stptype="cancel-oldest")
    res = ex.add_order("alice", req, T0 + 1)
    assert kinds(res) == ["pending_new", "new", "canceled", "trade", "filled"]
    assert res.executions[2].order.txid == mine and res.executions[2].reason == REASON_STP
    assert res.order is not None and res.order.status == "closed"
    assert ex.open_orders("alice") == []


def test_self_trade_prevention_cancel_both(ex: Exchange) -> None:
    _rest(ex, "alice", "0.1", "64999.5")
    res = ex.add_order("alice", limit("sell", "0.2", "64999.0", stptype="cancel-both"), T0 + 1)
    assert kinds(res) == ["pending_new", "new", "canceled", "canceled"]
    assert ex.open_orders("alice") == []


def test_lookups_are_per_account(ex: Exchange) -> None:
    a = _rest(ex, "alice", "0.1", "60000.0", cl_ord_id="x1")
    assert ex.order("alice", a) is not None
    assert ex.order("bob", a) is None
    assert ex.order_by_cl_ord_id("bob", "x1") is None
    ex.cancel_order("alice", T0, txid=a)
    closed = ex.order_by_cl_ord_id("alice", "x1")
    assert closed is not None and closed.status == "canceled"
    assert ex.order_by_cl_ord_id("alice", "nope") is None


def test_market_account_gets_no_reports_and_fees_are_conserved(ex: Exchange) -> None:
    assets = ("USD", "BTC")
    before = {a: ex.accounts.asset_sum(a) for a in assets}
    ex.add_order("alice", limit("buy", "0.7", "65001.0"), T0)
    ex.add_order("bob", limit("sell", "0.3", "64990.0"), T0)
    res = ex.apply_market([MarketTake("BTC/USD", "sell", qty("2"))], T0 + 1)
    assert all(e.order.account != MARKET_ACCOUNT for e in res.executions)
    assert {a: ex.accounts.asset_sum(a) for a in assets} == before
    assert ex.balances(FEE_ACCOUNT)["USD"] > 0


def test_per_account_fee_schedule(ex: Exchange) -> None:
    ex.accounts.set_fees("alice", FeeSchedule(Decimal(0), Decimal(10)))
    res = ex.add_order("alice", limit("buy", "0.1", "65000.0"), T0)
    assert res.order is not None and res.order.fee == Decimal("6.50000")


def test_same_seed_and_calls_give_identical_results() -> None:
    def run(seed_: int) -> list[Result]:
        ex = Exchange(default_instruments(("BTC/USD",)).values(), seed=seed_)
        ex.deposit("alice", "USD", "100000")
        out = [ex.apply_market([MarketAdd("BTC/USD", 1, "sell", px("65000.0"), qty("1"))], T0)]
        out.append(ex.add_order("alice", limit("buy", "0.4", "65000.0"), T0 + 1))
        out.append(ex.add_order("alice", limit("buy", "0.4", "64000.0"), T0 + 2))
        return out

    assert run(3) == run(3)
    assert run(3)[1].order != run(4)[1].order
