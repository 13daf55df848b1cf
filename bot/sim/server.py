"""The simulator's HTTP server: one aiohttp application on one port, and its life cycle.

Routes (``build_app``)::

    GET|POST /0/public/{method}     rest_public.public_handler
    POST     /0/private/{method}    rest_private.private_handler
    GET      /v2                    ws_public.public_ws_handler   (WebSocket v2, public)
    GET      /v2-auth               ws_private.private_ws_handler (WebSocket v2, private)
    *        /admin/...             admin.admin_app (X-Admin-Token)

The WebSocket handlers are imported when the app is built; a build without them serves
REST and admin only. ``SimServer`` starts the app on a host and port (0: any free port),
owns the venue's pump task, and on ``close`` stops the pump, closes the WebSockets and
the listener. ``running_sim`` wraps that as an async context manager.

This module owns the wiring and the life cycle; every answer is another module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any, Final

import structlog
from aiohttp import web

from bot.sim.admin import admin_app
from bot.sim.rest_private import private_handler
from bot.sim.rest_public import public_handler
from bot.sim.venue import VENUE_KEY, SimVenue

__all__ = ["SimServer", "build_app", "running_sim"]

log = structlog.get_logger("sim.server")

_WS_ROUTES: Final = (
    ("/v2", "bot.sim.ws_public", "public_ws_handler"),
    ("/v2-auth", "bot.sim.ws_private", "private_ws_handler"),
)
_SHUTDOWN_TIMEOUT_S: Final = 1.0
_CLOSE_CONN_TIMEOUT_S: Final = 1.0


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


class SimServer:
    """A running simulator: ``await SimServer.start(venue)``, then ``await close()``."""

    def __init__(self, venue: SimVenue, runner: web.AppRunner, host: str, port: int) -> None:
        self.venue = venue
        self.host = host
        self.port = port
        self._runner = runner
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, venue: SimVenue, host: str = "127.0.0.1", port: int = 0, *, pump: bool = True
    ) -> SimServer:
        """Listen on ``host:port`` and (with ``pump``) run the venue's pump as a task owned
        by this server. The market is stepped once first, so books exist at once."""
        venue.tick()
        runner = web.AppRunner(
            build_app(venue), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        server = cls(venue, runner, host, int(bound))
        if pump:
            server._pump = asyncio.create_task(venue.run(), name="sim-pump")
        log.info("sim_listening", host=host, port=server.port)
        return server

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_public_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2"

    @property
    def ws_private_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2-auth"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.port}/admin"

    def info(self, account: str | None = None, *, secret: bool = True) -> dict[str, Any]:
        """What ``krakenbot sim`` prints: URLs, the account's key pair, the admin token."""
        creds = self.venue.credentials(account)
        return {
            "rest": self.rest_url,
            "ws_public": self.ws_public_url,
            "ws_private": self.ws_private_url,
            "admin": self.admin_url,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret if secret else None,
            "admin_token": self.venue.admin_token,
        }

    async def close(self) -> None:
        """Stop the pump, close every WebSocket, stop listening."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        for conn in list(self.venue.connections.values()):
            closer = getattr(conn, "close", None) or conn.drop
            try:
                await asyncio.wait_for(closer(), _CLOSE_CONN_TIMEOUT_S)
            except (TimeoutError, ConnectionError) as exc:
                log.warning("ws_close_failed", conn=conn.conn_id, error=repr(exc))
        await self._runner.cleanup()
        log.info("sim_stopped", port=self.port)


@contextlib.asynccontextmanager
async def running_sim(
    venue: SimVenue, host: str = "127.0.0.1", port: int = 0, *, pump: bool = True
) -> AsyncIterator[SimServer]:
    """``async with running_sim(venue) as server:`` the simulator serves inside the block."""
    server = await SimServer.start(venue, host, port, pump=pump)
    try:
        yield server
    finally:
        await server.close()
