"""One set of risk limits, frozen: what the risk gate and its fast path both read.

Its own module so that ``risk`` (the exact checks) and ``risk_fast`` (the integer plan built
from these limits) both import it and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import RiskConfig

__all__ = ["RiskLimits"]


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """One set of limits; ``None`` (or an asset missing from ``max_position``) is unlimited.

    Quantities are base units, notional and loss the order's quote currency, the band a
    percentage of the mid.
    """

    max_order_qty: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Mapping[str, Decimal] = field(default_factory=dict)
    max_open_orders: int | None = None
    price_band_pct: Decimal | None = None
    max_orders_per_minute: int | None = None
    daily_loss_limit: Decimal | None = None

    @classmethod
    def from_config(cls, risk: RiskConfig) -> RiskLimits:
        return cls(
            max_order_qty=risk.max_order_qty,
            max_order_notional=risk.max_order_notional,
            max_position=dict(risk.max_position),
            max_open_orders=risk.max_open_orders,
            price_band_pct=risk.price_band_pct,
            max_orders_per_minute=risk.max_orders_per_minute,
            daily_loss_limit=risk.daily_loss_limit,
        )
