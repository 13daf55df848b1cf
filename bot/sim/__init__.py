"""A Kraken-compatible exchange on loopback: a pure matching engine, REST, WebSocket v2
(public, private, level3), admin and faults on demand, and the Futures venue
(``bot.sim.futures``). It is a second reading of Kraken's docs, not the client run twice:
it imports only ``bot.core`` and Kraken's wire formats (``instruments``, ``codec``,
``capture``), never the client's signer, counters or checksum (``make lint`` checks it).
Composing it from a config is the service layer's (``bot.service.simulator``).
"""
