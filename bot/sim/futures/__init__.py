"""The Kraken Futures venue of the simulator: REST v3, WebSocket v1, on its own port.

A second exchange beside the spot simulator (``bot.sim``), speaking Kraken Futures' wire
formats as its documentation shows them, so that the Futures client pieces
(``bot.futures``) and any other Kraken Futures client can be tested for real now that
Kraken's own demo environment is retired (KRAKEN.md §6.3):

- ``contracts``: the linear perpetuals it lists (PF_XBTUSD, PF_ETHUSD, PF_SOLUSD);
- ``engine`` (with ``liquidity``, ``margin``, ``records``): the pure exchange: the
  spot simulator's matching ``Book``, positions, margin, funding, stops;
- ``venue``: keys, nonces, budgets, the dead-man's switch, connections, the pump;
- ``auth``: its own checks of ``Authent``, nonces and signed challenges (never the
  client's code: two readings of the docs that must agree);
- ``rest``, ``history`` (the account's executions, ``/api/history/v3/executions``),
  ``ws``, ``render``, ``tickers``: the wire; ``faults`` and ``admin``: faults on
  demand; ``server``: the aiohttp app and ``running_futures_sim``; ``__main__``:
  ``python -m bot.sim.futures``.

It depends on ``bot.sim.matching`` and ``bot.sim.market_data`` (the shared pure engine
and market source) and on wire-format helpers, never on ``bot.futures``.
"""
