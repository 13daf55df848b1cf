"""The desk on the execution engine against the simulator: what a strategy sees, on the
daemon's own path (``Desk`` + ``EngineContext`` + ``ExecutionEngine`` + ``StrategyRunner``,
real sockets on 127.0.0.1).

Most tests share one ``FakeClock(auto_advance=True)`` between the venue and the engine and
run with the private feed off (states and fills come from REST reconciliation); one runs
the real private feed on the real clock. Exchange reports Kraken sends but the simulator
does not (a taker's average ``last_price`` finer than the pair) are parsed from their JSON
text by the real protocol parser and handed to the engine as the private feed would.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.core.clock import SystemClock
from bot.execution.engine import EngineConfig, ExecutionEngine
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate, RiskLimits
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.protocol import ExecutionsFrame, Parser
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from bot.service.http import render_status
from bot.service.metrics import Metrics
from bot.service.wiring import replay_fills
from bot.store import Store
from bot.strategy import FillEvent, OrderHandle, OrderState, Params, Strategy
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.runner import StrategyRunner
from tests.loopback.conftest import SimFactory, SimHandle
from tests.loopback.test_engine import fake_venue, until

S = OrderState
D = Decimal
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.2, max_delay_s=1.0)
pytestmark = pytest.mark.timeout(60)


class Recorder(Strategy[Params]):
    """Records what it is told, in order: (handler, state, filled[, fill price])."""

    def on_start(self) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self.fills: list[FillEvent] = []

    def on_order(self, order: OrderHandle) -> None:
        self.seen.append(("on_order", order.state, order.filled))

    def on_fill(self, order: OrderHandle, fill: FillEvent) -> None:
        self.seen.append(("on_fill", order.state, order.filled, fill.price))
        self.fills.append(fill)


@dataclass
class Rig:
    sim: SimHandle
    store: Store
    rest: KrakenRestClient
    venue: KrakenRestVenue
    engine: ExecutionEngine
    desk: Desk
    ctx: EngineContext
    strategy: Recorder
    metrics: Metrics


@asynccontextmanager
async def desk_on(
    sim: SimHandle,
    db: Path,
    *,
    limits: RiskLimits | None = None,
    headroom: Callable[[str], float] | None = None,
) -> AsyncIterator[Rig]:
    """The desk with one ``Recorder`` strategy (``rec``, BTC/USD), its engine reconciled.
    ``limits``: the risk gate's; ``headroom``: the pairs' trading counter room (default:
    the REST client's, which models Kraken's)."""
    store = Store.open(db)
    rest = KrakenRestClient(
        sim.base_url, clock=sim.clock, api_key=sim.api_key, api_secret=sim.api_secret,
        session=sim.session, store=store, retry=FAST, rng=random.Random(3), tier="starter",
    )  # fmt: skip
    instruments = sim.venue.instruments
    venue = KrakenRestVenue(rest, instruments)
    positions = PositionBook(sim.clock)
    metrics = Metrics(process=False)
    risk = RiskGate(sim.clock, positions, limits)
    desk = Desk(
        risk=risk, positions=positions, instruments=instruments, books=dict, clock=sim.clock,
        metrics=metrics,
    )  # fmt: skip
    stage = PreTrade(
        ReadinessGate(clock=sim.clock), risk=risk, mids=desk.marks.mids,
        room=RateRoom(headroom or venue.trading_headroom, venue.rest_headroom),
        on_transitions=desk.router.apply_transitions,
    )  # fmt: skip
    engine = ExecutionEngine(
        venue, store, instruments, sim.clock, config=EngineConfig(grace_s=5.0), pretrade=stage,
        spawn=desk.tasks.spawn, on_order=desk.router.on_order, on_fill=desk.router.on_fill,
        on_refused=desk.router.on_refused,
    )  # fmt: skip
    engine.prepare_ids(["rec"])
    ctx = EngineContext(engine, desk, "rec", ("BTC/USD",))
    desk.add_context(ctx)
    strategy = Recorder(ctx, Params())
    runner = StrategyRunner(strategy, timers=ctx.timers, clock=sim.clock)
    desk.add_runner(runner)
    engine_task = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(10):
            await engine.readiness.wait()
        desk.tasks.spawn_task = asyncio.get_running_loop().create_task
        runner.start()
        yield Rig(sim, store, rest, venue, engine, desk, ctx, strategy, metrics)
        async with asyncio.timeout(10):
            await desk.tasks.drain()
    finally:
        engine_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await engine_task
        store.close()


async def market_sell(sim: SimHandle, volume: str) -> None:
    """Another account takes our bids with a market order."""
    creds = sim.venue.add_account(f"taker{random.random()}")
    reply = await sim.client_for(creds.api_key, creds.api_secret).private(
        "AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume=volume
    )
    assert reply.error == [], reply.error


async def placed(rig: Rig, price: str, qty: str = "0.01") -> OrderHandle:
    """A bid placed by the strategy through its context, once Kraken acknowledged it."""
    handle = rig.ctx.place("BTC/USD", "buy", D(qty), D(price))
    await until(lambda: handle.state is S.NEW)
    return handle


# ---------------------------------------------------------------------- handler order


async def test_on_fill_comes_before_the_on_order_of_the_change_it_brings(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Fills learned by reconciliation (QueryOrders + TradesHistory), partial then full:
    each ``on_fill`` (its handle already showing the fill) before that ``on_order``."""
    sim = await fake_venue(sim_factory)
    async with desk_on(sim, tmp_path / "bot.db") as rig:
        bid = await placed(rig, "60000")
        rig.strategy.seen.clear()
        await market_sell(sim, "0.004")
        await rig.engine.reconcile()
        await market_sell(sim, "0.006")
        await rig.engine.reconcile()
        assert rig.strategy.seen == [
            ("on_fill", S.PARTIALLY_FILLED, D("0.004"), D("60000.0")),
            ("on_order", S.PARTIALLY_FILLED, D("0.004")),
            ("on_fill", S.FILLED, D("0.01"), D("60000.0")),
            ("on_order", S.FILLED, D("0.01")),
        ]
        assert bid.state is S.FILLED
        assert rig.desk.positions.position("BTC/USD", "rec").qty == D("0.01")  # type: ignore[union-attr]


