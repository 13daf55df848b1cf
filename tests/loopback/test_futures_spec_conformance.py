"""The Futures venue port against the Futures simulator where Kraken's OpenAPI
(``krakenfx/api-specs``, ``futures-rest/trading/public.yml``, commit 86715cf) says
something our first reading missed, over real sockets on 127.0.0.1:

- ``FillJson.fillType`` has ``takerAfterEdit``: an edit that makes a resting order trade
  at once makes it the taker, and the engine must record a taker's fill, not an unknown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.futures.instruments import FuturesInstrumentTable
from tests.loopback.test_futures_venue import P, running

pytestmark = pytest.mark.timeout(60)


async def test_a_fill_made_by_an_edit_is_a_takers_fill(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        ask = rig.index() + 50
        qty = rig.inst.qty("0.01")
        maker = rig.taker()  # another account rests the ask
        try:
            contract = FuturesInstrumentTable(await maker.instruments())[P]
            rested = await maker.send_order(
                contract, side="sell", order_type="lmt", size=qty, limit_price=ask,
                cli_ord_id="mk-1",
            )  # fmt: skip
        finally:
            await maker.close()
        assert rested.ok
        order = await rig.place("buy", qty, ask - 100)
        await rig.engine.amend(order.cl_ord_id, price=ask)  # crosses: trades at once
        (fill,) = await rig.rest.fills()
        assert fill.fill_type == "takerAfterEdit"
        (trade,) = (await rig.venue.trades(start_s=0)).trades
        assert trade.maker is False
        await rig.engine.reconcile()
        (recorded,) = rig.fills
        assert recorded.cl_ord_id == order.cl_ord_id and recorded.liquidity == "t"
