"""Paper trading on Kraken Futures: the Futures simulator started inside the daemon.

``futures_paper_venue(config)`` builds ``bot.sim.futures.venue.FuturesVenue`` for the
deployment's contracts with ``futures.sim`` (seed, USD collateral, funding rate and
interval), opens one account, serves it on 127.0.0.1 (port 0) with its pump running, and
yields the ``Endpoints`` that point at it (REST v3 and WS v1; the one WebSocket carries
public and private feeds) with the account's generated key pair. As spot paper mode does
(``bot.service.paper``), it runs the daemon's real wire code and needs no keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import Config
from bot.core.errors import ConfigError
from bot.core.log import Secret, get_logger
from bot.service.paper import Endpoints
from bot.sim.futures.contracts import default_contracts
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue

__all__ = ["futures_paper_venue"]

log = get_logger(component="paper")


@asynccontextmanager
async def futures_paper_venue(config: Config) -> AsyncIterator[tuple[Endpoints, FuturesSimServer]]:
    """Serve the Futures simulator inside the block; yield where it listens."""
    futures = config.futures
    assert futures is not None
    sim = futures.sim
    symbols = futures.symbols or tuple(
        dict.fromkeys(s for strat in config.strategies for s in strat.symbols)
    )
    try:
        contracts = default_contracts(symbols)
    except KeyError as exc:
        raise ConfigError(f"futures.symbols: the simulator lists no contract {exc}") from None
    venue = FuturesVenue(
        contracts=contracts, seed=sim.seed, funding_rate=sim.funding_rate,
        funding_interval_s=sim.funding_interval_s,
    )  # fmt: skip
    creds = venue.add_account("paper", sim.collateral_usd)
    server = await FuturesSimServer.start(venue, "127.0.0.1", 0, pump=True)
    try:
        log.info(
            "paper_venue_started", venue="futures", rest_url=server.rest_url, seed=sim.seed,
            collateral_usd=str(sim.collateral_usd), symbols=list(contracts),
        )  # fmt: skip
        yield (
            Endpoints(
                server.rest_url, server.ws_url, server.ws_url, Secret(creds.api_key),
                Secret(creds.api_secret),
            ),
            server,
        )  # fmt: skip
    finally:
        await server.close()
