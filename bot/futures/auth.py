"""Kraken Futures signing: ``Authent`` for REST v3 and the signed WebSocket challenge.

``Authent`` (KRAKEN.md §6.1, https://docs.kraken.com/api/docs/guides/futures-rest)::

    Authent = base64(HMAC-SHA512(key = base64decode(secret),
                                 msg = SHA256(postData + nonce + endpointPath)))

- ``postData`` is the ``&``-joined ``k=v`` text of the parameters **exactly as sent**:
  since the 20 February 2024 change Kraken hashes "the full, url-encoded URI component as
  it appears in the request" (``greeting=hello%20world``), which matters most for
  ``batchorder``, whose JSON travels url-encoded in a parameter. ``encode_params`` makes
  that text once; the client sends it and signs it, so the two can never differ.
- ``nonce`` is the ``Nonce`` header's text (the empty string when none is sent).
- ``endpointPath`` is the URL path without the ``/derivatives`` prefix:
  ``/derivatives/api/v3/sendorder`` is signed as ``/api/v3/sendorder`` (``endpoint_path``).

The order differs from spot's ``API-Sign`` (nonce after the data, and the path is hashed,
not prepended), so this module shares no code with ``bot.kraken.signer``.

The WebSocket challenge (https://docs.kraken.com/api/docs/guides/futures-websockets) is
signed with the same steps, ``postData + nonce + endpointPath`` replaced by the challenge
string: ``base64(HMAC-SHA512(base64decode(secret), SHA256(challenge)))``.

This module owns those byte-level formats. ``FuturesSigner`` holds a decoded secret for its
owner and shows nothing of it in a ``repr``; no function here logs or raises with a secret
in its message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Final
from urllib.parse import quote

from bot.core.errors import ConfigError

__all__ = [
    "DERIVATIVES_PREFIX",
    "FuturesSigner",
    "authent",
    "encode_params",
    "endpoint_path",
    "sign_challenge",
]

DERIVATIVES_PREFIX: Final = "/derivatives"
# RFC 3986 unreserved characters stay as they are; everything else is percent-encoded
# (a space is %20, never "+": the docs' own example of the 2024 change).
_UNRESERVED: Final = "-_.~"


def _secret_bytes(secret_b64: str) -> bytes:
    try:
        secret = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        # Never echo the secret itself.
        raise ConfigError("Futures API secret is not valid base64") from None
    if not secret:
        raise ConfigError("Futures API secret is empty")
    return secret


def endpoint_path(url_path: str) -> str:
    """The path Kraken hashes: the URL path without its ``/derivatives`` prefix.

    ``/derivatives/api/v3/sendorder`` → ``/api/v3/sendorder``; a path without the prefix
    (``/api/history/v2/...`` on its own host) is signed as it is.
    """
    if url_path.startswith(DERIVATIVES_PREFIX + "/"):
        return url_path[len(DERIVATIVES_PREFIX) :]
    return url_path


def _value_text(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | Decimal):
        return str(value) if not isinstance(value, Decimal) else format(value, "f")
    if isinstance(value, float):
        raise TypeError(f"{key}: floats are not sent to Kraken; pass a str, int or Decimal")
    raise TypeError(f"{key}: cannot encode a {type(value).__name__}")


def encode_params(params: Mapping[str, object]) -> str:
    """The url-encoded ``k=v&k=v`` text of ``params``, in their order: what is sent and
    what is signed. ``None`` values are left out; booleans are ``true``/``false``;
    ``Decimal`` is written in plain notation; floats are refused (exact numbers only)."""
    return "&".join(
        f"{quote(str(k), safe=_UNRESERVED)}={quote(_value_text(k, v), safe=_UNRESERVED)}"
        for k, v in params.items()
        if v is not None
    )


def _digest(post_data: str, nonce: str, path: str) -> bytes:
    return hashlib.sha256((post_data + nonce + path).encode("utf-8")).digest()


def authent(secret_b64: str, post_data: str, nonce: int | str, path: str) -> str:
    """The ``Authent`` header for one request (``path`` with or without ``/derivatives``).

    ``nonce`` is the ``Nonce`` header's value ("" when none is sent). Raises
    ``ConfigError`` if the secret is not base64.
    """
    mac = hmac.new(
        _secret_bytes(secret_b64),
        _digest(post_data, str(nonce), endpoint_path(path)),
        hashlib.sha512,
    )
    return base64.b64encode(mac.digest()).decode("ascii")


def sign_challenge(secret_b64: str, challenge: str) -> str:
    """The ``signed_challenge`` of a WebSocket challenge (a UUID string)."""
    digest = hashlib.sha256(challenge.encode("utf-8")).digest()
    mac = hmac.new(_secret_bytes(secret_b64), digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


class FuturesSigner:
    """``authent`` and ``sign_challenge`` for one secret, decoded once.

    ``FuturesSigner(s).authent(d, n, p) == authent(s, d, n, p)``. Raises ``ConfigError``
    at construction if the secret is not base64; its ``repr`` shows nothing of it.
    """

    __slots__ = ("_key",)

    def __init__(self, secret_b64: str) -> None:
        self._key = _secret_bytes(secret_b64)

    def __repr__(self) -> str:
        return "FuturesSigner(***)"

    def authent(self, post_data: str, nonce: int | str, path: str) -> str:
        mac = hmac.new(self._key, _digest(post_data, str(nonce), endpoint_path(path)), "sha512")
        return base64.b64encode(mac.digest()).decode("ascii")

    def sign_challenge(self, challenge: str) -> str:
        digest = hashlib.sha256(challenge.encode("utf-8")).digest()
        return base64.b64encode(hmac.new(self._key, digest, "sha512").digest()).decode("ascii")
