"""The Futures simulator served on 127.0.0.1 port 0, on a FakeClock without a pump.

Tests move time with ``sim.advance(seconds)`` (which also steps the venue: market,
triggers, funding, the dead-man's timers), so nothing waits on the real clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from bot.core.clock import FakeClock
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue

from .client import DocClient, DocSocket


@dataclass
class FuturesSim:
    server: FuturesSimServer
    venue: FuturesVenue
    clock: FakeClock
    session: aiohttp.ClientSession
    client: DocClient
    api_key: str
    api_secret: str

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.venue.step()

    async def socket(self) -> DocSocket:
        ws = await self.session.ws_connect(self.server.ws_url)
        sock = DocSocket(ws)
        assert (await sock.recv()) == {"event": "info", "version": 1}
        return sock

    async def admin(self, method: str, path: str, json: object = None) -> dict:  # type: ignore[type-arg]
        headers = {"X-Admin-Token": self.venue.admin_token}
        url = self.server.admin_url + path
        async with self.session.request(method, url, json=json, headers=headers) as r:
            assert r.status == 200, await r.text()
            return await r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def sim() -> AsyncIterator[FuturesSim]:
    clock = FakeClock()
    venue = FuturesVenue(clock=clock, seed=11, heartbeat_s=5.0)
    creds = venue.add_account("trader")
    server = await FuturesSimServer.start(venue, pump=False)
    session = aiohttp.ClientSession()
    client = DocClient(session, server.rest_url, creds.api_key, creds.api_secret)
    try:
        yield FuturesSim(server, venue, clock, session, client, creds.api_key, creds.api_secret)
    finally:
        await session.close()
        await server.close()
