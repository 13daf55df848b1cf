"""Positions and PnL: average cost, flips, fees, assets, marks, the UTC day, exactness."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from bot.execution.pnl import NS_PER_DAY, PositionBook, utc_day
from bot.kraken.instruments import Instrument

D = Decimal
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
# Whole units: the arithmetic of the examples reads directly.
UNIT = Instrument("XYZ/USD", "XYZ", "USD", price_precision=0, qty_precision=0)
ETHBTC = Instrument("ETH/BTC", "ETH", "BTC", price_precision=5, qty_precision=8)

# 2023-11-14 23:59:00 UTC
BEFORE_MIDNIGHT = (utc_day(1_700_000_000 * 10**9) + 1) * NS_PER_DAY - 60 * 10**9


def make_book(start_ns: int = BEFORE_MIDNIGHT) -> tuple[FakeClock, PositionBook]:
    clock = FakeClock(start_ns=start_ns)
    return clock, PositionBook(clock)


def fill(book: PositionBook, inst: Instrument, side: str, qty: str, price: str, **kw: object):
    return book.apply_fill(inst.symbol, inst, side, inst.qty(qty), inst.price(price), **kw)  # type: ignore[arg-type]


def test_buy_then_sell_realises_the_difference() -> None:
    _, book = make_book()
    assert fill(book, BTC, "buy", "0.5", "30000.0") == 0
    assert fill(book, BTC, "sell", "0.5", "30100.5") == D("50.25")
    pos = book.position("BTC/USD")
    assert pos is not None and pos.is_flat and pos.cost_basis == 0 and pos.avg_price is None
    assert book.realised("USD") == D("50.25")
    assert book.asset_position("USD") == D("50.25")
    assert book.asset_position("BTC") == 0


def test_average_cost_and_partial_close_keep_the_remainder_in_the_basis() -> None:
    _, book = make_book()
    fill(book, UNIT, "buy", "1", "10")
    fill(book, UNIT, "buy", "2", "11")
    pos = book.position("XYZ/USD")
    assert pos is not None
    assert (pos.qty, pos.cost_basis) == (3, 32)
    assert pos.avg_price == 11  # 32 / 3 rounded to price + qty decimals (0 here)
    # 32 / 3 per unit: one unit takes 10 out of the basis (truncated), 22 stay for two.
    assert fill(book, UNIT, "sell", "1", "12") == 2
    pos = book.position("XYZ/USD")
    assert pos is not None and (pos.qty, pos.cost_basis) == (2, 22)
    assert fill(book, UNIT, "sell", "2", "12") == 2
    assert book.realised("USD") == 4 == book.asset_position("USD")


def test_a_partial_close_takes_its_share_of_the_basis_truncated_once() -> None:
    _, book = make_book()
    fill(book, UNIT, "buy", "1", "10")
    fill(book, UNIT, "buy", "2", "11")
    # two thirds of 32 is 21.33: 21 leaves the basis, realising 24 - 21
    assert fill(book, UNIT, "sell", "2", "12") == 3
    pos = book.position("XYZ/USD")
    assert pos is not None and (pos.qty, pos.cost_basis) == (1, 11)
    assert fill(book, UNIT, "sell", "1", "12") == 1


def test_fill_prices_finer_than_the_pair_are_accounted_exactly() -> None:
    """Kraken's average price of a taker order across levels has more decimals than the
    pair: the position moves to that finer scale, and nothing is rounded anywhere."""
    _, book = make_book()
    fill(book, BTC, "buy", "0.5", "30000.0", strategy="a")
    # 0.3 at 30000.0 and 0.2 at 30000.1: Kraken reports 30000.04 for the 0.5
    assert book.apply_fill(
        "BTC/USD",
        BTC,
        "buy",
        BTC.qty("0.5"),
        3_000_004,
        price_precision=2,
        strategy="a",
        fee=D("0.01"),
        fee_asset="BTC",
    ) == D("-300.0004")  # a base fee, charged at the exact fill price
    fill(book, BTC, "buy", "1", "30000.1", strategy="b")  # still at the pair's scale
    pos = book.position("BTC/USD", "a")
    assert pos is not None and pos.cost_basis == D("30000.02")
    assert pos.avg_price == D("30000.0200000000")  # 10 decimals: price 2 + qty 8
    total = book.position("BTC/USD")  # two lots at two scales, summed exactly
    assert total is not None and total.cost_basis == D("60000.12")
    assert total.avg_price == D("30000.0600000000")
    assert fill(book, BTC, "sell", "1", "30000.1", strategy="a") == D("0.08")
    assert book.realised("USD", "a") == D("0.08") - D("300.0004")
    assert book.asset_position("USD", "a") == D("0.08")
    book.mark("BTC/USD", D("30001.05"))
    assert book.unrealised("USD", "b") == D("0.95")


def test_avg_price_is_rounded_for_display_only() -> None:
    _, book = make_book()
    fill(book, BTC, "buy", "1", "100.0")
    fill(book, BTC, "buy", "2", "100.1")
    pos = book.position("BTC/USD")
    assert pos is not None
    assert pos.cost_basis == D("300.2")
    assert pos.avg_price == D("100.066666667")  # 9 decimals = price 1 + qty 8


def test_short_then_buy_back() -> None:
    _, book = make_book()
    fill(book, BTC, "sell", "2", "100.0")
    pos = book.position("BTC/USD")
    assert pos is not None and pos.qty == -2 and pos.avg_price == 100
    assert fill(book, BTC, "buy", "1", "90.0") == 10
    assert fill(book, BTC, "buy", "1", "120.0") == -20
    assert book.realised("USD") == -10 == book.asset_position("USD")


def test_flip_through_zero_opens_the_rest_at_the_fill_price() -> None:
    _, book = make_book()
    fill(book, BTC, "buy", "1", "100.0")
    assert fill(book, BTC, "sell", "3", "110.0") == 10
    pos = book.position("BTC/USD")
    assert pos is not None and pos.qty == -2 and pos.avg_price == 110 and pos.cost_basis == -220
    assert fill(book, BTC, "buy", "5", "105.0") == 10  # closes 2 short at +5 each
    pos = book.position("BTC/USD")
    assert pos is not None and pos.qty == 3 and pos.avg_price == 105


def test_fees_in_quote_in_base_and_in_another_asset() -> None:
    _, book = make_book()
    assert fill(book, BTC, "buy", "1", "100.0", fee=D("0.26"), fee_asset="USD") == D("-0.26")
    assert fill(book, BTC, "sell", "1", "100.0", fee=D("0.001"), fee_asset="BTC") == D("-0.1")
    assert fill(book, BTC, "buy", "1", "100.0", fee=D("3"), fee_asset="KFEE") == 0
    pos = book.position("BTC/USD")
    assert pos is not None
    assert pos.fees == D("0.36")
    assert pos.other_fees == (("KFEE", D("3")),)
    assert book.realised("USD") == D("-0.36")
    assert book.asset_position("USD") == D("-100.26")
    assert book.asset_position("BTC") == D("0.999")
    assert book.asset_position("KFEE") == -3


def test_asset_positions_cross_pairs() -> None:
    _, book = make_book()
    fill(book, BTC, "buy", "1", "30000.0")
    fill(book, ETHBTC, "buy", "10", "0.05")  # spends 0.5 BTC
    assert book.asset_position("BTC") == D("0.5")
    assert book.asset_position("ETH") == 10
    assert book.asset_position("USD") == -30000
    assert set(book.quotes()) == {"USD", "BTC"}


def test_unrealised_uses_the_mark_or_else_the_last_fill_price() -> None:
    _, book = make_book()
    fill(book, BTC, "buy", "2", "100.0")
    fill(book, BTC, "buy", "1", "103.0")
    # no mark: marked at 103.0 against a basis of 303.0
    assert book.unrealised("USD") == 6
    book.mark("BTC/USD", D("99.05"))
    assert book.unrealised("USD") == D("-5.85")
    pos = book.position("BTC/USD")
    assert pos is not None and pos.mark == D("99.05") and pos.equity == D("-5.85")
    with pytest.raises(ValueError):
        book.mark("BTC/USD", D(0))


def test_per_strategy_and_total() -> None:
    _, book = make_book()
    fill(book, BTC, "buy", "1", "100.0", strategy="a")
    fill(book, BTC, "sell", "3", "110.0", strategy="b")
    fill(book, BTC, "sell", "1", "120.0", strategy="a")
    a = book.position("BTC/USD", "a")
    b = book.position("BTC/USD", "b")
    total = book.position("BTC/USD")
    assert a is not None and b is not None and total is not None
    assert (a.qty, b.qty, total.qty) == (0, -3, -3)
    assert book.realised("USD", "a") == 20 and book.realised("USD", "b") == 0
    assert book.realised("USD") == 20
    assert book.asset_position("BTC", "a") == 0 and book.asset_position("BTC", "b") == -3
    assert book.strategies() == ["a", "b"]
    assert [p.strategy for p in book.positions("b")] == ["b"]
    assert [p.strategy for p in book.positions()] == [None]
    assert book.position("BTC/USD", "nobody") is None


def test_strategy_qty_is_the_positions_qty_to_the_digit() -> None:
    """A strategy reads its position on every book through ``strategy_qty``: the same
    Decimal as ``position(symbol, strategy).qty``, exponent included."""
    _, book = make_book()
    assert book.strategy_qty("BTC/USD", "a") is None
    steps = [("a", "buy", "1", "100.0"), ("b", "sell", "0.25", "110.0")]
    steps += [("a", "sell", "1", "120.0"), ("a", "sell", "0.00000001", "121.0")]
    steps += [("b", "buy", "0.5", "90.0")]
    for strategy, side, qty, price in steps:
        fill(book, BTC, side, qty, price, strategy=strategy)
        for name in ("a", "b"):
            pos = book.position("BTC/USD", name)
            got = book.strategy_qty("BTC/USD", name)
            assert repr(got) == repr(None if pos is None else pos.qty)
    assert book.strategy_qty("BTC/USD", "a") == D("-0.00000001")
    assert book.strategy_qty("ETH/BTC", "a") is None


def test_bad_fills_are_refused() -> None:
    _, book = make_book()
    with pytest.raises(ValueError):
        book.apply_fill("ETH/USD", BTC, "buy", 1, 1)
    with pytest.raises(ValueError):
        book.apply_fill("BTC/USD", BTC, "hold", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        book.apply_fill("BTC/USD", BTC, "buy", 0, 1)
    with pytest.raises(ValueError):
        book.apply_fill("BTC/USD", BTC, "buy", 1, 1, fee=D(1))
    assert book.positions() == []


# -- the UTC day -----------------------------------------------------------------------


def test_daily_pnl_resets_at_utc_midnight_realised() -> None:
    clock, book = make_book()
    fill(book, BTC, "buy", "1", "100.0")
    fill(book, BTC, "sell", "1", "50.0")
    assert book.daily_pnl("USD") == -50
    day = book.day
    clock.advance(59)
    assert book.daily_pnl("USD") == -50 and book.day == day
    clock.advance(1)  # 00:00:00 UTC
    assert book.daily_pnl("USD") == 0
    assert book.day.toordinal() == day.toordinal() + 1
    assert book.realised("USD") == -50
    fill(book, BTC, "buy", "1", "100.0")
    fill(book, BTC, "sell", "1", "90.0")
    assert book.daily_pnl("USD") == -10 and book.realised("USD") == -60


def test_daily_pnl_baseline_includes_open_positions_at_their_marks() -> None:
    clock, book = make_book()
    fill(book, BTC, "buy", "1", "100.0", strategy="s")
    book.mark("BTC/USD", D("80.0"))
    assert book.daily_pnl("USD") == -20
    clock.advance(120)
    # the first call after midnight takes the baseline with the marks it holds
    book.mark("BTC/USD", D("70.0"))
    assert book.daily_pnl("USD") == -10
    assert book.daily_pnl("USD", "s") == -10
    assert book.daily_pnls() == {"USD": D(-10)}
    assert book.equity("USD") == -30


def test_a_fill_stamped_yesterday_is_folded_into_the_baseline() -> None:
    clock, book = make_book()
    clock.advance(120)  # a fresh start just after midnight, replaying yesterday's fills
    yesterday = clock.time_ns() - 3600 * 10**9
    fill(book, BTC, "buy", "1", "100.0", ts_ns=yesterday)
    fill(book, BTC, "sell", "1", "60.0", ts_ns=yesterday)
    assert book.realised("USD") == -40
    assert book.daily_pnl("USD") == 0
    fill(book, BTC, "buy", "1", "100.0", ts_ns=clock.time_ns())
    book.mark("BTC/USD", D("95.0"))
    assert book.daily_pnl("USD") == -5


def test_a_fill_stamped_after_midnight_rolls_the_day_first() -> None:
    clock, book = make_book()
    fill(book, BTC, "buy", "1", "100.0")
    fill(book, BTC, "sell", "1", "70.0")
    after_midnight = clock.time_ns() + 61 * 10**9
    fill(book, BTC, "buy", "1", "100.0", ts_ns=after_midnight)
    fill(book, BTC, "sell", "1", "90.0", ts_ns=after_midnight)
    assert book.daily_pnl("USD") == -10


def test_a_wall_clock_set_back_does_not_unroll_the_day() -> None:
    clock, book = make_book()
    fill(book, BTC, "buy", "1", "100.0")
    fill(book, BTC, "sell", "1", "70.0")
    clock.advance(120)
    assert book.daily_pnl("USD") == 0
    clock.set_wall_ns(clock.time_ns() - 3600 * 10**9)
    assert book.daily_pnl("USD") == 0


# -- exactness -------------------------------------------------------------------------

PRECISE = Instrument("AAA/BBB", "AAA", "BBB", price_precision=8, qty_precision=8)
_fills = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 10**12),
        st.integers(1, 10**13),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(_fills, st.integers(1, 10**13))
def test_round_trip_realised_equals_the_cash_difference(
    fills: list[tuple[str, int, int, int]], close_price: int
) -> None:
    _, book = make_book()
    total = D(0)
    for side, qty, price, fee in fills:
        total += book.apply_fill(
            "AAA/BBB", PRECISE, side, qty, price, fee=D(fee).scaleb(-10), fee_asset="BBB"
        )  # type: ignore[arg-type]
    pos = book.position("AAA/BBB")
    assert pos is not None
    if pos.qty_scaled:
        side = "sell" if pos.qty_scaled > 0 else "buy"
        total += book.apply_fill("AAA/BBB", PRECISE, side, abs(pos.qty_scaled), close_price)
    pos = book.position("AAA/BBB")
    assert pos is not None and pos.is_flat and pos.cost_basis == 0
    assert total == book.realised("BBB") == book.asset_position("BBB")
    assert book.asset_position("AAA") == 0
    assert book.unrealised("BBB") == 0


@settings(max_examples=150, deadline=None)
@given(_fills, st.integers(1, 10**13))
def test_equity_is_cash_plus_holdings_at_the_mark(
    fills: list[tuple[str, int, int, int]], mark: int
) -> None:
    _, book = make_book()
    m = PRECISE.price_decimal(mark)
    book.mark("AAA/BBB", m)
    for side, qty, price, fee in fills:
        book.apply_fill(
            "AAA/BBB", PRECISE, side, qty, price, fee=D(fee).scaleb(-10), fee_asset="BBB"
        )  # type: ignore[arg-type]
        cash = book.asset_position("BBB")
        held = book.asset_position("AAA")
        with localcontext(prec=200):
            assert book.equity("BBB") == cash + held * m
        assert book.daily_pnl("BBB") == book.equity("BBB")


def test_revision_moves_exactly_when_a_pnl_figure_may_have() -> None:
    clock, book = make_book()
    start = book.revision
    book.mark("BTC/USD", D("30000"))  # no lot: no figure depends on this mark
    assert book.revision == start
    fill(book, BTC, "buy", "0.5", "30000.0")
    after_fill = book.revision
    assert after_fill > start
    book.mark("BTC/USD", D("30000"))
    assert book.revision == after_fill  # the price it had: nothing moved
    book.mark("BTC/USD", D("30001"))
    assert book.revision == after_fill + 1  # a new mark of a held symbol
    unrealised = book.unrealised("USD")
    book.mark("BTC/USD", D("29000"))
    assert book.revision == after_fill + 2
    assert book.unrealised("USD") != unrealised
    clock.advance(120)  # past midnight: a new baseline
    assert book.day_number == utc_day(clock.time_ns())
    assert book.revision == after_fill + 3
