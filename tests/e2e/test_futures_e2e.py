"""End to end on Kraken Futures: ``krakenbot run`` as a subprocess against the Futures
simulator as another (``python -m bot.sim.futures``), real sockets and real signals.

The daemon runs a ``mode: live`` deployment pointed at the simulator (``futures:`` with
its URLs, the key pair from the environment). Outcomes are read from both processes'
JSON logs and, once the daemon is gone, from the simulator through the independent client
written from Kraken's documentation (``tests/contract/futures/client.py``). That client
shares the daemon's key, so it signs with a nonce far ahead of any the daemon used.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.store import Store
from tests.contract.futures.client import DocClient
from tests.e2e.conftest import (
    KEY_ENV,
    REPO,
    SECRET_ENV,
    STARTUP_S,
    Proc,
    SpawnDaemon,
    python_env,
    start,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

P = "PF_XBTUSD"
NONCE_AHEAD_NS = 120_000_000_000


class FuturesSim:
    """The Futures simulator subprocess: its JSON line, its admin API, a signed reader."""

    def __init__(self, proc: Proc, info: dict[str, Any]) -> None:
        self.proc, self.info = proc, info

    def admin(self, path: str, body: dict[str, Any]) -> Any:
        async def go() -> Any:
            headers = {"X-Admin-Token": self.info["admin_token"]}
            async with (
                aiohttp.ClientSession() as session,
                session.post(self.info["admin"] + path, json=body, headers=headers) as r,
            ):
                assert r.status < 300, await r.text()
                return await r.json()

        return asyncio.run(go())

    def open_ids(self) -> list[str]:
        """Every account's open orders, read over the admin API (no key, no nonce)."""

        async def go() -> list[str]:
            headers = {"X-Admin-Token": self.info["admin_token"]}
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.info["admin"] + "/orders", headers=headers) as r,
            ):
                assert r.status == 200, await r.text()
                body = await r.json()
            return [oid for ids in body["open"].values() for oid in ids]

        return asyncio.run(go())

    def get(self, endpoint: str) -> dict[str, Any]:
        """A signed read, only once the daemon is gone (it shares the key)."""

        async def go() -> dict[str, Any]:
            async with aiohttp.ClientSession() as session:
                client = DocClient(
                    session, self.info["rest"], self.info["api_key"], self.info["api_secret"]
                )
                nonce = str(time.time_ns() + NONCE_AHEAD_NS)
                answer = await client.get(endpoint, nonce=nonce)
                assert answer.ok, answer.body
                return answer.body

        return asyncio.run(go())


@pytest.fixture
def fsim(tmp_path: Path, procs: list[Proc]) -> FuturesSim:
    proc = start(
        [sys.executable, "-m", "bot.sim.futures", "--port", "0", "--seed", "7",
         "--symbols", P],
        cwd=tmp_path, env=python_env(), name="futures-sim", stdout=subprocess.PIPE,
    )  # fmt: skip
    procs.append(proc)
    box: list[str] = []
    out = proc.popen.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: box.append(out.readline()))
    reader.start()
    reader.join(STARTUP_S)
    assert box and box[0].strip(), f"no JSON line:\n{proc.logs.text()}"
    info = json.loads(box[0])
    for key in ("rest", "ws", "admin", "api_key", "api_secret", "admin_token"):
        assert info.get(key), info
    return FuturesSim(proc, info)


def futures_config(sim: FuturesSim, tmp: Path, *, deadman_s: int = 60) -> dict[str, Any]:
    return {
        "mode": "live",
        "futures": {
            "rest_url": sim.info["rest"],
            "ws_url": sim.info["ws"],
            "credentials": {"api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV},
            "symbols": [P],
        },
        "store": {"path": str(tmp / "futures.db")},
        "deadman": {"timeout_s": deadman_s},
        "shutdown": {"cancel_orders": True, "grace_s": 15},
        "http": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "info", "format": "json"},
        "risk": {"max_open_orders": 20, "max_orders_per_minute": 600},
        "strategies": [
            {
                "name": "mm", "class": "market_maker", "symbols": [P],
                "params": {"spread_bps": 2, "size": "0.01", "max_inventory": "0.05"},
            }
        ],
    }  # fmt: skip


