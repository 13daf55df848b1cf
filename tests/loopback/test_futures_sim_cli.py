"""``python -m bot.sim.futures`` as a real process: its JSON line, a signed call, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bot.core.clock import SystemClock
from bot.futures.rest import FuturesRestClient

ROOT = Path(__file__).resolve().parents[2]


async def start(
    *args: str, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sim.futures",
        "--log-level",
        "warning",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc, json.loads(line)


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 30)


async def test_prints_its_urls_and_keys_and_serves_signed_calls() -> None:
    proc, info = await start("--symbols", "PF_XBTUSD", "--balance", "5000")
    try:
        assert set(info) == {"venue", "rest", "ws", "admin", "api_key", "api_secret", "admin_token"}
        assert info["ws"].endswith("/ws/v1") and info["rest"].startswith("http://127.0.0.1:")
        async with FuturesRestClient(
            info["rest"],
            clock=SystemClock(),
            api_key=info["api_key"],
            api_secret=info["api_secret"],
        ) as client:
            accounts = await client.accounts()
            assert accounts.flex is not None and accounts.flex.balance_value == 5000
            assert [i.symbol for i in await client.instruments()] == ["PF_XBTUSD"]
    finally:
        assert await stop(proc) == 0


async def test_keys_from_the_environment_are_not_echoed() -> None:
    secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC1zZWNyZXQ="
    env = {"KRAKENBOT_FUTURES_SIM_API_KEY": "my-key", "KRAKENBOT_FUTURES_SIM_API_SECRET": secret}
    proc, info = await start(env=env)
    try:
        assert info["api_key"] == "my-key" and info["api_secret"] is None
    finally:
        assert await stop(proc) == 0


async def test_a_bad_argument_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sim.futures",
        "--symbols",
        "PF_NOPEUSD",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"PF_NOPEUSD" in err
