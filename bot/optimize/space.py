"""The search space: ``space.yaml`` read, checked against each strategy's typed ``Params``.

``space.yaml`` names, per strategy of the deployment (by its ``name``) and per parameter,
a range or a choice::

    strategies:
      mm:
        spread_bps: {low: 5, high: 60, step: 5}     # Decimal field: exact multiples of step
        size: {low: 0.001, high: 0.01, log: true}   # log scale (6 significant digits)
        post_only: {choices: [true, false]}
      ema:
        fast: {low: 3, high: 20}                    # int field: every integer

The kind of a range comes from the parameter's type in the strategy's ``Params`` class:
``int`` (integers, ``step`` optional), ``float`` (continuous unless ``step`` or ``log``)
or ``Decimal`` (``step`` or ``log`` required, so that every value is an exact decimal a
trader can paste). ``bool``, ``Literal`` and other types take ``choices`` only. Every
bound and every choice is validated against the field itself (its type and constraints,
``gt=0``, ``le=50``...), and every problem is a located line ``space.yaml:LINE: key.path:
message``, all of them at once, as ``check-config`` does (``ConfigError``: exit 2).
Constraints between fields (EMA's ``fast < slow``) can only be checked per trial: such a
trial is infeasible and recorded so (``bot.optimize.study``).

``Space.suggest`` asks a ``Suggester`` (an Optuna trial has that shape) for one value per
dimension, named ``strategy.param``, and returns them as the params each strategy gets.
Pure: the file's text comes in, no I/O.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Protocol, Union, cast, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from bot.config import KeyPath
from bot.config.reader import Reader
from bot.core.errors import ConfigError

__all__ = [
    "Choice",
    "Dimension",
    "Range",
    "Space",
    "Suggester",
    "parse_space",
]

Kind = Literal["int", "float", "decimal"]
Primitive = bool | int | float | str | None
LOG_DIGITS: Final = 6
"""Significant digits a log-scale ``Decimal`` value keeps."""
_RANGE_KEYS: Final = frozenset({"low", "high", "step", "log"})


class Suggester(Protocol):
    """What ``Space.suggest`` asks for values (``optuna.Trial`` has this shape)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
                    ) -> int: ...  # fmt: skip

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive: ...


@dataclass(frozen=True, slots=True)
class Range:
    """A numeric range of one parameter: ``low``..``high`` inclusive."""

    strategy: str
    param: str
    kind: Kind
    low: Decimal
    high: Decimal
    step: Decimal | None = None
    log: bool = False

    @property
    def name(self) -> str:
        return f"{self.strategy}.{self.param}"

    def suggest(self, trial: Suggester) -> int | float | Decimal:
        if self.kind == "int":
            istep = int(self.step) if self.step is not None else 1
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=istep, log=self.log
            )
        fstep = float(self.step) if self.step is not None else None
        x = trial.suggest_float(
            self.name, float(self.low), float(self.high), step=fstep, log=self.log
        )
        if self.kind == "float":
            return x
        if self.step is not None:  # the nearest multiple of step from low: exact
            k = round((Decimal(repr(x)) - self.low) / self.step)
            return min(self.high, max(self.low, self.low + k * self.step))
        return Decimal(f"{x:.{LOG_DIGITS}g}")


@dataclass(frozen=True, slots=True)
class Choice:
    """A choice among values (Optuna sees a ``Decimal`` choice as its text)."""

    strategy: str
    param: str
    choices: tuple[Any, ...]

    @property
    def name(self) -> str:
        return f"{self.strategy}.{self.param}"

    def options(self) -> list[Primitive]:
        return [_option(c) for c in self.choices]

    def suggest(self, trial: Suggester) -> Any:
        picked = trial.suggest_categorical(self.name, self.options())
        return self.choices[self.options().index(picked)]


Dimension = Range | Choice