def test_the_paper_config_trades_out_of_the_box(tmp_path: Path, spawn_daemon: SpawnDaemon) -> None:
    text = (REPO / "config" / "futures.paper.yaml").read_text()
    assert text.count("port: 8081") == 1
    daemon = spawn_daemon(text.replace("port: 8081", "port: 0"), name="futures.paper.yaml")
    ready = daemon.wait_ready()
    assert ready["mode"] == "paper" and ready["symbols"] == [P]
    daemon.logs.wait_for("order_placed", 15, where=lambda r: "order_id" in r)
    daemon.logs.wait_for("fill", 30)
    daemon.logs.wait_for("futures_margin", 15)
    metrics = urllib.request.urlopen(ready["http"] + "/metrics", timeout=5).read().decode()
    for line in (
        'feed_connected{feed="futures_public"} 1',
        'feed_connected{feed="futures_private"} 1',
        f'book_valid{{symbol="{P}"}} 1',
        "private_feed_subscribed 1",
    ):
        assert line in metrics, line
    assert daemon.terminate() == 0
    assert (tmp_path / "data" / "futures-paper.db").exists()
    assert "Traceback" not in daemon.logs.text()


def sent_ids(*logs: Any) -> list[str]:
    return [r["cl_ord_id"] for log in logs for r in log.events("order_sent")]


def test_the_dead_mans_switch_fires_under_sigstop_then_recovery(
    tmp_path: Path, fsim: FuturesSim, spawn_daemon: SpawnDaemon
) -> None:
    config = futures_config(fsim, tmp_path, deadman_s=3)
    daemon = spawn_daemon(config, sim=fsim)  # type: ignore[arg-type]  # its key pair
    daemon.wait_ready()
    before = daemon.logs.wait_for("order_placed", 15, where=lambda r: "order_id" in r, count=2)
    # Stopped at a moment with orders resting (the maker may be between a cancel and its
    # next quote: then it is let go on until its next order and stopped again).
    for _ in range(3):
        mark = daemon.logs.mark()
        daemon.proc.signal(signal.SIGSTOP)
        if fsim.open_ids():
            break
        daemon.proc.signal(signal.SIGCONT)
        daemon.logs.wait_for("order_placed", 15, since=mark, where=lambda r: "order_id" in r)
    else:
        pytest.fail("no order resting at any of three stops")
    try:
        fired = fsim.proc.logs.wait_for("deadman_fired", 10)
        assert fired[0]["cancelled"] >= 1
        assert fsim.open_ids() == []  # the switch took every order, the daemon still stopped
        since = daemon.logs.mark()
    finally:
        daemon.proc.signal(signal.SIGCONT)
    daemon.logs.wait_for("deadman_lapsed", 10, since=since)
    daemon.logs.wait_for("deadman_rearmed", 10, since=since)
    daemon.logs.wait_for("readiness_open", 10, since=since)
    # Trading resumes with new orders. One is the proof: the maker's next post-only quote
    # may be refused (postWouldExecute, retried after 8 s) if the market moved meanwhile.
    after = daemon.logs.wait_for("order_placed", 30, since=since, where=lambda r: "order_id" in r)
    assert not {r["cl_ord_id"] for r in before} & {r["cl_ord_id"] for r in after}
    assert daemon.terminate() == 0
    assert fsim.get("openorders")["openOrders"] == []
    assert "Traceback" not in daemon.logs.text()


