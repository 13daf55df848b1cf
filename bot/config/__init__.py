"""The daemon's configuration: one YAML file into frozen, typed config objects.

This module owns the schema (``Config`` and its sections), reading YAML with every node's
line kept, ``${VAR}`` / ``${VAR:-default}`` substitution from the environment, resolving
secrets (from the environment or a file the config names, never from the YAML itself) into
``Secret`` wrappers, and turning every problem into one located line::

    deploy.yaml:12: risk.max_order_notional: Input should be a valid decimal (got 'abc')
    deploy.yaml:7: market.depht: unknown key (did you mean 'book_depth'?)

Every problem is collected and raised together as one ``ConfigError``. The same line mapping
serves strategy plugins: ``validate_params(Params, strategy.params, strategy.where)``.
It never opens a socket, never imports a strategy and never logs a secret.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.core.errors import ConfigError
from bot.core.log import Secret

__all__ = [
    "DEFAULT_STORE_PATHS",
    "Config",
    "CredentialsConfig",
    "DeadmanConfig",
    "HttpConfig",
    "KeyPath",
    "LogConfig",
    "MarketConfig",
    "NotifierConfig",
    "NotifyConfig",
    "RiskConfig",
    "Secret",
    "ShutdownConfig",
    "SimConfig",
    "SourceMap",
    "StoreConfig",
    "StrategyConfig",
    "VenueConfig",
    "Where",
    "default_config_path",
    "format_path",
    "load_config",
    "load_config_text",
    "validate_params",
]

KeyPath = tuple[str | int, ...]
M = TypeVar("M")
_ENV_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"


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


_HIDDEN_FIELDS: Final = frozenset({"api_key", "api_secret", "control_token", "url", "token"})


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
    return keys - _HIDDEN_FIELDS


def _unknown_key_message(model: Any, key: str | int) -> str:
    close = difflib.get_close_matches(str(key), _schema_keys(model), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def _located_problems(
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
        problems = _located_problems(err, where, model_cls)
        raise ConfigError([text for _, text in sorted(problems, key=lambda p: p[0])]) from None


# `risk:` with every entry commented out is an empty section, not an error.
_EMPTY_MAP: Final = BeforeValidator(lambda v: {} if v is None else v)
_EMPTY_LIST: Final = BeforeValidator(lambda v: [] if v is None else v)


def _number_only(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise PydanticCustomError("number_type", "Input should be a number")
    return value


def _matching(pattern: str, code: str, message: str, upper: bool = False) -> AfterValidator:
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise PydanticCustomError(code, message)
        return value.upper() if upper else value

    return AfterValidator(check)


# Bounds no deployment comes near, so that an absurd value (`1e999999999`, whose exact
# scaled integer has a billion digits) is refused here rather than hanging the risk gate.
MAX_AMOUNT: Final = Decimal(10) ** 15
"""The largest price, quantity, notional or balance a config may name."""
MAX_DECIMAL_PLACES: Final = 18
MAX_COUNT: Final = 10**9
MAX_SECONDS: Final = 10.0**9
_AMOUNT: Final = Field(le=MAX_AMOUNT, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)

StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
Port = Annotated[int, Strict(), Field(ge=0, le=65535)]
Seconds = Annotated[
    float, BeforeValidator(_number_only), Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)
]
NonNegSeconds = Annotated[
    float, BeforeValidator(_number_only), Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)
]
PosDecimal = Annotated[Decimal, Field(gt=0), _AMOUNT]
NonNegDecimal = Annotated[Decimal, Field(ge=0), _AMOUNT]
PosInt = Annotated[int, Strict(), Field(gt=0, le=MAX_COUNT)]
_SYMBOL_RE: Final = r"[A-Za-z0-9]{1,16}/[A-Za-z0-9]{1,16}"
Symbol = Annotated[str, _matching(_SYMBOL_RE, "symbol", "expected BASE/QUOTE like 'BTC/USD'", True)]
Asset = Annotated[
    str, _matching(r"[A-Za-z0-9.]{1,16}", "asset", "expected an asset like 'BTC'", True)
]
Symbols = Annotated[tuple[Symbol, ...], _EMPTY_LIST]
EnvName = Annotated[str, _matching(_ENV_NAME, "env_name", "expected an environment variable name")]
SimSource = Annotated[
    str,
    _matching(
        "synthetic|live|replay:.+", "sim_source", "expected 'synthetic', 'live' or 'replay:PATH'"
    ),
]
_CLASS_RE: Final = r"[^:\s]+:[A-Za-z_]\w*|[A-Za-z_][\w.-]*"
_CLASS_MSG: Final = (
    "expected 'package.module:Class', 'path/to/file.py:Class' or an entry-point name"
)
StrategyClass = Annotated[str, _matching(_CLASS_RE, "strategy_class", _CLASS_MSG)]
StrategyName = Annotated[
    str, _matching(r"[A-Za-z0-9_.-]{1,64}", "name", "expected letters, digits, '_', '.' or '-'")
]


HttpUrl = Annotated[str, _matching(r"https?://[^/?#\s]+\S*", "url", "expected an http(s):// URL")]
WsUrl = Annotated[str, _matching(r"wss?://[^/?#\s]+\S*", "url", "expected a ws(s):// URL")]
Channel = Literal["book", "trade", "ticker"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Each subclass gets pydantic's hash of its fields; this base itself is never hashed.
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        # Values only: where they were read from (private attributes) does not count.
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__


# --------------------------------------------------------------------------- schema


class VenueConfig(_Model):
    """Where Kraken is. In paper mode the daemon points these at the simulator instead."""

    rest_url: HttpUrl = "https://api.kraken.com"
    ws_public_url: WsUrl = "wss://ws.kraken.com/v2"
    ws_private_url: WsUrl = "wss://ws-auth.kraken.com/v2"
    tier: Literal["starter", "intermediate", "pro"] = "starter"
    request_timeout_s: Seconds = 10.0
    dedicated_connection: bool = True  # private calls on krakenbot's own kept-alive HTTP/1.1


class CredentialsConfig(_Model):
    """Where the API key and secret come from; the values themselves are ``Secret``."""

    api_key_env: EnvName | None = None
    api_secret_env: EnvName | None = None
    api_key_file: Path | None = None
    api_secret_file: Path | None = None
    api_key: Secret = Field(repr=False)
    api_secret: Secret = Field(repr=False)


class MarketConfig(_Model):
    """The public market data the daemon subscribes to."""

    symbols: Symbols = ()
    book_depth: Literal[10, 25, 100, 500, 1000] = 10
    channels: Annotated[tuple[Channel, ...], _EMPTY_LIST] = get_args(Channel)
    stale_after_s: Seconds = 5.0
    ping_interval_s: Seconds = 15.0


class SimConfig(_Model):
    """The bundled simulator's market, used in paper mode."""

    source: SimSource = "synthetic"
    seed: StrictInt = 0
    symbols: Symbols = ()
    speed: Seconds = 1.0
    balances: Annotated[dict[Asset, NonNegDecimal], _EMPTY_MAP] = Field(
        default_factory=lambda: {"USD": Decimal(10000)}
    )
    host: str = "127.0.0.1"
    port: Port = 0
    keys: list[dict[str, Any]] = Field(default_factory=list)  # bot.sim.keys.KeySpec entries
    upstream_url: WsUrl = "wss://ws.kraken.com/v2"  # the live source's public WS v2

    @property
    def replay_path(self) -> Path | None:
        if not self.source.startswith("replay:"):
            return None
        return Path(self.source.removeprefix("replay:"))


