"""Kraken Futures' times: epoch milliseconds (WS v1 ``time``, ``timestamp``) as the RFC 3339
text the rest of krakenbot reads (``bot.execution.orders.timestamp_ns``, book timestamps).

Exact integer arithmetic, never a float. This module owns only that conversion.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["rfc3339_ms"]


def rfc3339_ms(ms: int) -> str:
    """Epoch milliseconds as ``2024-01-02T03:04:05.678Z``."""
    seconds, millis = divmod(ms, 1000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{millis:03d}Z"
