"""Tick-to-trade on loopback against the simulator: book frame in → AddOrder (or amend) written.

How it measures. The simulator (``SimServer``, a ``SimVenue`` with its own pump off) runs in
this process; a driver changes one of the 10 best ``BTC/USD`` levels at a steady
``rate_hz`` (absolute schedule, no bursts), so each depth-10 subscriber gets one small
book update every few milliseconds. Each contender waits for its order's answer before it
reads on. For the krakenbot contenders that answer is the daemon's whole round: the
simulator's (about 1 ms, its executions reports included), then the reports and the reply
handled as the daemon handles them (order rows, log lines): 2 to 3 ms at p50 on this
machine, more in its tail. The default 150 Hz (6.7 ms) leaves room for it, so latency is
measured, not queueing: ``frame_age_at_recv`` records it, and ``targets.valid`` is false
when more than ``_MAX_QUEUED_PCT`` of any contender's frames arrived later than one
interval after they were sent. The client runs
in a child process (``python -m bench.tick --client``) with its own event loop and core,
and plays the contenders over the same socket path in blocks of ``block`` frames, in an
order that rotates every round, after a warm-up round; one fresh subscription per block,
its first ``warmup`` frames not counted:

- ``floor`` (``bench.tick_floor``): websockets receive → a pre-built, pre-signed AddOrder
  POSTed with aiohttp at once; nothing else. ``floor_raw``: the same requests written to a
  kept-alive socket with no HTTP library (what the HTTP client costs).
- ``krakenbot``: the daemon's own pipeline (``bench.tick_daemon.DaemonPath``): the feed's
  ``frames.parse_into`` (JSON decoded straight into the ``Book``, CRC32 verified),
  ``Desk.mark`` and ``Book.view``, ``StrategyRunner.book`` running a strategy that places
  one post-only buy 5 % under the best bid on every frame, the desk's ``EngineContext``
  (intent checks, ``RiskGate.check`` with every limit set in the bot and strategy scopes,
  the send started eagerly), a running ``ExecutionEngine`` on a real SQLite store (id
  block, order index; the order's row follows the request), ``KrakenRestClient.add_order``
  (counters, lock, nonce, form encoding, HMAC-SHA512 ``API-Sign``) and the client's
  dedicated kept-alive HTTP/1.1 connection (``bot.net.http1``): the daemon's defaults.
- ``krakenbot_aiohttp``: the same, with ``dedicated=False``: the request goes through
  aiohttp's ``ClientSession.post`` as the floor's does (what the dedicated connection saves).
- ``krakenbot_ws``: the same pipeline with ``venue.order_entry: websocket``: the order goes
  as an ``add_order`` on the executions connection (``bot.execution.venue_ws``); its
  ``sign`` stage is the WebSocket order entry, ``send`` the frame's encoding, and
  ``written`` is taken just before websockets' ``send``.
- ``krakenbot_ws_amend``: the ``krakenbot_ws`` pipeline with a strategy that amends
  instead (``EveryFrameAmender``), as a market maker requotes: one post-only buy rests at
  95 % of the best bid, placed on each block's snapshot, and every other frame amends its
  price in place (``ctx.amend``: the pre-trade stage with ``RiskGate.check``, the
  engine's ``amend``, an ``amend_order`` frame on the executions connection), to a price
  that always differs from its own. Only the ticks that wrote an amend are samples;
  ``written`` is taken when the ``amend_order`` frame is built, as for ``add_order``.
- ``floor_ws`` (``bench.tick_floor_ws``): websockets receive → a pre-built ``add_order``
  frame sent at once on a private connection: the limit of the WebSocket order path.
  ``ws_targets`` holds issue 14's targets for ``krakenbot_ws`` against ``floor``; ``amend``
  holds ``krakenbot_ws_amend``'s p50, p99 and p99.9 over ``floor``'s and its p50 over
  ``krakenbot_ws``'s (an amend against a place on the same path).
- ``machine`` (``bench.tick_machine``), the control: websockets receive → a fixed loop of
  integer arithmetic about as long as ``krakenbot_ws``'s decision, no order. Its spread is
  the machine's alone; ``ws_targets`` gives its p99.9 ÷ p99 beside ``krakenbot_ws``'s.

The clients' rate counters have limits too high to ever wait; the simulator's are off.
Every contender sends real orders: each is accepted and rests (post-only, far from the
touch), and a ``CancelAll`` per account after each block (untimed) clears them; its count
must equal the orders placed (for ``krakenbot_ws_amend``, its one quote per block: its
``orders_placed`` counts the block's places, and ``amends`` the amends sent, acknowledged
and refused). Timestamps and the exact points they are taken at are in
``bench.tick_floor``'s and ``bench.tick_daemon``'s docstrings; the krakenbot stages are
``parse``, ``book``, ``strategy``, ``risk``, ``engine``, ``sign`` and ``send``, the
floor's ``post`` and ``send``.

``store_save_order_fsync`` reports what a durable (fsynced) ``Store.save_order`` costs
alone: the save the order path had before id blocks took it off (``bot.execution.ids``).
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any, Final, Protocol

import aiohttp

from bench.tick_daemon import DaemonPath
from bench.tick_floor import (
    GC_RUNS,
    SYMBOL,
    FloorRequests,
    Probe,
    RawHttp,
    Samples,
    TimedSession,
    percentiles,
    run_floor_block,
    run_raw_block,
)
from bench.tick_floor_ws import WsFloor
from bench.tick_machine import MachineControl
from bot.core import gc_ticks
from bot.core.clock import SystemClock
from bot.core.log import configure_logging
from bot.execution.orders import new_cl_ord_id, new_order
from bot.kraken.nonce import NonceGenerator
from bot.kraken.ratelimit import CounterLimits, RestCounter, Tier, TradingCounter
from bot.kraken.rest import KrakenRestClient

__all__ = ["run_tick_bench"]

_ROOT: Final = Path(__file__).resolve().parents[1]
_NOW = time.perf_counter_ns
_START_MID: Final = 650_000  # ticks of 0.1: 65,000.0
_LEVELS: Final = 60
_TARGET_ADDED_P50_US: Final = 50.0
_TARGET_P99_RATIO: Final = 1.5
_MAX_QUEUED_PCT: Final = 5.0  # frames older than one interval on arrival: queueing, not latency
_UNLIMITED: Final = CounterLimits(1e15, 1e15)
_ACCOUNTS: Final = (  # one API key each
    "floor", "krakenbot", "krakenbot_aiohttp", "floor_ws", "krakenbot_ws", "krakenbot_ws_amend",
)  # fmt: skip
_WS_TARGETS: Final = {"p50_ratio_max": 0.35, "p99_ratio_max": 0.5, "p99_9_over_p99_max": 1.3}
"""Issue 14's targets for krakenbot over the WebSocket order path, against the aiohttp
floor of the same run (and its own p99 for the tail)."""


# ============================================================== the simulator's side


class _Driver:
    """Seeded market actions on the 10 best levels of a book this driver laid out."""

    def __init__(self, tick: int, lot: int, seed: int) -> None:
        from bot.sim.market_data import MarketAdd

        self.rng = random.Random(seed)
        self.tick, self.lot, self.mid = tick, lot, _START_MID * tick
        self.next_ref = 10**9
        self.sides: dict[str, list[tuple[int, int]]] = {"buy": [], "sell": []}  # price, ref
        self.seed_actions: list[Any] = []
        for i in range(1, _LEVELS + 1):
            for side, price in (
                ("buy", self.mid - 2 * i * tick),
                ("sell", self.mid + 2 * i * tick),
            ):
                ref = self._ref()
                self.sides[side].append((price, ref))
                self.seed_actions.append(MarketAdd(SYMBOL, ref, side, price, self._qty()))

    def _ref(self) -> int:
        self.next_ref += 1
        return self.next_ref

    def _qty(self) -> int:
        return self.lot * self.rng.randint(1, 40)

    def actions(self) -> list[Any]:
        """Resize one of a side's 10 best levels (3 in 4), else move it to a free price near
        the top. Bids stay under the start mid and asks over it: nothing ever trades."""
        from bot.sim.market_data import MarketAdd, MarketAmend, MarketCancel

        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        levels = self.sides[side]
        i = rng.randrange(10)
        ref = levels[i][1]
        if rng.random() < 0.75:
            return [MarketAmend(SYMBOL, ref, self._qty())]
        del levels[i]
        step = -self.tick if side == "buy" else self.tick
        taken = {p for p, _ in levels[:12]}
        price = rng.choice(
            [p for p in (self.mid + step * k for k in range(1, 25)) if p not in taken]
        )
        new_ref = self._ref()
        bisect.insort(levels, (price, new_ref), key=lambda level: step * level[0])
        return [MarketCancel(SYMBOL, ref), MarketAdd(SYMBOL, new_ref, side, price, self._qty())]


async def _pace(venue: Any, driver: _Driver, rate_hz: float, emitted: list[int]) -> None:
    """One market change every ``1/rate_hz`` s on an absolute schedule, until cancelled."""
    loop = asyncio.get_running_loop()
    exchange, interval = venue.exchange, 1.0 / rate_hz
    due = loop.time()
    while True:
        due += interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -10 * interval:
            due = loop.time()  # fell far behind (a stall): start again, do not burst
        venue.execute(partial(exchange.apply_market, driver.actions(), venue.now_ns()))
        emitted[0] += 1


async def _bench(config: dict[str, Any], rate_hz: float, seed: int, pin: bool) -> dict[str, Any]:
    from bot.sim.pairs import default_instruments
    from bot.sim.server import SimServer
    from bot.sim.venue import SimVenue

    venue = SimVenue(
        instruments=default_instruments((SYMBOL,)),
        seed=seed,
        market=None,
        rate_limits=False,
        open_orders_limit=10**6,
    )
    funds = {"USD": Decimal(10**9), "BTC": Decimal(1000)}
    accounts = {name: venue.add_account(name, funds) for name in _ACCOUNTS}
    inst = venue.instruments[SYMBOL]
    driver = _Driver(inst.price_increment, inst.qty_min, seed)
    venue.execute(lambda: venue.exchange.apply_market(driver.seed_actions, venue.now_ns()))
    server = await SimServer.start(venue, pump=False)
    config = {
        **config,
        "rest_url": server.rest_url,
        "ws_url": server.ws_public_url,
        "ws_private_url": server.ws_private_url,
        "keys": {n: [c.api_key, c.api_secret] for n, c in accounts.items()},
        "floor_price": inst.price_text(driver.mid * 95 // 100),
        "pin_cpu": 1 if pin else None,
    }
    affinity = os.sched_getaffinity(0) if pin else None
    if affinity is not None:
        os.sched_setaffinity(0, {0})
    emitted = [0]
    started, cpu = time.perf_counter(), time.process_time()
    try:
        async with asyncio.TaskGroup() as tg:
            pacer = tg.create_task(_pace(venue, driver, rate_hz, emitted))
            try:
                result = await _run_client(config)
            finally:
                pacer.cancel()
        resting = {n: len(venue.exchange.open_orders(c.account)) for n, c in accounts.items()}
    finally:
        await server.close()
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    elapsed = time.perf_counter() - started
    result["sim"] = {
        "frames_emitted": emitted[0],
        "rate_hz": round(emitted[0] / elapsed, 1),
        "cpu_share": round((time.process_time() - cpu) / elapsed, 2),
        "resting_after": resting,
    }
    return result


async def _run_client(config: Mapping[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(_ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.tick",
        "--client",
        json.dumps(config),
        cwd=_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"tick bench client failed: {err.decode(errors='replace')[-1500:]}")
    result: dict[str, Any] = json.loads(out)
    return result


# ============================================================== the client's side


class _Contender(Protocol):
    name: str
    stages: tuple[str, ...]

    def prepare(self, n: int) -> None: ...
    async def block(self, ws_url: str, samples: Samples, frames: int, warmup: int) -> None: ...
    async def cancel_all(self) -> int: ...


class _Floor:
    name = "floor"
    stages: tuple[str, ...] = ("post", "send")

    def __init__(self, config: Mapping[str, Any], session: TimedSession, probe: Probe) -> None:
        key, secret = config["keys"]["floor"]
        self.nonces = NonceGenerator(SystemClock())
        self.requests = FloorRequests(key, secret, self.nonces, config["floor_price"], "0.00010000")
        self.rest = KrakenRestClient(
            config["rest_url"],
            clock=SystemClock(),
            api_key=key,
            api_secret=secret,
            session=session.session,
            nonces=self.nonces,
            rest_counter=RestCounter(Tier.PRO, limits=_UNLIMITED),
            trading_counter=TradingCounter(Tier.PRO, limits=_UNLIMITED),
        )
        self.rest_url, self.session, self.probe = config["rest_url"], session, probe
        self.ready: Iterator[tuple[bytes, dict[str, str]]] = iter(())

    def prepare(self, n: int) -> None:
        self.ready = self.requests.build(n)

    async def block(self, ws_url: str, samples: Samples, frames: int, warmup: int) -> None:
        await run_floor_block(
            ws_url, self.rest_url, self.session, self.probe, self.ready,
            samples=samples, frames=frames, warmup=warmup,
        )  # fmt: skip

    async def cancel_all(self) -> int:
        return int((await self.rest.cancel_all())["count"])


class _RawFloor:
    """The floor's requests written straight to a kept-alive socket (no HTTP library)."""

    name = "floor_raw"
    stages: tuple[str, ...] = ("write_syscall",)

    def __init__(self, floor: _Floor, conn: RawHttp, host: str) -> None:
        self.floor, self.conn, self.host = floor, conn, host
        self.ready: Iterator[bytes] = iter(())

    def prepare(self, n: int) -> None:
        self.ready = self.floor.requests.build_raw(n, self.host)

    async def block(self, ws_url: str, samples: Samples, frames: int, warmup: int) -> None:
        await run_raw_block(ws_url, self.conn, self.ready, samples, frames=frames, warmup=warmup)

    async def cancel_all(self) -> int:
        return await self.floor.cancel_all()


