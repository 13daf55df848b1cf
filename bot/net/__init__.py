"""Transports, knowing no exchange: the reconnecting WebSocket driver every feed runs on
(``ws``) and the kept-alive HTTP/1.1 connection private REST calls are written to
(``http1``). They translate library exceptions into ``bot.core.errors`` at the boundary.
"""
