"""The bottom layer: the error tree by remedy, the injected clock, logging with secrets
redacted, backoff, and small asyncio helpers (eager tasks, the supervisor that restarts a
task which stops unasked). Everything above uses it; it imports nothing else from ``bot``.
"""
