"""Fills recovered from Kraken Futures' account history (``/api/history/v3/executions``)
by the engine over the Futures venue port, against the Futures simulator on 127.0.0.1.

The rig is ``test_futures_venue``'s: no private feed runs, so the engine learns what
happened while it was "disconnected" only by the REST reconciliation a reconnect starts
(``ExecutionsSubscribed``). The other side of each trade is another account of the
simulator, whose orders go straight to the simulator's exchange (in process, fast):
what is under test is the daemon's side.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.core.errors import RateLimitError
from bot.execution.orders import Order, OrderState
from bot.execution.venue import ExecutionsSubscribed, PrivateDisconnected
from bot.execution.venue_futures import HISTORY_PAUSE_S
from bot.futures.ratelimit import FuturesBudget
from bot.kraken.instruments import from_scaled
from bot.sim.futures.engine import SendRequest
from bot.sim.futures.records import FillRec
from tests.loopback.test_futures_venue import P, Rig, running

S = OrderState


def taker_buys(rig: Rig, count: int, qty: int, price: int) -> None:
    """``count`` IOC buys of ``qty`` at ``price`` by another account, one fill each."""
    sim = rig.sim
    if "taker" not in sim.exchange.accounts:
        sim.add_account("taker")
    for _ in range(count):
        req = SendRequest(symbol=P, side="buy", order_type="ioc", size=qty, limit_price=price)
        outcome = sim.execute(
            lambda r=req: sim.exchange.send_order("taker", r, sim.now_ns()),  # type: ignore[misc]
            lambda o: o.report,
        )
        assert outcome.status == "placed", outcome.status


async def sold(rig: Rig, size: int, *, fills: int, each: int, away: bool = False) -> Order:
    """A sell of ``size`` resting alone above the index, then ``fills`` buys of ``each`` by
    another account against it (with ``away``, while the engine's private feed is down)."""
    ask = rig.index() + 50
    order = await rig.place("sell", size, ask)
    if away:
        rig.engine.on_private(PrivateDisconnected("test"))
    taker_buys(rig, fills, each, ask)
    return order


def traders_fills(rig: Rig) -> dict[str, FillRec]:
    return {f.fill_id: f for f in rig.sim.exchange.accounts["trader"].fills}


async def reconnect(rig: Rig) -> None:
    """What the private feed tells the engine when it subscribes again; wait for the
    reconciliation that follows to reopen readiness."""
    rig.engine.on_private(ExecutionsSubscribed(None))
    assert not rig.engine.readiness.is_open
    await rig.engine.readiness.wait()


async def test_a_reconciliation_after_a_reconnect_records_the_real_fee_of_fills_meanwhile(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        q = rig.inst.qty
        order = await sold(rig, q("0.02"), fills=2, each=q("0.01"), away=True)
        await reconnect(rig)
        done = rig.engine.order(order.cl_ord_id)
        assert done is not None and done.state is S.FILLED
        on_sim = traders_fills(rig)
        assert len(rig.fills) == 2
        for fill in rig.fills:
            charged = on_sim[fill.exec_id].fee
            assert charged > 0  # the simulator charged the maker fee
            assert (fill.fee, fill.fee_asset, fill.liquidity) == (charged, "USD", "m")
        stored = {f.exec_id: f.fee for f in rig.store.fills_since(0)}
        assert stored == {fid: f.fee for fid, f in on_sim.items()}


async def test_more_than_a_hundred_fills_while_disconnected_are_all_recovered(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        one = rig.inst.qty("0.001")
        order = await sold(rig, 150 * one, fills=130, each=one, away=True)
        await reconnect(rig)
        part = rig.engine.order(order.cl_ord_id)
        assert part is not None and part.state is S.PARTIALLY_FILLED
        assert part.filled_qty == 130 * one
        assert {f.exec_id for f in rig.fills} == set(traders_fills(rig))
        assert len(rig.store.fills_since(0)) == 130


async def test_an_order_older_than_the_newest_hundred_fills_is_still_seen_filled(
    tmp_path: Path,
) -> None:
    """Named by id (``query_orders``), an order gone from the book is read from ``fills``
    when that page shows it; when the page is full and does not, from the history, so an
    older order's fills are found and it is not taken for one that left unfilled."""
    async with running(tmp_path) as rig:
        one = rig.inst.qty("0.001")
        first = await sold(rig, one, fills=1, each=one)
        await sold(rig, 120 * one, fills=110, each=one)
        assert first.order_id is not None
        (seen,) = await rig.venue.query_orders([first.order_id])
        assert (seen.status, seen.filled) == ("closed", Decimal("0.001"))


async def test_a_named_order_is_resolved_from_fills_without_the_history(tmp_path: Path) -> None:
    """The quick read after a lost reply (by ``cl_ord_id``, or by id) costs 2 of the
    derivatives budget and nothing of the history pool while ``fills`` answers it."""
    async with running(tmp_path) as rig:
        qty = rig.inst.qty("0.01")
        order = await sold(rig, qty, fills=1, each=qty)
        pool = rig.rest.history_budget
        assert pool.value(rig.clock.monotonic()) == 0.0
        page = await rig.venue.closed_orders(cl_ord_id=order.cl_ord_id)
        (closed,) = page.orders
        filled = from_scaled(qty, rig.inst.qty_precision)
        assert (closed.order_id, closed.status, closed.filled) == (order.order_id, "closed", filled)
        assert order.order_id is not None
        assert [x.status for x in await rig.venue.query_orders([order.order_id])] == ["closed"]
        assert pool.value(rig.clock.monotonic()) == 0.0  # the history was not asked
        (trade,) = (await rig.venue.trades(start_s=0)).trades
        assert trade.fee > 0 and pool.value(rig.clock.monotonic()) > 0.0


async def test_executions_page_by_token_and_a_read_stops_at_its_bound(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        one = rig.inst.qty("0.001")
        await sold(rig, 200 * one, fills=120, each=one)
        everything = await rig.rest.executions(count=50)
        assert (everything.pages, everything.truncated) == (3, False)
        assert [e.exec_id for e in everything.executions] == [
            f.fill_id for f in reversed(rig.sim.exchange.accounts["trader"].fills)
        ]
        assert all(e.fee is not None and e.fee > 0 for e in everything.executions)
        with capture_logs() as logs:
            cut = await rig.rest.executions(count=50, max_pages=2)
        assert (cut.pages, cut.truncated, len(cut.executions)) == (2, True, 100)
        assert cut.executions == everything.executions[:100]
        assert [x["event"] for x in logs if x["event"] == "futures_history_truncated"] == [
            "futures_history_truncated"
        ]
        newest = everything.executions[0].time_ms
        assert (await rig.rest.executions(since_ms=newest + 1)).executions == ()


async def test_the_history_pool_is_apart_from_order_entry_and_spent_falls_back(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        rig.rest.history_budget = FuturesBudget(1.0, 600.0)  # one call, then spent
        before = rig.rest.budget.value(rig.clock.monotonic())
        await rig.rest.executions()
        assert rig.rest.budget.value(rig.clock.monotonic()) == before  # nothing of /derivatives
        with pytest.raises(RateLimitError):
            await rig.rest.executions()  # refused here, nothing sent
        qty = rig.inst.qty("0.01")
        order = await sold(rig, qty, fills=1, each=qty, away=True)
        with capture_logs() as logs:
            await reconnect(rig)
        done = rig.engine.order(order.cl_ord_id)
        assert done is not None and done.state is S.FILLED  # fills alone, fee unknown
        (fill,) = rig.fills
        assert fill.fee == 0
        assert "futures_history_fallback" in [x["event"] for x in logs]


async def test_when_the_history_api_fails_reconciliation_still_ends_from_fills(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        qty = rig.inst.qty("0.01")
        order = await sold(rig, qty, fills=1, each=qty, away=True)
        down = await rig.sim.faults.inject(
            kind="rest_error", endpoint="history/executions", status=503, count=100
        )
        with capture_logs() as logs:
            await reconnect(rig)
        done = rig.engine.order(order.cl_ord_id)
        assert done is not None and done.state is S.FILLED and len(rig.fills) == 1
        fallbacks = [x for x in logs if x["event"] == "futures_history_fallback"]
        assert fallbacks and fallbacks[0]["log_level"] == "warning"
        assert fallbacks[0]["code"] == "EHTTP:Status 503"
        assert down.fired == 1  # asked once, not retried: fills were there to read
        await rig.venue.trades(start_s=0)
        assert down.fired == 1  # left alone for a while after it failed
        rig.clock.advance(HISTORY_PAUSE_S)
        (trade,) = (await rig.venue.trades(start_s=0)).trades
        assert down.fired == 2 and trade.fee == 0  # asked again, still down: fills alone


async def test_the_simulator_refuses_the_101st_history_call_in_ten_minutes(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        rig.rest.history_budget = FuturesBudget(1000.0, 600.0)  # let the simulator judge
        for _ in range(100):
            await rig.rest.executions()
        with pytest.raises(RateLimitError, match="HTTP 429"):
            await rig.rest.executions()
        assert rig.rest.history_budget.headroom(rig.clock.monotonic()) == 0  # saturated
