"""``/instruments`` as exact scaled numbers, and the margin schedule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bot.core.errors import ProtocolError
from bot.futures.instruments import (
    FuturesInstrumentTable,
    instrument_from_json,
    instruments_from_response,
)
from bot.kraken.codec import loads_exact

# Shaped as https://docs.kraken.com/api/docs/futures-api/trading/get-instruments shows
# them: a linear multi-collateral perpetual, one with a negative trade precision, an
# inverse contract, and an index entry (no tickSize).
ANSWER = b"""{"result":"success","serverTime":"2024-01-01T00:00:00.000Z","instruments":[
 {"symbol":"PF_XBTUSD","type":"flexible_futures","tickSize":0.5,"contractSize":1,
  "contractValueTradePrecision":4,"maxPositionSize":1000000,"tradeable":true,"postOnly":false,
  "pair":"XBT:USD","base":"XBT","quote":"USD","fundingRateCoefficient":24,
  "maxRelativeFundingRate":0.0025,
  "marginLevels":[{"numNonContractUnits":0,"initialMargin":0.02,"maintenanceMargin":0.01},
                  {"numNonContractUnits":500000,"initialMargin":0.04,"maintenanceMargin":0.02}],
  "retailMarginLevels":[{"numNonContractUnits":0,"initialMargin":0.5,"maintenanceMargin":0.25}]},
 {"symbol":"PF_PEPEUSD","type":"flexible_futures","tickSize":1e-10,"contractSize":1,
  "contractValueTradePrecision":-3,"tradeable":true,
  "marginLevels":[{"numNonContractUnits":0,"initialMargin":0.02,"maintenanceMargin":0.01}]},
 {"symbol":"pi_xbtusd","type":"futures_inverse","tickSize":0.5,"contractSize":1,
  "contractValueTradePrecision":0,"tradeable":true,
  "marginLevels":[{"contracts":0,"initialMargin":0.02,"maintenanceMargin":0.01},
                  {"contracts":500000,"initialMargin":0.04,"maintenanceMargin":0.02}]},
 {"symbol":"in_xbtusd","tradeable":false}
]}"""


def parsed() -> FuturesInstrumentTable:
    return FuturesInstrumentTable(instruments_from_response(loads_exact(ANSWER)))


def test_scaled_grids() -> None:
    table = parsed()
    assert set(table) == {"PF_XBTUSD", "PF_PEPEUSD", "PI_XBTUSD"}
    xbt = table["pf_xbtusd"]
    assert (xbt.price_precision, xbt.price_increment) == (1, 5)
    assert (xbt.qty_precision, xbt.qty_increment) == (4, 1)
    assert xbt.max_position == 1_000_000 * 10**4
    assert xbt.price("65000.5") == 650005 and xbt.price_text(650005) == "65000.5"
    assert xbt.qty(Decimal("0.0001")) == 1 and xbt.qty_text(12) == "0.0012"
    assert xbt.on_tick(650005) and not xbt.on_tick(650003)
    assert xbt.linear and xbt.perpetual
    pepe = table["PF_PEPEUSD"]
    assert (pepe.price_precision, pepe.price_increment) == (10, 1)
    assert (pepe.contract_value_precision, pepe.qty_precision, pepe.qty_increment) == (-3, 0, 1000)
    assert pepe.on_lot(2000) and not pepe.on_lot(1500)
    assert not table["PI_XBTUSD"].linear


def test_margin_schedule_by_notional_and_by_contracts() -> None:
    table = parsed()
    xbt = table["PF_XBTUSD"]
    # 2 contracts at 65000 = 130000 USD: first step.
    assert xbt.initial_margin(xbt.qty("2"), xbt.price("65000")) == Decimal("2600.00")
    assert xbt.maintenance_margin(xbt.qty("2"), xbt.price("65000")) == Decimal("1300.00")
    # 10 contracts = 650000 USD: the second step (4%).
    assert xbt.margin_level(xbt.qty("10"), xbt.price("65000")).initial == Decimal("0.04")
    assert xbt.margin_level(xbt.qty("1"), xbt.price("65000"), retail=True).initial == Decimal("0.5")
    inverse = table["PI_XBTUSD"]
    assert inverse.margin_level(600_000, inverse.price("30000")).maintenance == Decimal("0.02")
    assert inverse.value(30_000, inverse.price("30000")) == Decimal(1)


def bad(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "symbol": "PF_X",
        "tickSize": Decimal("0.5"),
        "contractValueTradePrecision": 4,
        "tradeable": True,
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    "raw",
    [
        bad(tickSize=Decimal(0)),
        bad(tickSize="0.5"),
        bad(contractValueTradePrecision=Decimal("1.5")),
        bad(tradeable="yes"),
        bad(
            marginLevels=[{"initialMargin": Decimal("0.01"), "maintenanceMargin": Decimal("0.02")}]
        ),
        bad(symbol=7),
        bad(tickSize=Decimal("1E-19")),
    ],
)
def test_bad_entries_are_protocol_errors(raw: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        instrument_from_json(raw)
