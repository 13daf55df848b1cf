"""What the simulator's authenticated WebSocket endpoints share: the token on every request.

Every request on ``ws-auth`` (and on the level3 endpoint) carries ``params.token`` from REST
``GetWebSocketsToken``. The venue's ``TokenRegistry`` decides (KRAKEN.md §4): a token must
be used within 900 s of its creation and stays valid while a subscription on it lives; an
unknown, stale or revoked token is answered with ``EAPI:Invalid token`` (the registry's
string; Kraken's SDK also names ``ESession:Invalid session``). The token's key must hold a
permission the request needs (``keys.WS_PERMISSIONS``), else ``EGeneral:Permission denied``.
The socket stays open either way.

This module owns that check (``AuthSession.account_of``); the channels and methods are
``ws_private``'s, ``ws_orders``' and ``ws_level3``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bot.core.errors import TokenError
from bot.sim.keys import ERR_PERMISSION, WS_PERMISSIONS, allowed
from bot.sim.tokens import INVALID_TOKEN
from bot.sim.ws_common import WsSession

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = ["ERR_ARGS", "ERR_CHANNEL", "ERR_DUPLICATE", "ERR_NOT_FOUND", "AuthSession"]

ERR_ARGS: Final = "EGeneral:Invalid arguments"
ERR_CHANNEL: Final = "Subscription name invalid"
ERR_DUPLICATE: Final = "Already subscribed"
ERR_NOT_FOUND: Final = "Subscription Not Found"


class AuthSession(WsSession):
    """A connection whose requests carry a token (see the module docstring)."""

    kind = "private"

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, venue: SimVenue, *, max_queue: int
    ) -> None:
        super().__init__(ws, request, venue, max_queue=max_queue)
        self.revoked: set[str] = set()
        """Tokens a fault revoked on this connection: refused from then on."""
        self._held: list[bytes] | None = None
        """While a request is answered: the channel frames it caused, sent after the answer."""

    def account_of(
        self,
        method: str,
        params: dict[str, Any],
        req_id: int | None,
        time_in: str,
        action: str | None = None,
    ) -> str | None:
        """The account of the request's token, or None after sending Kraken's error. The
        token's key must hold a permission ``action`` (default: ``method``) needs."""
        token = params.get("token")
        if type(token) is not str or not token:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return None
        if token in self.revoked:
            self.fail(method, INVALID_TOKEN, req_id, time_in)
            return None
        try:
            account = self.venue.tokens.check(token, self.venue.monotonic())
        except TokenError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return None
        needed = WS_PERMISSIONS.get(action or method, ())
        if not allowed(self.venue.tokens.permissions(token), needed):
            self.fail(method, ERR_PERMISSION, req_id, time_in)
            return None
        return account

    def attach(self, method: str, token: str, req_id: int | None, time_in: str) -> str | None:
        """Keep ``token`` alive for a new subscription (its account), or None after the
        error was sent."""
        try:
            return self.venue.tokens.attach(token, self.venue.monotonic())
        except TokenError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return None

    def detach(self, token: str) -> None:
        """A subscription on ``token`` ended."""
        self.venue.tokens.detach(token, self.venue.monotonic())

    def send_channel(self, frame: bytes) -> None:
        """A channel frame: held back while a request is being answered, else sent."""
        if self._held is not None:
            self._held.append(frame)
        else:
            self.send(frame)
