"""The daemon in paper mode with ``venue.order_entry: websocket``: the bundled market maker
quotes, amends and cancels over the private WebSocket (no order write over REST once the
gate is open), and a clean stop still leaves no order and the switch disarmed. The
start-up heap is frozen (``gc.freeze``) before trading."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bot.config import load_config
from bot.service.daemon import Daemon
from bot.sim.admin import ADMIN_HEADER
from bot.sim.venue import DEFAULT_ACCOUNT
from bot.strategy.loader import load_strategies
from tests.loopback.test_daemon_inprocess import default_yaml, names, push_status, running, until

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
    # Its orders draw no nonce: no task keeps the REST client's mark ahead (a REST
    # daemon's does, ``test_daemon_inprocess``).
    assert "nonce-mark" not in daemon.supervisor.stats and "engine" in daemon.supervisor.stats


# ------------------------------------------------------------------------------ /metrics

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(session: aiohttp.ClientSession, url: str) -> tuple[str, Series]:
    async with session.get(url + "/metrics") as reply:
        assert reply.status == 200
        text = await reply.text()
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return text, out


def _total(series: Series, name: str, **labels: str) -> float:
    """The sum of ``krakenbot_<name>`` over every series carrying ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in series.items() if n == f"krakenbot_{name}" and want <= set(lab))


def _slow_acks(series: Series) -> float:
    """Answers that took over 0.25 s, over every method."""
    return _total(series, "ws_order_ack_seconds_count") - _total(
        series, "ws_order_ack_seconds_bucket", le="0.25"
    )


async def test_metrics_of_a_paper_daemon_move_as_the_simulators_faults_say(
    tmp_path: Path,
) -> None:
    """The market maker trades over the socket; each fault, posted to the simulator's admin
    API for the next order request whatever its method, shows in the daemon's /metrics:
    a refusal by its class, a late answer in the ack histogram, an answer later than
    ``ack_timeout_s`` as a timeout then a late answer, a lost answer as lost (resolved by
    lookup: no order stays UNKNOWN). The whole exposition passes ``promtool check
    metrics``."""
    path = default_yaml(
        tmp_path,
        **{"mode: paper": "mode: paper\nvenue:\n  order_entry: websocket\n  ack_timeout_s: 1"},
    )
    config = load_config(path)
    daemon = Daemon(config, load_strategies(config.strategies), pnl_every_s=1.0)
    async with running(daemon), aiohttp.ClientSession() as session:
        assert daemon.http is not None and daemon.sim is not None
        url, sim = daemon.http.url, daemon.sim
        got: Series = {}

        async def scraped(check: Callable[[Series], bool]) -> None:
            async def poll() -> bool:
                nonlocal got
                got = (await _scrape(session, url))[1]
                return check(got)

            async with asyncio.timeout(30):
                while not await poll():  # noqa: ASYNC110 (the daemon's own tasks move it)
                    await asyncio.sleep(0.05)

        async def fault(**spec: Any) -> None:
            async with session.post(
                sim.admin_url + "/faults", json=spec,
                headers={ADMIN_HEADER: sim.venue.admin_token},
            ) as reply:  # fmt: skip
                assert reply.status == 201, await reply.text()

        await scraped(lambda s: _total(s, "ws_order_requests_total", outcome="ok") > 0)
        assert _total(got, "order_entry_path", path="websocket") == 1
        assert _total(got, "order_entry_path", path="rest") == 0

        await fault(kind="ws_order_error", error="EOrder:Insufficient funds")
        await scraped(
            lambda s: _total(s, "ws_order_requests_total", error="InsufficientFunds") >= 1
        )
        assert _total(got, "ws_order_requests_total", outcome="refused") >= 1

        slow = _slow_acks(got)
        await fault(kind="ws_order_delay", delay_s=0.5)
        await scraped(lambda s: _slow_acks(s) > slow)

        await fault(kind="ws_order_delay", delay_s=3)  # longer than ack_timeout_s
        await scraped(lambda s: _total(s, "ws_order_requests_total", outcome="timeout") >= 1)
        await scraped(lambda s: _total(s, "ws_order_late_answers_total") >= 1)

        await fault(kind="ws_lose_ack")
        await scraped(lambda s: _total(s, "ws_order_requests_total", outcome="lost") >= 1)
        await scraped(
            lambda s: (
                _total(s, "orders", state="unknown") == 0
                and _total(s, "order_entry_path", path="websocket") == 1
            )
        )
        text, _ = await _scrape(session, url)
        assert _total(got, "ws_order_token_refusals_total") == 0
    assert "krakenbot_ws_order_ack_seconds_bucket" in text
    _promtool_lints_clean(text)


