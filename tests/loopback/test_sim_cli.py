"""``krakenbot sim`` as a real subprocess, and the replay market source.

The replay tests use the real WS v2 capture (``../shared/data/kraken``, KRAKEN.md §7),
written to a temporary JSON-lines file in the replay format of ``bot/research/replay.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bot.core.clock import FakeClock, SystemClock
from bot.futures.rest import FuturesRestClient
from bot.kraken.instruments import InstrumentTable
from bot.research.replay import replay_lines
from bot.sim.pairs import default_instruments
from bot.sim.replay_source import ReplayMarket
from bot.sim.venue import SimVenue
from tests.loopback.kraken_client import KrakenTestClient

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared/data/kraken"
V2_CAPTURE = DATA / "python-kraken-sdk_orderbook-v2.json"
INFO_KEYS = {
    "rest", "ws_public", "ws_private", "ws_l3", "admin", "api_key", "api_secret", "admin_token",
}  # fmt: skip
CONFIG = """\
mode: paper
sim:
  seed: 3
  symbols: [BTC/USD, ETH/USD]
  balances:
    USD: 5000
    BTC: 1
"""


def capture_frames() -> list[dict[str, Any]]:
    doc = orjson.loads(V2_CAPTURE.read_bytes())
    return [doc["init"], *doc["updates"]]


def expected_book(frames: list[dict[str, Any]], symbol: str = "BTC/USD") -> Any:
    """The book a Kraken client builds from ``frames`` (checksums verified)."""
    lines = iter([orjson.dumps(f) for f in frames])
    report = replay_lines(lines, InstrumentTable([default_instruments()[symbol]]), 10)
    assert report.checksum_mismatches == 0 and report.checksums_verified == len(frames)
    return report.books[symbol]


async def start_sim(
    tmp_path: Path, *extra: str
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    config = tmp_path / "sim.yaml"
    config.write_text(CONFIG)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--log-format",
        "json",
        "sim",
        "--config",
        str(config),
        "--port",
        "0",
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    return proc, json.loads(line)


async def stop_sim(proc: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, bytes]:
    proc.send_signal(sig)
    assert proc.stdout is not None
    rest = await asyncio.wait_for(proc.stdout.read(), 10)
    return await asyncio.wait_for(proc.wait(), 10), rest


async def test_sim_command_prints_its_line_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc, info = await start_sim(tmp_path, "--seed", "11")
    try:
        assert set(info) == INFO_KEYS
        assert info["rest"].startswith("http://127.0.0.1:")
        assert info["ws_public"] == info["rest"].replace("http", "ws") + "/v2"
        # Kraken's wss://ws-auth.kraken.com/v2: its own port, the same path as the public one.
        assert info["ws_private"].startswith("ws://127.0.0.1:")
        assert info["ws_private"].endswith("/v2") and info["ws_private"] != info["ws_public"]
        assert info["admin"] == info["rest"] + "/admin"
        async with aiohttp.ClientSession() as session:
            client = KrakenTestClient(session, info["rest"], info["api_key"], info["api_secret"])
            assert (await client.public("Time")).error == []
            pairs = (await client.public("AssetPairs")).result
            assert set(pairs) == {"XXBTZUSD", "XETHZUSD"}
            balance = (await client.private("Balance")).result
            assert balance == {"ZUSD": "5000.0000", "XXBT": "1.0000000000"}
            headers = {"X-Admin-Token": info["admin_token"]}
            async with session.get(info["admin"] + "/status", headers=headers) as reply:
                assert reply.status == 200 and (await reply.json())["paused"] is False
    finally:
        status, rest = await stop_sim(proc, signal.SIGTERM)
    assert status == 0
    assert rest == b""  # one JSON line, nothing else on stdout


def write_recording(path: Path, frames: list[dict[str, Any]], step_ns: int) -> Path:
    start = 1_690_000_000_000_000_000
    lines = (
        orjson.dumps({"recv_ns": start + i * step_ns, "conn": "public", "frame": f})
        for i, f in enumerate(frames)
    )
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


async def test_sim_command_replays_a_capture_and_stops_on_sigint(tmp_path: Path) -> None:
    frames = capture_frames()
    book = expected_book(frames)
    recording = write_recording(tmp_path / "capture.jsonl", frames, step_ns=500_000)
    proc, info = await start_sim(tmp_path, "--source", f"replay:{recording}")
    try:
        async with aiohttp.ClientSession() as session:
            client = KrakenTestClient(session, info["rest"])
            inst = book.instrument
            want = {
                "bids": [[inst.price_text(p), inst.qty_text(q)] for p, q in book.bids(10)],
                "asks": [[inst.price_text(p), inst.qty_text(q)] for p, q in book.asks(10)],
            }
            got: dict[str, Any] = {}
            for _ in range(100):  # bounded: the whole capture replays in about 0.3 s
                depth = (await client.public("Depth", pair="XBTUSD", count=10)).result
                got = {k: [row[:2] for row in v] for k, v in depth["XXBTZUSD"].items()}
                if got == want:
                    break
                await asyncio.sleep(0.05)
            assert got == want
            pairs = (await client.public("AssetPairs")).result
            assert list(pairs) == ["XXBTZUSD"]  # config symbols ∩ the capture's
    finally:
        status, _ = await stop_sim(proc, signal.SIGINT)
    assert status == 0


async def test_sim_command_rejects_a_bad_source(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(CONFIG)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sim", "--config", str(config), "--source", "random",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and out == b""
    assert b"--source" in err


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_replay_market_rebuilds_the_recorded_book(speed: float) -> None:
    frames = capture_frames()
    instruments = default_instruments(("BTC/USD",))
    lines = [orjson.dumps(f) for f in frames]
    clock = FakeClock()
    market = ReplayMarket.from_lines(lines, instruments)
    venue = SimVenue(instruments=instruments, clock=clock, market=market, speed=speed)
    venue.add_account("trader")
    venue.tick()
    # The snapshot has no time of its own: it is due with the first timed update.
    start = frames[1]["data"][0]["timestamp"]
    due = 1 + sum(1 for f in frames[1:] if f["data"][0]["timestamp"] == start)
    first = expected_book(frames[:due])
    bids, asks = venue.exchange.depth("BTC/USD", 10)
    assert (bids, asks) == (first.bids(10), first.asks(10))
    # The capture spans 51 s of recorded time; half-way through, part of it is replayed.
    clock.advance(25.0 / speed)
    venue.tick()
    assert 0 < market.remaining < len(frames)
    clock.advance(30.0 / speed)
    venue.tick()
    assert market.remaining == 0
    last = expected_book(frames)
    bids, asks = venue.exchange.depth("BTC/USD", 10)
    assert (bids, asks) == (last.bids(10), last.asks(10))
    book = venue.exchange.book("BTC/USD")
    assert book.level_count("bid") == book.level_count("ask") == 10  # truncated as recorded


async def test_sim_command_creates_the_keys_a_keys_file_declares(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "- account: trader\n"
        "  permissions: [query_funds, query_open_orders, query_closed_orders]\n"
        "- account: bob\n"
        "  permissions: [Funds permissions - Query, websocket]\n"
        "  nonce_window: 50\n"
        "  balances: {USD: 250}\n"
    )
    proc, info = await start_sim(tmp_path, "--keys", str(keys))
    try:
        observer, bob = info["keys"]
        assert observer["account"] == "trader" and bob["account"] == "bob"
        assert bob["permissions"] == ["query_funds", "websocket"] and bob["nonce_window"] == 50
        async with aiohttp.ClientSession() as session:
            watch = KrakenTestClient(
                session, info["rest"], observer["api_key"], observer["api_secret"]
            )
            assert (await watch.private("Balance")).result["ZUSD"] == "5000.0000"
            order = {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "price": "1000",
                "volume": "0.01",
            }
            assert (await watch.private("AddOrder", **order)).error == [
                "EGeneral:Permission denied"
            ]
            client = KrakenTestClient(session, info["rest"], bob["api_key"], bob["api_secret"])
            assert (await client.private("Balance")).result == {"ZUSD": "250.0000"}
    finally:
        status, _ = await stop_sim(proc, signal.SIGTERM)
    assert status == 0


async def test_sim_command_creates_the_keys_the_config_declares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "b2JzZXJ2ZXItc2VjcmV0LWZyb20tZW52"
    monkeypatch.setenv("SIM_OBSERVER_SECRET", secret)
    config = tmp_path / "keys-in-config.yaml"
    config.write_text(
        CONFIG + "  keys:\n"
        "    - account: trader\n"
        "      api_key: observer-key\n"
        "      api_secret_env: SIM_OBSERVER_SECRET\n"
        "      permissions: [query_funds]\n"
        "    - account: carol\n"
        "      balances: {EUR: 10}\n"
    )
    proc, info = await start_sim(tmp_path, "--config", str(config))
    try:
        observer, carol = info["keys"]
        assert observer["api_key"] == "observer-key" and observer["api_secret"] is None
        assert observer["permissions"] == ["query_funds"]
        assert carol["account"] == "carol" and carol["api_secret"]  # generated: printed
        async with aiohttp.ClientSession() as session:
            watch = KrakenTestClient(session, info["rest"], "observer-key", secret)
            assert (await watch.private("Balance")).result["ZUSD"] == "5000.0000"
            client = KrakenTestClient(session, info["rest"], carol["api_key"], carol["api_secret"])
            assert (await client.private("Balance")).result == {"ZEUR": "10.0000"}
    finally:
        status, _ = await stop_sim(proc, signal.SIGTERM)
    assert status == 0


async def test_sim_command_rejects_a_bad_keys_file(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(CONFIG)
    keys = tmp_path / "keys.yaml"
    keys.write_text("- account: trader\n  permissions: [trade_everything]\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sim", "--config", str(config), "--keys", str(keys),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and out == b""
    assert b"trade_everything" in err and b"entry 0" in err


async def test_sim_futures_serves_the_futures_simulator_from_the_config(tmp_path: Path) -> None:
    proc, info = await start_sim(tmp_path, "--futures", "--seed", "9")
    try:
        assert set(info) == {"venue", "rest", "ws", "admin", "api_key", "api_secret", "admin_token"}
        assert info["venue"] == "futures" and info["ws"].endswith("/ws/v1")
        async with FuturesRestClient(
            info["rest"],
            clock=SystemClock(),
            api_key=info["api_key"],
            api_secret=info["api_secret"],
        ) as client:
            accounts = await client.accounts()
            assert accounts.flex is not None and accounts.flex.balance_value == 5000  # sim.balances
            symbols = [i.symbol for i in await client.instruments()]
            assert symbols == ["PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD"]
    finally:
        status, _ = await stop_sim(proc, signal.SIGINT)
    assert status == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--keys", "keys.yaml"), b"--keys"),
        (("--source", "replay:capture.jsonl"), b"synthetic only"),
    ],
)
async def test_sim_futures_refuses_what_does_not_apply(
    tmp_path: Path, extra: tuple[str, ...], message: bytes
) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(CONFIG)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sim", "--config", str(config), "--futures", *extra,
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and out == b"" and message in err
