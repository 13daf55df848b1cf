"""Kraken's API key permissions and key files (``bot.sim.keys``), and a key's nonce window."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import ConfigError
from bot.sim.keys import (
    ALL_PERMISSIONS,
    REST_PERMISSIONS,
    KeySpec,
    Permission,
    allowed,
    load_key_specs,
    parse_permissions,
)
from bot.sim.venue import ApiKey, SimVenue


def test_permissions_parse_from_ids_and_krakens_names() -> None:
    assert parse_permissions(["query_funds", "Orders and trades - Cancel & close orders"]) == {
        Permission.QUERY_FUNDS,
        Permission.CANCEL_ORDERS,
    }
    assert parse_permissions(["Access WebSockets API", "Create & Modify Orders"]) == {
        Permission.WEBSOCKET,
        Permission.CREATE_ORDERS,
    }
    with pytest.raises(ValueError, match="withdraw_everything"):
        parse_permissions(["withdraw_everything"])
    with pytest.raises(TypeError):
        parse_permissions([3])


def test_every_permission_has_krakens_label() -> None:
    assert {p.label.split(" - ")[0] for p in Permission} == {
        "Funds permissions",
        "Orders and trades",
        "Data",
        "WebSocket interface",
    }


def test_the_table_follows_krakens_pages() -> None:
    # Cancel pages: "Create & modify orders" or "Cancel & close orders".
    for method in ("CancelOrder", "CancelAll", "CancelAllOrdersAfter", "CancelOrderBatch"):
        assert set(REST_PERMISSIONS[method]) == {Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS}
    assert REST_PERMISSIONS["GetWebSocketsToken"] == (Permission.WEBSOCKET,)
    assert REST_PERMISSIONS["Balance"] == (Permission.QUERY_FUNDS,)
    assert not allowed(frozenset({Permission.CANCEL_ORDERS}), REST_PERMISSIONS["AddOrder"])
    assert allowed(frozenset({Permission.CANCEL_ORDERS}), REST_PERMISSIONS["CancelAll"])
    assert allowed(frozenset(), ())


def test_key_spec_reads_and_rejects() -> None:
    spec = KeySpec.from_dict({"account": "bob", "permissions": ["websocket"], "nonce_window": 5})
    assert spec.permissions == {Permission.WEBSOCKET} and spec.nonce_window == 5
    assert KeySpec.from_dict({"account": "bob"}).permissions is None  # all
    for bad in (
        {"account": "~market"},
        {"account": "bob", "nonce_window": -1},
        {"account": "bob", "nonce_window": True},
        {"account": "bob", "colour": "red"},
        {"account": "bob", "permissions": "websocket"},
        {"account": "bob", "balances": {"USD": "lots"}},
    ):
        with pytest.raises(ValueError):
            KeySpec.from_dict(bad)


def test_key_files_name_the_bad_entry(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('[{"account": "a"}, {"account": "b", "permissions": ["nope"]}]')
    with pytest.raises(ConfigError, match="entry 1"):
        load_key_specs(path)
    path.write_text('{"account": "a"}')
    with pytest.raises(ConfigError, match="list"):
        load_key_specs(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_key_specs(tmp_path / "missing.yaml")


def test_nonce_window_accepts_late_nonces_once() -> None:
    venue = SimVenue(market=None)
    key = venue.api_key(venue.add_account("a").api_key)
    assert isinstance(key, ApiKey)
    assert key.accept_nonce(100) and not key.accept_nonce(100) and not key.accept_nonce(99)
    key.nonce_window = 10
    assert key.accept_nonce(200)
    assert key.accept_nonce(195) and not key.accept_nonce(195)
    assert not key.accept_nonce(190)  # at the window's edge: out
    assert key.accept_nonce(191)


def test_venue_keys_belong_to_existing_accounts() -> None:
    venue = SimVenue(market=None)
    first = venue.add_account("a")
    assert first.permissions == ALL_PERMISSIONS
    second = venue.add_key("a", frozenset({Permission.QUERY_FUNDS}), nonce_window=3)
    assert [k.api_key for k in venue.keys_of("a")] == [first.api_key, second.api_key]
    assert venue.credentials("a") == first  # an account's first key stays its default
    with pytest.raises(Exception, match="no account"):
        venue.add_key("nobody")
    with pytest.raises(Exception, match="exists"):
        venue.add_key("a", api_key=first.api_key)
