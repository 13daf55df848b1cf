"""``krakenbot backtest``: strategies on recorded data through the daemon's own code paths.

``run_backtest(BacktestSpec(...)) -> BacktestResult`` is the public API (``bot.backtest.run``);
the venue port's in-process implementation is ``bot.backtest.venue``, the simulated clock
``bot.backtest.clock``, the data formats ``bot.backtest.data``, the market replay and fill
rule's wiring ``bot.backtest.market``, Kraken's fee tiers ``bot.backtest.fees``.
"""

from bot.backtest.run import BacktestResult, BacktestSpec, run_backtest, run_backtest_async

__all__ = ["BacktestResult", "BacktestSpec", "run_backtest", "run_backtest_async"]
