"""Fixtures for the end-to-end tests: the daemon and the simulator as real subprocesses.

- ``sim`` starts ``python -m bot sim --port 0 --seed N`` and reads its JSON line (URLs, the
  account's key pair, the admin token); ``SimProc`` queries it with an independent signed
  client (``tests/loopback/kraken_client.py``) and its admin API.
- ``spawn_daemon(config)`` writes a deployment YAML into ``tmp_path`` and starts
  ``python -m bot --log-format json run --config FILE``; its stderr is parsed line by line
  in a background thread (``LogReader``) so tests can wait, bounded, for an event.
- ``live_config(sim, ...)`` is a ``mode: live`` deployment pointed at the simulator, with
  the credentials taken from environment variables (``api_key_env``/``api_secret_env``).

Every subprocess started here is killed at the end of the test, whatever happened.
The simulator's nonce check is strict per API key, and the daemon uses the same key: the
helpers that sign requests are only called while the daemon is stopped or gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.loopback.kraken_client import KrakenTestClient

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "E2E_KRAKEN_KEY"
SECRET_ENV = "E2E_KRAKEN_SECRET"
STARTUP_S = 20.0
NONCE_ERROR = "EAPI:Invalid nonce"
NONCE_AHEAD_NS = 60_000_000_000
RATE_ERROR = "EAPI:Rate limit exceeded"
RATE_RETRY_S = 3.0
TIER = "pro"

Record = dict[str, Any]


class LogReader:
    """Reads a stream of JSON log lines in a thread; tests wait on it, bounded."""

    def __init__(self, stream: Any, name: str) -> None:
        self.name = name
        self.records: list[Record] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self.closed = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            text = line.rstrip("\n")
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            with self._cond:
                self.raw.append(text)
                if isinstance(record, dict):
                    self.records.append(record)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def mark(self) -> int:
        """The index of the next record: pass it as ``since`` to wait for later ones."""
        with self._cond:
            return len(self.records)

    def events(self, name: str, since: int = 0) -> list[Record]:
        with self._cond:
            return [r for r in self.records[since:] if r.get("event") == name]

    def wait_for(
        self,
        name: str,
        timeout: float = 15.0,
        *,
        since: int = 0,
        where: Callable[[Record], bool] | None = None,
        count: int = 1,
    ) -> list[Record]:
        """Wait until ``count`` records named ``name`` (matching ``where``) arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    r
                    for r in self.records[since:]
                    if r.get("event") == name and (where is None or where(r))
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    tail = "\n".join(self.raw[-25:])
                    raise AssertionError(
                        f"{self.name}: no {count}x {name!r} within {timeout}s"
                        f" (closed={self.closed}); last lines:\n{tail}"
                    )
                self._cond.wait(min(left, 0.2))

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.raw)


@dataclass
class Proc:
    """One subprocess and its parsed stderr."""

    popen: subprocess.Popen[str]
    logs: LogReader

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        rc = self.popen.wait(timeout)
        self.logs.join()
        return rc

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                os.kill(self.popen.pid, signal.SIGCONT)
            self.popen.kill()
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.popen.wait(10)


def python_env(**extra: str) -> dict[str, str]:
    """The test's environment for a child: repo on PYTHONPATH, no config from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKENBOT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start(
    args: list[str], *, cwd: Path, env: dict[str, str], name: str, stdout: Any = None
) -> Proc:
    popen = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Proc(popen, LogReader(popen.stderr, name))


# --------------------------------------------------------------------------- simulator


@dataclass
class SimProc:
    """The simulator subprocess, its endpoints and credentials, and ways to query it."""

    proc: Proc
    info: dict[str, str]
    daemon_gone: bool = False
    """Set once no daemon will use the key again: a refused nonce is then retried ahead
    (a restarted daemon's nonces run up to its reserve ahead of the wall clock)."""
    _last_nonce: int = field(default=0)

    @property
    def logs(self) -> LogReader:
        return self.proc.logs

    async def _call(self, method: str, **params: Any) -> Any:
        async with aiohttp.ClientSession() as session:
            client = KrakenTestClient(
                session, self.info["rest"], self.info["api_key"], self.info["api_secret"]
            )
            client.last_nonce = self._last_nonce
            reply = await client.private(method, **params)
            self._last_nonce = client.last_nonce
            return reply

    def private(self, method: str, **params: Any) -> Any:
        """A signed call's result (asserts Kraken's error list is empty).

        Only while the daemon is stopped or gone: it shares the account's key and nonce."""
        reply = asyncio.run(self._call(method, **params))
        for _ in range(15):
            if self.daemon_gone and reply.error == [NONCE_ERROR]:
                self._last_nonce = max(self._last_nonce, time.time_ns() + NONCE_AHEAD_NS)
            elif reply.error == [RATE_ERROR]:  # also after a nonce retry: the same counter
                # The key's REST counter, shared with the daemon, decays 1/s (Pro) and a
                # refused call counts too (2 for ClosedOrders): wait for more than it adds.
                time.sleep(RATE_RETRY_S)
            else:
                break
            reply = asyncio.run(self._call(method, **params))
        return reply.result

    def open_orders(self) -> dict[str, dict[str, Any]]:
        return dict(self.private("OpenOrders")["open"])

    def closed_orders(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        while True:
            page = self.private("ClosedOrders", ofs=len(out))
            out.update(page["closed"])
            if not page["closed"] or len(out) >= int(page["count"]):
                return out

    def all_orders(self) -> dict[str, dict[str, Any]]:
        """Every order the account ever had on the simulator, by txid."""
        return {**self.closed_orders(), **self.open_orders()}

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async def go() -> Any:
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    method,
                    self.info["admin"] + path,
                    json=body,
                    headers={"X-Admin-Token": self.info["admin_token"]},
                ) as r,
            ):
                assert r.status < 300, await r.text()
                return await r.json()

        return asyncio.run(go())


