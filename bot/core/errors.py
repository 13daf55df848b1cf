"""Every error krakenbot raises, grouped by what the caller should do about it.

This module owns the exception tree and the one table that maps Kraken's error strings
onto it. Nothing above the wire layer (``bot.net``, ``bot.kraken.rest``) sees an aiohttp or
websockets exception: they are translated into these at the boundary, ``raise ... from``.

The tree, by remedy (every subclass of ``BotError`` in ``bot/``, wherever it is defined;
``tests/unit/test_errors.py`` fails if one is missing or misplaced here)::

    BotError
    ├── ConfigError             stop and tell the human (exit status 2)
    │   └── BadInput            a report's input is unusable (research.record)
    ├── StoreError              the database is unusable: stop, never silently replace it
    ├── ProtocolError           a frame or response we cannot trust: log, count, resync
    │   ├── ChecksumMismatch    a local book diverged from Kraken's: drop it, resubscribe
    │   ├── PrecisionLost       a float cannot carry the decimal: decode exactly, retry
    │   │                       (kraken.instruments)
    │   ├── UnknownInstrument   a frame names a symbol with no instrument (kraken.protocol)
    │   └── ReplayInputError    a capture cannot be replayed at all: exit 2 (research.replay)
    ├── RiskError               refused locally by the risk gate: never sent, tell the strategy
    ├── StrategyError           a strategy used the API wrongly: its runner counts it
    │   └── InvalidIntent       an intent that can never be valid: refused, never sent
    │                           (both strategy.api)
    ├── IllegalTransition       our code asked for a move the order table forbids: a bug
    │                           (execution.orders)
    ├── OrderUnavailable        not amendable or cancellable now (execution.engine)
    └── ExchangeError           Kraken said no (``code`` holds its exact string)
        ├── TransientError      retry with backoff, where retrying is safe
        │   ├── OrderStateUnknown   a write may or may not have happened: reconcile, never resend
        │   ├── OrderLinkDown   the order socket is down, nothing was sent: send it over REST
        │   │                   (execution.venue_ws)
        │   └── ConnectionLost  a WebSocket dropped or went silent: reconnect (net.ws)
        │       ├── SocketStale     no frame for ``stale_after_s`` (net.ws)
        │       └── TokenRejected   Kraken refused the WS token: mint one, reconnect
        │                           (execution.private_feed)
        ├── RateLimitError      wait as Kraken says, then retry
        ├── RejectedError       the request is wrong for the market: never retry
        │   └── InsufficientFunds
        └── AuthError           credentials or permissions: stop trading, alert
            ├── NonceError      retry once with a fresh nonce
            ├── TokenError      mint a new WebSocket token and resubscribe
            └── LockoutError    Kraken locked the key out (~15 min): stop trading, alert

An exchange error string that is not in the table becomes a plain ``ExchangeError``: it is
never returned as data and never retried.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AuthError",
    "BotError",
    "ChecksumMismatch",
    "ConfigError",
    "ExchangeError",
    "InsufficientFunds",
    "LockoutError",
    "NonceError",
    "OrderStateUnknown",
    "ProtocolError",
    "RateLimitError",
    "RejectedError",
    "RiskError",
    "StoreError",
    "TokenError",
    "TransientError",
    "error_from_kraken",
    "kraken_error_class",
]


class BotError(Exception):
    """Root of every error krakenbot raises on purpose."""


class ConfigError(BotError):
    """The configuration is unusable. ``problems`` lists each one, already located."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(BotError):
    """The SQLite store cannot be opened, read or migrated."""


class ProtocolError(BotError):
    """A frame or response that does not match Kraken's protocol."""


class ChecksumMismatch(ProtocolError):
    """A local book's CRC32 differs from the one Kraken sent."""

    def __init__(self, symbol: str, expected: int, computed: int) -> None:
        self.symbol = symbol
        self.expected = expected
        self.computed = computed
        super().__init__(f"{symbol}: checksum expected {expected}, computed {computed}")


class RiskError(BotError):
    """An intent the risk gate refused; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class ExchangeError(BotError):
    """Kraken (or the simulator) refused a request. ``code`` is Kraken's exact string."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code} ({detail})" if detail else code)


class TransientError(ExchangeError):
    """The exchange or the network is briefly unavailable; retry with backoff if safe."""


class OrderStateUnknown(TransientError):
    """A write (AddOrder, ...) was sent but its outcome is unknown: reconcile, never resend."""


class RateLimitError(ExchangeError):
    """A Kraken rate limit was hit; wait before the next call."""


class RejectedError(ExchangeError):
    """The request is invalid for the exchange; retrying cannot help."""


class InsufficientFunds(RejectedError):
    """``EOrder:Insufficient funds``."""


