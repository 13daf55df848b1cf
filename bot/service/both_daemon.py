"""``krakenbot run`` for a deployment that trades spot AND Kraken Futures in one process.

A config with a ``futures:`` section and a ``venue: spot`` strategy (``bot.config.venues``)
runs here: ``BothDaemon`` is made of two venue *sides*, the spot ``Daemon`` on the config's
spot part and the ``FuturesDaemon`` on its Futures part (each its own key pair, store,
venue or in-process simulator, feeds, engine, desk, dead-man's switch, reconciliation,
balances or margin, checkpoints, supervisor and readiness gate: all the wiring stays
theirs), run side by side under one ``TaskGroup`` on one event loop, and around them:

* ONE HTTP face: ``/healthz``, ``/readyz`` (``bot.service.joint.JointGate``: each venue's
  checks named ``spot.*`` / ``futures.*``, ready only while both are), ``/metrics`` (the
  process and loop families once, each venue's as ``krakenbot_spot_*`` /
  ``krakenbot_futures_*``), the status page, the dashboard (``bot.service.joint_view``:
  both venues' strategies, positions, orders and fills in one picture) and the control API
  (``JointControls``: halt, resume and cancel-all on both venues, pause on the strategy's);
* ONE signal handling (``bot.service.daemon.main_run``): SIGTERM stops both sides, each
  cancelling its orders and disarming its switch (exit 0 when both did); a second signal
  exits at once; SIGHUP reloads both sides' params;
* availability: each side waits out its own venue's outages and starts its strategies when
  ITS gate opens, so one venue down never holds the other's strategies; a fatal error of
  one side (a key's permission, the store) stops the other cleanly, then ends the process
  with that error's exit status (2 for a config error, else 1);
* ONE log: every line a side (and any task it starts) logs carries ``venue``;
* the ``venue: both`` strategies (``bot.service.both_strategies``): one instance each on
  both sides' desks, started once both gates have opened, stopped before the sides cancel.

This module owns that composition and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from bot.config import Config
from bot.config.venues import VENUES, futures_part, spot_part, venue_of
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, ConfigError
from bot.core.log import get_logger
from bot.core.supervisor import Supervisor
from bot.service import metrics as m
from bot.service.both_strategies import TwoVenueStrategies, ended
from bot.service.daemon import PNL_EVERY_S, Daemon
from bot.service.futures_daemon import FuturesDaemon, futures_symbols
from bot.service.http import HttpServer
from bot.service.joint import JointControls, JointGate, VenueCollector
from bot.service.joint_view import JointObserver, VenueView
from bot.service.view import TraderView
from bot.strategy.loader import LoadedStrategy

__all__ = ["BothDaemon"]

log = get_logger(component="daemon")


class BothDaemon:
    """Spot and Futures in one process; see the module docstring."""

    def __init__(
        self,
        config: Config,
        strategies: list[LoadedStrategy] | None = None,
        *,
        config_path: Path | None = None,
        clock: Clock | None = None,
        pnl_every_s: float = PNL_EVERY_S,
    ) -> None:
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        loaded = list(strategies) if strategies is not None else []
        mine = {v: [x for x in loaded if venue_of(config, x.config) == v] for v in VENUES}
        self.spot = Daemon(
            spot_part(config), mine["spot"], config_path=config_path, clock=self.clock,
            pnl_every_s=pnl_every_s, metrics=m.Metrics(process=False), serve_http=False,
        )  # fmt: skip
        self.futures = FuturesDaemon(
            futures_part(config), mine["futures"], config_path=config_path, clock=self.clock,
            pnl_every_s=pnl_every_s, metrics=m.Metrics(process=False), serve_http=False,
        )  # fmt: skip
        self.sides: dict[str, Daemon] = {"spot": self.spot, "futures": self.futures}
        self.metrics = m.Metrics()  # the face's: the process, the loop, the joint readiness
        both = [x for x in loaded if venue_of(config, x.config) == "both"]
        self.both = TwoVenueStrategies(both, self.clock, self.metrics)
        self.metrics.add_source(m.runners_source(self.both.runners.values()))  # unprefixed
        for venue, side in self.sides.items():
            side.on_wired = self.both.wire(venue, side)
        for venue, side in self.sides.items():
            self.metrics.registry.register(VenueCollector(side.metrics, venue))
        self.gate = JointGate({v: s.gate for v, s in self.sides.items()}, clock=self.clock)
        self.metrics.add_source(m.readiness_source(self.gate))
        self.supervisor = Supervisor(self.clock)  # the face's one task: the dashboard's view
        self.metrics.add_source(m.supervisor_source(self.supervisor))
        venues = {v: VenueView(s.view.observer, s.metrics, s.gate) for v, s in self.sides.items()}
        observer = JointObserver(self.clock, self.metrics, self.gate, venues)
        self.view = TraderView(
            config, self.clock, self.metrics, self.gate, observer=observer, notify=False
        )
        self.http: HttpServer | None = None
        self.exit_code = 0
        self._stopping = False
        self._error: BotError | None = None
        self._started = asyncio.Event()

    # -- control ---------------------------------------------------------------------------

    def request_stop(self, reason: str = "requested") -> None:
        """Stop both sides gracefully; a second call exits at once (both switches armed)."""
        if self._stopping:
            self.spot.force_exit(reason)
            return
        self._stopping = True
        log.info("shutdown_requested", reason=reason)
        self._stop_sides(reason)

    def _stop_sides(self, reason: str) -> None:
        self.both.stop()  # on_stop before the sides cancel its orders on both venues
        for side in self.sides.values():
            if not side.stopping:  # a side asked twice would force the exit
                side.request_stop(reason)

    def reload(self) -> bool:
        return not self.reload_params()

    def reload_params(self) -> list[str]:
        """Each side's ``reload_params`` (its own strategies from the file); the problems."""
        problems = [p for side in self.sides.values() for p in side.reload_params()]
        return problems + self.both.reload_params(self.spot.config_path)

    async def wait_started(self) -> None:
        """Until both venues' gates have opened and all strategies started."""
        await self._started.wait()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Both sides until ``request_stop``; raises the first fatal ``BotError``."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                self.http = await self._face()
                stack.push_async_callback(self.http.close)
                async with asyncio.TaskGroup() as tg:
                    sides = [
                        tg.create_task(self._side(v, s), name=f"venue:{v}")
                        for v, s in self.sides.items()
                    ]
                    face = [
                        tg.create_task(self._announce(), name="announce"),
                        tg.create_task(self.supervisor.keep("view", self.view.run), name="view"),
                    ]
                    face += [
                        tg.create_task(
                            self.supervisor.keep(f"timers-{n}", r.run_timers, finished=ended(r)),
                            name=f"keep:timers-{n}",
                        )
                        for n, r in self.both.runners.items()
                    ]
                    await asyncio.wait(sides)
                    for task in face:  # the announcement too, if a side ended before it
                        task.cancel()
            error = self._error
            if error is not None:
                self.exit_code = 2 if isinstance(error, ConfigError) else 1
                raise error
            self.exit_code = max(side.exit_code for side in self.sides.values())
        except BotError as error:
            self.exit_code = 2 if isinstance(error, ConfigError) else 1
            raise
        finally:
            log.info("shutdown_complete", exit_code=self.exit_code)

    async def _side(self, venue: str, side: Daemon) -> None:
        """One venue's run; its fatal error stops the other side cleanly, then is raised by
        ``run`` (a bug's exception is not caught: the group cancels both)."""
        try:
            with structlog.contextvars.bound_contextvars(venue=venue):  # its every log line
                await side.run()
        except BotError as exc:
            log.error("venue_failed", venue=venue, error=str(exc), kind=type(exc).__name__)
            if self._error is None:
                self._error = exc
            self._stop_sides(f"venue {venue} failed")

    async def _announce(self) -> None:
        for side in self.sides.values():
            await side.wait_started()
        if self._stopping:
            return
        self.both.start()  # the two-venue strategies: both gates have opened
        self._started.set()
        log.info(
            "deployment_ready", mode=self.config.mode, venues=list(self.sides),
            http=None if self.http is None or self.http.port is None else self.http.url,
        )  # fmt: skip

    async def _face(self) -> HttpServer:
        """The one HTTP face: the joint gate, the face's metrics, the joint dashboard and
        control API."""
        server = HttpServer(self.config.http, self.metrics, self.gate, self._facts, self.clock)
        desks = {v: (lambda s=s: s.desk) for v, s in self.sides.items()}
        self.view.install(server, JointControls(desks, self.reload_params))
        await server.start()
        return server

    def _facts(self) -> dict[str, object]:
        venues = {v: s.endpoints for v, s in self.sides.items()}
        return {
            "mode": self.config.mode,
            "venue": ", ".join(f"{v} {ep.rest_url}" for v, ep in venues.items() if ep),
            "strategies": ", ".join(
                [x.name for s in self.sides.values() for x in s.loaded] + list(self.both.runners)
            ),
            "symbols": ", ".join(sym for s in self.sides.values() for sym in _symbols(s)),
        }


def _symbols(side: Daemon) -> tuple[str, ...]:
    if isinstance(side, FuturesDaemon):
        return futures_symbols(side.config)
    return side.config.symbols
