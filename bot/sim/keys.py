"""API keys as Kraken has them: per-key permissions, the endpoint → permission table, and
the file format that declares extra keys (pure).

An account holds several API keys. Each key has its own secret, nonce sequence (with an
optional nonce window), REST call counter and a set of permissions, chosen when the key is
created, with the names Kraken's key settings and REST pages use (each private REST page
lists "API Key Permissions Required", https://docs.kraken.com/api/docs/rest-api/):

=======================  ==================================================
``query_funds``          Funds permissions - Query
``deposit_funds``        Funds permissions - Deposit
``withdraw_funds``       Funds permissions - Withdraw
``query_open_orders``    Orders and trades - Query open orders & trades
``query_closed_orders``  Orders and trades - Query closed orders & trades
``create_orders``        Orders and trades - Create & modify orders
``cancel_orders``        Orders and trades - Cancel & close orders
``query_ledger``         Data - Query ledger entries
``export_data``          Data - Export data
``websocket``            WebSocket interface - On
=======================  ==================================================

``REST_PERMISSIONS`` maps each private method the simulator serves to the permissions of
which the key needs *one* (Kraken's "A or B"); a call without one is refused with
``EGeneral:Permission denied``. ``QueryOrders`` (and ``QueryTrades``) needs the open or the
closed permission "depending on status of order": a key holding only one of them is
refused for an order of the other kind. WebSocket v2 requests need the permission of the
REST method they mirror (``WS_PERMISSIONS``): Kraken's WS pages print none, so that part
is the simulator's reading.

``KeySpec`` is one key as a ``krakenbot sim --keys FILE`` entry (YAML or JSON list)
declares it. This module owns the names, the table and that format; the venue keeps the
keys, ``rest_private`` and ``ws_private`` enforce them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import yaml

from bot.core.errors import ConfigError

__all__ = [
    "ALL_PERMISSIONS",
    "ERR_PERMISSION",
    "READ_ONLY",
    "REST_PERMISSIONS",
    "WS_PERMISSIONS",
    "KeySpec",
    "Permission",
    "allowed",
    "load_key_specs",
    "parse_permissions",
]

ERR_PERMISSION: Final = "EGeneral:Permission denied"


class Permission(StrEnum):
    """One of Kraken's API key permissions (value: a short id; ``label``: Kraken's name)."""

    QUERY_FUNDS = "query_funds"
    DEPOSIT_FUNDS = "deposit_funds"
    WITHDRAW_FUNDS = "withdraw_funds"
    QUERY_OPEN_ORDERS = "query_open_orders"
    QUERY_CLOSED_ORDERS = "query_closed_orders"
    CREATE_ORDERS = "create_orders"
    CANCEL_ORDERS = "cancel_orders"
    QUERY_LEDGER = "query_ledger"
    EXPORT_DATA = "export_data"
    WEBSOCKET = "websocket"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final[Mapping[Permission, str]] = {
    Permission.QUERY_FUNDS: "Funds permissions - Query",
    Permission.DEPOSIT_FUNDS: "Funds permissions - Deposit",
    Permission.WITHDRAW_FUNDS: "Funds permissions - Withdraw",
    Permission.QUERY_OPEN_ORDERS: "Orders and trades - Query open orders & trades",
    Permission.QUERY_CLOSED_ORDERS: "Orders and trades - Query closed orders & trades",
    Permission.CREATE_ORDERS: "Orders and trades - Create & modify orders",
    Permission.CANCEL_ORDERS: "Orders and trades - Cancel & close orders",
    Permission.QUERY_LEDGER: "Data - Query ledger entries",
    Permission.EXPORT_DATA: "Data - Export data",
    Permission.WEBSOCKET: "WebSocket interface - On",
}
# Also accepted: the key-settings page's wording ("Query Funds", "Cancel/Close Orders", ...).
_ALIASES: Final[Mapping[str, Permission]] = {
    "query funds": Permission.QUERY_FUNDS,
    "deposit funds": Permission.DEPOSIT_FUNDS,
    "withdraw funds": Permission.WITHDRAW_FUNDS,
    "query open orders & trades": Permission.QUERY_OPEN_ORDERS,
    "query closed orders & trades": Permission.QUERY_CLOSED_ORDERS,
    "create & modify orders": Permission.CREATE_ORDERS,
    "cancel & close orders": Permission.CANCEL_ORDERS,
    "cancel/close orders": Permission.CANCEL_ORDERS,
    "query ledger entries": Permission.QUERY_LEDGER,
    "export data": Permission.EXPORT_DATA,
    "access websockets api": Permission.WEBSOCKET,
    "websocket interface": Permission.WEBSOCKET,
    **{label.lower(): p for p, label in _LABELS.items()},
}

ALL_PERMISSIONS: Final = frozenset(Permission)
READ_ONLY: Final = frozenset(
    {
        Permission.QUERY_FUNDS,
        Permission.QUERY_OPEN_ORDERS,
        Permission.QUERY_CLOSED_ORDERS,
        Permission.QUERY_LEDGER,
    }
)

_P = Permission
_TRADE: Final = (_P.CREATE_ORDERS,)
_CANCEL: Final = (_P.CREATE_ORDERS, _P.CANCEL_ORDERS)
_QUERY_ANY: Final = (_P.QUERY_OPEN_ORDERS, _P.QUERY_CLOSED_ORDERS)
# Method -> permissions of which one is needed, as each method's REST page states.
REST_PERMISSIONS: Final[Mapping[str, tuple[Permission, ...]]] = {
    "Balance": (_P.QUERY_FUNDS,),
    "BalanceEx": (_P.QUERY_FUNDS,),
    "TradeBalance": (_P.QUERY_OPEN_ORDERS,),
    "OpenOrders": (_P.QUERY_OPEN_ORDERS,),
    "ClosedOrders": (_P.QUERY_CLOSED_ORDERS,),
    "QueryOrders": _QUERY_ANY,  # and per order, by its status
    "TradesHistory": (_P.QUERY_CLOSED_ORDERS,),
    "QueryTrades": (_P.QUERY_CLOSED_ORDERS,),
    "Ledgers": (_P.QUERY_LEDGER,),
    "QueryLedgers": (_P.QUERY_LEDGER,),
    "GetTradeVolume": (_P.QUERY_FUNDS,),
    "AddOrder": _TRADE,
    "AddOrderBatch": _TRADE,
    "AmendOrder": _TRADE,
    "EditOrder": _TRADE,
    "CancelOrder": _CANCEL,
    "CancelAll": _CANCEL,
    "CancelAllOrdersAfter": _CANCEL,
    "CancelOrderBatch": _CANCEL,
    "GetWebSocketsToken": (_P.WEBSOCKET,),
}
# WS v2 methods and private channels -> the permission of the REST method each mirrors.
WS_PERMISSIONS: Final[Mapping[str, tuple[Permission, ...]]] = {
    "executions": (_P.QUERY_OPEN_ORDERS,),
    "balances": (_P.QUERY_FUNDS,),
    "level3": (),
    "add_order": _TRADE,
    "batch_add": _TRADE,
    "amend_order": _TRADE,
    "edit_order": _TRADE,
    "cancel_order": _CANCEL,
    "cancel_all": _CANCEL,
    "cancel_all_orders_after": _CANCEL,
    "batch_cancel": _CANCEL,
}


def parse_permissions(values: Iterable[Any]) -> frozenset[Permission]:
    """Permissions from ids (``query_funds``) or Kraken's names; a bad one raises
    ``ValueError`` (``TypeError`` if not a string)."""
    out: set[Permission] = set()
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"a permission is a name, got {value!r}")
        text = value.strip()
        try:
            out.add(Permission(text.lower()))
            continue
        except ValueError:
            pass
        found = _ALIASES.get(text.lower())
        if found is None:
            known = ", ".join(p.value for p in Permission)
            raise ValueError(f"unknown permission {value!r} (known: {known})")
        out.add(found)
    return frozenset(out)


def allowed(granted: frozenset[Permission], needed: tuple[Permission, ...]) -> bool:
    """Whether a key holding ``granted`` may make a call needing one of ``needed``."""
    return not needed or any(p in granted for p in needed)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One API key to create: on ``account`` (opened with ``balances`` if it does not
    exist), with ``permissions`` (all if None), a ``nonce_window`` and, optionally, a
    given key pair (generated otherwise)."""

    account: str
    permissions: frozenset[Permission] | None = None
    nonce_window: int = 0
    api_key: str | None = None
    api_secret: str | None = None
    balances: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeySpec:
        """A spec from a JSON/YAML object; ``ValueError``/``TypeError`` say what is wrong."""
        unknown = set(data) - {
            "account",
            "permissions",
            "nonce_window",
            "api_key",
            "api_secret",
            "balances",
        }
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        account = data.get("account")
        if not isinstance(account, str) or not account or account.startswith("~"):
            raise ValueError("account must be a name (not starting with '~')")
        raw_perms = data.get("permissions")
        permissions = None
        if raw_perms is not None:
            if not isinstance(raw_perms, list):
                raise ValueError("permissions must be a list of names")
            permissions = parse_permissions(raw_perms)
        window = data.get("nonce_window", 0)
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise ValueError("nonce_window must be a non-negative integer")
        pair = {}
        for name in ("api_key", "api_secret"):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string")
            pair[name] = value
        raw_balances = data.get("balances") or {}
        if not isinstance(raw_balances, dict):
            raise TypeError("balances must be a mapping of asset: amount")
        try:
            balances = {str(k): Decimal(str(v)) for k, v in raw_balances.items()}
        except InvalidOperation:
            raise ValueError("balances: every amount must be a number") from None
        return cls(account, permissions, window, pair["api_key"], pair["api_secret"], balances)


def load_key_specs(path: Path) -> list[KeySpec]:
    """The keys a ``--keys FILE`` declares (a YAML or JSON list of ``KeySpec`` objects)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--keys: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--keys: {path} is not YAML or JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"--keys: {path} must hold a list of keys")
    specs = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ConfigError(f"--keys: {path} entry {i}: expected an object")
        try:
            specs.append(KeySpec.from_dict(entry))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--keys: {path} entry {i}: {exc}") from None
    return specs
