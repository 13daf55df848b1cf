"""Garbage collection between ticks, not in them: the collector's pauses after the write.

CPython's cyclic collector runs by itself when the tracked objects made minus those freed
since its last pass exceed generation 0's threshold (700): at whichever allocation that
happens to be, as likely in the middle of a tick's decision (an order being built) as
anywhere, and then that tick waits for the pass. ``install()`` moves that automatic
trigger far out (``BACKSTOP`` objects: it still fires by itself if no tick comes, so
memory stays bounded) and ``after_tick()``, called once a market event's handlers have
returned (their orders already written: ``bot.strategy.order_path.route_market``), runs
the pass the default thresholds would have run by then, of the same generation: the
same collections, about as often, at a point where no order waits for them. A full
(generation 2) pass is run when generation 1 has been collected more than its threshold
allows, without CPython's extra condition on the long-lived objects' growth: the daemon
freezes its start-up heap (``gc.freeze``), so a full pass walks only what was made since.

Only the daemon installs it (``bot.service.wiring.freeze_startup_heap``); elsewhere (a
backtest, the tests) ``after_tick`` is a no-op and the collector runs as CPython sets it.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["BACKSTOP", "after_tick", "install", "installed", "uninstall"]

BACKSTOP: Final = 100_000  # generation 0's automatic threshold once installed

_thresholds: tuple[int, int, int] | None = None  # the collector's own, while installed


def install() -> None:
    """Collect between ticks from now on (see the module docstring); idempotent."""
    global _thresholds  # noqa: PLW0603 (the collector is one per process, as gc's state is)
    if _thresholds is not None:
        return
    t0, t1, t2 = gc.get_threshold()
    _thresholds = (t0, t1, t2)
    gc.set_threshold(max(t0, BACKSTOP), t1, t2)


def uninstall() -> None:
    """The collector's own thresholds back (a test, or a process that stops trading)."""
    global _thresholds  # noqa: PLW0603
    if _thresholds is not None:
        gc.set_threshold(*_thresholds)
        _thresholds = None


def installed() -> bool:
    return _thresholds is not None


def after_tick() -> int:
    """The collection that is due now, if one is (-1: none; else its generation)."""
    thresholds = _thresholds
    if thresholds is None:
        return -1
    c0, c1, c2 = gc.get_count()
    t0, t1, t2 = thresholds
    if c0 <= t0:
        return -1
    # As CPython picks it: the oldest generation whose count passed its threshold (a pass
    # of generation 0 counts one for generation 1, of generation 1 one for generation 2).
    generation = 2 if c2 > t2 else 1 if c1 > t1 else 0
    gc.collect(generation)
    return generation
