"""The readiness gate: named flags and probes, open only when all pass."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.core.errors import ProtocolError
from bot.execution.readiness import (
    BOOKS_VALID,
    DEADMAN_ARMED,
    INSTRUMENTS_LOADED,
    PRIVATE_SUBSCRIBED,
    RECONCILED,
    STANDARD_CHECKS,
    ReadinessGate,
)


def test_open_only_when_every_check_passes() -> None:
    gate = ReadinessGate(STANDARD_CHECKS, clock=FakeClock())
    assert STANDARD_CHECKS == (
        INSTRUMENTS_LOADED, RECONCILED, BOOKS_VALID, DEADMAN_ARMED, PRIVATE_SUBSCRIBED,
    )  # fmt: skip
    assert not gate.passes() and gate.failing() == STANDARD_CHECKS
    for name in STANDARD_CHECKS[:-1]:
        gate.set(name)
        assert not gate.passes()
    gate.set(PRIVATE_SUBSCRIBED)
    assert gate.passes() and gate.failing() == ()
    gate.clear(BOOKS_VALID, "BTC/USD checksum mismatch")
    assert not gate.passes() and gate.failing() == (BOOKS_VALID,)
    assert gate.state(BOOKS_VALID).detail == "BTC/USD checksum mismatch"
    assert ReadinessGate(clock=FakeClock()).is_open  # no checks: nothing to wait for


def test_probes_are_read_each_time_and_a_failing_probe_fails_the_check() -> None:
    subscribed = False
    gate = ReadinessGate(clock=FakeClock())
    gate.add(PRIVATE_SUBSCRIBED, lambda: subscribed)
    assert not gate.passes()
    subscribed = True
    assert gate.passes()

    def broken() -> bool:
        raise ProtocolError("feed gone")

    gate.add(DEADMAN_ARMED, broken)
    assert not gate.passes()
    assert gate.state(DEADMAN_ARMED).detail == "probe failed: feed gone"
    with pytest.raises(ValueError, match="probe"):
        gate.set(DEADMAN_ARMED)
    gate.remove(DEADMAN_ARMED)
    assert gate.passes()


def test_snapshot_is_the_readyz_body() -> None:
    gate = ReadinessGate([RECONCILED], clock=FakeClock())
    gate.add(PRIVATE_SUBSCRIBED, lambda: True)
    assert gate.snapshot() == {
        "ready": False,
        "checks": {
            RECONCILED: {"ok": False, "detail": "not yet"},
            PRIVATE_SUBSCRIBED: {"ok": True, "detail": ""},
        },
    }
    gate.set(RECONCILED)
    assert gate.snapshot()["ready"] is True


def test_changes_are_logged_once_each() -> None:
    gate = ReadinessGate([RECONCILED], clock=FakeClock())
    with capture_logs() as logs:
        gate.set(RECONCILED)
        gate.set(RECONCILED)
        gate.clear(RECONCILED, "reconnect")
        gate.clear(RECONCILED, "again")
    assert [(e["event"], e.get("failing")) for e in logs] == [
        ("readiness_open", None),
        ("readiness_closed", [RECONCILED]),
    ]


async def test_wait_on_flags_wakes_when_they_pass() -> None:
    gate = ReadinessGate([RECONCILED, BOOKS_VALID], clock=FakeClock())
    waiter = asyncio.create_task(gate.wait())
    only_books = asyncio.create_task(gate.wait([BOOKS_VALID]))
    await asyncio.sleep(0)
    gate.set(BOOKS_VALID)
    await asyncio.wait_for(only_books, 1)
    assert not waiter.done()
    gate.set(RECONCILED)
    await asyncio.wait_for(waiter, 1)
    await asyncio.wait_for(gate.wait(), 1)  # already open: returns at once


async def test_wait_polls_probes_on_the_injected_clock() -> None:
    clock = FakeClock()
    subscribed = False
    gate = ReadinessGate(clock=clock, poll_s=0.5)
    gate.add(PRIVATE_SUBSCRIBED, lambda: subscribed)
    waiter = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    subscribed = True
    await asyncio.sleep(0)
    assert not waiter.done()  # nobody told it, and the poll has not come round
    clock.advance(0.5)
    await asyncio.wait_for(waiter, 1)


async def test_notify_wakes_a_probe_waiter_early_and_undeclared_names_never_pass() -> None:
    subscribed = False
    gate = ReadinessGate(clock=FakeClock(), poll_s=3600)
    gate.add(PRIVATE_SUBSCRIBED, lambda: subscribed)
    waiter = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    subscribed = True
    gate.notify()
    await asyncio.wait_for(waiter, 1)
    assert not gate.passes(["nonexistent"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gate.wait(["nonexistent"]), 0.05)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        ReadinessGate(poll_s=0)
    with pytest.raises(ValueError):
        ReadinessGate().add("")


@settings(max_examples=200, deadline=None)
@given(
    checks=st.lists(
        st.sampled_from(["flag_ok", "flag_failing", "probe_ok", "probe_failing", "probe_raises"]),
        max_size=6,
    )
)
def test_is_open_is_every_check_passing(checks: list[str]) -> None:
    """``is_open`` says what ``passes()`` says, a probe that raises failing its check. It
    reads no probe while a flag fails, and the probes in order up to the first that fails."""
    gate = ReadinessGate(clock=FakeClock())
    probed: list[int] = []

    def probe(i: int, kind: str) -> bool:
        probed.append(i)
        if kind == "probe_raises":
            raise ProtocolError("the probe's own failure")
        return kind == "probe_ok"

    for i, kind in enumerate(checks):
        if kind.startswith("flag"):
            gate.set(f"c{i}", kind == "flag_ok")
        else:
            gate.add(f"c{i}", lambda i=i, kind=kind: probe(i, kind))
    probed.clear()
    with capture_logs():
        is_open = gate.is_open
        asked = list(probed)
        assert is_open == gate.passes() == (not gate.failing())
    probes = [i for i, kind in enumerate(checks) if kind.startswith("probe")]
    if "flag_failing" in checks:
        assert asked == []
    else:
        failing = [i for i in probes if checks[i] != "probe_ok"]
        assert asked == [i for i in probes if not failing or i <= failing[0]]


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["flag", "probe", "set", "clear", "remove", "turn"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS)
def test_is_open_follows_every_declaration_and_change_of_its_checks(
    ops: list[tuple[str, str, bool]],
) -> None:
    """Whatever checks are declared, set, cleared, removed, re-declared as probes or flags
    (``add`` keeps a flag's state), and however the probes' answers turn, ``is_open`` is
    every declared check passing, read afresh."""
    gate = ReadinessGate(clock=FakeClock())
    answers: dict[str, bool] = {}  # each probe's answer now
    flags: dict[str, bool] = {}  # each flag's state, kept even while it is a probe
    kinds: dict[str, str] = {}  # what each declared name is now
    for op, name, value in ops:
        if op == "flag":
            gate.add(name)  # a new flag fails; a probe re-declared as a flag keeps its state
            flags.setdefault(name, False)
            kinds[name] = "flag"
        elif op == "probe":
            answers[name] = value
            gate.add(name, lambda name=name: answers[name])
            flags.setdefault(name, False)
            kinds[name] = "probe"
        elif op in ("set", "clear"):
            if kinds.get(name) == "probe":
                with pytest.raises(ValueError):
                    gate.set(name, value)
                continue
            ok = value if op == "set" else False
            gate.set(name, ok) if op == "set" else gate.clear(name)
            flags[name], kinds[name] = ok, "flag"
        elif op == "remove":
            gate.remove(name)
            kinds.pop(name, None)
            flags.pop(name, None)
        else:  # a probe's answer turns, with no call to the gate
            answers[name] = value
        expected = all(answers[n] if kind == "probe" else flags[n] for n, kind in kinds.items())
        assert gate.is_open == expected == gate.passes(), (op, name, value)
