"""The daemon as a service: its composition under one TaskGroup (``daemon``, ``wiring``), the
HTTP endpoints and metrics, paper trading's simulator wiring, signals, the key-permission
check and the preflight. The top layer under ``bot.cli``.

The trader's view lives here too: ``observe`` (read-only pictures of the running daemon),
``dashboard`` (the live page and its JSON), ``notify`` (messages to webhooks and
Telegram), ``control`` and ``control_api`` (the authenticated control API) and ``view``
(the one object the daemon wires them through).
"""
