"""What the optimize tests share: a grid deployment, a space, and the real v2 capture."""

from __future__ import annotations

from pathlib import Path

from bot.optimize.trial import Search
from bot.optimize.walkforward import anchored
from tests.unit.backtest.helpers import MM_CONFIG, write_capture

# The real BTC/USD capture (51 s of depth-10 book, July 2023). A grid centred away from
# the market crosses the book on one side and pays taker fees on every level it crosses:
# 29300 is a bad start (the market is near 29430), centres near the market cross nothing.
GRID_CONFIG = (
    MM_CONFIG.split("strategies:")[0]
    + """\
strategies:
  - name: grid
    class: strategies.grid:GridTrader
    symbols: [BTC/USD]
    params: {size: 0.01, levels: 3, spacing_bps: 1, center: 29300}
"""
)
SPACE = """\
strategies:
  grid:
    center: {low: 29300, high: 29600, step: 10}
    spacing_bps: {low: 1, high: 20, step: 1}
"""
# The capture's time range (its frames' own stamps): first and last + 1 ns.
START_NS, END_NS = 1_690_730_998_343_415_000, 1_690_731_049_008_834_001


def files(tmp: Path) -> tuple[Path, Path, Path]:
    config = tmp / "grid.yaml"
    config.write_text(GRID_CONFIG)
    space = tmp / "space.yaml"
    space.write_text(SPACE)
    return config, space, write_capture(tmp / "btc.jsonl")


def search(tmp: Path, trials: int, *, storage: str | None = None, seed: int = 0) -> Search:
    config, space, data = files(tmp)
    return Search(
        config=config, data=(data,), space=space, folds=tuple(anchored(START_NS, END_NS, 1)),
        trials=trials, objective="pnl",
        storage=storage or f"journal:{tmp / 'study.journal'}", study="t", seed=seed,
    )  # fmt: skip
