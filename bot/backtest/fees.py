"""Kraken's spot fees by 30-day volume tier, as the backtest's matching engine charges them.

``fees_for_volume(usd)`` is the maker/taker schedule of Kraken Pro's spot tiers for a
trailing 30-day volume in USD (kraken.com/features/fee-schedule, spot, from 2024: 0.25 %
maker / 0.40 % taker up to $10,000, down to 0 % / 0.10 % above $10M). The tier is chosen
once per run (``BacktestSpec.fee_volume_usd``); it does not climb with the backtest's own
volume. Stablecoin and FX pairs have their own, lower schedule on Kraken: not modelled.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from bot.sim.accounts import FeeSchedule

__all__ = ["TIERS", "fees_for_volume"]

TIERS: Final = (  # (30-day volume from, USD), maker bps, taker bps
    (Decimal(0), Decimal(25), Decimal(40)),
    (Decimal(10_000), Decimal(20), Decimal(35)),
    (Decimal(50_000), Decimal(14), Decimal(24)),
    (Decimal(100_000), Decimal(12), Decimal(22)),
    (Decimal(250_000), Decimal(10), Decimal(20)),
    (Decimal(500_000), Decimal(8), Decimal(18)),
    (Decimal(1_000_000), Decimal(6), Decimal(16)),
    (Decimal(2_500_000), Decimal(4), Decimal(14)),
    (Decimal(5_000_000), Decimal(2), Decimal(12)),
    (Decimal(10_000_000), Decimal(0), Decimal(10)),
)


def fees_for_volume(volume_usd: Decimal) -> FeeSchedule:
    """The tier a trailing 30-day volume of ``volume_usd`` falls in (above a bound: that
    tier)."""
    if volume_usd < 0:
        raise ValueError(f"a 30-day volume cannot be negative: {volume_usd}")
    maker, taker = TIERS[0][1], TIERS[0][2]
    for start, m, t in TIERS:
        if volume_usd > start or start == 0:
            maker, taker = m, t
    return FeeSchedule(maker, taker)
