"""The report core: every figure on small runs checked by hand, and properties of PnL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.execution.orders import OrderState
from bot.kraken.instruments import Instrument
from bot.research.figures import Figures, Report, Scope, build_report
from bot.research.record import BadInput, Mark, QuoteSample, RunRecord
from tests.unit.research.helpers import (
    BTC,
    ETH,
    ETHBTC,
    MINUTE,
    T0,
    UNIT,
    S,
    cid,
    fill,
    order,
    traded,
)

D = Decimal


def figures(report: Report, strategy: str | None, symbol: str | None, quote: str) -> Figures:
    for f in report.figures:
        if f.scope == Scope(quote, strategy, symbol):
            return f
    raise AssertionError(f"no figures for {strategy} {symbol} {quote}: {report.figures}")


def test_a_round_trip_by_hand() -> None:
    buy, f1 = traded(BTC, "buy", "1", "30000.0", ts=T0 + 10 * S, fee="0.1")
    sell, f2 = traded(BTC, "sell", "1", "30100.0", ts=T0 + 60 * S, fee="0.1", liquidity="t")
    left = order(BTC, "sell", "1", "30200.0", state=OrderState.CANCELED,
                 created=T0 + 70 * S, updated=T0 + 90 * S)  # fmt: skip
    rejected = order(BTC, "buy", "1", "1.0", state=OrderState.REJECTED, created=T0 + 80 * S)
    report = build_report(RunRecord("t", [buy, sell, left, rejected], [f1, f2]))
    assert (report.start_ns, report.end_ns) == (T0 + 10 * S, T0 + 90 * S)
    line = figures(report, "mm", "BTC/USD", "USD")
    assert line.realised == D("99.8")  # 100 of price difference, 0.2 of fees
    assert line.unrealised == 0 and line.pnl == D("99.8")
    assert line.fees == D("0.2")
    assert line.volume_base == 2 and line.volume_quote == D("60100")
    assert (line.orders, line.fills, line.maker_fills) == (4, 2, 1)
    assert dict(line.orders_by_state) == {"canceled": 1, "filled": 2, "rejected": 1}
    assert line.fill_ratio == D("0.666667")  # 2 filled of 3 that reached the book
    assert line.qty_fill_ratio == D("0.666667")
    assert line.maker_share == D("0.499168")  # 30000 of 60100
    assert line.max_drawdown == D("0.1")  # the first fee, before any gain
    assert line.drawdown_trough_ns == T0 + 10 * S
    assert line.inventory == 0 and line.inventory_max_long == 1 and line.inventory_max_short == 0
    # 1 BTC at 30000 held from 10 s to 60 s of an 80 s window
    assert line.exposure_max == 30000 and line.exposure == 0
    assert line.exposure_mean == D("18750")
    assert line.time_in_market == D("0.625")
    total = figures(report, None, None, "USD")
    assert (total.pnl, total.fees, total.orders) == (line.pnl, line.fees, line.orders)


def test_marks_value_the_open_position_and_make_the_drawdown() -> None:
    o, f = traded(UNIT, "buy", "2", "100", ts=T0)
    marks = [Mark(T0 + 1 * S, D(110)), Mark(T0 + 2 * S, D(90)), Mark(T0 + 3 * S, D(105))]
    report = build_report(RunRecord("t", [o], [f], marks={"XYZ/USD": marks}))
    line = figures(report, "mm", "XYZ/USD", "USD")
    assert report.valued_at == {"XYZ/USD": "marks"}
    assert line.realised == 0 and line.unrealised == 10 and line.pnl == 10  # 2 * (105 - 100)
    assert line.max_drawdown == 40  # from +20 at 110 to -20 at 90
    assert (line.drawdown_peak_ns, line.drawdown_trough_ns) == (T0 + 1 * S, T0 + 2 * S)
    assert line.inventory == 2
    assert line.exposure == 210 and line.exposure_max == 220
    prices = report.charts.prices["XYZ/USD"]
    assert prices.y == (110.0, 90.0, 105.0)  # marks, not the fill price


def test_without_marks_the_fill_prices_value_positions() -> None:
    o1, f1 = traded(UNIT, "buy", "1", "100", ts=T0)
    o2, f2 = traded(UNIT, "buy", "1", "120", ts=T0 + S)
    report = build_report(RunRecord("t", [o1, o2], [f1, f2]))
    line = figures(report, "mm", "XYZ/USD", "USD")
    assert report.valued_at == {"XYZ/USD": "fill prices"}
    assert line.unrealised == 20  # the first unit, marked at the latest fill's 120
    assert report.charts.prices["XYZ/USD"].y == (100.0, 120.0)


def test_since_carries_positions_in_at_the_mark_in_force() -> None:
    o1, f1 = traded(UNIT, "buy", "1", "100", ts=T0, fee="1")  # a fee before the window
    o2, f2 = traded(UNIT, "sell", "1", "120", ts=T0 + 20 * S)
    record = RunRecord("t", [o1, o2], [f1, f2], since_ns=T0 + 10 * S)
    line = figures(build_report(record), "mm", "XYZ/USD", "USD")
    assert line.realised == 20 and line.unrealised == 0 and line.pnl == 20
    assert line.fees == 0  # the buy's fee was paid before the window
    assert (line.fills, line.orders) == (1, 1)  # only what happened in the window
    # With a mark of 110 before the window, the window earned 10: 20 realised, and the
    # 10 of unrealised the position started with is gone.
    marked = RunRecord("t", [o1, o2], [f1, f2], since_ns=T0 + 10 * S,
                       marks={"XYZ/USD": [Mark(T0 + 5 * S, D(110))]})  # fmt: skip
    line = figures(build_report(marked), "mm", "XYZ/USD", "USD")
    assert (line.realised, line.unrealised, line.pnl) == (20, -10, 10)


def test_quote_currencies_are_never_mixed() -> None:
    o1, f1 = traded(BTC, "buy", "0.1", "30000.0", ts=T0, fee="1")
    o2, f2 = traded(ETHBTC, "buy", "1", "0.05000", ts=T0 + S, fee="0.0001")
    report = build_report(RunRecord("t", [o1, o2], [f1, f2]))
    assert report.currencies() == ["BTC", "USD"]
    assert figures(report, None, None, "USD").fees == 1
    assert figures(report, None, None, "BTC").fees == D("0.0001")
    assert figures(report, None, None, "BTC").volume_quote == D("0.05")


def test_a_strategy_subtotal_sums_its_symbols_and_the_total_nets_strategies() -> None:
    o1, f1 = traded(BTC, "buy", "1", "30000.0", ts=T0, strategy="a")
    o2, f2 = traded(ETH, "buy", "10", "2000.00", ts=T0 + S, strategy="a")
    o3, f3 = traded(BTC, "sell", "1", "30000.0", ts=T0 + 2 * S, strategy="b")
    report = build_report(RunRecord("t", [o1, o2, o3], [f1, f2, f3]))
    sub = figures(report, "a", None, "USD")
    assert sub.symbols == ("BTC/USD", "ETH/USD") and sub.inventory is None
    assert sub.exposure == 50000  # 30000 of BTC + 20000 of ETH
    total = figures(report, None, None, "USD")
    assert total.exposure == 20000  # a's long BTC and b's short BTC net to nothing
    assert figures(report, "b", "BTC/USD", "USD").inventory == -1
    # b trades one symbol: its subtotal would repeat its line, so it is left out
    assert Scope("USD", "b", None) not in {f.scope for f in report.figures}
    kinds = [(f.scope.kind, f.scope.strategy) for f in report.figures]
    assert kinds == [("line", "a"), ("line", "a"), ("line", "b"), ("strategy", "a"),
                     ("total", None)]  # fmt: skip


def test_whose_fill_it_is() -> None:
    prefix = "cd" * 12
    placed = order(BTC, "buy", "1", "30000.0", strategy="mm")
    by_order = fill(BTC, "buy", "1", "30000.0", of=placed)
    by_block = fill(BTC, "buy", "1", "30000.0", cl_ord_id=cid(prefix=prefix), ts=T0 + S)
    foreign = fill(BTC, "buy", "1", "30000.0", cl_ord_id="manual-1", ts=T0 + 2 * S)
    record = RunRecord("t", [placed], [by_order, by_block, foreign], owners={prefix: "grid"})
    report = build_report(record)
    assert {f.scope.strategy for f in report.lines()} == {"mm", "grid", ""}


def test_fees_in_the_base_asset_are_charged_at_the_fill_price_others_are_listed() -> None:
    o1, f1 = traded(BTC, "buy", "1", "30000.0", ts=T0, fee="0.001", fee_asset="BTC")
    o2, f2 = traded(BTC, "sell", "1", "30000.0", ts=T0 + S, fee="5", fee_asset="KFEE")
    line = figures(build_report(RunRecord("t", [o1, o2], [f1, f2])), "mm", "BTC/USD", "USD")
    assert line.fees == 30  # 0.001 BTC at 30000
    assert line.other_fees == (("KFEE", D(5)),)
    assert line.realised == -30


def test_sharpe_and_sortino_on_one_minute_buckets_by_hand() -> None:
    # Hold one unit; each minute the mark moves +3 then -1: returns +3, -1, ... (30 of them)
    o, f = traded(UNIT, "buy", "1", "100", ts=T0)
    price, marks = 100, []
    for k in range(30):
        price += 3 if k % 2 == 0 else -1
        marks.append(Mark(T0 + k * MINUTE + 30 * S, D(price)))
    record = RunRecord("t", [o], [f], marks={"XYZ/USD": marks}, end_ns=T0 + 30 * MINUTE)
    report = build_report(record)
    assert report.sampling.name == "1m"
    line = figures(report, "mm", "XYZ/USD", "USD")
    assert line.returns == 30
    assert line.sharpe.value == D("356.3987")  # sqrt(29 * 525600 / 120), see test_stats
    assert line.sortino.value == D("1025.2804")  # sqrt(2 * 525600) = 1025.28044...
    assert line.pnl == 30  # 15 * (3 - 1)


def test_many_fills_are_aggregated_on_the_chart_and_none_is_lost() -> None:
    orders, fills = [], []
    for k in range(2500):
        o, f = traded(UNIT, "buy" if k % 2 else "sell", "1", str(100 + k % 7), ts=T0 + k * S)
        orders.append(o)
        fills.append(f)
    report = build_report(RunRecord("t", orders, fills))
    markers = report.charts.fills["XYZ/USD"]
    assert report.charts.fills_aggregated["XYZ/USD"]
    assert len(markers) < 2500
    assert sum(m.count for m in markers) == 2500
    assert sum(m.qty for m in markers) == 2500
    assert figures(report, "mm", "XYZ/USD", "USD").fills == 2500


def test_recorded_quotes_are_drawn_as_given() -> None:
    o, f = traded(UNIT, "buy", "1", "100", ts=T0 + 5 * S)
    quotes = {
        ("mm", "XYZ/USD"): [QuoteSample(T0, D(99), D(101)), QuoteSample(T0 + 9 * S, None, D(102))]
    }
    report = build_report(RunRecord("t", [o], [f], quotes=quotes, since_ns=T0, end_ns=T0 + 10 * S))
    bid, ask = report.charts.quotes[("mm", "XYZ/USD")]
    assert report.quotes_from == "recorded quotes"
    assert bid.y[0] == 99.0 and ask.y[:2] == (101.0, 102.0)
    assert bid.y[1] != bid.y[1]  # nan: no bid from 9 s on (a gap in the line)


def test_an_empty_record_reports_nothing_without_failing() -> None:
    report = build_report(RunRecord("empty"))
    assert report.figures == ()
    assert report.quotes_from == "none"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (RunRecord("t", marks={"XYZ/USD": [Mark(2, D(1)), Mark(1, D(1))]},
                   instruments={"XYZ/USD": UNIT}), "not in time order"),
        (RunRecord("t", marks={"XYZ/USD": [Mark(1, D(0))]}, instruments={"XYZ/USD": UNIT}),
         "not a positive price"),
        (RunRecord("t", marks={"ABC/USD": [Mark(1, D(1))]}), "no instrument: ABC/USD"),
        (RunRecord("t", fills=[fill(Instrument("XBTUSD", "XBT", "USD", 1, 8), "buy", "1", "1")]),
         "not BASE/QUOTE"),
        (RunRecord("t", since_ns=10, end_ns=5), "ends before it starts"),
    ],
)  # fmt: skip
def test_bad_records_are_refused_clearly(record: RunRecord, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        build_report(record)


def test_a_fill_at_a_lower_precision_is_scaled_up_exactly() -> None:
    old = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
    new = Instrument("BTC/USD", "BTC", "USD", price_precision=2, qty_precision=8)
    o1, f1 = traded(old, "buy", "1", "30000.1", ts=T0)
    o2, f2 = traded(new, "sell", "1", "30000.15", ts=T0 + S)
    line = figures(build_report(RunRecord("t", [o1, o2], [f1, f2])), "mm", "BTC/USD", "USD")
    assert line.realised == D("0.05")


prices = st.integers(min_value=1, max_value=10**7)
qtys = st.integers(min_value=1, max_value=10**9)
fees = st.integers(min_value=0, max_value=10**6)


@settings(max_examples=150, deadline=None)
@given(st.tuples(prices, prices), qtys, st.tuples(fees, fees), st.booleans())
def test_a_round_trip_earns_the_price_difference_times_qty_less_fees(
    buy_sell: tuple[int, int], q: int, two_fees: tuple[int, int], buy_first: bool
) -> None:
    (p_buy, p_sell), (fee1, fee2) = buy_sell, two_fees
    inst = BTC
    first, second = ("buy", p_buy), ("sell", p_sell)
    if not buy_first:
        first, second = second, first
    o1, f1 = traded(inst, first[0], str(inst.qty_decimal(q)), str(inst.price_decimal(first[1])),
                    ts=T0, fee=str(D(fee1).scaleb(-4)))  # fmt: skip
    o2, f2 = traded(inst, second[0], str(inst.qty_decimal(q)),
                    str(inst.price_decimal(second[1])), ts=T0 + S,
                    fee=str(D(fee2).scaleb(-4)))  # fmt: skip
    line = figures(build_report(RunRecord("t", [o1, o2], [f1, f2])), "mm", "BTC/USD", "USD")
    expected = (
        (inst.price_decimal(p_sell) - inst.price_decimal(p_buy)) * inst.qty_decimal(q)
        - D(fee1).scaleb(-4)
        - D(fee2).scaleb(-4)
    )
    assert line.realised == expected
    assert line.unrealised == 0 and line.pnl == expected
    assert line.inventory == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([BTC, ETH]),
                  st.sampled_from(["buy", "sell"]), st.integers(1, 10**8),
                  st.integers(10**4, 10**6), st.integers(0, 100)),
        min_size=1, max_size=25,
    )
)  # fmt: skip
def test_the_total_is_the_sum_of_its_lines(
    trades: list[tuple[str, Instrument, str, int, int, int]],
) -> None:
    orders, fills = [], []
    for k, (strategy, inst, side, q, p, fee) in enumerate(trades):
        o, f = traded(inst, side, str(inst.qty_decimal(q)), str(inst.price_decimal(p)),
                      ts=T0 + k * S, fee=str(D(fee).scaleb(-2)), strategy=strategy)  # fmt: skip
        orders.append(o)
        fills.append(f)
    report = build_report(RunRecord("t", orders, fills))
    lines = report.lines("USD")
    total = figures(report, None, None, "USD")
    for name in ("pnl", "realised", "unrealised", "fees", "volume_quote"):
        assert getattr(total, name) == sum((getattr(f, name) for f in lines), D(0)), name
    assert total.fills == len(trades) == sum(f.fills for f in lines)
    assert total.max_drawdown >= 0
