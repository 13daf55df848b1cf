"""The fault schedule the spot and Futures simulators share (``bot.sim.fault_schedule``):
the same bounds, states and REST uses on both venues, each with its own kinds."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.sim.faults import FaultKind as SpotKind
from bot.sim.faults import FaultSpec as SpotSpec
from bot.sim.futures.faults import FaultKind as FuturesKind
from bot.sim.futures.faults import FaultSpec as FuturesSpec
from bot.sim.futures.venue import FuturesVenue
from bot.sim.venue import SimVenue


def venues(clock: FakeClock) -> list[tuple[Any, Any, Any]]:
    spot = SimVenue(clock=clock, market=None)
    futures = FuturesVenue(clock=clock, market=None)
    return [(spot, SpotKind, SpotSpec), (futures, FuturesKind, FuturesSpec)]


@pytest.mark.parametrize("which", [0, 1])
async def test_rest_faults_are_used_up_and_start_after_their_delay(which: int) -> None:
    clock = FakeClock()
    venue, kind, _ = venues(clock)[which]
    faults = venue.faults
    fault = await faults.inject(kind="rest_error", count=2, after_s=5.0, endpoint="X")
    assert fault.state == "scheduled"
    assert faults.take(kind.REST_ERROR, "X", private=False) is None  # not yet
    clock.advance(5.0)
    assert faults.take(kind.REST_ERROR, "Y", private=False) is None  # another endpoint
    assert faults.take(kind.REST_ERROR, "X", private=False) is fault
    assert fault.state == "active" and fault.remaining == 1
    assert faults.take(kind.REST_ERROR, "X", private=False) is fault
    assert fault.state == "done" and faults.take(kind.REST_ERROR, "X", private=False) is None
    nonce = await faults.inject(kind="invalid_nonce", duration_s=3.0)
    assert faults.take(kind.INVALID_NONCE, "X", private=False) is None  # private calls only
    assert faults.take(kind.INVALID_NONCE, "X", private=True) is nonce
    clock.advance(3.0)
    assert faults.take(kind.INVALID_NONCE, "X", private=True) is None
    assert nonce.state == "done" and nonce.fired == 1
    as_dict = fault.as_dict()
    assert (as_dict["id"], as_dict["kind"], as_dict["state"], as_dict["fired"]) == (
        fault.id,
        "rest_error",
        "done",
        2,
    )


@pytest.mark.parametrize("which", [0, 1])
async def test_a_pause_lasts_its_duration_or_until_cancelled(which: int) -> None:
    clock = FakeClock()
    venue, _, _ = venues(clock)[which]
    faults = venue.faults
    short = await faults.inject(kind="pause_engine", duration_s=2.0)
    endless = await faults.inject(kind="pause_engine")
    assert venue.paused and short.state == endless.state == "active"
    clock.advance(2.0)
    await venue.step()
    assert short.state == "done" and venue.paused  # the other pause holds
    assert faults.cancel(endless.id) == 1
    assert not venue.paused and endless.state == "cancelled"
    later = await faults.inject(kind="pause_engine", after_s=1.0)
    assert not venue.paused and later.state == "scheduled"
    clock.advance(1.0)
    await venue.step()
    assert venue.paused and later.state == "active"
    assert faults.cancel() == 1 and not venue.paused


@pytest.mark.parametrize("which", [0, 1])
def test_specs_from_json_are_checked(which: int) -> None:
    spec_type = venues(FakeClock())[which][2]
    with pytest.raises(ValueError, match="needs a 'kind'"):
        spec_type.from_dict({})
    with pytest.raises(ValueError, match="unknown fault field"):
        spec_type.from_dict({"kind": "ws_drop", "colour": "red"})
    with pytest.raises(ValueError, match="count must be an integer"):
        spec_type.from_dict({"kind": "ws_drop", "count": "2"})
    with pytest.raises(ValueError, match="after_s must be a number"):
        spec_type.from_dict({"kind": "ws_drop", "after_s": True})
    with pytest.raises(ValueError, match="after_s must not be negative"):
        spec_type.from_dict({"kind": "ws_drop", "after_s": -1})
    assert spec_type.from_dict({"kind": "rest_error"}).count == 1  # one use by default
