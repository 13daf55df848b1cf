"""Objectives on real backtests: n/a is an infeasible trial with its reason, never a number;
values a strategy refuses are infeasible before any backtest."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import optuna
from optuna.trial import TrialState

from bot.optimize.outputs import best_yaml
from bot.optimize.results import walk_forward
from bot.optimize.study import open_storage, study_name, work
from bot.optimize.trial import load
from tests.unit.optimize.helpers import search

EMA = """\
mode: paper
market: {symbols: [BTC/USD], book_depth: 10}
sim: {balances: {USD: 100000}}
risk: {max_order_notional: 100000, price_band_pct: 5, max_orders_per_minute: 1000}
strategies:
  - name: ema
    class: strategies.ema_cross:EmaCross
    symbols: [BTC/USD]
    params: {size: 0.1, max_position: 0.1, fast: 2, slow: 4}
"""


def trials(s) -> list[optuna.trial.FrozenTrial]:  # type: ignore[no-untyped-def]
    study = optuna.load_study(study_name=study_name(s, s.folds[0]), storage=open_storage(s.storage))
    return study.get_trials(deepcopy=False)


def test_a_ratio_the_run_is_too_short_for_prunes_every_trial_with_the_reason(
    tmp_path: Path,
) -> None:
    s = dataclasses.replace(search(tmp_path, trials=3), objective="sharpe")
    work(s)
    done = trials(s)
    assert [t.state for t in done] == [TrialState.PRUNED] * 3
    assert all(t.user_attrs["note"].startswith("sharpe n/a: only ") for t in done)
    assert all(t.value is None for t in done)
    loaded = load(s)
    [result] = walk_forward(loaded, open_storage(s.storage))
    assert result.best is None and result.in_sample is None
    assert best_yaml(loaded, [result]) is None  # nothing to recommend


def test_calmar_is_pnl_over_the_drawdown(tmp_path: Path) -> None:
    s = dataclasses.replace(search(tmp_path, trials=6), objective="calmar")
    work(s)
    assert {t.state for t in trials(s)} == {TrialState.COMPLETE, TrialState.PRUNED}
    for t in trials(s):
        figures = t.user_attrs["figures"]
        if t.state is TrialState.COMPLETE:
            assert t.value == float(Decimal(figures["pnl"]) / Decimal(figures["max_drawdown"]))
        else:  # crossed nothing: no drawdown, calmar undefined
            assert t.user_attrs["note"] == "calmar n/a: no drawdown: calmar is undefined"
            assert figures["max_drawdown"] == "0"


def test_values_the_strategy_refuses_are_infeasible_trials(tmp_path: Path) -> None:
    s = search(tmp_path, trials=12)
    s.config.write_text(EMA)
    s.space.write_text(
        "strategies:\n  ema:\n    fast: {low: 2, high: 9}\n    slow: {low: 3, high: 10}\n"
    )
    work(s)
    done = trials(s)
    refused = [t for t in done if t.params["ema.fast"] >= t.params["ema.slow"]]
    taken = [t for t in done if t.params["ema.fast"] < t.params["ema.slow"]]
    assert refused and taken
    for t in refused:
        assert t.state is TrialState.PRUNED
        assert "must be less than slow" in t.user_attrs["note"]
        assert "figures" not in t.user_attrs  # refused before any backtest
    assert all(t.state is TrialState.COMPLETE and t.value == 0.0 for t in taken)  # no trades
