"""The REST client's pure policy: backoff, what is retried, and how failures are named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    LockoutError,
    NonceError,
    OrderStateUnknown,
    RateLimitError,
    RejectedError,
    TransientError,
)
from bot.kraken.rest import (
    RetryKind,
    RetryPolicy,
    failure_after_send,
    kraken_failure,
    next_retry,
    settle_error,
)
from bot.kraken.rest_methods import CONVERGENT_WRITES, NEVER_RETRIED, WRITE_METHODS, is_write

POLICY = RetryPolicy(max_attempts=4, base_delay_s=0.25, max_delay_s=2.0, multiplier=2.0)
READS = ("Balance", "OpenOrders", "QueryOrders", "ClosedOrders", "GetWebSocketsToken", "Time")


# --- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_then_caps_without_jitter() -> None:
    assert [POLICY.delay(n, 0.0) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_jitter_only_shortens_a_delay_and_by_at_most_its_fraction() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=0.5)
    assert policy.delay(1, 0.0) == 1.0
    assert policy.delay(1, 0.5) == 0.75
    assert policy.delay(1, 0.999999) == pytest.approx(0.5, abs=1e-5)


@given(retry=st.integers(min_value=0, max_value=10_000), u=st.floats(0.0, 0.999999))
def test_delay_is_always_within_zero_and_the_cap(retry: int, u: float) -> None:
    delay = POLICY.delay(retry, u)
    assert 0.0 <= delay <= POLICY.max_delay_s


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay_s": -1.0},
        {"max_delay_s": -1.0},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"multiplier": 0.5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --- what is retried -----------------------------------------------------------------------


def test_order_entry_is_never_retried_and_cancels_may_be() -> None:
    assert {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder"} <= NEVER_RETRIED
    assert {"CancelOrder", "CancelAll", "CancelAllOrdersAfter"} <= CONVERGENT_WRITES
    assert NEVER_RETRIED | CONVERGENT_WRITES == WRITE_METHODS
    assert not NEVER_RETRIED & CONVERGENT_WRITES
    assert all(not is_write(m) for m in READS)


@pytest.mark.parametrize("method", [*READS, "AddOrder", "AddOrderBatch", "CancelOrder"])
def test_an_invalid_nonce_is_retried_once_for_any_method(method: str) -> None:
    error = NonceError("EAPI:Invalid nonce")
    first = next_retry(method, error, attempt=1, nonce_retried=False, policy=POLICY)
    again = next_retry(method, error, attempt=1, nonce_retried=True, policy=POLICY)
    assert first is RetryKind.NONCE
    assert again is None


@pytest.mark.parametrize("method", READS)
def test_transient_errors_on_reads_back_off_until_the_attempts_run_out(method: str) -> None:
    error = TransientError("EService:Unavailable")
    kinds = [
        next_retry(method, error, attempt=n, nonce_retried=False, policy=POLICY)
        for n in range(1, 6)
    ]
    assert kinds == [RetryKind.BACKOFF] * 3 + [None, None]


@pytest.mark.parametrize("method", sorted(NEVER_RETRIED))
@pytest.mark.parametrize(
    "error",
    [
        OrderStateUnknown("EHTTP:Timeout"),
        TransientError("EHTTP:Connect failed"),  # not even sent: still not repeated
        OrderStateUnknown("EService:Unavailable"),
    ],
)
def test_order_entry_is_not_retried_after_a_transient_failure(
    method: str, error: ExchangeError
) -> None:
    assert next_retry(method, error, attempt=1, nonce_retried=False, policy=POLICY) is None


@pytest.mark.parametrize("method", sorted(CONVERGENT_WRITES))
def test_cancels_are_retried_after_a_lost_response(method: str) -> None:
    error = OrderStateUnknown("EHTTP:Timeout")
    kind = next_retry(method, error, attempt=1, nonce_retried=False, policy=POLICY)
    assert kind is RetryKind.BACKOFF


@pytest.mark.parametrize("method", ["Balance", "AddOrder", "CancelOrder"])
@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("EAPI:Rate limit exceeded"),
        RejectedError("EOrder:Invalid order"),
        AuthError("EAPI:Invalid signature"),
        LockoutError("EGeneral:Temporary lockout"),
        ExchangeError("EWhatever:Never heard of it"),
    ],
)
def test_rate_limits_rejections_auth_and_unknown_errors_are_never_retried(
    method: str, error: ExchangeError
) -> None:
    assert next_retry(method, error, attempt=1, nonce_retried=False, policy=POLICY) is None


# --- naming failures -----------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(WRITE_METHODS))
def test_a_failure_after_sending_a_write_is_unknown_state(method: str) -> None:
    error = failure_after_send(method, "EHTTP:Timeout")
    assert isinstance(error, OrderStateUnknown)
    assert error.code == "EHTTP:Timeout"


@pytest.mark.parametrize("method", READS)
def test_a_failure_after_sending_a_read_is_merely_transient(method: str) -> None:
    error = failure_after_send(method, "EHTTP:Status 502")
    assert type(error) is TransientError


@pytest.mark.parametrize(
    "message", ["EService:Unavailable", "EService:Busy", "EGeneral:Internal error:42"]
)
def test_kraken_transient_errors_on_addorder_are_unknown_state(message: str) -> None:
    assert isinstance(kraken_failure("AddOrder", message), OrderStateUnknown)
    assert type(kraken_failure("Balance", message)) is TransientError


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("EOrder:Insufficient funds", InsufficientFunds),
        ("EGeneral:Invalid arguments:volume", RejectedError),
        ("EAPI:Invalid nonce", NonceError),
        ("EOrder:Rate limit exceeded", RateLimitError),
        ("EGeneral:Temporary lockout", LockoutError),
        ("EFoo:Unheard of", ExchangeError),
    ],
)
def test_definite_kraken_answers_keep_their_class_on_writes(
    message: str, cls: type[ExchangeError]
) -> None:
    error = kraken_failure("AddOrder", message, "detail")
    assert type(error) is cls
    assert error.code == message
    assert error.detail == "detail"


def test_after_an_uncertain_attempt_a_later_rejection_is_unknown_state() -> None:
    # The first CancelOrder timed out; its retry says the order is gone. Maybe our first
    # attempt cancelled it, maybe it filled: the caller must reconcile.
    later = RejectedError("EOrder:Invalid order")
    final = settle_error("CancelOrder", later, uncertain=True)
    assert isinstance(final, OrderStateUnknown)
    assert final.code == "EOrder:Invalid order"
    assert final.__cause__ is later


@pytest.mark.parametrize(
    ("method", "error", "uncertain"),
    [
        ("CancelOrder", RejectedError("EOrder:Invalid order"), False),
        ("Balance", TransientError("EService:Unavailable"), True),
        ("CancelOrder", LockoutError("EGeneral:Temporary lockout"), True),
        ("CancelAll", OrderStateUnknown("EHTTP:Timeout"), True),
    ],
)
def test_settle_leaves_certain_and_auth_errors_alone(
    method: str, error: ExchangeError, uncertain: bool
) -> None:
    assert settle_error(method, error, uncertain=uncertain) is error
