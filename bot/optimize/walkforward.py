"""Walk-forward splits: train on the past, report on the future the search never saw.

The classic mistake of a parameter search is to report the best trial's figures on the
data it was chosen on. Here the data's time range ``[start, end)`` is cut into folds, each
a train window followed by a test window, and the search of a fold runs its trials on the
train window only; the best parameters are then run once on the test window. Two ways:

* ``--folds K`` (default 1): anchored (expanding) folds, as scikit-learn's
  ``TimeSeriesSplit``: the range in ``K + 1`` equal parts; fold ``i`` trains on parts
  ``0..i`` and tests on part ``i + 1``. One fold is train on the first half, test on the
  second.
* ``--train T --test S`` (durations): rolling folds, train ``T`` then test ``S``, moved on
  by ``S`` each time, as many as fit; the test windows tile the end of the range.

Each fold is its own search (``bot.optimize.study``), so no fold's choice is made
on data another fold reports as out-of-sample for it. Windows are half-open in
nanoseconds; a train window ends where its test window starts (``train.end ==
test.start``), never after. Pure: numbers in, windows out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.core.errors import ConfigError

__all__ = ["MAX_FOLDS", "Fold", "Window", "anchored", "data_range", "rolling"]

MAX_FOLDS: Final = 100
"""Each fold is a whole search: more than this is a mistake in the durations."""


@dataclass(frozen=True, slots=True)
class Window:
    """``[start_ns, end_ns)``."""

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        if self.end_ns <= self.start_ns:
            raise ValueError(f"empty window {self.start_ns}..{self.end_ns}")

    def overlaps(self, other: Window) -> bool:
        return self.start_ns < other.end_ns and other.start_ns < self.end_ns


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward step: the search sees ``train``; ``test`` is what it is judged on."""

    index: int
    train: Window
    test: Window

    def __post_init__(self) -> None:
        if self.train.end_ns > self.test.start_ns:
            raise ValueError(f"fold {self.index}: train ends after its test starts")


def anchored(start_ns: int, end_ns: int, folds: int) -> list[Fold]:
    """``folds`` expanding folds over ``[start_ns, end_ns)`` (see the module)."""
    if not 1 <= folds <= MAX_FOLDS:
        raise ConfigError(f"--folds must be 1 to {MAX_FOLDS} (got {folds})")
    span = end_ns - start_ns
    parts = folds + 1
    if span < parts:
        raise ConfigError(f"the data spans {span} ns: too short for {folds} folds")
    cuts = [start_ns + span * i // parts for i in range(parts + 1)]
    return [
        Fold(i, Window(cuts[0], cuts[i + 1]), Window(cuts[i + 1], cuts[i + 2]))
        for i in range(folds)
    ]


def rolling(start_ns: int, end_ns: int, train_ns: int, test_ns: int) -> list[Fold]:
    """Rolling folds: train ``train_ns`` then test ``test_ns``, stepping by ``test_ns``;
    the last test window ends at ``end_ns`` or before (the first fold starts late enough
    for that: the unused head of the data is the oldest part)."""
    if train_ns <= 0 or test_ns <= 0:
        raise ConfigError("--train and --test must be positive durations")
    count = (end_ns - start_ns - train_ns) // test_ns
    if count < 1:
        raise ConfigError(
            f"the data spans {(end_ns - start_ns) / 1e9:.0f} s: shorter than one --train "
            f"({train_ns / 1e9:.0f} s) plus one --test ({test_ns / 1e9:.0f} s)"
        )
    if count > MAX_FOLDS:
        raise ConfigError(
            f"--train and --test make {count} folds, each a whole search (at most {MAX_FOLDS}):"
            " lengthen --test"
        )
    first = end_ns - train_ns - count * test_ns  # align the last test window with the end
    out = []
    for i in range(count):
        t0 = first + i * test_ns
        out.append(
            Fold(i, Window(t0, t0 + train_ns), Window(t0 + train_ns, t0 + train_ns + test_ns))
        )
    return out


def data_range(ranges: list[tuple[int, int]]) -> tuple[int, int]:
    """The time range ``[first, last + 1)`` covering every file's ``(first_ns, last_ns)``."""
    if not ranges:
        raise ConfigError("the data holds no timestamped frame: nothing to split in time")
    return min(r[0] for r in ranges), max(r[1] for r in ranges) + 1
