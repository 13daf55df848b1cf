"""The daemon in paper mode with ``venue.order_entry: websocket``: the bundled market maker
quotes, amends and cancels over the private WebSocket (no order write over REST once the
gate is open), and a clean stop still leaves no order and the switch disarmed. The
start-up heap is frozen (``gc.freeze``) before trading."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.config import load_config
from bot.service.daemon import Daemon
from bot.sim.venue import DEFAULT_ACCOUNT
from bot.strategy.loader import load_strategies
from tests.loopback.test_daemon_inprocess import default_yaml, names, running, until

pytestmark = pytest.mark.timeout(60)
WRITES = frozenset({"AddOrder", "AmendOrder", "EditOrder", "CancelOrder", "CancelAll"})


async def test_paper_daemon_trades_over_the_websocket(tmp_path: Path) -> None:
    path = default_yaml(
        tmp_path, **{"mode: paper": "mode: paper\nvenue:\n  order_entry: websocket"}
    )
    config = load_config(path)
    assert config.venue.order_entry == "websocket"
    daemon = Daemon(config, load_strategies(config.strategies), pnl_every_s=1.0)
    gc.unfreeze()  # whatever an earlier test froze: this daemon's start must freeze its own
    with capture_logs() as events:
        async with running(daemon) as task:
            await until(lambda: {"order_filled", "order_amended"} <= set(names(events)))
            assert gc.get_freeze_count() > 0  # the start-up heap, frozen before trading
            daemon.request_stop("test")
            async with asyncio.timeout(15):
                await task
    got = names(events)
    assert "order_entry_websocket" in got
    ready = got.index("daemon_ready")
    rest_writes = [
        e["method"] for e in events[ready:] if e["event"] == "rest_call" and e["method"] in WRITES
    ]
    assert rest_writes == []  # every order write after the gate opened went over the socket
    assert "order_placed" in got and "order_filled" in got
    assert daemon.exit_code == 0
    assert list(daemon.sim.venue.exchange.open_orders(DEFAULT_ACCOUNT)) == []
    assert daemon.sim.venue.deadman_trigger(DEFAULT_ACCOUNT) is None
