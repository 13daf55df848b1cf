"""The tick bench's WebSocket floor (``floor_ws``): book frame in → pre-built ``add_order`` out.

The least a Python trader on ``websockets`` can do per book frame when orders go over
Kraken's authenticated WebSocket: one connection to ``ws-auth`` kept open across blocks
(subscribed to ``executions`` without snapshots, as the daemon's is, so it carries the same
reports), a token minted once over REST, and ``add_order`` frames built before the block
(token, ``req_id``, ``cl_ord_id`` and all). Per book update: the next frame is sent at once,
then the connection is read up to that request's answer (one order in flight, as every
contender). Clock points: ``recv`` as the other floors; ``written`` immediately before
websockets' ``send`` (as ``floor_raw`` stamps before its ``transport.write``); stage
``ws_send`` is that call (framing, masking, the write), not in the total.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect

from bench.tick_floor import BOOK_UPDATE, SYMBOL, Samples, book_socket, frame_time_ns
from bot.core.clock import SystemClock
from bot.execution.orders import new_cl_ord_id
from bot.kraken import codec
from bot.kraken.nonce import NonceGenerator
from bot.kraken.ratelimit import CounterLimits, RestCounter, Tier, TradingCounter
from bot.kraken.rest import KrakenRestClient

__all__ = ["WsFloor"]

_NOW = time.perf_counter_ns
_UNLIMITED: Final = CounterLimits(1e15, 1e15)
_MAX_ANSWER_FRAMES: Final = 1000  # bounded read up to an answer


class WsFloor:
    """The ``floor_ws`` contender (see the module docstring)."""

    name = "floor_ws"
    stages: tuple[str, ...] = ("ws_send",)

    def __init__(self, config: Mapping[str, Any], session: Any) -> None:
        key, secret = config["keys"]["floor_ws"]
        self.rest = KrakenRestClient(
            config["rest_url"], clock=SystemClock(), api_key=key, api_secret=secret,
            session=session, nonces=NonceGenerator(SystemClock()),
            rest_counter=RestCounter(Tier.PRO, limits=_UNLIMITED),
            trading_counter=TradingCounter(Tier.PRO, limits=_UNLIMITED),
        )  # fmt: skip
        self.url = config["ws_private_url"]
        self.price = Decimal(config["floor_price"])
        self.ws: ClientConnection | None = None
        self.token = ""
        self.req_id = 100
        self.ready: Iterator[tuple[int, bytes]] = iter(())

    async def start(self) -> None:
        self.token = str((await self.rest.get_websockets_token())["token"])
        self.ws = ws = await connect(
            self.url, open_timeout=10, close_timeout=2, ping_interval=None, proxy=None
        )
        subscribe = codec.subscribe_executions(
            self.token, req_id=1, snap_orders=False, snap_trades=False
        )
        await ws.send(subscribe, text=True)
        await self._answer("subscribe", 1)

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.rest.close()

    def prepare(self, n: int) -> None:
        frames = []
        for _ in range(n):
            self.req_id += 1
            params = {
                "order_type": "limit", "side": "buy", "order_qty": Decimal("0.0001"),
                "symbol": SYMBOL, "limit_price": self.price, "post_only": True,
                "cl_ord_id": new_cl_ord_id(), "token": self.token,
            }  # fmt: skip
            body = {"method": "add_order", "params": params, "req_id": self.req_id}
            frames.append((self.req_id, codec.dumps(body)))
        self.ready = iter(frames)

    async def block(self, ws_url: str, samples: Samples, frames: int, warmup: int) -> None:
        assert self.ws is not None
        private, seen = self.ws, 0
        async with book_socket(ws_url) as ws:
            async for raw in ws:
                wall, t_recv = time.time_ns(), _NOW()
                if not (isinstance(raw, str) and raw.startswith(BOOK_UPDATE)):
                    continue
                req_id, frame = next(self.ready)
                written = _NOW()
                await private.send(frame, text=True)
                t_sent = _NOW()
                answer = await self._answer("add_order", req_id)
                if seen >= warmup:
                    samples.add(written - t_recv, ws_send=t_sent - written)
                    samples.ages.append(wall - frame_time_ns(raw))
                    if answer.get("success") is True:
                        samples.placed += 1
                    else:
                        samples.refused += 1
                seen += 1
                if seen >= warmup + frames:
                    break

    async def _answer(self, method: str, req_id: int) -> dict[str, Any]:
        """Read the private connection up to ``method``'s answer to ``req_id``."""
        assert self.ws is not None
        for _ in range(_MAX_ANSWER_FRAMES):
            raw = await self.ws.recv()
            if '"method"' not in raw:
                continue  # execution reports, heartbeats
            msg: dict[str, Any] = json.loads(raw)
            if msg.get("method") == method and msg.get("req_id") == req_id:
                if method == "subscribe" and msg.get("success") is not True:
                    raise RuntimeError(f"floor_ws: subscribe refused: {msg.get('error')}")
                return msg
        raise RuntimeError(f"floor_ws: no answer to {method} {req_id}")

    async def cancel_all(self) -> int:
        return int((await self.rest.cancel_all())["count"])
