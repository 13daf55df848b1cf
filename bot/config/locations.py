"""Where a config problem is: key paths, the lines they were read from, located messages.

Every config error names its file, line and key path (``deploy.yaml:12:
risk.max_order_notional: ...``). ``SourceMap`` holds where each key path of a loaded file
sits (filled by the YAML reader); ``Where`` is a place under which to locate problems;
``located_problems`` turns pydantic's errors into those lines, with "did you mean" hints
for unknown keys and never a secret or an environment value in them. ``validate_params``
is the same for a strategy's ``params`` against its own class.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from bot.core.errors import ConfigError

__all__ = [
    "HIDDEN_FIELDS",
    "KeyPath",
    "SourceMap",
    "Where",
    "format_path",
    "located_problems",
    "validate_params",
]

KeyPath = tuple[str | int, ...]
M = TypeVar("M")
HIDDEN_FIELDS: Final = frozenset({"api_key", "api_secret", "control_token", "url", "token"})
"""Fields a message never names as a hint: the resolved secrets."""


def format_path(path: KeyPath) -> str:
    """``("strategies", 0, "params", "size")`` → ``strategies[0].params.size``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each key path of one loaded file sits: key lines, value lines, scalar texts.

    The reader fills the maps while it reads; they are read-only after loading.
    """

    source: str
    key_lines: dict[KeyPath, int] = field(default_factory=dict)
    value_lines: dict[KeyPath, int] = field(default_factory=dict)
    texts: dict[KeyPath, str] = field(default_factory=dict)
    substituted: dict[KeyPath, tuple[str, ...]] = field(default_factory=dict)

    def line_of(self, path: KeyPath, *, key: bool = False) -> int | None:
        """The line of ``path`` (its key's line if ``key``), else of its nearest ancestor."""
        if key and path in self.key_lines:
            return self.key_lines[path]
        for end in range(len(path), -1, -1):
            line = self.value_lines.get(path[:end])
            if line is not None:
                return line
        return None

    def problem(
        self, path: KeyPath, message: str, *, key: bool = False, line: int | None = None
    ) -> str:
        line = self.line_of(path, key=key) if line is None else line
        where = f"{self.source}:{line}" if line is not None else self.source
        return f"{where}: {format_path(path)}: {message}" if path else f"{where}: {message}"

    def describe_input(self, path: KeyPath, value: Any) -> str:
        """`` (got 'abc')`` for an error message; never a secret nor an environment value."""
        if path[:1] == ("credentials",):
            return ""
        names = self.substituted.get(path)
        if names:
            return " (from " + ", ".join(f"${{{n}}}" for n in names) + ")"
        if isinstance(value, Mapping):
            return " (got a mapping)" if value else " (got an empty mapping)"
        if isinstance(value, list | tuple):
            return " (got a list)" if value else " (got an empty list)"
        text = self.texts.get(path)
        if text is None:
            text = "null" if value is None else str(value)
        if len(text) > 40:
            text = text[:37] + "..."
        return f" (got {text!r})"


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a loaded config (a source map and a key path) to locate problems under."""

    source_map: SourceMap | None
    path: KeyPath = ()

    def problem(self, sub: KeyPath, message: str, *, line: int | None = None) -> str:
        full = self.path + sub
        if self.source_map is None:
            return f"{format_path(full)}: {message}" if full else message
        return self.source_map.problem(full, message, line=line)


def _schema_keys(model: Any) -> set[str]:
    """Every key the schema under ``model`` knows, for "did you mean" hints."""
    keys: set[str] = set()
    todo, seen = [model], set()
    while todo:
        tp = todo.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
            seen.add(tp)
            keys.update(f.alias or n for n, f in tp.model_fields.items())
            todo.extend(f.annotation for f in tp.model_fields.values())
        elif not isinstance(tp, type):
            todo.extend(get_args(tp))
    return keys - HIDDEN_FIELDS


def _unknown_key_message(model: Any, key: str | int) -> str:
    close = difflib.get_close_matches(str(key), _schema_keys(model), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def located_problems(
    err: ValidationError,
    where: Where,
    model: Any,
    skip: frozenset[KeyPath] = frozenset(),
) -> list[tuple[int, str]]:
    """Turn pydantic's errors into ``(line, "file:line: key.path: message")`` pairs."""
    smap = where.source_map
    out: list[tuple[int, str]] = []
    for error in err.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if p != "[key]")
        full = where.path + loc
        if any(full[: len(bad)] == bad for bad in skip):
            continue
        kind = error["type"]
        key = False
        if kind == "extra_forbidden":
            message, key = _unknown_key_message(model, loc[-1]), True
        elif kind == "missing":
            message, key = "missing required key", True
        else:
            message = error["msg"].removeprefix("Value error, ")
            if smap is not None:
                message += smap.describe_input(full, error.get("input"))
        # A missing key is reported at its parent's key line (`params:`), others at their own.
        at = full[:-1] if kind == "missing" and full else full
        line = smap.line_of(at, key=key) if smap is not None else None
        out.append((line or 0, where.problem(loc, message, line=line)))
    return out


def validate_params(model_cls: type[M], raw: Mapping[str, Any], where: Where | str) -> M:
    """Validate a strategy's ``params`` against its own class; problems name key and line.

    ``model_cls`` is any type pydantic validates (a ``BaseModel`` usually). ``where`` is
    ``StrategyConfig.where`` (or a plain label such as ``"strategies[0].params"``).
    """
    if isinstance(where, str):
        where = Where(None, (where,))
    try:
        return TypeAdapter(model_cls).validate_python(dict(raw))
    except ValidationError as err:
        problems = located_problems(err, where, model_cls)
        raise ConfigError([text for _, text in sorted(problems, key=lambda p: p[0])]) from None
