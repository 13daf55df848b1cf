"""The Futures simulator's checks of ``Authent``, nonces and signed challenges.

Written from Kraken's guides, separately from the client's ``bot.futures.auth`` (the
simulator must be a second reading of the docs, so that a misreading on one side shows):

- ``Authent`` (https://docs.kraken.com/api/docs/guides/futures-rest): the server hashes
  ``postData + Nonce + endpointPath`` with SHA-256, where ``postData`` is the request's
  parameters exactly as they arrived (the raw, still url-encoded query string followed by
  the raw form body: one of them is normally empty), ``Nonce`` the header's text ("" if
  absent) and ``endpointPath`` the URL path less its ``/derivatives`` prefix; then
  HMAC-SHA-512 keyed with the base64-decoded secret; the base64 of that must equal the
  ``Authent`` header (compared in constant time).
- Nonces: Kraken "tolerates nonces that are out of order for a brief period of time"
  without saying how long. ``NonceWindow`` refuses a nonce seen before
  (``nonceDuplicate``) and one at or below ``highest - window`` (``nonceBelowThreshold``);
  the default window is 0, strictly increasing, so a client that relies on the tolerance
  is caught here rather than on the exchange.
- The WebSocket challenge (https://docs.kraken.com/api/docs/guides/futures-websockets):
  ``signed_challenge == base64(HMAC-SHA-512(b64decode(secret), SHA-256(challenge)))``.

This module owns those checks and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import deque
from typing import Final

__all__ = ["NonceWindow", "authent_matches", "challenge_matches", "signed_path"]

_PREFIX: Final = "/derivatives"
_RECENT: Final = 4096


def signed_path(url_path: str) -> str:
    """The URL path as Kraken hashes it: without the ``/derivatives`` prefix."""
    return url_path[len(_PREFIX) :] if url_path.startswith(_PREFIX + "/") else url_path


def _key(secret_b64: str) -> bytes | None:
    try:
        return base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        return None


def _matches(key: bytes, digest: bytes, given: str) -> bool:
    expected = base64.b64encode(hmac.new(key, digest, hashlib.sha512).digest())
    try:
        given_bytes = given.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given_bytes)


def authent_matches(secret_b64: str, post_data: str, nonce: str, url_path: str, given: str) -> bool:
    """Whether ``given`` is the ``Authent`` of this request."""
    key = _key(secret_b64)
    if key is None:
        return False
    message = (post_data + nonce + signed_path(url_path)).encode("utf-8")
    return _matches(key, hashlib.sha256(message).digest(), given)


def challenge_matches(secret_b64: str, challenge: str, signed: str) -> bool:
    """Whether ``signed`` is ``challenge`` signed with ``secret_b64``."""
    key = _key(secret_b64)
    if key is None:
        return False
    return _matches(key, hashlib.sha256(challenge.encode("utf-8")).digest(), signed)


class NonceWindow:
    """One key's nonces: ``check`` returns Kraken's error code, or None and records it."""

    __slots__ = ("_recent", "_seen", "highest", "window")

    def __init__(self, window: int = 0) -> None:
        if window < 0:
            raise ValueError("the nonce window cannot be negative")
        self.window = window
        self.highest: int | None = None
        self._recent: deque[int] = deque()
        self._seen: set[int] = set()

    def check(self, nonce: int) -> str | None:
        if nonce in self._seen:
            return "nonceDuplicate"
        if self.highest is not None and nonce <= self.highest - self.window:
            return "nonceBelowThreshold" if nonce < self.highest else "nonceDuplicate"
        self.highest = nonce if self.highest is None else max(self.highest, nonce)
        self._seen.add(nonce)
        self._recent.append(nonce)
        if len(self._recent) > _RECENT:
            self._seen.discard(self._recent.popleft())
        return None
