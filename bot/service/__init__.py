"""The processes, composed from a config: the daemon under one TaskGroup (``daemon``,
``wiring``), its HTTP face and metrics (``http``, ``metrics``), paper trading (``paper``,
``paper_live``), ``krakenbot sim`` (``simulator``) and ``krakenbot record`` (``recorder``),
signals, the key-permission check and the preflight; Kraken Futures' daemon
(``futures_daemon``) and both venues in one process (``both_daemon``, with ``joint`` and
``joint_view``: the one HTTP face's readiness, metrics, controls and dashboard picture).
The top layer under ``bot.cli``.

The trader's view lives here too: ``observe`` (read-only pictures of the running daemon),
``dashboard`` (the live page and its JSON), ``notify`` (messages to webhooks and
Telegram), ``control`` and ``control_api`` (the authenticated control API) and ``view``
(the one object the daemon wires them through).
"""