DEFAULT_STORE_PATHS: Final = {"paper": Path("data/paper.db"), "live": Path("data/live.db")}
"""Each mode's own store when ``store.path`` is not set: paper fills never meet live ones."""


class StoreConfig(_Model):
    path: Path = DEFAULT_STORE_PATHS["paper"]


class DeadmanConfig(_Model):
    """Kraken's CancelAllOrdersAfter: armed for ``timeout_s``, refreshed every ``refresh_s``."""

    enabled: StrictBool = True
    timeout_s: Annotated[int, Strict(), Field(ge=1, le=86399)] = 60
    refresh_s: Seconds | None = None

    @property
    def refresh_interval_s(self) -> float:
        return self.refresh_s if self.refresh_s is not None else self.timeout_s / 4


class ShutdownConfig(_Model):
    cancel_orders: StrictBool = True
    grace_s: NonNegSeconds = 10.0


class HttpConfig(_Model):
    """The HTTP face (health, metrics, dashboard) and its control API, off without a token.

    ``control_token_env`` names the environment variable holding the control API's bearer
    token; the loader resolves it into ``control_token`` (a ``Secret``, at least
    ``MIN_TOKEN_CHARS`` long). Without it, nothing served changes the daemon's state.
    """

    enabled: StrictBool = True
    host: str = "127.0.0.1"
    port: Port = 8080
    control_token_env: EnvName | None = None
    control_token: Secret | None = Field(default=None, repr=False)

    @property
    def control_enabled(self) -> bool:
        return self.control_token is not None


