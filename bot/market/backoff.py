"""Moved to ``bot.net.backoff`` (beside the WebSocket driver); kept so old imports work."""

from bot.net.backoff import Backoff, BackoffPolicy

__all__ = ["Backoff", "BackoffPolicy"]