def _store_save_ns(n: int, *, sync: bool = True) -> list[int]:
    """What ``Store.save_order`` of a new PENDING_NEW order costs, fsynced or not (the row
    the engine now writes after the request), timed alone on a fresh database file."""
    from bot.sim.pairs import default_instruments
    from bot.store import Store

    inst = default_instruments((SYMBOL,))[SYMBOL]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.sqlite")
        try:
            for _ in range(n):
                order = new_order(
                    cl_ord_id=new_cl_ord_id(), instrument=inst, side="buy", order_type="limit",
                    qty=10_000, price=617_500, strategy="tick", now_ns=time.time_ns(),
                    post_only=True,
                )  # fmt: skip
                t0 = _NOW()
                store.save_order(order, sync=sync)
                times.append(_NOW() - t0)
        finally:
            store.close()
    return times


def _gc_collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


async def _client(config: Mapping[str, Any]) -> dict[str, Any]:
    if config.get("pin_cpu") is not None:
        os.sched_setaffinity(0, {int(config["pin_cpu"])})
    probe = Probe()
    frames, block, warmup = config["frames"], config["block"], config["warmup"]
    host, port = config["rest_url"].removeprefix("http://").rsplit(":", 1)
    conn = await RawHttp.open(host, int(port))
    async with aiohttp.ClientSession(trace_configs=[probe.trace_config()]) as raw_session:
        session = TimedSession(raw_session, probe)
        floor, bot = _Floor(config, session, probe), DaemonPath(config, session, probe)
        via_aiohttp = DaemonPath(
            config, session, probe, dedicated=False, account="krakenbot_aiohttp"
        )
        over_ws = DaemonPath(
            config, session, probe, account="krakenbot_ws", order_entry="websocket"
        )
        amend_ws = DaemonPath(
            config, session, probe, account="krakenbot_ws_amend", order_entry="websocket",
            amend=True,
        )  # fmt: skip
        floor_ws = WsFloor(config, raw_session)
        await bot.start()
        await via_aiohttp.start()
        await over_ws.start()
        await amend_ws.start()
        await floor_ws.start()
        contenders: list[_Contender] = [
            floor,
            bot,
            via_aiohttp,
            _RawFloor(floor, conn, f"{host}:{port}"),
            over_ws,
            amend_ws,
            floor_ws,
            MachineControl(),
        ]
        gc.collect()
        gc.freeze()  # as the daemon does once wired (bot.service.wiring.freeze_startup_heap)
        frozen = gc.get_freeze_count()
        if config.get("gc_between_ticks", True):
            gc_ticks.install()  # so does the daemon: collections after the ticks' writes
        gc.callbacks.append(GC_RUNS)  # krakenbot's samples count the runs inside them
        samples = {c.name: Samples(c.stages) for c in contenders}
        cancelled = dict.fromkeys(samples, 0)
        rounds = math.ceil(frames / block)
        for r in range(-1, rounds):  # round -1 warms every one up and is not recorded
            n = block if r < 0 else min(block, frames - r * block)
            k = r % len(contenders)  # each contender takes each place in the order in turn
            for contender in contenders[k:] + contenders[:k]:
                sink = samples[contender.name] if r >= 0 else Samples(contender.stages)
                contender.prepare(n + warmup)  # untimed: the floors sign their requests here
                gc.collect()
                collections = _gc_collections()
                await contender.block(config["ws_url"], sink, n, warmup)
                sink.gc_collections += _gc_collections() - collections
                count = await contender.cancel_all()
                if r >= 0:
                    cancelled[contender.name] += count
                    sink.rounds.append(len(sink.values["total"]))
        paths = (bot, via_aiohttp, over_ws, amend_ws)
        for path in paths:
            await path.stop()  # while the session is open: each disarms its switch
    conn.close()
    await floor_ws.stop()
    return {
        "samples": {name: s.as_dict() for name, s in samples.items()},
        "cancelled": cancelled,
        "risk_rejected": sum(p.risk.rejected for p in paths),
        "checksum_mismatches": sum(p.mismatches for p in paths),
        "strategy_errors": sum(p.runner.errors for p in paths),
        "connects": bot.rest.connection.connects if bot.rest.connection else 0,
        "heap_frozen": frozen,
        "store_save_ns": _store_save_ns(min(frames, 500)),
        "store_save_unsynced_ns": _store_save_ns(min(frames, 500), sync=False),
    }


