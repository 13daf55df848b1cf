"""Followed readiness checks (``ReadinessGate.follow``): a flag the gate sets from its
owner's probe each time the owner says it may have changed, so an order's path reads no
probe. A followed flag is only as good as its owner's calls, so each owner the daemon
follows is driven here through random sequences of its own events, and after every step
the gate's flag must equal the probe it follows: the dead man's switch (armed, refreshed,
failing, lapsing by itself, disarmed), the private feed's subscription (connections opened,
acks, snapshots, refusals, losses) and the feed's books (snapshots, checksum mismatches,
bad frames, lost connections)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import BotError, ExchangeError
from bot.execution.deadman import DeadmanSwitch
from bot.execution.private_feed import PrivateFeed, TokenRejected
from bot.execution.readiness import ReadinessGate
from bot.market.frames import MarketFrames
from bot.net.ws import ConnectionLost
from tests.loopback.test_private_feed import StaticTokens
from tests.unit.test_deadman_schedule import ScriptedKraken, settle
from tests.unit.test_frames import ETH, Seen, corrupt, market, stream

# ------------------------------------------------------------------------------ the gate


def test_a_followed_check_is_read_when_its_owner_says_so_and_only_then() -> None:
    clock = FakeClock()
    gate = ReadinessGate(clock=clock)
    state = {"ok": False}
    reads: list[bool] = []

    def probe() -> bool:
        reads.append(state["ok"])
        return state["ok"]

    changed = gate.follow("x", probe)
    assert reads == [False] and not gate.is_open  # read once when declared
    state["ok"] = True
    assert not gate.is_open and len(reads) == 1  # not told: the gate does not look
    changed()
    assert gate.is_open and gate.state("x").ok and len(reads) == 2
    for _ in range(5):
        assert gate.is_open
    assert len(reads) == 2  # an order's question reads no probe
    state["ok"] = False
    changed()
    assert not gate.is_open and gate.failing() == ("x",)
    assert gate.snapshot()["checks"]["x"] == {"ok": False, "detail": "not yet"}


def test_a_followed_check_with_until_lapses_by_itself_on_the_gates_clock() -> None:
    clock = FakeClock()
    gate = ReadinessGate(clock=clock)
    until = {"at": clock.monotonic() + 10.0}
    changed = gate.follow("armed", lambda: True, until=lambda: until["at"])
    assert gate.is_open
    clock.advance(9.999)
    assert gate.is_open and gate.passes()
    clock.advance(0.001)  # the instant itself: failing (as ``is_lapsed``: now >= until)
    assert not gate.is_open and not gate.passes() and gate.failing() == ("armed",)
    assert gate.snapshot() == {
        "ready": False,
        "checks": {"armed": {"ok": False, "detail": "lapsed"}},
    }
    until["at"] = clock.monotonic() + 10.0
    changed()  # refreshed
    assert gate.is_open
    gate.set("other", until=clock.monotonic() + 1.0)  # a plain flag may lapse too
    clock.advance(1.0)
    assert not gate.is_open and gate.failing() == ("other",)
    gate.set("other")  # set again without ``until``: it no longer lapses
    clock.advance(5.0)
    assert gate.is_open


def test_a_probe_that_raises_fails_its_followed_check_and_a_replaced_owner_no_longer_counts() -> (
    None
):
    gate = ReadinessGate(clock=FakeClock())

    def broken() -> bool:
        raise ExchangeError("EGeneral:Internal error")

    gate.follow("x", broken)
    assert not gate.is_open
    assert gate.state("x").detail.startswith("probe failed: ")
    old = gate.follow("y", lambda: False)
    new_state = {"ok": True}
    gate.follow("x", lambda: new_state["ok"])
    gate.follow("y", lambda: True)
    assert gate.is_open
    old()  # the first owner of "y" calls after it was replaced: nothing changes
    assert gate.is_open
    with pytest.raises(ValueError, match="followed"):
        gate.set("x", False)  # its owner sets it, nobody else
    gate.add("x", lambda: False)  # declared again as a polled probe
    assert not gate.is_open


async def test_a_waiter_wakes_when_a_followed_check_passes() -> None:
    gate = ReadinessGate(clock=FakeClock())
    state = {"ok": False}
    changed = gate.follow("x", lambda: state["ok"])
    waiter = asyncio.create_task(gate.wait())
    await settle()
    assert not waiter.done()
    state["ok"] = True
    changed()
    await asyncio.wait_for(waiter, 1.0)


# ------------------------------------------------------------------------------ the owners


@pytest.mark.parametrize("seed", range(6))
async def test_the_dead_mans_switch_is_followed_exactly(seed: int) -> None:
    """Random refreshes, failures, hangs, lapses, disarms and re-arms: after every step
    the gate's flag is ``armed``, at that instant and over the time that follows."""
    rng = random.Random(seed)
    clock = FakeClock()
    api = ScriptedKraken(clock)
    switch = DeadmanSwitch(api, clock, timeout_s=60, refresh_s=15)
    gate = ReadinessGate(clock=clock)
    switch.on_change = gate.follow(
        "deadman", lambda: switch.armed, until=switch.lapses_at
    )  # fmt: skip
    runner = asyncio.create_task(switch.run())
    held: asyncio.Task[None] | None = None
    seen = {True: 0, False: 0}

    def agree() -> None:
        assert gate.passes(["deadman"]) is switch.armed
        assert gate.is_open is switch.armed
        seen[switch.armed] += 1

    try:
        await switch.arm()
        agree()
        for _ in range(120):
            op = rng.random()
            if op < 0.5:  # time passes, in small steps: refreshes, retries, lapses
                for _ in range(rng.randint(1, 40)):
                    clock.advance(rng.choice((0.25, 1.0, 2.5)))
                    await settle()
                    agree()
            elif op < 0.65:
                api.failing = not api.failing
            elif op < 0.75:  # a refresh that hangs, then is answered
                if api.hold is None:
                    api.hold = asyncio.Event()
                else:
                    api.hold.set()
                    api.hold = None
                    await settle()
            elif op < 0.85 and held is None:  # disarm (a clean stop), re-armed later
                api.failing = False
                if api.hold is not None:
                    api.hold.set()
                    api.hold = None
                held = asyncio.create_task(switch.disarm())
                await settle()
                await asyncio.wait_for(held, 1.0)
            elif held is not None:
                held = None
                api.failing = False
                if api.hold is not None:
                    api.hold.set()
                    api.hold = None
                await asyncio.wait_for(switch.arm(), 1.0)
            agree()
        assert seen[True] and seen[False]  # both sides were met
    finally:
        if api.hold is not None:
            api.hold.set()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


