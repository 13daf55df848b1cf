"""The daemon as a service: what it shows and what it lets its owner do.

``observe`` (read-only pictures of the running daemon), ``dashboard`` (the live page and
its JSON), ``notify`` (messages to webhooks and Telegram), ``control`` (the authenticated
control API) and ``view`` (the one object the daemon wires them through).
"""
