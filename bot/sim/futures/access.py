"""A Futures API key's access levels, as Kraken Futures sets them per key (pure).

Kraken's guide to creating a Futures key ("How to create an API key for Kraken
Derivatives", https://support.kraken.com/articles/360022839451-how-to-create-an-api-key-for-kraken-derivatives)
gives each key two settings:

- **General API**: *No Access* ("does not allow any access to any endpoints"), *Read Only*
  ("allows accessing only endpoints that do not write to the server") or *Full Access*
  ("allows accessing all endpoints, excluding digital asset withdrawals");
- **Withdrawal API**: *No Access* or *Full Access* (digital asset withdrawals only).

Kraken does not document the answer to a call the key's level does not allow; its Futures
error list has one error for a key it will not serve, ``authenticationError``
(https://docs.kraken.com/api/docs/guides/futures-rest), and that is what a Read Only key's
write was seen to get (docs/futures.md). So the simulator answers ``authenticationError``
to a private REST call the level forbids (a write for Read Only, anything for No Access)
and refuses a No Access key's signed WebSocket challenge. The simulator serves no
withdrawal endpoint, so the Withdrawal API setting is kept (``/admin/keys`` shows it) and
enforced nowhere. This module owns the levels and the verdict; ``rest`` and ``ws`` ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

__all__ = ["FULL", "NOT_ALLOWED", "KeyAccess", "Level"]

NOT_ALLOWED: Final = "authenticationError"
"""The answer to a call the key's level does not allow (see the module docstring)."""


class Level(StrEnum):
    """One setting's level, as Kraken's key page names them (``label``)."""

    NONE = "none"
    READ_ONLY = "read_only"
    FULL = "full"

    @property
    def label(self) -> str:
        return {"none": "No Access", "read_only": "Read Only", "full": "Full Access"}[self.value]

    @classmethod
    def parse(cls, value: object) -> Level:
        """From an id (``read_only``) or Kraken's name (``Read Only``); ``ValueError``."""
        if isinstance(value, str):
            text = value.strip().lower().replace(" ", "_").replace("-", "_")
            text = {"no_access": "none", "full_access": "full"}.get(text, text)
            for level in cls:
                if level.value == text:
                    return level
        known = ", ".join(f"{x.value} ({x.label})" for x in cls)
        raise ValueError(f"unknown access level {value!r} (known: {known})")


@dataclass(frozen=True, slots=True)
class KeyAccess:
    """A key's two settings; the default is the daemon's key: Full Access, no withdrawals."""

    general: Level = Level.FULL
    withdrawal: Level = Level.NONE

    def __post_init__(self) -> None:
        if self.withdrawal is Level.READ_ONLY:
            raise ValueError("the Withdrawal API setting is No Access or Full Access")

    def allows(self, *, write: bool) -> bool:
        """Whether the General API level lets the key make a read (or a ``write``)."""
        if self.general is Level.NONE:
            return False
        return not write or self.general is Level.FULL

    def as_dict(self) -> dict[str, str]:
        return {"general": self.general.value, "withdrawal": self.withdrawal.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyAccess:
        """``{"general": ..., "withdrawal": ...}`` (either may be left out: the default);
        ``ValueError`` says what is wrong."""
        return cls(
            Level.parse(data.get("general", Level.FULL.value)),
            Level.parse(data.get("withdrawal", Level.NONE.value)),
        )


FULL: Final = KeyAccess()
