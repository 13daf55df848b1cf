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
``GET /v2-auth``), and keeps ``/v2-auth`` on the main port as an alias.

The WebSocket handlers are imported when the app is built; a build without them serves
REST and admin only. ``SimServer`` starts the apps on a host and two ports (0: any free
port), owns the venue's pump task, and on ``close`` stops the pump, closes the WebSockets
and the listeners. ``running_sim`` wraps that as an async context manager.

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


def build_private_app(venue: SimVenue) -> web.Application | None:
    """The private WebSocket's own application (None without the WS handlers)."""
    handler = _ws_handler("bot.sim.ws_private", "private_ws_handler")
    if handler is None:
        return None
    app = web.Application(client_max_size=1 << 20)
    app[VENUE_KEY] = venue
    app.router.add_get("/v2", handler)
    app.router.add_get("/v2-auth", handler)
    return app


class SimServer:
    """A running simulator: ``await SimServer.start(venue)``, then ``await close()``."""

    def __init__(
        self,
        venue: SimVenue,
        runners: list[web.AppRunner],
        host: str,
        port: int,
        private_port: int | None = None,
    ) -> None:
        self.venue = venue
        self.host = host
        self.port = port
        self.private_port = private_port
        """The private WebSocket's own port (None: only the ``/v2-auth`` alias)."""
        self._runners = runners
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        venue: SimVenue,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        pump: bool = True,
        private_port: int = 0,
    ) -> SimServer:
        """Listen on ``host:port`` (REST, public WS, admin) and ``host:private_port`` (the
        private WS), and (with ``pump``) run the venue's pump as a task owned by this server.
        The market is stepped once first, so books exist at once."""
        venue.tick()
        runners: list[web.AppRunner] = []
        try:
            bound = await _listen(runners, build_app(venue), host, port)
            private_app = build_private_app(venue)
            private_bound = None
            if private_app is not None:
                private_bound = await _listen(runners, private_app, host, private_port)
        except BaseException:
            for runner in reversed(runners):
                await runner.cleanup()
            raise
        server = cls(venue, runners, host, bound, private_bound)
        if pump:
            server._pump = asyncio.create_task(venue.run(), name="sim-pump")
            server._pump.add_done_callback(_pump_ended)
        log.info("sim_listening", host=host, port=server.port, private_port=private_bound)
        return server

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
        for runner in reversed(self._runners):
            await runner.cleanup()
        log.info("sim_stopped", port=self.port)


def _pump_ended(task: asyncio.Task[None]) -> None:
    """A pump that stops unasked (a bug in a market source) is logged, never silent."""
    if not task.cancelled() and task.exception() is not None:
        log.error("sim_pump_crashed", error=repr(task.exception()), exc_info=task.exception())


async def _listen(runners: list[web.AppRunner], app: web.Application, host: str, port: int) -> int:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, host, port)
    await site.start()
    return int(runner.addresses[0][1]) if runner.addresses else port


@contextlib.asynccontextmanager
async def running_sim(
    venue: SimVenue,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    pump: bool = True,
    private_port: int = 0,
) -> AsyncIterator[SimServer]:
    """``async with running_sim(venue) as server:`` the simulator serves inside the block."""
    server = await SimServer.start(venue, host, port, pump=pump, private_port=private_port)
    try:
        yield server
    finally:
        await server.close()