# The one name promtool's lint objects to, older than this check: a rename would break the
# dashboards and alerts users built on it (the lead's call; see the operators' page).
KNOWN_LINT = ("krakenbot_strategy_counter_total metric name should not include type 'counter'",)


def _promtool_lints_clean(exposition: str) -> None:
    """``promtool check metrics`` on the daemon's exposition: no finding but KNOWN_LINT."""
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("KRAKENBOT_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool required (KRAKENBOT_REQUIRE_PROMTOOL=1) but not installed")
        return  # the rest of the test ran; only the lint is left out
    check = subprocess.run(
        [tool, "check", "metrics"], input=exposition, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    findings = [line for line in (check.stdout + check.stderr).splitlines() if line.strip()]
    assert [f for f in findings if f not in KNOWN_LINT] == []
    assert check.returncode in ((0,) if not findings else (0, 3)), check.returncode


# ------------------------------------------------------------------------------ followed checks


async def test_the_followed_checks_stop_a_place_at_once_on_the_websocket_path(
    tmp_path: Path,
) -> None:
    """Over the WebSocket a place is decided on its terms (``accepts_place``), which reads
    the checks its owners push (the exchange's state, the books, the executions
    subscription) rather than asking them. Each change is pushed the moment it happens:
    a place made right after the owner saw it is refused with the reason ``check`` gives,
    and nothing is written; once the owner recovers, places go again. (The books' and the
    dead man's switch's owners are driven through every event in
    tests/unit/test_readiness_follow.py.)"""
    path = default_yaml(
        tmp_path, **{"mode: paper": "mode: paper\nvenue:\n  order_entry: websocket"}
    )
    config = load_config(path)
    daemon = Daemon(config, load_strategies(config.strategies))
    async with running(daemon):
        assert daemon.desk is not None and daemon.feed is not None and daemon.sim is not None
        gate, ctx, venue = daemon.gate, daemon.desk.contexts["mm"], daemon.sim.venue
        await until(lambda: len(ctx.open_orders()) > 0 and gate.is_open)

        # The desk reads the feed's own books (a live view kept when the feed was built).
        assert daemon.desk.marks.book("BTC/USD") is daemon.feed.books["BTC/USD"]
        book = ctx.book("BTC/USD")
        bid = None if book is None else book.best_bid()
        assert bid is not None
        price = (bid.price * Decimal("0.98")).quantize(Decimal("0.1"))

        def place() -> Any:  # 2 % under the bid: inside the price band, resting if it goes
            return ctx.place("BTC/USD", "buy", Decimal("0.01"), price, post_only=True)

        def check_ok(name: str) -> bool:
            return bool(gate.snapshot()["checks"][name]["ok"])

        went = place()
        assert not went.reason and went.state in ("pending_new", "new")

        # post_only: the gate stays open (some orders may go), so only the followed state
        # keeps a plain limit order off the fast path.
        push_status(daemon, "post_only")
        await until(lambda: daemon.feed is not None and daemon.feed.exchange_status == "post_only")
        assert gate.is_open
        plain = ctx.place("BTC/USD", "buy", Decimal("0.01"), price)  # the same tick
        assert (plain.state, plain.reason) == ("rejected", "exchange_status")
        maker = place()
        assert not maker.reason and maker.state in ("pending_new", "new")
        push_status(daemon, "online")
        await until(lambda: check_ok("exchange"))

        # The subscription's owner tells the gate (``on_change``); a place made in that
        # same call, before anything else runs, is already refused.
        private = daemon.private
        assert private is not None and private.on_change is not None
        tell, at_once = private.on_change, []

        def told() -> None:
            tell()
            if not private.subscribed:
                at_once.append(place())

        private.on_change = told
        (conn,) = venue.find_connections(kind="private")
        await conn.drop()
        await until(lambda: len(at_once) > 0)
        assert [(h.state, h.reason) for h in at_once[:1]] == [("rejected", "not_ready")]
        assert not check_ok("private_feed")
        await until(lambda: gate.is_open)
        again = place()
        assert not again.reason and again.state in ("pending_new", "new")
        await until(lambda: again.state == "new")
