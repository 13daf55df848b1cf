"""The daemon as a service: its composition under one TaskGroup (``daemon``, ``wiring``), the
HTTP endpoints and metrics, paper trading's simulator wiring, signals, the key-permission
check and the preflight. The top layer under ``bot.cli``.
"""
