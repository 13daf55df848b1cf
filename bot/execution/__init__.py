"""Orders and their fate: the order state table (``orders``), the engine that places,
amends and cancels them and reconciles with the exchange (the exchange is the truth), the
risk gate, the readiness gate, the dead-man's switch, WebSocket tokens, the private feed,
client ids and PnL. It keeps orders through the ``OrderJournal`` port (``journal``), which
``bot.store`` implements.
"""
