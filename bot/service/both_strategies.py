"""The ``venue: both`` strategies of a two-venue deployment: one instance on both venues.

``BothDaemon`` (``bot.service.both_daemon``) hands each side its one-venue strategies;
the two-venue ones are built here instead, ONE instance each on a ``TwoVenueContext``
(``bot.strategy.two_venue``) with ONE ``StrategyRunner`` (its ``max_errors`` and halt
span both venues). When a side has wired its desk and engine (``Daemon.on_wired``), each
gets that venue's own context (``EngineContext`` on spot, ``FuturesContext`` on
Futures: the venue's risk gate, rate counters, store and ids, unchanged) and its runner
joins that desk's router, so it sees both venues' books, trades, orders and fills.

It starts when BOTH venues' gates have opened (leftover orders of a past run cancelled
first), tells the strategy each venue's readiness through ``ctx.venue_ready``, and is
stopped (``on_stop``) before the sides cancel their orders on a stop. This module owns
that and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.config import load_config
from bot.config.venues import split_symbols, venue_of
from bot.core.clock import Clock
from bot.core.errors import ConfigError
from bot.core.later import run_soon
from bot.core.log import get_logger
from bot.execution.engine import ExecutionEngine
from bot.service.daemon import Daemon
from bot.service.futures_daemon import FuturesDaemon
from bot.service.metrics import Metrics
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.futures_context import FuturesContext
from bot.strategy.loader import LoadedStrategy
from bot.strategy.runner import RunnerState, StrategyRunner
from bot.strategy.two_venue import TwoVenueContext

__all__ = ["TwoVenueStrategies"]

log = get_logger(component="daemon")


@dataclass(slots=True)
class _One:
    loaded: LoadedStrategy
    ctx: TwoVenueContext
    runner: StrategyRunner


class TwoVenueStrategies:
    """See the module docstring."""

    def __init__(self, loaded: Iterable[LoadedStrategy], clock: Clock, metrics: Metrics) -> None:
        self.all: list[_One] = []
        for x in loaded:
            ctx = TwoVenueContext(x.name, split_symbols(x.symbols), clock)
            runner = StrategyRunner(
                x.create(ctx), timers=ctx.timers, clock=clock, max_errors=x.config.max_errors,
                observe=metrics.handler_observer(x.name),
            )  # fmt: skip
            self.all.append(_One(x, ctx, runner))

    @property
    def runners(self) -> dict[str, StrategyRunner]:
        return {one.loaded.name: one.runner for one in self.all}

    def wire(self, venue: str, side: Daemon) -> Callable[[Desk, ExecutionEngine], None]:
        """``side.on_wired``: each strategy's context on ``venue``, its runner on its desk."""

        def wired(desk: Desk, engine: ExecutionEngine) -> None:
            engine.prepare_ids((one.loaded.name for one in self.all), later=run_soon)
            for one in self.all:
                name, symbols = one.loaded.name, one.ctx.symbols_on(venue)
                if isinstance(side, FuturesDaemon):
                    assert side.futures_private is not None
                    ctx: EngineContext = FuturesContext(
                        engine, desk, name, symbols, side.futures_private
                    )
                else:
                    ctx = EngineContext(engine, desk, name, symbols)
                desk.add_context(ctx)  # a risk halt of its scope cancels its orders there
                desk.add_runner(one.runner)  # this venue's events reach the one instance
                one.ctx.attach(venue, ctx, lambda: side.gate.is_open)

        return wired

    def start(self) -> None:
        """Both venues ready: leftover orders cancelled, then each strategy's ``on_start``."""
        for one in self.all:
            leftovers = one.ctx.open_orders()  # adopted from the stores by each side's start
            if leftovers:
                log.warning(
                    "leftover_orders_canceled", strategy=one.loaded.name, count=len(leftovers)
                )
                for handle in leftovers:
                    one.ctx.cancel(handle)
            one.runner.start()

    def stop(self) -> None:
        for one in self.all:
            one.runner.stop()

    def reload_params(self, path: Path | None) -> list[str]:
        """New params from ``path`` for each (all or none): the problems."""
        if not self.all or path is None:
            return []
        try:
            new = load_config(path)
        except ConfigError as exc:
            return list(exc.problems)
        by_name = {s.name: s for s in new.strategies if venue_of(new, s) == "both" and s.enabled}
        problems, fresh = [], []
        for one in self.all:
            cfg = by_name.get(one.loaded.name)
            if (
                cfg is None
                or cfg.class_ != one.loaded.config.class_
                or cfg.symbols != one.loaded.symbols
            ):
                problems.append(
                    f"strategy {one.loaded.name!r}: removed or changed: restart to apply"
                )
                continue
            try:
                fresh.append(one.loaded.check_params(cfg.params, cfg.where))
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            return problems
        for one, params in zip(self.all, fresh, strict=True):
            if params != one.loaded.params:
                one.loaded = LoadedStrategy(one.loaded.config, one.loaded.cls, params)
                one.runner.update_params(params)
        return []


def ended(runner: StrategyRunner) -> Callable[[], bool]:
    """A runner's timers end with it (stopped, or halted after too many errors)."""
    return lambda: runner.state in (RunnerState.STOPPED, RunnerState.HALTED)
