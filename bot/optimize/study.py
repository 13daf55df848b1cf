"""The search: one Optuna study per walk-forward fold, its trials run by workers.

**Storage.** ``--storage`` takes any Optuna storage: an RDB URL (``postgresql://...``,
``mysql://...``, ``sqlite:///...``) or ``journal:PATH``, Optuna's journal storage on a
file (``JournalFileBackend``: an append-only log taken under a file lock, which Optuna
documents as the storage for several processes on one machine with no server). The
default is ``journal:OUT/study.journal``. SQLite is accepted but not the default: Optuna's
documentation advises against it for parallel workers (its database-wide lock makes them
fail with "database is locked"). PostgreSQL is how several machines share one study.

**Trials.** Fold ``i``'s study is ``NAME.fold<i>``, maximised. A worker, for each fold in
order, asks the study for a trial until the study holds ``--trials`` of them: the storage
numbers trials ``0, 1, 2...`` atomically, so when two workers race for the last one, the
one that draws number ``N`` or more marks it ``FAIL`` with ``surplus`` set and stops;
trials ``0..N-1`` each run once, by one worker. A trial samples its values (the space),
checks them against the strategies (``infeasible`` if refused: ``PRUNED`` with the
reason), runs one backtest on the fold's **train** window with its own seed
(``trial_seed``), and is told the objective (``PRUNED`` with the reason if it is n/a).
Its user attributes record the seed, the worker, the window and the report's headline
figures, so any trial can be rerun alike.

**Workers.** ``J`` processes on this machine (``spawn``: each builds its own event loop
and store), each with the sampler seeded ``seed + worker``; with ``J = 1`` the search runs
in this process, and the same seed gives the same trials, values and figures.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Final

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from bot.core.errors import ConfigError
from bot.core.log import get_logger
from bot.optimize.objective import score, summary
from bot.optimize.trial import Loaded, Search, backtest, check_values, load, trial_seed
from bot.optimize.walkforward import Fold

__all__ = [
    "FINISHED",
    "JOURNAL_PREFIX",
    "finished_trials",
    "open_storage",
    "open_study",
    "run_fold",
    "run_workers",
    "study_name",
    "work",
]

JOURNAL_PREFIX: Final = "journal:"
FINISHED: Final = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
log = get_logger(component="optimize")


def open_storage(url: str) -> BaseStorage:
    """The storage ``url`` names (see the module); ``ConfigError`` if it cannot be opened."""
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix(JOURNAL_PREFIX)
        if not path:
            raise ConfigError("--storage journal:PATH needs a path")
        try:
            return JournalStorage(JournalFileBackend(path))
        except OSError as exc:
            raise ConfigError(f"--storage {url}: {exc.strerror or exc}") from None
    try:
        return optuna.storages.RDBStorage(url)
    except (ImportError, ModuleNotFoundError) as exc:
        raise ConfigError(f"--storage: the database driver is not installed: {exc}") from None
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, no server, refused login
        raise ConfigError(f"--storage: cannot open the study storage: {exc}") from None


def study_name(search: Search, fold: Fold) -> str:
    return f"{search.study}.fold{fold.index}"


def open_study(search: Search, fold: Fold, storage: BaseStorage, worker: int = 0) -> optuna.Study:
    """Fold ``fold``'s study, created by the first worker, joined by the others. A study
    of that name made for another search (objective, trials, windows) is refused."""
    sampler = optuna.samplers.TPESampler(seed=search.seed + worker)
    study = optuna.create_study(
        storage=storage, study_name=study_name(search, fold), direction="maximize",
        sampler=sampler, load_if_exists=True,
    )  # fmt: skip
    stamp = {
        "objective": search.objective,
        "trials": search.trials,
        "train": [fold.train.start_ns, fold.train.end_ns],
        "test": [fold.test.start_ns, fold.test.end_ns],
        "seed": search.seed,
    }
    for key, value in stamp.items():
        have = study.user_attrs.get(key)
        if have is None:
            study.set_user_attr(key, value)
        elif have != value:
            raise ConfigError(
                f"study {study.study_name!r} in this storage was made with {key} {have!r},"
                f" not {value!r}: pick another --study name"
            )
    return study


def _run_trial(loaded: Loaded, study: optuna.Study, fold: Fold, trial: optuna.Trial) -> None:
    search = loaded.search
    seed = trial_seed(search.seed, fold.index, trial.number)
    values = loaded.space.suggest(trial)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("fold", fold.index)
    trial.set_user_attr("window", asdict(fold.train))  # the only data the trial is given
    refused = check_values(loaded, values)
    if refused is not None:
        trial.set_user_attr("note", f"infeasible: {refused}")
        study.tell(trial, state=TrialState.PRUNED)
        return
    started = time.perf_counter()
    result = backtest(loaded, values, fold.train, seed)
    trial.set_user_attr("last_frame_ns", result.end_ns)  # the latest data it read
    trial.set_user_attr("wall_s", round(time.perf_counter() - started, 3))
    trial.set_user_attr("figures", summary(result.report))
    got = score(result.report, search.objective)
    if got.value is None:
        trial.set_user_attr("note", f"{search.objective} n/a: {got.note}")
        study.tell(trial, state=TrialState.PRUNED)
        return
    study.tell(trial, got.value)


def finished_trials(study: optuna.Study, limit: int) -> list[FrozenTrial]:
    """The study's trials ``0..limit-1`` that have finished (surplus ones left out)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=FINISHED)
        if t.number < limit and not t.user_attrs.get("surplus")
    ]


