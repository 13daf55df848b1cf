"""Where the daemon trades: Kraken (live mode) or the simulator started in-process (paper).

This module owns ``Endpoints`` (the venue's three URLs and the API key pair) and the two
ways to get them: ``live_endpoints(config)`` reads ``venue:`` and ``credentials:``;
``paper_venue(config)`` starts the bundled simulator inside the daemon's process on
``sim.host``:``sim.port`` (127.0.0.1, port 0 by default) with its market from ``sim:``
(synthetic by default, offline), opens one account funded with ``sim.balances`` (with the
config's credentials if it has any, else a generated pair) and yields the endpoints that
point at it. Paper trading thus runs the daemon's real wire code and needs no keys.

It does not build the venue (``bot.service.simulator.build_venue``) nor serve it
(``bot.sim.server``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import Config
from bot.core.errors import ConfigError
from bot.core.log import Secret, get_logger
from bot.service.simulator import build_venue
from bot.sim.server import SimServer

__all__ = ["Endpoints", "live_endpoints", "paper_venue"]

log = get_logger(component="paper")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The venue the daemon talks to; the key pair is ``Secret`` (never logged)."""

    rest_url: str
    ws_public_url: str
    ws_private_url: str
    api_key: Secret
    api_secret: Secret


def live_endpoints(config: Config) -> Endpoints:
    """``venue:`` URLs and the ``credentials:`` key pair (required in live mode)."""
    creds = config.credentials
    if creds is None:
        raise ConfigError("credentials: required in live mode (api_key_env and api_secret_env)")
    venue = config.venue
    return Endpoints(
        venue.rest_url, venue.ws_public_url, venue.ws_private_url, creds.api_key, creds.api_secret
    )


@asynccontextmanager
async def paper_venue(config: Config) -> AsyncIterator[tuple[Endpoints, SimServer]]:
    """Serve the simulator for ``config.sim`` inside the block; yield where it listens."""
    venue, _generated = build_venue(config)
    host, port = config.sim.host, config.sim.port
    try:
        server = await SimServer.start(venue, host, port, pump=True)
    except OSError as exc:
        raise ConfigError(f"sim: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        creds = venue.credentials()
        endpoints = Endpoints(
            server.rest_url,
            server.ws_public_url,
            server.ws_private_url,
            Secret(creds.api_key),
            Secret(creds.api_secret),
        )
        log.info(
            "paper_venue_started",
            rest_url=server.rest_url,
            source=config.sim.source,
            seed=config.sim.seed,
            speed=config.sim.speed,
            balances={k: str(v) for k, v in config.sim.balances.items()},
        )
        yield endpoints, server
    finally:
        await server.close()
