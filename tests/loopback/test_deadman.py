"""The dead-man's switch (bot.execution.deadman) against the simulator's
``CancelAllOrdersAfter`` timers, over real signed REST on 127.0.0.1.

Most tests run the venue and the switch on one ``FakeClock``: the test advances it and
calls ``venue.step()`` (which fires due timers), and waits (bounded) for each REST round
trip the advance set off. One test runs on the real clock with a one-second timeout.
The bot's own REST client places the orders, so one client owns the key's nonces.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.clock import Clock, FakeClock, SystemClock
from bot.execution.deadman import DeadmanSwitch
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import OrderState
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from bot.store import Store
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.placing import command

WAIT_S = 5.0  # the bound on every wait; scale up on a slow machine


async def until(cond: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    """Poll ``cond``: a bounded wait for a REST round trip the switch started."""
    try:
        async with asyncio.timeout(within):
            while not cond():  # noqa: ASYNC110 (the switch's counters announce nothing)
                await asyncio.sleep(0.002)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def rest_for(sim: SimHandle, clock: Clock, tier: str = "starter") -> KrakenRestClient:
    return KrakenRestClient(
        sim.base_url,
        clock=clock,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        session=sim.session,
        tier=tier,
        retry=RetryPolicy(max_attempts=1),  # a failure reaches the switch at once
    )


def venue_of(rest: KrakenRestClient, sim: SimHandle) -> KrakenRestVenue:
    """The venue port over ``rest``: what the switch talks to."""
    return KrakenRestVenue(rest, sim.venue.instruments)


async def resting_order(rest: KrakenRestClient) -> str:
    result = await rest.add_order("XBTUSD", "buy", "limit", "0.001", "1000.0", oflags="post")
    (txid,) = result["txid"]
    return str(txid)


async def open_ids(rest: KrakenRestClient) -> set[str]:
    return set((await rest.open_orders())["open"])


@asynccontextmanager
async def running(switch: DeadmanSwitch) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(switch.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class Driver:
    """Fake time for the venue and the switch, one step at a time."""

    def __init__(self, sim: SimHandle, switch: DeadmanSwitch) -> None:
        assert isinstance(sim.clock, FakeClock)
        self.clock: FakeClock = sim.clock
        self.sim = sim
        self.switch = switch

    def calls(self) -> int:
        return self.switch.stats.refreshes + self.switch.stats.failures

    async def step(self, seconds: float, *, calls: int = 0) -> None:
        """Advance ``seconds``, wait for ``calls`` REST round trips to end, fire timers."""
        expected = self.calls() + calls
        self.clock.advance(seconds)
        await until(lambda: self.calls() >= expected, f"{calls} CancelAllOrdersAfter call(s)")
        await asyncio.sleep(0)
        await self.sim.venue.step()

    def venue_trigger_s(self) -> float | None:
        """Seconds until the simulator fires the account's timer (None: off)."""
        trigger_ns = self.sim.venue.deadman_trigger(self.sim.account)
        return None if trigger_ns is None else (trigger_ns - self.clock.time_ns()) / 1e9


@pytest.fixture
def clock(fake_sim: SimHandle) -> FakeClock:
    assert isinstance(fake_sim.clock, FakeClock)
    return fake_sim.clock


async def test_arm_sets_the_venues_timer(fake_sim: SimHandle, clock: FakeClock) -> None:
    switch = DeadmanSwitch(venue_of(rest_for(fake_sim, clock), fake_sim), clock, timeout_s=60)
    assert fake_sim.venue.deadman_trigger(fake_sim.account) is None
    start = clock.monotonic()
    await switch.arm()
    assert fake_sim.venue.deadman_trigger(fake_sim.account) == clock.time_ns() + 60 * 10**9
    assert switch.armed and switch.trigger_at_monotonic == start + 60
    assert switch.seconds_to_trigger() == 60
    assert switch.stats.last_trigger_time is not None


