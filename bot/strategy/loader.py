"""Loading strategy classes named in the config, and validating their params.

This module owns how ``strategies[].class`` is resolved, in three forms:

- ``package.module:Class``: an importable module (installed, or on ``PYTHONPATH``);
- ``path/to/file.py:Class``: a file, e.g. one mounted into the container (relative paths
  are relative to the working directory; the file is imported once per process);
- ``name``: a short name from the ``krakenbot.strategies`` entry-point group, or one of
  the bundled strategies (``BUNDLED``), which resolve even before they are registered.

Every problem is a ``ConfigError`` located at the strategy's ``class`` (or ``params``)
key: ``deploy.yaml:12: strategies[0].class: module 'mm' has no class 'MM'``.
``load_strategies`` checks every enabled strategy and raises all problems at once. It
imports users' code (which may run anything at import) but never instantiates it:
``LoadedStrategy.create(ctx)`` does, when the engine has a context for it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from bot.config import StrategyConfig, Where, validate_params
from bot.core.errors import ConfigError
from bot.strategy import HANDLERS, Context, Params, Strategy, StrategyError, params_class_of

__all__ = [
    "BUNDLED",
    "ENTRY_POINT_GROUP",
    "LoadedStrategy",
    "available_strategies",
    "load_strategies",
    "load_strategy",
    "resolve_class",
]

ENTRY_POINT_GROUP: Final = "krakenbot.strategies"
BUNDLED: Final[Mapping[str, str]] = {
    "ema_cross": "strategies.ema_cross:EmaCross",
    "basis": "strategies.basis:BasisHedge",
    "grid": "strategies.grid:GridTrader",
    "market_maker": "strategies.market_maker:MarketMaker",
}
"""The bundled strategies' short names; entry points of the same name take precedence."""


@dataclass(frozen=True, slots=True)
class LoadedStrategy:
    """A strategy class resolved and its params validated, ready to instantiate."""

    config: StrategyConfig
    cls: type[Strategy[Any]]
    params: Params

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.symbols

    def create(self, ctx: Context) -> Strategy[Any]:
        """The strategy instance, bound to ``ctx``; a failing ``__init__`` is a ConfigError."""
        try:
            return self.cls(ctx, self.params)
        except (Exception, SystemExit) as exc:
            message = f"{_qualname(self.cls)}() failed: {type(exc).__name__}: {exc}"
            raise ConfigError(_class_where(self.config).problem(("class",), message)) from exc

    def check_params(self, raw: Mapping[str, Any], where: Where | str) -> Params:
        """New params (a config reload) checked against this class, located like at load."""
        return validate_params(params_class_of(self.cls), raw, where)


def available_strategies() -> dict[str, str]:
    """Short name -> ``module:Class`` of every entry point and bundled strategy."""
    names = dict(BUNDLED)
    names.update({ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})
    return dict(sorted(names.items()))


def resolve_class(spec: str) -> type[Strategy[Any]]:
    """The strategy class ``spec`` names; an unlocated ``ConfigError`` if it cannot be."""
    if ":" not in spec:
        obj = _from_entry_point(spec)
    else:
        source, name = spec.rsplit(":", 1)
        if source.endswith(".py") or "/" in source or "\\" in source:
            module, label = _import_file(source), f"file {source!r}"
        else:
            module, label = _import_module(source), f"module {source!r}"
        obj = getattr(module, name, None)
        if obj is None:
            raise ConfigError(f"{label} has no class {name!r}{_suggest(module, name)}")
    return _check_class(spec, obj)


def load_strategy(config: StrategyConfig) -> LoadedStrategy:
    """Resolve ``config.class_`` and validate ``config.params``; located ``ConfigError``."""
    try:
        cls = resolve_class(config.class_)
    except ConfigError as err:
        where = _class_where(config)
        raise ConfigError([where.problem(("class",), p) for p in err.problems]) from None
    params = validate_params(params_class_of(cls), config.params, config.where)
    return LoadedStrategy(config, cls, params)


def load_strategies(configs: Iterable[StrategyConfig]) -> list[LoadedStrategy]:
    """Every enabled strategy loaded, or one ``ConfigError`` listing every problem."""
    loaded: list[LoadedStrategy] = []
    problems: list[str] = []
    for config in configs:
        if not config.enabled:
            continue
        try:
            loaded.append(load_strategy(config))
        except ConfigError as err:
            problems.extend(err.problems)
    if problems:
        raise ConfigError(problems)
    return loaded


# --------------------------------------------------------------------------- helpers


def _class_where(config: StrategyConfig) -> Where:
    where = config.where  # .../params: the strategy's own key path is its parent
    return Where(where.source_map, where.path[:-1])


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _from_entry_point(name: str) -> object:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if found:
        try:
            return found[0].load()
        except (Exception, SystemExit) as exc:
            raise ConfigError(
                f"entry point {name!r} ({found[0].value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    if name in BUNDLED:
        return resolve_class(BUNDLED[name])
    known = available_strategies()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"unknown strategy {name!r}: not in the {ENTRY_POINT_GROUP!r} entry points nor bundled"
        f" ({hint}known: {', '.join(known)}; or use 'module:Class' / 'file.py:Class')"
    )


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise ConfigError(
                f"no module named {name!r} (is it installed, or on PYTHONPATH?)"
            ) from None
        raise ConfigError(f"importing module {name!r} failed: {exc}") from None
    except (Exception, SystemExit) as exc:  # user code: sys.exit on import is a failure too
        raise ConfigError(f"importing module {name!r} failed: {_describe(exc)}") from None


def _import_file(source: str) -> ModuleType:
    path = Path(source).expanduser()
    resolved = path.resolve()
    if not resolved.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ConfigError(f"no such file {source!r}{where}")
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", resolved.stem)
    name = f"krakenbot_file_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {source!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: pydantic and dataclasses look it up
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise ConfigError(f"importing file {source!r} failed: {_describe(exc)}") from None
    return module


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def _suggest(module: ModuleType, name: str) -> str:
    classes = [
        key
        for key, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Strategy) and value is not Strategy
    ]
    close = difflib.get_close_matches(name, classes, n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (it defines {', '.join(sorted(classes))})" if classes else ""


def _check_class(spec: str, obj: object) -> type[Strategy[Any]]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        kind = "a class" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise ConfigError(f"{spec!r} is {kind}, not a subclass of bot.strategy.Strategy")
    for handler in HANDLERS:
        fn = getattr(obj, handler)
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigError(
                f"{obj.__name__}.{handler} is async: handlers must be plain 'def' "
                "(they run on the event loop and must return quickly)"
            )
    try:
        params_class_of(obj)
    except StrategyError as err:
        raise ConfigError(str(err)) from None
    return obj