class AuthError(ExchangeError):
    """Key, signature or permission problems: a human must act."""


class NonceError(AuthError):
    """``EAPI:Invalid nonce``: retry once with a fresh nonce."""


class TokenError(AuthError):
    """A WebSocket token is stale or invalid: mint a new one and resubscribe."""


class LockoutError(AuthError):
    """``EGeneral:Temporary lockout``: stop all private calls and alert."""


# Exact Kraken strings (KRAKEN.md §1.5, §4, §5.1). Matching ignores spaces after ':' and
# compares against the longest known prefix, so "EGeneral:Invalid arguments:ordertype"
# and "EService: Throttled: 1700000000" land where they belong.
_TABLE: Final[dict[str, type[ExchangeError]]] = {
    # rejected: the request is wrong, never retry
    "EGeneral:Invalid arguments": RejectedError,
    "EGeneral:Invalid arguments:Index unavailable": RejectedError,
    "EService:Market in cancel_only mode": RejectedError,
    "EService:Market in post_only mode": RejectedError,
    "EService:Market in limit_only mode": RejectedError,
    "EOrder:Insufficient funds": InsufficientFunds,
    "EOrder:Order minimum not met": RejectedError,
    "EOrder:Cost minimum not met": RejectedError,
    "EOrder:Tick size check failed": RejectedError,
    "EOrder:Orders limit exceeded": RejectedError,
    "EOrder:Invalid price": RejectedError,
    "EOrder:Invalid order": RejectedError,
    "EOrder:Unknown order": RejectedError,
    "EOrder:Positions limit exceeded": RejectedError,
    "EOrder:Reduce only": RejectedError,
    "EOrder:Scheduled orders limit exceeded": RejectedError,
    "EOrder:Unknown position": RejectedError,
    "EOrder:Margin allowance exceeded": RejectedError,
    "EOrder:Margin level too low": RejectedError,
    "EOrder:Insufficient margin": RejectedError,
    "EOrder:Cannot open position": RejectedError,
    "EOrder:Post only order": RejectedError,
    "EOrder:Would take liquidity": RejectedError,
    "EQuery:Unknown asset pair": RejectedError,
    "EQuery:Invalid asset pair": RejectedError,
    "ETrade:Invalid request": RejectedError,
    "EBM:limit exceeded:CAL": RejectedError,
    "EFunding:Max fee exceeded": RejectedError,
    "Currency pair not supported": RejectedError,
    "Subscription name invalid": RejectedError,
    # transient: the exchange is briefly unable; retry where safe
    "EService:Unavailable": TransientError,
    "EService:Busy": TransientError,
    "EService:Deadline elapsed": TransientError,
    "EGeneral:Internal error": TransientError,
    # rate limits: wait
    "EAPI:Rate limit exceeded": RateLimitError,
    "EOrder:Rate limit exceeded": RateLimitError,
    "EOrder:Domain rate limit exceeded": RateLimitError,
    "EService:Throttled": RateLimitError,
    "EGeneral:Too many requests": RateLimitError,
    "EAuth:Rate limit exceeded": RateLimitError,
    "EAuth:Too many requests": RateLimitError,
    # auth: a human must act, except nonce and token which have their own remedies
    "EAPI:Invalid key": AuthError,
    "EAPI:Invalid signature": AuthError,
    "EAPI:Bad request": AuthError,
    "EAPI:Feature disabled": AuthError,
    "EGeneral:Permission denied": AuthError,
    "EAccount:Invalid permissions": AuthError,
    "EAuth:Account temporary disabled": AuthError,
    "EAuth:Account unconfirmed": AuthError,
    "EAPI:Invalid nonce": NonceError,
    "EAPI:Invalid token": TokenError,
    "ESession:Invalid session": TokenError,
    "EGeneral:Temporary lockout": LockoutError,
}


def _normalise(message: str) -> str:
    return ":".join(part.strip() for part in message.strip().split(":"))


_NORMALISED: Final[dict[str, type[ExchangeError]]] = {_normalise(k): v for k, v in _TABLE.items()}


def kraken_error_class(message: str) -> type[ExchangeError]:
    """The error class for one Kraken error string (longest known prefix wins)."""
    text = _normalise(message)
    parts = text.split(":")
    for end in range(len(parts), 0, -1):
        cls = _NORMALISED.get(":".join(parts[:end]))
        if cls is not None:
            return cls
    # WS v2 free-text errors carry the symbol after the known phrase.
    for phrase in ("Currency pair not supported", "Subscription name invalid"):
        if text.startswith(phrase):
            return RejectedError
    return ExchangeError


def error_from_kraken(message: str, detail: str = "") -> ExchangeError:
    """Build the exception for one Kraken error string; unknown strings stay errors."""
    return kraken_error_class(message)(message.strip(), detail)
