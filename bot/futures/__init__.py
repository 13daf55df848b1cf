"""Kraken Futures (derivatives): everything that knows its wire formats, client side.

Kraken runs Futures as a separate exchange with its own API: REST v3 under
``/derivatives/api/v3`` signed with ``Authent``, and WebSocket v1 at ``/ws/v1`` with a
signed-challenge handshake for the private feeds (KRAKEN.md §2.3, §3.3, §6). This package
is the client's side of those formats, pure where it can be:

- ``auth``: ``Authent`` and the signed challenge; the query encoding that is both sent
  and signed.
- ``nonce_floor``: where a key's nonce high-water mark is kept across restarts.
- ``error_codes``: Kraken Futures' error codes and order statuses, mapped by remedy onto
  ``bot.core.errors``.
- ``instruments``: ``/instruments`` as exact scaled numbers (tick, contract size and value
  precision, maximum position, the margin schedule).
- ``ratelimit``: the ``/derivatives`` cost budget (500 per 10 s) and the history API's
  pool (100 per 10 minutes) as pure counters.
- ``orders`` / ``queries``: typed requests and their parsed answers (pure).
- ``history``: the account history of executions (``/api/history/v3/executions``), each
  with its fee: the request, the parser, the pages of one read (pure).
- ``rest``: the asyncio driver: sign, send in nonce order, map errors, never resend an
  order whose fate is unknown.
- ``ws_protocol`` / ``ws_auth`` / ``book``: WebSocket v1 sans-I/O: frames in as frozen
  dataclasses, requests out as bytes, the handshake, and the book keeper that reports a
  sequence gap or a crossed book as the resync signal (Futures sends no checksum).

It imports only ``bot.core.errors``, ``bot.core.clock``, ``bot.core.log`` and pure helpers of
``bot.kraken`` (the nonce generator, the exact JSON codec, scaled-number formatting).
"""