def work(search: Search, worker: int = 0, on_trial: Callable[[], None] | None = None) -> int:
    """Run trials of every fold until each study holds ``search.trials``; how many ran here.
    ``on_trial`` is called after each."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = load(search)
    storage = open_storage(search.storage)
    ran = 0
    for fold in search.folds:
        ran += run_fold(loaded, open_study(search, fold, storage, worker), fold, on_trial)
    return ran


def run_fold(
    loaded: Loaded, study: optuna.Study, fold: Fold, on_trial: Callable[[], None] | None = None
) -> int:
    """Trials of ``fold`` until ``study`` holds ``--trials`` of them; how many ran here."""
    limit, ran = loaded.search.trials, 0
    while len(study.get_trials(deepcopy=False)) < limit:
        trial = study.ask()
        if trial.number >= limit:  # another worker took the last one meanwhile
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            break
        try:
            _run_trial(loaded, study, fold, trial)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        ran += 1
        if on_trial is not None:
            on_trial()
    return ran


def _worker_main(search: Search, worker: int) -> None:  # pragma: no cover - in a child
    from bot.core.log import configure_logging

    configure_logging("warning", "json")
    work(search, worker)


def run_workers(search: Search, jobs: int, on_progress: Callable[[int], None]) -> None:
    """``jobs`` worker processes on this machine; ``on_progress(finished)`` as trials end,
    from the storage's counts. ``ConfigError`` if a worker fails."""
    import multiprocessing

    if jobs == 1:
        count = [0]

        def one() -> None:
            count[0] += 1
            on_progress(count[0])

        work(search, 0, one)
        return
    storage = open_storage(search.storage)
    for fold in search.folds:  # created here once, not raced for by the workers
        open_study(search, fold, storage)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_main, args=(search, w), name=f"optimize-{w}")
        for w in range(jobs)
    ]
    for proc in procs:
        proc.start()
    try:
        while any(p.is_alive() for p in procs):
            for proc in procs:
                proc.join(timeout=1.0)
            on_progress(_count(search, storage))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
    on_progress(_count(search, storage))
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise ConfigError(f"worker(s) {', '.join(failed)} failed: see their log lines above")


def _count(search: Search, storage: BaseStorage) -> int:
    total = 0
    for fold in search.folds:
        study = optuna.load_study(study_name=study_name(search, fold), storage=storage)
        total += len(finished_trials(study, search.trials))
    return total


def trial_values(loaded: Loaded, trial: FrozenTrial) -> dict[str, dict[str, Any]]:
    """A finished trial's values as each strategy's params."""
    return loaded.space.values_of(trial.params)
