"""The daemon stays up (issue 10 item 1): a hung order request from inside a feed callback,
and a component task that stops unasked.

The whole daemon runs in-process in paper mode on the simulator (``config/default.yaml``
with a test strategy instead of the market maker, a temporary store, HTTP on port 0), as
in ``test_daemon_inprocess``; the simulator's faults make the AddOrder answer hang.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs

from bot.config import load_config
from bot.execution.orders import OrderState
from bot.service.daemon import Daemon
from bot.strategy import BookSnapshot, OrderHandle, Params, Strategy
from bot.strategy.loader import load_strategies
from tests.loopback.test_daemon_inprocess import default_yaml, names, running, until

pytestmark = pytest.mark.timeout(60)


class PlaceWhenAsked(Strategy[Params]):
    """Places one post-only buy 2 % under the best bid from ``on_book`` once ``armed``:
    the order's send starts eagerly inside the public feed's task."""

    armed = False
    handle: OrderHandle | None = None

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        bid = book.best_bid()
        if not self.armed or self.handle is not None or bid is None:
            return
        price = (bid.price * Decimal("0.98")).quantize(Decimal("0.1"))
        self.handle = self.ctx.place(symbol, "buy", Decimal("0.001"), price, post_only=True)


def only(strategy: str, tmp_path: Path, **sections: dict[str, Any]) -> Daemon:
    """``config/default.yaml`` with ``strategy`` alone on BTC/USD, and ``sections`` merged
    into the top-level sections of the same names."""
    path = default_yaml(tmp_path)
    config = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    config["strategies"] = [
        {"name": "placer", "class": f"{__name__}:{strategy}", "symbols": ["BTC/USD"]}
    ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = load_config(path)
    return Daemon(loaded, load_strategies(loaded.strategies), config_path=path)


async def test_a_hung_add_order_from_a_feed_callback_times_out_in_its_own_task(
    tmp_path: Path,
) -> None:
    """The defect: the request timeout was entered eagerly in the public feed's task, so
    it cancelled the feed (books invalid, /readyz 503, nothing logged) and the request ran
    on until the answer came. Now the order's own task times out (``EHTTP:Timeout``), the
    order goes UNKNOWN, the engine resolves it from Kraken, and the feed never notices."""
    daemon = only("PlaceWhenAsked", tmp_path, venue={"request_timeout_s": 1.0})
    with capture_logs() as events:
        async with running(daemon):
            assert daemon.feed is not None and daemon.engine is not None
            connects = daemon.feed.stats.connects
            await daemon.sim.venue.faults.inject(
                kind="lose_response", endpoint="AddOrder", mode="hang", hold_s=4.0, count=1
            )
            # The executions report would tell the order's fate at once: keep it from
            # the daemon, so that only the REST answer could, and it never comes.
            (private,) = daemon.sim.venue.find_connections(kind="private")
            private.silence(3.0)
            strategy = daemon.runners["placer"].strategy
            assert isinstance(strategy, PlaceWhenAsked)
            strategy.armed = True
            await until(lambda: "order_unknown" in names(events), 15)
            unknown = next(e for e in events if e["event"] == "order_unknown")
            assert unknown["reason"] == "EHTTP:Timeout"  # the order's own timeout fired
            handle = strategy.handle
            assert handle is not None and unknown["cl_ord_id"] == handle.cl_ord_id
            # Kraken placed it (the answer was lost, not the order): resolved, not guessed.
            engine = daemon.engine
            await until(
                lambda: (
                    (o := engine.order(handle.cl_ord_id)) is not None and o.state is OrderState.NEW
                ),
                15,
            )
            # The feed never stopped: same connection, every book valid, gate open.
            assert daemon.feed.stats.connects == connects and daemon.feed.connected
            assert all(book.valid for book in daemon.feed.books.values())
            await until(lambda: daemon.gate.is_open, 15)
    got = names(events)
    assert "task_stopped" not in got and "feed_reconnecting" not in got
    assert got.index("order_unknown") < got.index("shutdown_started")
    assert daemon.exit_code == 0


class Quiet(Strategy[Params]):
    """Places nothing."""


async def test_a_task_that_stops_unasked_is_logged_counted_and_restarted(tmp_path: Path) -> None:
    daemon = only("Quiet", tmp_path)
    with capture_logs() as events:
        async with running(daemon):
            assert daemon.feed is not None
            (feed_task,) = [t for t in asyncio.all_tasks() if t.get_name() == "feed"]
            feed_task.cancel()  # what the stray request timeout did to the public feed
            await until(lambda: "task_restarted" in names(events), 15)
            stopped = next(e for e in events if e["event"] == "task_stopped")
            assert stopped["task"] == "feed" and stopped["log_level"] == "error"
            assert stopped["reason"] == "cancelled by another task"
            # Recovered by itself: a new connection, every book valid again, gate open.
            await until(lambda: daemon.feed is not None and daemon.feed.stats.connects >= 2, 15)
            await until(
                lambda: (
                    daemon.feed is not None
                    and all(b.valid for b in daemon.feed.books.values())
                    and daemon.gate.is_open
                ),
                15,
            )
            assert daemon.http is not None
            async with aiohttp.ClientSession() as session:
                async with session.get(daemon.http.url + "/metrics") as reply:
                    metrics = await reply.text()
                async with session.get(daemon.http.url + "/readyz") as reply:
                    assert reply.status == 200
    assert 'krakenbot_task_restarts_total{task="feed"} 1.0' in metrics
    assert 'krakenbot_task_restarts_total{task="engine"} 0.0' in metrics
    assert daemon.exit_code == 0


async def test_shutdowns_disarm_waits_out_rate_limit_refusals_and_exits_0(tmp_path: Path) -> None:
    """Issue 10 item 4: the disarm gave up after one rate-limit refusal (exit 1 with most of
    the grace left, the switch left armed to cancel orders placed by hand later). Now it
    is tried again as the REST counter allows, within ``shutdown.grace_s``."""
    # The switch's refresh every 50 s: none falls in the test, the refusals are the disarm's.
    daemon = only("Quiet", tmp_path, deadman={"timeout_s": 60, "refresh_s": 50})
    with capture_logs() as events:
        async with running(daemon) as task:
            fault = await daemon.sim.venue.faults.inject(
                kind="rate_limit", endpoint="CancelAllOrdersAfter", count=2
            )
            daemon.request_stop("test")
            async with asyncio.timeout(30):
                await task
    got = names(events)
    retries = [e for e in events if e["event"] == "deadman_disarm_retry"]
    assert len(retries) == 2 and "Rate limit" in retries[0]["error"]
    assert fault.state == "done"  # both refusals were the disarm's
    assert got.index("deadman_disarm_retry") < got.index("deadman_disarmed")
    assert "shutdown_failed" not in got and daemon.exit_code == 0
    assert events[-1]["event"] == "shutdown_complete" and events[-1]["exit_code"] == 0
    assert daemon.sim.venue.deadman_trigger(daemon.sim.venue.credentials().account) is None
