"""The bundled strategies, driven by the public harness (bot.strategy.testing)."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import ConfigError
from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.orders import OrderState
from bot.strategy import OrderHandle
from bot.strategy.testing import StrategyHarness
from strategies.ema_cross import EmaCross
from strategies.grid import GridTrader
from strategies.market_maker import MarketMaker

D = Decimal
MM = {"spread_bps": 20, "size": "0.01", "max_inventory": "0.02", "skew_bps": 10}


def asked(command: Command) -> tuple[Any, ...]:
    """What a command asks, as a value to compare: (kind, strategy, cl_ord_id, symbol, and
    an amend's new qty and price)."""
    told = (command.strategy, command.cl_ord_id, command.symbol)
    if isinstance(command, AmendOrder):
        return ("amend", *told, command.qty, command.price)
    return ("cancel" if isinstance(command, CancelOrder) else "place", *told)


def quotes(h: StrategyHarness[Any]) -> dict[str, tuple[Decimal | None, Decimal]]:
    """The open quotes by side: (price, remaining)."""
    out = {o.side: (o.price, o.remaining) for o in h.open_orders()}
    assert len(out) == len(h.open_orders()), "one quote per side"
    return out


def test_the_bundled_strategies_import_only_the_strategy_api() -> None:
    """What a user copies must not reach into the daemon: ``bot.strategy`` only."""
    folder = Path(__file__).resolve().parents[2] / "strategies"
    files = sorted(folder.glob("*.py"))
    assert {f.name for f in files} >= {"market_maker.py", "grid.py", "ema_cross.py"}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "bot" or name.startswith("bot."):
                    assert name == "bot.strategy", f"{path.name} imports {name}"


# --------------------------------------------------------------------------- market maker


def test_market_maker_quotes_both_sides_around_the_microprice() -> None:
    h = StrategyHarness(MarketMaker, MM)
    h.quote("30000", "30010", bid_qty=3, ask_qty=1)  # microprice 30007.5, mid 30005
    bid, ask = h.placed()
    # 30007.5 · (1 ∓ 0.001), the bid down and the ask up to the 0.1 tick
    assert (bid.side, bid.price, bid.qty) == ("buy", D("29977.4"), D("0.01"))
    assert (ask.side, ask.price, ask.qty) == ("sell", D("30037.6"), D("0.01"))
    assert bid.post_only and ask.post_only and bid.time_in_force == "GTC"
    assert quotes(h) == {"buy": (D("29977.4"), D("0.01")), "sell": (D("30037.6"), D("0.01"))}
    assert h.ctx.counters[("quotes_placed", "BTC/USD")] == 2


def test_market_maker_never_crosses_the_book_even_when_skewed_far() -> None:
    params = {**MM, "spread_bps": 2, "skew_bps": 100, "max_inventory": "0.01"}
    h = StrategyHarness(MarketMaker, params)
    h.quote("30000", "30010")
    assert quotes(h) == {"buy": (D("30001.9"), D("0.01")), "sell": (D("30008.1"), D("0.01"))}
    h.fill(h.open_orders(side="buy")[0])
    # long at the limit: the centre is 100 bps down, at 29704.95, but a post-only ask
    # under the best bid would be refused: it stays one tick above it.
    assert quotes(h) == {"sell": (D("30000.1"), D("0.01"))}


def test_market_maker_skews_against_inventory_and_stops_at_the_limit() -> None:
    h = StrategyHarness(MarketMaker, MM)
    h.quote("30000", "30010")  # mid = microprice = 30005
    (bid,) = h.open_orders(side="buy")
    h.fill(bid)  # long 0.01 of 0.02: the centre drops 5 bps, to 29989.9975
    assert h.ctx.position("BTC/USD") == D("0.01")
    assert h.ctx.gauges[("inventory", "BTC/USD")] == D("0.01")
    assert quotes(h) == {"buy": (D("29960.0"), D("0.01")), "sell": (D("30020.0"), D("0.01"))}
    (bid,) = h.open_orders(side="buy")
    h.fill(bid)  # long 0.02: at the limit, no more bids, the centre 10 bps down
    assert quotes(h) == {"sell": (D("30005.0"), D("0.01"))}
    (ask,) = h.open_orders(side="sell")
    h.fill(ask)  # back to 0.01: the bid returns
    assert set(quotes(h)) == {"buy", "sell"}
    assert h.ctx.position("BTC/USD") == D("0.01")


def test_market_maker_cuts_a_quote_to_stay_within_max_inventory() -> None:
    h = StrategyHarness(MarketMaker, {**MM, "size": "0.015"})
    h.quote("30000", "30010")
    (bid,) = h.open_orders(side="buy")
    h.fill(bid, "0.01")  # long 0.01, 0.005 of the bid still resting
    # Long 0.01 of 0.02: the bid is cut from 0.015 to 0.01 (amended to 0.02 in total).
    assert (bid.remaining, bid.qty) == (D("0.01"), D("0.02"))
    amends = [a for a in h.amended() if a.cl_ord_id == bid.cl_ord_id]
    assert [asked(a) for a in amends] == [
        ("amend", "test", bid.cl_ord_id, "BTC/USD", D("0.02"), D("29960.0"))
    ]
    (ask,) = h.open_orders(side="sell")
    assert ask.remaining == D("0.015")


def test_market_maker_amends_instead_of_cancel_and_replace() -> None:
    h = StrategyHarness(MarketMaker, MM)
    h.quote("30000", "30010")
    bid, ask = h.open_orders()
    h.clear_commands()
    h.quote("30000.5", "30010.5")  # 0.17 bps: below requote_bps, nothing sent
    assert h.commands == []
    h.quote("30100", "30110")
    assert [asked(c) for c in h.commands] == [
        ("amend", "test", bid.cl_ord_id, "BTC/USD", None, D("30074.8")),
        ("amend", "test", ask.cl_ord_id, "BTC/USD", None, D("30135.2")),
    ]
    assert h.open_orders() == [bid, ask] and (bid.price, ask.price) == (D("30074.8"), D("30135.2"))
    assert not any(isinstance(i, CancelOrder | PlaceOrder) for i in h.commands)
    assert h.ctx.counters[("quotes_amended", "BTC/USD")] == 2


def test_market_maker_waits_for_acknowledgements_before_amending() -> None:
    h = StrategyHarness(MarketMaker, MM, auto_settle=False)
    h.quote("30000", "30010")
    h.quote("30030", "30040")
    assert len(h.commands) == 2  # both quotes still PENDING_NEW: nothing to amend yet
    h.settle()
    h.quote("30030", "30040")
    assert [type(i) for i in h.commands[2:]] == [AmendOrder, AmendOrder]
    h.quote("30060", "30070")  # amends in flight: wait for them
    assert len(h.commands) == 4
    h.settle()
    h.quote("30060", "30070")
    assert len(h.commands) == 6


def test_market_maker_pulls_quotes_on_an_invalid_book() -> None:
    h = StrategyHarness(MarketMaker, MM)
    h.quote("30000", "30010")
    bid, ask = h.open_orders()
    h.clear_commands()
    h.book_invalid()
    assert [asked(c) for c in h.commands] == [
        ("cancel", "test", bid.cl_ord_id, "BTC/USD"),
        ("cancel", "test", ask.cl_ord_id, "BTC/USD"),
    ]
    assert h.open_orders() == [] and bid.state is OrderState.CANCELED
    assert h.ctx.counters[("quotes_pulled", "BTC/USD")] == 2
    h.book_valid()
    assert h.open_orders() == []  # back only with the next book
    h.quote("30000", "30010")
    assert set(quotes(h)) == {"buy", "sell"}


def test_market_maker_pulls_quotes_on_a_volatility_spike_and_resumes_later() -> None:
    params = {**MM, "vol_window_s": 5, "vol_limit_bps": 50, "vol_cooldown_s": 10}
    h = StrategyHarness(MarketMaker, params)
    h.quote("30000", "30010")
    h.advance(1)
    h.quote("30060", "30070")  # +20 bps in 1 s: calm enough, amended
    assert set(quotes(h)) == {"buy", "sell"}
    h.advance(1)
    h.quote("30200", "30210")  # +65 bps within the window: pull
    assert h.open_orders() == []
    assert [type(i) for i in h.commands[-2:]] == [CancelOrder, CancelOrder]
    h.advance(6)  # the spike has left the window, but the cooldown holds
    h.quote("30200", "30210")
    assert h.open_orders() == []
    h.advance(5)
    h.quote("30200", "30210")
    assert set(quotes(h)) == {"buy", "sell"}


def test_market_maker_cancels_its_quotes_on_stop() -> None:
    h = StrategyHarness(MarketMaker, MM)
    h.quote("30000", "30010")
    h.stop()
    assert h.open_orders() == []


# --------------------------------------------------------------------------- grid


GRID = {"size": "0.01", "levels": 3, "spacing": "100"}


def test_grid_places_a_ladder_around_the_mid_once() -> None:
    h = StrategyHarness(GridTrader, GRID)
    h.quote("30000", "30010")  # centre 30005
    ladder = sorted((i.price, i.side) for i in h.placed())
    assert ladder == [
        (D(29705), "buy"), (D(29805), "buy"), (D(29905), "buy"),
        (D(30105), "sell"), (D(30205), "sell"), (D(30305), "sell"),
    ]  # fmt: skip
    assert all(i.qty == D("0.01") for i in h.placed())
    h.quote("30500", "30510")
    assert len(h.placed()) == 6


def test_grid_centre_and_bps_spacing_from_params() -> None:
    h = StrategyHarness(
        GridTrader, {"size": "0.01", "levels": 1, "center": "20000", "spacing_bps": 25}
    )
    h.quote("30000", "30010")
    assert sorted(i.price for i in h.placed()) == [D(19950), D(20050)]


def test_grid_refills_the_other_side_on_fills() -> None:
    h = StrategyHarness(GridTrader, GRID)
    h.quote("30000", "30010")
    buy = next(o for o in h.open_orders(side="buy") if o.price == D(29905))
    h.fill(buy, "0.004")  # partial: nothing yet
    assert len(h.placed()) == 6
    h.fill(buy)
    refill = h.placed()[-1]
    assert (refill.side, refill.price, refill.qty) == ("sell", D(30005), D("0.01"))
    sell = h.ctx.handle(refill.cl_ord_id)
    h.fill(sell)
    again = h.placed()[-1]
    assert (again.side, again.price) == ("buy", D(29905))
    assert h.ctx.position("BTC/USD") == D(0)
    assert h.ctx.counters[("grid_fills", "BTC/USD")] == 2


def test_grid_does_not_replace_an_order_canceled_by_someone_else() -> None:
    h = StrategyHarness(GridTrader, GRID)
    h.quote("30000", "30010")
    order = h.open_orders(side="sell")[0]
    h.ctx.cancel(order)
    h.settle()
    assert len(h.placed()) == 6 and len(h.open_orders()) == 5


# --------------------------------------------------------------------------- EMA cross


EMA = {"size": "0.01", "max_position": "0.01", "fast": 2, "slow": 4, "slippage_bps": 10}
FLAT, UP, DOWN = [30000] * 4, [30030, 30060, 30090], [29970, 29940, 29910]


def feed(h: StrategyHarness[Any], prices: list[int], snapshot: bool = False) -> None:
    for price in prices:
        h.trade(price, snapshot=snapshot)


def test_ema_cross_buys_on_an_upward_crossover_with_an_ioc_limit() -> None:
    h = StrategyHarness(EmaCross, EMA)
    feed(h, FLAT + DOWN)  # warm-up, then the fast average below the slow one
    assert h.commands == []
    feed(h, UP[:1])  # 30030: fast crosses above slow
    (buy,) = h.placed()
    assert (buy.side, buy.qty, buy.time_in_force) == ("buy", D("0.01"), "IOC")
    assert buy.price == D("30060.1")  # 30030 + 10 bps = 30060.03, up to the tick
    assert h.ctx.counters[("signals", "BTC/USD")] == 1
    assert ("ema_fast", "BTC/USD") in h.ctx.gauges


def test_ema_cross_respects_the_position_limit() -> None:
    h = StrategyHarness(EmaCross, EMA)
    feed(h, FLAT + DOWN)  # down-cross from flat needs a prior sign: none yet, no trade
    feed(h, UP)
    (buy,) = h.placed()
    h.fill(buy, price=30030)
    assert h.ctx.position("BTC/USD") == D("0.01")
    feed(h, DOWN)
    sell = h.placed()[-1]
    assert (sell.side, sell.qty, sell.price) == ("sell", D("0.01"), D("29940.0"))
    sell_order = h.ctx.handle(sell.cl_ord_id)
    h.expire(sell_order)  # the IOC did not fill: still long 0.01
    feed(h, UP)
    assert len(h.placed()) == 2  # buying again would exceed max_position
    assert h.ctx.counters[("signals_skipped", "BTC/USD")] == 1


def test_ema_cross_counts_open_orders_towards_the_limit() -> None:
    h = StrategyHarness(EmaCross, {**EMA, "max_position": "0.015"})
    feed(h, FLAT + DOWN + UP)  # buy 0.01, left open
    feed(h, DOWN)  # long_only and nothing filled: nothing to sell
    feed(h, UP)  # the open 0.01 counts: only 0.005 more fits
    assert [(i.side, i.qty) for i in h.placed()] == [("buy", D("0.01")), ("buy", D("0.005"))]
    assert h.ctx.counters[("signals_skipped", "BTC/USD")] == 1


def test_ema_cross_long_only_skips_sells_it_cannot_cover_and_market_orders() -> None:
    h = StrategyHarness(EmaCross, {**EMA, "order_type": "market"})
    feed(h, FLAT + DOWN + UP[:1])  # up-cross: a market buy
    (buy,) = h.placed()
    assert buy.order_type == "market" and buy.price is None and buy.side == "buy"
    h.fill(buy.cl_ord_id, price=30030)
    feed(h, DOWN)  # down-cross: sell what it bought
    sell = h.placed()[-1]
    assert (sell.side, sell.order_type, sell.qty) == ("sell", "market", D("0.01"))
    h2 = StrategyHarness(EmaCross, EMA)
    feed(h2, FLAT + UP)  # the first sign after warm-up is not a crossover
    feed(h2, DOWN)  # a crossover down, but nothing held: skipped
    assert h2.placed() == []
    assert h2.ctx.counters[("signals_skipped", "BTC/USD")] == 1
    h3 = StrategyHarness(EmaCross, {**EMA, "long_only": False})
    feed(h3, FLAT + UP + DOWN)
    (short,) = h3.placed()
    assert (short.side, short.qty) == ("sell", D("0.01"))


def test_ema_cross_warms_up_on_history_but_never_trades_on_it() -> None:
    h = StrategyHarness(EmaCross, EMA)
    feed(h, FLAT + DOWN + UP, snapshot=True)
    assert h.placed() == []
    feed(h, DOWN + UP)
    assert [i.side for i in h.placed()] == ["buy"]


def test_ema_cross_params_are_checked() -> None:
    with pytest.raises(ConfigError) as info:
        StrategyHarness(EmaCross, {**EMA, "fast": 4})
    assert info.value.problems == ["test.params: fast (4) must be less than slow (4)"]


def test_handles_in_the_harness_are_the_strategy_handles() -> None:
    h = StrategyHarness(MarketMaker, MM)
    h.quote("30000", "30010")
    assert all(isinstance(o, OrderHandle) for o in h.open_orders())
    assert {id(o) for o in h.open_orders()} == {id(o) for o in h.strategy.quotes.values()}


def test_market_maker_backs_off_after_a_rejected_quote_and_resets_once_live() -> None:
    h = StrategyHarness(MarketMaker, MM, auto_settle=False)

    def bids() -> list[PlaceOrder]:
        return [i for i in h.placed() if i.side == "buy"]

    h.quote("30000", "30010")
    (first,) = bids()
    h.reject(first.cl_ord_id)
    h.clear_commands()
    for _ in range(20):  # without the backoff, every book update re-sends the bid
        h.quote("30000", "30010")
    assert bids() == []
    h.advance(1.01)
    h.quote("30000", "30010")
    (second,) = bids()
    h.reject(second.cl_ord_id)  # a second refusal doubles the wait to 2 s
    h.clear_commands()
    h.advance(1.5)
    h.quote("30000", "30010")
    assert bids() == []
    h.advance(0.6)
    h.quote("30000", "30010")
    (third,) = bids()
    h.ack(third.cl_ord_id)  # live: the next refusal starts from 1 s again
    h.quote("30000", "30010")
    assert h.strategy.retry_delay == {}


def test_market_maker_places_through_a_prepared_order_made_again_for_a_new_size() -> None:
    h = StrategyHarness(MarketMaker, {**MM, "size": "0.015"})
    h.quote("30000", "30010")
    first = h.strategy.prepared[("BTC/USD", "buy")]
    (bid,) = h.open_orders(side="buy")
    h.fill(bid)  # long 0.015 of 0.02: the next bid may only be 0.005
    (new_bid,) = h.open_orders(side="buy")
    assert new_bid is not bid and (new_bid.qty, new_bid.price) == (D("0.005"), D("29952.5"))
    again = h.strategy.prepared[("BTC/USD", "buy")]
    assert again is not first and again.qty == D("0.005") and again.post_only
