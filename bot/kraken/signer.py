"""Kraken Spot REST request signing: ``API-Sign``, body encoding, and the server's checks.

The algorithm (KRAKEN.md §1.1, https://docs.kraken.com/api/docs/guides/spot-rest-auth)::

    API-Sign = base64(HMAC-SHA512(key = base64decode(secret),
                                  msg = url_path_bytes + SHA256(str(nonce) + body_bytes)))

``url_path`` is the part of the URL that starts at ``/0/private/``. The nonce appears twice:
as the decimal prefix of the hashed message here, and again inside the body.

**Sign the exact bytes that are sent.** A body is encoded once, by ``encode_form`` or
``encode_json``; those bytes are signed and the same object is handed to the HTTP layer.
Re-serialising JSON (other key order, other spacing) changes the digest and Kraken answers
``EAPI:Invalid signature``.

Both sides use this module: the REST client calls ``encode_*`` and a ``Signer`` (``sign``
keyed once per client, the same signature); the simulator's server calls ``extract_nonce``
and ``verify`` (a constant-time comparison).

This module owns the byte-level format of signed requests. Its functions hold no key and
keep no state; a ``Signer`` holds only its secret's keyed HMAC state, for its owner. It
does no I/O, and never puts a secret into an exception message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from binascii import b2a_base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Final
from urllib.parse import parse_qs, quote_plus

import orjson

from bot.core.errors import ConfigError, NonceError, RejectedError

__all__ = [
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "MAX_NONCE",
    "FormFields",
    "Signer",
    "encode_form",
    "encode_json",
    "extract_nonce",
    "sign",
    "verify",
]

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE: Final = "application/json"
MAX_NONCE: Final = 2**64 - 1  # "always increasing, unsigned 64-bit integer"

# A nonce as the server accepts it: canonical decimal, so that ``str(int(text)) == text``
# and the server hashes the very characters the client hashed.
_CANONICAL_NONCE: Final = re.compile(r"0|[1-9][0-9]*")
# What ``quote_plus`` leaves as it is (``urllib.parse``'s always-safe set, ASCII only).
_FORM_SAFE: Final = re.compile(r"[A-Za-z0-9_.~-]*")
_FORM_SAFE_PAIRS: Final = re.compile(
    r"[A-Za-z0-9_.~-]*=[A-Za-z0-9_.~-]*(?:&[A-Za-z0-9_.~-]*=[A-Za-z0-9_.~-]*)*"
)
# The same, with a "," in a value written as ``quote_plus`` writes it (``oflags=post%2Cfciq``).
_FORM_COMMA_PAIRS: Final = re.compile(
    r"[A-Za-z0-9_.~-]*=(?:[A-Za-z0-9_.~-]|%2C)*(?:&[A-Za-z0-9_.~-]*=(?:[A-Za-z0-9_.~-]|%2C)*)*"
)
_SHA512_BLOCK: Final = 128  # bytes: HMAC pads or hashes the key to this
_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


def _secret_bytes(secret_b64: str) -> bytes:
    try:
        secret = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        # Never echo the secret itself.
        raise ConfigError("API secret is not valid base64") from exc
    if not secret:
        raise ConfigError("API secret is empty")
    return secret


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _nonce_text(nonce: int | str) -> bytes:
    if isinstance(nonce, bool):
        raise TypeError("nonce must be an int or a decimal string, not bool")
    return str(nonce).encode("ascii")


def _message(url_path: str, nonce: int | str, body: bytes | str) -> bytes:
    return url_path.encode("utf-8") + hashlib.sha256(_nonce_text(nonce) + _as_bytes(body)).digest()


def _mac(secret: bytes, url_path: str, nonce: int | str, body: bytes | str) -> bytes:
    return hmac.new(secret, _message(url_path, nonce, body), hashlib.sha512).digest()


def sign(secret_b64: str, url_path: str, nonce: int | str, body: bytes | str) -> str:
    """The ``API-Sign`` header value (88 base64 characters) for one request.

    ``body`` must be the exact bytes sent (a ``str`` is taken as its UTF-8 encoding), and
    ``nonce`` the value inside it. Raises ``ConfigError`` if the secret is not base64.
    """
    return base64.b64encode(_mac(_secret_bytes(secret_b64), url_path, nonce, body)).decode()


class Signer:
    """``sign`` for one secret, decoded and keyed once (the REST client's per-call path).

    ``Signer(secret).sign(path, nonce, body) == sign(secret, path, nonce, body)``. It keeps
    the two SHA-512 states HMAC starts from (RFC 2104: the key padded to the block, XORed
    with ``ipad`` and ``opad``), so a signature is two state copies and two C hash calls;
    it keeps no text of the key, and its ``repr`` shows nothing of either.
    Raises ``ConfigError`` at construction if the secret is not base64.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret_b64: str) -> None:
        key = _secret_bytes(secret_b64)
        if len(key) > _SHA512_BLOCK:
            key = hashlib.sha512(key).digest()
        key = key.ljust(_SHA512_BLOCK, b"\0")
        self._inner = hashlib.sha512(key.translate(_IPAD))
        self._outer = hashlib.sha512(key.translate(_OPAD))

    def __repr__(self) -> str:
        return "Signer(***)"

    def sign(self, url_path: str, nonce: int | str, body: bytes | str) -> str:
        """The ``API-Sign`` header value, as ``sign`` computes it."""
        inner = self._inner.copy()
        inner.update(_message(url_path, nonce, body))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return b2a_base64(outer.digest(), newline=False).decode()