# ============================================================== the report


def _contender(raw: Mapping[str, Any], interval_ns: float) -> dict[str, Any]:
    values: dict[str, list[int]] = raw["values"]
    ages: list[int] = raw["ages"]
    late = sum(age > interval_ns for age in ages)
    stages = [name for name in values if name != "total"]
    pcts = {name: percentiles(values[name]) for name in stages}
    return {
        "samples": len(values["total"]),
        **percentiles(values["total"]),
        "stages_p50_us": {name: pcts[name].get("p50_us") for name in stages},
        "stages_p99_us": {name: pcts[name].get("p99_us") for name in stages},
        "orders_placed": raw["placed"],
        "orders_refused": raw["refused"],
        "gc_collections": raw["gc_collections"],
        "gc_in_tick": raw.get("gc_in_tick", 0),
        "frame_age_at_recv": {
            **{k: v for k, v in percentiles(ages).items() if k in ("p50_us", "p99_us")},
            "older_than_frame_interval_pct": round(100 * late / max(len(ages), 1), 1),
        },
        **_after_write(raw.get("after", [])),
        **({"amends": raw["amends"]} if raw.get("amends") is not None else {}),
    }


def _after_write(after: list[int]) -> dict[str, Any]:
    """A daemon contender's work after the write (see ``Samples.after``), when measured."""
    if not after:
        return {}
    pcts = percentiles(after)
    return {"after_write_us": {k: pcts[k] for k in ("p50_us", "p99_us") if k in pcts}}


