"""Research: what a run did, told to a trader (reports now; the recorder and backtest later).

This package owns the trading report: the pure figures of a run (``figures``, ``stats``,
``series``), its three renderings (``terminal``, ``report_json``, ``html`` with ``charts``),
the progress display long runs share (``progress``), and the read-only view of a daemon's
store that ``krakenbot report``, ``orders`` and ``fills`` read (``store_reader``, ``cli``).
It sits above ``execution`` (it reuses the daemon's ``PositionBook``, so a report's PnL is
the daemon's PnL) and writes nothing but the files it is asked for.
"""
