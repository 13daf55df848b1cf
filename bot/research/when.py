"""``--since`` and friends: a point in time as a user types it, to ns since the epoch (UTC).

Accepted, and nothing else (a typo must not silently mean 1970):

* a duration back from now: ``90s``, ``30m``, ``12h``, ``7d``, ``2w``;
* an ISO-8601 date or date-time: ``2024-05-01`` (midnight UTC), ``2024-05-01T12:00``,
  ``2024-05-01 12:00:00.5``, with ``Z`` or an offset (``+02:00``); without one it is UTC;
* seconds since the Unix epoch: ``@1714564800`` (the ``@`` as in GNU ``date``).

Pure: "now" is passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from bot.research.record import BadInput

__all__ = ["FORMS", "parse_time"]

FORMS: Final = (
    "30m, 12h or 7d ago; 2024-05-01, 2024-05-01T12:00 or 2024-05-01T12:00:00Z; @1714564800"
)
_AGO: Final = re.compile(r"(\d+)([smhdw])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_EPOCH: Final = re.compile(r"@(\d{1,12})(?:\.(\d{1,9}))?")
_NS: Final = 1_000_000_000


def parse_time(text: str, now_ns: int, *, what: str = "--since") -> int:
    """``text`` as ns since the epoch; ``BadInput`` naming ``what`` and the accepted forms."""
    value = text.strip()
    if match := _AGO.fullmatch(value):
        return now_ns - int(match.group(1)) * _UNIT_S[match.group(2)] * _NS
    if match := _EPOCH.fullmatch(value):
        return int(match.group(1)) * _NS + int((match.group(2) or "").ljust(9, "0"))
    if re.fullmatch(r"\d{4}-\d\d-\d\d([T ][\d:.]+)?(Z|[+-]\d\d:?\d\d)?", value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            whole = int(moment.replace(microsecond=0).timestamp())
            return whole * _NS + moment.microsecond * 1000
    raise BadInput(f"{what} {text!r}: not a time; use {FORMS}")