def verify(
    secret_b64: str, url_path: str, nonce: int | str, body: bytes | str, signature: str
) -> bool:
    """Whether ``signature`` is the ``API-Sign`` of this request (constant-time compare).

    A malformed ``signature`` (not base64, wrong length) is simply not valid.
    """
    expected = _mac(_secret_bytes(secret_b64), url_path, nonce, body)
    try:
        given = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    # Compare the base64 text too, so only the canonical encoding passes.
    return hmac.compare_digest(given, expected) and hmac.compare_digest(
        signature.encode("ascii"), base64.b64encode(expected)
    )


# --- encoding: once, and the same bytes are signed and sent ----------------------------


def _form_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError(f"{key}: floats are not sent to Kraken; pass a str, int or Decimal")
    raise TypeError(f"{key}: cannot form-encode a {type(value).__name__}")


def encode_form(params: Mapping[str, object]) -> bytes:
    """``application/x-www-form-urlencoded`` bytes, in ``params`` order.

    Values may be ``str``, ``int``, ``Decimal`` or ``bool`` (sent as ``true``/``false``);
    ``None`` means "absent" and is skipped; floats are refused (exact numbers only).
    """
    pairs = [
        f"{k}={v if type(v) is str else _form_value(k, v)}"
        for k, v in params.items()
        if v is not None
    ]
    text = "&".join(pairs)
    # What ``urllib.parse.urlencode`` gives, without quoting text that needs none (the
    # usual case: one check of the whole text). Exactly one "=" in each of exactly
    # len(pairs) "&"-separated parts, all else unreserved: no key or value held an "=" or
    # an "&", so nothing needed quoting.
    if pairs and (text.count("&") != len(pairs) - 1 or _FORM_SAFE_PAIRS.fullmatch(text) is None):
        text = "&".join(
            [
                f"{_quote(str(k))}={_quote(v if type(v) is str else _form_value(k, v))}"
                for k, v in params.items()
                if v is not None
            ]
        )
    return text.encode("ascii")


