"""Kraken Futures error codes and order statuses land where their remedy says."""

from __future__ import annotations

import pytest

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
from bot.futures.error_codes import (
    CONVERGENT_WRITES,
    NEVER_RETRIED,
    error_class,
    futures_error,
    is_write,
    status_error,
)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("authenticationError", AuthError),
        ("accountInactive", AuthError),
        ("nonceBelowThreshold", NonceError),
        ("nonceDuplicate", NonceError),
        ("apiLimitExceeded", RateLimitError),
        ("invalidArgument", RejectedError),
        ("requiredArgumentMissing", RejectedError),
        ("Json Parse Error", RejectedError),
        ("insufficientFunds", InsufficientFunds),
        ("marketUnavailable", TransientError),
        ("Server Error", TransientError),
        ("Unavailable", TransientError),
        ("unknownError", TransientError),
    ],
)
def test_error_codes_by_remedy(code: str, cls: type[ExchangeError]) -> None:
    error = futures_error(code, endpoint="openorders")
    assert type(error) is cls
    assert error.code == code


def test_transient_errors_on_order_entry_are_unknown_outcomes() -> None:
    for endpoint in ("sendorder", "editorder", "batchorder", "cancelorder"):
        error = futures_error("Server Error", endpoint=endpoint)
        assert isinstance(error, OrderStateUnknown), endpoint
    # A definite refusal stays what it is on a write: nothing was done.
    assert type(futures_error("invalidArgument", endpoint="sendorder")) is RejectedError
    assert type(futures_error("nonceDuplicate", endpoint="sendorder")) is NonceError


def test_unknown_codes_are_errors_never_data() -> None:
    error = futures_error("somethingNew", endpoint="sendorder")
    assert type(error) is ExchangeError
    assert error_class("somethingNew") is ExchangeError


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ("insufficientAvailableFunds", InsufficientFunds),
        ("wouldCauseLiquidation", InsufficientFunds),
        ("postWouldExecute", RejectedError),
        ("iocWouldNotExecute", RejectedError),
        ("wouldNotReducePosition", RejectedError),
        ("clientOrderIdAlreadyExist", RejectedError),
        ("orderForEditNotFound", RejectedError),
        ("notFound", RejectedError),
        ("maxPositionViolation", RejectedError),
    ],
)
def test_order_statuses(status: str, cls: type[ExchangeError]) -> None:
    assert type(status_error(status)) is cls


def test_which_endpoints_write_and_which_are_never_retried() -> None:
    assert is_write("/derivatives/api/v3/sendorder")
    assert not is_write("openorders")
    assert {"sendorder", "editorder", "batchorder"} == set(NEVER_RETRIED)
    assert "cancelallordersafter" in CONVERGENT_WRITES
