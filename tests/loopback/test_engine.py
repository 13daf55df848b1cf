"""The execution engine against the simulator, over real sockets on 127.0.0.1.

Most tests run the venue and the engine on one ``FakeClock(auto_advance=True)``: a rate
wait, a grace period or a backoff advances the shared clock instead of sleeping, so the
venue sees the same time as the engine and nothing waits in real time. The venue has no
synthetic market (``market=None``): only our orders and a second account's are on the
book, so fills happen exactly when a test makes them. Faults come from the venue's API.
The private feed is off (REST-only reconciliation) except in the last test.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.core.clock import Clock, FakeClock, SystemClock
from bot.core.errors import RiskError
from bot.execution.engine import EngineConfig, ExecutionEngine, OrderUnavailable
from bot.execution.orders import Fill, Order, OrderState, new_order
from bot.execution.private_feed import SequenceGap
from bot.execution.readiness import RECONCILED
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import ExecutionsFrame, Parser
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from bot.sim.faults import FaultKind, FaultSpec
from bot.store import Store
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.kraken_client import KrakenTestClient
from tests.loopback.placing import command

S = OrderState
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.2, max_delay_s=1.0)
CONFIG = EngineConfig(grace_s=5.0, resolve_wait_s=10.0)


@dataclass
class Rig:
    sim: SimHandle
    store: Store
    rest: KrakenRestClient
    engine: ExecutionEngine
    engine_venue: KrakenRestVenue = field(init=False)  # the venue port over ``rest``
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    def states(self, cl_ord_id: str) -> list[OrderState]:
        return [o.state for o in self.orders if o.cl_ord_id == cl_ord_id]

    def on_sim(self) -> list[Any]:
        return self.sim.venue.exchange.open_orders(self.sim.account)

    async def place(
        self, symbol: str, side: str, qty: int, price: int | None = None, **fields: Any
    ) -> Order:
        """A ``PlaceOrder`` for the engine, as the strategy context builds one."""
        inst = self.sim.venue.instruments[symbol]
        return await self.engine.place(
            command(self.engine, self.sim.clock, inst, side, qty, price, **fields)
        )


@asynccontextmanager
async def running(
    sim: SimHandle,
    db: Path,
    config: EngineConfig = CONFIG,
    rest_cls: type[KrakenRestClient] = KrakenRestClient,
    **engine_kwargs: Any,
) -> AsyncIterator[Rig]:
    """An engine on ``db`` (a store that outlives it), started and reconciled."""
    store = Store.open(db)
    rest = rest_cls(
        sim.base_url, clock=sim.clock, api_key=sim.api_key, api_secret=sim.api_secret,
        session=sim.session, store=store, retry=FAST, rng=random.Random(3), tier="starter",
    )  # fmt: skip
    rig = Rig(sim, store, rest, None)  # type: ignore[arg-type]
    rig.engine_venue = KrakenRestVenue(rest, sim.venue.instruments)
    rig.engine = ExecutionEngine(
        rig.engine_venue, store, sim.venue.instruments, sim.clock,
        config=config, on_order=rig.orders.append,
        on_fill=lambda fill, order: rig.fills.append(fill), **engine_kwargs,
    )  # fmt: skip
    task = asyncio.create_task(rig.engine.run())
    try:
        async with asyncio.timeout(10):
            await rig.engine.readiness.wait()
        yield rig
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll another task's state (real sockets, real time) until ``predicate`` holds."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 (the state belongs to other tasks)
            await asyncio.sleep(0.01)


async def fake_venue(sim_factory: SimFactory, **kwargs: Any) -> SimHandle:
    return await sim_factory(clock=FakeClock(auto_advance=True), market=None, **kwargs)


def btc(sim: SimHandle) -> Instrument:
    return sim.venue.instruments["BTC/USD"]


def taker(sim: SimHandle) -> KrakenTestClient:
    creds = sim.venue.add_account("taker")
    return sim.client_for(creds.api_key, creds.api_secret)


async def market_sell(client: KrakenTestClient, volume: str) -> None:
    reply = await client.private(
        "AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume=volume
    )
    assert reply.error == [], reply.error


def state(engine: ExecutionEngine, cl_ord_id: str) -> OrderState | None:
    order = engine.order(cl_ord_id)
    return None if order is None else order.state


async def resting_and_to_fill(rig: Rig) -> tuple[Order, Order]:
    """Two bids: strategy ``mm``'s far under the market, ``grid``'s at the best bid (a
    market sell of 0.01 fills it)."""
    inst = btc(rig.sim)
    resting = await rig.place(
        "BTC/USD", "buy", inst.qty("0.01"), inst.price("40000"), strategy="mm"
    )
    filled = await rig.place(
        "BTC/USD", "buy", inst.qty("0.01"), inst.price("60000"), strategy="grid"
    )
    return resting, filled


def lose_every_row(db: Path) -> None:
    """A machine crash before the store's next fsync: every order row is gone (the id
    blocks, written durably first, are left)."""
    raw = sqlite3.connect(db)
    with raw:
        for table in ("order_events", "orders"):
            raw.execute(f"DELETE FROM {table}")
    raw.close()


def sim_orders_with(sim: SimHandle, cl_ord_id: str) -> list[Any]:
    exchange = sim.venue.exchange
    everything = [*exchange.open_orders(sim.account), *exchange.closed_orders(sim.account)]
    return [o for o in everything if o.cl_ord_id == cl_ord_id]


# ---------------------------------------------------------------------- unknown fates


async def test_a_lost_addorder_answer_is_resolved_to_the_one_order_placed(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    config = EngineConfig(grace_s=5.0, resolve_wait_s=0.3)
    async with running(sim, tmp_path / "bot.db", config) as rig:
        faults, inst = sim.venue.faults, btc(sim)
        lose = faults.schedule(FaultSpec(kind=FaultKind.LOSE_RESPONSE, endpoint="AddOrder"))
        for endpoint in ("OpenOrders", "QueryOrders"):  # and the lookups fail, for now
            faults.schedule(FaultSpec(kind=FaultKind.REST_ERROR, endpoint=endpoint, count=10**6))
        order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        cid = order.cl_ord_id
        assert lose.fired == 1
        assert order.state is S.UNKNOWN and order.order_id is None
        # Nothing touches it before its fate is known: amend and cancel wait, then refuse.
        with pytest.raises(OrderUnavailable, match="still being resolved"):
            await rig.engine.amend(cid, price=inst.price("49000"))
        with pytest.raises(OrderUnavailable, match="still being resolved"):
            await rig.engine.cancel(cid)
        assert rig.engine.order(cid).state is S.UNKNOWN  # type: ignore[union-attr]
        faults.cancel()  # the exchange answers again
        settled = await rig.engine.wait_settled(cid, timeout_s=10)
        assert settled.state is S.NEW and settled.order_id is not None
        (on_sim,) = sim_orders_with(sim, cid)  # exactly one: never resent
        assert on_sim.txid == settled.order_id and len(rig.on_sim()) == 1
        assert rig.store.get_order(cid) == settled
        assert rig.states(cid) == [S.PENDING_NEW, S.UNKNOWN, S.NEW]
        amended = await rig.engine.amend(cid, price=inst.price("49000"))  # now it may
        assert amended.price == inst.price("49000") == rig.on_sim()[0].price


@pytest.mark.parametrize("fault", [{"error": "EService:Unavailable"}, {"status": 503}])
async def test_a_failed_addorder_that_never_placed_becomes_lost(
    sim_factory: SimFactory, tmp_path: Path, fault: dict[str, Any]
) -> None:
    sim = await fake_venue(sim_factory)
    sim.venue.faults.schedule(FaultSpec(kind=FaultKind.REST_ERROR, endpoint="AddOrder", **fault))
    async with running(sim, tmp_path / "bot.db") as rig:
        inst, clock = btc(sim), sim.clock
        start = clock.monotonic()
        order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        assert order.state is S.UNKNOWN
        lost = await rig.engine.wait_settled(order.cl_ord_id)
        assert lost.state is S.LOST
        assert clock.monotonic() - start >= CONFIG.grace_s  # absent for the whole grace
        assert sim_orders_with(sim, order.cl_ord_id) == []
        assert rig.states(order.cl_ord_id)[-1] is S.LOST  # the strategy is told
        assert rig.store.get_order(order.cl_ord_id) == lost
        # The strategy may place it again, under a new cl_ord_id: one order results.
        again = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        assert again.state is S.NEW and again.cl_ord_id != order.cl_ord_id
        assert [o.cl_ord_id for o in rig.on_sim()] == [again.cl_ord_id]


async def test_a_crash_between_save_and_send_is_one_recovery_path(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Four orders left PENDING_NEW by a crash: two were sent (one then cancelled), one
    sent and filled, one never sent. A restart finds each fate (ClosedOrders included)."""
    sim = await fake_venue(sim_factory)
    inst, clock = btc(sim), sim.clock
    assert isinstance(clock, FakeClock)
    store = Store.open(tmp_path / "bot.db")
    ids = ["a" * 32, "b" * 32, "c" * 32, "d" * 32]
    for cid in ids:
        store.save_order(
            new_order(cl_ord_id=cid, instrument=inst, side="buy", order_type="limit",
                      qty=inst.qty("0.01"), price=inst.price("50000"), strategy="s",
                      now_ns=clock.time_ns())
        )  # fmt: skip
    async with KrakenRestClient(
        sim.base_url, clock=clock, api_key=sim.api_key, api_secret=sim.api_secret, store=store
    ) as before_the_crash:
        for cid in ids[:3]:
            await before_the_crash.add_order(
                inst, "buy", "limit", inst.qty("0.01"), inst.price("50000"), cl_ord_id=cid
            )
        await before_the_crash.cancel_order(inst, order_age_s=0, cl_ord_id=ids[1])
    store.close()
    await market_sell(taker(sim), "0.01")  # fills the oldest: ids[0]
    clock.advance(10)  # the crash was a while ago: past the grace period
    with capture_logs() as logs:
        async with running(sim, tmp_path / "bot.db") as rig:
            states = {cid: state(rig.engine, cid) for cid in ids}
            assert states == {
                ids[0]: S.FILLED, ids[1]: S.CANCELED, ids[2]: S.NEW, ids[3]: S.LOST
            }  # fmt: skip
            assert [f.cl_ord_id for f in rig.fills] == [ids[0]]
            assert [o.cl_ord_id for o in rig.on_sim()] == [ids[2]]
    methods = [e["method"] for e in logs if e["event"] == "rest_call"]
    # One page of ClosedOrders for the three without a txid, then by cl_ord_id for the one
    # not in it, then the missed fill.
    assert methods == ["OpenOrders", "ClosedOrders", "ClosedOrders", "TradesHistory"]