class FormFields(dict[str, object]):
    """Fields whose form encoding (``encoded``, without the nonce) was made along with them:
    what ``encode_form`` makes of the same fields, so a body is ``b"nonce=N&" + encoded``.

    Built by ``FormFields.of`` only for text that needs no quoting but a "," written
    ``%2C`` (``oflags=post,fciq``), which it checks; the REST client's AddOrder path writes
    the text with one f-string instead of walking the fields (``encode_form``). It is
    still the dict of the fields (a JSON body is made from them). Not to be changed once
    built."""

    __slots__ = ("encoded",)

    encoded: bytes

    @classmethod
    def of(cls, fields: dict[str, object], text: str) -> FormFields | None:
        """``fields`` with ``text``, their encoding in order, if it needs no quoting (every
        key and value unreserved, one "=" in each of ``len(fields)`` parts), or none but a
        "," in a value written ``%2C`` (checked against the fields: a value holding the
        text "%2C" itself would need "%25"); else None."""
        if text.count("&") != len(fields) - 1:
            return None
        if _FORM_SAFE_PAIRS.fullmatch(text) is None and (
            _FORM_COMMA_PAIRS.fullmatch(text) is None
            or text.replace("%2C", ",") != "&".join([f"{k}={v}" for k, v in fields.items()])
        ):
            return None
        form = cls(fields)
        form.encoded = text.encode("ascii")
        return form


def _quote(text: str) -> str:
    return text if _FORM_SAFE.fullmatch(text) is not None else quote_plus(text)


def _json_ready(value: object, where: str) -> object:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError(f"{where}: floats are not sent to Kraken; pass a str, int or Decimal")
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, f"{where}.{k}") for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: cannot JSON-encode a {type(value).__name__}")


def encode_json(params: Mapping[str, object]) -> bytes:
    """Compact ``application/json`` bytes, in ``params`` order.

    Nested mappings and lists are allowed (``AddOrderBatch``); ``Decimal`` is sent as a JSON
    string (Kraken takes prices and volumes as strings), ``int`` as a number; ``None`` values
    of mappings are skipped; floats are refused.
    """
    ready = _json_ready(params, "body")
    return orjson.dumps(ready)


# --- server side -------------------------------------------------------------------------


def _nonce_from_value(value: object) -> int:
    if isinstance(value, bool):
        raise NonceError("EAPI:Invalid nonce", "nonce is not an integer")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise NonceError("EAPI:Invalid nonce", "nonce is not an integer")
    if _CANONICAL_NONCE.fullmatch(text) is None:
        raise NonceError("EAPI:Invalid nonce", "nonce is not a canonical decimal integer")
    nonce = int(text)
    if nonce > MAX_NONCE:
        raise NonceError("EAPI:Invalid nonce", "nonce exceeds an unsigned 64-bit integer")
    return nonce


def extract_nonce(body: bytes, content_type: str | None) -> int:
    """The nonce inside a request body, as the server reads it.

    ``content_type`` is the request's header (parameters such as ``; charset=utf-8`` are
    ignored); a JSON media type means JSON, anything else (or none) means a form body, which
    is Kraken's default. The nonce must appear once, as a canonical decimal integer (so
    ``str(nonce)`` is exactly what the client hashed) within 0..2**64-1.

    Raises ``RejectedError("EGeneral:Invalid arguments")`` for a body that cannot be parsed,
    ``NonceError("EAPI:Invalid nonce")`` for a missing or malformed nonce.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON_CONTENT_TYPE or media.endswith("+json"):
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RejectedError("EGeneral:Invalid arguments", "body is not valid JSON") from exc
        if not isinstance(parsed, dict):
            raise RejectedError("EGeneral:Invalid arguments", "JSON body is not an object")
        if "nonce" not in parsed:
            raise NonceError("EAPI:Invalid nonce", "no nonce in the body")
        return _nonce_from_value(parsed["nonce"])
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RejectedError("EGeneral:Invalid arguments", "form body is not ASCII") from exc
    values = parse_qs(text, keep_blank_values=True).get("nonce", [])
    if not values:
        raise NonceError("EAPI:Invalid nonce", "no nonce in the body")
    if len(values) > 1:
        raise NonceError("EAPI:Invalid nonce", "nonce given more than once")
    return _nonce_from_value(values[0])
