"""Kraken's trade-history CSV (timestamp,price,volume per pair): a trade-driven backtest."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.backtest import BacktestSpec, run_backtest
from bot.backtest.data import BadData, Frame, open_data
from bot.research.store_reader import read_store
from bot.sim.pairs import default_instruments
from tests.unit.backtest.helpers import write_config

EMA_CONFIG = """\
mode: paper
market: {symbols: [BTC/USD]}
sim: {balances: {USD: 100000}}
risk: {max_order_notional: 100000, price_band_pct: 5, max_orders_per_minute: 1000}
strategies:
  - name: ema
    class: strategies.ema_cross:EmaCross
    symbols: [BTC/USD]
    params: {size: 0.1, max_position: 0.1, fast: 2, slow: 4, slippage_bps: 10}
"""
T0 = 1_690_000_000


def _csv(path: Path, prices: list[str], *, header: bool = False) -> Path:
    lines = ["timestamp,price,volume"] if header else []
    lines += [f"{T0 + i}.{i:04d},{p},0.5" for i, p in enumerate(prices)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_line_is_a_trade_frame_with_the_tick_rules_side(tmp_path: Path) -> None:
    table = default_instruments(("BTC/USD",))
    path = _csv(tmp_path / "XBTUSD.csv", ["100.0", "101.5", "101.5", "99"], header=True)
    items = list(open_data([path], table, ("BTC/USD",)))
    assert [i.at_ns for i in items] == [(T0 + i) * 10**9 + i * 10**5 for i in range(4)]
    assert all(type(i) is Frame for i in items)
    texts = [i.raw.decode() for i in items if type(i) is Frame]
    assert ['"side":"buy"' in t for t in texts] == [True, True, True, False]
    assert '"price":101.5,"qty":0.50000000' in texts[1]


def test_a_bad_line_is_named_with_its_file_and_number(tmp_path: Path) -> None:
    table = default_instruments(("BTC/USD",))
    path = tmp_path / "XBTUSD.csv"
    path.write_text(f"{T0},100,1\n{T0 + 1},abc,1\n")
    with pytest.raises(BadData, match=r"XBTUSD.csv:2: not timestamp,price,volume"):
        list(open_data([path], table, ("BTC/USD",)))


def test_a_trend_trades_through_the_prices_the_prints_prove(tmp_path: Path) -> None:
    first = [f"{105 - i}.0" for i in range(6)]  # warm-up, falling: no position to sell
    up = [f"{100 + i}.0" for i in range(1, 10)]
    down = [f"{109 - i}.0" for i in range(1, 10)]
    data = _csv(tmp_path / "XBTUSD.csv", first + up + down)
    spec = BacktestSpec(
        config=write_config(tmp_path / "ema.yaml", EMA_CONFIG), data=(data,),
        out_dir=tmp_path / "out", latency_ms=0,
    )  # fmt: skip
    result = run_backtest(spec)
    fills = read_store(result.store_path).fills
    # No book, and still ready: the strategy traded the cross up, then the cross down.
    assert [f.side for f in fills] == ["buy", "sell"]
    buy, sell = fills
    # The IOC buy (at 102.0 + 10 bp) meets the ask the buy print at 102.0 proved, at its
    # price; the IOC sell meets the bid the sell print at 107.0 proved.
    assert (buy.price, buy.ts_ns) == (1020, (T0 + 7) * 10**9 + 7 * 10**5)
    assert (sell.price, sell.ts_ns) == (1070, (T0 + 16) * 10**9 + 16 * 10**5)
    assert {(f.qty, f.liquidity) for f in fills} == {(10_000_000, "t")}
