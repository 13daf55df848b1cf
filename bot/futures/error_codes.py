"""Kraken Futures' error codes and order statuses, mapped by remedy onto ``bot.core.errors``.

Kraken Futures answers ``{"result": "error", "error": "<code>", "serverTime": …}`` when it
refuses a request, and ``{"result": "success", …}`` otherwise, where **success does not
mean the order was placed**: ``sendStatus.status`` (``editStatus``, ``cancelStatus``, each
``batchStatus`` item) says what happened (KRAKEN.md §6.1; the codes below are the enums of
https://docs.kraken.com/api/docs/futures-api/trading/send-order and its sibling pages).

Remedies, as the rest of krakenbot understands them:

- ``AuthError``: ``authenticationError``, ``accountInactive`` (a human must act);
  ``NonceError``: ``nonceBelowThreshold``, ``nonceDuplicate`` (one retry, fresh nonce).
- ``RateLimitError``: ``apiLimitExceeded`` (wait: the budget is 500 per 10 s).
- ``TransientError``: ``marketUnavailable``, ``Server Error``, ``Unavailable``,
  ``unknownError``. On an order-entry endpoint (``WRITE_ENDPOINTS``) these become
  ``OrderStateUnknown``: the server may have acted before it failed, so the caller
  reconciles (open orders, fills, by ``cliOrdId``) and never resends.
- ``RejectedError``: argument and order-status rejections (``invalidArgument``,
  ``postWouldExecute``, ``wouldNotReducePosition``, ``clientOrderIdAlreadyExist``, …);
  ``InsufficientFunds`` for ``insufficientAvailableFunds``, ``wouldCauseLiquidation`` and
  the transfer code ``insufficientFunds``.
- Anything not in the tables is a plain ``ExchangeError``: never data, never retried.

This module owns the tables and which endpoints write; it does no I/O.
"""

from __future__ import annotations

from typing import Final

from bot.core.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    NonceError,
    OrderStateUnknown,
    RateLimitError,
    RejectedError,
    TransientError,
)

__all__ = [
    "CONVERGENT_WRITES",
    "ERROR_CODES",
    "NEVER_RETRIED",
    "ORDER_STATUSES",
    "SUCCESS_STATUSES",
    "WRITE_ENDPOINTS",
    "error_class",
    "futures_error",
    "is_write",
    "status_error",
]

# The ``error`` field of a ``result: error`` answer (every endpoint page lists the same).
ERROR_CODES: Final[dict[str, type[ExchangeError]]] = {
    "authenticationError": AuthError,
    "accountInactive": AuthError,
    "nonceBelowThreshold": NonceError,
    "nonceDuplicate": NonceError,
    "apiLimitExceeded": RateLimitError,
    "marketUnavailable": TransientError,
    "Server Error": TransientError,
    "Unavailable": TransientError,
    "unknownError": TransientError,
    "invalidArgument": RejectedError,
    "requiredArgumentMissing": RejectedError,
    "Json Parse Error": RejectedError,
    "invalidAccount": RejectedError,
    "invalidAmount": RejectedError,
    "invalidUnit": RejectedError,
    "notFound": RejectedError,
    "insufficientFunds": InsufficientFunds,
}

# ``sendStatus.status`` (and edit, cancel and batch statuses) that mean "not done".
ORDER_STATUSES: Final[dict[str, type[ExchangeError]]] = {
    "invalidOrderType": RejectedError,
    "invalidSide": RejectedError,
    "invalidSize": RejectedError,
    "invalidPrice": RejectedError,
    "insufficientAvailableFunds": InsufficientFunds,
    "wouldCauseLiquidation": InsufficientFunds,
    "selfFill": RejectedError,
    "tooManySmallOrders": RejectedError,
    "tooManyOrders": RejectedError,
    "maxPositionViolation": RejectedError,
    "marketSuspended": RejectedError,
    "marketInactive": RejectedError,
    "marketIsPostOnly": RejectedError,
    "clientOrderIdAlreadyExist": RejectedError,
    "clientOrderIdTooLong": RejectedError,
    "clientOrderIdTooBig": RejectedError,
    "clientOrderIdInvalid": RejectedError,
    "outsidePriceCollar": RejectedError,
    "wouldIncreasePriceDislocation": RejectedError,
    "postWouldExecute": RejectedError,
    "iocWouldNotExecute": RejectedError,
    "wouldNotReducePosition": RejectedError,
    "fixedLeverageTooHigh": RejectedError,
    "wouldProcessAfterSpecifiedTime": RejectedError,
    "orderForEditNotFound": RejectedError,
    "orderForEditNotAStop": RejectedError,
    "cannotEditTriggerPriceOfTrailingStop": RejectedError,
    "cannotEditLimitPriceOfTrailingStop": RejectedError,
    "notFound": RejectedError,
    "filled": RejectedError,  # a cancel of an order already filled
}

# What counts as done, per kind of request.
SUCCESS_STATUSES: Final[dict[str, frozenset[str]]] = {
    "send": frozenset({"placed", "partiallyFilled", "filled"}),
    "edit": frozenset({"edited"}),
    "cancel": frozenset({"cancelled"}),
    "cancel_all": frozenset({"cancelled", "noOrdersToCancel"}),
}

# Endpoints that change orders: a failure after the request left makes the outcome unknown.
WRITE_ENDPOINTS: Final = frozenset(
    {
        "sendorder",
        "editorder",
        "cancelorder",
        "batchorder",
        "cancelallorders",
        "cancelallordersafter",
    }
)
# Writes whose repetition cannot do harm (cancelling twice cancels once; re-arming the
# dead-man's switch sets the same timer): retried on transient errors like reads.
CONVERGENT_WRITES: Final = frozenset({"cancelorder", "cancelallorders", "cancelallordersafter"})
# Writes never sent twice: a second attempt could place a second order.
NEVER_RETRIED: Final = WRITE_ENDPOINTS - CONVERGENT_WRITES


def is_write(endpoint: str) -> bool:
    """Whether ``endpoint`` (``sendorder`` or a path ending in it) changes orders."""
    return endpoint.rstrip("/").rsplit("/", 1)[-1] in WRITE_ENDPOINTS


def error_class(code: str) -> type[ExchangeError]:
    """The class for a Kraken Futures error code or order status (unknown: ExchangeError)."""
    return ERROR_CODES.get(code) or ORDER_STATUSES.get(code) or ExchangeError


def futures_error(code: str, detail: str = "", *, endpoint: str | None = None) -> ExchangeError:
    """The exception for a ``result: error`` answer to ``endpoint``.

    A transient code on an order-entry endpoint is ``OrderStateUnknown``: the request may
    have been acted on before the server failed.
    """
    cls = ERROR_CODES.get(code, ExchangeError)
    if endpoint is not None and is_write(endpoint) and cls is TransientError:
        return OrderStateUnknown(code, detail or "the request may have been executed")
    return cls(code, detail)


def status_error(status: str, detail: str = "") -> ExchangeError:
    """The exception for an order status that is not a success (``postWouldExecute``, …)."""
    return (ORDER_STATUSES.get(status) or ExchangeError)(status, detail)
