"""Scale benchmark: every pair on one daemon, book frames at an aggregate rate stepped up.

How it measures. This process serves Kraken's public WS v2 ``book`` channel for N symbols
(10, 100, 300: about every Kraken USD pair) on 127.0.0.1; each contender runs in a child
process (``bench.scale_daemon``), so server and contender each have a core:

- ``krakenbot``: one ``Feed`` per connection of ``bench.scale_plan.spread`` (at most 200
  symbols a connection), the books, the ``Desk`` and a do-nothing strategy on every symbol;
- ``floor``: the same connections read by the same WebSocket library and nothing else: what
  the transport, the scheduler and this machine cost on their own.

The server is a lean one, not ``bot.sim``: the frames are generated before each step by
``bench.book_stream`` (a deterministic depth-10 stream per symbol with correct checksums,
one to three changed levels a frame) and written as pre-built WebSocket frames, round-robin
over the symbols, paced to the step's aggregate rate: every ``_TICK_S`` the frames due are
written, one ``write`` per connection, each frame's ``timestamp`` replaced by the wall
clock at that write (``bench.scale_plan.stamp``). The simulator's synthetic market steps
every 50 ms and costs more per frame than a book frame does to consume, so it cannot pace
20,000 frames/s over 300 books on this machine; what is measured here is the daemon, and
the server's own CPU is reported so a step the server could not produce is visible.

Per step (N symbols, a rate, ``seconds`` long) the figures are the contender's: lag
p50/p99/max (the stamp to when the strategy's ``on_book`` ran, or the floor read the frame;
wall clock, both processes on one machine), frames seen against frames sent, checksum
failures, CPU (its share of a core and µs per frame), the share of the step it waited on a
run queue for a CPU another process held (``/proc/PID/schedstat``) and RSS (sampled every
``_RSS_EVERY_S``). A step keeps up when every frame was seen and lag p99 is under 10 ms; a
step that does not is run again, up to ``ATTEMPTS`` times (this machine is shared: the
least disturbed attempt is reported, with every attempt's p99), and the steps for one N
stop at the first that does not keep up. ``highest_kept_rate`` is per N and contender;
``target`` compares krakenbot on 300 symbols against the issue's target (10,000 frames/s,
p99 under 10 ms, memory flat: RSS at the end within ``RSS_FLAT_MB`` of the start).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

from aiohttp import WSMsgType, web

from bench.book_stream import BTC_USD, StreamSpec, generate_frames
from bench.scale_plan import (
    KEEPS_UP_P99_US,
    MAX_SYMBOLS_PER_CONNECTION,
    STAMP_LEN,
    highest_kept,
    instruments,
    spread,
    stamp,
)

__all__ = ["run_scale_bench"]

SYMBOL_COUNTS: Final = (10, 100, 300)
RATES: Final = (2_500, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000)  # past 20k: headroom
TARGET_RATE: Final = 10_000
TARGET_SYMBOLS: Final = 300
RSS_FLAT_MB: Final = 5.0  # RSS may move this much over a run and still count as flat
ATTEMPTS: Final = 3  # tries of a step that does not keep up (the machine is shared)
_TICK_S: Final = 0.0005
_MAX_WRITE: Final = 4_000  # frames per tick at most, if the server fell behind
_RSS_EVERY_S: Final = 0.1
_READY_S: Final = 120.0
_ROOT: Final = Path(__file__).resolve().parents[1]
_TS_KEY: Final = b'"timestamp":"'


def _ws_header(length: int) -> bytes:
    """An unmasked final text frame's header (server to client)."""
    if length < 126:
        return bytes((0x81, length))
    return bytes((0x81, 126)) + length.to_bytes(2, "big")


