"""Reading one YAML document into plain data, keeping the line of every key and value.

``Reader`` composes the document with PyYAML's safe loader and builds dicts, lists and
scalars itself, so that it can record each value's line in a ``SourceMap``, substitute
``${VAR}`` / ``${VAR:-default}`` from the environment (``$$`` is a dollar), keep floats
exact (``Decimal``), refuse duplicate keys, recursive aliases and documents too large or
too deep, and collect every problem as a located line instead of stopping at the first.
It opens no file and knows nothing of the schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import yaml

from bot.config.locations import KeyPath, SourceMap
from bot.core.errors import ConfigError

__all__ = ["Reader"]

_STR_TAG: Final = "tag:yaml.org,2002:str"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"
# `$$` | `${NAME}` or `${NAME:-default}` | anything else after `${`
_REF: Final = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-)([^}]*))?\}|(\{[^}]*\}?))")
_WHOLE_REF: Final = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_INT_TAG: Final = "tag:yaml.org,2002:int"
_MAX_NODES: Final = 100_000
_MAX_DEPTH: Final = 32
_MAX_NUMBER_CHARS: Final = 100


def _too_deep(source: str) -> str:
    return f"{source}: nested too deeply (collections within collections past Python's limit)"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class Reader:
    """Composes one YAML document and builds plain data, recording where every value sits."""

    def __init__(self, source: str, env: Mapping[str, str]) -> None:
        self.env = env
        self.smap = SourceMap(source)
        self.problems: list[tuple[int, str]] = []
        self.bad_paths: set[KeyPath] = set()
        self.whole_refs: dict[KeyPath, str] = {}
        self._loader = yaml.SafeLoader("")
        self._open: set[int] = set()
        self._count = 0

    def problem(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        self.problem_at(self.smap.line_of(path, key=key) or 0, path, message)

    def problem_at(self, line: int, path: KeyPath, message: str) -> None:
        self.problems.append((line, self.smap.problem(path, message, line=line or None)))

    def read(self, text: str) -> dict[str, Any]:
        source = self.smap.source
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except RecursionError:  # PyYAML composes nested collections recursively
            raise ConfigError(_too_deep(source)) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            what = "; ".join(p for p in (exc.context, exc.problem) if p)
            raise ConfigError(f"{source}{line}: YAML syntax error: {what}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: YAML error: {exc}") from None
        if node is None:
            raise ConfigError(f"{source}: the file is empty (expected keys such as 'mode: paper')")
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            raise ConfigError(
                f"{source}:{_line(node)}: the top level must be a mapping, not {kind}"
            )
        self.smap.value_lines[()] = _line(node)
        try:
            data = self._build(node, ())
        except RecursionError:  # an alias chain within the depth limit, on a deep stack
            raise ConfigError(_too_deep(source)) from None
        assert isinstance(data, dict)
        return data

    def _build(self, node: yaml.Node, path: KeyPath) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            raise ConfigError(f"{self.smap.source}: too many values (aliases expanding?)")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if len(path) >= _MAX_DEPTH:
            self.problem_at(_line(node), path, f"nested too deeply (over {_MAX_DEPTH} levels)")
            self.bad_paths.add(path)
            return None
        if id(node) in self._open:
            self.problem(path, "recursive alias")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath) -> list[Any]:
        out = []
        for index, child in enumerate(node.value):
            sub = (*path, index)
            self.smap.key_lines[sub] = self.smap.value_lines[sub] = _line(child)
            out.append(self._build(child, sub))
        return out

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self._loader.flatten_mapping(node)  # YAML merge keys: `<<: *defaults`
        except yaml.MarkedYAMLError as exc:
            self.problem(path, f"bad merge: {exc.problem}")
            return {}
        out: dict[str, Any] = {}
        owners: dict[str, bool] = {}
        for key_node, value_node in node.value:
            line = _line(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem_at(line, path, "keys must be plain strings")
                continue
            # Keys are their text: `no:` or `1:` stay the strings "no" and "1".
            key = str(key_node.value)
            sub = (*path, key)
            if owners.get(key) and id(key_node) in own:
                first = self.smap.key_lines[sub]
                self.problem_at(line, sub, f"duplicate key (first at line {first})")
                continue
            # A merged key is overridden by the mapping's own key of the same name.
            owners[key] = id(key_node) in own
            self.smap.key_lines[sub] = line
            self.smap.value_lines[sub] = _line(value_node)
            out[key] = self._build(value_node, sub)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        self.smap.texts[path] = node.value
        if node.tag == _STR_TAG and "$" in node.value:
            text, names, errors = self._substitute(node.value)
            for error in errors:
                self.problem(path, error)
            if errors:
                self.bad_paths.add(path)
                return None
            if not names:
                return text
            self.smap.substituted[path] = names
            if node.value == f"${{{names[0]}}}":
                self.whole_refs[path] = names[0]
            if not _WHOLE_REF.fullmatch(node.value):
                return text  # text around a reference: always a string
            # A value that is one reference takes the type its value spells: `${PORT}` → 8080.
            tag = self._loader.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
            node = yaml.ScalarNode(tag, text, node.start_mark, node.end_mark)
        return self._construct(node, path)

    def _construct(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag in (_INT_TAG, _FLOAT_TAG) and len(node.value) > _MAX_NUMBER_CHARS:
            # int() refuses past 4300 digits (a ValueError PyYAML does not catch); no value
            # the schema takes is anywhere near this long.
            self.problem(path, f"number too long ({len(node.value)} characters)")
            self.bad_paths.add(path)
            return None
        if node.tag == _FLOAT_TAG:
            try:  # exact: 0.1 stays Decimal("0.1"), never a binary float
                return Decimal(node.value.replace("_", ""))
            except InvalidOperation:
                pass
        try:
            return self._loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.problem(path, f"cannot read value: {problem}")
            self.bad_paths.add(path)
            return None

    def _substitute(self, text: str) -> tuple[str, tuple[str, ...], list[str]]:
        names: list[str] = []
        errors: list[str] = []

        def one(match: re.Match[str]) -> str:
            dollar, name, has_default, default, bad = match.groups()
            if dollar:
                return "$"  # `$$` is a literal dollar
            if bad is not None:
                errors.append(f"invalid reference '${bad}' (expected ${{NAME}} or ${{NAME:-x}})")
                return ""
            value = self.env.get(name)
            if value is None or (value == "" and has_default):
                if not has_default:
                    errors.append(
                        f"environment variable {name} is not set (${{{name}:-x}} sets a default)"
                    )
                    return ""
                value = default
            names.append(name)
            return str(value)

        return _REF.sub(one, text), tuple(names), errors
