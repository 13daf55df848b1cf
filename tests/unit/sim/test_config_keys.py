"""``sim.keys`` in the config: the keys a deployment file declares for ``krakenbot sim``
(and the paper venue), in ``--keys`` file form, with secrets only from the environment."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import load_config_text
from bot.core.errors import ConfigError
from bot.service.simulator import build_venue, config_key_specs
from bot.sim.keys import Permission
from bot.sim.venue import DEFAULT_ACCOUNT

CONFIG = """\
mode: paper
sim:
  symbols: [BTC/USD]
  keys:
{keys}
"""


def config(keys: str) -> str:
    return CONFIG.format(keys=keys)


def test_the_keys_sim_keys_declares_are_created() -> None:
    cfg = load_config_text(
        config(
            "    - account: trader\n"
            "      permissions: [query_funds, Orders and trades - Query open orders & trades]\n"
            "    - account: bob\n"
            "      permissions: [websocket]\n"
            "      nonce_window: 5000\n"
            "      balances: {USD: 250.5}\n"
        )
    )
    venue, generated = build_venue(cfg)
    assert generated
    observer = venue.keys_of(DEFAULT_ACCOUNT)[1]
    assert observer.permissions == {Permission.QUERY_FUNDS, Permission.QUERY_OPEN_ORDERS}
    (bob,) = venue.keys_of("bob")
    assert bob.permissions == {Permission.WEBSOCKET} and bob.nonce_window == 5000
    assert venue.exchange.balances("bob")["USD"] == Decimal("250.5")


def test_a_secret_comes_from_the_environment_never_from_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "c2VjcmV0LWZyb20tdGhlLWVudmlyb25tZW50"
    monkeypatch.setenv("OBSERVER_SECRET", secret)
    cfg = load_config_text(
        config(
            "    - account: trader\n"
            "      api_key: observer-1\n"
            "      api_secret_env: OBSERVER_SECRET\n"
        )
    )
    venue, _ = build_venue(cfg)
    key = venue.api_key("observer-1")
    assert key is not None and key.api_secret == secret
    literal = load_config_text(config("    - account: trader\n      api_secret: abc=\n"))
    with pytest.raises(ConfigError, match=r"sim\.keys\[0\]\.api_secret: a literal secret"):
        build_venue(literal)
    unset = load_config_text(config("    - account: trader\n      api_secret_env: NOT_SET_X\n"))
    monkeypatch.delenv("NOT_SET_X", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_X is not set"):
        config_key_specs(unset.sim)


def test_a_bad_entry_is_named() -> None:
    cfg = load_config_text(
        config("    - account: trader\n    - account: trader\n      permissions: [everything]\n")
    )
    with pytest.raises(ConfigError, match=r"sim\.keys\[1\]: unknown permission 'everything'"):
        build_venue(cfg)
    unknown = load_config_text(config("    - account: trader\n      colour: red\n"))
    with pytest.raises(ConfigError, match=r"sim\.keys\[0\]: unknown field\(s\) colour"):
        build_venue(unknown)


def test_no_keys_by_default() -> None:
    venue, _ = build_venue(load_config_text("mode: paper\n"))
    assert len(venue.keys_of(DEFAULT_ACCOUNT)) == 1
