"""The simulator's own signature and nonce check (``bot.sim.auth``), pinned by Kraken's
published example (https://docs.kraken.com/api/docs/guides/spot-rest-auth, "Examples":
buy 1.25 XBTUSD at $37,500)."""

from __future__ import annotations

import json

import pytest

from bot.core.errors import NonceError, RejectedError
from bot.sim.auth import MAX_NONCE, api_sign, nonce_in_body, signature_ok

DOC_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
DOC_PATH = "/0/private/AddOrder"
DOC_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)
FORM = "application/x-www-form-urlencoded"


def test_the_guides_example_signs_and_verifies() -> None:
    nonce = nonce_in_body(DOC_BODY, FORM)
    assert nonce == b"1616492376594"
    assert api_sign(DOC_SECRET, DOC_PATH, nonce, DOC_BODY) == DOC_SIGN
    assert signature_ok(DOC_SECRET, DOC_PATH, nonce, DOC_BODY, DOC_SIGN)


@pytest.mark.parametrize(
    ("path", "body", "sign"),
    [
        ("/0/private/Balance", DOC_BODY, DOC_SIGN),  # another path
        (DOC_PATH, DOC_BODY.replace(b"1.25", b"1.26"), DOC_SIGN),  # another body
        (DOC_PATH, DOC_BODY, DOC_SIGN[:-4] + "AAA="),  # another signature
        (DOC_PATH, DOC_BODY, "not base64 at all \u00e9"),  # junk
    ],
)
def test_anything_else_is_not_the_signature(path: str, body: bytes, sign: str) -> None:
    assert not signature_ok(DOC_SECRET, path, nonce_in_body(body, FORM), body, sign)


def test_a_json_body_is_signed_over_its_exact_bytes() -> None:
    body = b'{"nonce": 1616492376594, "pair": "XBTUSD"}'
    nonce = nonce_in_body(body, "application/json; charset=utf-8")
    assert nonce == b"1616492376594"
    sign = api_sign(DOC_SECRET, DOC_PATH, nonce, body)
    assert signature_ok(DOC_SECRET, DOC_PATH, nonce, body, sign)
    respaced = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert not signature_ok(DOC_SECRET, DOC_PATH, nonce, respaced, sign)
    assert nonce_in_body(b'{"nonce": "42"}', "application/json") == b"42"


@pytest.mark.parametrize(
    "body",
    [
        b"pair=XBTUSD",
        b"nonce=1&nonce=2",
        b"nonce=-1",
        b"nonce=01",
        b"nonce=1.5",
        b"nonce=" + str(MAX_NONCE + 1).encode(),
    ],
)
def test_a_bad_form_nonce_is_an_invalid_nonce(body: bytes) -> None:
    with pytest.raises(NonceError, match="EAPI:Invalid nonce"):
        nonce_in_body(body, None)


@pytest.mark.parametrize("body", [b"{}", b'{"nonce": 1.0}', b'{"nonce": true}', b'{"nonce": null}'])
def test_a_bad_json_nonce_is_an_invalid_nonce(body: bytes) -> None:
    with pytest.raises(NonceError):
        nonce_in_body(body, "application/json")


def test_a_body_that_cannot_be_read_is_an_invalid_argument() -> None:
    with pytest.raises(RejectedError, match="EGeneral:Invalid arguments"):
        nonce_in_body(b"[1, 2]", "application/json")
    with pytest.raises(RejectedError):
        nonce_in_body(b"{nope", "application/json")
    with pytest.raises(RejectedError):
        nonce_in_body(b"nonce=1&\xff", FORM)
    assert (
        nonce_in_body(str(MAX_NONCE).join(["nonce=", ""]).encode(), FORM) == str(MAX_NONCE).encode()
    )
