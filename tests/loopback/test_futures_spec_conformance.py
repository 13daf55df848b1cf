"""The Futures venue port against the Futures simulator where Kraken's OpenAPI
(``krakenfx/api-specs``, ``futures-rest/trading/public.yml``, commit 86715cf) says
something our first reading missed, over real sockets on 127.0.0.1:

- ``FillJson.fillType`` has ``takerAfterEdit``: an edit that makes a resting order trade
  at once makes it the taker, and the engine must record a taker's fill, not an unknown;
- ``BatchOrderSend.orderType`` is lmt, ioc, post, stp, take_profit or fok: no ``mkt``, so
  a market order in a batch is sent alone (``sendorder`` takes ``mkt``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.execution.orders import Order, OrderState
from tests.loopback.placing import command
from tests.loopback.test_futures_batch import CountingClient, writes
from tests.loopback.test_futures_venue import running

S = OrderState
pytestmark = pytest.mark.timeout(60)


async def test_a_fill_made_by_an_edit_is_a_takers_fill(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        ask = rig.index() + 50
        qty = rig.inst.qty("0.01")
        assert await rig.other("sell", "lmt", qty, ask, "mk-1")  # another account's ask
        order = await rig.place("buy", qty, ask - 100)
        await rig.engine.amend(order.cl_ord_id, price=ask)  # crosses: trades at once
        (fill,) = await rig.rest.fills()
        assert fill.fill_type == "takerAfterEdit"
        (trade,) = (await rig.venue.trades(start_s=0)).trades
        assert trade.maker is False
        await rig.engine.reconcile()
        (recorded,) = rig.fills
        assert recorded.cl_ord_id == order.cl_ord_id and recorded.liquidity == "t"


async def test_a_market_order_in_a_batch_is_sent_alone(tmp_path: Path) -> None:
    async with running(tmp_path, rest_cls=CountingClient) as rig:
        ask = rig.index() + 50
        qty = rig.inst.qty("0.01")
        assert await rig.other("sell", "lmt", qty, ask, "mk-1")  # another account's ask
        tick = rig.inst.price_increment
        bid = rig.index() - 100 * tick
        limits = [
            command(rig.engine, rig.clock, rig.inst, "buy", qty, bid - i * tick) for i in (0, 1)
        ]
        market = command(rig.engine, rig.clock, rig.inst, "buy", qty, order_type="market")
        out = await rig.engine.place_batch([limits[0], market, limits[1]])
        assert all(isinstance(x, Order) for x in out)
        states = [x.state for x in out if isinstance(x, Order)]
        assert states[0] is S.NEW and states[2] is S.NEW
        assert states[1] in (S.NEW, S.FILLED)  # placed (not invalidOrderType): it traded
        assert writes(rig) == [("batchorder", 2), ("sendorder", 1)]
        await rig.engine.reconcile()
        done = rig.engine.order(market.cl_ord_id)
        assert done is not None and done.state is S.FILLED and done.filled_qty == qty
        assert {o.cli_ord_id for o in rig.on_sim()} == {c.cl_ord_id for c in limits}
