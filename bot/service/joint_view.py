"""The dashboard's picture of a deployment with two venues: both venues in one ``Observation``.

``JointObserver`` is the ``Observer`` of the deployment's one dashboard
(``bot.service.both_daemon``): each ``observe()`` takes one picture per venue, through an
observer of its own on that venue's components (attached once the venue runs; the venue's
own view keeps its observer, and with it its notifications' fills), and merges them:

* readiness from the joint gate (``spot.books``...), metrics from the face and both venues
  (series of one family side by side: feeds, books, strategies and symbols differ);
* the risk state, the bot's and each strategy's: one when every venue agrees, else each
  venue's named (``spot: active, futures: halted``); a ``venue: both`` strategy is one row;
* strategies, positions, open orders, fills (the newest ``RECENT_FILLS``) side by side;
  instruments and mids together (the venues' symbols differ); PnL summed per quote currency;
* balances: spot's as they are, every other venue's assets named ``<venue>:<asset>``
  (``futures:USD``), and its contracts' base and quote named the same way, so what its
  orders hold is counted against its own collateral, never against spot's.

It reads the venues and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeVar

from bot.core.clock import Clock
from bot.execution.readiness import ReadinessGate
from bot.kraken.instruments import Instrument
from bot.service.metrics import Metrics, Snapshot
from bot.service.observe import RECENT_FILLS, Observation, Observer, Pnl, StrategyView

__all__ = ["JointObserver", "VenueView", "merge"]

SPOT = "spot"
K = TypeVar("K")


class VenueView(NamedTuple):
    """One venue as the joint observer reads it: the observer its components are attached
    to (its own view's), its metrics and its readiness gate."""

    observer: Observer
    metrics: Metrics
    gate: ReadinessGate


class JointObserver(Observer):
    """See the module docstring. ``metrics`` and ``gate``: the face's."""

    def __init__(
        self, clock: Clock, metrics: Metrics, gate: ReadinessGate, venues: Mapping[str, VenueView]
    ) -> None:
        super().__init__(clock, metrics, gate)
        self._venues = {v: view.observer for v, view in venues.items()}
        self._mine = {v: Observer(clock, view.metrics, view.gate) for v, view in venues.items()}

    @property
    def attached(self) -> bool:
        return any(o.attached for o in self._mine.values())

    def observe(self) -> Observation:
        for venue, theirs in self._venues.items():
            mine = self._mine[venue]
            if theirs.parts is None:
                if mine.attached:  # that venue stopped: its store is closing or closed
                    mine.detach()
            elif not mine.attached:
                mine.attach(theirs.parts)
        return self._merged({v: o.observe() for v, o in self._mine.items()})

    def starting(self) -> Observation:
        return self._merged({v: o.starting() for v, o in self._mine.items()})

    def _merged(self, pictures: Mapping[str, Observation]) -> Observation:
        gate = self._gate
        return merge(
            pictures, self._clock.time_ns(), gate.is_open, gate.failing(), self._metrics.snapshot()
        )


def merge(
    pictures: Mapping[str, Observation],
    at_ns: int,
    ready: bool,
    failing: tuple[str, ...],
    face: Snapshot,
) -> Observation:
    """One ``Observation`` of ``pictures`` (venue → its picture); see the module docstring."""
    shown = {v: _own_assets(v, o) for v, o in pictures.items()}
    views = list(shown.values())
    metrics: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    for snap in (face, *(o.metrics for o in views)):
        for family, series in snap.items():
            metrics.setdefault(family, []).extend(series)
    risk = _joined({v: o.risk_state for v, o in shown.items()})
    fills = sorted((f for o in views for f in o.fills), key=lambda f: f.fill.ts_ns)
    stamps = [o.balances_at_ns for o in views if o.balances_at_ns is not None]
    return Observation(
        at_ns=at_ns,
        running=any(o.running for o in views),
        ready=ready,
        failing=failing,
        metrics=metrics,
        risk_state=risk,
        strategies=_once((v, s) for v, o in shown.items() for s in o.strategies),
        instruments={k: i for o in views for k, i in o.instruments.items()},
        mids={k: m for o in views for k, m in o.mids.items()},
        positions=tuple(p for o in views for p in o.positions),
        totals=tuple(p for o in views for p in o.totals),
        pnl=_summed(o.pnl for o in views),
        strategy_pnl=_summed(o.strategy_pnl for o in views),  # a venue: both one's, summed
        open_orders=tuple(
            sorted(
                (x for o in views for x in o.open_orders), key=lambda x: (x.created_ns, x.cl_ord_id)
            )
        ),
        balances={a: b for o in views for a, b in o.balances.items()},
        balances_at_ns=max(stamps) if stamps else None,
        fills=tuple(fills[-RECENT_FILLS:]),
        new_fills=tuple(f for o in views for f in o.new_fills),
    )


def _own_assets(venue: str, obs: Observation) -> Observation:
    """Spot's picture as it is; another venue's balances and contracts' assets renamed."""
    if venue == SPOT:
        return obs
    return dataclasses.replace(
        obs,
        balances={f"{venue}:{a}": b for a, b in obs.balances.items()},
        instruments={s: _renamed(venue, i) for s, i in obs.instruments.items()},
    )


def _renamed(venue: str, inst: Instrument) -> Instrument:
    return dataclasses.replace(inst, base=f"{venue}:{inst.base}", quote=f"{venue}:{inst.quote}")


def _joined(states: Mapping[str, str]) -> str:
    """Venue → risk state as one: the state when every venue that has one agrees, else
    each venue's named (``spot: active, futures: halted``); "" when none has one."""
    present = {v: s for v, s in states.items() if s}
    if len(set(present.values())) == 1:
        return next(iter(present.values()))
    return ", ".join(f"{v}: {s}" for v, s in present.items())


def _once(rows: Iterable[tuple[str, StrategyView]]) -> tuple[StrategyView, ...]:
    """Each strategy once (rows: venue, row): a ``venue: both`` strategy's one runner is on
    both venues, and the risk state in force for it is each venue's gate's, joined."""
    seen: dict[str, StrategyView] = {}
    states: dict[str, dict[str, str]] = {}
    for venue, row in rows:
        seen.setdefault(row.name, row)
        states.setdefault(row.name, {})[venue] = row.risk_state
    return tuple(
        dataclasses.replace(row, risk_state=_joined(states[name])) for name, row in seen.items()
    )


def _summed(pnls: Iterable[Mapping[K, Pnl]]) -> dict[K, Pnl]:
    out: dict[K, Pnl] = {}
    for by_quote in pnls:
        for quote, p in by_quote.items():
            was = out.get(quote)
            out[quote] = (
                p
                if was is None
                else Pnl(
                    was.realised + p.realised, was.unrealised + p.unrealised, was.today + p.today
                )
            )
    return out
