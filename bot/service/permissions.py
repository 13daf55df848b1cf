"""The API key's permissions, each probed with a harmless call before the daemon trades.

Kraken cannot be asked which permissions a key has; a private call the key may not make
answers ``EGeneral:Permission denied``. Without "WebSocket interface" the private feed
would ask for a token forever, without "Query closed orders & trades" every start's
reconciliation would fail forever, and the readiness gate would never open with nothing
saying why. So the daemon probes each permission it needs (``NEEDED``) as it starts, with
the harmlessest call that needs it, and a missing one is a fatal configuration error
(``ConfigError``: exit 2) naming it, before any order.

Which call needs which permission is each Kraken REST page's "API Key Permissions
Required" (https://docs.kraken.com/api/docs/rest-api/, and the key guide
https://docs.kraken.com/exchange/guides/rest/api-keys):

=================================================  =======================================
Funds permissions - Query                          Balance
Orders and trades - Query open orders & trades     OpenOrders, QueryOrders (open orders)
Orders and trades - Query closed orders & trades   ClosedOrders, TradesHistory, QueryOrders
                                                   (closed orders)
Orders and trades - Create & modify orders         AddOrder, AmendOrder, EditOrder; also
                                                   enough for the two cancels below
Orders and trades - Cancel & close orders          CancelOrder, CancelAll,
                                                   CancelAllOrdersAfter (or the one above)
WebSocket interface - On                           GetWebSocketsToken
=================================================  =======================================

The probes (``probes``): Balance, OpenOrders, ClosedOrders, GetWebSocketsToken (reads; a
token is minted and never used), AddOrder with ``validate=true`` of the pair's smallest
valid order (Kraken checks it and places nothing) and CancelOrder of a txid that cannot
exist (its format is not Kraken's: the answer is ``EOrder:Invalid order``, which the REST
client logs as ``rest_error``). A probe *passes* on any answer but ``EGeneral:Permission
denied``: an error about the arguments comes from past the permission check. Transient
and rate-limit errors are the caller's to wait out; other auth errors (an invalid key, a
lockout) are raised as they are.

The probes cost 5 on Kraken's REST call counter (ClosedOrders 2; AddOrder and CancelOrder
go to the trading counter), which Kraken keeps across restarts: on the Starter tier that is
15 s of its decay. So a start within ``RECHECK_S`` of one whose probes all passed with the
same key (``recent_pass``: the store's ``meta`` keeps the last pass, ``record_pass``) does
not probe again: the restarts that come quickly are those after a crash, when the counter
is fullest and the daemon is needed back soonest. A permission taken away from a key is
then noticed at the first start past that window.

This module owns the table, the probes, their verdicts and the record of the last pass; it
calls the REST client's ``private(method, params)`` only (a fake with that method tests it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

from bot.core.errors import AuthError, ConfigError, ExchangeError, RateLimitError, TransientError
from bot.kraken.instruments import Instrument, format_scaled
from bot.store import Store

__all__ = [
    "PERMISSIONS_CHECK",
    "PERMISSION_DENIED",
    "PROBE_TXID",
    "Missing",
    "Needed",
    "PrivateCaller",
    "missing_error",
    "probe",
    "probes",
    "recent_pass",
    "record_pass",
]

PERMISSION_DENIED: Final = "EGeneral:Permission denied"
PERMISSIONS_CHECK: Final = "permissions"
"""The readiness gate's check the probes answer (``/readyz`` names what is missing)."""
RECHECK_S: Final = 600.0
"""A start this soon after a passing check with the same key does not probe again."""
_PASS_KEY: Final = "permissions_passed"  # meta: "<key_id> <unix ns>"
PROBE_TXID: Final = "KRAKENBOT-PERMISSION-PROBE"
"""The txid the cancel probe names: not Kraken's format (``OXXXXX-XXXXX-XXXXXX``), so no
order can ever have it."""


