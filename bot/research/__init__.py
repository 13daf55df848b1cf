"""Research: what a run did, told to a trader; the recorder; the replay of recorded frames.

The trading report: ``record`` is its input (a run's orders, fills, and optionally marks
and quotes: what a store holds, or what a backtest hands over); ``figures`` is the pure
core that replays it through the daemon's own ``PositionBook``, helped by ``series``,
``stats``, ``quotes``, ``scope`` and ``chart_points``; ``terminal``, ``report_json`` and
``html`` (with ``charts`` and ``fmt``) render it; ``store_reader``, ``listing`` and ``when``
read the store (read-only, one snapshot); ``cli`` is ``krakenbot report|orders|fills``.
``recorder`` writes Kraken's public frames to files (``krakenbot record``'s command is
``bot.service.recorder``) and ``replay`` plays them through the books (``krakenbot
replay``). It sits above ``execution`` and ``market`` and writes nothing but the files it is
asked for.
"""
