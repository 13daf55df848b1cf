"""Research: what a run did, told to a trader (reports now; the recorder and backtest later).

This package owns the trading report. ``record`` is its input (a run's orders, fills, and
optionally marks and quotes: what a store holds, or what a backtest hands over);
``figures`` is the pure core that replays it through the daemon's own ``PositionBook``,
helped by ``series`` (streaming drawdown, bucket closes, time weights, chart decimation),
``stats`` (the Sharpe/Sortino sampling), ``quotes`` (quotes rebuilt from order lives) and
``chart_points``. The renderings are ``terminal``, ``report_json`` and ``html`` (with
``charts`` and ``fmt``); ``progress`` is the bar or log lines long jobs report to. The store
side is ``store_reader`` (read-only, one snapshot), ``listing`` and ``when`` (``--since``),
and ``cli`` (``krakenbot report|orders|fills``). It sits above ``execution`` and writes
nothing but the files it is asked for.
"""