async def test_on_fill_comes_first_on_the_private_feeds_path(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The daemon's usual path: the simulator's executions feed reports the trade and the
    state change in one report."""
    from bot.core.backoff import Backoff, BackoffPolicy
    from bot.execution.private_feed import PrivateFeed
    from bot.execution.tokens import TokenKeeper

    clock = SystemClock()
    sim = await sim_factory(clock=clock, market=None)
    async with desk_on(sim, tmp_path / "bot.db") as rig:
        feed = PrivateFeed(
            sim.ws_private_url, TokenKeeper(rig.venue, clock), rig.engine.on_private, clock=clock,
            backoff=Backoff(BackoffPolicy(0.01, 0.05), random.Random(1).random),
        )  # fmt: skip
        feed_task = asyncio.create_task(feed.run())
        try:
            await until(lambda: feed.subscribed and rig.engine.readiness.is_open)
            bid = await placed(rig, "60000")
            rig.strategy.seen.clear()
            await market_sell(sim, "0.004")
            await until(lambda: bid.state is S.PARTIALLY_FILLED)
            await market_sell(sim, "0.006")
            await until(lambda: bid.state is S.FILLED and len(rig.strategy.seen) >= 4)
        finally:
            feed_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await feed_task
        assert rig.strategy.seen == [
            ("on_fill", S.PARTIALLY_FILLED, D("0.004"), D("60000.0")),
            ("on_order", S.PARTIALLY_FILLED, D("0.004")),
            ("on_fill", S.FILLED, D("0.01"), D("60000.0")),
            ("on_order", S.FILLED, D("0.01")),
        ]


# ---------------------------------------------------------------------- exact fill prices


def executions_frame(text: str) -> ExecutionsFrame:
    """One executions frame, from Kraken's JSON text, through the real parser."""
    [frame] = Parser().parse(text)
    assert isinstance(frame, ExecutionsFrame)
    return frame


async def test_a_taker_average_price_finer_than_the_pair_is_kept_exact_end_to_end(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """Kraken's ``last_price`` of a taker order across levels is the trade event's average:
    here 60000.05 on BTC/USD (prices to 0.1). The report is applied whole (state and
    fill, no reconciliation), and the price stays exact in the store, the positions, the
    strategy's ``FillEvent`` and a restart's replay."""
    sim = await fake_venue(sim_factory)
    db = tmp_path / "bot.db"
    with capture_logs() as logs:
        async with desk_on(sim, db) as rig:
            bid = await placed(rig, "60000.1")
            txid = bid.order.order_id
            rig.engine.on_private(
                executions_frame(
                    '{"channel":"executions","type":"update","sequence":5,"data":[{'
                    f'"exec_type":"trade","order_id":"{txid}","order_status":"filled",'
                    '"exec_id":"TAVG1-AAAAA-BBBBBB","trade_id":4711,"last_qty":0.01,'
                    '"last_price":60000.05,"cost":600.0005,"cum_qty":0.01,"cum_cost":600.0005,'
                    '"avg_price":60000.05,"liquidity_ind":"t","side":"buy",'
                    '"fees":[{"asset":"USD","qty":1.56}],"timestamp":"2024-01-01T00:00:00Z"}]}'
                )
            )
            assert bid.state is S.FILLED and bid.filled == D("0.01")
            assert rig.engine.readiness.is_open  # nothing to reconcile: the report was good
            [fill] = rig.strategy.fills
            assert (fill.price, fill.qty, fill.cost) == (D("60000.05"), D("0.01"), D("600.0005"))
            pos = rig.desk.positions.position("BTC/USD", "rec")
            assert pos is not None and pos.cost_basis == D("600.0005")
            assert rig.desk.positions.realised("USD", "rec") == D("-1.56")
            [stored] = rig.store.fills_since(0)
            assert (stored.price, stored.price_precision) == (6_000_005, 2)
            rest = rig.rest
    assert not [e for e in logs if e["event"] in ("report_refused", "reconcile_failed")]
    filled = [e for e in logs if e["event"] == "order_filled"]
    assert [e["price"] for e in filled] == ["60000.05"]
    store = Store.open(db)  # a restart: positions come back from the stored fills, exact
    try:
        again = PositionBook(sim.clock)
        venue = KrakenRestVenue(rest, sim.venue.instruments)
        engine = ExecutionEngine(venue, store, sim.venue.instruments, sim.clock)
        replay_fills(store, engine, again, sim.venue.instruments)
        pos = again.position("BTC/USD", "rec")
        assert pos is not None and pos.cost_basis == D("600.0005")
    finally:
        store.close()


# ---------------------------------------------------------------------- refusals


def rejections(rig: Rig) -> dict[tuple[str, ...], float]:
    """``krakenbot_rejections_total`` by (source, strategy, action, reason)."""
    return {s.labels: s.value for s in rig.metrics.samples() if s.name == "rejections"}


async def test_every_refusal_is_counted_by_source_and_reason_and_logged_once_per_interval(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The holdback's refusals of places and amends, the risk gate's refusals of amends,
    and Kraken's refusal of an amend: all in ``krakenbot_rejections_total`` with their
    source and reason, all on the status page, each kind one log line per interval (the
    repeats counted in ``refusals_suppressed``)."""
    sim = await fake_venue(sim_factory)
    room = {"BTC/USD": 1000.0}
    limits = RiskLimits(max_order_notional=D(1000))
    with capture_logs() as logs:
        async with desk_on(sim, tmp_path / "bot.db", limits=limits, headroom=room.get) as rig:
            bid = await placed(rig, "60000")  # 600 USD
            room["BTC/USD"] = 2.0  # the trading counter must keep room to cancel
            for _ in range(50):
                assert rig.ctx.place("BTC/USD", "buy", D("0.01"), D("50000")).reason == "rate_limit"
            for _ in range(39):
                assert not rig.ctx.amend(bid, price=D("60000.1"))
            room["BTC/USD"] = 1000.0
            for _ in range(39):  # 1200 USD: over max_order_notional
                assert not rig.ctx.amend(bid, qty=D("0.02"))
            # Canceled behind the bot's back (the web UI): Kraken refuses the next amend.
            sim.venue.cancel_order(sim.account, txid=bid.order.order_id)
            assert rig.ctx.amend(bid, price=D("60000.2"))
            await until(lambda: ("exchange", "rec", "amend", "EOrder:Unknown order")
                        in rejections(rig))  # fmt: skip
            assert rejections(rig) == {
                ("desk", "rec", "place", "rate_limit"): 50,
                ("desk", "rec", "amend", "rate_limit"): 39,
                ("risk", "rec", "amend", "max_notional"): 39,
                ("exchange", "rec", "amend", "EOrder:Unknown order"): 1,
            }
            sim.clock.advance(5.0)
            rig.desk.periodic()
            snap = rig.metrics.snapshot()
            page = render_status(snap, {"ready": True, "checks": {}}, {"healthy": True}, {},
                                 now_ns=sim.clock.time_ns())  # fmt: skip
    lines = [e for e in logs if e["event"].endswith("_rejected")]
    assert [(e["event"], e["source"], e["reason"], e["suppressed"]) for e in lines] == [
        ("order_rejected", "desk", "rate_limit", 0),
        ("amend_rejected", "desk", "rate_limit", 0),
        ("amend_rejected", "risk", "max_notional", 0),
        ("amend_rejected", "exchange", "EOrder:Unknown order", 0),
    ]
    repeats = [(e["action"], e["source"], e["count"]) for e in logs
               if e["event"] == "refusals_suppressed"]  # fmt: skip
    assert sorted(repeats) == [("amend", "desk", 38), ("amend", "risk", 38), ("place", "desk", 49)]
    assert not [e for e in logs if e["event"] == "order_sent" and e["price"] == 500000]
    for row in (("desk", "place", "rate_limit", 50), ("risk", "amend", "max_notional", 39)):
        source, action, reason, n = row  # the status page's rejections table
        cells = f"<td>{source}</td><td>rec</td><td>{action}</td><td>{reason}</td>"
        assert f'{cells}<td class="n">{n}</td>' in page


async def test_an_amend_is_held_back_while_the_rest_counter_has_no_room_to_spare(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """An amend costs 1 on the REST call counter: with less than that plus room for the
    dead-man's switch's refresh and a confirmation (``REST_RESERVE``), the desk refuses
    it at once (counted) instead of queueing a price that will be stale when it leaves."""
    sim = await fake_venue(sim_factory, tier="starter")
    async with desk_on(sim, tmp_path / "bot.db") as rig:
        bid = await placed(rig, "60000")
        rig.rest.rest_counter.saturate(sim.clock.monotonic())  # 15 of 15 (Starter)
        assert not rig.ctx.amend(bid, price=D("60000.1"))
        assert rejections(rig) == {("desk", "rec", "amend", "rate_limit"): 1}
        sim.clock.advance(3.0 / 0.33 + 0.01)  # decayed to 12: room for 1 + 2 spare
        assert rig.ctx.amend(bid, price=D("60000.1"))
        await until(lambda: bid.is_live and bid.price == D("60000.1"))
        (on_sim,) = sim.venue.exchange.open_orders(sim.account)
        assert on_sim.price == 600_001  # amended at Kraken, in place


async def test_a_cancel_the_desk_cannot_send_is_counted(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await fake_venue(sim_factory)
    async with desk_on(sim, tmp_path / "bot.db") as rig:
        bid = await placed(rig, "60000")
        rig.desk.tasks.spawn_task = None  # the daemon's task group is gone: nothing can be sent
        assert not rig.ctx.cancel(bid)
        assert rejections(rig) == {("desk", "rec", "cancel", "shutting_down"): 1}