async def test_refresh_keeps_orders_alive_until_the_heartbeat_stops(
    fake_sim: SimHandle, clock: FakeClock
) -> None:
    rest = rest_for(fake_sim, clock)
    switch = DeadmanSwitch(venue_of(rest, fake_sim), clock, timeout_s=60)
    drive = Driver(fake_sim, switch)
    await switch.arm()
    order = await resting_order(rest)
    async with running(switch):
        for _ in range(20):  # 300 s: five timeouts, refreshed every 15 s
            await drive.step(15, calls=1)
            assert drive.venue_trigger_s() == 60
        assert order in await open_ids(rest)
    # The heartbeat stops (the task is gone, nothing was disarmed on the way out).
    assert drive.venue_trigger_s() == 60
    await drive.step(59)
    assert order in await open_ids(rest)
    await drive.step(1)
    assert await open_ids(rest) == set()
    assert fake_sim.venue.deadman_trigger(fake_sim.account) is None  # fired, and off


async def test_disarm_turns_the_timer_off_and_orders_stay(
    fake_sim: SimHandle, clock: FakeClock
) -> None:
    rest = rest_for(fake_sim, clock)
    switch = DeadmanSwitch(venue_of(rest, fake_sim), clock, timeout_s=60)
    drive = Driver(fake_sim, switch)
    await switch.arm()
    order = await resting_order(rest)
    async with running(switch):
        await drive.step(15, calls=1)
        await switch.disarm()
        assert fake_sim.venue.deadman_trigger(fake_sim.account) is None
        assert not switch.armed and switch.seconds_to_trigger() is None
        for _ in range(10):
            await drive.step(15)
    assert switch.stats.refreshes == 2  # nothing was sent after the disarm
    assert order in await open_ids(rest)


async def test_a_failed_refresh_is_retried_within_a_second(
    fake_sim: SimHandle, clock: FakeClock
) -> None:
    rest = rest_for(fake_sim, clock)
    switch = DeadmanSwitch(venue_of(rest, fake_sim), clock, timeout_s=60)
    drive = Driver(fake_sim, switch)
    await switch.arm()
    await fake_sim.venue.faults.inject(
        kind="rest_error", endpoint="CancelAllOrdersAfter", error="EService:Unavailable"
    )
    async with running(switch):
        await drive.step(15, calls=1)
        assert switch.stats.failures == 1
        assert drive.venue_trigger_s() == 45  # still the first arm's
        await drive.step(1, calls=1)
        assert switch.stats.refreshes == 2
        assert drive.venue_trigger_s() == 60
        assert switch.seconds_to_trigger() == 60


async def test_refreshes_failing_past_the_trigger_call_on_lapse_once(
    sim_factory: SimFactory,
) -> None:
    # A retry a second for 50 s: on Starter limits (0.33 calls/s sustained) the REST
    # client would make the retries wait for room; Pro sustains one a second.
    clock = FakeClock()
    fake_sim = await sim_factory(clock=clock, tier="pro")
    rest = rest_for(fake_sim, clock, tier="pro")
    lapses: list[float] = []
    switch = DeadmanSwitch(
        venue_of(rest, fake_sim),
        clock,
        timeout_s=60,
        on_lapse=lambda: lapses.append(clock.monotonic()),
    )
    drive = Driver(fake_sim, switch)
    await switch.arm()
    start = clock.monotonic()
    order = await resting_order(rest)
    outage = await fake_sim.venue.faults.inject(
        kind="rest_error", endpoint="CancelAllOrdersAfter", status=503, duration_s=1000
    )
    async with running(switch):
        await drive.step(15, calls=1)
        for _ in range(50):  # to 65 s: a failed retry every second
            await drive.step(1, calls=1)
        # Margin 2 s: reported at 58, before the venue fired at 60, and only once.
        assert lapses == [start + 58]
        assert switch.stats.lapses == 1 and switch.stats.failures == 51
        assert not switch.armed
        assert await open_ids(rest) == set() and order  # the venue did cancel everything
        fake_sim.venue.faults.cancel(outage.id)
        await drive.step(1, calls=1)  # re-armed
        assert switch.armed and drive.venue_trigger_s() == 60
        for _ in range(8):
            await drive.step(15, calls=1)
        assert len(lapses) == 1


