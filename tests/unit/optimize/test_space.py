"""space.yaml: read, checked against the strategies' typed Params, suggested exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import optuna
import pytest

from bot.core.errors import ConfigError
from bot.optimize.space import Choice, Range, parse_space
from strategies.ema_cross import EmaCrossParams
from strategies.grid import GridParams
from strategies.market_maker import MarketMakerParams

PARAMS = {"mm": MarketMakerParams, "ema": EmaCrossParams, "grid": GridParams}


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_space(text, "space.yaml", PARAMS)
    return info.value.problems


def test_a_good_space_reads_every_kind() -> None:
    space = parse_space(
        "strategies:\n"
        "  mm:\n"
        "    spread_bps: {low: 5, high: 60, step: 5}\n"
        "    size: {low: 0.001, high: 0.01, log: true}\n"
        "    vol_window_s: {low: 1, high: 10}\n"
        "    post_only: {choices: [true, false]}\n"
        "  ema:\n"
        "    fast: {low: 3, high: 20}\n"
        "    order_type: {choices: [limit, market]}\n",
        "space.yaml",
        PARAMS,
    )
    assert space.dimensions == (
        Range("mm", "spread_bps", "decimal", Decimal(5), Decimal(60), Decimal(5)),
        Range("mm", "size", "decimal", Decimal("0.001"), Decimal("0.01"), None, log=True),
        Range("mm", "vol_window_s", "float", Decimal(1), Decimal(10)),
        Choice("mm", "post_only", (True, False)),
        Range("ema", "fast", "int", Decimal(3), Decimal(20)),
        Choice("ema", "order_type", ("limit", "market")),
    )


def test_every_problem_is_named_with_its_line() -> None:
    text = (
        "strategies:\n"  # 1
        "  mm:\n"  # 2
        "    spred_bps: {low: 5, high: 60, step: 5}\n"  # 3
        "    size: {low: -1, high: 0.01, step: 0.001}\n"  # 4
        "    post_only: {low: 0, high: 1}\n"  # 5
        "    skew_bps: {low: 1, high: 10}\n"  # 6
        "  grid:\n"  # 7
        "    levels: {low: 1, high: 80}\n"  # 8
        "    spacing_bps: {low: 10, high: 55, step: 10}\n"  # 9
        "  emma:\n"  # 10
        "    fast: {low: 3, high: 2}\n"  # 11
        "  ema:\n"  # 12
        "    fast: {low: 1.5, high: 9}\n"  # 13
        "    order_type: {choices: [limit, stop]}\n"  # 14
    )
    got = problems(text)
    assert got[0].startswith("space.yaml:3: strategies.mm.spred_bps:")
    assert "did you mean 'spread_bps'" in got[0]
    assert got[1].startswith("space.yaml:4: strategies.mm.size.low: Input should be greater")
    assert got[2] == "space.yaml:5: strategies.mm.post_only: post_only is not a number: " \
        "give {choices: [...]}"  # fmt: skip
    assert got[3].startswith("space.yaml:6: strategies.mm.skew_bps: a Decimal parameter needs")
    assert got[4].startswith("space.yaml:8: strategies.grid.levels.high: Input should be less")
    assert got[5].startswith("space.yaml:9: strategies.grid.spacing_bps.step: high - low (45)")
    assert got[6].startswith("space.yaml:10: strategies.emma: no enabled strategy")
    assert "did you mean 'ema'" in got[6]
    assert got[7].startswith("space.yaml:13: strategies.ema.fast.low: an integer")
    assert got[8].startswith("space.yaml:14: strategies.ema.order_type.choices[1]: Input should")
    assert len(got) == 9


def test_shape_problems() -> None:
    assert problems("nope: 1\n")[0] == "space.yaml:1: nope: unknown key (expected 'strategies')"
    assert "a mapping of strategy names" in problems("strategies: []\n")[-1]
    got = problems(
        "strategies:\n  ema:\n    fast: {high: 9}\n    slow: {low: 2, high: 9, log: yes, step: 1}\n"
        "    size: {choices: []}\n"
    )
    assert got == [
        "space.yaml:3: strategies.ema.fast: missing 'low'",
        "space.yaml:4: strategies.ema.slow.log: log and step cannot be combined",
        "space.yaml:5: strategies.ema.size.choices: a non-empty list of values",
    ]
    assert "syntax error" in problems("strategies: {mm: [\n")[0]


class Fixed:
    """Answers every suggestion with the bound it is given: low, high, or a set value."""

    def __init__(self, pick: str, value: Any = None) -> None:
        self.pick, self.value = pick, value
        self.asked: list[str] = []

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
                    ) -> int:  # fmt: skip
        self.asked.append(name)
        return low if self.pick == "low" else high

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:  # fmt: skip
        self.asked.append(name)
        return (
            float(self.value) if self.value is not None else (low if self.pick == "low" else high)
        )

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.asked.append(name)
        return choices[0] if self.pick == "low" else choices[-1]


def test_decimal_values_are_exact_multiples_of_the_step() -> None:
    space = parse_space(
        "strategies:\n  mm:\n    spread_bps: {low: 0.1, high: 3.5, step: 0.1}\n", "s", PARAMS
    )
    assert 0.1 + 0.2 == 0.30000000000000004  # what a float step gives
    assert space.suggest(Fixed("x", 0.1 + 0.2)) == {"mm": {"spread_bps": Decimal("0.3")}}
    assert space.suggest(Fixed("high")) == {"mm": {"spread_bps": Decimal("3.5")}}


def test_log_decimals_keep_six_significant_digits() -> None:
    space = parse_space(
        "strategies:\n  mm:\n    size: {low: 0.001, high: 1, log: true}\n", "s", PARAMS
    )
    assert space.suggest(Fixed("x", 0.0123456789)) == {"mm": {"size": Decimal("0.0123457")}}


def test_values_round_trip_through_an_optuna_study() -> None:
    space = parse_space(
        "strategies:\n  mm:\n    spread_bps: {low: 5, high: 60, step: 5}\n"
        "    size: {choices: [0.001, 0.002]}\n  ema:\n    fast: {low: 3, high: 20}\n",
        "s",
        PARAMS,
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        seen.append(values)
        study.tell(trial, 0.0)
        assert space.values_of(trial.params) == values
    assert all(v["mm"]["spread_bps"] % 5 == 0 for v in seen)
    assert {v["mm"]["size"] for v in seen} == {Decimal("0.001"), Decimal("0.002")}
    assert all(isinstance(v["ema"]["fast"], int) for v in seen)
