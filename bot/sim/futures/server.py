"""The Futures simulator's server: one aiohttp application on its own port, and its life.

Routes (``build_futures_app``)::

    GET|POST /derivatives/api/v3/{endpoint}   rest.futures_rest_handler (REST v3)
    GET      /api/history/v3/executions        history.futures_history_handler (and v2)
    GET      /ws/v1                            ws.futures_ws_handler (WebSocket v1)
    *        /admin/...                        admin (X-Admin-Token: faults, timers)

``FuturesSimServer`` (a ``serving.VenueServer``, as the spot server is) listens on a host
and port (0: any free port, 127.0.0.1 by default), owns the venue's pump task, and on
``close`` stops it, closes the WebSockets and the listener. ``running_futures_sim`` wraps
that as an async context manager; ``info`` is the JSON line ``krakenbot sim --futures`` and
``python -m bot.sim.futures`` print (URLs, the account's key pair, the admin token), as
``krakenbot sim`` does for spot.

This module owns the wiring and the life cycle; every answer is another module's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.sim.futures.admin import admin_routes
from bot.sim.futures.history import HISTORY_PATHS, futures_history_handler
from bot.sim.futures.rest import futures_rest_handler
from bot.sim.futures.venue import FUTURES_VENUE_KEY, FuturesVenue
from bot.sim.futures.ws import futures_ws_handler
from bot.sim.serving import VenueServer

__all__ = ["FuturesSimServer", "build_futures_app", "running_futures_sim"]


def build_futures_app(venue: FuturesVenue) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[FUTURES_VENUE_KEY] = venue
    app.router.add_route("GET", "/derivatives/api/v3/{endpoint:.+}", futures_rest_handler)
    app.router.add_route("POST", "/derivatives/api/v3/{endpoint:.+}", futures_rest_handler)
    for path in HISTORY_PATHS:
        app.router.add_get(path, futures_history_handler, allow_head=False)
    app.router.add_get("/ws/v1", futures_ws_handler)
    app.router.add_routes(admin_routes())
    return app


class FuturesSimServer(VenueServer):
    """A running Futures simulator: ``await FuturesSimServer.start(venue)``, then ``close``."""

    name = "futures_sim"
    venue: FuturesVenue

    @classmethod
    async def start(
        cls, venue: FuturesVenue, host: str = "127.0.0.1", port: int = 0, *, pump: bool = True
    ) -> FuturesSimServer:
        """Listen on ``host:port`` and (with ``pump``) run the venue's pump as a task owned
        by this server. The market is stepped once first, so books exist at once."""
        runners, (bound,) = await cls.open_apps(venue, host, ((build_futures_app(venue), port),))
        assert bound is not None
        return cls(venue, runners, host, bound).own_pump(pump)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/v1"

    def info(self, account: str | None = None, *, secret: bool = True) -> dict[str, Any]:
        """URLs, the account's key pair (the secret unless ``secret=False``), admin token."""
        creds = self.venue.credentials(account)
        return {
            "venue": "futures",
            "rest": self.rest_url,
            "ws": self.ws_url,
            "admin": self.admin_url,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret if secret else None,
            "admin_token": self.venue.admin_token,
        }


@contextlib.asynccontextmanager
async def running_futures_sim(
    venue: FuturesVenue, host: str = "127.0.0.1", port: int = 0, *, pump: bool = True
) -> AsyncIterator[FuturesSimServer]:
    """``async with running_futures_sim(venue) as server:`` it serves inside the block."""
    server = await FuturesSimServer.start(venue, host, port, pump=pump)
    try:
        yield server
    finally:
        await server.close()