@dataclass(frozen=True, slots=True)
class Space:
    """Every dimension of the search, in the file's order."""

    dimensions: tuple[Dimension, ...]

    def suggest(self, trial: Suggester) -> dict[str, dict[str, Any]]:
        """``{strategy: {param: value}}``: one trial's values."""
        out: dict[str, dict[str, Any]] = {}
        for dim in self.dimensions:
            out.setdefault(dim.strategy, {})[dim.param] = dim.suggest(trial)
        return out

    def values_of(self, optuna_params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """A finished trial's recorded values back as ``{strategy: {param: value}}``."""
        return self.suggest(_Recorded(optuna_params))


class _Recorded:
    """A ``Suggester`` answering from a trial's recorded params."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
                    ) -> int:  # fmt: skip
        return int(self._params[name])

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return float(self._params[name])

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive:
        value: Primitive = self._params[name]
        return value


def _option(value: Any) -> Primitive:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --------------------------------------------------------------------------- reading


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    if get_origin(tp) is Annotated:
        return get_args(tp)[0]
    return tp


def _kind_of(tp: Any) -> Kind | None:
    """The range kind a field's type allows, ``None`` if it takes choices only."""
    base = _strip_optional(tp)
    if base is bool:
        return None
    if base is int:
        return "int"
    if base is float:
        return "float"
    if base is Decimal:
        return "decimal"
    return None


class _Checker:
    """Reads one space file's data, collecting located problems."""

    def __init__(self, reader: Reader, params: Mapping[str, type[BaseModel]]) -> None:
        self.reader, self.params = reader, params
        self.problems: list[tuple[int, str]] = []

    def problem(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        smap = self.reader.smap
        line = smap.line_of(path, key=key)
        self.problems.append((line or 0, smap.problem(path, message, key=key)))

    def space(self, data: Mapping[str, Any]) -> Space:
        for key in data:
            if key != "strategies":
                self.problem((key,), "unknown key (expected 'strategies')", key=True)
        strategies = data.get("strategies")
        dims: list[Dimension] = []
        if not isinstance(strategies, Mapping) or not strategies:
            self.problem(("strategies",), "a mapping of strategy names to their parameters")
            return Space(())
        for name, params in strategies.items():
            path: KeyPath = ("strategies", name)
            model = self.params.get(name)
            if model is None:
                close = difflib.get_close_matches(name, list(self.params), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(sorted(self.params)) or "none"
                self.problem(path, f"no enabled strategy of that name{hint}; known: {known}",
                             key=True)  # fmt: skip
                continue
            if not isinstance(params, Mapping) or not params:
                self.problem(path, "a mapping of parameter names to a range or choices")
                continue
            for param, spec in params.items():
                dim = self.dimension(name, model, param, spec, (*path, param))
                if dim is not None:
                    dims.append(dim)
        return Space(tuple(dims))

    def dimension(
        self, strategy: str, model: type[BaseModel], param: str, spec: Any, path: KeyPath
    ) -> Dimension | None:
        field = model.model_fields.get(param)
        if field is None:
            close = difflib.get_close_matches(param, list(model.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(path, f"{model.__name__} has no parameter {param!r}{hint}", key=True)
            return None
        adapter: TypeAdapter[Any] = TypeAdapter(cast(Any, Annotated[field.annotation, field]))
        if not isinstance(spec, Mapping):
            self.problem(path, "expected {low: .., high: ..} or {choices: [...]}")
            return None
        if "choices" in spec:
            return self.choice(strategy, param, spec, adapter, path)
        kind = _kind_of(field.annotation)
        if kind is None:
            self.problem(path, f"{param} is not a number: give {{choices: [...]}}")
            return None
        return self.range(strategy, param, kind, spec=spec, adapter=adapter, path=path)

    def check_value(self, adapter: TypeAdapter[Any], value: Any, path: KeyPath) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as err:
            message = err.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            self.problem(path, message + self.reader.smap.describe_input(path, value))
            return None

    def choice(
        self,
        strategy: str,
        param: str,
        spec: Mapping[str, Any],
        adapter: TypeAdapter[Any],
        path: KeyPath,
    ) -> Choice | None:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            self.problem((*path, extra[0]), "choices take no other key", key=True)
        raw = spec["choices"]
        if not isinstance(raw, list) or not raw:
            self.problem((*path, "choices"), "a non-empty list of values")
            return None
        values = []
        before = len(self.problems)
        for i, item in enumerate(raw):
            values.append(self.check_value(adapter, item, (*path, "choices", i)))
        if len(self.problems) > before or extra:
            return None
        options = [_option(v) for v in values]
        if len(set(map(repr, options))) != len(options):
            self.problem((*path, "choices"), "a value is listed twice")
            return None
        return Choice(strategy, param, tuple(values))

    def number(self, spec: Mapping[str, Any], key: str, path: KeyPath) -> Decimal | None:
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.problem((*path, key), "a number" + self.reader.smap.describe_input(
                (*path, key), value))  # fmt: skip
            return None
        return Decimal(value)

    def range(
        self,
        strategy: str,
        param: str,
        kind: Kind,
        *,
        spec: Mapping[str, Any],
        adapter: TypeAdapter[Any],
        path: KeyPath,
    ) -> Range | None:
        before = len(self.problems)
        for key in sorted(set(spec) - _RANGE_KEYS):
            self.problem((*path, key), "unknown key (expected low, high, step, log or choices)",
                         key=True)  # fmt: skip
        for key in ("low", "high"):
            if key not in spec:
                self.problem(path, f"missing {key!r}", key=True)
        if len(self.problems) > before:
            return None
        low, high = self.number(spec, "low", path), self.number(spec, "high", path)
        step = self.number(spec, "step", path) if "step" in spec else None
        log = spec.get("log", False)
        if not isinstance(log, bool):
            self.problem((*path, "log"), "true or false")
        if low is None or high is None or len(self.problems) > before:
            return None
        for key, value in (("low", low), ("high", high)):
            typed = value if kind == "decimal" else (float(value) if kind == "float" else value)
            if kind == "int" and value != value.to_integral_value():
                self.problem((*path, key), "an integer (the parameter is an int)")
                continue
            self.check_value(adapter, int(typed) if kind == "int" else typed, (*path, key))
        if low >= high:
            self.problem((*path, "high"), f"must be above low ({low})")
        if step is not None:
            if step <= 0:
                self.problem((*path, "step"), "must be positive")
            elif log:
                self.problem((*path, "log"), "log and step cannot be combined")
            elif (high - low) % step != 0:
                self.problem((*path, "step"), f"high - low ({high - low}) is not a multiple of it")
            elif kind == "int" and step != step.to_integral_value():
                self.problem((*path, "step"), "an integer (the parameter is an int)")
        if log and low <= 0:
            self.problem((*path, "low"), "must be above 0 on a log scale")
        if kind == "decimal" and step is None and not log:
            self.problem(path, "a Decimal parameter needs 'step' or 'log: true' (exact values)")
        if len(self.problems) > before:
            return None
        return Range(strategy, param, kind, low, high, step, log)


def parse_space(text: str, source: str, params: Mapping[str, type[BaseModel]]) -> Space:
    """``space.yaml``'s text checked against ``params`` (strategy name → its ``Params``
    class); ``ConfigError`` listing every problem, each with its line."""
    reader = Reader(source, {})
    data = reader.read(text)
    checker = _Checker(reader, params)
    space = checker.space(data)
    problems = [*reader.problems, *checker.problems]
    if problems:
        raise ConfigError([p for _, p in sorted(problems, key=lambda p: p[0])])
    return space
