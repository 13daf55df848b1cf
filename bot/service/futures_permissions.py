"""The Futures key's access level, probed with harmless calls before the daemon trades.

A Kraken Futures key has two settings (https://support.kraken.com/articles/360022839451-how-to-create-an-api-key-for-kraken-derivatives):
**General API** No Access / Read Only ("only endpoints that do not write to the server") /
Full Access ("all endpoints, excluding digital asset withdrawals"), and **Withdrawal API**
No Access / Full Access. The daemon needs General API: Full Access (it sends, edits and
cancels orders and arms ``cancelallordersafter``) and never withdraws.

Kraken cannot be asked which level a key has, and documents no error of its own for a
call the level forbids: the call gets ``authenticationError``, the one error Kraken's
Futures list has for a key it will not serve (https://docs.kraken.com/api/docs/guides/futures-rest),
the same as a wrong key or secret. Without a check, a Read Only key showed only as that
error in the log and a gate that never opened. So two probes, in order (``PROBES``):

1. ``accounts`` (a read, cost 2): refused means General API: No Access, or a key or
   secret that is wrong: the message says both;
2. ``cancelorder`` of an ``order_id`` that cannot exist (``PROBE_ORDER_ID``, not Kraken's
   UUID format; cost 10): a write, so refused means Read Only. Kraken answers an allowed
   one ``notFound``, which cancels nothing.

A probe *passes* on any answer but ``authenticationError``; ``TransientError`` and
``RateLimitError`` (a lost answer is the cancel's ``OrderStateUnknown``) are the caller's
to wait out; another auth error (``accountInactive``) is raised as it is. A failed check is
a ``ConfigError`` (exit 2) that says what to set on Kraken's key page.

The Withdrawal API setting is not probed: Kraken documents no call that reads a key's
access, and the only call that needs Withdrawal access (``withdrawal``) moves funds, so no
probe of it is harmless. Unlike spot (``bot.service.permissions``), a passing check is not
remembered: the probes cost 12 of the 500 the ``/derivatives`` budget refills every 10 s.
This module owns the probes, their verdicts and the message; it calls the REST client's
``accounts`` and ``cancel_order`` only (a fake with those methods tests it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bot.core.errors import AuthError, ConfigError, ExchangeError, RateLimitError, TransientError

__all__ = [
    "FULL_ACCESS",
    "NOT_ALLOWED",
    "PROBES",
    "PROBE_ORDER_ID",
    "FuturesCaller",
    "Refused",
    "missing_error",
    "probe",
]

NOT_ALLOWED: Final = "authenticationError"
FULL_ACCESS: Final = "General API: Full Access"
PROBE_ORDER_ID: Final = "krakenbot-permission-probe"
"""The order the write probe cancels: Kraken's order ids are UUIDs, so none has it."""


class FuturesCaller(Protocol):
    """What the probes need of the REST client (``FuturesRestClient``)."""

    async def accounts(self) -> Any: ...

    async def cancel_order(
        self, *, order_id: str | None = None, cli_ord_id: str | None = None, check: bool = True
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Probe:
    """One access the daemon needs: the endpoint that shows it, and what a refusal means."""

    endpoint: str
    needed_for: str
    refused_means: str


PROBES: Final = (
    Probe(
        "accounts",
        "reading orders, fills, positions and margin",
        "the key is refused even for reading: its General API access is No Access, or the"
        " key or secret is wrong",
    ),
    Probe(
        "cancelorder",
        "sending, editing and cancelling orders and the dead-man's switch",
        "the key can read but not trade: its General API access is Read Only",
    ),
)


@dataclass(frozen=True, slots=True)
class Refused:
    """A probe Kraken refused, and its answer."""

    probe: Probe
    error: str

    def describe(self) -> str:
        p = self.probe
        return f"{p.endpoint} answered {self.error}: {p.refused_means}"


async def probe(caller: FuturesCaller, item: Probe) -> Refused | None:
    """``item``'s call: ``Refused`` if Kraken will not serve the key, None if it did.

    Raises what must be waited out (``TransientError``, ``RateLimitError``) and any other
    auth error (``accountInactive``) as it is."""
    try:
        if item.endpoint == "accounts":
            await caller.accounts()
        else:  # answered notFound: nothing is cancelled
            await caller.cancel_order(order_id=PROBE_ORDER_ID, check=False)
    except ExchangeError as exc:
        if isinstance(exc, AuthError) and exc.code == NOT_ALLOWED:
            return Refused(item, exc.code)
        if isinstance(exc, TransientError | RateLimitError | AuthError):
            raise  # unknown yet (the caller waits), or the account itself: fatal
        return None  # Kraken judged the arguments: the access check was behind it
    return None


def missing_error(refused: Sequence[Refused]) -> ConfigError:
    """The fatal error for a key that fails the check: what was refused, then what to do."""
    lines = [
        f"the Futures API key lacks {FULL_ACCESS} (needed for {r.probe.needed_for}): {r.describe()}"
        for r in refused
    ]
    lines.append(
        'make a Futures API key with "General API" set to "Full Access" and "Withdrawal API"'
        ' left at "No Access" (krakenbot never withdraws) on Kraken\'s Futures API key page'
        " (Settings > API), put it in futures.credentials and start again (docs/futures.md,"
        " Live trading)"
    )
    return ConfigError(lines)