def start_sim(tmp: Path, seed: int, procs: list[Proc], *, tier: str = TIER) -> SimProc:
    config = tmp / "sim.yaml"
    config.write_text(
        f"venue:\n  tier: {tier}\nsim:\n  balances: {{USD: 100000, BTC: 1, ETH: 10}}\n"
    )
    proc = start(
        [sys.executable, "-m", "bot", "--log-format", "json", "sim", "--config", str(config),
         "--port", "0", "--seed", str(seed)],
        cwd=tmp, env=python_env(), name="sim", stdout=subprocess.PIPE,
    )  # fmt: skip
    procs.append(proc)
    assert proc.popen.stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.popen.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(STARTUP_S)
    assert box and box[0].strip(), f"sim printed no JSON line:\n{proc.logs.text()}"
    info = json.loads(box[0])
    for key in ("rest", "ws_public", "ws_private", "admin", "api_key", "api_secret"):
        assert info.get(key), info
    return SimProc(proc, info)


# --------------------------------------------------------------------------- daemon


def live_config(
    sim: SimProc,
    tmp: Path,
    *,
    symbols: tuple[str, ...] = ("BTC/USD",),
    strategies: list[dict[str, Any]] | None = None,
    deadman_s: int = 3,
    risk: dict[str, Any] | None = None,
    tier: str = TIER,
) -> dict[str, Any]:
    """A ``mode: live`` deployment on the simulator ``sim``, store in ``tmp``."""
    if strategies is None:
        strategies = [
            {
                "name": "mm",
                "class": "market_maker",
                "symbols": list(symbols),
                "params": {"spread_bps": 40, "size": "0.01", "max_inventory": "0.1"},
            }
        ]
    return {
        "mode": "live",
        "venue": {
            "rest_url": sim.info["rest"],
            "ws_public_url": sim.info["ws_public"],
            "ws_private_url": sim.info["ws_private"],
            "tier": tier,
        },
        "credentials": {"api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV},
        "market": {"symbols": list(symbols), "book_depth": 10},
        "store": {"path": str(tmp / "bot.db")},
        "deadman": {"timeout_s": deadman_s},
        "shutdown": {"cancel_orders": True, "grace_s": 15},
        "http": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "info", "format": "json"},
        "risk": risk or {"max_open_orders": 20, "max_orders_per_minute": 600},
        "strategies": strategies,
    }


@dataclass
class Daemon:
    proc: Proc
    config_path: Path

    @property
    def logs(self) -> LogReader:
        return self.proc.logs

    def wait_ready(self, timeout: float = STARTUP_S) -> Record:
        return self.logs.wait_for("daemon_ready", timeout)[0]

    def terminate(self, timeout: float = 25.0) -> int:
        """SIGTERM, then the exit status (bounded)."""
        self.proc.signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every subprocess a test starts; all killed at the end."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.kill()


@pytest.fixture
def sim(tmp_path: Path, procs: list[Proc]) -> SimProc:
    return start_sim(tmp_path, 11, procs)


SpawnDaemon = Callable[..., Daemon]


@pytest.fixture
def spawn_daemon(tmp_path: Path, procs: list[Proc]) -> SpawnDaemon:
    """``spawn_daemon(config, sim=..., name=...)``: write the YAML, start the daemon."""

    def spawn(
        config: dict[str, Any] | str,
        *,
        sim: SimProc | None = None,
        name: str = "deploy.yaml",
        cwd: Path | None = None,
    ) -> Daemon:
        path = tmp_path / name
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        path.write_text(text)
        extra = {}
        if sim is not None:
            extra = {KEY_ENV: sim.info["api_key"], SECRET_ENV: sim.info["api_secret"]}
        proc = start(
            [sys.executable, "-m", "bot", "--log-format", "json", "run", "--config", str(path)],
            cwd=cwd or tmp_path, env=python_env(**extra), name="daemon",
        )  # fmt: skip
        procs.append(proc)
        return Daemon(proc, path)

    return spawn


def by_cl_ord_id(orders: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """cl_ord_id → the txids carrying it (an order without one is under ``""``)."""
    out: dict[str, list[str]] = {}
    for txid, info in orders.items():
        out.setdefault(str(info.get("cl_ord_id", "")), []).append(txid)
    return out