# ---------------------------------------------------------------------- restart


async def test_a_restart_finds_fills_made_while_down_and_records_each_once(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    inst, db, other = btc(sim), tmp_path / "bot.db", taker(sim)
    async with running(sim, db) as rig:
        order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("60000"))
        assert order.state is S.NEW
    cid = order.cl_ord_id
    await market_sell(other, "0.004")  # while the bot is down
    async with running(sim, db) as rig:
        now = rig.engine.order(cid)
        assert now is not None and now.state is S.PARTIALLY_FILLED
        assert now.filled_qty == inst.qty("0.004")
        assert [f.qty for f in rig.fills] == [inst.qty("0.004")]
        await rig.engine.reconcile()  # again: nothing new
        assert len(rig.fills) == 1
    await market_sell(other, "0.006")
    async with running(sim, db) as rig:
        now = rig.engine.order(cid)
        assert now is not None and now.state is S.FILLED and now.filled_qty == order.qty
        assert [f.qty for f in rig.fills] == [inst.qty("0.006")]  # on_fill once, the new one
        recorded = rig.store.fills_since(0)
        assert [f.qty for f in recorded] == [inst.qty("0.004"), inst.qty("0.006")]
        assert {f.cl_ord_id for f in recorded} == {cid}
        assert all(f.fee_asset == "USD" and f.fee > 0 and f.order_id == now.order_id
                   for f in recorded)  # fmt: skip
        assert len({f.exec_id for f in recorded}) == 2


