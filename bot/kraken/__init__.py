"""Kraken spot on the wire, client side: instruments and exact numbers, the JSON codec, the
WS v2 protocol, the recorded-frames format (``capture``), the book checksum, signing,
nonces, rate-limit arithmetic, system status and the REST client. Pure where it can be; it
knows no book, order state or config (those are the layers above), so the simulator can
share its wire formats (``instruments``, ``codec``, ``capture``) and nothing else.
"""
