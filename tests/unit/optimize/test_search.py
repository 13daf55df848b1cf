"""The search on the real capture: better than a bad start, train windows only, determinism,
two worker processes sharing one journal file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import optuna
from optuna.trial import TrialState

from bot.optimize.objective import score
from bot.optimize.results import walk_forward
from bot.optimize.study import open_storage, open_study, run_fold, run_workers, study_name, work
from bot.optimize.trial import backtest, load, trial_seed
from tests.unit.optimize.helpers import END_NS, START_NS, search


def _trials(s, fold) -> list[optuna.trial.FrozenTrial]:  # type: ignore[no-untyped-def]
    study = optuna.load_study(study_name=study_name(s, fold), storage=open_storage(s.storage))
    return study.get_trials(deepcopy=False)


def test_a_small_search_beats_a_bad_start_on_train_data_only(tmp_path: Path) -> None:
    s = search(tmp_path, trials=8)
    fold = s.folds[0]
    assert (fold.train.start_ns, fold.test.end_ns) == (START_NS, END_NS)
    loaded = load(s)
    start = backtest(loaded, {}, fold.train, seed=0)  # the deployment's own params
    bad = score(start.report, "pnl").value
    assert bad is not None and bad < 0  # centred at 29300: its sells cross the book

    assert work(s) == 8
    trials = _trials(s, fold)
    assert [t.number for t in trials] == list(range(8))
    for t in trials:  # every trial ran on the train window, never on the test window
        assert t.user_attrs["window"] == {
            "start_ns": fold.train.start_ns, "end_ns": fold.train.end_ns
        }  # fmt: skip
        assert START_NS <= t.user_attrs["last_frame_ns"] < fold.test.start_ns
        assert t.user_attrs["seed"] == trial_seed(0, 0, t.number)
    [result] = walk_forward(loaded, open_storage(s.storage))
    assert result.best is not None and result.in_sample is not None
    assert result.in_sample > bad  # the search found a better centre than the start
    assert result.values["grid"]["center"] != Decimal(29300)
    assert result.out_of_sample is not None  # run once, on the test window


def test_the_same_seed_gives_the_same_search_with_one_worker(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        s = search(tmp_path / name, trials=5, seed=7)
        work(s)
        runs.append([(t.params, t.value, t.user_attrs["figures"]) for t in _trials(s, s.folds[0])])
    assert runs[0] == runs[1]
    assert len({str(p) for p, _, _ in runs[0]}) > 1  # it did search


def test_two_worker_processes_share_one_journal_file(tmp_path: Path) -> None:
    s = search(tmp_path, trials=10)
    seen: list[int] = []
    run_workers(s, 2, seen.append)
    trials = _trials(s, s.folds[0])
    real = [t for t in trials if not t.user_attrs.get("surplus")]
    # exactly N trials, numbered 0..N-1, each finished once by one worker
    assert sorted(t.number for t in real) == list(range(10))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in real)
    assert all(t.user_attrs["seed"] == trial_seed(0, 0, t.number) for t in real)
    assert all("worker" in t.user_attrs for t in real)
    # a worker that drew a number past N marked it surplus and ran nothing
    extra = [t for t in trials if t.user_attrs.get("surplus")]
    assert all(t.number >= 10 and t.state is TrialState.FAIL for t in extra)
    assert "figures" not in str([t.user_attrs for t in extra])
    assert seen[-1] == 10  # progress counted every finished trial


class Racing:
    """A worker's study whose every ask is beaten by another worker's (the same storage)."""

    def __init__(self, mine: optuna.Study, other: optuna.Study) -> None:
        self.mine, self.other = mine, other

    def get_trials(self, **kw: object) -> list[optuna.trial.FrozenTrial]:
        return self.mine.get_trials(**kw)  # type: ignore[arg-type]

    def ask(self) -> optuna.Trial:
        self.other.ask()  # the other worker takes a number first
        return self.mine.ask()

    def tell(self, *args: object, **kw: object) -> None:
        self.mine.tell(*args, **kw)  # type: ignore[arg-type]


def test_a_worker_that_draws_past_the_last_trial_runs_nothing(tmp_path: Path) -> None:
    s = search(tmp_path, trials=1)
    storage = open_storage(s.storage)
    mine = open_study(s, s.folds[0], storage, worker=0)
    other = open_study(s, s.folds[0], storage, worker=1)
    ran = run_fold(load(s), Racing(mine, other), s.folds[0])  # type: ignore[arg-type]
    assert ran == 0
    [taken, surplus] = _trials(s, s.folds[0])
    assert (taken.number, taken.state) == (0, TrialState.RUNNING)  # the other worker's
    assert (surplus.number, surplus.state) == (1, TrialState.FAIL)
    assert surplus.user_attrs == {"surplus": True}


def test_an_rdb_url_is_a_storage_too(tmp_path: Path) -> None:
    s = search(tmp_path, trials=2, storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert work(s) == 2
    assert [t.state for t in _trials(s, s.folds[0])] == [TrialState.COMPLETE] * 2
    assert (tmp_path / "study.db").stat().st_size > 0
