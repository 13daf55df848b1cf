"""The bottom layer: the error tree by remedy, the injected clock, logging, and small asyncio
helpers (eager tasks, the supervisor). It imports nothing else from ``bot``.
"""
