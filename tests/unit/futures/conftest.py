"""A contract for the Futures unit tests: PF_XBTUSD as Kraken's /instruments lists it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.futures.instruments import FuturesInstrument, MarginLevel


def xbt() -> FuturesInstrument:
    return FuturesInstrument(
        symbol="PF_XBTUSD",
        kind="flexible_futures",
        base="XBT",
        quote="USD",
        tick_size=Decimal("0.5"),
        price_precision=1,
        price_increment=5,
        contract_size=Decimal(1),
        contract_value_precision=4,
        qty_precision=4,
        qty_increment=1,
        max_position=1_000_000_0000,
        margin_levels=(MarginLevel(Decimal(0), "notional", Decimal("0.02"), Decimal("0.01")),),
    )


@pytest.fixture
def inst() -> FuturesInstrument:
    return xbt()
