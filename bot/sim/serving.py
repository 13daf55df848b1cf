"""What the spot and Futures simulators' servers share: listening, the pump, closing, and
the serve-until-a-signal loop of their commands.

``VenueServer`` is a running simulator: the aiohttp applications it listens with (one per
port; 0 picks any free port), the venue's pump as a task it owns (``venue.run()``), and
``close``: stop the pump, close every WebSocket (a clean close frame where the connection
has one, else an abrupt drop; each bounded by a timeout), stop listening. The spot
``SimServer`` and the ``FuturesSimServer`` are its subclasses; each builds its own apps and
knows its own URLs.

``serve_until_signal`` is a command's life: start the server without its pump, print the
one JSON line that says where it listens, run the pump in a ``TaskGroup`` until SIGINT or
SIGTERM, then close. A port that cannot be bound is a ``ConfigError`` (exit 2).

This module owns those mechanics; what is served is the subclasses' and their modules'.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Protocol, TypeVar

import orjson
import structlog
from aiohttp import web

from bot.core.clock import Clock
from bot.core.errors import ConfigError
from bot.sim.fault_schedule import FaultSchedule

__all__ = ["Pumped", "Venue", "VenueServer", "listen", "serve_until_signal"]

log = structlog.get_logger("sim.server")

_SHUTDOWN_TIMEOUT_S: Final = 1.0
_CLOSE_CONN_TIMEOUT_S: Final = 1.0
S = TypeVar("S", bound="VenueServer")


class Connection(Protocol):
    conn_id: str

    async def drop(self) -> None: ...


class Venue(Protocol):
    """What a server needs of a venue: its pump, one step of it, its open connections."""

    @property
    def connections(self) -> Mapping[str, Any]: ...

    def tick(self) -> None: ...

    async def run(self) -> None: ...


class Pumped:
    """The pump both venues run (a base of each): ``step`` is ``tick`` (the market, timers)
    plus the faults that came due; ``run`` steps every ``pump_interval_s`` on the venue's
    clock until cancelled. Tests on a ``FakeClock`` call ``step`` themselves."""

    clock: Clock
    pump_interval_s: float
    faults: FaultSchedule[Any]

    def tick(self) -> None:
        raise NotImplementedError

    async def step(self) -> None:
        """``tick`` plus the faults that became due (dropping a socket awaits)."""
        self.tick()
        await self.faults.run_due()

    async def run(self) -> None:
        """The pump: ``step`` every ``pump_interval_s`` on the venue's clock, until cancelled."""
        while True:
            await self.step()
            await self.clock.sleep(self.pump_interval_s)


async def listen(runners: list[web.AppRunner], app: web.Application, host: str, port: int) -> int:
    """Serve ``app`` on ``host:port``; the runner joins ``runners``; the bound port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, host, port)
    await site.start()
    return int(runner.addresses[0][1]) if runner.addresses else port


class VenueServer:
    """A running simulator (see the module docstring)."""

    name: ClassVar[str] = "sim"
    """For the pump task's name and the log events (``sim_listening``, ``sim_stopped``)."""

    def __init__(self, venue: Venue, runners: list[web.AppRunner], host: str, port: int) -> None:
        self.venue = venue
        self.host = host
        self.port = port
        self._runners = runners
        self._pump: asyncio.Task[None] | None = None

    @staticmethod
    async def open_apps(
        venue: Venue, host: str, apps: Sequence[tuple[web.Application | None, int]]
    ) -> tuple[list[web.AppRunner], list[int | None]]:
        """Step the market once (books exist at once), then listen with each app on its
        port (an app of None: not served, its port None). All or nothing."""
        venue.tick()
        runners: list[web.AppRunner] = []
        ports: list[int | None] = []
        try:
            for app, port in apps:
                ports.append(None if app is None else await listen(runners, app, host, port))
        except BaseException:
            for runner in reversed(runners):
                await runner.cleanup()
            raise
        return runners, ports

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.port}/admin"

    def own_pump(self: S, pump: bool, **where: Any) -> S:
        """Run the venue's pump as this server's task (with ``pump``), and log the ports."""
        if pump:
            self._pump = asyncio.create_task(self.venue.run(), name=f"{self.name}-pump")
            self._pump.add_done_callback(_pump_ended)
        log.info(f"{self.name}_listening", host=self.host, port=self.port, **where)
        return self

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
        log.info(f"{self.name}_stopped", port=self.port)


def _pump_ended(task: asyncio.Task[None]) -> None:
    """A pump that stops unasked (a bug in a market source) is logged, never silent."""
    if not task.cancelled() and task.exception() is not None:
        log.error("sim_pump_crashed", error=repr(task.exception()), exc_info=task.exception())


async def serve_until_signal(
    start: Callable[[], Awaitable[S]],
    info: Callable[[S], Mapping[str, Any]],
    *,
    where: str,
) -> int:
    """Start the server (``start``: without its pump), print ``info`` as one JSON line on
    stdout, pump the venue until SIGINT or SIGTERM, close; 0. When a port cannot be bound,
    the ``ConfigError`` says ``"<where>: <reason>"`` (``where``: ``sim: cannot listen on
    HOST:PORT``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            server = await start()
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror or exc}") from None
        try:
            sys.stdout.write(orjson.dumps(dict(info(server))).decode() + "\n")
            sys.stdout.flush()
            async with asyncio.TaskGroup() as tasks:
                pump = tasks.create_task(server.venue.run(), name=f"{server.name}-pump")
                await stop.wait()
                log.info(f"{server.name}_stopping")
                pump.cancel()
        finally:
            await server.close()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
