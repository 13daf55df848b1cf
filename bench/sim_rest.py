"""Simulator REST benchmark: AddOrder → ack round-trip latency on loopback.

How it measures. The simulator (``bot.sim.server.SimServer`` with its synthetic market
pump running, as in production) serves in this process on 127.0.0.1; the client runs in a
child process, so each side has its own event loop and core, as the daemon and the
simulator do. The client (one aiohttp ``ClientSession``, keep-alive) sends ``orders``
signed ``AddOrder`` requests one after another (form body, nonce, ``API-Sign`` from
``bot.kraken.signer``): post-only buys at least 50 % below the market, so every order
passes the full path (key, signature, nonce, REST counter, parameters, trading counter,
matching engine, bus) and rests. Each round trip is timed from just before the request to
the parsed answer with its txid. A warm-up is not counted. Then one ``CancelAll`` clears
the book; its count must equal the number of orders placed.

The floor, measured the same way by the same client, is a bare aiohttp handler on
another port answering a same-sized JSON: the cost of HTTP on loopback itself. The ratio
``p50_vs_floor`` is what the simulator adds on top of it.

Limits are off for the benchmark account (2,000 orders would hit Kraken's open-order and
trading-counter limits); everything else is as served to a user.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import platform
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from aiohttp import web

__all__ = ["run_sim_rest_bench"]

_ROOT: Final = Path(__file__).resolve().parents[1]
_FLOOR_BODY: Final = (
    b'{"error":[],"result":{"descr":{"order":"buy 0.00010000 XBTUSD @ limit 30000.0"},'
    b'"txid":["OABCDE-FGHIJ-KLMNOP"]}}'
)

_CLIENT: Final = """
import asyncio, json, sys, time
import aiohttp
from bot.kraken.signer import FORM_CONTENT_TYPE, encode_form, sign

async def main(url, key, secret, count, warmup):
    path = "/0/private/AddOrder"
    nonce = time.time_ns()
    samples = []
    placed = 0
    async with aiohttp.ClientSession() as session:
        async def call(method, params):
            nonlocal nonce
            nonce = max(time.time_ns(), nonce + 1)
            body = encode_form({"nonce": nonce, **params})
            p = "/0/private/" + method
            headers = {"API-Key": key, "API-Sign": sign(secret, p, nonce, body),
                       "Content-Type": FORM_CONTENT_TYPE}
            async with session.post(url + p, data=body, headers=headers) as r:
                return await r.json()
        for i in range(warmup + count):
            params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit",
                      "price": f"{30000 - (i % 500) / 10:.1f}", "volume": "0.00010000",
                      "oflags": "post", "cl_ord_id": f"bench-{i}"}
            t0 = time.perf_counter_ns()
            reply = await call("AddOrder", params)
            t1 = time.perf_counter_ns()
            if reply.get("error") or not reply["result"].get("txid"):
                raise SystemExit(f"AddOrder failed: {reply}")
            placed += 1
            if i >= warmup:
                samples.append(t1 - t0)
        reply = await call("CancelAll", {})
        cancelled = reply.get("result", {}).get("count")
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(json.dumps({"n": len(samples), "p50_ns": pick(0.50), "p90_ns": pick(0.90),
                      "p99_ns": pick(0.99), "max_ns": samples[-1],
                      "mean_ns": sum(samples) // len(samples),
                      "placed": placed, "cancelled": cancelled}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


async def _client(url: str, key: str, secret: str, count: int, warmup: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(_ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLIENT,
        url,
        key,
        secret,
        str(count),
        str(warmup),
        cwd=_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench client failed: {err.decode(errors='replace')[-800:]}")
    result: dict[str, Any] = json.loads(out)
    return result


async def _floor_handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_FLOOR_BODY, content_type="application/json")


def _us(ns: int) -> float:
    return round(ns / 1000, 1)


async def _bench(orders: int, warmup: int, seed: int) -> dict[str, Any]:
    from bot.sim.server import running_sim
    from bot.sim.venue import SimVenue

    venue = SimVenue(seed=seed, rate_limits=False, open_orders_limit=10**6)
    creds = venue.add_account("bench", {"USD": Decimal(10_000_000), "BTC": Decimal(100)})
    floor_app = web.Application()
    floor_app.router.add_post("/0/private/{method}", _floor_handler)
    floor_runner = web.AppRunner(floor_app, access_log=None)
    await floor_runner.setup()
    await web.TCPSite(floor_runner, "127.0.0.1", 0).start()
    floor_url = f"http://127.0.0.1:{floor_runner.addresses[0][1]}"
    try:
        async with running_sim(venue) as server:
            sim = await _client(server.rest_url, creds.api_key, creds.api_secret, orders, warmup)
            resting = len(venue.exchange.open_orders(creds.account))
        # The same client work (signing included) against the bare handler.
        dummy = base64.b64encode(bytes(64)).decode()
        floor = await _client(floor_url, "floor", dummy, orders, warmup)
    finally:
        await floor_runner.cleanup()
    return {
        "orders": sim["n"],
        "p50_us": _us(sim["p50_ns"]),
        "p90_us": _us(sim["p90_ns"]),
        "p99_us": _us(sim["p99_ns"]),
        "max_us": _us(sim["max_ns"]),
        "mean_us": _us(sim["mean_ns"]),
        "floor_p50_us": _us(floor["p50_ns"]),
        "floor_p99_us": _us(floor["p99_ns"]),
        "p50_vs_floor": round(sim["p50_ns"] / floor["p50_ns"], 2),
        "orders_per_s": round(1e9 / sim["mean_ns"]),
        "placed": sim["placed"],
        "cancel_all_count": sim["cancelled"],
        "resting_after_cancel_all": resting,
        "target_p50_under_1ms": sim["p50_ns"] < 1_000_000,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def run_sim_rest_bench(orders: int = 2000, warmup: int = 200, seed: int = 7) -> dict[str, Any]:
    """AddOrder → ack latency figures (microseconds) against the floor of bare aiohttp."""
    return asyncio.run(_bench(orders, warmup, seed))


if __name__ == "__main__":
    sys.path.insert(0, str(_ROOT))
    from bot.core.log import configure_logging

    configure_logging("warning")
    print(json.dumps(run_sim_rest_bench(), indent=2))
