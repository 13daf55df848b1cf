"""The market maker keeps its last targets per symbol and works them out again only when an
input changed: what it answers is, digit for digit, what working them out on every book
answers (the backtest's determinism rests on the maker's decisions not changing)."""

from __future__ import annotations

import random

import pytest

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
