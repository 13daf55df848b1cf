"""The contract tier: independent Kraken clients (python-kraken-sdk, ccxt) drive ``krakenbot
sim`` exactly as a user points them at Kraken, only the base URLs changed.

One ``krakenbot sim`` subprocess serves the whole tier (``sim``: the JSON line it prints);
each test opens an account of its own through the admin API (``account``), so tests do not
see each other's orders. The clients under test are synchronous (requests) or run their own
WebSocket tasks, so a real subprocess keeps them off the test's event loop.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
mode: paper
sim:
  seed: 5
  symbols: [BTC/USD, ETH/USD]
"""
_names = itertools.count(1)


@dataclass(frozen=True)
class Sim:
    """What ``krakenbot sim`` printed, and the host parts the clients want."""

    info: dict[str, Any]

    @property
    def rest(self) -> str:
        return str(self.info["rest"])

    @property
    def ws_host(self) -> str:
        """``wss://ws.kraken.com`` for clients that append ``/v2`` themselves."""
        return str(self.info["ws_public"]).removesuffix("/v2")

    @property
    def ws_auth_host(self) -> str:
        """``wss://ws-auth.kraken.com`` for clients that append ``/v2`` themselves."""
        return str(self.info["ws_private"]).removesuffix("/v2")

    @property
    def ws_l3_host(self) -> str:
        """``wss://ws-l3.kraken.com`` (the level3 endpoint), for the same clients."""
        return str(self.info["ws_l3"]).removesuffix("/v2")

    def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.info['admin']}{path}",
            data=json.dumps(body).encode(),
            headers={"X-Admin-Token": self.info["admin_token"]},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer: dict[str, Any] = json.loads(reply.read())
        return answer


@dataclass(frozen=True)
class Account:
    name: str
    api_key: str
    api_secret: str


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    config = tmp_path_factory.mktemp("contract") / "sim.yaml"
    config.write_text(CONFIG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "sim", "--config", str(config), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "krakenbot sim printed nothing"
        yield Sim(json.loads(line))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.returncode in (0, -signal.SIGKILL)


@pytest.fixture
def account(sim: Sim) -> Account:
    """A fresh account (100k USD, 10 BTC, 100 ETH, ...) with a key that may do everything."""
    made = sim.admin("/accounts", {"account": f"contract-{next(_names)}"})
    return Account(made["account"], made["api_key"], made["api_secret"])
