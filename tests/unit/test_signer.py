"""API-Sign against Kraken's published vectors, the encoders, and the server-side checks."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import ConfigError, NonceError, RejectedError
from bot.kraken.signer import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    Signer,
    encode_form,
    encode_json,
    extract_nonce,
    sign,
    verify,
)

# Kraken's auth guide, "Examples" table: a limit order, buy 1.25 XBTUSD at $37,500.
# https://docs.kraken.com/api/docs/guides/spot-rest-auth
DOC_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
DOC_NONCE = 1616492376594
DOC_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_PATH = "/0/private/AddOrder"
DOC_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)

# Kraken's SDK golden vector: krakenfx/kraken-api-sdk rust/src/auth/signer.rs,
# test hmac_signature_pins_canon_algorithm_against_fixed_inputs (secret = 32 bytes of 0x01).
SDK_SECRET = base64.b64encode(bytes([0x01] * 32)).decode()
SDK_NONCE = 1_700_000_000_000_000_000
SDK_PATH = "/0/private/Balance"
SDK_BODY = "nonce=1700000000000000000"
SDK_SIGN = (
    "6i7+cpXVLDDnDOekgsRcgFQhkYFyPDSSxhSVA8OrA6vjziXcy2K1DP3n7f9B/Kgni71WjBSQusZKxduRsdF20Q=="
)


def test_kraken_documented_example() -> None:
    assert sign(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY) == DOC_SIGN


def test_kraken_documented_example_from_encoded_params() -> None:
    body = encode_form(
        {
            "nonce": DOC_NONCE,
            "ordertype": "limit",
            "pair": "XBTUSD",
            "price": 37500,
            "type": "buy",
            "volume": Decimal("1.25"),
        }
    )
    assert body == DOC_BODY.encode()
    assert sign(DOC_SECRET, DOC_PATH, str(DOC_NONCE), body) == DOC_SIGN


def test_kraken_sdk_golden_vector() -> None:
    signature = sign(SDK_SECRET, SDK_PATH, SDK_NONCE, SDK_BODY.encode())
    assert signature == SDK_SIGN
    assert len(signature) == 88
    assert len(base64.b64decode(signature)) == 64


@pytest.mark.parametrize(
    ("secret", "path", "nonce", "body"),
    [
        (SDK_SECRET, SDK_PATH, SDK_NONCE + 1, SDK_BODY),
        (SDK_SECRET, "/0/private/AddOrder", SDK_NONCE, SDK_BODY),
        (SDK_SECRET, SDK_PATH, SDK_NONCE, SDK_BODY + "&extra=x"),
        (base64.b64encode(bytes([0x02] * 32)).decode(), SDK_PATH, SDK_NONCE, SDK_BODY),
    ],
)
def test_every_input_is_signed(secret: str, path: str, nonce: int, body: str) -> None:
    assert sign(secret, path, nonce, body) != SDK_SIGN


def test_verify_accepts_the_right_signature_only() -> None:
    assert verify(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY.encode(), DOC_SIGN)
    assert not verify(DOC_SECRET, DOC_PATH, DOC_NONCE + 1, DOC_BODY, DOC_SIGN)
    assert not verify(DOC_SECRET, "/0/private/Balance", DOC_NONCE, DOC_BODY, DOC_SIGN)
    assert not verify(SDK_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY, DOC_SIGN)
    flipped = ("5" if DOC_SIGN[0] != "5" else "6") + DOC_SIGN[1:]
    assert not verify(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY, flipped)


@pytest.mark.parametrize("bad", ["", "not base64!", DOC_SIGN[:-2], DOC_SIGN + "AAAA", "é" * 88])
def test_verify_rejects_malformed_signatures(bad: str) -> None:
    assert not verify(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY, bad)


def test_bad_secret_is_a_config_error_that_does_not_leak_it() -> None:
    secret = "not-base64-secret-value!"
    with pytest.raises(ConfigError) as info:
        sign(secret, DOC_PATH, 1, "nonce=1")
    assert secret not in str(info.value)
    with pytest.raises(ConfigError):
        sign("", DOC_PATH, 1, "nonce=1")


# --- JSON bodies: Kraken prints no vector, so these are derived -----------------------------


def test_json_body_signs_the_exact_bytes_sent() -> None:
    params = {
        "nonce": DOC_NONCE,
        "ordertype": "limit",
        "pair": "XBTUSD",
        "price": Decimal("37500"),
        "type": "buy",
        "volume": Decimal("1.25"),
    }
    body = encode_json(params)
    assert body == (
        b'{"nonce":1616492376594,"ordertype":"limit","pair":"XBTUSD",'
        b'"price":"37500","type":"buy","volume":"1.25"}'
    )
    signature = sign(DOC_SECRET, DOC_PATH, DOC_NONCE, body)
    # The server reads the nonce back out of the same bytes and verifies.
    nonce = extract_nonce(body, JSON_CONTENT_TYPE)
    assert nonce == DOC_NONCE
    assert verify(DOC_SECRET, DOC_PATH, nonce, body, signature)
    # Signing the same bytes as text or bytes is the same signature; the form body is not.
    assert sign(DOC_SECRET, DOC_PATH, str(DOC_NONCE), body.decode()) == signature
    assert signature != DOC_SIGN
    # Re-serialising the same JSON (spaces, key order) changes the digest: never do it.
    respaced = json.dumps(json.loads(body)).encode()
    reordered = json.dumps(dict(reversed(json.loads(body).items())), separators=(",", ":"))
    reordered_bytes = reordered.encode()
    for other in (respaced, reordered_bytes):
        assert json.loads(other) == json.loads(body)
        assert other != body
        assert sign(DOC_SECRET, DOC_PATH, DOC_NONCE, other) != signature
        assert not verify(DOC_SECRET, DOC_PATH, DOC_NONCE, other, signature)


def test_encode_json_nested_batch_and_none() -> None:
    body = encode_json(
        {
            "nonce": 5,
            "pair": "XBTUSD",
            "orders": [{"ordertype": "limit", "price": Decimal("1.5"), "cl_ord_id": None}],
            "validate": True,
        }
    )
    assert body == (
        b'{"nonce":5,"pair":"XBTUSD","orders":[{"ordertype":"limit","price":"1.5"}],'
        b'"validate":true}'
    )


def test_encode_form_values() -> None:
    body = encode_form({"nonce": 7, "oflags": "post,fciq", "validate": False, "userref": None})
    assert body == b"nonce=7&oflags=post%2Cfciq&validate=false"


def test_signer_is_sign_with_the_secret_keyed_once() -> None:
    doc, sdk = Signer(DOC_SECRET), Signer(SDK_SECRET)
    assert doc.sign(DOC_PATH, DOC_NONCE, DOC_BODY.encode()) == DOC_SIGN
    assert doc.sign(DOC_PATH, str(DOC_NONCE), DOC_BODY) == DOC_SIGN
    assert sdk.sign(SDK_PATH, SDK_NONCE, SDK_BODY) == SDK_SIGN
    # The keyed state is copied per call, never consumed: the same input, the same answer.
    assert doc.sign(DOC_PATH, DOC_NONCE, DOC_BODY) == DOC_SIGN
    assert doc.sign(DOC_PATH, DOC_NONCE + 1, DOC_BODY) == sign(
        DOC_SECRET, DOC_PATH, DOC_NONCE + 1, DOC_BODY
    )
    assert DOC_SECRET not in repr(doc) and "kQH5" not in repr(doc)
    with pytest.raises(ConfigError) as info:
        Signer("not-base64-secret-value!")
    assert "not-base64-secret-value!" not in str(info.value)


@given(
    st.binary(min_size=1, max_size=300),
    st.text(max_size=40),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.binary(max_size=400),
)
def test_signer_is_hmac_sha512_for_any_key_length(
    secret: bytes, path: str, nonce: int, body: bytes
) -> None:
    # Keys shorter than, equal to and longer than SHA-512's 128-byte block (hashed first).
    secret_b64 = base64.b64encode(secret).decode()
    assert Signer(secret_b64).sign(path, nonce, body) == sign(secret_b64, path, nonce, body)


def test_signer_handles_keys_at_the_block_edges() -> None:
    for size in (1, 64, 127, 128, 129, 256):
        secret_b64 = base64.b64encode(bytes(range(256))[:size] * 1).decode()
        assert Signer(secret_b64).sign(DOC_PATH, 1, b"x") == sign(secret_b64, DOC_PATH, 1, b"x")


# Text from the alphabet Kraken's parameters use, plus every character a form must escape.
_FORM_TEXT = st.text(
    alphabet=st.sampled_from("abcXYZ019_.-~ ,&=+%/:?#é€\x00\n"), max_size=12
) | st.text(max_size=8)


@given(st.dictionaries(_FORM_TEXT, _FORM_TEXT | st.integers() | st.booleans(), max_size=6))
def test_encode_form_is_urlencode_byte_for_byte(params: dict[str, object]) -> None:
    expected = urlencode(
        [
            (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
            for k, v in params.items()
        ]
    ).encode("ascii")
    assert encode_form(params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"k": "v&x=y"},  # would read as two safe pairs if only the shape were checked
        {"a=b": "c"},
        {"a": "b=c", "d": "e"},
        {"a": "&", "b": "="},
        {"": "", "x": ""},
        {"k": "v", "": "=&"},
    ],
)
def test_encode_form_quotes_separators_inside_keys_and_values(params: dict[str, str]) -> None:
    assert encode_form(params) == urlencode(list(params.items())).encode("ascii")
    assert parse_qs(encode_form(params).decode(), keep_blank_values=True) == {
        k: [v] for k, v in params.items()
    }


def test_encode_form_quotes_only_what_needs_it() -> None:
    uid = "3f1c2a9e-1234-4bcd-9abc-0123456789ab"
    params = {"nonce": 1, "volume": Decimal("0.00010000"), "cl_ord_id": uid, "x": "a b&c=d"}
    assert encode_form(params) == (
        b"nonce=1&volume=0.00010000&cl_ord_id=3f1c2a9e-1234-4bcd-9abc-0123456789ab&x=a+b%26c%3Dd"
    )


@pytest.mark.parametrize("encode", [encode_form, encode_json])
def test_floats_are_refused(encode: object) -> None:
    assert callable(encode)
    with pytest.raises(TypeError, match="volume"):
        encode({"nonce": 1, "volume": 1.25})


# --- the server reads the nonce ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (DOC_BODY.encode(), FORM_CONTENT_TYPE, DOC_NONCE),
        (DOC_BODY.encode(), None, DOC_NONCE),
        (b"pair=XBTUSD&nonce=18446744073709551615", FORM_CONTENT_TYPE, 2**64 - 1),
        (b'{"nonce": 1700000000000000001}', JSON_CONTENT_TYPE, 1_700_000_000_000_000_001),
        (b'{"nonce":"42"}', "application/json; charset=utf-8", 42),
        (b'{"nonce":0}', "Application/JSON", 0),
    ],
)
def test_extract_nonce(body: bytes, content_type: str | None, expected: int) -> None:
    assert extract_nonce(body, content_type) == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"pair=XBTUSD", FORM_CONTENT_TYPE),
        (b"nonce=1&nonce=2", FORM_CONTENT_TYPE),
        (b"nonce=", FORM_CONTENT_TYPE),
        (b"nonce=01", FORM_CONTENT_TYPE),
        (b"nonce=-1", FORM_CONTENT_TYPE),
        (b"nonce=1e3", FORM_CONTENT_TYPE),
        (b"nonce=18446744073709551616", FORM_CONTENT_TYPE),
        (b'{"pair":"XBTUSD"}', JSON_CONTENT_TYPE),
        (b'{"nonce":1.5}', JSON_CONTENT_TYPE),
        (b'{"nonce":true}', JSON_CONTENT_TYPE),
        (b'{"nonce":null}', JSON_CONTENT_TYPE),
        (b'{"nonce":" 1"}', JSON_CONTENT_TYPE),
    ],
)
def test_extract_nonce_refuses_bad_nonces(body: bytes, content_type: str) -> None:
    with pytest.raises(NonceError) as info:
        extract_nonce(body, content_type)
    assert info.value.code == "EAPI:Invalid nonce"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", JSON_CONTENT_TYPE),
        (b"[1, 2]", JSON_CONTENT_TYPE),
        ("nonce=1&x=é".encode(), FORM_CONTENT_TYPE),
    ],
)
def test_extract_nonce_refuses_unparseable_bodies(body: bytes, content_type: str) -> None:
    with pytest.raises(RejectedError) as info:
        extract_nonce(body, content_type)
    assert info.value.code == "EGeneral:Invalid arguments"
