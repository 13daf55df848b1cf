"""One strategy on both venues in-process (``config/basis.paper.yaml``: the basis hedge, both
simulators on 127.0.0.1, temporary stores, the HTTP face on port 0), real sockets.

A spot fill produces a hedge on the Futures simulator; with Futures down the strategy is
told (``ctx.venue_ready``), pulls its spot quotes, and an order there is refused
``not_ready``; Futures back, it is ready and hedging again by itself; the control API
pauses it on both venues; a stop cancels its orders on both venues.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Config, load_config_text
from bot.service.both_daemon import BothDaemon
from bot.sim.futures.server import FuturesSimServer
from bot.sim.venue import DEFAULT_ACCOUNT
from bot.strategy import OrderState
from bot.strategy.loader import load_strategies
from tests.loopback.test_both_daemon import PAPER_ACCOUNT, TOKEN, eventually, fills, post
from tests.loopback.test_daemon_inprocess import running
from tests.loopback.waiting import until

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]


def basis_config(tmp: Path) -> Config:
    text = (REPO / "config" / "basis.paper.yaml").read_text()
    for old, new in {
        "path: data/basis-paper.db": f"path: {tmp / 'spot.db'}",
        "store_path: data/basis-futures-paper.db": f"store_path: {tmp / 'futures.db'}",
        "port: 8080": "port: 0\n  control_token_env: KB_TOKEN",
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return load_config_text(text, "basis.yaml", {"KB_TOKEN": TOKEN})


async def test_the_basis_hedge_trades_both_venues_and_rides_out_a_futures_outage(
    tmp_path: Path,
) -> None:
    config = basis_config(tmp_path)
    daemon = BothDaemon(config, load_strategies(config.strategies))
    (one,) = daemon.both.all
    ctx, runner = one.ctx, one.runner
    restarted: FuturesSimServer | None = None
    try:
        async with running(daemon) as task:
            assert runner.running  # started once both gates opened
            assert daemon.http is not None
            async with aiohttp.ClientSession() as session:
                async with session.get(daemon.http.url + "/metrics") as r:
                    lines = (await r.text()).splitlines()
            assert 'krakenbot_strategy_state{state="running",strategy="basis"} 1.0' in lines
            # A spot fill, then its hedge filled on the Futures simulator.
            await until(lambda: fills(daemon.spot) > 0, "a spot fill", 45)
            await until(lambda: fills(daemon.futures) > 0, "a hedge filled on Futures", 45)
            await until(lambda: ctx.position("PF_XBTUSD") != 0, "a perpetual position", 45)
            fsim = daemon.futures.sim
            assert isinstance(fsim, FuturesSimServer)
            venue, port = fsim.venue, fsim.port
            await fsim.close()  # Futures down
            await until(lambda: not ctx.venue_ready("futures"), "the strategy told", 45)
            await until(lambda: not ctx.open_orders("BTC/USD"), "spot quotes pulled", 45)
            books = runner.stats["on_book"].calls
            await until(lambda: runner.stats["on_book"].calls > books + 5, "spot books", 45)
            assert not [o for o in ctx.open_orders("BTC/USD") if o.pending or o.is_live]
            assert ctx.venue_ready("spot")
            refused = ctx.place("PF_XBTUSD", "buy", Decimal("0.001"), order_type="market")
            await until(lambda: refused.state is OrderState.REJECTED, "a refusal", 45)
            assert refused.reason == "not_ready"
            # Futures back on its port: ready again, quoting and hedging by itself.
            restarted = await FuturesSimServer.start(venue, "127.0.0.1", port, pump=True)
            await until(lambda: ctx.venue_ready("futures"), "Futures ready again", 45)
            before = fills(daemon.futures)
            await until(lambda: fills(daemon.futures) > before, "hedging again", 60)
            async with aiohttp.ClientSession() as session:
                # The dashboard shows the one strategy once (both venues' pictures merged).
                status: dict[str, Any] = {}

                async def shown() -> bool:
                    nonlocal status
                    assert daemon.http is not None
                    async with session.get(daemon.http.url + "/api/status") as r:
                        status = await r.json()
                    return bool(status.get("strategies"))

                await eventually(shown, "the dashboard's strategies")
                assert [s["name"] for s in status["strategies"]] == ["basis"]
                # The control API pauses the one strategy on both venues.
                code, body = await post(session, daemon.http.url + "/api/strategies/basis/pause")
            assert code == 200 and body["result"].startswith("spot: "), body
            assert "futures: " in body["result"], body
            for side in (daemon.spot, daemon.futures):
                assert side.desk is not None
                assert str(side.desk.risk.own_state("basis")) == "halted"
            daemon.request_stop("test")
            await task
        assert daemon.exit_code == 0
        assert daemon.spot.sim.venue.exchange.open_orders(DEFAULT_ACCOUNT) == []
        assert venue.exchange.open_orders(PAPER_ACCOUNT) == []
        assert runner.state.value == "stopped"
    finally:
        if restarted is not None:
            await restarted.close()
