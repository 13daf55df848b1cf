"""krakenbot: an asyncio trading daemon for Kraken, and a Kraken-compatible simulator.

The packages are layers; each imports only the layers below it, and ``make lint`` checks
it (``[tool.importlinter]`` in pyproject.toml): ``cli`` → ``service`` → ``research`` →
``strategy`` → ``store`` → ``market`` | ``execution`` | ``sim`` → ``config`` → ``futures``
→ ``kraken`` → ``net`` → ``core``. docs/contributors/architecture.md has the map.
"""
