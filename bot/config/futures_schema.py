"""The ``futures:`` section: a deployment that trades Kraken Futures (issue 16).

Kraken Futures is a separate exchange with its own key pair, URLs and contracts
(``PF_XBTUSD``…), so its settings live in their own section rather than beside spot's:

- ``rest_url`` / ``ws_url``: Kraken Futures (``https://futures.kraken.com``,
  ``wss://futures.kraken.com/ws/v1``), unused in paper mode (the in-process simulator's);
- ``credentials``: ``api_key_env`` / ``api_secret_env`` (or ``*_file``), as spot's
  ``credentials:``, resolved by ``bot.config.secrets``; required in live mode;
- ``symbols``: the contracts traded (default: the strategies' symbols);
- ``store_path``: the Futures side's own store (``bot.config.venues.futures_store_path``);
- ``sim``: the paper simulator's seed, collateral and funding;
- ``risk``: the derivatives limits (``FuturesRiskConfig``).

This module owns those models; ``bot.config.schema.Config.futures`` holds one.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from bot.core.log import Secret

__all__ = [
    "FUTURES_SYMBOL_RE",
    "FuturesConfig",
    "FuturesCredentials",
    "FuturesRiskConfig",
    "FuturesSimConfig",
]

FUTURES_SYMBOL_RE: Final = r"(?i:(?:PF|PI|FF|FI)_[A-Z0-9]{3,24}(?:_[0-9]{6})?)"
"""A Kraken Futures contract: perpetual (``PF_``/``PI_``) or fixed-maturity (``FF_``/``FI_``,
with its ``_YYMMDD``)."""
_MAX: Final = Decimal(10) ** 15


def _symbol(value: str) -> str:
    if not re.fullmatch(FUTURES_SYMBOL_RE, value):
        raise PydanticCustomError("futures_symbol", "expected a Futures contract like 'PF_XBTUSD'")
    return value.upper()


def _empty(value: Any) -> Any:
    return {} if value is None else value


FuturesSymbol = Annotated[str, AfterValidator(_symbol)]
_Amount = Annotated[Decimal, Field(gt=0, le=_MAX, decimal_places=18, allow_inf_nan=False)]
_Fraction = Annotated[Decimal, Field(ge=0, lt=1, decimal_places=18, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FuturesCredentials(_Model):
    """Resolved by ``bot.config.secrets`` from ``*_env`` / ``*_file`` (never literal)."""

    api_key_env: str | None = None
    api_secret_env: str | None = None
    api_key_file: Path | None = None
    api_secret_file: Path | None = None
    api_key: Secret = Field(repr=False)
    api_secret: Secret = Field(repr=False)


class FuturesSimConfig(_Model):
    """The in-process Futures simulator of paper mode."""

    seed: Annotated[int, Strict()] = 0
    collateral_usd: _Amount = Decimal(100_000)
    funding_rate: Annotated[Decimal, Field(ge=-1, le=1, allow_inf_nan=False)] = Decimal("0.0001")
    funding_interval_s: Annotated[float, Field(gt=0, le=10**7)] = 3600.0


class FuturesRiskConfig(_Model):
    """Derivatives limits, each checked before an order is sent (unset: not checked).

    ``max_contracts``: the largest position per contract, in contracts, the resting orders
    on its side included; ``max_notional``: the largest position value in the settlement
    currency (USD) per contract, at the order's price; ``max_leverage``: the account's
    open notional over its margin equity after the order; ``min_liquidation_distance``:
    the fraction of the mark price the liquidation price must stay away (0.1: 10 %) for
    the daemon to be ready and for an order that adds to the position to be sent."""

    max_contracts: Annotated[dict[FuturesSymbol, _Amount], BeforeValidator(_empty)] = Field(
        default_factory=dict
    )
    max_notional: _Amount | None = None
    max_leverage: _Amount | None = None
    min_liquidation_distance: _Fraction | None = None


class FuturesConfig(_Model):
    """See the module docstring."""

    rest_url: Annotated[str, Field(pattern=r"^https?://[^/?#\s]+\S*$")] = (
        "https://futures.kraken.com"
    )
    ws_url: Annotated[str, Field(pattern=r"^wss?://[^/?#\s]+\S*$")] = (
        "wss://futures.kraken.com/ws/v1"
    )
    credentials: FuturesCredentials | None = None
    symbols: Annotated[
        tuple[FuturesSymbol, ...], BeforeValidator(lambda v: [] if v is None else v)
    ] = ()
    request_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    store_path: Path | None = None  # unset: bot.config.venues.futures_store_path
    sim: Annotated[FuturesSimConfig, BeforeValidator(_empty)] = Field(
        default_factory=FuturesSimConfig
    )
    risk: Annotated[FuturesRiskConfig, BeforeValidator(_empty)] = Field(
        default_factory=FuturesRiskConfig
    )
