"""WebSocket tokens for the private feed: one freshly minted token per (re)connect.

Kraken's rule (KRAKEN.md §4): a token from ``GetWebSocketsToken`` (the venue port's
``ws_token``, ``bot.execution.venue``) must be used within 15
minutes and then lives as long as the subscription made with it; "obtain a fresh token
on each connection". ``TokenKeeper.fresh()`` therefore always mints: it is called right
before every connect of the private socket and after every token or session error
(``TokenError``: ``EAPI:Invalid token``, ``ESession:Invalid session``), never cached.

Errors are ``bot.core.errors``' as the venue raises them (transient, rate limit, auth; an
answer without a token string is the venue's ``ProtocolError``). A token authorises private
WebSocket requests (order entry included) while it lives, so it never reaches a log line
or an exception message: neither this module nor the feed logs tokens or requests. It is
not registered with ``bot.core.log.register_secret``: one token per reconnect, for weeks, would
grow the scrubber's pattern without bound.

``TokenSource`` is what the private feed needs of a keeper (``fresh``), so a test can
hand it a stand-in that serves tokens without REST.

This module owns the minting and its bookkeeping; it does not own the socket
(``private_feed``) or the venue's transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.core.clock import Clock
from bot.core.errors import BotError
from bot.core.log import get_logger
from bot.execution.venue import WsToken

__all__ = ["TokenApi", "TokenKeeper", "TokenSource", "TokenStats"]

log = get_logger(component="tokens")


class TokenSource(Protocol):
    """What the private feed needs: a token nobody has used yet."""

    async def fresh(self) -> str: ...


@dataclass(slots=True)
class TokenStats:
    """Counters for /metrics; times are on the keeper's clock (monotonic seconds)."""

    minted: int = 0
    failures: int = 0
    last_minted_at: float | None = None
    last_expires_s: int | None = None  # Kraken's ``expires`` for the last token


class TokenApi(Protocol):
    """What the keeper needs of the venue (``bot.execution.venue.Venue`` has it)."""

    async def ws_token(self) -> WsToken: ...


class TokenKeeper:
    """Mints WebSocket tokens through the venue (Kraken: ``GetWebSocketsToken``)."""

    def __init__(self, venue: TokenApi, clock: Clock) -> None:
        self._venue = venue
        self._clock = clock
        self.stats = TokenStats()

    async def fresh(self) -> str:
        """A newly minted token; raises the venue's error."""
        try:
            minted = await self._venue.ws_token()
        except BotError:
            self.stats.failures += 1
            raise
        stats = self.stats
        stats.minted += 1
        stats.last_minted_at = self._clock.monotonic()
        stats.last_expires_s = minted.expires_s
        log.info("ws_token_minted", count=stats.minted, expires_s=stats.last_expires_s)
        return minted.token

    def token_age_s(self) -> float | None:
        """Seconds since the last token was minted (None before the first)."""
        last = self.stats.last_minted_at
        return None if last is None else self._clock.monotonic() - last
