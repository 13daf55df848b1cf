"""The simulator's HTTP server: one aiohttp application on one port, and its life cycle.

Routes (``build_app``)::

    GET|POST /0/public/{method}     rest_public.public_handler
    POST     /0/private/{method}    rest_private.private_handler
    GET      /v2                    ws_public.public_ws_handler   (WebSocket v2, public)
    GET      /v2-auth               ws_private.private_ws_handler (an alias, see below)
    *        /admin/...             admin.admin_app (X-Admin-Token)

Kraken serves its authenticated WebSocket on a host of its own with the same path,
``wss://ws-auth.kraken.com/v2``, so clients that append ``/v2`` to a host can reach it only
there. The simulator does the same on a second port (``build_private_app``: ``GET /v2`` and
``GET /v2-auth``), and keeps ``/v2-auth`` on the main port as an alias. A third port serves
the ``level3`` channel alone at ``/v2`` (``build_level3_app``), as Kraken's
``wss://ws-l3.kraken.com/v2`` does.

The WebSocket handlers are imported when the app is built; a build without them serves
REST and admin only. ``SimServer`` (a ``serving.VenueServer``) starts the apps on a host and
three ports (0: any free port), owns the venue's pump task, and on ``close`` stops the pump,
closes the WebSockets and the listeners. ``running_sim`` wraps that as an async context
manager.

This module owns the wiring and the life cycle; every answer is another module's.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any, Final

import structlog
from aiohttp import web

from bot.sim.admin import admin_app
from bot.sim.rest_private import private_handler
from bot.sim.rest_public import public_handler
from bot.sim.serving import VenueServer
from bot.sim.venue import VENUE_KEY, SimVenue

__all__ = ["SimServer", "build_app", "running_sim"]

log = structlog.get_logger("sim.server")

_WS_ROUTES: Final = (
    ("/v2", "bot.sim.ws_public", "public_ws_handler"),
    ("/v2-auth", "bot.sim.ws_private", "private_ws_handler"),
)


def _ws_handler(module_name: str, name: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            log.warning("ws_handler_missing", module=module_name)
            return None
        raise  # the module exists but is broken: a bug, not a missing piece
    return getattr(module, name)


def build_app(venue: SimVenue) -> web.Application:
    """The simulator's aiohttp application for ``venue``."""
    app = web.Application(client_max_size=1 << 20)
    app[VENUE_KEY] = venue
    app.router.add_get("/0/public/{method}", public_handler)
    app.router.add_post("/0/public/{method}", public_handler)
    app.router.add_post("/0/private/{method}", private_handler)
    for path, module_name, name in _WS_ROUTES:
        handler = _ws_handler(module_name, name)
        if handler is not None:
            app.router.add_get(path, handler)
    app.add_subapp("/admin", admin_app(venue))
    return app


def _ws_app(
    venue: SimVenue, module: str, name: str, paths: tuple[str, ...]
) -> web.Application | None:
    handler = _ws_handler(module, name)
    if handler is None:
        return None
    app = web.Application(client_max_size=1 << 20)
    app[VENUE_KEY] = venue
    for path in paths:
        app.router.add_get(path, handler)
    return app


def build_private_app(venue: SimVenue) -> web.Application | None:
    """The private WebSocket's own application (None without the WS handlers)."""
    return _ws_app(venue, "bot.sim.ws_private", "private_ws_handler", ("/v2", "/v2-auth"))


def build_level3_app(venue: SimVenue) -> web.Application | None:
    """The level3 WebSocket's own application (Kraken's ``ws-l3``; None without it)."""
    return _ws_app(venue, "bot.sim.ws_level3", "level3_ws_handler", ("/v2",))


class SimServer(VenueServer):
    """A running simulator: ``await SimServer.start(venue)``, then ``await close()``."""

    venue: SimVenue

    def __init__(
        self,
        venue: SimVenue,
        runners: list[web.AppRunner],
        host: str,
        port: int,
        *,
        private_port: int | None = None,
        level3_port: int | None = None,
    ) -> None:
        super().__init__(venue, runners, host, port)
        self.private_port = private_port
        """The private WebSocket's own port (None: only the ``/v2-auth`` alias)."""
        self.level3_port = level3_port
        """The level3 WebSocket's own port (None: level3 on the private endpoint only)."""

    @classmethod
    async def start(
        cls,
        venue: SimVenue,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        pump: bool = True,
        private_port: int = 0,
        level3_port: int = 0,
    ) -> SimServer:
        """Listen on ``host:port`` (REST, public WS, admin), ``host:private_port`` (the
        private WS) and ``host:level3_port`` (the level3 WS), and (with ``pump``) run the
        venue's pump as a task owned by this server. The market is stepped once first, so
        books exist at once."""
        apps = (
            (build_app(venue), port),
            (build_private_app(venue), private_port),
            (build_level3_app(venue), level3_port),
        )
        runners, (bound, private, level3) = await cls.open_apps(venue, host, apps)
        assert bound is not None
        server = cls(venue, runners, host, bound, private_port=private, level3_port=level3)
        return server.own_pump(pump, private_port=private, level3_port=level3)

    @property
    def ws_public_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2"

    @property
    def ws_private_url(self) -> str:
        """Kraken's ``wss://ws-auth.kraken.com/v2``: the private port's ``/v2``."""
        if self.private_port is None:
            return self.ws_private_alias_url
        return f"ws://{self.host}:{self.private_port}/v2"

    @property
    def ws_private_alias_url(self) -> str:
        """The private WebSocket on the main port (``/v2-auth``), kept for older clients."""
        return f"ws://{self.host}:{self.port}/v2-auth"

    @property
    def ws_level3_url(self) -> str:
        """Kraken's ``wss://ws-l3.kraken.com/v2``: the level3 port's ``/v2`` (the private
        endpoint, which serves level3 too, when there is no level3 port)."""
        if self.level3_port is None:
            return self.ws_private_url
        return f"ws://{self.host}:{self.level3_port}/v2"

    def info(self, account: str | None = None, *, secret: bool = True) -> dict[str, Any]:
        """What ``krakenbot sim`` prints: URLs, the account's key pair, the admin token."""
        creds = self.venue.credentials(account)
        return {
            "rest": self.rest_url,
            "ws_public": self.ws_public_url,
            "ws_private": self.ws_private_url,
            "ws_l3": self.ws_level3_url,
            "admin": self.admin_url,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret if secret else None,
            "admin_token": self.venue.admin_token,
        }


@contextlib.asynccontextmanager
async def running_sim(
    venue: SimVenue,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    pump: bool = True,
    private_port: int = 0,
    level3_port: int = 0,
) -> AsyncIterator[SimServer]:
    """``async with running_sim(venue) as server:`` the simulator serves inside the block."""
    server = await SimServer.start(
        venue, host, port, pump=pump, private_port=private_port, level3_port=level3_port
    )
    try:
        yield server
    finally:
        await server.close()