class _Session:
    """What ``PrivateFeed``'s hooks use of a connection: its number and start, the
    requests it queues and the tasks it would run (closed here: none is needed)."""

    def __init__(self, number: int, now: float) -> None:
        self.number, self.opened_at = number, now
        self.queued: list[bytes] = []

    def queue(self, request: bytes) -> None:
        self.queued.append(request)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        coro.close()


def _ack(success: bool = True, error: str | None = None) -> str:
    body: dict[str, Any] = {"method": "subscribe", "success": success}
    if success:
        body["result"] = {"channel": "executions", "snap_orders": True, "snap_trades": True}
    else:
        body["error"] = error
    return json.dumps(body)


def _executions(kind: str, sequence: int) -> str:
    return json.dumps({"channel": "executions", "type": kind, "data": [], "sequence": sequence})


@pytest.mark.parametrize("seed", range(6))
async def test_the_private_feeds_subscription_is_followed_exactly(seed: int) -> None:
    """Random connections opened and lost, acks refused or given, snapshots, updates and
    heartbeats, with and without a snapshot asked: after every step the gate's flag is
    ``subscribed``."""
    rng = random.Random(seed)
    clock = FakeClock()
    snap = bool(seed % 2)
    feed = PrivateFeed(
        "ws://127.0.0.1:1/v2", StaticTokens(), lambda event: None, clock=clock,
        snap_orders=snap, snap_trades=snap,
    )  # fmt: skip
    gate = ReadinessGate(clock=clock)
    feed.on_change = gate.follow("private_feed", lambda: feed.subscribed)
    session: _Session | None = None
    number, sequence, seen = 0, 0, {True: 0, False: 0}
    for _ in range(300):
        op = rng.random()
        try:
            if session is None or op < 0.1:
                if session is not None and op < 0.05:  # the hooks in any order: a new
                    feed.on_close(ConnectionLost("dropped"))  # connection without a close
                number += 1
                session = _Session(number, clock.monotonic())
                feed._token = "t"  # what ``prepare`` mints before each connection
                feed.on_open(session)  # type: ignore[arg-type]  # the hooks' shape
            elif op < 0.3:
                feed.on_message(session, _ack(), clock.monotonic())  # type: ignore[arg-type]
            elif op < 0.35:
                refusal = _ack(False, rng.choice(("EAPI:Invalid token", "EGeneral:Bad")))
                feed.on_message(session, refusal, clock.monotonic())  # type: ignore[arg-type]
            elif op < 0.6:
                sequence += 1
                kind = "snapshot" if rng.random() < 0.4 else "update"
                feed.on_message(session, _executions(kind, sequence), clock.monotonic())  # type: ignore[arg-type]
            elif op < 0.7:
                feed.on_message(session, '{"channel":"heartbeat"}', clock.monotonic())  # type: ignore[arg-type]
            elif op < 0.8:
                feed.on_close(None if rng.random() < 0.2 else ConnectionLost("reset"))
                session = None
            else:
                clock.advance(rng.random())
        except (TokenRejected, BotError):
            feed.on_close(ConnectionLost("refused"))  # the socket closes the connection
            session = None
        assert gate.passes(["private_feed"]) is feed.subscribed
        seen[feed.subscribed] += 1
    assert seen[True] and seen[False]