def _versus(bot: Mapping[str, Any], floor: Mapping[str, Any]) -> dict[str, Any]:
    """How much a pipeline contender adds to a floor contender of the same run."""
    stages, fstages = bot["stages_p50_us"], floor["stages_p50_us"]
    return {
        "added_p50_us": round(bot["p50_us"] - floor["p50_us"], 1),
        "added_p99_us": round(bot["p99_us"] - floor["p99_us"], 1),
        "added_p99_9_us": round(bot["p99_9_us"] - floor["p99_9_us"], 1),
        "p50_ratio": round(bot["p50_us"] / floor["p50_us"], 2),
        "p99_ratio": round(bot["p99_us"] / floor["p99_us"], 2),
        "p99_9_ratio": round(bot["p99_9_us"] / floor["p99_9_us"], 2),
        "pipeline_p50_by_stage_us": {
            "parse+book": round(stages["parse"] + stages["book"], 1),
            "strategy+risk": round(stages["strategy"] + stages["risk"], 1),
            "engine": round(stages["engine"], 1),
            "rest_client": round(stages["sign"], 1),
            "http_send": round(stages["send"], 1),
        },
        "floor_p50_by_stage_us": dict(fstages),
    }


def _ws_targets(
    over_ws: Mapping[str, Any],
    floor: Mapping[str, Any],
    over_rest: Mapping[str, Any],
    machine: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Issue 14's targets for the WebSocket order path, from one run's figures, with the
    control's p99.9 ÷ p99 beside the tail's (``bench.tick_machine``): what a fixed piece of
    work of about the decision's length got from the machine in the same run."""
    p50 = over_ws["p50_us"] / floor["p50_us"]
    p99 = over_ws["p99_us"] / floor["p99_us"]
    tail = over_ws["p99_9_us"] / over_ws["p99_us"]
    control: dict[str, Any] = {}
    if machine and machine["samples"]:
        control = {
            "machine_p50_us": machine["p50_us"],
            "machine_p99_9_over_p99": round(machine["p99_9_us"] / machine["p99_us"], 2),
        }
    return {
        **_WS_TARGETS,
        "p50_ratio": round(p50, 2),
        "p50_ratio_met": p50 <= _WS_TARGETS["p50_ratio_max"],
        "p99_ratio": round(p99, 2),
        "p99_ratio_met": p99 <= _WS_TARGETS["p99_ratio_max"],
        "p99_9_over_p99": round(tail, 2),
        "p99_9_over_p99_met": tail <= _WS_TARGETS["p99_9_over_p99_max"],
        "vs_rest_path_p50_ratio": round(over_ws["p50_us"] / over_rest["p50_us"], 2),
        **control,
    }


def _by_round(bot: Mapping[str, Any], floor: Mapping[str, Any]) -> dict[str, Any]:
    """The p50 and p99 ratios of ``bot`` over ``floor`` in each round of the run (the two
    blocks they took in the same round, ``Samples.rounds``), as the least, the median and
    the largest, with the rounds that met the target: how far the run's one figure moves
    from one part of the run to the next. A round where either took no sample is left out."""
    ratios: dict[str, list[float]] = {"p50": [], "p99": []}
    start_bot = start_floor = 0
    for end_bot, end_floor in zip(bot["rounds"], floor["rounds"], strict=True):
        mine = percentiles(bot["values"]["total"][start_bot:end_bot])
        theirs = percentiles(floor["values"]["total"][start_floor:end_floor])
        start_bot, start_floor = end_bot, end_floor
        if mine and theirs:
            for q, found in ratios.items():
                found.append(mine[f"{q}_us"] / theirs[f"{q}_us"])
    return {
        f"{q}_ratio": _spread(found, _WS_TARGETS[f"{q}_ratio_max"]) for q, found in ratios.items()
    }


def _spread(ratios: list[float], target: float) -> dict[str, Any]:
    """``_by_round``'s figures of one ratio: how many rounds, how many at or under
    ``target``, and the least, the median and the largest (none without a round)."""
    out: dict[str, Any] = {"rounds": len(ratios), "met": sum(r <= target for r in ratios)}
    if ratios:
        least, middle, most = min(ratios), median(ratios), max(ratios)
        out.update(min=round(least, 2), median=round(middle, 2), max=round(most, 2))
    return out


def _amend(
    amend: Mapping[str, Any], floor: Mapping[str, Any], over_ws: Mapping[str, Any]
) -> dict[str, Any]:
    """The amend contender against the aiohttp floor of the same run, and its p50 over
    ``krakenbot_ws``'s (an amend in place against a new order, on the same path)."""
    return {
        "p50_ratio": round(amend["p50_us"] / floor["p50_us"], 2),
        "p99_ratio": round(amend["p99_us"] / floor["p99_us"], 2),
        "p99_9_ratio": round(amend["p99_9_us"] / floor["p99_9_us"], 2),
        "over_place_p50_ratio": round(amend["p50_us"] / over_ws["p50_us"], 2),
        "over_place_added_p50_us": round(amend["p50_us"] - over_ws["p50_us"], 1),
    }


def _report(result: dict[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    interval_ns = 1e9 / config["rate_hz"]
    out = {name: _contender(raw, interval_ns) for name, raw in result["samples"].items()}
    floor, bot, raw = out["floor"], out["krakenbot"], out["floor_raw"]
    if floor["samples"] and bot["samples"] and raw["samples"]:
        out["vs_floor"] = _versus(bot, floor)
        added, ratio = out["vs_floor"]["added_p50_us"], out["vs_floor"]["p99_ratio"]
        # The stricter floor: the same frames into a raw kept-alive socket (what the
        # dedicated connection does at the end of the pipeline), with nothing in between.
        out["vs_floor_raw"] = _versus(bot, raw)
        via_aiohttp = out.get("krakenbot_aiohttp")
        if via_aiohttp and via_aiohttp["samples"]:
            out["krakenbot_aiohttp_vs_floor"] = _versus(via_aiohttp, floor)
        over_ws, floor_ws = out.get("krakenbot_ws"), out.get("floor_ws")
        if over_ws and over_ws["samples"]:
            out["krakenbot_ws_vs_floor"] = _versus(over_ws, floor)
            out["ws_targets"] = _ws_targets(over_ws, floor, bot, out.get("machine"))
            samples = result["samples"]
            out["ws_targets"]["by_round"] = _by_round(samples["krakenbot_ws"], samples["floor"])
            amend = out.get("krakenbot_ws_amend")
            if amend and amend["samples"]:
                out["amend"] = _amend(amend, floor, over_ws)
        if over_ws and floor_ws and over_ws["samples"] and floor_ws["samples"]:
            out["krakenbot_ws_vs_floor_ws"] = {
                "added_p50_us": round(over_ws["p50_us"] - floor_ws["p50_us"], 1),
                "added_p99_us": round(over_ws["p99_us"] - floor_ws["p99_us"], 1),
                "p50_ratio": round(over_ws["p50_us"] / floor_ws["p50_us"], 2),
                "p99_ratio": round(over_ws["p99_us"] / floor_ws["p99_us"], 2),
            }
        stages, fstages = bot["stages_p50_us"], floor["stages_p50_us"]
        http = stages["sign"] + stages["send"]
        queued = {
            name: c["frame_age_at_recv"]["older_than_frame_interval_pct"]
            for name, c in out.items()
            if name in result["samples"]
        }
        out["targets"] = {
            "added_p50_max_us": _TARGET_ADDED_P50_US,
            "added_p50_met": added <= _TARGET_ADDED_P50_US,
            "p99_ratio_max": _TARGET_P99_RATIO,
            "p99_ratio_met": ratio <= _TARGET_P99_RATIO,
            "queued_pct": queued,
            "queued_max_pct": _MAX_QUEUED_PCT,
            "valid": max(queued.values()) <= _MAX_QUEUED_PCT,
        }
        out["http_client"] = {
            "krakenbot_sign_plus_send_p50_us": round(http, 1),
            "share_of_krakenbot_p50": round(http / bot["p50_us"], 2),
            "dominates_krakenbot": http > bot["p50_us"] / 2,
            "aiohttp_post_to_write_p50_us": fstages["send"],
            "share_of_floor_p50": round(fstages["send"] / floor["p50_us"], 2),
            "raw_socket_floor_p50_us": raw["p50_us"],
            "aiohttp_over_raw_socket_p50_us": round(floor["p50_us"] - raw["p50_us"], 1),
            "aiohttp_over_raw_socket_p99_us": round(floor["p99_us"] - raw["p99_us"], 1),
        }
    unsynced = result.get("store_save_unsynced_ns") or []
    if unsynced:
        out["store_save_order_unsynced"] = {
            k: v for k, v in percentiles(unsynced).items() if k in ("p50_us", "p99_us")
        }
    store = result.get("store_save_ns") or []
    if store:
        out["store_save_order_fsync"] = {
            k: v for k, v in percentiles(store).items() if k in ("p50_us", "p99_us")
        }
    out["checks"] = {
        "checksum_mismatches": result["checksum_mismatches"],
        "risk_rejected": result["risk_rejected"],
        "strategy_errors": result["strategy_errors"],
        "cancel_all_counts": result["cancelled"],
        "dedicated_connects": result.get("connects"),
        "resting_after": result["sim"]["resting_after"],
    }
    out["run"] = {
        "frames_per_contender": config["frames"],
        "block": config["block"],
        "warmup_per_block": config["warmup"],
        "rate_hz": config["rate_hz"],
        "log_level": config["log_level"],
        "gc_between_ticks": config["gc_between_ticks"],
        "heap_frozen_objects": result.get("heap_frozen"),
        "sim": result["sim"],
        "machine": _machine(),
    }
    return out


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "note": "shared, noisy 2-core VM: sim and client each have a process; compare the "
        "two contenders of the same run, not absolutes across runs",
    }


def run_tick_bench(
    frames: int = 5000,
    *,
    rate_hz: float = 150.0,
    block: int = 500,
    warmup: int = 20,
    log_level: str = "info",
    pin: bool = False,
    seed: int = 7,
    gc_between_ticks: bool = True,
) -> dict[str, Any]:
    """Tick-to-trade figures: ``frames`` samples per contender (floor, krakenbot,
    floor_raw), p50/p99/p99.9 (µs), per-stage p50/p99, the differences and ratios against
    the targets. ``pin`` puts the simulator on CPU 0 and the client on CPU 1 (Linux).
    ``gc_between_ticks=False``: the client leaves CPython's collector thresholds as they
    are, where the daemon installs ``bot.core.gc_ticks`` (to measure what that does)."""
    config = _config(
        frames, rate_hz=rate_hz, block=block, warmup=warmup, log_level=log_level,
        gc_between_ticks=gc_between_ticks,
    )  # fmt: skip
    result = asyncio.run(_bench(config, rate_hz, seed, pin))
    return _report(result, config)


def _config(
    frames: int,
    *,
    rate_hz: float,
    block: int,
    warmup: int,
    log_level: str,
    gc_between_ticks: bool,
) -> dict[str, Any]:
    """``run_tick_bench``'s settings, checked: what the client and the report read."""
    if frames < 1 or block < 1 or warmup < 0 or rate_hz <= 0:
        raise ValueError("frames and block must be positive, warmup >= 0, rate_hz > 0")
    return {
        "frames": frames,
        "block": block,
        "warmup": warmup,
        "log_level": log_level,
        "rate_hz": rate_hz,
        "gc_between_ticks": gc_between_ticks,
    }


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--client":
        config = json.loads(argv[1])
        with open(os.devnull, "w") as devnull:  # the daemon's log lines, rendered, then dropped
            configure_logging(config["log_level"], fmt="json", stream=devnull)
            profile = os.environ.get("KRAKENBOT_BENCH_PROFILE")  # a cProfile file to write
            if profile:
                import cProfile

                with cProfile.Profile() as profiler:
                    result = asyncio.run(_client(config))
                profiler.dump_stats(profile)
            else:
                result = asyncio.run(_client(config))
            print(json.dumps(result))
        return 0
    configure_logging("warning")
    print(json.dumps(run_tick_bench(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
