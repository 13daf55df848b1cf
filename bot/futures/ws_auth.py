"""The private-feed handshake of Kraken Futures WebSocket v1, sans-I/O.

https://docs.kraken.com/api/docs/guides/futures-websockets: on each connection the client
asks for a challenge (``{"event": "challenge", "api_key": …}``), the server answers
``{"event": "challenge", "message": "<uuid>"}``, and every subscribe or unsubscribe of a
private feed then carries ``api_key``, ``original_challenge`` (the message) and
``signed_challenge`` (``auth.sign_challenge``). A challenge belongs to its connection: a
new connection starts a new handshake (``reset``).

``ChallengeHandshake`` is that state machine for one connection: ``request()`` → bytes to
send; ``accept(event)`` with the server's ``ChallengeIssued``; then ``subscribe(feed)`` /
``unsubscribe(feed)`` → bytes. It holds the key and a ``FuturesSigner`` and never shows
either in a ``repr``; the signed challenge goes only into the frames it builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.errors import ProtocolError
from bot.core.log import Secret
from bot.futures.auth import FuturesSigner
from bot.futures.ws_protocol import PRIVATE_FEEDS, ChallengeIssued
from bot.kraken.codec import dumps

__all__ = ["ChallengeHandshake"]


class ChallengeHandshake:
    """The handshake of one connection (see the module docstring)."""

    __slots__ = ("_key", "_original", "_signed", "_signer")

    def __init__(self, api_key: Secret | str, api_secret: Secret | str) -> None:
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        secret = api_secret.reveal() if isinstance(api_secret, Secret) else api_secret
        self._signer = FuturesSigner(secret)
        self._original: str | None = None
        self._signed: str | None = None

    def __repr__(self) -> str:
        return f"ChallengeHandshake(ready={self.ready})"

    @property
    def ready(self) -> bool:
        """Whether a challenge was received and signed on this connection."""
        return self._signed is not None

    def reset(self) -> None:
        """Forget the challenge (a new connection needs a new one)."""
        self._original = self._signed = None

    def request(self) -> bytes:
        """The challenge request to send first."""
        return dumps({"event": "challenge", "api_key": self._key.reveal()})

    def accept(self, event: ChallengeIssued) -> None:
        """Sign the server's challenge. An empty one is a ``ProtocolError``."""
        if not event.message:
            raise ProtocolError("challenge: empty message")
        self._original = event.message
        self._signed = self._signer.sign_challenge(event.message)

    def _frame(self, event: str, feed: str, product_ids: Sequence[str] | None) -> bytes:
        if feed not in PRIVATE_FEEDS:
            raise ValueError(f"{feed!r} is not a private feed")
        if self._original is None or self._signed is None:
            raise RuntimeError("no challenge yet: send request() and accept() the answer")
        body: dict[str, Any] = {"event": event, "feed": feed}
        if product_ids:
            body["product_ids"] = list(product_ids)
        body["api_key"] = self._key.reveal()
        body["original_challenge"] = self._original
        body["signed_challenge"] = self._signed
        return dumps(body)

    def subscribe(self, feed: str, product_ids: Sequence[str] | None = None) -> bytes:
        """Subscribe to a private feed (``fills`` may name products)."""
        return self._frame("subscribe", feed, product_ids)

    def unsubscribe(self, feed: str, product_ids: Sequence[str] | None = None) -> bytes:
        return self._frame("unsubscribe", feed, product_ids)
