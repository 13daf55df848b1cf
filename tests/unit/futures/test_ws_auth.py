"""The challenge handshake: request, sign, and private subscriptions that carry it."""

from __future__ import annotations

import json

import pytest

from bot.core.errors import ProtocolError
from bot.futures.ws_auth import ChallengeHandshake
from bot.futures.ws_protocol import ChallengeIssued

# The guide's example (https://docs.kraken.com/api/docs/guides/futures-websockets).
SECRET = "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm"
CHALLENGE = "c100b894-1729-464d-ace1-52dbce11db42"
SIGNED = "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A=="


def test_handshake_then_private_subscribe() -> None:
    hs = ChallengeHandshake("MY-KEY", SECRET)
    assert json.loads(hs.request()) == {"event": "challenge", "api_key": "MY-KEY"}
    assert not hs.ready
    with pytest.raises(RuntimeError):
        hs.subscribe("open_orders")
    hs.accept(ChallengeIssued(CHALLENGE))
    assert hs.ready
    assert json.loads(hs.subscribe("open_orders")) == {
        "event": "subscribe",
        "feed": "open_orders",
        "api_key": "MY-KEY",
        "original_challenge": CHALLENGE,
        "signed_challenge": SIGNED,
    }
    fills = json.loads(hs.subscribe("fills", ["PF_XBTUSD"]))
    assert fills["product_ids"] == ["PF_XBTUSD"]
    assert json.loads(hs.unsubscribe("balances"))["event"] == "unsubscribe"
    with pytest.raises(ValueError):
        hs.subscribe("book")
    hs.reset()
    assert not hs.ready


def test_empty_challenge_and_repr() -> None:
    hs = ChallengeHandshake("MY-KEY", SECRET)
    with pytest.raises(ProtocolError):
        hs.accept(ChallengeIssued(""))
    assert SECRET not in repr(hs) and "MY-KEY" not in repr(hs)
