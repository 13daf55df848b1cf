"""The market maker keeps its last targets per symbol (worked out again only when an input
changed) and remembers a live quote that already matched its target: what it sends is,
digit for digit, what working everything out on every book sends (the backtest's
determinism rests on the maker's decisions not changing)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bot.strategy import BookSnapshot, FillEvent, OrderHandle, OrderState
from bot.strategy.testing import StrategyHarness
from strategies.market_maker import MarketMaker

MM = {"spread_bps": 20, "size": "0.01", "max_inventory": "0.02", "vol_limit_bps": 5000}


def exact(answer: object) -> str:
    return repr(answer)  # Decimal's repr carries its exponent: 0.010 is not 0.01 here


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_targets_are_the_ones_worked_out_afresh(seed: int) -> None:
    rng = random.Random(seed)
    h = StrategyHarness(MarketMaker, MM)
    mm, symbol = h.strategy, "BTC/USD"
    bid, ask = 30000, 30010
    kept = 0
    for step in range(1500):
        move = rng.random()
        if move < 0.15:  # the top moves
            bid += rng.randint(-3, 3)
            ask = max(ask + rng.randint(-3, 3), bid + 1)
        top_bid_qty = 1 if move < 0.8 else rng.choice((1, 2, 3))  # the top's size changes
        top_ask_qty = 1 if move < 0.9 else rng.choice((1, 2, 3))
        deep = rng.randint(1, 9)  # a deeper level changes: no input of the targets does
        book = h.book(
            [(bid, top_bid_qty), (bid - 5, deep)], [(ask, top_ask_qty), (ask + 5, 10 - deep)]
        )
        if step % 97 == 0 and h.open_orders():
            h.fill(rng.choice(h.open_orders()), "0.001")  # the inventory moves
        if step == 700:
            h.set_params({**MM, "spread_bps": 30})  # new params
        before = mm.known_targets.get(symbol)
        got = mm.targets(symbol, book)
        kept += mm.known_targets[symbol] is before
        inventory = h.ctx.position(symbol)
        fresh = mm._targets(mm.params, h.ctx.instrument(symbol), book, inventory)
        assert exact(got) == exact(fresh), step
    assert 0 < kept < 1500  # both kept and worked-out answers were exercised


def test_targets_change_with_the_inventory_the_params_and_the_top() -> None:
    h = StrategyHarness(MarketMaker, MM)
    mm, symbol = h.strategy, "BTC/USD"
    book = h.quote("30000", "30010")
    first = mm.targets(symbol, book)
    assert mm.targets(symbol, h.book([("30000", 1), ("29990", 4)], [("30010", 1)])) == first
    assert mm.targets(symbol, h.quote("30000", "30010", ask_qty=2)) != first  # microprice
    assert mm.targets(symbol, h.quote("30001", "30010")) != first  # the best bid
    (order,) = h.open_orders(side="buy")
    h.fill(order)
    assert mm.targets(symbol, h.quote("30000", "30010")) != first  # long: skewed down
    h.set_params({**MM, "spread_bps": 40})
    h.fill(h.open_orders(side="sell")[0], "0.01")  # flat again, wider
    wider = mm.targets(symbol, h.quote("30000", "30010"))
    assert wider[0] is not None and first[0] is not None and wider[0][0] < first[0][0]


class Forgetful(MarketMaker):
    """The market maker with nothing kept from one book to the next: every target worked
    out afresh, every live quote compared with its target again."""

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        self.known_targets.clear()
        self.held.clear()
        super().on_book(symbol, book)

    def on_fill(self, order: OrderHandle, fill: FillEvent) -> None:
        self.known_targets.clear()
        self.held.clear()
        super().on_fill(order, fill)


def session(cls: type[MarketMaker], seed: int) -> list[tuple[object, ...]]:
    """A random session (books, partial fills, acks held back, refusals); what it sent."""
    rng = random.Random(seed)
    h = StrategyHarness(cls, {**MM, "requote_bps": 1}, auto_settle=False)
    bid, ask = 30000, 30010
    for step in range(1200):
        if rng.random() < 0.2:
            bid += rng.randint(-6, 6)
            ask = max(ask + rng.randint(-6, 6), bid + 1)
        deep = rng.randint(1, 9)
        h.book([(bid, rng.choice((1, 2))), (bid - 5, deep)], [(ask, 1), (ask + 5, deep)])
        roll = rng.random()
        if roll < 0.6:
            h.settle()  # acks, amends and cancels come back
        elif roll < 0.65 and h.open_orders():
            pending = [o for o in h.open_orders() if o.state is OrderState.PENDING_NEW]
            if pending:
                h.reject(pending[0])
        elif roll < 0.75:
            live = [o for o in h.open_orders() if o.is_live]
            if live:
                h.fill(rng.choice(live), "0.002")
        if step % 300 == 299:
            h.advance(2)
        if step == 600:
            h.set_params({**MM, "requote_bps": "0.2"})  # a quote held so far may move now
    return [asked(c) for c in h.commands]


def asked(command: object) -> tuple[object, ...]:
    fields = ("side", "qty", "price", "cl_ord_id")
    return (type(command).__name__, *(repr(getattr(command, f, None)) for f in fields))


@pytest.mark.parametrize("seed", [11, 12])
def test_the_kept_answers_send_exactly_what_working_them_out_sends(seed: int) -> None:
    sent = session(MarketMaker, seed)
    assert sent == session(Forgetful, seed)
    kinds = {s[0] for s in sent}
    assert {"PlaceOrder", "AmendOrder"} <= kinds  # quotes placed and moved


def test_a_held_quote_is_compared_again_under_new_params() -> None:
    h = StrategyHarness(MarketMaker, {**MM, "requote_bps": 1})
    h.quote("30000", "30010")
    h.quote("30001", "30011")  # 0.33 bps: under requote_bps, both quotes held
    h.quote("30001", "30011")
    assert h.amended() == []
    h.set_params({**MM, "requote_bps": "0.2"})
    h.quote("30001", "30011")  # the same book: now past requote_bps
    assert [a.price for a in h.amended()] == [Decimal("29975.9"), Decimal("30036.1")]
