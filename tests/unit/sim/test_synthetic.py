"""The synthetic market source, the shipped pair table, and the two inside the exchange."""

from __future__ import annotations

import json
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.sim.exchange import Exchange
from bot.sim.market_data import MarketAdd, MarketAmend, MarketCancel, MarketTake, SyntheticMarket
from bot.sim.matching import OrderRequest, Result
from bot.sim.pairs import ASSET_PRECISION, PAIRS, PROFILES, default_instruments

DATA = Path(__file__).resolve().parents[3].parent / "shared/data/kraken"
T0 = 1_700_000_000_000_000_000
STEP = 100_000_000  # 100 ms


def run_market(
    seed: int = 3, steps: int = 300, depth: int = 100
) -> tuple[Exchange, dict[str, Any]]:
    market = SyntheticMarket(PAIRS, seed=seed, depth=depth)
    ex = Exchange(PAIRS, seed=seed, market=market)
    spreads: dict[str, list[int]] = {inst.symbol: [] for inst in PAIRS}
    trades = dict.fromkeys(spreads, 0)
    for i in range(steps):
        res = ex.advance(T0 + i * STEP)
        for t in res.trades:
            trades[t.symbol] += 1
        for inst in PAIRS:
            book = ex.book(inst.symbol)
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None and bid < ask, inst.symbol
            spreads[inst.symbol].append((ask - bid) // inst.price_increment)
    return ex, {"spreads": spreads, "trades": trades, "market": market}


def test_synthetic_books_are_never_crossed_and_have_realistic_spreads() -> None:
    ex, info = run_market()
    for inst in PAIRS:
        spreads = info["spreads"][inst.symbol]
        lo, hi = PROFILES[inst.symbol].spread_ticks
        gap = PROFILES[inst.symbol].gap_ticks[1]
        assert lo <= statistics.median(spreads) <= hi + gap, inst.symbol
        assert sorted(spreads)[len(spreads) * 95 // 100] <= hi + 2 * gap, inst.symbol
        bid = ex.book(inst.symbol).best_bid()
        assert bid is not None
        # even right after a sweep, never more than 1 % of the price
        assert max(spreads) * inst.price_increment * 100 < bid, inst.symbol
        assert info["trades"][inst.symbol] > 0, inst.symbol


def test_depth_is_kept_and_grows_to_1000_levels_on_request() -> None:
    ex, info = run_market(steps=20, depth=50)
    for inst in PAIRS:
        book = ex.book(inst.symbol)
        assert book.level_count("bid") >= 50 and book.level_count("ask") >= 50
    market: SyntheticMarket = info["market"]
    market.set_depth("BTC/USD", 1000)
    for i in range(20, 40):
        ex.advance(T0 + i * STEP)
    book = ex.book("BTC/USD")
    assert book.level_count("bid") >= 1000 and book.level_count("ask") >= 1000
    bids, asks = ex.depth("BTC/USD", 1000)
    assert len(bids) == len(asks) == 1000
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert ex.book("ETH/USD").level_count("bid") < 100


def test_synthetic_actions_are_valid_orders_on_the_grid() -> None:
    market = SyntheticMarket(PAIRS, seed=9)
    by_symbol = {inst.symbol: inst for inst in PAIRS}
    seen = set()
    for i in range(200):
        for action in market.step(T0 + i * STEP):
            inst = by_symbol[action.symbol]
            seen.add(type(action).__name__)
            if isinstance(action, MarketAdd):
                assert action.price > 0 and action.price % inst.price_increment == 0
                assert action.qty >= inst.qty_min
                assert inst.cost(action.price, action.qty) >= inst.cost_min
                assert action.side in ("buy", "sell")
            elif isinstance(action, (MarketTake, MarketAmend)):
                assert action.qty >= inst.qty_min
    assert seen == {"MarketAdd", "MarketAmend", "MarketCancel", "MarketTake"}


def test_synthetic_market_is_deterministic() -> None:
    def actions(seed: int) -> list[object]:
        market = SyntheticMarket(PAIRS[:3], seed=seed)
        return [a for i in range(50) for a in market.step(T0 + i * 37_000_000)]

    assert actions(1) == actions(1)
    assert actions(1) != actions(2)

    def log(seed: int) -> list[Result]:
        market = SyntheticMarket(PAIRS[:4], seed=seed)
        ex = Exchange(PAIRS[:4], seed=seed, market=market)
        ex.deposit("alice", "USD", "100000")
        out = [ex.advance(T0)]
        bid = ex.book("BTC/USD").best_bid()
        assert bid is not None
        out.append(ex.add_order("alice", OrderRequest("BTC/USD", "buy", "limit", 10**6, bid), T0))
        out.extend(ex.advance(T0 + i * STEP) for i in range(1, 200))
        return out

    first = log(4)
    assert first == log(4)
    assert first != log(5)
    assert sum(len(r.book) for r in first) > 1000


def test_mid_walks_and_stays_near_its_start() -> None:
    market = SyntheticMarket(PAIRS, seed=5)
    start = {inst.symbol: market.mid(inst.symbol) for inst in PAIRS}
    for i in range(600):
        market.step(T0 + i * STEP)
    for inst in PAIRS:
        moved = abs(market.mid(inst.symbol) - start[inst.symbol]) / start[inst.symbol]
        assert moved < 0.02, inst.symbol  # 60 s at a few bps per √s
    assert any(market.mid(i.symbol) != start[i.symbol] for i in PAIRS)


def test_user_orders_trade_with_synthetic_flow_and_the_source_follows() -> None:
    insts = default_instruments(("BTC/USD",))
    market = SyntheticMarket(insts.values(), seed=2)
    ex = Exchange(insts.values(), seed=2, market=market)
    ex.advance(T0)
    ex.deposit("alice", "USD", "1000000")
    _, asks = ex.depth("BTC/USD", 5)
    # sweep the top five ask levels
    sweep = OrderRequest("BTC/USD", "buy", "limit", sum(q for _, q in asks), asks[-1][0])
    res = ex.add_order("alice", sweep, T0 + 1)
    assert res.order is not None and res.order.status == "closed"
    assert len(res.trades) >= 5
    # rest a bid at the best bid: market sellers reach it sooner or later
    best_bid = ex.book("BTC/USD").best_bid()
    assert best_bid is not None
    ex.add_order("alice", OrderRequest("BTC/USD", "buy", "limit", 10_000_000, best_bid), T0 + 2)
    filled = False
    for i in range(1, 3000):
        res = ex.advance(T0 + 2 + i * STEP)
        filled = filled or any(e.exec_type == "trade" for e in res.executions)
        book = ex.book("BTC/USD")
        assert (book.best_bid() or 0) < (book.best_ask() or 10**12)
        if filled:
            break
    assert filled
    assert ex.book("BTC/USD").level_count("ask") >= 90


def test_market_cancel_and_amend_of_gone_orders_are_ignored() -> None:
    insts = default_instruments(("BTC/USD",))
    ex = Exchange(insts.values(), seed=1)
    ex.apply_market([MarketAdd("BTC/USD", 1, "sell", 650000, 10**7)], T0)
    res = ex.apply_market(
        [MarketCancel("BTC/USD", 9), MarketAmend("BTC/USD", 9, 5), MarketAmend("BTC/USD", 1, 4)],
        T0,
    )
    assert res.book == (("BTC/USD", "ask", 650000, 4),)
    res = ex.apply_market([MarketAmend("BTC/USD", 1, 6, price=650010)], T0)
    assert ex.depth("BTC/USD") == ([], [(650010, 6)])
    res = ex.apply_market([MarketAmend("BTC/USD", 1, 0)], T0)
    assert ex.depth("BTC/USD") == ([], [])


# ----------------------------------------------------------------------------- pair facts


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    path = DATA / "kraken-data-recorder_instrument_snapshot.json"
    data: dict[str, Any] = json.loads(path.read_text())["data"]
    return data


def test_shipped_pairs_match_the_recorded_instrument_snapshot(snapshot: dict[str, Any]) -> None:
    recorded = {p["symbol"]: p for p in snapshot["pairs"]}
    for inst in PAIRS:
        raw = recorded[inst.symbol]
        assert inst.price_precision == raw["price_precision"], inst.symbol
        assert inst.qty_precision == raw["qty_precision"], inst.symbol
        assert inst.price_decimal(inst.price_increment) == Decimal(repr(raw["price_increment"]))
        assert inst.qty_decimal(inst.qty_min) == Decimal(repr(raw["qty_min"])), inst.symbol
        assert inst.cost_min == Decimal(repr(raw["cost_min"])), inst.symbol
        assert inst.cost_precision == raw["cost_precision"], inst.symbol
        assert (inst.base, inst.quote) == (raw["base"], raw["quote"])
        assert inst.symbol in PROFILES


def test_asset_precisions_match_the_recorded_snapshot(snapshot: dict[str, Any]) -> None:
    recorded = {a["id"]: a["precision"] for a in snapshot["assets"]}
    for asset, precision in ASSET_PRECISION.items():
        assert recorded[asset] == precision, asset


def test_starting_prices_are_on_each_pairs_tick() -> None:
    for inst in PAIRS:
        price = inst.price(PROFILES[inst.symbol].start_price)
        assert price % inst.price_increment == 0 and price > 0
        assert inst.cost(price, inst.qty_min) >= inst.cost_min
