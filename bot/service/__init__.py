"""The processes, composed from a config: the daemon under one TaskGroup (``daemon``,
``wiring``), its HTTP face and metrics (``http``, ``metrics``), paper trading (``paper``,
``paper_live``), ``krakenbot sim`` (``simulator``) and ``krakenbot record`` (``recorder``),
signals, the key-permission check and the preflight. The top layer under ``bot.cli``.
"""
