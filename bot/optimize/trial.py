"""One trial: one backtest of the deployment with a trial's params, on one window.

``Search`` holds what every worker needs to run trials (picklable: worker processes get
it as it is): the deployment, the data, the space, the folds, the objective. ``Loaded``
is the same read and checked once per process: the config, the strategies' classes and
params, the space. ``backtest(loaded, values, window, seed)`` runs ``run_backtest`` (the
daemon's own order path on the simulator's matching engine, ``bot.backtest``) with
``from_ns``/``to_ns`` set to the window: frames before it only warm the books, and no
frame at or after its end is read, so a trial on a train window never sees its test
window. Each backtest writes its store in a temporary directory removed afterwards.

``check_values`` validates a trial's values against each strategy's whole ``Params``
(constraints between fields, EMA's ``fast < slow``), so that a combination the strategy
refuses is an infeasible trial rather than an error that stops the search.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.backtest import BacktestResult, BacktestSpec, run_backtest
from bot.config import Config, load_config
from bot.core.errors import ConfigError
from bot.optimize.objective import Objective
from bot.optimize.space import Space, parse_space
from bot.optimize.walkforward import Fold, Window
from bot.strategy.loader import LoadedStrategy, load_strategies

__all__ = ["Loaded", "Search", "backtest", "check_values", "load", "trial_seed"]


@dataclass(frozen=True, slots=True)
class Search:
    """Everything a worker needs (see the module)."""

    config: Path
    data: tuple[Path, ...]
    space: Path
    folds: tuple[Fold, ...]
    trials: int
    objective: Objective
    storage: str
    study: str
    seed: int = 0
    latency_ms: float = 5.0
    instruments: Path | None = None
    fee_volume_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A ``Search`` with its files read and checked."""

    search: Search
    config: Config
    strategies: Mapping[str, LoadedStrategy]
    space: Space


def load(search: Search) -> Loaded:
    """Read the deployment and the space; ``ConfigError`` naming file and line."""
    config = load_config(search.config)
    strategies = {s.name: s for s in load_strategies(config.strategies)}
    try:
        text = search.space.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{search.space}: cannot read: {exc.strerror or exc}") from None
    classes = {name: type(s.params) for name, s in strategies.items()}
    space = parse_space(text, str(search.space), classes)
    return Loaded(search, config, strategies, space)


def trial_seed(seed: int, fold: int, number: int) -> int:
    """The backtest seed of trial ``number`` of ``fold``: fixed by the study's seed alone,
    so a trial reruns alike whichever worker ran it."""
    digest = hashlib.sha256(f"{seed}:{fold}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def check_values(loaded: Loaded, values: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``None`` if every strategy takes its values, else the first refusal's text."""
    for name, params in values.items():
        strategy = loaded.strategies[name]
        try:
            strategy.check_params({**strategy.config.params, **params}, f"{name}.params")
        except ConfigError as err:
            return "; ".join(err.problems)
    return None


def backtest(
    loaded: Loaded, values: Mapping[str, Mapping[str, Any]], window: Window, seed: int
) -> BacktestResult:
    """One backtest of ``values`` on ``window`` (see the module)."""
    search = loaded.search
    with tempfile.TemporaryDirectory(prefix="krakenbot-trial-") as tmp:
        spec = BacktestSpec(
            config=loaded.config, data=search.data, from_ns=window.start_ns,
            to_ns=window.end_ns, latency_ms=search.latency_ms, seed=seed, params=values,
            store_path=Path(tmp) / "trial.db", instruments=search.instruments,
            fee_volume_usd=search.fee_volume_usd,
        )  # fmt: skip
        return run_backtest(spec)