def test_a_lost_order_reply_is_resolved_by_cliordid_without_a_duplicate(
    tmp_path: Path, fsim: FuturesSim, spawn_daemon: SpawnDaemon
) -> None:
    # The market maker's quotes go in one batchorder when a block holds two orders or an
    # amend beside a place, by sendorder when a block holds one place alone: the daemon's
    # first order write loses its answer, whichever it is.
    writes = ("batchorder", "sendorder")
    for endpoint in writes:
        fsim.admin("/faults", {"kind": "lose_response", "endpoint": endpoint})
    daemon = spawn_daemon(futures_config(fsim, tmp_path), sim=fsim)  # type: ignore[arg-type]
    daemon.wait_ready()
    (lost,) = daemon.logs.wait_for(
        "futures_rest_error", 15, where=lambda r: r["endpoint"] in writes
    )
    assert lost["code"] == "EHTTP:Connection lost"
    first = daemon.logs.wait_for("order_sent", 5)[0]  # the order whose answer was lost
    cid = first["cl_ord_id"]
    fsim.proc.logs.wait_for("response_lost", 5)
    daemon.logs.wait_for("order_placed", 15, count=3)  # trading went on meanwhile
    assert daemon.terminate() == 0
    assert sent_ids(daemon.logs).count(cid) == 1  # sent once, never resent
    store = Store.open(tmp_path / "futures.db")
    try:
        order = store.get_order(cid)
    finally:
        store.close()
    # Its fate was learned by its cliOrdId (the feed's order event or the lookup): Kraken's
    # order id is on record, and the shutdown cancelled or it filled: nothing is left open.
    assert order is not None and order.order_id is not None and order.is_terminal
    assert fsim.get("openorders")["openOrders"] == []


def test_a_sequence_gap_in_the_book_resyncs_it(
    tmp_path: Path, fsim: FuturesSim, spawn_daemon: SpawnDaemon
) -> None:
    daemon = spawn_daemon(futures_config(fsim, tmp_path), sim=fsim)  # type: ignore[arg-type]
    daemon.wait_ready()
    since = daemon.logs.mark()
    fsim.admin("/faults", {"kind": "book_gap", "symbol": P})
    (resync,) = daemon.logs.wait_for("futures_book_resync", 15, since=since)
    assert resync["reason"] == "gap" and resync["got"] > resync["expected"]
    closed = daemon.logs.wait_for("readiness_closed", 10, since=since)
    assert "books" in closed[0]["failing"]
    daemon.logs.wait_for("readiness_open", 10, since=since)
    assert daemon.terminate() == 0


def test_sigkill_then_restart_no_duplicate_and_positions_recovered(
    tmp_path: Path, fsim: FuturesSim, spawn_daemon: SpawnDaemon
) -> None:
    config = futures_config(fsim, tmp_path)
    first = spawn_daemon(config, sim=fsim, name="first.yaml")  # type: ignore[arg-type]
    first.wait_ready()
    first.logs.wait_for("fill", 30, count=2)
    first.proc.signal(signal.SIGKILL)
    assert first.proc.wait(10) == -signal.SIGKILL
    second = spawn_daemon(config, sim=fsim, name="second.yaml")  # type: ignore[arg-type]
    second.wait_ready()
    recovered = second.logs.events("positions_recovered")
    assert recovered and recovered[0]["fills"] >= 2
    assert second.logs.wait_for("reconciled", 5)[0]["lost"] == 0
    second.logs.wait_for("order_placed", 15, where=lambda r: "order_id" in r)
    assert second.terminate() == 0
    ids = sent_ids(first.logs, second.logs)
    assert len(ids) == len(set(ids))  # no order sent twice, across the restart
    final = [r for r in second.logs.events("pnl") if r.get("symbol") == P][-1]
    positions = fsim.get("openpositions")["openPositions"]
    held = sum(
        (Decimal(str(p["size"])) * (1 if p["side"] == "long" else -1) for p in positions),
        Decimal(0),
    )
    assert Decimal(str(final["position"])) == held  # the desk's fills == Kraken's position
    assert fsim.get("openorders")["openOrders"] == []
