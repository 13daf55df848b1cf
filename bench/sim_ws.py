"""Simulator WebSocket benchmark: book frames per second to one subscriber, all verified.

How it measures. The simulator (``bot.sim.server.SimServer``, pump off) runs in this
process; the subscriber runs in a child process, so each has a core. The child connects to
``/v2`` with aiohttp's WebSocket client, subscribes to ``book`` (``BTC/USD``, depth 10)
and feeds every frame to ``bot.kraken.protocol.Parser`` and ``bot.market.book.Book``,
which verifies the CRC32 of every message.

The venue's pump steps the synthetic market every 50 ms, and one step of its random model
costs more than a book frame, so the pump is not what is measured: this process drives the
venue's exchange flat out instead, through ``venue.execute`` (the path the pump takes:
exchange call, bus, ``BookFanout``, the connection's writer), with small seeded market
actions on the 10 best levels of a side (amend a level's quantity, or cancel one level and
add another): 1-2 changed levels per Result, as a real BTC/USD feed mostly is. The producer
yields to the event loop every ``_YIELD_EVERY`` Results and waits while the connection has
more than ``MAX_BACKLOG`` frames queued, so nothing is dropped.

Each run is repeated and the best counts (the machine is shared and noisy).
Figures: ``frames_per_s`` is what the subscriber received and verified per second, from
its first update frame to its last (the sustained end-to-end rate); ``server_frames_per_s``
is how fast this process built and wrote them; ``server_cpu_us_per_frame`` is this
process's CPU time per frame, the exchange's share included (``server_capacity_frames_per_s``
is its inverse: the rate with a core to itself). ``checksum_mismatches`` must be 0 and the
subscriber's final book must equal the exchange's top 10 (``book_matches_exchange``).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

__all__ = ["run_sim_ws_bench"]

SYMBOL: Final = "BTC/USD"
DEPTH: Final = 10
MAX_BACKLOG: Final = 20_000
_YIELD_EVERY: Final = 256
_LEVELS: Final = 200
_ROOT: Final = Path(__file__).resolve().parents[1]

_CLIENT: Final = """
import asyncio, json, sys, time
import aiohttp
from bot.kraken.protocol import Parser
from bot.market.book import Book, BookFrame
from bot.sim.pairs import default_instruments

