"""The exchange's trading state against what may be sent (bot.kraken.system_status)."""

from __future__ import annotations

import pytest

from bot.kraken.system_status import amend_refusal, place_refusal, readiness

# (status, order_type, post_only) -> may a new order go? Kraken's status page, KRAKEN.md §5.2.
PLACE = [
    ("online", "limit", False, True),
    ("online", "market", False, True),
    ("post_only", "limit", True, True),
    ("post_only", "limit", False, False),
    ("post_only", "market", False, False),
    ("limit_only", "limit", False, True),
    ("limit_only", "limit", True, True),
    ("limit_only", "market", False, False),
    ("cancel_only", "limit", True, False),
    ("cancel_only", "market", False, False),
    ("maintenance", "limit", True, False),
    ("reduce_only", "limit", True, False),  # a state not known here: nothing goes
    (None, "market", False, True),  # no state yet: readiness waits for one, not this rule
]


@pytest.mark.parametrize(("status", "order_type", "post_only", "allowed"), PLACE)
def test_place(status: str | None, order_type: str, post_only: bool, allowed: bool) -> None:
    refusal = place_refusal(status, order_type, post_only)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert status is not None and refusal.startswith(status)  # the reason names it


@pytest.mark.parametrize(("status", "order_type", "post_only", "allowed"), PLACE)
def test_an_amend_needs_a_state_that_accepts_the_order_as_it_stands(
    status: str | None, order_type: str, post_only: bool, allowed: bool
) -> None:
    assert (amend_refusal(status, order_type, post_only) is None) is allowed


def test_readiness_fails_while_no_order_can_be_placed_and_names_the_state() -> None:
    assert readiness("online") == (True, "exchange online")
    assert readiness("post_only") == (True, "exchange post_only")
    assert readiness("limit_only")[0]
    for status in ("cancel_only", "maintenance", "something_new"):
        ok, detail = readiness(status)
        assert not ok and status in detail
    assert readiness(None) == (False, "no status from the exchange yet")