@pytest.mark.parametrize("seed", range(6))
def test_the_feeds_books_are_followed_exactly(seed: int) -> None:
    """Random good and corrupt frames, unreadable frames, recorded gaps and lost
    connections on two books: after every step each followed probe's flag equals it."""
    rng = random.Random(seed)
    clock = FakeClock()
    seen = Seen()
    frames: MarketFrames = market(seen)
    frames.track("BTC/USD")
    frames.track("ETH/USD")
    gate = ReadinessGate(clock=clock)
    both, btc = frames.valid_probe(["BTC/USD", "ETH/USD"]), frames.valid_probe(["BTC/USD"])
    rechecks = [gate.follow("both", both), gate.follow("btc", btc)]

    def changed() -> None:
        for recheck in rechecks:
            recheck()

    frames.follow_valid(changed)
    streams = {"BTC/USD": stream(400, seed=seed), "ETH/USD": stream(400, ETH, seed=seed + 50)}
    at = {"BTC/USD": 0, "ETH/USD": 0}
    outcomes = {True: 0, False: 0}
    for _ in range(400):
        symbol = rng.choice(("BTC/USD", "ETH/USD"))
        op = rng.random()
        if op < 0.15:  # a fresh snapshot: the stream starts again
            at[symbol] = 0
            frames.push(streams[symbol][0])
        elif op < 0.8:
            at[symbol] = min(at[symbol] + 1, len(streams[symbol]) - 1)
            raw = streams[symbol][at[symbol]]
            frames.push(corrupt(raw) if rng.random() < 0.05 else raw)
        elif op < 0.85:
            frames.push(b'{"channel":"book","type":"update","data":[{"symbol":"ETH/USD"')
        elif op < 0.9:
            frames.invalidate([symbol], "recorded gap")
        elif op < 0.95:
            frames.invalidate_all(rng.choice(("disconnected", None)))
        else:
            frames.invalidate(None, "gap")
        assert gate.passes(["both"]) is both()
        assert gate.passes(["btc"]) is btc()
        outcomes[both()] += 1
    assert outcomes[True] and outcomes[False]
