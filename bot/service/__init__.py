"""The processes, composed from a config: the daemon under one TaskGroup (``daemon``,
``wiring``), its HTTP face and metrics (``http``, ``metrics``), paper trading (``paper``,
``paper_live``), ``krakenbot sim`` (``simulator``) and ``krakenbot record`` (``recorder``),
signals, the key-permission check and the preflight. The top layer under ``bot.cli``.

The trader's view lives here too: ``observe`` (read-only pictures of the running daemon),
``dashboard`` (the live page and its JSON), ``notify`` (messages to webhooks and
Telegram), ``control`` and ``control_api`` (the authenticated control API) and ``view``
(the one object the daemon wires them through).
"""
