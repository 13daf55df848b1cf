"""The simulator's own Authent, challenge and nonce checks, against Kraken's examples.

These pin the simulator's reading of the docs independently of the client's
(``bot.futures.auth``); ``test_auth.py`` pins the client's against the same inputs.
"""

from __future__ import annotations

from bot.sim.futures.auth import NonceWindow, authent_matches, challenge_matches, signed_path

# The guide's inputs (KRAKEN.md §6.1); its 87-character secret completed with "=".
SECRET = "rttp4AzwRfYEdQ7R7X8Z/04Y4TZPa97pqCypi3xXxAqftygftnI6H9yGV+OcUOOJeFtZkr8mVwbAndU3Kz4Q+eG="
AUTHENT = "DqUyz8Wh/72af7dimSXHw91IFxrAriTgVodyg2s67PU2mVStwLDQak+uIoCtfb43XONq0xVAp+vm5dqnhFAB1Q=="
WS_SECRET = (
    "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm"
)
CHALLENGE = "c100b894-1729-464d-ace1-52dbce11db42"
SIGNED = "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A=="


def test_authent_of_the_guide_is_accepted_on_the_derivatives_url() -> None:
    url = "/derivatives/api/v3/orderbook"
    assert signed_path(url) == "/api/v3/orderbook"
    assert authent_matches(SECRET, "symbol=fi_xbtusd_180615", "1415957147987", url, AUTHENT)


def test_any_change_is_refused() -> None:
    url = "/derivatives/api/v3/orderbook"
    assert not authent_matches(SECRET, "symbol=fi_xbtusd_180616", "1415957147987", url, AUTHENT)
    assert not authent_matches(SECRET, "symbol=fi_xbtusd_180615", "1415957147988", url, AUTHENT)
    assert not authent_matches(SECRET, "symbol=fi_xbtusd_180615", "1415957147987", url, "x" * 88)
    assert not authent_matches("not base64!", "", "", url, AUTHENT)
    assert not authent_matches(SECRET, "symbol=fi_xbtusd_180615", "1415957147987", url, "é")


def test_the_challenge_example() -> None:
    assert challenge_matches(WS_SECRET, CHALLENGE, SIGNED)
    assert not challenge_matches(WS_SECRET, CHALLENGE.replace("c", "d", 1), SIGNED)


def test_nonce_window_strict_by_default() -> None:
    nonces = NonceWindow()
    assert nonces.check(100) is None
    assert nonces.check(100) == "nonceDuplicate"
    assert nonces.check(99) == "nonceBelowThreshold"
    assert nonces.check(101) is None


def test_nonce_window_tolerates_reordering_within_it() -> None:
    nonces = NonceWindow(window=10)
    assert nonces.check(100) is None
    assert nonces.check(95) is None  # out of order, within the window
    assert nonces.check(95) == "nonceDuplicate"
    assert nonces.check(90) == "nonceBelowThreshold"
