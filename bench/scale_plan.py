"""The scale bench's pure parts: symbols over connections, the stamp and lag arithmetic.

``spread`` places symbols on public WebSocket connections within the limits Kraken
documents (``MAX_SYMBOLS_PER_CONNECTION``, ``CONNECTS_PER_10_MIN``; the sources are in
docs/contributors/bench-scale.md). ``stamp`` is the RFC 3339 timestamp the bench's server
writes into each book frame as it sends it; ``stamp_us_of_day`` reads it back cheaply on the
daemon's side and ``lag_us`` is the difference, across midnight too. ``summary`` and
``highest_kept`` turn the lags of a run into its figures. No I/O, no clock: the callers pass
the times.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from bot.kraken.instruments import Instrument

__all__ = [
    "CONNECTS_PER_10_MIN",
    "DAY_US",
    "KEEPS_UP_P99_US",
    "MAX_SYMBOLS_PER_CONNECTION",
    "highest_kept",
    "instruments",
    "lag_us",
    "percentile",
    "spread",
    "stamp",
    "stamp_us_of_day",
    "summary",
]

# Kraken's WS v2 level3 page: "The total number of symbols per websocket connection is
# 200. A client can open multiple websockets connections to increase symbol coverage."
# The book page states no cap; the one documented cap is applied to it too.
MAX_SYMBOLS_PER_CONNECTION: Final = 200
# Kraken's spot WebSocket introduction: Cloudflare allows about 150 connection attempts per
# IP per rolling 10 minutes (then bans the IP for 10 minutes).
CONNECTS_PER_10_MIN: Final = 150
DAY_US: Final = 86_400_000_000
KEEPS_UP_P99_US: Final = 10_000  # the target: lag p99 under 10 ms
STAMP_LEN: Final = 27  # 2026-12-06T21:38:11.123456Z


def spread(
    symbols: Sequence[str], max_per_connection: int = MAX_SYMBOLS_PER_CONNECTION
) -> list[tuple[str, ...]]:
    """The fewest connections that hold every symbol, at most ``max_per_connection`` each,
    as even as possible (sizes differ by one at most), in the symbols' order."""
    if max_per_connection < 1:
        raise ValueError(f"max_per_connection must be at least 1, not {max_per_connection}")
    if len(set(symbols)) != len(symbols):
        raise ValueError("each symbol once: a symbol on two connections is two subscriptions")
    count = -(-len(symbols) // max_per_connection)
    if count > CONNECTS_PER_10_MIN:
        raise ValueError(f"{count} connections exceed Kraken's {CONNECTS_PER_10_MIN} per 10 min")
    groups: list[tuple[str, ...]] = []
    start = 0
    for i in range(count):
        size = len(symbols) // count + (i < len(symbols) % count)
        groups.append(tuple(symbols[start : start + size]))
        start += size
    return groups


def stamp(wall_ns: int) -> str:
    """``wall_ns`` (nanoseconds since the epoch, UTC) as Kraken prints a timestamp, to the
    microsecond: always ``STAMP_LEN`` characters."""
    seconds, ns = divmod(wall_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1000:06d}Z"


def stamp_us_of_day(text: str) -> int:
    """Microseconds since midnight UTC of a ``stamp``; a text of another shape (Kraken's own
    timestamps may have fewer digits) raises ``ValueError``."""
    if len(text) != STAMP_LEN or text[10] != "T" or text[19] != "." or text[-1] != "Z":
        raise ValueError(f"not a bench stamp: {text!r}")
    seconds = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
    return seconds * 1_000_000 + int(text[20:26])


def lag_us(seen_us_of_day: int, stamped_us_of_day: int) -> int:
    """From the stamp to when the frame was seen, both in microseconds of the day: a frame
    stamped before midnight and seen after it is not a day early."""
    return (seen_us_of_day - stamped_us_of_day) % DAY_US


def percentile(ordered: Sequence[int], q: float) -> int:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ascending ``ordered``."""
    if not ordered:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {q}")
    rank = -(-len(ordered) * q // 100)  # ceil(n * q / 100), at least 1
    return ordered[max(1, int(rank)) - 1]


def summary(lags: Sequence[int]) -> dict[str, int]:
    """Count, p50, p99 and max of lags in microseconds (zeros with no lags)."""
    if not lags:
        return {"count": 0, "p50_us": 0, "p99_us": 0, "max_us": 0}
    ordered = sorted(lags)
    return {
        "count": len(ordered),
        "p50_us": percentile(ordered, 50),
        "p99_us": percentile(ordered, 99),
        "max_us": ordered[-1],
    }


def highest_kept(steps: Sequence[Mapping[str, Any]], limit_us: int = KEEPS_UP_P99_US) -> int:
    """The highest aggregate rate (frames/s) of a step that kept up: every frame sent was
    seen and its lag p99 was under ``limit_us``; 0 when none did. A step counts at the rate
    asked (``rate_asked``) when the server achieved 95 % of it (``rate``), else at the rate
    it achieved."""
    kept = [
        int(step["rate_asked"] if step["rate"] >= 0.95 * step["rate_asked"] else step["rate"])
        for step in steps
        if step["frames_seen"] == step["frames_sent"] and step["p99_us"] < limit_us
    ]
    return max(kept, default=0)


def instruments(count: int, like: Instrument) -> list[Instrument]:
    """``count`` distinct instruments shaped like ``like`` (its precisions and minimums),
    named ``S001/USD``, ``S002/USD``...: the bench's stand-ins for Kraken's USD pairs."""
    return [
        replace(like, symbol=f"S{i:03d}/USD", base=f"S{i:03d}", altname="", rest_name="")
        for i in range(1, count + 1)
    ]
