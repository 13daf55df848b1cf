"""The simulator's check of a signed Kraken request: the nonce in the body and ``API-Sign``.

Written from Kraken's auth guide (https://docs.kraken.com/api/docs/guides/spot-rest-auth),
apart from the client's signer (``bot.kraken.signer``), so that where one of them misreads
the guide the tests can see it. The guide's formula, verbatim: "HMAC-SHA512 of (URI path +
SHA256(nonce + POST data)) and base64 decoded secret API key", the URI path being the part
that starts with ``/0/private``. So the server:

1. reads the ``nonce`` from the body *as sent* (form or JSON), once, as the decimal text
   the client hashed (an unsigned 64-bit integer: "always increasing, unsigned 64-bit
   integer"), else ``EAPI:Invalid nonce``;
2. hashes ``SHA256(nonce_text + body_bytes)`` over the exact bytes received, then
   ``HMAC-SHA512(base64decode(secret), path_bytes + digest)``, and compares its base64
   text with ``API-Sign`` in constant time, else ``EAPI:Invalid signature``.

Pinned by the guide's own example in ``tests/unit/sim/test_auth.py``. Pure: no state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Final
from urllib.parse import parse_qsl

from bot.core.errors import NonceError, RejectedError

__all__ = ["ERR_INVALID_NONCE", "MAX_NONCE", "api_sign", "nonce_in_body", "signature_ok"]

ERR_INVALID_NONCE: Final = "EAPI:Invalid nonce"
MAX_NONCE: Final = (1 << 64) - 1
_DECIMAL: Final = re.compile(rb"0|[1-9][0-9]{0,19}")


def _nonce_text(value: object) -> bytes:
    """The nonce's decimal text, as the client must have hashed it."""
    if type(value) is int:
        text = str(value).encode()
    elif isinstance(value, str):
        text = value.encode("ascii", "replace")
    else:
        raise NonceError(ERR_INVALID_NONCE, "the nonce is not an integer")
    if _DECIMAL.fullmatch(text) is None or int(text) > MAX_NONCE:
        raise NonceError(ERR_INVALID_NONCE, "the nonce is not an unsigned 64-bit integer")
    return text


def nonce_in_body(body: bytes, content_type: str | None) -> bytes:
    """The ``nonce`` of a request body, as decimal text (form by default, JSON by header)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            data = json.loads(body)
        except ValueError:
            raise RejectedError("EGeneral:Invalid arguments", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise RejectedError("EGeneral:Invalid arguments", "the body is not a JSON object")
        if "nonce" not in data:
            raise NonceError(ERR_INVALID_NONCE, "no nonce")
        return _nonce_text(data["nonce"])
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise RejectedError("EGeneral:Invalid arguments", "the body is not UTF-8") from None
    nonces = [value for name, value in fields if name == "nonce"]
    if len(nonces) != 1:
        raise NonceError(ERR_INVALID_NONCE, "no nonce" if not nonces else "two nonces")
    return _nonce_text(nonces[0])


def api_sign(secret_b64: str, path: str, nonce: bytes, body: bytes) -> str:
    """``API-Sign`` for ``path`` (``/0/private/<Method>``), ``nonce`` text and body bytes."""
    digest = hashlib.sha256(nonce + body).digest()
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, path.encode() + digest, hashlib.sha512).digest()).decode()


def signature_ok(secret_b64: str, path: str, nonce: bytes, body: bytes, given: str) -> bool:
    """Whether ``given`` is the request's ``API-Sign`` (constant-time; junk is just wrong)."""
    try:
        expected = api_sign(secret_b64, path, nonce, body)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())