class NotifierConfig(_Model):
    """One notification channel. ``webhook``: a JSON POST to the URL in ``url_env`` (a
    secret: Slack's and Discord's URLs carry their token), in ``format``'s shape. ``telegram``:
    the Bot API's ``sendMessage`` at ``api_url`` with the token in ``token_env``."""

    kind: Literal["webhook", "telegram"]
    name: StrategyName | None = None
    format: Literal["slack", "discord", "mattermost", "json"] = "slack"
    url_env: EnvName | None = None
    token_env: EnvName | None = None
    chat_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    api_url: HttpUrl = "https://api.telegram.org"
    min_level: Literal["info", "warning", "critical"] = "info"
    url: Secret | None = Field(default=None, repr=False)
    token: Secret | None = Field(default=None, repr=False)

    def label(self, index: int) -> str:
        """The name in logs and metrics: ``name``, else ``webhook-1``, ``telegram-2``..."""
        return self.name or f"{self.kind}-{index + 1}"


class NotifyConfig(_Model):
    """Notifications: which fills to send (``off``, ``each`` one, or a ``batch`` summary
    every ``fills_every_s``), how many messages a notifier may send per minute, how many
    may wait (``queue_size``; more are dropped and counted), and how delivery retries."""

    notifiers: Annotated[tuple[NotifierConfig, ...], _EMPTY_LIST] = ()
    fills: Literal["off", "each", "batch"] = "batch"
    fills_every_s: Seconds = 60.0
    max_per_minute: PosInt = 20
    queue_size: PosInt = 100
    attempts: PosInt = 5
    timeout_s: Seconds = 10.0
    drain_s: NonNegSeconds = 5.0


class LogConfig(_Model):
    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"],
        BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
    ] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class RiskConfig(_Model):
    """Pre-trade limits; an unset limit is not checked. Quantities are in base units."""

    max_order_qty: PosDecimal | None = None
    max_order_notional: PosDecimal | None = None
    max_position: Annotated[dict[Asset, NonNegDecimal], _EMPTY_MAP] = Field(default_factory=dict)
    max_open_orders: PosInt | None = None
    price_band_pct: PosDecimal | None = None
    max_orders_per_minute: PosInt | None = None
    daily_loss_limit: PosDecimal | None = None

    def merged(self, override: RiskConfig) -> RiskConfig:
        """These limits with every limit ``override`` sets taken from it (per asset too)."""
        update = {name: getattr(override, name) for name in override.model_fields_set}
        update["max_position"] = {**self.max_position, **override.max_position}
        return self.model_copy(update=update)


class StrategyConfig(_Model):
    """One strategy instance. ``params`` is validated later against the strategy's class."""

    name: StrategyName
    class_: StrategyClass = Field(alias="class")
    symbols: Annotated[tuple[Symbol, ...], Field(min_length=1)]
    params: Annotated[dict[str, Any], _EMPTY_MAP] = Field(default_factory=dict)
    risk: Annotated[RiskConfig, _EMPTY_MAP] = Field(default_factory=RiskConfig)
    max_errors: Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)] = 10
    enabled: StrictBool = True
    _where: Where | None = PrivateAttr(default=None)

    @property
    def where(self) -> Where:
        """Where ``params`` sits in the config file, for ``validate_params``."""
        return self._where or Where(None, ("strategies", self.name, "params"))


_S = TypeVar("_S", bound=BaseModel)
Section = Annotated[_S, _EMPTY_MAP]