class PrivateCaller(Protocol):
    """What the probes need of the REST client (``KrakenRestClient.private``)."""

    async def private(
        self, method: str, params: Mapping[str, object] | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Needed:
    """One permission the daemon needs: Kraken's name for it, what for, and its probe."""

    permission: str
    needed_for: str
    method: str
    params: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Missing:
    """A permission the key lacks, and the probe's answer that shows it."""

    needed: Needed
    error: str

    def describe(self) -> str:
        n = self.needed
        return f'"{n.permission}" (needed for {n.needed_for}; {n.method} answered {self.error})'


def probes(instrument: Instrument) -> tuple[Needed, ...]:
    """Every permission the daemon needs, with its probe; ``instrument`` is one it trades
    (the validate-only AddOrder names it: the smallest order at one tick)."""
    volume, price = _smallest_order(instrument)
    add_order = {
        "pair": instrument.altname or instrument.rest_name or instrument.symbol,
        "type": "buy",
        "ordertype": "limit",
        "price": format_scaled(price, instrument.price_precision),
        "volume": format_scaled(volume, instrument.qty_precision),
        "oflags": "post",
        "validate": True,  # checked by Kraken, never placed
    }
    return (
        Needed("Funds permissions - Query", "balances (Balance)", "Balance", {}),
        Needed(
            "Orders and trades - Query open orders & trades",
            "reconciliation (OpenOrders, QueryOrders)",
            "OpenOrders",
            {},
        ),
        Needed(
            "Orders and trades - Query closed orders & trades",
            "reconciliation after a restart and missed fills (ClosedOrders, TradesHistory)",
            "ClosedOrders",
            {},
        ),
        Needed(
            "Orders and trades - Create & modify orders",
            "placing and amending orders (AddOrder, AmendOrder)",
            "AddOrder",
            add_order,
        ),
        Needed(
            "Orders and trades - Cancel & close orders",
            "canceling orders and the dead-man's switch (CancelOrder, CancelAllOrdersAfter)",
            "CancelOrder",
            {"txid": PROBE_TXID},
        ),
        Needed(
            "WebSocket interface - On",
            "the private executions feed (GetWebSocketsToken)",
            "GetWebSocketsToken",
            {},
        ),
    )


def _smallest_order(inst: Instrument) -> tuple[int, int]:
    """(volume, price), scaled: the pair's minimum size, at the lowest price on the tick
    grid that meets its cost minimum (one tick above it), so that Kraken finds nothing to
    refuse in the validate-only order."""
    volume = -(-max(inst.qty_min, inst.qty_increment) // inst.qty_increment) * inst.qty_increment
    exact = inst.cost_min * Decimal(10) ** (inst.price_precision + inst.qty_precision) / volume
    ticks = max(1, math.ceil(exact / inst.price_increment) + 1)
    return volume, ticks * inst.price_increment


async def probe(caller: PrivateCaller, needed: Needed) -> Missing | None:
    """``needed``'s probe: ``Missing`` if the key lacks it, None if it has it.

    Raises what must be waited out (``TransientError``, ``RateLimitError``: the outcome is
    not known yet) and any other auth error (an invalid key, a lockout) as it is."""
    try:
        await caller.private(needed.method, needed.params)
    except ExchangeError as exc:
        if exc.code.startswith(PERMISSION_DENIED):
            return Missing(needed, exc.code)
        if isinstance(exc, TransientError | RateLimitError):
            raise  # unknown yet (a write's OrderStateUnknown too): the caller waits
        if isinstance(exc, AuthError):
            raise  # the key itself (invalid, locked out), not one permission: fatal
        return None  # Kraken judged the arguments: the permission check was behind it
    return None


def recent_pass(store: Store, key_id: str, now_ns: int) -> float | None:
    """Seconds since this key's probes last all passed, if fewer than ``RECHECK_S``."""
    kid, _, at = (store.get_meta(_PASS_KEY) or "").partition(" ")
    if kid != key_id or not at.isdigit():
        return None
    age_s = (now_ns - int(at)) / 1e9
    return age_s if 0 <= age_s < RECHECK_S else None  # a clock stepped back: probe


def record_pass(store: Store, key_id: str, now_ns: int) -> None:
    store.set_meta(_PASS_KEY, f"{key_id} {now_ns}")


def missing_error(missing: Sequence[Missing]) -> ConfigError:
    """The fatal error for ``missing`` permissions: one line each, then what to do."""
    lines = [f"the API key lacks the permission {m.describe()}" for m in missing]
    lines.append(
        "grant "
        + ", ".join(f'"{m.needed.permission}"' for m in missing)
        + " to the key (kraken.com: Settings > API > edit the key), or make a key with every"
        " permission listed in docs/users/live-trading.md"
    )
    return ConfigError(lines)