async def main(url, symbol, depth, expected):
    table = default_instruments((symbol,))
    parser = Parser(table)
    book = Book(table[symbol], depth)
    frames = mismatches = 0
    first = last = cpu = 0.0
    request = {"method": "subscribe", "req_id": 1,
               "params": {"channel": "book", "symbol": [symbol], "depth": depth}}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=0, autoping=True) as ws:
            await ws.send_str(json.dumps(request))
            print("subscribed", flush=True)
            receive = ws.receive
            parse = parser.parse
            apply = book.apply
            while frames < expected + 1:
                msg = await receive()
                for event in parse(msg.data):
                    if type(event) is BookFrame:
                        if apply(event) is not None:
                            mismatches += 1
                        frames += 1
                        if frames == 2:
                            first = time.perf_counter()
                            cpu = time.process_time()
            last = time.perf_counter()
            cpu = time.process_time() - cpu
    bids, asks = book.top(depth)
    print(json.dumps({"frames": frames, "mismatches": mismatches, "valid": book.valid,
                      "elapsed": last - first, "cpu": cpu, "bids": bids, "asks": asks}),
          flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


class _Driver:
    """Seeded market actions on the best levels of a book the driver built itself."""

    def __init__(self, tick: int, mid: int, lot: int, seed: int) -> None:
        from bot.sim.market_data import MarketAdd

        self.rng = random.Random(seed)
        self.mid = mid
        self.tick = tick
        self.lot = lot
        self.next_ref = 10**9
        self.sides: dict[str, list[tuple[int, int]]] = {"buy": [], "sell": []}  # (price, ref)
        self.seed_actions: list[Any] = []
        for i in range(1, _LEVELS + 1):
            gap = 2 * i * tick  # every other tick: moves have free prices to go to
            for side, price in (("buy", mid - gap), ("sell", mid + gap)):
                ref = self._ref()
                self.sides[side].append((price, ref))
                self.seed_actions.append(MarketAdd(SYMBOL, ref, side, price, self._qty()))

    def _ref(self) -> int:
        self.next_ref += 1
        return self.next_ref

    def _qty(self) -> int:
        return self.lot * self.rng.randint(1, 40)

    def actions(self) -> list[Any]:
        """One Result's worth: amend one of the 10 best levels of a side, or move one of
        them (cancel it, add a level at a free price near the top). Bids stay below
        the starting mid and asks above it, so nothing trades."""
        from bot.sim.market_data import MarketAdd, MarketAmend, MarketCancel

        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        levels = self.sides[side]
        i = rng.randrange(10)
        ref = levels[i][1]
        if rng.random() < 0.7:
            return [MarketAmend(SYMBOL, ref, self._qty())]
        del levels[i]
        taken = {p for p, _ in levels[:16]}
        step = -self.tick if side == "buy" else self.tick
        free = [p for p in (self.mid + step * k for k in range(1, 31)) if p not in taken]
        new_price = rng.choice(free)
        new_ref = self._ref()
        bisect.insort(levels, (new_price, new_ref), key=lambda level: step * level[0])
        return [MarketCancel(SYMBOL, ref), MarketAdd(SYMBOL, new_ref, side, new_price, self._qty())]


async def _until(done: Callable[[], bool], poll_s: float) -> None:
    """Yield to the event loop until ``done()`` (a condition no event signals)."""
    while not done():  # noqa: ASYNC110
        await asyncio.sleep(poll_s)


async def _bench(frames: int, seed: int) -> dict[str, Any]:
    from bot.sim.pairs import default_instruments
    from bot.sim.server import SimServer
    from bot.sim.venue import SimVenue
    from bot.sim.ws_common import WsSession
    from bot.sim.ws_public import public_hub

    venue = SimVenue(instruments=default_instruments((SYMBOL,)), seed=seed, market=None)
    inst = venue.instruments[SYMBOL]
    exchange = venue.exchange
    driver = _Driver(inst.price_increment, 650_000 * inst.price_increment, 10**5, seed)
    venue.execute(lambda: exchange.apply_market(driver.seed_actions, venue.now_ns()))
    server = await SimServer.start(venue, pump=False)
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    args = (server.ws_public_url, SYMBOL, str(DEPTH), str(frames))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CLIENT, *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None
        await asyncio.wait_for(child.stdout.readline(), 30)  # "subscribed"
        fanout = public_hub(venue).books
        await _until(lambda: fanout.stream(SYMBOL, DEPTH) is not None, 0.01)  # its subscribe
        session = next(c for c in venue.connections.values() if isinstance(c, WsSession))
        built0 = fanout.frames_built
        # Actions depend on the driver's own state only: make them before the clock starts.
        plan = [driver.actions() for _ in range(frames + frames // 10)]
        results = 0
        start = time.perf_counter()
        cpu = time.process_time()
        while fanout.frames_built - built0 < frames:
            actions = plan[results] if results < len(plan) else driver.actions()
            venue.execute(partial(exchange.apply_market, actions, venue.now_ns()))
            results += 1
            if results % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the connection's writer runs
                await _until(lambda: session.queued <= MAX_BACKLOG, 0)
        await _until(lambda: not session.queued, 0.001)
        server_elapsed = time.perf_counter() - start
        server_cpu = time.process_time() - cpu
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await server.close()
    report = json.loads(line)
    bids, asks = exchange.depth(SYMBOL, DEPTH)
    return {
        "symbol": SYMBOL,
        "depth": DEPTH,
        "frames": frames,
        "results": results,
        "frames_per_s": round((report["frames"] - 2) / report["elapsed"]),
        "server_frames_per_s": round(frames / server_elapsed),
        "server_cpu_us_per_frame": round(server_cpu / frames * 1e6, 2),
        "server_capacity_frames_per_s": round(frames / server_cpu),
        "client_cpu_us_per_frame": round(report["cpu"] / (report["frames"] - 2) * 1e6, 2),
        "checksum_mismatches": report["mismatches"],
        "book_valid": report["valid"],
        "book_matches_exchange": (
            [tuple(x) for x in report["bids"]] == bids
            and [tuple(x) for x in report["asks"]] == asks
        ),
        "target_frames_per_s": 50_000,
        "method": (
            "exchange driven flat out in-process through venue.execute; subscriber in a child "
            "process (aiohttp client + Parser + Book verifying every checksum) on 127.0.0.1"
        ),
    }


def run_sim_ws_bench(frames: int = 200_000, repeat: int = 3, seed: int = 7) -> dict[str, Any]:
    """Run the benchmark ``repeat`` times and return the figures of the best run (the
    machine is shared and noisy; the best run is the least disturbed), with every run's
    rate, and whether every run verified every checksum."""
    runs = [asyncio.run(_bench(frames, seed)) for _ in range(repeat)]
    best = max(runs, key=lambda run: run["frames_per_s"])
    best["runs_frames_per_s"] = [run["frames_per_s"] for run in runs]
    best["all_runs_verified"] = all(
        run["checksum_mismatches"] == 0 and run["book_matches_exchange"] for run in runs
    )
    return best


if __name__ == "__main__":
    print(json.dumps(run_sim_ws_bench(), indent=2))