async def test_real_clock_orders_cancelled_once_the_refresher_stops(sim: SimHandle) -> None:
    clock = SystemClock()
    rest = rest_for(sim, clock)
    switch = DeadmanSwitch(venue_of(rest, sim), clock, timeout_s=1, refresh_s=0.2)
    await switch.arm()
    order = await resting_order(rest)
    async with running(switch):
        await until(lambda: switch.stats.refreshes >= 8, "refreshes past the first timeout")
        assert order in await open_ids(rest)
    assert sim.venue.deadman_trigger(sim.account) is not None  # still armed: no disarm
    await until(lambda: sim.venue.deadman_trigger(sim.account) is None, "the venue's timer")
    assert await open_ids(rest) == set()


# --- the refresh before queued reads (issue 10 item 3) ------------------------------------


async def test_with_the_private_feed_down_the_refresh_goes_before_queued_reads(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The engine runs with no private feed (every write is confirmed by a QueryOrders,
    as while the feed is down) and reconciles again and again: far more reads than the
    Starter REST counter allows queue up on the key's line. The switch (timeout 20 s,
    refreshed every 5 s) holds them back while its refresh is due, goes first on the
    line, and never lapses: the order it protects stays on the book throughout."""
    clock = FakeClock()
    sim = await sim_factory(clock=clock, market=None, tier="starter")
    store = Store.open(tmp_path / "bot.db")
    rest = rest_for(sim, clock)
    venue = venue_of(rest, sim)
    engine = ExecutionEngine(venue, store, sim.venue.instruments, clock)
    switch = DeadmanSwitch(
        venue, clock, timeout_s=20, refresh_s=5.0, hold_reads=rest.hold_reads,
        on_lapse=lambda: engine.request_reconcile("deadman lapse"),
    )  # fmt: skip
    btc = sim.venue.instruments["BTC/USD"]
    price, qty = btc.price(Decimal("1000.0")), btc.qty(Decimal("0.001"))

    async def drive(seconds: float, until: Callable[[], bool] = lambda: False) -> float:
        """Fake time on in 0.1 s steps, the venue's timers fired, a real moment for the
        loopback round trips; returns the fake seconds it took."""
        start = clock.monotonic()
        for _ in range(round(seconds / 0.1)):
            if until():
                break
            clock.advance(0.1)
            await sim.venue.step()
            await asyncio.sleep(0.002)
        return clock.monotonic() - start

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(engine.run())]
            await drive(30, until=lambda: engine.readiness.is_open)
            assert engine.readiness.is_open
            await switch.arm()
            tasks.append(tg.create_task(switch.run()))
            protected = await engine.place(
                command(engine, clock, btc, "buy", qty, price, post_only=True)
            )
            assert protected.state is OrderState.NEW
            # The flood: orders placed and cancelled (each confirmed by a read), and
            # reconciliations asked for again and again.
            flood = [
                tg.create_task(
                    engine.place(command(engine, clock, btc, "buy", qty, price, post_only=True))
                )
                for _ in range(12)
            ]
            await drive(60, until=lambda: all(f.done() for f in flood))
            cancels = [tg.create_task(engine.cancel(f.result().cl_ord_id)) for f in flood]
            for n in range(6):
                engine.request_reconcile(f"test {n}")
            took = await drive(240, until=lambda: all(c.done() for c in cancels))
            assert all(c.done() for c in cancels)
            await drive(30)  # and the reconciliations after them
            for task in tasks:
                task.cancel()
    finally:
        store.close()
    assert took > 20  # the reads really did wait for the counter: longer than the timeout
    assert switch.stats.lapses == 0 and switch.stats.failures == 0
    assert switch.stats.refreshes >= took / 5  # on time, every 5 s, throughout
    on_book = {o.cl_ord_id for o in sim.venue.exchange.open_orders(sim.account)}
    assert protected.cl_ord_id in on_book  # the switch never fired
