"""Authent and the signed challenge, pinned against Kraken's documented inputs.

The expected values are computed here independently, step by step as the docs list them
(hashlib/hmac/base64 directly, not ``bot.futures.auth``), and the REST one is also pinned
as a literal: two third-party implementations (KRAKEN.md §6.1) print the same string for
the guide's inputs. The WS challenge has an official expected output in Kraken's guide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest

from bot.core.errors import ConfigError
from bot.futures.auth import (
    FuturesSigner,
    authent,
    encode_params,
    endpoint_path,
    sign_challenge,
)

# https://docs.kraken.com/api/docs/guides/futures-rest (KRAKEN.md §6.1): the guide's inputs.
DOC_POST_DATA = "symbol=fi_xbtusd_180615"
DOC_NONCE = "1415957147987"
DOC_PATH = "/api/v3/orderbook"
# The guide prints an 87-character secret, which is not valid base64: one "=" completes it.
DOC_SECRET_87 = (
    "rttp4AzwRfYEdQ7R7X8Z/04Y4TZPa97pqCypi3xXxAqftygftnI6H9yGV+OcUOOJeFtZkr8mVwbAndU3Kz4Q+eG"
)
DOC_SECRET = DOC_SECRET_87 + "="
THIRD_PARTY_AUTHENT = (
    "DqUyz8Wh/72af7dimSXHw91IFxrAriTgVodyg2s67PU2mVStwLDQak+uIoCtfb43XONq0xVAp+vm5dqnhFAB1Q=="
)

# https://docs.kraken.com/api/docs/guides/futures-websockets: "expected output from example
# inputs".
WS_CHALLENGE = "c100b894-1729-464d-ace1-52dbce11db42"
WS_SECRET = (
    "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm"
)
WS_SIGNED = (
    "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A=="
)


def doc_steps(post_data: str, nonce: str, path: str, secret: str) -> str:
    """The five steps of the guide, literally."""
    step1 = post_data + nonce + path
    step2 = hashlib.sha256(step1.encode()).digest()
    step3 = base64.b64decode(secret)
    step4 = hmac.new(step3, step2, hashlib.sha512).digest()
    return base64.b64encode(step4).decode()


def test_authent_of_the_guide_inputs() -> None:
    expected = doc_steps(DOC_POST_DATA, DOC_NONCE, DOC_PATH, DOC_SECRET)
    assert expected == THIRD_PARTY_AUTHENT
    assert authent(DOC_SECRET, DOC_POST_DATA, DOC_NONCE, DOC_PATH) == expected
    assert authent(DOC_SECRET, DOC_POST_DATA, int(DOC_NONCE), DOC_PATH) == expected
    assert FuturesSigner(DOC_SECRET).authent(DOC_POST_DATA, DOC_NONCE, DOC_PATH) == expected


def test_the_derivatives_prefix_is_not_signed() -> None:
    full = "/derivatives" + DOC_PATH
    assert endpoint_path(full) == DOC_PATH
    assert endpoint_path("/api/history/v2/executions") == "/api/history/v2/executions"
    signed = authent(DOC_SECRET, DOC_POST_DATA, DOC_NONCE, full)
    assert signed == THIRD_PARTY_AUTHENT
    # Hashing the prefix as well would give another signature: the check can fail.
    assert doc_steps(DOC_POST_DATA, DOC_NONCE, full, DOC_SECRET) != signed


def test_no_nonce_hashes_the_empty_string() -> None:
    assert authent(DOC_SECRET, DOC_POST_DATA, "", DOC_PATH) == doc_steps(
        DOC_POST_DATA, "", DOC_PATH, DOC_SECRET
    )


def test_the_guides_87_character_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        authent(DOC_SECRET_87, DOC_POST_DATA, DOC_NONCE, DOC_PATH)
    assert DOC_SECRET_87 not in str(info.value)
    with pytest.raises(ConfigError):
        FuturesSigner("")


def test_signs_the_url_encoded_text_as_sent() -> None:
    """The 2024 change: hash ``greeting=hello%20world``, not ``greeting=hello world``."""
    sent = encode_params({"greeting": "hello world"})
    assert sent == "greeting=hello%20world"
    assert authent(DOC_SECRET, sent, DOC_NONCE, DOC_PATH) == doc_steps(
        "greeting=hello%20world", DOC_NONCE, DOC_PATH, DOC_SECRET
    )
    assert authent(DOC_SECRET, sent, DOC_NONCE, DOC_PATH) != doc_steps(
        "greeting=hello world", DOC_NONCE, DOC_PATH, DOC_SECRET
    )


def test_batchorder_json_is_encoded_once_and_decodes_back() -> None:
    document = json.dumps({"batchOrder": [{"order": "cancel", "order_id": "a b"}]})
    sent = encode_params({"json": document})
    assert " " not in sent and '"' not in sent and "{" not in sent
    assert urllib.parse.parse_qs(sent) == {"json": [document]}


def test_encode_params_keeps_order_drops_none_and_refuses_floats() -> None:
    from decimal import Decimal

    text = encode_params(
        {"orderType": "lmt", "skip": None, "size": Decimal("1E-4"), "reduceOnly": True, "n": 3}
    )
    assert text == "orderType=lmt&size=0.0001&reduceOnly=true&n=3"
    with pytest.raises(TypeError):
        encode_params({"size": 0.1})


def test_the_challenge_signature_of_the_guide() -> None:
    assert sign_challenge(WS_SECRET, WS_CHALLENGE) == WS_SIGNED
    assert FuturesSigner(WS_SECRET).sign_challenge(WS_CHALLENGE) == WS_SIGNED


def test_signer_repr_shows_nothing() -> None:
    signer = FuturesSigner(WS_SECRET)
    assert WS_SECRET not in repr(signer) and "***" in repr(signer)
