"""The bundled strategies, each a small, documented example of the plugin API.

- ``market_maker``: ``strategies.market_maker:MarketMaker``
- ``grid``: ``strategies.grid:GridTrader``
- ``ema_cross``: ``strategies.ema_cross:EmaCross``

Name them in the config by their short name or as ``module:Class``; see
docs/users/strategies.md. Importing this package imports none of them.
"""
