"""bot.service.futures_permissions: the probes' verdicts on a Futures key, with a
hand-written fake client; and bot.sim.futures.access, the levels the simulator enforces.

``FakeFutures`` answers ``accounts`` and ``cancel_order`` as Kraken Futures would for a key
with a General API ``level``: ``authenticationError`` for a call the level does not allow,
else what ``answers`` says (nothing, or an error to raise).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.errors import (
    AuthError,
    ExchangeError,
    OrderStateUnknown,
    RateLimitError,
    TransientError,
)
from bot.futures.error_codes import futures_error
from bot.service.futures_permissions import (
    PROBE_ORDER_ID,
    PROBES,
    Refused,
    missing_error,
    probe,
)
from bot.sim.futures.access import FULL, KeyAccess, Level

READ, WRITE = PROBES


class FakeFutures:
    def __init__(self, level: str = "full", answers: dict[str, ExchangeError] | None = None):
        self.level = level
        self.answers = answers or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, endpoint: str, *, write: bool) -> None:
        if self.level == "none" or (write and self.level == "read_only"):
            raise futures_error("authenticationError", "HTTP 200", endpoint=endpoint)
        if endpoint in self.answers:
            raise self.answers[endpoint]

    async def accounts(self) -> Any:
        self.calls.append(("accounts", {}))
        self._answer("accounts", write=False)
        return {}

    async def cancel_order(
        self, *, order_id: str | None = None, cli_ord_id: str | None = None, check: bool = True
    ) -> Any:
        self.calls.append(("cancelorder", {"order_id": order_id, "check": check}))
        self._answer("cancelorder", write=True)
        return {"status": "notFound"}


@pytest.mark.parametrize(
    ("level", "read_refused", "write_refused"),
    [("full", False, False), ("read_only", False, True), ("none", True, True)],
)
async def test_each_level_gets_its_verdict(
    level: str, read_refused: bool, write_refused: bool
) -> None:
    kraken = FakeFutures(level)
    read, write = await probe(kraken, READ), await probe(kraken, WRITE)
    assert (read is not None, write is not None) == (read_refused, write_refused)
    for refused in (read, write):
        if refused is not None:
            assert refused.error == "authenticationError"


async def test_the_write_probe_cancels_an_order_that_cannot_exist_unchecked() -> None:
    kraken = FakeFutures()
    assert await probe(kraken, WRITE) is None
    # Not Kraken's UUID order ids, and notFound is not raised (check=False).
    assert kraken.calls == [("cancelorder", {"order_id": PROBE_ORDER_ID, "check": False})]
    assert "-" in PROBE_ORDER_ID and len(PROBE_ORDER_ID) != 36


@pytest.mark.parametrize(
    "error",
    [
        TransientError("EHTTP:Status 503"),
        OrderStateUnknown("EHTTP:Status 502"),  # a lost cancel answer
        RateLimitError("apiLimitExceeded"),
        AuthError("accountInactive"),  # the account, not the key's level: fatal as it is
    ],
)
async def test_what_is_not_a_verdict_is_raised(error: ExchangeError) -> None:
    kraken = FakeFutures(answers={"accounts": error, "cancelorder": error})
    for item in PROBES:
        with pytest.raises(type(error)):
            await probe(kraken, item)


async def test_an_argument_error_passes_the_probe() -> None:
    """An error about the call's arguments comes from past the access check."""
    kraken = FakeFutures(answers={"cancelorder": ExchangeError("invalidArgument")})
    assert await probe(kraken, WRITE) is None


def test_the_message_names_the_level_and_what_to_set() -> None:
    error = missing_error([Refused(WRITE, "authenticationError")])
    first, last = error.problems
    assert first.startswith("the Futures API key lacks General API: Full Access (needed for")
    assert "cancelorder answered authenticationError" in first and "Read Only" in first
    assert (
        '"General API" set to "Full Access"' in last
        and '"Withdrawal API" left at "No Access"' in last
    )
    read = missing_error([Refused(READ, "authenticationError")]).problems[0]
    assert "No Access, or the key or secret is wrong" in read


# ---------------------------------------------------------------- the simulator's levels


@pytest.mark.parametrize(
    ("general", "read", "write"),
    [(Level.FULL, True, True), (Level.READ_ONLY, True, False), (Level.NONE, False, False)],
)
def test_the_simulator_allows_what_kraken_describes(
    general: Level, read: bool, write: bool
) -> None:
    access = KeyAccess(general)
    assert (access.allows(write=False), access.allows(write=True)) == (read, write)


def test_levels_parse_from_ids_and_krakens_names() -> None:
    assert Level.parse("Read Only") is Level.READ_ONLY is Level.parse("read_only")
    assert Level.parse("No Access") is Level.NONE and Level.parse("Full Access") is Level.FULL
    assert KeyAccess.from_dict({}) == FULL == KeyAccess(Level.FULL, Level.NONE)
    assert KeyAccess.from_dict({"general": "read-only", "withdrawal": "full"}) == KeyAccess(
        Level.READ_ONLY, Level.FULL
    )
    with pytest.raises(ValueError, match="unknown access level 'trade'"):
        Level.parse("trade")
    with pytest.raises(ValueError, match="No Access or Full Access"):
        KeyAccess.from_dict({"withdrawal": "read_only"})
