"""Loopback fixtures: the simulator served in-process on 127.0.0.1, port 0.

``sim`` is a running simulator on the real clock with its market pump on; ``fake_sim`` runs
on a ``FakeClock`` with no pump (a test advances the clock and calls ``venue.step()``);
``sim_factory`` builds either with other venue options. Each yields a ``SimHandle``: the
URLs, the account's key pair, the admin token, the ``SimVenue`` itself, an aiohttp session
and a ``KrakenTestClient`` (the independent signer) bound to the account.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.core import gc_ticks
from bot.core.clock import Clock, FakeClock, SystemClock
from bot.sim.server import SimServer
from bot.sim.venue import DEFAULT_ACCOUNT, SimVenue
from tests.loopback.kraken_client import KrakenTestClient


@pytest.fixture(autouse=True)
def _collector_as_cpython_sets_it() -> Iterator[None]:
    """An in-process daemon installs the between-ticks collector (``bot.core.gc_ticks``)
    for its process: here, the test's; the next test gets CPython's thresholds back."""
    yield
    gc_ticks.uninstall()


@dataclass
class SimHandle:
    """A running simulator, as the loopback tests see it."""

    server: SimServer
    venue: SimVenue
    clock: Clock
    session: aiohttp.ClientSession
    client: KrakenTestClient
    account: str
    api_key: str
    api_secret: str
    admin_token: str

    @property
    def base_url(self) -> str:
        return self.server.rest_url

    @property
    def ws_public_url(self) -> str:
        return self.server.ws_public_url

    @property
    def ws_private_url(self) -> str:
        return self.server.ws_private_url

    @property
    def admin_url(self) -> str:
        return self.server.admin_url

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"X-Admin-Token": self.admin_token}

    def client_for(self, api_key: str, api_secret: str) -> KrakenTestClient:
        return KrakenTestClient(self.session, self.base_url, api_key, api_secret)


SimFactory = Callable[..., Awaitable[SimHandle]]


@pytest.fixture
async def sim_factory() -> AsyncIterator[SimFactory]:
    """``await sim_factory(clock=FakeClock(), pump=False, tier="starter", **venue_kwargs)``."""
    started: list[tuple[SimServer, aiohttp.ClientSession]] = []

    async def make(
        *,
        clock: Clock | None = None,
        pump: bool | None = None,
        balances: dict[str, Any] | None = None,
        **venue_kwargs: Any,
    ) -> SimHandle:
        clock = clock if clock is not None else SystemClock()
        venue_kwargs.setdefault("seed", 7)
        venue = SimVenue(clock=clock, **venue_kwargs)
        creds = venue.add_account(DEFAULT_ACCOUNT, balances)
        run_pump = not isinstance(clock, FakeClock) if pump is None else pump
        server = await SimServer.start(venue, "127.0.0.1", 0, pump=run_pump)
        session = aiohttp.ClientSession()
        started.append((server, session))
        client = KrakenTestClient(session, server.rest_url, creds.api_key, creds.api_secret)
        return SimHandle(
            server=server,
            venue=venue,
            clock=clock,
            session=session,
            client=client,
            account=creds.account,
            api_key=creds.api_key,
            api_secret=creds.api_secret,
            admin_token=venue.admin_token,
        )

    yield make
    for server, session in reversed(started):
        await session.close()
        await server.close()


@pytest.fixture
async def sim(sim_factory: SimFactory) -> SimHandle:
    """The simulator on the real clock, synthetic market pumped, Starter limits."""
    return await sim_factory()


@pytest.fixture
async def fake_sim(sim_factory: SimFactory) -> SimHandle:
    """The simulator on a ``FakeClock`` without a pump: advance ``sim.clock`` and
    ``await sim.venue.step()`` to move the market and fire timers."""
    return await sim_factory(clock=FakeClock())
