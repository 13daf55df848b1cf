"""The live market source's fill rule, case by case, on the real matching engine.

``LiveMarket`` turns upstream books and prints into market actions; ``Venue`` here applies
them to an ``Exchange`` exactly as the live feed does, and places the paper account's
orders. Each case says when a resting paper order fills, and when it must not.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bot.sim.exchange import Exchange
from bot.sim.live_source import LiveMarket, Print
from bot.sim.market_data import MarketAdd, MarketAmend, MarketCancel
from bot.sim.matching import OrderRequest, OrderState
from bot.sim.pairs import default_instruments, instrument

T0 = 1_700_000_000_000_000_000
BTC = instrument("BTC/USD")
ME = "paper"


def px(text: str) -> int:
    return BTC.price(text)


def q(text: str) -> int:
    return BTC.qty(text)


class Venue:
    """An exchange driven by a ``LiveMarket``, as ``bot.service.paper_live`` drives it."""

    def __init__(self) -> None:
        instruments = default_instruments(("BTC/USD",))
        self.live = LiveMarket(instruments)
        self.ex = Exchange(instruments.values(), seed=1, market=self.live)
        self.live.attach(self.ex)
        self.ex.deposit(ME, "USD", "1000000")
        self.ex.deposit(ME, "BTC", "100")
        self.now = T0

    def book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.now += 1
        actions = self.live.on_book(
            "BTC/USD", [(px(p), q(x)) for p, x in bids], [(px(p), q(x)) for p, x in asks]
        )
        self.ex.apply_market(actions, self.now)

    def trade(self, side: str, price: str, qty: str) -> None:
        self.now += 1
        actions = self.live.on_prints([Print("BTC/USD", side, px(price), q(qty))])
        self.ex.apply_market(actions, self.now)

    def order(self, side: str, qty: str, price: str) -> str:
        req = OrderRequest("BTC/USD", side, "limit", q(qty), px(price))
        result = self.ex.add_order(ME, req, self.now)
        assert result.order is not None
        return result.order.txid

    def state(self, txid: str) -> OrderState:
        state = self.ex.order(ME, txid)
        assert state is not None
        return state

    def filled(self, txid: str) -> Decimal:
        return Decimal(self.state(txid).filled).scaleb(-BTC.qty_precision)

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.ex.depth("BTC/USD")


BIDS = [("100.0", "1"), ("99.9", "2")]
ASKS = [("100.1", "1"), ("100.2", "2")]


@pytest.fixture
def v() -> Venue:
    venue = Venue()
    venue.book(BIDS, ASKS)
    return venue


# ------------------------------------------------------------------ the mirror


def test_the_book_is_the_upstream_book_level_for_level(v: Venue) -> None:
    assert v.depth() == ([(px("100.0"), q("1")), (px("99.9"), q("2"))],
                         [(px("100.1"), q("1")), (px("100.2"), q("2"))])  # fmt: skip
    v.book([("100.0", "0.4"), ("99.8", "3")], [("100.1", "1"), ("100.2", "2")])
    assert v.depth()[0] == [(px("100.0"), q("0.4")), (px("99.8"), q("3"))]
    v.book([("100.1", "1")], [("100.3", "5")])  # the whole book moves up a tick
    assert v.depth() == ([(px("100.1"), q("1"))], [(px("100.3"), q("5"))])
    assert v.ex.trades(ME) == []  # no paper order: nothing traded


def test_a_lost_upstream_empties_the_mirror_and_a_snapshot_rebuilds_it(v: Venue) -> None:
    v.ex.apply_market(v.live.on_disconnected(), v.now)
    assert v.depth() == ([], []) and not v.live.ready
    v.book(BIDS, ASKS)
    assert v.live.ready and len(v.depth()[0]) == 2


# ------------------------------------------------------------------ the queue


def test_a_print_at_the_price_fills_only_after_the_queue_ahead(v: Venue) -> None:
    bid = v.order("buy", "0.5", "100.0")  # behind the 1 BTC resting there
    v.trade("sell", "100.0", "0.6")
    assert v.filled(bid) == 0 and v.live.ahead(bid) == q("0.4")
    v.book([("100.0", "0.4"), ("99.9", "2")], ASKS)  # the book shows the print: no move
    assert v.live.ahead(bid) == q("0.4")
    v.trade("sell", "100.0", "0.7")  # 0.4 ahead, then 0.3 for us
    assert v.filled(bid) == Decimal("0.3")
    (fill,) = v.ex.trades(ME)
    assert (fill.price, fill.liquidity) == (px("100.0"), "m")
    v.trade("sell", "100.0", "0.5")
    assert v.filled(bid) == Decimal("0.5") and v.state(bid).status == "closed"


def test_a_print_explained_by_an_earlier_book_change_is_not_counted_twice(v: Venue) -> None:
    bid = v.order("buy", "0.5", "100.0")
    v.trade("sell", "100.0", "0.6")  # the print first...
    v.book([("100.0", "0.4"), ("99.9", "2")], ASKS)  # ...then its book change
    assert v.live.ahead(bid) == q("0.4")  # not 0.4 - 0.6 * 0.4: the fall was the print


def test_cancels_move_the_queue_up_pro_rata(v: Venue) -> None:
    bid = v.order("buy", "0.5", "100.0")  # 1 ahead
    v.book([("100.0", "2"), ("99.9", "2")], ASKS)  # 1 joins behind us
    assert v.live.ahead(bid) == q("1")
    v.book([("100.0", "1.5"), ("99.9", "2")], ASKS)  # 0.5 cancelled, spread over 2
    assert v.live.ahead(bid) == q("0.75")
    v.book([("100.0", "0.2"), ("99.9", "2")], ASKS)  # 1.3 more: 0.75 * 0.2 / 1.5 left
    assert v.live.ahead(bid) == q("0.1")
    assert v.filled(bid) == 0  # cancels alone never fill


def test_a_level_that_empties_without_a_print_does_not_fill(v: Venue) -> None:
    bid = v.order("buy", "0.5", "100.0")
    v.book([("99.9", "2")], ASKS)
    assert v.live.ahead(bid) == 0 and v.filled(bid) == 0
    v.trade("sell", "99.9", "0.1")  # now a print through our price
    assert v.filled(bid) == Decimal("0.1")


def test_a_print_through_the_price_fills_best_price_first_within_its_size(v: Venue) -> None:
    high = v.order("buy", "0.3", "100.0")
    low = v.order("buy", "0.3", "99.9")
    v.trade("sell", "99.8", "0.5")  # sold through both of our bids
    assert (v.filled(high), v.filled(low)) == (Decimal("0.3"), Decimal("0.2"))


def test_prints_that_do_not_reach_the_order_never_fill_it(v: Venue) -> None:
    bid = v.order("buy", "0.5", "99.9")
    ask = v.order("sell", "0.5", "100.2")
    v.trade("sell", "100.0", "5")  # a sell above our bid
    v.trade("buy", "99.9", "5")  # a buy at our bid's price: buyers never fill a bid
    v.trade("buy", "100.1", "5")  # a buy below our ask
    v.trade("sell", "100.2", "5")  # a sell at our ask's price
    assert v.filled(bid) == v.filled(ask) == 0
    assert v.live.ahead(bid) == q("2") and v.live.ahead(ask) == q("2")


def test_a_price_change_or_a_larger_qty_goes_to_the_back(v: Venue) -> None:
    bid = v.order("buy", "0.5", "100.0")
    v.trade("sell", "100.0", "0.9")
    assert v.live.ahead(bid) == q("0.1")
    v.ex.amend_order(ME, v.now, txid=bid, order_qty=q("0.6"))
    v.book([("100.0", "0.1"), ("99.9", "2")], ASKS)  # the next upstream message: re-queued
    assert v.live.ahead(bid) == q("0.1")  # the whole level is ahead again (0.1 left)
    v.ex.amend_order(ME, v.now, txid=bid, order_qty=q("0.4"))  # smaller: keeps its place
    v.trade("sell", "100.0", "0.05")
    assert v.live.ahead(bid) == q("0.05")


# ------------------------------------------------------------------ taking and crossing


def test_a_crossing_paper_order_takes_the_mirror_and_the_level_stays_taken(v: Venue) -> None:
    buy = v.order("buy", "0.4", "100.1")
    assert v.filled(buy) == Decimal("0.4")
    assert v.ex.trades(ME)[0].liquidity == "t"
    assert v.depth()[1][0] == (px("100.1"), q("0.6"))
    v.book([("100.0", "1.5"), ("99.9", "2")], ASKS)  # another level changed: still taken
    assert v.depth()[1][0] == (px("100.1"), q("0.6"))
    v.book([("100.0", "1.5"), ("99.9", "2")], [("100.1", "0.8"), ("100.2", "2")])
    assert v.depth()[1][0] == (px("100.1"), q("0.8"))  # upstream changed it: upstream's


def test_an_upstream_level_at_the_paper_price_trades_with_it_as_maker(v: Venue) -> None:
    v.book(BIDS, [("100.2", "2")])
    bid = v.order("buy", "0.5", "100.1")  # inside the spread: alone at its price
    assert v.live.ahead(bid) is None  # seen at the next upstream message
    v.book(BIDS, [("100.1", "0.2"), ("100.2", "2")])  # a seller posts at our bid
    assert v.filled(bid) == Decimal("0.2")
    (fill,) = v.ex.trades(ME)
    assert (fill.price, fill.liquidity) == (px("100.1"), "m")
    assert v.depth()[1][0] == (px("100.2"), q("2"))  # the seller's order was used up


def test_a_frame_changes_only_the_changed_levels_in_key_order_falls_first() -> None:
    """The mirror's actions for a frame, against the plain rule: every level of the old or
    the new book whose quantity differs, visited in (side, price) order, falls (a level
    shrinking or gone) before rises, each with its ref."""
    rng = random.Random(5)
    live = LiveMarket(default_instruments(("BTC/USD",)))
    old: dict[tuple[str, int], int] = {}
    refs: dict[tuple[str, int], int] = {}
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for step in range(600):
        if step % 3 != 1 or not bids:  # one side in three frames is as it was
            bids = {px("100.0") - i * 10: rng.choice((0, 1, 2, 3)) * q("1") for i in range(6)}
        if step % 3 != 2 or not asks:
            asks = {px("100.1") + i * 10: rng.choice((0, 1, 2, 3)) * q("1") for i in range(6)}
        if step % 50 == 49:
            live.on_invalid("BTC/USD", clear=True)  # the mirror emptied: all is new again
            old, refs = {}, {}
        bid_levels = [(p, x) for p, x in sorted(bids.items(), reverse=True) if x]
        ask_levels = [(p, x) for p, x in sorted(asks.items()) if x]
        new = {("buy", p): x for p, x in bid_levels} | {("sell", p): x for p, x in ask_levels}
        falls: list[tuple[str, int, int]] = []
        rises: list[tuple[str, int, int]] = []
        for key in sorted(old.keys() | new.keys()):
            before, after = old.get(key, 0), new.get(key, 0)
            if before != after:
                (falls if after < before else rises).append((key[0], key[1], after))
        actions = live.on_book("BTC/USD", bid_levels, ask_levels)
        seen = []
        for action in actions:
            if isinstance(action, MarketAdd):
                refs[(action.side, action.price)] = action.ref
                seen.append((action.side, action.price, action.qty))
            else:
                key = next(k for k, r in refs.items() if r == action.ref)
                assert isinstance(action, MarketAmend | MarketCancel)
                qty = action.qty if isinstance(action, MarketAmend) else 0
                if qty == 0:
                    del refs[key]
                seen.append((key[0], key[1], qty))
        assert seen == falls + rises
        old = new
