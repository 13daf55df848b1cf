"""What Kraken's trading engine accepts in each state of the WS v2 ``status`` channel (pure).

Kraken pushes ``status`` on every public connection and whenever the engine's state changes
(https://docs.kraken.com/api/docs/websocket-v2/status, KRAKEN.md §5.2):

=================  ========================================================================
``system``         Kraken's words
=================  ========================================================================
``online``         all order types may be submitted and order matching can occur
``post_only``      only limit orders using the ``post_only`` option can be submitted;
                   orders can be cancelled; no matching
``limit_only``     only limit orders can be submitted (the REST ``SystemStatus`` and the
                   pair ``status`` values list it; the WS page does not describe it)
``cancel_only``    orders can be cancelled but new orders cannot be placed; no matching
``maintenance``    markets are offline: new orders cannot be placed and existing orders
                   cannot be cancelled
=================  ========================================================================

``place_refusal`` and ``amend_refusal`` say why a new order or an amend would be refused in
a state (None: it may go); the pre-trade stage asks them before anything is sent, so an
order Kraken would refuse is refused locally with reason ``exchange_status``. An amend
changes a resting order, so it needs a state that accepts that order: none in
``cancel_only`` or ``maintenance``, only a post-only limit order in ``post_only``, only a
limit order in ``limit_only``. A state this module does not know is treated as the strictest
(nothing is placed or amended) until it is understood: a new word from Kraken stops trading
visibly rather than trading blind. No state yet (None) refuses nothing here: readiness waits
for the first status (``readiness``). Cancels are never refused here: a cancel Kraken
refuses is harmless, and the engine reconciles.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CANCEL_ONLY",
    "LIMIT_ONLY",
    "MAINTENANCE",
    "ONLINE",
    "POST_ONLY",
    "READINESS_CHECK",
    "amend_refusal",
    "place_refusal",
    "readiness",
]

ONLINE: Final = "online"
POST_ONLY: Final = "post_only"
LIMIT_ONLY: Final = "limit_only"
CANCEL_ONLY: Final = "cancel_only"
MAINTENANCE: Final = "maintenance"
_TRADING: Final = frozenset({ONLINE, POST_ONLY, LIMIT_ONLY})

READINESS_CHECK: Final = "exchange"
"""The readiness gate's check: fails (its detail naming the state) while orders cannot be
placed at all, so ``/readyz`` says when the engine is paused or in maintenance."""


def place_refusal(status: str | None, order_type: str, post_only: bool) -> str | None:
    """Why a new order of ``order_type`` (``post_only`` or not) is refused in ``status``."""
    if status is None or status == ONLINE:
        return None
    if status == POST_ONLY:
        if order_type == "limit" and post_only:
            return None
        return "post_only: only post-only limit orders are accepted"
    if status == LIMIT_ONLY:
        return None if order_type == "limit" else "limit_only: only limit orders are accepted"
    if status == CANCEL_ONLY:
        return "cancel_only: no new orders, cancels only"
    if status == MAINTENANCE:
        return "maintenance: the exchange is offline"
    return f"{status}: an exchange state krakenbot does not know; nothing is sent"


def amend_refusal(status: str | None, order_type: str, post_only: bool) -> str | None:
    """Why amending a resting order (``order_type``, ``post_only``) is refused in
    ``status``: the state must accept the order as it stands."""
    refusal = place_refusal(status, order_type, post_only)
    if refusal is None or status not in _TRADING:
        return refusal
    return f"{refusal} (amends too)"


def readiness(status: str | None) -> tuple[bool, str]:
    """``(ok, detail)`` of the readiness check for ``status``: ok while some order may be
    placed; the detail names the state either way."""
    if status is None:
        return False, "no status from the exchange yet"
    if status in _TRADING:
        return True, f"exchange {status}"
    return False, f"exchange {status}: no order can be placed"
