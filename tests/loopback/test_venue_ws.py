"""Order entry over the authenticated WebSocket (bot.execution.venue_ws) against the
simulator on 127.0.0.1: every WS order method, Kraken's refusals mapped as REST maps them,
a lost answer resolved by lookup without a duplicate (the simulator's own order list is
the proof), a disconnect in the middle of a batch, late answers, the fallback to REST
while the socket is down and the way back, and the dead-man's switch refreshed over it.

Which path a write took is told by ``CountingRest``, the REST venue passing every call
through and counting the writes. The simulator has no synthetic market: only our orders
are on its book. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock, FakeClock, SystemClock
from bot.core.errors import (
    ExchangeError,
    InsufficientFunds,
    OrderStateUnknown,
    RateLimitError,
    RejectedError,
)
from bot.execution.deadman import DeadmanSwitch
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.orders import Order, OrderState, new_order
from bot.execution.private_feed import PrivateEvent, PrivateFeed
from bot.execution.tokens import TokenKeeper
from bot.execution.venue import CancelAfter, Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.execution.venue_ws import KrakenWsVenue, WsOrderEntry
from bot.kraken.instruments import Instrument
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from bot.store import Store
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.placing import command

pytestmark = pytest.mark.timeout(60)
WAIT_S = 10.0


async def until(cond: Any, what: str, within: float = WAIT_S) -> None:
    """Poll ``cond``: state owned by the simulator and the feed together."""
    try:
        async with asyncio.timeout(within):
            while not cond():  # noqa: ASYNC110 (polling across components)
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class CountingRest(KrakenRestVenue):
    """The REST venue, counting the writes that reach it."""

    def __init__(self, rest: KrakenRestClient, sim: SimHandle) -> None:
        super().__init__(rest, sim.venue.instruments)
        self.writes: list[str] = []

    async def place(self, order: Order, instrument: Instrument) -> str:
        self.writes.append("place")
        return await super().place(order, instrument)

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        self.writes.append("cancel")
        await super().cancel(order, instrument, order_age_s=order_age_s)

    async def amend(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        self.writes.append("amend")
        await super().amend(order, instrument, qty=qty, price=price, order_age_s=order_age_s)

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[str | ExchangeError]:
        self.writes.append("place_batch")
        return await super().place_batch(orders, instruments)

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]:
        self.writes.append("cancel_batch")
        return await super().cancel_batch(orders, instruments, ages_s=ages_s)

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        self.writes.append("cancel_after")
        return await super().cancel_after(timeout_s)


class HeldKeeper(TokenKeeper):
    """The real token keeper; while ``held`` is clear, a mint waits (the socket stays down)."""

    def __init__(self, venue: KrakenRestVenue, clock: Clock) -> None:
        super().__init__(venue, clock)
        self.open = asyncio.Event()
        self.open.set()

    async def fresh(self) -> str:
        await self.open.wait()
        return await super().fresh()


@dataclass
class Harness:
    sim: SimHandle
    venue: KrakenWsVenue
    entry: WsOrderEntry
    rest: CountingRest
    feed: PrivateFeed
    keeper: HeldKeeper
    clock: Clock
    listeners: list[Callable[[PrivateEvent], None]]

    @property
    def inst(self) -> Instrument:
        return self.sim.venue.instruments["BTC/USD"]

    def bid(self, price: str, qty: str = "0.01", **fields: Any) -> Order:
        cid = fields.pop("cl_ord_id", f"{random.getrandbits(128):032x}")
        return new_order(
            cl_ord_id=cid, instrument=self.inst, side="buy", order_type="limit",
            qty=self.inst.qty(qty), price=self.inst.price(price), strategy="s",
            now_ns=self.sim.clock.time_ns(), **fields,
        )  # fmt: skip

    def on_sim(self) -> list[Any]:
        return self.sim.venue.exchange.open_orders(self.sim.account)

    def on_sim_with(self, cl_ord_id: str) -> list[Any]:
        """Every order the simulator holds (open or done) with ``cl_ord_id``."""
        exchange, account = self.sim.venue.exchange, self.sim.account
        every = exchange.open_orders(account) + exchange.closed_orders(account)
        return [o for o in every if o.cl_ord_id == cl_ord_id]


@asynccontextmanager
async def harness(
    sim_factory: SimFactory,
    *,
    sim_clock: Clock | None = None,
    clock: Clock | None = None,
    ack_timeout_s: float = 10.0,
) -> AsyncIterator[Harness]:
    sim = await sim_factory(clock=sim_clock or SystemClock(), market=None)
    clock = clock or SystemClock()
    client = KrakenRestClient(
        sim.base_url, clock=clock, api_key=sim.api_key, api_secret=sim.api_secret,
        session=sim.session, retry=RetryPolicy(max_attempts=1), tier="starter",
    )  # fmt: skip
    rest = CountingRest(client, sim)
    keeper = HeldKeeper(rest, clock)
    listeners: list[Callable[[PrivateEvent], None]] = []

    def sink(event: PrivateEvent) -> None:
        for listener in listeners:
            listener(event)

    feed = PrivateFeed(
        sim.ws_private_url, keeper, sink, clock=clock,
        backoff=Backoff(BackoffPolicy(initial_s=0.01, max_s=0.05)),
        trading_counter=client.trading_counter,
    )  # fmt: skip
    entry = WsOrderEntry(feed, client.trading_counter, clock, ack_timeout_s=ack_timeout_s)
    venue = KrakenWsVenue(rest, entry)
    task = asyncio.create_task(feed.run())
    try:
        await until(lambda: entry.ready, "the order link")
        yield Harness(sim, venue, entry, rest, feed, keeper, clock, listeners)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# ------------------------------------------------------------------------------ methods


async def test_every_order_method_goes_over_the_websocket(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        inst = h.inst
        assert isinstance(h.venue, Venue)
        order = h.bid("50000", post_only=True)
        txid = await h.venue.place(order, inst)
        (placed,) = h.on_sim()
        assert (placed.txid, placed.cl_ord_id, placed.price) == (
            txid,
            order.cl_ord_id,
            inst.price("50000"),
        )
        acked = replace(order, order_id=txid)
        await h.venue.amend(
            acked, inst, qty=inst.qty("0.02"), price=inst.price("49000"), order_age_s=60
        )
        (amended,) = h.on_sim()
        assert (amended.price, amended.qty) == (inst.price("49000"), inst.qty("0.02"))
        moved = replace(acked, qty=inst.qty("0.02"))
        await h.venue.amend(moved, inst, qty=None, price=inst.price("48000"), order_age_s=60)
        (amended,) = h.on_sim()
        assert (amended.price, amended.qty) == (inst.price("48000"), inst.qty("0.02"))
        await h.venue.cancel(acked, inst, order_age_s=60)
        assert h.on_sim() == []
        by_cid = h.bid("40000")
        await h.venue.place(by_cid, inst)
        await h.venue.cancel(by_cid, inst, order_age_s=60)  # no txid: named by cl_ord_id
        assert h.on_sim() == []

        await h.venue.place(h.bid("41000"), inst)
        await h.venue.place(h.bid("42000"), inst)
        assert await h.venue.cancel_all([inst]) == 2
        assert h.on_sim() == []

        switch = await h.venue.cancel_after(60)
        assert switch.delay_s == pytest.approx(60, abs=1)
        assert h.sim.venue.deadman_trigger(h.sim.account) is not None
        off = await h.venue.cancel_after(0)
        assert off.delay_s is None and h.sim.venue.deadman_trigger(h.sim.account) is None

        batch = [h.bid(p) for p in ("30000", "31000", "32000")]
        ids = await h.entry.batch_add(batch, inst)
        assert sorted(ids) == sorted(o.txid for o in h.on_sim())  # type: ignore[type-var]
        assert {o.cl_ord_id for o in h.on_sim()} == {o.cl_ord_id for o in batch}
        ages = [60.0, 60.0]
        done = [replace(batch[0], order_id=str(ids[0])), batch[1]]  # by txid and by cl_ord_id
        assert await h.entry.batch_cancel(done, inst, ages_s=ages) == 2
        (left,) = h.on_sim()
        assert left.cl_ord_id == batch[2].cl_ord_id
        new_id = await h.entry.edit_order(
            replace(batch[2], order_id=left.txid), inst, qty=None, price=inst.price("33000"),
            order_age_s=60,
        )  # fmt: skip
        (edited,) = h.on_sim()
        assert edited.txid == new_id != left.txid and edited.price == inst.price("33000")
        assert h.rest.writes == []  # not one write over REST
        assert h.entry.in_flight == 0


async def test_a_post_only_orders_new_price_is_refused_if_it_would_take(
    sim_factory: SimFactory,
) -> None:
    """``amend_order``'s ``post_only`` defaults to false on Kraken: sent with every new
    price of a post-only order, a price that would take is refused, not filled."""
    async with harness(sim_factory) as h:
        inst = h.inst
        creds = h.sim.venue.add_account("maker")
        ask = await h.sim.client_for(creds.api_key, creds.api_secret).private(
            "AddOrder", pair="XBTUSD", type="sell", ordertype="limit", price="50000",
            volume="0.01",
        )  # fmt: skip
        assert ask.error == []
        order = h.bid("49000", post_only=True)
        acked = replace(order, order_id=await h.venue.place(order, inst))
        with pytest.raises(RejectedError) as info:
            await h.venue.amend(acked, inst, qty=None, price=inst.price("50000"), order_age_s=60)
        assert info.value.code == "EOrder:Post only order"
        (on_sim,) = h.on_sim()
        assert (on_sim.price, on_sim.filled) == (inst.price("49000"), 0)
        assert h.rest.writes == []  # the place over the socket, and so the amend


async def test_a_batch_cancel_of_orders_known_only_by_cl_ord_id_goes_over_rest(
    sim_factory: SimFactory,
) -> None:
    """Kraken's ``batch_cancel`` requires ``orders`` (its ids): a batch whose orders are
    all known only by our ``cl_ord_id`` (their place answers lost) goes by REST's
    CancelOrderBatch, which takes them; one with a txid among them stays on the socket."""
    async with harness(sim_factory) as h:
        inst = h.inst
        batch = [h.bid(p) for p in ("30000", "31000", "32000", "33000")]
        ids = await h.entry.batch_add(batch, inst)
        ages = [60.0, 60.0]
        assert await h.venue.cancel_batch(batch[:2], [inst], ages_s=ages) == [None, None]
        assert h.rest.writes == ["cancel_batch"]
        by_txid = [replace(batch[2], order_id=str(ids[2])), batch[3]]
        assert await h.venue.cancel_batch(by_txid, [inst], ages_s=ages) == [None, None]
        assert h.rest.writes == ["cancel_batch"]  # over the socket
        assert h.on_sim() == []
        with pytest.raises(ValueError, match="Kraken's id"):
            await h.entry.batch_cancel(batch[:2], inst, ages_s=ages)


@pytest.mark.parametrize("post_only", [True, False])
async def test_a_sell_pays_its_fee_in_quote_so_the_base_balance_follows_the_fills(
    sim_factory: SimFactory, post_only: bool
) -> None:
    """``fee_preference`` defaults to base for a sell on Kraken; every ``add_order`` asks
    for quote, so the base balance moves by the fills alone (as over REST: ``fciq``)."""
    async with harness(sim_factory) as h:
        exchange, account = h.sim.venue.exchange, h.sim.account
        before = exchange.balances(account)["BTC"]
        sell = replace(h.bid("60000", post_only=post_only), side="sell")
        await h.venue.place(sell, h.inst)
        assert h.rest.writes == []  # placed over the socket
        creds = h.sim.venue.add_account("taker")
        reply = await h.sim.client_for(creds.api_key, creds.api_secret).private(
            "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01"
        )
        assert reply.error == []
        (fill,) = exchange.trades(account)
        assert fill.side == "sell" and fill.fee > 0 and fill.fee_asset == "USD"
        assert exchange.balances(account)["BTC"] == before - Decimal("0.01")


async def test_refusals_mean_what_they_mean_over_rest(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        inst = h.inst
        broke = h.bid("50000", qty="1000")  # far beyond the account's USD
        with pytest.raises(InsufficientFunds) as over_ws:
            await h.entry.add_order(broke, inst)
        with pytest.raises(InsufficientFunds) as over_rest:
            await h.rest.place(replace(broke, cl_ord_id=f"{random.getrandbits(128):032x}"), inst)
        assert over_ws.value.code == over_rest.value.code == "EOrder:Insufficient funds"
        ghost = replace(h.bid("50000"), order_id="OAAAAA-BBBBB-CCCCCC")
        with pytest.raises(RejectedError) as unknown_ws:
            await h.entry.cancel_order(ghost, inst, order_age_s=60)
        with pytest.raises(RejectedError) as unknown_rest:
            await h.rest.cancel(ghost, inst, order_age_s=60)
        assert type(unknown_ws.value) is type(unknown_rest.value)

        # Kraken's transient error on a write: the order may exist, as over REST.
        await h.sim.venue.faults.inject(kind="ws_order_error", endpoint="add_order")
        with pytest.raises(OrderStateUnknown) as busy:
            await h.venue.place(h.bid("50000"), inst)
        assert busy.value.code == "EService:Unavailable"
        assert h.on_sim() == []  # refused before anything was done

        # A pair's rate limit: refused, and the pair's counter taken as full.
        await h.sim.venue.faults.inject(
            kind="ws_order_error", endpoint="add_order", error="EOrder:Rate limit exceeded"
        )
        counter = h.rest.rest.trading_counter
        with pytest.raises(RateLimitError):
            await h.venue.place(h.bid("50000"), inst)
        assert counter.headroom(inst.symbol, h.clock.monotonic()) <= 1.0
        assert h.rest.writes == ["place", "cancel"]  # only the test's own REST calls


async def test_a_refused_token_sends_the_write_over_rest(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(
            kind="ws_order_error", endpoint="add_order", error="EAPI:Invalid token"
        )
        order = h.bid("50000")
        txid = await h.venue.place(order, h.inst)  # Kraken did not act on it: REST may
        assert h.rest.writes == ["place"]
        assert [o.txid for o in h.on_sim_with(order.cl_ord_id)] == [txid]
        # The feed takes a fresh token on a new connection, and orders go over it again.
        await until(lambda: h.keeper.stats.minted == 2 and h.entry.ready, "a fresh token")
        again = h.bid("49000")
        await h.venue.place(again, h.inst)
        assert h.rest.writes == ["place"] and len(h.on_sim_with(again.cl_ord_id)) == 1


# ------------------------------------------------------------------------------ lost answers


async def test_a_lost_ack_is_unknown_and_resolved_by_lookup_without_a_duplicate(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="add_order")
        order = h.bid("50000")
        with pytest.raises(OrderStateUnknown) as lost:
            await h.venue.place(order, h.inst)
        assert lost.value.code == "EWS:Connection lost"
        assert h.entry.in_flight == 0
        # Resolved by lookup (REST), never resent: Kraken holds it exactly once.
        (found,) = await h.venue.open_orders(cl_ord_id=order.cl_ord_id)
        assert len(h.on_sim_with(order.cl_ord_id)) == 1
        assert found.order_id == h.on_sim_with(order.cl_ord_id)[0].txid
        await until(lambda: h.entry.ready, "the link back")
        assert h.rest.writes == []


async def test_the_engine_resolves_a_lost_answer_to_the_one_order_placed(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    async with harness(sim_factory) as h:
        store = Store.open(tmp_path / "bot.db")
        engine = ExecutionEngine(
            h.venue, store, h.sim.venue.instruments, h.clock,
            config=EngineConfig(grace_s=5.0, resolve_wait_s=0.3),
        )  # fmt: skip
        h.listeners.append(engine.on_private)
        task = asyncio.create_task(engine.run())
        try:
            async with asyncio.timeout(WAIT_S):
                await engine.readiness.wait()
            await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="add_order")
            inst = h.inst
            placed = await engine.place(
                command(engine, h.clock, inst, "buy", inst.qty("0.01"), inst.price("50000"))
            )
            cid = placed.cl_ord_id
            assert placed.state is OrderState.UNKNOWN and placed.order_id is None
            settled = await engine.wait_settled(cid, timeout_s=WAIT_S)
            assert settled.state is OrderState.NEW and settled.order_id is not None
            (on_sim,) = h.on_sim_with(cid)  # exactly one: never resent, by either path
            assert on_sim.txid == settled.order_id
            assert h.rest.writes == []
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            store.close()


async def test_a_disconnect_mid_batch_leaves_every_order_once(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="batch_add")
        batch = [h.bid(p) for p in ("30000", "31000", "32000", "33000")]
        with pytest.raises(OrderStateUnknown):
            await h.entry.batch_add(batch, h.inst)
        for order in batch:  # each resolved by its cl_ord_id, each there once
            (found,) = await h.venue.open_orders(cl_ord_id=order.cl_ord_id)
            assert [o.txid for o in h.on_sim_with(order.cl_ord_id)] == [found.order_id]
        assert len(h.on_sim()) == len(batch)


async def test_an_answer_later_than_the_timeout_is_unknown_and_then_ignored(
    sim_factory: SimFactory,
) -> None:
    sim_clock, clock = FakeClock(), FakeClock()
    async with harness(sim_factory, sim_clock=sim_clock, clock=clock, ack_timeout_s=2.0) as h:
        await h.sim.venue.faults.inject(kind="ws_order_delay", endpoint="add_order", delay_s=5)
        order = h.bid("50000")
        place = asyncio.create_task(h.venue.place(order, h.inst))
        await until(lambda: len(h.on_sim()) == 1, "the order on the simulator")
        clock.advance(2.0)  # our timeout passes; the simulator still holds its answer
        with pytest.raises(OrderStateUnknown) as late:
            await place
        assert late.value.code == "EWS:Timeout"
        with capture_logs() as logs:
            sim_clock.advance(5.0)  # the answer arrives, too late: matched to nothing
            await until(lambda: any(e["event"] == "ws_order_late_answer" for e in logs), "it")
        assert h.entry.in_flight == 0
        assert len(h.on_sim_with(order.cl_ord_id)) == 1

        # Within the timeout, a delayed answer is just an answer.
        await h.sim.venue.faults.inject(kind="ws_order_delay", endpoint="add_order", delay_s=1)
        second = h.bid("49000")
        place = asyncio.create_task(h.venue.place(second, h.inst))
        await until(lambda: len(h.on_sim()) == 2, "the second order")
        sim_clock.advance(1.0)
        txid = await place
        assert [o.txid for o in h.on_sim_with(second.cl_ord_id)] == [txid]


# ------------------------------------------------------------------------------ fallback


async def test_writes_fall_back_to_rest_while_the_socket_is_down_and_come_back(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        await h.venue.place(h.bid("50000"), h.inst)
        assert h.rest.writes == []
        with capture_logs() as logs:
            h.keeper.open.clear()  # the next connection waits for its token
            await h.sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
            await until(lambda: not h.entry.ready, "the link down")
            down = h.bid("49000")
            txid = await h.venue.place(down, h.inst)
            assert await h.venue.cancel_after(60) is not None
            assert h.rest.writes == ["place", "cancel_after"]
            assert [o.txid for o in h.on_sim_with(down.cl_ord_id)] == [txid]
            assert h.venue.rest_headroom() < float("inf")  # REST's room counts again
            h.keeper.open.set()
            await until(lambda: h.entry.ready, "the link back")
            back = h.bid("48000")
            await h.venue.place(back, h.inst)
            await h.venue.cancel(back, h.inst, order_age_s=60)
        assert h.rest.writes == ["place", "cancel_after"]  # back over the WebSocket
        switches = [e["event"] for e in logs if e["event"].startswith("order_entry_")]
        assert switches == ["order_entry_fallback", "order_entry_websocket"]
        assert h.venue.rest_headroom() == float("inf")


async def test_the_deadmans_switch_is_refreshed_over_the_websocket(
    sim_factory: SimFactory,
) -> None:
    clock = FakeClock()  # the switch's own: the feed keeps the real one
    async with harness(sim_factory) as h:
        switch = DeadmanSwitch(h.venue, clock, timeout_s=60, refresh_s=15)
        await switch.arm()
        first = h.sim.venue.deadman_trigger(h.sim.account)
        assert first is not None and switch.armed
        runner = asyncio.create_task(switch.run())
        try:
            clock.advance(15.0)  # the refresh is due
            await until(lambda: switch.stats.refreshes >= 2, "a refresh")
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
        assert h.rest.writes == []  # armed and refreshed over the WebSocket
        assert h.sim.venue.deadman_trigger(h.sim.account) is not None
