"""The config schema: ``Config`` and its sections, frozen and typed, with their bounds.

Each section is a frozen pydantic model that forbids unknown keys; money is ``Decimal``
(never a float) within bounds no deployment comes near, so an absurd value is refused here
rather than hanging the risk gate; counts and flags are strict (``"yes"`` is not a bool).
``Config()`` is the offline paper default. Where a loaded config came from (its
``SourceMap``) rides along as a private attribute, so equal values compare equal.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.config.futures_schema import FUTURES_SYMBOL_RE, FuturesConfig
from bot.config.locations import SourceMap, Where
from bot.core.log import Secret

__all__ = [
    "DEFAULT_STORE_PATHS",
    "ENV_NAME_RE",
    "MAX_AMOUNT",
    "Config",
    "CredentialsConfig",
    "DeadmanConfig",
    "HttpConfig",
    "LogConfig",
    "MarketConfig",
    "NotifierConfig",
    "NotifyConfig",
    "RiskConfig",
    "ShutdownConfig",
    "SimConfig",
    "StoreConfig",
    "StrategyConfig",
    "VenueConfig",
]

ENV_NAME_RE: Final = r"[A-Za-z_][A-Za-z0-9_]*"
"""What an environment variable's name may be (``credentials.*_env``, ``${NAME}``)."""


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
_SYMBOL_RE: Final = rf"[A-Za-z0-9]{{1,16}}/[A-Za-z0-9]{{1,16}}|{FUTURES_SYMBOL_RE}"
Symbol = Annotated[
    str,
    _matching(
        _SYMBOL_RE, "symbol", "expected BASE/QUOTE like 'BTC/USD' (Futures: 'PF_XBTUSD')", True
    ),
]
Asset = Annotated[
    str, _matching(r"[A-Za-z0-9.]{1,16}", "asset", "expected an asset like 'BTC'", True)
]
Symbols = Annotated[tuple[Symbol, ...], _EMPTY_LIST]
EnvName = Annotated[
    str, _matching(ENV_NAME_RE, "env_name", "expected an environment variable name")
]
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


HostName = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]",
        "host",
        "expected a host name or an address, without a port",
    ),
]
"""A name the browser-facing pages answer to (``http.allowed_hosts``): DNS rebinding guard."""
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


class VenueConfig(_Model):
    """Where Kraken is. In paper mode the daemon points these at the simulator instead."""

    rest_url: HttpUrl = "https://api.kraken.com"
    ws_public_url: WsUrl = "wss://ws.kraken.com/v2"
    ws_private_url: WsUrl = "wss://ws-auth.kraken.com/v2"
    tier: Literal["starter", "intermediate", "pro"] = "starter"
    request_timeout_s: Seconds = 10.0
    dedicated_connection: bool = True  # private calls on krakenbot's own kept-alive HTTP/1.1
    # Order writes over the private WebSocket (REST while it is down), or REST only.
    order_entry: Literal["websocket", "rest"] = "rest"
    ack_timeout_s: Seconds = 10.0  # a WebSocket order answer not there by then: unknown


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

    ``allowed_hosts``: the names, besides loopback's and ``host``, that the pages a browser
    reads (the dashboard, its API, the control API) answer to; any other ``Host`` header is
    refused, so a web page elsewhere cannot read them through DNS rebinding.
    """

    enabled: StrictBool = True
    host: str = "127.0.0.1"
    port: Port = 8080
    control_token_env: EnvName | None = None
    control_token: Secret | None = Field(default=None, repr=False)
    allowed_hosts: Annotated[tuple[HostName, ...], _EMPTY_LIST] = ()

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
    # Where it trades; unset: Futures in a config with `futures:`, else spot; `both`: one
    # instance on both venues, its symbols split by venue (``bot.config.venues``).
    venue: Literal["spot", "futures", "both"] | None = None
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
    futures: FuturesConfig | None = None  # a Kraken Futures deployment (bot.config.futures_schema)
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
