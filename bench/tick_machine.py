"""The tick bench's control (``machine``): book frame in → a fixed piece of work, no order.

What the machine does to a tick of a given length, with no daemon in it. Per book update,
received as every other contender receives it, the contender runs the same loop of integer
arithmetic (``work``), which allocates nothing the collector tracks, reads no socket and
calls nothing, and its sample is receipt to the loop's end. The loop's count is fixed once
per run (``calibrate``): long enough to take ``WORK_US`` when run back to back, about the
length of ``krakenbot_ws``'s decision. Whatever spread its samples have is the machine's:
a pause of the process (the hypervisor, another process, an interrupt) that falls inside
the loop. So its p99.9 ÷ p99, in the same run, is what any code of about that length gets
on that machine then, and ``krakenbot_ws``'s is read beside it (``ws_targets``). Clock
points: ``recv`` as the other contenders; the end of the loop as ``written``; no stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from bench.tick_floor import BOOK_UPDATE, Samples, book_socket, frame_time_ns

__all__ = ["WORK_US", "MachineControl", "calibrate", "work"]

WORK_US: Final = 60.0
"""The loop's length run back to back, µs: about ``krakenbot_ws``'s decision at p50."""

_NOW = time.perf_counter_ns
_PROBE_ROUNDS: Final = 3000  # rounds timed per calibration try: long enough to time
_TRIES: Final = 7  # the fastest try counts: the loop undisturbed


def work(rounds: int) -> int:
    """``rounds`` steps of a 16-bit linear congruential generator: the same instructions
    every time, nothing allocated that the collector tracks. Returns the last value (so the
    loop is not work a compiler may drop; CPython drops none)."""
    x = 1
    for _ in range(rounds):
        x = (x * 25173 + 13849) & 0xFFFF
    return x


def calibrate(target_us: float, timer: Callable[[], int] = _NOW) -> int:
    """The rounds of ``work`` that take ``target_us`` back to back on this machine now: the
    fastest of a few timed tries of ``_PROBE_ROUNDS`` on ``timer`` (ns), scaled; at least 1."""
    fastest = min(_timed(timer, _PROBE_ROUNDS) for _ in range(_TRIES))
    return max(1, round(target_us * 1000 * _PROBE_ROUNDS / max(fastest, 1)))


def _timed(timer: Callable[[], int], rounds: int) -> int:
    start = timer()
    work(rounds)
    return timer() - start


class MachineControl:
    """The ``machine`` contender (see the module docstring)."""

    name = "machine"
    stages: tuple[str, ...] = ()

    def __init__(self, target_us: float = WORK_US) -> None:
        self.target_us = target_us
        self.rounds = 0  # calibrated at the first ``prepare``, with the simulator running

    def prepare(self, n: int) -> None:
        if not self.rounds:
            self.rounds = calibrate(self.target_us)

    async def block(self, ws_url: str, samples: Samples, frames: int, warmup: int) -> None:
        rounds, seen = self.rounds, 0
        async with book_socket(ws_url) as ws:
            async for raw in ws:
                wall, t_recv = time.time_ns(), _NOW()
                if not (isinstance(raw, str) and raw.startswith(BOOK_UPDATE)):
                    continue
                work(rounds)
                t_done = _NOW()
                if seen >= warmup:
                    samples.add(t_done - t_recv)
                    samples.ages.append(wall - frame_time_ns(raw))
                seen += 1
                if seen >= warmup + frames:
                    break

    async def cancel_all(self) -> int:
        return 0  # it places nothing
