"""A notification: what happened, how urgent, in words a person reads on a phone.

``Notice`` is what the rules make and the sender delivers; ``LEVELS`` orders the levels
(a notifier with ``min_level: warning`` gets warnings and criticals). ``Notice.text``
is built from the daemon's figures and names only, and is scrubbed of every registered
secret (``bot.core.log.scrub_text``) when it is made and again when it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from bot.core.log import scrub_text

__all__ = ["LEVELS", "Level", "Notice", "notice"]

Level = Literal["info", "warning", "critical"]
LEVELS: Final[Mapping[str, int]] = {"info": 0, "warning": 1, "critical": 2}
_ICONS: Final[Mapping[str, str]] = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}
MAX_TEXT: Final = 3500  # Telegram takes 4096 characters, Discord 2000 (cut again there)


@dataclass(frozen=True, slots=True)
class Notice:
    """``kind``: a stable code (``started``, ``risk_state``, ``fills``...), for filters and
    the ``json`` webhook format; ``text``: the message itself."""

    kind: str
    level: Level
    text: str
    at_ns: int
    fields: Mapping[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """The text with its level's mark, as chat services show it."""
        return f"{_ICONS[self.level]} {self.text}"

    def at_least(self, level: str) -> bool:
        return LEVELS[self.level] >= LEVELS[level]


def notice(
    kind: str, level: Level, text: str, at_ns: int, fields: Mapping[str, object] | None = None
) -> Notice:
    """A ``Notice`` with its text and fields scrubbed and its text cut to ``MAX_TEXT``."""
    clean = scrub_text(text)
    if len(clean) > MAX_TEXT:
        clean = clean[: MAX_TEXT - 1] + "…"
    shown = {str(k): scrub_text(str(v)) for k, v in (fields or {}).items()}
    return Notice(kind, level, clean, at_ns, shown)