class Config(_Model):
    """The whole deployment. ``Config()`` is the offline paper default with no strategies."""

    mode: Literal["paper", "live"] = "paper"
    venue: Section[VenueConfig] = Field(default_factory=VenueConfig)
    credentials: CredentialsConfig | None = None
    market: Section[MarketConfig] = Field(default_factory=MarketConfig)
    sim: Section[SimConfig] = Field(default_factory=SimConfig)
    store: Section[StoreConfig] = Field(default_factory=StoreConfig)
    deadman: Section[DeadmanConfig] = Field(default_factory=DeadmanConfig)
    shutdown: Section[ShutdownConfig] = Field(default_factory=ShutdownConfig)
    http: Section[HttpConfig] = Field(default_factory=HttpConfig)
    notify: Section[NotifyConfig] = Field(default_factory=NotifyConfig)
    log: Section[LogConfig] = Field(default_factory=LogConfig)
    risk: Section[RiskConfig] = Field(default_factory=RiskConfig)
    strategies: Annotated[tuple[StrategyConfig, ...], _EMPTY_LIST] = ()
    _source_map: SourceMap | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _store_path_of_the_mode(cls, data: Any) -> Any:
        """An unset ``store.path`` is the mode's own (``DEFAULT_STORE_PATHS``)."""
        if not isinstance(data, dict):
            return data
        store, mode = data.get("store"), data.get("mode", "paper")
        store = {} if store is None else store
        default = DEFAULT_STORE_PATHS.get(mode) if isinstance(mode, str) else None
        if isinstance(store, dict) and "path" not in store and default is not None:
            data = {**data, "store": {**store, "path": default}}
        return data

    @property
    def source_map(self) -> SourceMap | None:
        return self._source_map

    def where(self, *path: str | int) -> Where:
        return Where(self._source_map, path)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol to subscribe: ``market.symbols``, else the strategies' symbols."""
        if self.market.symbols:
            return self.market.symbols
        seen = dict.fromkeys(s for strat in self.strategies for s in strat.symbols)
        return tuple(seen)

    def strategy_risk(self, strategy: StrategyConfig) -> RiskConfig:
        """The global risk limits with ``strategy``'s overrides applied."""
        return self.risk.merged(strategy.risk)


# --------------------------------------------------------------------------- YAML reading

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


