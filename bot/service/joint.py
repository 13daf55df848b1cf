"""What one HTTP face reads and does across a deployment's venues: readiness, metrics and
the control API's actions.

A deployment that trades spot and Futures (``bot.service.both_daemon``) runs one daemon
per venue, each with its own readiness gate and metrics; its one HTTP face reads them
through:

* ``JointGate``: every venue's checks under one gate, named ``<venue>.<check>``
  (``spot.books``, ``futures.deadman``...), open only while every venue's gate is; a venue
  that has declared no check yet fails ``<venue>.starting``, so the face is never ready
  before a venue has begun. It reads the venues' gates and never changes them: each venue's
  own gate still guards that venue's orders and starts that venue's strategies;
* ``VenueCollector``: a venue's metric families on the face's registry, renamed
  ``krakenbot_<venue>_*`` (``krakenbot_spot_fills_total``,
  ``krakenbot_futures_feed_connected``), so one scrape tells the venues apart;
* ``JointControls``: the control API on every venue's desk: halt, resume and cancel-all act
  on all venues (the answer says each one's outcome), pause and resume-strategy on the venue
  the strategy trades (on both for a ``venue: both`` strategy), reload once (the
  deployment's, which reloads every venue).

This module owns those and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import Metric

from bot.core.clock import Clock
from bot.execution.readiness import CheckState, ReadinessGate
from bot.service.control import Controls, DeskControl, Outcome
from bot.service.metrics import NAMESPACE, Metrics

__all__ = ["STARTING", "JointControls", "JointGate", "VenueCollector"]

STARTING = "starting"
"""The check a venue fails while it has declared none of its own yet."""


class JointGate(ReadinessGate):
    """The venues' gates read as one; see the module docstring."""

    def __init__(self, venues: Mapping[str, ReadinessGate], *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._venues = dict(venues)

    def _states(self) -> dict[str, CheckState]:
        states: dict[str, CheckState] = {}
        for venue, gate in self._venues.items():
            names = gate.names
            if not names:
                states[f"{venue}.{STARTING}"] = CheckState(False, "not started yet")
            for name in names:
                states[f"{venue}.{name}"] = gate.state(name)
        return states

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._states())

    def state(self, name: str) -> CheckState:
        return self._states()[name]

    def passes(self, names: Iterable[str] | None = None) -> bool:
        states = self._states()
        wanted = states if names is None else names
        return all(n in states and states[n].ok for n in wanted)

    @property
    def is_open(self) -> bool:
        return all(gate.names and gate.is_open for gate in self._venues.values())

    def failing(self) -> tuple[str, ...]:
        return tuple(n for n, s in self._states().items() if not s.ok)

    def snapshot(self) -> dict[str, Any]:
        states = self._states()
        return {
            "ready": all(s.ok for s in states.values()),
            "checks": {n: {"ok": s.ok, "detail": s.detail} for n, s in states.items()},
        }

    async def wait(self, names: Iterable[str] | None = None) -> None:
        """Until every venue's gate is open (``names`` is not supported here)."""
        if names is not None:
            raise ValueError("JointGate.wait waits for every venue")
        for gate in self._venues.values():
            await gate.wait()


class VenueCollector:
    """One venue's ``Metrics`` on another registry, every family renamed
    ``krakenbot_<venue>_<family>`` (register it with ``registry.register``)."""

    def __init__(self, metrics: Metrics, venue: str) -> None:
        self._metrics = metrics
        self._old = f"{NAMESPACE}_"
        self._new = f"{NAMESPACE}_{venue}_"

    def describe(self) -> list[Metric]:
        return []  # names are read at scrape time; they never clash with the face's

    def collect(self) -> Iterator[Metric]:
        old, new = self._old, self._new
        for metric in self._metrics.registry.collect():
            if not metric.name.startswith(old):
                continue  # the venue's registry has no process collector; nothing else
            renamed = Metric(new + metric.name.removeprefix(old), metric.documentation, metric.type)
            renamed.samples = [
                s._replace(name=new + s.name.removeprefix(old)) for s in metric.samples
            ]
            yield renamed


class JointControls(Controls):
    """The control API's actions across venues; see the module docstring. ``desks``: venue
    name → that venue's desk (None while it starts)."""

    def __init__(
        self,
        desks: Mapping[str, Callable[[], DeskControl | None]],
        reload: Callable[[], list[str]],
    ) -> None:
        self._venues = {v: Controls(desk, reload) for v, desk in desks.items()}
        super().__init__(lambda: self._any_desk(desks), reload)

    @staticmethod
    def _any_desk(desks: Mapping[str, Callable[[], DeskControl | None]]) -> DeskControl | None:
        return next((d for d in (get() for get in desks.values()) if d is not None), None)

    def halt(self, detail: str = "") -> Outcome:
        return _joint({v: c.halt(detail) for v, c in self._venues.items()})

    def resume(self) -> Outcome:
        return _joint({v: c.resume() for v, c in self._venues.items()})

    def cancel_all(self) -> Outcome:
        return _joint({v: c.cancel_all() for v, c in self._venues.items()})

    def pause(self, strategy: str) -> Outcome:
        return self._owners(strategy, lambda c: c.pause(strategy))

    def resume_strategy(self, strategy: str) -> Outcome:
        return self._owners(strategy, lambda c: c.resume_strategy(strategy))

    def _owners(self, strategy: str, act: Callable[[Controls], Outcome]) -> Outcome:
        """``act`` on the venue whose desk runs ``strategy``, on each for a two-venue one
        (else on the first: it answers 404 or 503 as a one-venue daemon would)."""
        owners = {
            v: c
            for v, c in self._venues.items()
            if (desk := c._desk()) is not None and strategy in desk.runners
        }
        if len(owners) > 1:
            return _joint({v: act(c) for v, c in owners.items()})
        return act(next(iter(owners.values()), next(iter(self._venues.values()))))


def _joint(outcomes: Mapping[str, Outcome]) -> Outcome:
    """Every venue's outcome in one: the worst status, each venue's result named."""
    status = max(o.status for o in outcomes.values())
    result = "; ".join(f"{v}: {o.result}" for v, o in outcomes.items())
    return Outcome(status, result, {v: dict(o.details) for v, o in outcomes.items()})