class _Streams:
    """Each symbol's frames: its snapshot, then updates split around the timestamp, as
    (WebSocket header + head, tail) pairs ready to write with a stamp between them."""

    def __init__(self, symbols: tuple[str, ...], seed: int) -> None:
        self.symbols = symbols
        self._gens = [
            generate_frames(
                StreamSpec(frames=10**9, seed=seed + i, instrument=BTC_USD, symbol_override=s)
            )
            for i, s in enumerate(symbols)
        ]
        self.snapshots = [next(gen) for gen in self._gens]
        self.updates: list[list[tuple[bytes, bytes]]] = [[] for _ in symbols]
        self.next = 0  # the next update frame of the round-robin, over all symbols

    def prepare(self, frames: int) -> None:
        """Generate what the next ``frames`` update frames need (outside the timed part)."""
        per_symbol = -(-(self.next + frames) // len(self.symbols))
        for gen, updates in zip(self._gens, self.updates, strict=True):
            updates.extend(_split(next(gen)) for _ in range(per_symbol - len(updates)))

    def release(self) -> None:
        """Drop the frames sent (the generators keep each book's state)."""
        done = self.next // len(self.symbols)
        for updates in self.updates:
            del updates[:done]
        self.next -= done * len(self.symbols)


def _split(frame: bytes) -> tuple[bytes, bytes]:
    at = frame.rindex(_TS_KEY) + len(_TS_KEY)
    head, tail = frame[:at], frame[at + STAMP_LEN :]
    return _ws_header(len(head) + STAMP_LEN + len(tail)) + head, tail


class _Server:
    """The lean book server: subscribe (acks and snapshots), ping, and ``stream``."""

    def __init__(self, streams: _Streams) -> None:
        self.streams = streams
        self.index = {symbol: i for i, symbol in enumerate(streams.symbols)}
        self.owner: list[asyncio.WriteTransport | None] = [None] * len(streams.symbols)
        self.connections = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v2", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/v2"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        self.connections += 1
        transport = request.transport
        assert transport is not None
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            request_ = json.loads(msg.data)
            now = stamp(time.time_ns())
            req_id = request_.get("req_id")
            if request_.get("method") == "ping":
                pong = {"method": "pong", "req_id": req_id, "time_in": now, "time_out": now}
                await ws.send_str(json.dumps(pong))
            elif request_.get("method") == "subscribe":
                params = request_["params"]
                for symbol in params["symbol"]:
                    result = {"channel": "book", "depth": params.get("depth", 10),
                              "snapshot": True, "symbol": symbol}  # fmt: skip
                    ack = {"method": "subscribe", "req_id": req_id, "result": result,
                           "success": True, "time_in": now, "time_out": now}  # fmt: skip
                    await ws.send_str(json.dumps(ack))
                    i = self.index[symbol]
                    await ws.send_str(self.streams.snapshots[i].decode())
                    self.owner[i] = transport
        return ws

    async def stream(self, frames: int, rate: float, sample: Callable[[], None]) -> float:
        """Write ``frames`` update frames at ``rate`` frames/s; returns the seconds taken."""
        streams, owner = self.streams, self.owner
        count = len(streams.symbols)
        updates = streams.updates
        first = streams.next
        sent = 0
        start = time.perf_counter()
        next_sample = start
        while sent < frames:
            await asyncio.sleep(_TICK_S)
            now = time.perf_counter()
            if now >= next_sample:
                sample()
                next_sample = now + _RSS_EVERY_S
            due = min(frames, int((now - start) * rate) + 1) - sent
            if due <= 0:
                continue
            due = min(due, _MAX_WRITE)
            mark = stamp(time.time_ns()).encode()
            parts: dict[asyncio.WriteTransport, list[bytes]] = {}
            for k in range(first + sent, first + sent + due):
                i = k % count
                head, tail = updates[i][k // count]
                transport = owner[i]
                assert transport is not None, streams.symbols[i]
                batch = parts.get(transport)
                if batch is None:
                    batch = parts[transport] = []
                batch += (head, mark, tail)
            for transport, batch in parts.items():
                transport.write(b"".join(batch))
            sent += due
        streams.next = first + sent
        return time.perf_counter() - start


def _proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_wait_s(pid: int) -> float:
    """Seconds process ``pid``'s main thread waited on a run queue for a CPU (Linux
    ``/proc/PID/schedstat``): time it was ready to run and another process had the core."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sample_rss(samples: list[float], pid: int) -> None:
    samples.append(_proc_rss_mb(pid))


def _kept(step: dict[str, Any]) -> bool:
    return bool(step["frames_seen"] == step["frames_sent"] and step["p99_us"] < KEEPS_UP_P99_US)


class _Steps:
    """Rate steps on one contender's process: stream, then ask it what it saw."""

    def __init__(self, server: _Server, child: asyncio.subprocess.Process) -> None:
        self.server, self.child = server, child
        self.sent = 0
        self.rss: list[float] = []
        self.books_valid = 0

    async def step(self, rate: int, frames: int) -> dict[str, Any]:
        server, child, pid = self.server, self.child, self.child.pid
        assert child.stdin is not None and child.stdout is not None
        server.streams.prepare(frames)
        step_rss: list[float] = []
        cpu0, wait0 = _proc_cpu_s(pid), _proc_wait_s(pid)
        wall0, own0 = time.perf_counter(), time.process_time()
        took = await server.stream(frames, rate, partial(_sample_rss, step_rss, pid))
        server_cpu = time.process_time() - own0
        self.sent += frames
        child.stdin.write(f"mark {self.sent}\n".encode())
        report = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
        wall = time.perf_counter() - wall0
        cpu, waited = _proc_cpu_s(pid) - cpu0, _proc_wait_s(pid) - wait0
        step_rss.append(_proc_rss_mb(pid))
        self.rss.extend(step_rss)
        self.books_valid = report["books_valid"]
        server.streams.release()
        return {
            "rate_asked": rate,
            "rate": round(frames / took),
            "frames_sent": frames,
            "frames_seen": report["frames_seen"] - (self.sent - frames),
            "p50_us": report["p50_us"],
            "p99_us": report["p99_us"],
            "max_us": report["max_us"],
            "checksum_failures": report["checksum_failures"],
            "cpu_pct": round(100 * cpu / wall, 1),
            "cpu_us_per_frame": round(cpu / frames * 1e6, 1),
            "runqueue_wait_pct": round(100 * waited / wall, 1),
            "server_cpu_pct": round(100 * server_cpu / took, 1),
            "rss_mb": round(max(step_rss), 1),
        }


async def _run_symbols(
    contender: str,
    count: int,
    rates: tuple[int, ...],
    *,
    seconds: float,
    seed: int,
    per_connection: int,
) -> dict[str, Any]:
    """Every rate step for ``count`` symbols on one process of ``contender``."""
    symbols = tuple(inst.symbol for inst in instruments(count, BTC_USD))
    streams = _Streams(symbols, seed)
    server = _Server(streams)
    await server.start()
    capacity = ATTEMPTS * sum(int(rate * seconds) for rate in rates)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.scale_daemon", contender,
        server.url, str(count), str(capacity), str(per_connection),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=_ROOT,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    steps: list[dict[str, Any]] = []
    steps_run = _Steps(server, child)
    try:
        ready = (await asyncio.wait_for(child.stdout.readline(), _READY_S)).decode().strip()
        if ready != "ready":
            raise RuntimeError(f"scale {contender} for {count} symbols: {ready or 'exited'}")
        child.stdin.write(b"reset\n")
        for rate in rates:
            attempts = []
            for _ in range(ATTEMPTS):  # a step disturbed by the shared machine runs again
                attempts.append(await steps_run.step(rate, int(rate * seconds)))
                if _kept(attempts[-1]):
                    break
            best = min(attempts, key=lambda step: (not _kept(step), step["p99_us"]))
            steps.append({**best, "attempts_p99_us": [step["p99_us"] for step in attempts]})
            if not _kept(best):
                break  # higher rates will not keep up either
        child.stdin.write(b"quit\n")
        await asyncio.wait_for(child.wait(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await server.close()
    return {
        "contender": contender,
        "symbols": count,
        "connections": len(spread(symbols, per_connection)),
        "server_connections": server.connections,
        "books_valid": steps_run.books_valid,
        "steps": steps,
        "highest_kept_rate": highest_kept(steps),
        "rss_first_mb": round(steps_run.rss[0], 1) if steps_run.rss else 0.0,
        "rss_last_mb": round(steps_run.rss[-1], 1) if steps_run.rss else 0.0,
        "rss_max_mb": round(max(steps_run.rss), 1) if steps_run.rss else 0.0,
    }


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _ratios(floor: dict[str, Any], bot: dict[str, Any]) -> dict[str, Any]:
    """krakenbot's lag p99 over the floor's, at each rate both ran."""
    floors = {step["rate_asked"]: step for step in floor["steps"]}
    return {
        str(step["rate_asked"]): round(step["p99_us"] / max(1, floors[rate]["p99_us"]), 2)
        for step in bot["steps"]
        if (rate := step["rate_asked"]) in floors
    }


def run_scale_bench(
    symbol_counts: tuple[int, ...] = SYMBOL_COUNTS,
    rates: tuple[int, ...] = RATES,
    seconds: float = 2.0,
    seed: int = 11,
    per_connection: int = MAX_SYMBOLS_PER_CONNECTION,
) -> dict[str, Any]:
    """Run every symbol count through the rate steps, the floor then krakenbot; the
    figures, and the target's verdict for ``TARGET_SYMBOLS`` symbols when that count was
    run. ``per_connection`` caps the symbols on one connection (Kraken's documented 200;
    lower only to test the spread)."""
    machine = _machine()
    options: dict[str, Any] = {"seconds": seconds, "seed": seed, "per_connection": per_connection}
    runs: list[dict[str, Any]] = []
    for count in symbol_counts:
        both = {
            contender: asyncio.run(_run_symbols(contender, count, rates, **options))
            for contender in ("floor", "krakenbot")
        }
        runs.append({
            "symbols": count,
            **both,
            "p99_ratio_to_floor": _ratios(both["floor"], both["krakenbot"]),
        })  # fmt: skip
    result: dict[str, Any] = {"machine": machine, "seconds_per_step": seconds, "runs": runs}
    for run in runs:
        bot = run["krakenbot"]
        if run["symbols"] == TARGET_SYMBOLS:
            flat = bot["rss_last_mb"] - bot["rss_first_mb"] <= RSS_FLAT_MB
            result["target"] = {
                "symbols": TARGET_SYMBOLS,
                "rate": TARGET_RATE,
                "p99_under_us": KEEPS_UP_P99_US,
                "highest_kept_rate": bot["highest_kept_rate"],
                "floor_highest_kept_rate": run["floor"]["highest_kept_rate"],
                "memory_flat": flat,
                "met": bot["highest_kept_rate"] >= TARGET_RATE and flat,
            }
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


if __name__ == "__main__":
    print(json.dumps(run_scale_bench(), indent=2))
