"""The backtest's fill model, case by case, through its own path: recorded frames into
``BacktestMarket`` (the live feed's frame path, checksums verified), the paper-on-live fill
rule moving the simulator's exchange, orders on the backtest's account. Pure: no event loop.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.backtest.fees import TIERS, fees_for_volume
from bot.sim.accounts import FeeSchedule
from tests.unit.backtest.market_rig import BTC, Rig

D = Decimal


@pytest.fixture
def rig() -> Rig:
    r = Rig()
    r.snapshot(bids={"100.0": "5", "99.0": "3"}, asks={"101.0": "1", "102.0": "2"})
    return r


def test_a_resting_order_joins_the_back_of_its_level_and_waits_for_the_queue(rig: Rig) -> None:
    order = rig.limit("buy", "100.0", "1")
    rig.update(bids={"100.0": "5"})  # the next message: the order is seen behind 5
    assert rig.live.ahead(order.txid) == BTC.qty("5")
    rig.trade("sell", "100.0", "3")  # uses 3 of the 5 ahead
    assert rig.filled(order) == 0
    rig.trade("sell", "100.0", "2.5")  # the last 2 ahead, then 0.5 for us
    assert rig.filled(order) == D("0.5")
    rig.trade("sell", "100.0", "4")  # the rest of ours, no more than it has
    assert rig.filled(order) == 1
    assert [f.liquidity for f in rig.fills()] == ["m", "m"]
    assert {f.price for f in rig.fills()} == {BTC.price("100.0")}


def test_a_trade_through_the_price_fills_it_whatever_the_queue(rig: Rig) -> None:
    order = rig.limit("buy", "100.0", "1")
    rig.update(bids={"100.0": "5"})
    rig.trade("sell", "99.0", "0.4")  # printed below our bid: we were hit first
    assert rig.filled(order) == D("0.4")
    assert rig.fills()[0].price == BTC.price("100.0")  # at our price, as maker


def test_cancels_ahead_move_the_queue_up_pro_rata(rig: Rig) -> None:
    order = rig.limit("buy", "100.0", "1")
    rig.update(bids={"100.0": "5"})  # 5 ahead
    rig.update(bids={"100.0": "15"})  # 10 more join behind us
    rig.update(bids={"100.0": "9"})  # 6 cancelled, no print: spread over the level
    assert rig.live.ahead(order.txid) == BTC.qty("3")  # 5 - 6 * 5 / 15
    rig.trade("sell", "100.0", "3")
    assert rig.filled(order) == 0
    rig.trade("sell", "100.0", "0.25")
    assert rig.filled(order) == D("0.25")


def test_a_print_that_does_not_reach_the_order_never_fills_it(rig: Rig) -> None:
    order = rig.limit("buy", "99.0", "1")
    rig.update(bids={"99.0": "3"})
    rig.trade("sell", "100.0", "50")  # above our bid: the level above took it
    rig.trade("buy", "101.0", "50")  # the other side
    assert rig.filled(order) == 0


def test_a_taker_walks_the_recorded_book_at_its_levels(rig: Rig) -> None:
    order = rig.market_order("buy", "2.5")
    assert rig.filled(order) == D("2.5")
    fills = sorted((f.price, f.qty) for f in rig.fills())
    assert fills == [(BTC.price("101.0"), BTC.qty("1")), (BTC.price("102.0"), BTC.qty("1.5"))]
    assert {f.liquidity for f in rig.fills()} == {"t"}
    # What it took stays gone until the recording changes the level (the backtest's orders
    # never move the recorded market).
    book = rig.exchange.book("BTC/USD")
    assert book.depth("ask") == [(BTC.price("102.0"), BTC.qty("0.5"))]
    rig.update(bids={"99.0": "4"})  # another level moved: the taken one stays taken
    assert book.best_ask() == BTC.price("102.0")
    rig.update(asks={"101.0": "2"})
    rig.market.sync("BTC/USD")  # the next order's arrival brings the mirror up to date
    assert book.depth("ask")[0] == (BTC.price("101.0"), BTC.qty("2"))
    assert book.depth("bid")[:2] == [(BTC.price("100.0"), BTC.qty("5")),
                                     (BTC.price("99.0"), BTC.qty("4"))]  # fmt: skip


def test_a_limit_crossing_the_book_takes_then_rests_the_rest(rig: Rig) -> None:
    order = rig.limit("buy", "101.0", "3")
    assert rig.filled(order) == 1
    assert rig.exchange.book("BTC/USD").best_bid() == BTC.price("101.0")  # the rest rests


def test_fees_are_krakens_by_30_day_volume_tier() -> None:
    assert fees_for_volume(D(0)) == FeeSchedule(D(25), D(40))
    assert fees_for_volume(D(10_000)) == FeeSchedule(D(25), D(40))  # up to 10,000 inclusive
    assert fees_for_volume(D("10000.01")) == FeeSchedule(D(20), D(35))
    assert fees_for_volume(D(75_000)) == FeeSchedule(D(14), D(24))
    assert fees_for_volume(D(10**9)) == FeeSchedule(D(0), D(10))
    assert len(TIERS) == 10
    with pytest.raises(ValueError, match="negative"):
        fees_for_volume(D(-1))


@pytest.mark.parametrize(
    ("volume", "maker_fee", "taker_fee"),
    [(D(0), D("0.25"), D("0.40")), (D(20_000_000), D(0), D("0.10"))],
)
def test_a_fill_pays_its_tier_as_maker_or_taker(volume: D, maker_fee: D, taker_fee: D) -> None:
    rig = Rig(fee_volume_usd=volume)
    rig.snapshot(bids={"100.0": "5"}, asks={"101.0": "1"})
    rig.market_order("buy", "1")  # taker: 101 USD of cost
    maker = rig.limit("sell", "102.0", "1")
    rig.update(asks={"101.0": "1"})
    rig.trade("buy", "103.0", "1")  # through our ask
    assert rig.filled(maker) == 1
    taker_fill, maker_fill = rig.fills()
    assert taker_fill.fee == D(101) * taker_fee / 100
    assert maker_fill.fee == D(102) * maker_fee / 100


def test_a_gap_empties_the_mirror_and_nothing_fills_on_stale_prices(rig: Rig) -> None:
    order = rig.limit("buy", "100.0", "1")
    rig.update(bids={"100.0": "5"})
    rig.gap()
    assert not rig.market.books_valid(["BTC/USD"])
    assert rig.exchange.book("BTC/USD").best_ask() is None  # nothing to take
    rig.update(bids={"100.0": "4"})  # an update after a gap is not applied
    assert not rig.market.books_valid(["BTC/USD"])
    rig.snapshot(bids={"100.0": "5"}, asks={"101.0": "1"})
    assert rig.market.books_valid(["BTC/USD"])
    assert rig.exchange.book("BTC/USD").best_ask() == BTC.price("101.0")
    assert rig.filled(order) == 0
