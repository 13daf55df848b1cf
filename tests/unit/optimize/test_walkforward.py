"""Walk-forward splits: a fold's search never sees the data its figures are reported on."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import ConfigError
from bot.optimize.walkforward import MAX_FOLDS, Fold, Window, anchored, data_range, rolling

NS = st.integers(min_value=0, max_value=10**19)


def check(folds: list[Fold], start: int, end: int) -> None:
    assert folds
    for fold in folds:
        # the search sees train only: train is wholly before test, never overlapping it
        assert not fold.train.overlaps(fold.test)
        assert fold.train.end_ns <= fold.test.start_ns
        assert start <= fold.train.start_ns < fold.train.end_ns <= end
        assert start <= fold.test.start_ns < fold.test.end_ns <= end
    tests = [f.test for f in folds]
    for a, b in itertools.pairwise(tests):  # out-of-sample windows move forward
        assert a.end_ns <= b.start_ns
    assert [f.index for f in folds] == list(range(len(folds)))


@given(
    NS, st.integers(min_value=1, max_value=10**15), st.integers(min_value=1, max_value=MAX_FOLDS)
)
def test_anchored_folds_train_before_they_test(start: int, span: int, k: int) -> None:
    if span < k + 1:
        with pytest.raises(ConfigError):
            anchored(start, start + span, k)
        return
    folds = anchored(start, start + span, k)
    check(folds, start, start + span)
    assert len(folds) == k
    assert all(f.train.start_ns == start for f in folds)  # expanding
    assert folds[-1].test.end_ns == start + span  # the whole range is used
    for a, b in itertools.pairwise(folds):
        assert a.test == Window(a.train.end_ns, b.train.end_ns)


@given(
    NS,
    st.integers(min_value=1, max_value=10**15),
    st.integers(min_value=1, max_value=10**14),
    st.integers(min_value=1, max_value=10**14),
)
def test_rolling_folds_train_before_they_test(start: int, span: int, train: int, test: int) -> None:
    end = start + span
    if span < train + test:
        with pytest.raises(ConfigError):
            rolling(start, end, train, test)
        return
    if (span - train) // test > MAX_FOLDS:
        with pytest.raises(ConfigError, match="lengthen --test"):
            rolling(start, end, train, test)
        return
    folds = rolling(start, end, train, test)
    check(folds, start, end)
    assert folds[-1].test.end_ns == end
    assert len(folds) == (span - train) // test
    for fold in folds:
        assert fold.train.end_ns - fold.train.start_ns == train
        assert fold.test.end_ns - fold.test.start_ns == test
        assert fold.train.end_ns == fold.test.start_ns
    for a, b in itertools.pairwise(folds):  # test windows tile the range's tail
        assert a.test.end_ns == b.test.start_ns


def test_one_fold_is_halves() -> None:
    assert anchored(0, 100, 1) == [Fold(0, Window(0, 50), Window(50, 100))]
    assert anchored(0, 90, 2) == [
        Fold(0, Window(0, 30), Window(30, 60)),
        Fold(1, Window(0, 60), Window(60, 90)),
    ]


def test_a_fold_refuses_to_train_after_it_tests() -> None:
    with pytest.raises(ValueError, match="train ends after its test starts"):
        Fold(0, Window(0, 60), Window(50, 100))
    with pytest.raises(ValueError, match="empty window"):
        Window(5, 5)


def test_bad_splits_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="1 to 100"):
        anchored(0, 100, 0)
    with pytest.raises(ConfigError, match="positive"):
        rolling(0, 100, 0, 10)
    with pytest.raises(ConfigError, match="no timestamped frame"):
        data_range([])
    assert data_range([(5, 9), (1, 3)]) == (1, 10)
