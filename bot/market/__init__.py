"""Market data: the order book (with its optional C core, ``_bookcore``), the frames-in path
that decodes, applies and verifies every frame (``frames``: what the live feed, replay and
the backtester share), the public feed on the WebSocket driver, and the instrument snapshot.
"""
