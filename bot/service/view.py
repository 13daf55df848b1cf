"""The trader's view of the daemon in one object: pictures, dashboard, notices, control.

``TraderView`` is what the daemon wires (``bot.service.daemon``, ``bot.service.wiring``):

* ``install(server, controls)``: the dashboard's routes and the control API on the HTTP
  server, before it listens; their metrics sources;
* ``attach(parts)``: the running components to observe, once they exist;
* ``run()``: the supervised ``view`` task: every ``tick_s`` one ``Observation``, published
  to the dashboard (status, charts, stream) and passed through the notification rules;
* ``serving(session, keep, exit_code)``: around the daemon's run, the supervised ``notify``
  task (delivery); on the way out the last words (the fills batched so far, then
  ``stopped`` or the fatal error), delivered within ``notify.drain_s``;
* ``started()``: the ``started`` notice, once the readiness gate first opened.

A deployment with two venues (``bot.service.both_daemon``) makes one more, for its one
dashboard: with a joint ``observer`` (``bot.service.joint_view``) and ``notify=False`` (each
venue's own view sends that venue's notices).

It reads the daemon and changes it only through the control API's actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Final

import aiohttp

from bot.config import Config
from bot.core.clock import Clock
from bot.core.errors import BotError
from bot.execution.readiness import ReadinessGate
from bot.service.control import Controls
from bot.service.control_api import ControlApi
from bot.service.dashboard.server import Dashboard, StatusInputs
from bot.service.http import HttpServer
from bot.service.metrics import Metrics
from bot.service.notify.notice import Level, notice
from bot.service.notify.rules import NoticeRules
from bot.service.notify.sender import Notifier
from bot.service.observe import Observer, Parts

__all__ = ["TICK_S", "TraderView"]

TICK_S: Final = 1.0
Keep = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], Coroutine[Any, Any, None]]


class TraderView:
    """See the module docstring."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        metrics: Metrics,
        gate: ReadinessGate,
        *,
        tick_s: float = TICK_S,
        observer: Observer | None = None,
        notify: bool = True,
        label: str | None = None,
    ) -> None:
        self.config, self._clock, self._metrics = config, clock, metrics
        self.tick_s = tick_s
        self.label = label or f"krakenbot {config.mode}"  # starts every notice
        self.observer = observer if observer is not None else Observer(clock, metrics, gate)
        self.dashboard = Dashboard(clock, control=config.http.control_enabled)
        self.notify = notify  # False: pictures for the dashboard only, no notices
        self.rules = NoticeRules(config.notify, self.label)
        self.notifier = Notifier(config.notify, clock)
        self.control: ControlApi | None = None
        metrics.add_source(self.dashboard.samples)
        if notify:
            metrics.add_source(self.notifier.samples)

    def install(self, server: HttpServer, controls: Controls) -> None:
        """The dashboard and the control API on ``server`` (before it starts)."""
        inputs = StatusInputs(server.ready, server.health, server.facts, self.observer.starting)
        self.dashboard.install(server.app, inputs)
        self.control = ControlApi(self.config.http.control_token, controls, self._clock)
        self.control.install(server.app)
        self._metrics.add_source(self.control.samples)

    def attach(self, parts: Parts) -> None:
        self.observer.attach(parts)

    def detach(self) -> None:
        self.observer.detach()

    def tick(self) -> None:
        """One picture: to the dashboard, then through the rules to the notifiers."""
        obs = self.observer.observe()
        self.dashboard.publish(obs)
        if not self.notify:
            return
        for item in self.rules.step(obs):
            self.notifier.publish(item)

    async def run(self) -> None:
        """Tick every ``tick_s`` until cancelled (the daemon's ``view`` task)."""
        while True:
            self.tick()
            await self._clock.sleep(self.tick_s)

    def tell(self, kind: str, level: Level, text: str) -> None:
        self.notifier.publish(notice(kind, level, f"{self.label}: {text}", self._clock.time_ns()))

    def started(self, facts: dict[str, str]) -> None:
        detail = ", ".join(f"{k} {v}" for k, v in facts.items() if v)
        self.tell("started", "info", f"started and ready ({detail})")

    @contextlib.asynccontextmanager
    async def serving(
        self, session: aiohttp.ClientSession, keep: Keep, exit_code: Callable[[], int]
    ) -> AsyncIterator[None]:
        """The ``notify`` task around the daemon's run, and the last words after it."""
        task: asyncio.Task[None] | None = None
        if self.notifier.enabled:
            run = functools.partial(self.notifier.run, session)
            task = asyncio.create_task(keep("notify", run), name="keep:notify")
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if task is not None:
                    self._last_words(error, exit_code())
                    await self.notifier.drain(self.config.notify.drain_s)
            finally:
                if task is not None:
                    task.cancel()
                    await asyncio.wait((task,))

    def _last_words(self, error: BaseException | None, code: int) -> None:
        now = self._clock.time_ns()
        if error is None and self.observer.attached:
            self.tick()  # the last fills and changes
        for item in self.rules.flush(now):
            self.notifier.publish(item)
        fatal = _bot_error(error) if error is not None else None
        if fatal is not None:
            self.tell("stopped", "critical", f"STOPPED on an error: {fatal}")
        elif isinstance(error, asyncio.CancelledError):
            self.tell("stopped", "warning", "stopped (cancelled)")
        elif error is not None:
            self.tell("stopped", "critical", f"STOPPED on an error: {type(error).__name__}")
        elif code == 0:
            self.tell("stopped", "info", "stopped cleanly: orders canceled, switch disarmed")
        else:
            self.tell("stopped", "warning", f"stopped with exit status {code}: see the log")


def _bot_error(error: BaseException) -> BotError | None:
    if isinstance(error, BotError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _bot_error(inner)
            if found is not None:
                return found
    return None
