"""Kraken Futures' times: epoch milliseconds (WS v1 ``time``, ``timestamp``; the history
API's ``timestamp``) and the RFC 3339 text the REST pages print and the rest of krakenbot
reads (``bot.execution.orders.timestamp_ns``, book timestamps), each way.

Exact integer arithmetic, never a float. This module owns only those conversions.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from typing import Final

from bot.core.errors import ProtocolError

__all__ = ["ms_of_rfc3339", "rfc3339_ms"]

_RFC3339: Final = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def rfc3339_ms(ms: int) -> str:
    """Epoch milliseconds as ``2024-01-02T03:04:05.678Z``."""
    seconds, millis = divmod(ms, 1000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{millis:03d}Z"


def ms_of_rfc3339(text: str) -> int:
    """``2024-01-02T03:04:05.678Z`` (any offset, any fraction, cut to the millisecond) as
    epoch milliseconds; ``ProtocolError`` for anything else."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ProtocolError(f"bad time {text!r}")
    whole, frac, zone = match.groups()
    try:
        moment = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        raise ProtocolError(f"bad time {text!r}") from None
    return calendar.timegm(moment.utctimetuple()) * 1000 + int((frac or "")[:3].ljust(3, "0"))
