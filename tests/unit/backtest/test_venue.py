"""``BacktestVenue``: the venue port on the simulator's exchange, with a latency each way."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from bot.backtest.clock import settle
from bot.core.errors import RejectedError
from bot.execution.orders import Order
from bot.execution.venue import Venue
from bot.kraken.protocol import ExecutionsFrame
from tests.unit.backtest.market_rig import BTC, Rig, px, qty

MS = 1_000_000


def _order(side: str, price: str, size: str, cid: str = "a" * 32) -> Order:
    return Order(
        cl_ord_id=cid, symbol="BTC/USD", side=side, order_type="limit", qty=qty(size),
        price=px(price), price_precision=1, qty_precision=8, strategy="s",
    )  # fmt: skip


def _rig(latency_ms: int) -> tuple[Rig, list[ExecutionsFrame]]:
    rig = Rig(latency_ns=latency_ms * MS)
    frames: list[ExecutionsFrame] = []
    rig.venue.sink = frames.append  # type: ignore[assignment]
    rig.snapshot(bids={"100.0": "5"}, asks={"101.0": "1", "102.0": "1"})
    return rig, frames


def test_it_is_a_venue() -> None:
    assert isinstance(Rig().venue, Venue)


async def test_an_order_meets_the_market_as_it_is_one_latency_later() -> None:
    rig, frames = _rig(latency_ms=5)
    sent = rig.now
    task = asyncio.create_task(rig.venue.place(_order("buy", "100.5", "1"), BTC))
    await settle()
    await rig.clock.run_until(sent + 2 * MS)
    assert not rig.fills()  # still on its way
    rig.update(asks={"100.5": "1"})  # the market moved meanwhile: an ask at our price
    await rig.clock.run_until(sent + 5 * MS)  # the order arrives, and takes it
    assert [(f.price, f.liquidity) for f in rig.fills()] == [(px("100.5"), "t")]
    assert not task.done() and not frames  # the answer is on its way back
    await rig.clock.run_until(sent + 10 * MS)
    assert task.done()
    txid = task.result()
    reports = [r for f in frames for r in f.reports]
    assert [r.exec_type for r in reports] == ["pending_new", "new", "trade", "filled"]
    assert {r.order_id for r in reports} == {txid}
    assert reports[2].last_price == Decimal("100.5") and reports[2].liquidity_ind == "t"


async def test_without_latency_the_same_order_rests_as_it_was_sent() -> None:
    rig, _ = _rig(latency_ms=0)
    task = asyncio.create_task(rig.venue.place(_order("buy", "100.5", "1"), BTC))
    await settle()
    await rig.clock.run_until(rig.now)
    assert task.done()
    assert rig.exchange.book("BTC/USD").best_bid() == px("100.5")  # resting, not taken


async def test_a_fill_the_market_makes_reaches_the_engine_one_latency_later() -> None:
    rig, frames = _rig(latency_ms=3)
    task = asyncio.create_task(rig.venue.place(_order("sell", "101.5", "1"), BTC))
    await settle()
    await rig.clock.run_until(rig.now + 6 * MS)
    await task
    frames.clear()
    rig.update(bids={"100.0": "6"})  # the order is seen resting
    rig.trade("buy", "102.0", "1")  # through it
    printed = rig.now
    assert not frames
    await rig.clock.run_until(printed + 3 * MS)
    fills = [r for f in frames for r in f.reports if r.exec_type == "trade"]
    assert [(r.last_qty, r.liquidity_ind) for r in fills] == [(Decimal(1), "m")]


async def test_a_refusal_comes_back_with_krakens_code_after_the_round_trip() -> None:
    rig, _ = _rig(latency_ms=4)
    sent = rig.now
    task = asyncio.create_task(rig.venue.place(_order("buy", "100.0", "100000"), BTC))
    await settle()
    await rig.clock.run_until(sent + 7 * MS)
    assert not task.done()
    await rig.clock.run_until(sent + 8 * MS)
    with pytest.raises(RejectedError) as caught:
        task.result()
    assert caught.value.code == "EOrder:Insufficient funds"