# ---------------------------------------------------------------------- rate limits, amend


async def test_a_burst_of_amends_waits_instead_of_being_refused(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory, tier="starter")
    inst, clock = btc(sim), sim.clock
    counter = sim.venue.trading_counter(sim.account)
    async with running(sim, tmp_path / "bot.db") as rig:
        order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        start = clock.monotonic()
        with capture_logs() as logs:
            for i in range(40):  # 40 young-order amends: +4 each, 160 > Starter's 60
                price = inst.price("50000") + (i + 1) * 10
                order = await rig.engine.amend(order.cl_ord_id, price=price)
                assert order.price == price and not order.amend_pending
                assert counter.value("BTC/USD", clock.monotonic()) <= 60
        refused = [e for e in logs if e.get("code") == "EOrder:Rate limit exceeded"]
        assert refused == [] and not [e for e in logs if e["event"] == "rest_refused"]
        assert any(e["event"] == "rest_rate_wait" for e in logs)  # the client waited
        assert clock.monotonic() - start >= (40 * 4 - 60) / 1.0 * 0.5  # decay 1/s, ages grow
        (on_sim,) = rig.on_sim()
        assert on_sim.price == order.price and on_sim.txid == order.order_id


async def test_amend_keeps_the_order_id_and_changes_price_and_qty(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    inst = btc(sim)
    async with running(sim, tmp_path / "bot.db") as rig:
        placed = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        amended = await rig.engine.amend(
            placed.cl_ord_id, qty=inst.qty("0.02"), price=inst.price("50100.5")
        )
        assert amended.order_id == placed.order_id
        assert (amended.qty, amended.price) == (inst.qty("0.02"), inst.price("50100.5"))
        (on_sim,) = rig.on_sim()
        assert on_sim.txid == placed.order_id
        assert (on_sim.qty, on_sim.price) == (inst.qty("0.02"), inst.price("50100.5"))
        assert rig.store.get_order(placed.cl_ord_id) == amended
        await rig.engine.reconcile()  # the exchange agrees: nothing changes
        assert rig.engine.order(placed.cl_ord_id) == amended


# ---------------------------------------------------------------------- cancel, reject


async def test_cancel_all_leaves_no_open_orders(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = await fake_venue(sim_factory)
    btc_, eth = btc(sim), sim.venue.instruments["ETH/USD"]
    async with running(sim, tmp_path / "bot.db") as rig:
        engine = rig.engine
        for price in ("50000", "50001", "50002"):
            await rig.place("BTC/USD", "buy", btc_.qty("0.01"), btc_.price(price))
        await rig.place("ETH/USD", "sell", eth.qty("0.5"), eth.price("9000"))
        assert await engine.cancel_all("BTC/USD") == 3
        assert [o.symbol for o in rig.on_sim()] == ["ETH/USD"]
        assert [o.symbol for o in engine.open_orders()] == ["ETH/USD"]
        one = await rig.place("BTC/USD", "buy", btc_.qty("0.01"), btc_.price("50000"))
        assert await engine.cancel_all() == 2
        assert rig.on_sim() == [] and engine.open_orders() == []
        assert rig.store.load_orders(open_only=True) == []
        assert engine.order(one.cl_ord_id).state is S.CANCELED  # type: ignore[union-attr]
        assert (await engine.cancel(one.cl_ord_id)).state is S.CANCELED  # done: a no-op


async def test_a_refused_order_is_rejected_with_krakens_reason(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    inst = btc(sim)
    async with running(sim, tmp_path / "bot.db") as rig:
        cases = [
            (inst.qty("1000"), "EOrder:Insufficient funds"),
            (inst.qty("0.00001"), "EOrder:Order minimum not met"),
        ]
        for qty, reason in cases:
            order = await rig.place("BTC/USD", "buy", qty, inst.price("50000"))
            assert (order.state, order.reason) == (S.REJECTED, reason)
            stored = rig.store.get_order(order.cl_ord_id)
            assert stored is not None and (stored.state, stored.reason) == (S.REJECTED, reason)
            history = rig.store.order_events(order.cl_ord_id)
            assert [(e.state, e.reason) for e in history][-1] == (S.REJECTED, reason)
        assert rig.on_sim() == []
        with pytest.raises(OrderUnavailable):
            await rig.engine.amend(order.cl_ord_id, price=inst.price("1"))


async def test_no_order_leaves_before_reconciliation(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    store = Store.open(tmp_path / "bot.db")
    rest = KrakenRestClient(sim.base_url, clock=sim.clock, api_key=sim.api_key,
                            api_secret=sim.api_secret, session=sim.session)  # fmt: skip
    venue = KrakenRestVenue(rest, sim.venue.instruments)
    engine = ExecutionEngine(venue, store, sim.venue.instruments, sim.clock)
    with pytest.raises(RiskError, match="reconciled"):
        await engine.place(command(engine, sim.clock, btc(sim), "buy", 10**6, 500000))
    assert engine.readiness.snapshot()["checks"][RECONCILED]["ok"] is False
    assert store.load_orders(open_only=False) == []
    store.close()


# ---------------------------------------------------------------------- with the private feed


async def test_the_private_feed_drives_states_and_fills_once(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    from bot.core.backoff import Backoff, BackoffPolicy
    from bot.execution.private_feed import PrivateFeed
    from bot.execution.tokens import TokenKeeper

    clock: Clock = SystemClock()
    sim = await sim_factory(clock=clock, market=None)
    inst, other = btc(sim), taker(sim)
    async with running(sim, tmp_path / "bot.db") as rig:
        engine = rig.engine
        feed = PrivateFeed(
            sim.ws_private_url, TokenKeeper(rig.engine_venue, clock), engine.on_private,
            clock=clock,
            backoff=Backoff(BackoffPolicy(0.01, 0.05), random.Random(1).random),
        )  # fmt: skip
        feed_task = asyncio.create_task(feed.run())
        try:
            await until(lambda: feed.subscribed and engine.readiness.is_open)
            order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("60000"))
            cid = order.cl_ord_id
            await market_sell(other, "0.01")
            await until(lambda: state(engine, cid) is S.FILLED)
            assert [f.cl_ord_id for f in rig.fills] == [cid]
            # A dropped socket: resubscribe (snapshot with the last fills), reconcile.
            await sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
            await until(lambda: feed.subscribed and feed.stats.subscriptions >= 2)
            await until(lambda: engine.readiness.is_open)
            await engine.reconcile()
            assert [f.cl_ord_id for f in rig.fills] == [cid]  # still once
            assert len(rig.store.fills_since(0)) == 1
            second = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
            await engine.cancel(second.cl_ord_id)
            await until(lambda: state(engine, second.cl_ord_id) is S.CANCELED)  # by the feed
        finally:
            feed_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await feed_task


async def test_a_sequence_gap_closes_the_gate_and_reconciles_over_rest(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    inst, other = btc(sim), taker(sim)
    async with running(sim, tmp_path / "bot.db") as rig:
        order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("60000"))
        await market_sell(other, "0.01")  # the report that said so was lost
        rig.engine.on_private(SequenceGap(expected=7, received=9))
        assert not rig.engine.readiness.is_open  # no order leaves until reconciled
        with pytest.raises(RiskError, match="not_ready"):
            await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("1000"))
        async with asyncio.timeout(10):
            await rig.engine.readiness.wait()
        assert state(rig.engine, order.cl_ord_id) is S.FILLED
        assert [f.cl_ord_id for f in rig.fills] == [order.cl_ord_id]
        rig.engine.request_reconcile("deadman lapse")  # the same path, by another cause
        async with asyncio.timeout(10):
            await rig.engine.readiness.wait()
        assert len(rig.fills) == 1


async def test_foreign_orders_are_logged_and_left_alone(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    inst = btc(sim)
    store = Store.open(tmp_path / "bot.db")
    async with KrakenRestClient(
        sim.base_url, clock=sim.clock, api_key=sim.api_key, api_secret=sim.api_secret, store=store
    ) as web_ui:  # another client on the same account
        await web_ui.add_order(inst, "buy", "limit", inst.qty("0.01"), inst.price("40000"))
        await web_ui.add_order(
            inst, "buy", "limit", inst.qty("0.01"), inst.price("40001"), cl_ord_id="f" * 32
        )
    store.close()
    with capture_logs() as logs:
        async with running(sim, tmp_path / "bot.db") as rig:
            assert rig.engine.open_orders() == [] and rig.orders == []
            ours = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("40002"))
            assert await rig.engine.cancel_all("BTC/USD") == 1  # ours only
            assert state(rig.engine, ours.cl_ord_id) is S.CANCELED
            assert len(rig.on_sim()) == 2
            assert rig.store.load_orders(open_only=False) == [rig.engine.order(ours.cl_ord_id)]
    foreign = [e for e in logs if e["event"] == "foreign_order"]
    assert sorted(str(e["cl_ord_id"]) for e in foreign) == ["None", "f" * 32]


async def test_orders_whose_rows_a_machine_crash_lost_are_recovered_by_their_id_block(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Rows of orders with ids from a recorded block are written after the request and
    without an fsync: a machine crash may lose them (simulated here by deleting them).
    A restart adopts every such order from the exchange, open or closed meanwhile, with
    its strategy and its fills; an order with any other id stays foreign."""
    sim = await fake_venue(sim_factory)
    inst, db = btc(sim), tmp_path / "bot.db"
    async with running(sim, db) as rig:
        resting, filled = await resting_and_to_fill(rig)
        assert resting.state is S.NEW and filled.state is S.NEW
    store = Store.open(db)  # the same key's nonce floor
    async with KrakenRestClient(
        sim.base_url, clock=sim.clock, api_key=sim.api_key, api_secret=sim.api_secret, store=store
    ) as web_ui:  # another client on the same account
        await web_ui.add_order(
            inst, "buy", "limit", inst.qty("0.01"), inst.price("40001"), cl_ord_id="e" * 32
        )
    store.close()
    lose_every_row(db)  # the crash: both rows never reached the disk
    await market_sell(taker(sim), "0.01")  # fills ``filled`` (the best bid) while down
    sim.clock.advance(10)
    with capture_logs() as logs:
        async with running(sim, db) as rig:
            got = {cid: rig.engine.order(cid) for cid in (resting.cl_ord_id, filled.cl_ord_id)}
            assert got[resting.cl_ord_id] is not None and got[filled.cl_ord_id] is not None
            assert (got[resting.cl_ord_id].state, got[resting.cl_ord_id].strategy) == (S.NEW, "mm")
            assert got[resting.cl_ord_id].order_id == resting.order_id
            assert (got[filled.cl_ord_id].state, got[filled.cl_ord_id].strategy) == (
                S.FILLED,
                "grid",
            )
            assert [(f.cl_ord_id, f.qty) for f in rig.fills] == [
                (filled.cl_ord_id, inst.qty("0.01"))
            ]
            assert [o.cl_ord_id for o in rig.engine.open_orders()] == [resting.cl_ord_id]
    recovered = sorted(e["cl_ord_id"] for e in logs if e["event"] == "order_recovered")
    assert recovered == sorted([resting.cl_ord_id, filled.cl_ord_id])
    foreign = [e["cl_ord_id"] for e in logs if e["event"] == "foreign_order"]
    assert foreign == ["e" * 32]


# ---------------------------------------------------------------------- cl_ord_id forms


def other_form(cl_ord_id: str) -> str:
    """The same 128-bit UUID as Kraken may print it back: hyphenated, upper case."""
    return str(uuid.UUID(hex=cl_ord_id)).upper()


def _echo_other_form(orders: Any) -> Any:
    for order in orders.values():
        if order.get("cl_ord_id"):
            order["cl_ord_id"] = other_form(order["cl_ord_id"])
    return orders


class OtherFormKraken(KrakenRestClient):
    """The real client, whose OpenOrders/QueryOrders/ClosedOrders answers print every
    ``cl_ord_id`` as Kraken may: the long, hyphenated form of the UUID it was sent as 32
    hex digits (Kraken keeps a UUID as a 128-bit number, not as the text it was given)."""

    async def open_orders(self, **kwargs: Any) -> dict[str, Any]:
        result = await super().open_orders(**kwargs)
        _echo_other_form(result.get("open", {}))
        return result

    async def query_orders(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return _echo_other_form(await super().query_orders(*args, **kwargs))  # type: ignore[no-any-return]

    async def closed_orders(self, **kwargs: Any) -> dict[str, Any]:
        result = await super().closed_orders(**kwargs)
        _echo_other_form(result.get("closed", {}))
        return result


async def test_a_lost_answer_is_resolved_when_kraken_echoes_the_id_in_its_other_form(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """AddOrder's answer is lost; OpenOrders by ``cl_ord_id`` shows the order with its id
    hyphenated: it is ours (NEW, with its txid), not LOST and a foreign order."""
    sim = await fake_venue(sim_factory)
    sim.venue.faults.schedule(FaultSpec(kind=FaultKind.LOSE_RESPONSE, endpoint="AddOrder"))
    with capture_logs() as logs:
        async with running(sim, tmp_path / "bot.db", rest_cls=OtherFormKraken) as rig:
            inst = btc(sim)
            order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
            assert order.state is S.UNKNOWN
            settled = await rig.engine.wait_settled(order.cl_ord_id, timeout_s=10)
            assert settled.state is S.NEW
            (on_sim,) = rig.on_sim()
            assert settled.order_id == on_sim.txid and on_sim.cl_ord_id == order.cl_ord_id
            await rig.engine.reconcile()  # OpenOrders again, every id in the other form
            assert state(rig.engine, order.cl_ord_id) is S.NEW
    assert not [e for e in logs if e["event"] in ("foreign_order", "order_lost")]


async def test_crash_lost_rows_are_adopted_whatever_form_kraken_echoes_the_id_in(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Adoption proves an order ours by its id's block: an id echoed hyphenated is the
    same id (OpenOrders for a resting order, ClosedOrders for one filled meanwhile)."""
    sim = await fake_venue(sim_factory)
    db = tmp_path / "bot.db"
    async with running(sim, db) as rig:
        resting, filled = await resting_and_to_fill(rig)
    lose_every_row(db)
    await market_sell(taker(sim), "0.01")
    sim.clock.advance(10)
    with capture_logs() as logs:
        async with running(sim, db, rest_cls=OtherFormKraken) as rig:
            got = {x: rig.engine.order(x) for x in (resting.cl_ord_id, filled.cl_ord_id)}
            assert [(o.state, o.strategy) for o in got.values() if o is not None] == [
                (S.NEW, "mm"),
                (S.FILLED, "grid"),
            ]
            assert [f.cl_ord_id for f in rig.fills] == [filled.cl_ord_id]
    assert not [e for e in logs if e["event"] == "foreign_order"]


async def test_reports_match_our_orders_in_either_uuid_form(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """An executions report names the order by ``cl_ord_id`` in the other form (no
    txid): applied to our order. An order placed under a hyphenated id is kept under the
    32-hex form, and reports in either form reach it."""
    sim = await fake_venue(sim_factory)
    inst = btc(sim)
    async with running(sim, tmp_path / "bot.db") as rig:
        ours = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        long_id = "6D1B345E-2821-40E2-AD83-4ECB18A06876"
        given = await rig.place(
            "BTC/USD", "buy", inst.qty("0.01"), inst.price("50001"), cl_ord_id=long_id
        )
        assert given.cl_ord_id == "6d1b345e282140e2ad834ecb18a06876" and given.state is S.NEW
        assert [o.cl_ord_id for o in sim_orders_with(sim, given.cl_ord_id)] == [given.cl_ord_id]
        for cid, echoed in (
            (ours.cl_ord_id, other_form(ours.cl_ord_id)),
            (given.cl_ord_id, long_id.lower()),
        ):
            [frame] = Parser().parse(
                '{"channel":"executions","type":"update","sequence":3,"data":[{'
                f'"exec_type":"canceled","cl_ord_id":"{echoed}","order_status":"canceled",'
                '"reason":"User requested","timestamp":"2024-01-01T00:00:00Z"}]}'
            )
            assert isinstance(frame, ExecutionsFrame)
            rig.engine.on_private(frame)
            assert state(rig.engine, cid) is S.CANCELED


# ---------------------------------------------------------------------- adoption, paged


async def _crash_after_closing(sim: SimHandle, db: Path, n: int) -> list[str]:
    """``n`` orders of strategy ``mm``, all canceled, then a machine crash that loses every
    row: only the id block proves them ours. Returns their ``cl_ord_id``s."""
    inst = btc(sim)
    async with running(sim, db) as rig:
        cids = []
        for i in range(n):
            price = inst.price("40000") + i
            order = await rig.place("BTC/USD", "buy", inst.qty("0.01"), price, strategy="mm")
            cids.append(order.cl_ord_id)
        assert await rig.engine.cancel_all() == n
    lose_every_row(db)
    sim.clock.advance(10)
    return cids


async def test_adoption_reads_closed_orders_past_the_first_page_of_50(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory, tier="pro")
    db = tmp_path / "bot.db"
    cids = await _crash_after_closing(sim, db, 55)
    with capture_logs() as logs:
        async with running(sim, db) as rig:
            states = {cid: state(rig.engine, cid) for cid in cids}
            assert set(states.values()) == {S.CANCELED}, states
    recovered = [e for e in logs if e["event"] == "order_recovered"]
    assert sorted(e["cl_ord_id"] for e in recovered) == sorted(cids)
    assert not [e for e in logs if e["event"] == "closed_orders_truncated"]


async def test_adoption_paging_is_bounded_and_says_so(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory, tier="pro")
    db = tmp_path / "bot.db"
    cids = await _crash_after_closing(sim, db, 55)
    config = EngineConfig(grace_s=5.0, resolve_wait_s=10.0, max_closed_pages=1)
    with capture_logs() as logs:
        async with running(sim, db, config):
            pass
    recovered = {e["cl_ord_id"] for e in logs if e["event"] == "order_recovered"}
    assert len(recovered) == 50 and recovered <= set(cids)  # the newest 50: one page
    (truncated,) = [e for e in logs if e["event"] == "closed_orders_truncated"]
    assert (truncated["pages"], truncated["read"]) == (1, 50)


async def test_a_restarted_run_reconciles_what_it_holds_without_loading_the_store_again(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The daemon's supervisor runs ``engine.run()`` again after it stopped unasked: an
    order still in flight (its PENDING_NEW row in the store) must not be marked UNKNOWN
    as after a crash, and the open orders are reconciled, not reloaded."""
    sim = await fake_venue(sim_factory)
    async with running(sim, tmp_path / "bot.db") as rig:
        inst = btc(sim)
        resting = await rig.place("BTC/USD", "buy", inst.qty("0.01"), inst.price("50000"))
        assert resting.state is S.NEW
        stale = new_order(
            cl_ord_id="in-flight-1", instrument=inst, side="buy", order_type="limit",
            qty=inst.qty("0.01"), price=inst.price("40000"), strategy="",
            now_ns=sim.clock.time_ns(),
        )  # fmt: skip
        rig.store.save_order(stale)  # a row a reload would turn UNKNOWN("restart")
        (first,) = [
            t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "ExecutionEngine.run"
        ]  # type: ignore[union-attr]
        first.cancel()  # it stopped (the supervisor sees a task cancelled by another)
        await asyncio.wait([first])
        assert not rig.engine.readiness.is_open  # closed while it is not running
        with capture_logs() as events:
            again = asyncio.create_task(rig.engine.run())
            await until(lambda: rig.engine.readiness.is_open)
            again.cancel()
            await asyncio.wait([again])
        got = [e["event"] for e in events]
        assert "reconciled" in got and "engine_recovered" not in got
        assert state(rig.engine, resting.cl_ord_id) is S.NEW
        assert rig.store.get_order("in-flight-1").state is S.PENDING_NEW  # type: ignore[union-attr]
