"""After the search: each fold's best trial run on its test window, beside its in-sample figure.

``walk_forward(loaded, storage)`` takes each fold's best trial (chosen on its train
window), runs it once on the fold's test window with the trial's own seed, and pairs the
in-sample figure with the out-of-sample one. ``diverges`` says when they disagree enough
to warn: out-of-sample of the other sign, below half of a positive in-sample figure, or
more than twice a negative one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from bot.optimize.objective import score, summary
from bot.optimize.study import finished_trials, study_name
from bot.optimize.trial import Loaded, backtest
from bot.optimize.walkforward import Fold

__all__ = ["FoldResult", "diverges", "walk_forward"]


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One fold: its study's trials, the best (``None`` if none completed) and its test run."""

    fold: Fold
    study: optuna.Study
    trials: Sequence[FrozenTrial]
    best: FrozenTrial | None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    in_sample: float | None = None
    out_of_sample: float | None = None
    oos_note: str = ""
    oos_figures: Mapping[str, str] = field(default_factory=dict)

    @property
    def warning(self) -> str | None:
        return diverges(self.in_sample, self.out_of_sample)


def diverges(in_sample: float | None, out_of_sample: float | None) -> str | None:
    """Why the two figures disagree enough to warn, or ``None`` (see the module)."""
    if in_sample is None or out_of_sample is None:
        return None
    if out_of_sample < 0 <= in_sample or out_of_sample <= 0 < in_sample:
        return "out-of-sample has the other sign: the best parameters may be fitted to noise"
    if in_sample > 0 and out_of_sample < in_sample / 2:
        return "out-of-sample is under half of in-sample: expect less than the search says"
    if in_sample < 0 and out_of_sample < 2 * in_sample:
        return "out-of-sample loses over twice what in-sample did"
    return None


def walk_forward(loaded: Loaded, storage: BaseStorage) -> list[FoldResult]:
    search = loaded.search
    out = []
    for fold in search.folds:
        study = optuna.load_study(study_name=study_name(search, fold), storage=storage)
        trials = finished_trials(study, search.trials)
        done = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
        if not done:
            out.append(FoldResult(fold, study, trials, None))
            continue
        best = max(done, key=lambda t: (t.value, -t.number))
        values = loaded.space.values_of(best.params)
        result = backtest(loaded, values, fold.test, int(best.user_attrs["seed"]))
        got = score(result.report, search.objective)
        out.append(
            FoldResult(
                fold, study, trials, best, values, in_sample=best.value,
                out_of_sample=got.value, oos_note=got.note,
                oos_figures=summary(result.report),
            )
        )  # fmt: skip
    return out
