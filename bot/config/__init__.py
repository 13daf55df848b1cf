"""The daemon's configuration: one YAML file into frozen, typed config objects.

Split by concept: ``schema`` (``Config`` and its sections), ``reader`` (YAML with every
node's line kept, ``${VAR}`` substitution), ``secrets`` (credentials from the environment
or a file, never from the YAML itself), ``checks`` (rules that span keys), ``locations``
(key paths, lines and located messages), and ``loading``, which runs them in order and
turns every problem into one located line::

    deploy.yaml:12: risk.max_order_notional: Input should be a valid decimal (got 'abc')
    deploy.yaml:7: market.depht: unknown key (did you mean 'book_depth'?)

Every problem is collected and raised together as one ``ConfigError``. The same line mapping
serves strategy plugins: ``validate_params(Params, strategy.params, strategy.where)``.
Callers import from here: ``from bot.config import Config, load_config``.
"""

from __future__ import annotations

from bot.config.loading import default_config_path, load_config, load_config_text
from bot.config.locations import KeyPath, SourceMap, Where, format_path, validate_params
from bot.config.schema import (
    DEFAULT_STORE_PATHS,
    Config,
    CredentialsConfig,
    DeadmanConfig,
    HttpConfig,
    LogConfig,
    MarketConfig,
    NotifierConfig,
    NotifyConfig,
    RiskConfig,
    ShutdownConfig,
    SimConfig,
    StoreConfig,
    StrategyConfig,
    VenueConfig,
)
from bot.config.secrets import MIN_TOKEN_CHARS
from bot.core.log import Secret

__all__ = [
    "DEFAULT_STORE_PATHS",
    "MIN_TOKEN_CHARS",
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
