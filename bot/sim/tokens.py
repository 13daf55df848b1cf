"""WebSocket tokens as Kraken issues them (KRAKEN.md §4), pure.

``GetWebSocketsToken`` mints a token valid for 900 s. A token must be *used* (a successful
private subscription) within those 900 s; once used it stays valid while a subscription on
it lives. A token past its window, revoked by a fault, or unknown is refused with
``EAPI:Invalid token`` (Kraken's SDK names that string and ``ESession:Invalid session``;
the exact live string is unconfirmed, KRAKEN.md §9.6). Time is passed in (monotonic s).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from bot.core.errors import TokenError
from bot.sim.keys import ALL_PERMISSIONS, Permission

__all__ = ["TOKEN_LIFETIME_S", "TokenRegistry"]

TOKEN_LIFETIME_S: Final = 900
INVALID_TOKEN: Final = "EAPI:Invalid token"


@dataclass(slots=True)
class _Token:
    account: str
    issued_at: float
    permissions: frozenset[Permission] = ALL_PERMISSIONS
    live_subscriptions: int = 0
    revoked: bool = False


class TokenRegistry:
    """Tokens by value. ``token_bytes`` is injectable so a seeded simulator is repeatable."""

    def __init__(self, lifetime_s: float = TOKEN_LIFETIME_S, token_bytes: int = 32) -> None:
        self.lifetime_s = lifetime_s
        self._nbytes = token_bytes
        self._tokens: dict[str, _Token] = {}

    def issue(
        self, account: str, now: float, permissions: frozenset[Permission] = ALL_PERMISSIONS
    ) -> tuple[str, int]:
        """A new token for ``account`` and its ``expires`` in seconds, as REST returns; it
        carries the ``permissions`` of the key that asked for it."""
        token = secrets.token_urlsafe(self._nbytes)
        self._tokens[token] = _Token(account, now, permissions)
        return token, int(self.lifetime_s)

    def permissions(self, token: str) -> frozenset[Permission]:
        """What the key that asked for ``token`` may do (nothing for an unknown token)."""
        entry = self._tokens.get(token)
        return entry.permissions if entry is not None else frozenset()

    def check(self, token: str, now: float) -> str:
        """The token's account, or ``TokenError`` if it may not be used now."""
        entry = self._tokens.get(token)
        if entry is None or entry.revoked:
            raise TokenError(INVALID_TOKEN)
        if entry.live_subscriptions == 0 and now - entry.issued_at > self.lifetime_s:
            raise TokenError(INVALID_TOKEN)
        return entry.account

    def attach(self, token: str, now: float) -> str:
        """A private subscription starts on ``token`` (checked first); returns the account."""
        account = self.check(token, now)
        self._tokens[token].live_subscriptions += 1
        return account

    def detach(self, token: str, now: float) -> None:
        """A subscription on ``token`` ended; with none left, its 900 s count from now."""
        entry = self._tokens.get(token)
        if entry is None:
            return
        entry.live_subscriptions = max(0, entry.live_subscriptions - 1)
        if entry.live_subscriptions == 0:
            entry.issued_at = now

    def expire(self, account: str | None = None) -> int:
        """Fault: revoke every token (of ``account``); returns how many."""
        count = 0
        for entry in self._tokens.values():
            if account is None or entry.account == account:
                if not entry.revoked:
                    count += 1
                entry.revoked = True
        return count