class _Reader:
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

    def _problem(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        self._problem_at(self.smap.line_of(path, key=key) or 0, path, message)

    def _problem_at(self, line: int, path: KeyPath, message: str) -> None:
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
            self._problem_at(_line(node), path, f"nested too deeply (over {_MAX_DEPTH} levels)")
            self.bad_paths.add(path)
            return None
        if id(node) in self._open:
            self._problem(path, "recursive alias")
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
            self._problem(path, f"bad merge: {exc.problem}")
            return {}
        out: dict[str, Any] = {}
        owners: dict[str, bool] = {}
        for key_node, value_node in node.value:
            line = _line(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem_at(line, path, "keys must be plain strings")
                continue
            # Keys are their text: `no:` or `1:` stay the strings "no" and "1".
            key = str(key_node.value)
            sub = (*path, key)
            if owners.get(key) and id(key_node) in own:
                first = self.smap.key_lines[sub]
                self._problem_at(line, sub, f"duplicate key (first at line {first})")
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
                self._problem(path, error)
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
            self._problem(path, f"number too long ({len(node.value)} characters)")
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
            self._problem(path, f"cannot read value: {problem}")
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


MIN_TOKEN_CHARS: Final = 16
"""The shortest control API token accepted (``openssl rand -hex 32`` makes 64)."""
_CREDENTIAL_KEYS: Final = {f"api_{k}_{s}" for k in ("key", "secret") for s in ("env", "file")}
_SECRETISH: Final = re.compile(r"key|secret|token|passw|private|otp|sign", re.IGNORECASE)


class _Resolver:
    """Resolves ``credentials`` into ``Secret`` values and runs the cross-key checks."""

    def __init__(self, reader: _Reader) -> None:
        self.reader, self.env = reader, reader.env

    def credentials(self, data: dict[str, Any]) -> None:
        creds = data.get("credentials")
        if not isinstance(creds, dict):
            return
        for key in list(creds):
            if key not in _CREDENTIAL_KEYS and key not in _HIDDEN_FIELDS and _SECRETISH.search(key):
                creds.pop(key)
                self._literal(("credentials", key))
        for name in ("api_key", "api_secret"):
            creds[name] = Secret(self._one_secret(creds, name))  # registered for log scrubbing

    def _literal(self, path: KeyPath) -> None:
        name = str(path[-1])
        self.reader._problem(
            path,
            "a literal secret is not allowed in the config file: name an environment variable"
            f" with {name}_env (or a file with {name}_file) instead",
            key=True,
        )
        self.reader.bad_paths.add(path)

    def _one_secret(self, creds: dict[str, Any], name: str) -> str:
        path: KeyPath = ("credentials", name)
        if name in creds:
            literal = creds.pop(name)
            var = self.reader.whole_refs.get(path)
            if var is not None and literal is not None:  # `api_key: ${VAR}`: from the environment
                return self._checked(name, path, f"${var}", self._from_env(path, var))
            if path not in self.reader.bad_paths:
                self._literal(path)
            return ""
        env_name, file_name = creds.get(f"{name}_env"), creds.get(f"{name}_file")
        if env_name is not None and file_name is not None:
            message = f"set either {name}_env or {name}_file, not both"
            self.reader._problem(("credentials", f"{name}_file"), message)
            return ""
        if isinstance(env_name, str):
            where: KeyPath = ("credentials", f"{name}_env")
            return self._checked(name, where, f"${env_name}", self._from_env(where, env_name))
        if isinstance(file_name, str):
            where = ("credentials", f"{name}_file")
            return self._checked(name, where, repr(file_name), self._from_file(where, file_name))
        if env_name is None and file_name is None:
            message = f"{name}: missing (set {name}_env or {name}_file)"
            self.reader._problem(("credentials",), message)
        return ""  # a wrong type: pydantic reports it

    def _checked(self, name: str, path: KeyPath, source: str, value: str) -> str:
        """``value``, or "" with a problem if it is a secret Kraken could not have issued:
        API secrets are base64 (the signer decodes them; ``run`` would stop there)."""
        if name != "api_secret" or not value:
            return value
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if not decoded:  # never echo the value, nor any part of it
            self.reader._problem(path, f"the API secret in {source} is not valid base64")
            return ""
        return value

    def _from_env(self, path: KeyPath, var: str) -> str:
        if not re.fullmatch(_ENV_NAME, var):
            return ""  # pydantic says it is not a variable name, without echoing it
        value = self.env.get(var)
        if not value:
            state = "is not set" if value is None else "is empty"
            self.reader._problem(path, f"environment variable {var} {state}")
            return ""
        return value

    def _from_file(self, path: KeyPath, name: str) -> str:
        file = Path(name).expanduser()
        try:
            value = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            self.reader._problem(path, f"cannot read {str(file)!r}: {reason}")
            return ""
        if not value:
            self.reader._problem(path, f"{str(file)!r} is empty")
            return ""
        return value

    def env_secrets(self, data: dict[str, Any]) -> None:
        """``http.control_token_env`` and each notifier's ``url_env`` / ``token_env``: the
        environment variables they name, resolved into ``Secret`` values (a literal value
        in the YAML is refused, as an API key is); each notifier's keys for its kind."""
        http = data.get("http")
        if isinstance(http, dict):
            self._env_secret(http, ("http",), "control_token", min_chars=MIN_TOKEN_CHARS)
        notify = data.get("notify")
        listed = notify.get("notifiers") if isinstance(notify, dict) else None
        for index, item in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(item, dict):
                self._notifier(item, ("notify", "notifiers", index))

    def _notifier(self, item: dict[str, Any], path: KeyPath) -> None:
        kind = item.get("kind")
        if isinstance(item.get("chat_id"), int) and not isinstance(item["chat_id"], bool):
            item["chat_id"] = str(item["chat_id"])  # Telegram's ids are numbers in YAML
        own = {"webhook": ("url_env", "format"), "telegram": ("token_env", "chat_id", "api_url")}
        for other, keys in own.items():
            for key in keys:
                if kind in own and kind != other and key in item:
                    self.reader._problem((*path, key), f"only for kind {other}", key=True)
        if kind == "webhook":
            self._env_secret(item, path, "url", required=True, url=True)
        elif kind == "telegram":
            self._env_secret(item, path, "token", required=True)
            if item.get("chat_id") is None:
                self.reader._problem(path, "chat_id: required for kind telegram")

    def _env_secret(
        self,
        section: dict[str, Any],
        path: KeyPath,
        name: str,
        *,
        required: bool = False,
        min_chars: int = 1,
        url: bool = False,
    ) -> None:
        """``section[name]``: a ``Secret`` from the variable ``section[name + "_env"]``
        names; its value is never echoed in a problem."""
        reader = self.reader
        if name in section:
            section.pop(name)
            message = f"a literal secret is not allowed in the config file: set {name}_env"
            reader._problem((*path, name), message, key=True)
            reader.bad_paths.add((*path, name))
            return
        var = section.get(f"{name}_env")
        where: KeyPath = (*path, f"{name}_env")
        if var is None:
            if required:
                reader._problem(path, f"{name}_env: required (the environment variable to read)")
            return
        if not isinstance(var, str):
            return  # pydantic says it is not a variable name
        value = self._from_env(where, var)
        if not value:
            return
        if len(value) < min_chars:
            message = f"${var} is shorter than {min_chars} characters: use a long random value"
            reader._problem(where, message)
            return
        if url and not re.fullmatch(r"https?://[^/?#\s]+\S*", value):
            reader._problem(where, f"${var} is not an http(s):// URL")
            return
        section[name] = Secret(value)

    def cross_checks(self, data: dict[str, Any]) -> None:
        """Checks that span keys; they read the raw data, so they run beside type errors."""
        reader = self.reader
        if data.get("mode") == "live" and data.get("credentials") is None:
            reader._problem_at(
                reader.smap.line_of(("mode",)) or 0,
                ("credentials",),
                "required in live mode (api_key_env and api_secret_env, or *_file)",
            )
        deadman = _dict(data.get("deadman"))
        timeout, refresh = deadman.get("timeout_s", 60), deadman.get("refresh_s")
        if _is_number(timeout) and _is_number(refresh) and refresh >= timeout:
            reader._problem(("deadman", "refresh_s"), f"must be less than timeout_s ({timeout})")
        listed = _dict(data.get("market")).get("symbols")
        allowed = {str(s).upper() for s in listed} if isinstance(listed, list) else set()
        strategies = data.get("strategies")
        first: dict[str, int] = {}
        for index, strategy in enumerate(strategies if isinstance(strategies, list) else []):
            name, symbols = _dict(strategy).get("name"), _dict(strategy).get("symbols")
            if isinstance(name, str) and name in first:
                line = reader.smap.line_of(("strategies", first[name], "name"))
                message = f"duplicate strategy name {name!r} (first at line {line})"
                reader._problem(("strategies", index, "name"), message)
            elif isinstance(name, str):
                first[name] = index
            for pos, symbol in enumerate(symbols if allowed and isinstance(symbols, list) else []):
                if isinstance(symbol, str) and symbol.upper() not in allowed:
                    message = f"{symbol!r} is not in market.symbols"
                    reader._problem(("strategies", index, "symbols", pos), message)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# --------------------------------------------------------------------------- loading


def load_config_text(
    text: str, source_name: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """Parse and validate one YAML document; raise ``ConfigError`` listing every problem."""
    reader = _Reader(source_name, os.environ if env is None else env)
    data = reader.read(text)
    resolver = _Resolver(reader)
    resolver.credentials(data)
    resolver.env_secrets(data)
    resolver.cross_checks(data)
    problems = list(reader.problems)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        skip = frozenset(reader.bad_paths)
        problems += _located_problems(err, Where(reader.smap), Config, skip)
    if problems or config is None:
        ordered = sorted(enumerate(problems), key=lambda item: (item[1][0], item[0]))
        raise ConfigError([text for _, (_, text) in ordered])
    config._source_map = reader.smap
    for index, strategy in enumerate(config.strategies):
        strategy._where = Where(reader.smap, ("strategies", index, "params"))
    return config


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Load the config file at ``path`` (errors are named after ``path`` as given)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:  # a directory, no permission, ...
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    return load_config_text(text, source, env)


def default_config_path() -> Path:
    """The shipped ``config/default.yaml``.

    Looked for next to the source tree (a checkout or an editable install), then as package
    data (``bot/data/default.yaml``), then under the working directory. When none exists the
    first candidate is returned, so the error names a sensible path.
    """
    here = Path(__file__).resolve().parent.parent  # the bot package (this is bot/config/)
    candidates = (
        here.parent / "config" / "default.yaml",
        here / "data" / "default.yaml",
        Path.cwd() / "config" / "default.yaml",
    )
    return next((c for c in candidates if c.is_file()), candidates[0])
