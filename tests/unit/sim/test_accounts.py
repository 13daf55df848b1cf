"""The ledger: scales, holds, fees."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.core.errors import InsufficientFunds
from bot.sim.accounts import MARKET_ACCOUNT, Accounts, FeeSchedule
from bot.sim.pairs import PAIRS, instrument

BTC = instrument("BTC/USD")


def test_fee_schedule_defaults_to_kraken_starter_and_rejects_sub_hundredth_bps() -> None:
    fees = FeeSchedule()
    assert (fees.maker_ppm, fees.taker_ppm) == (2500, 4000)
    assert FeeSchedule(Decimal("0.01"), Decimal("10")).maker_ppm == 1
    with pytest.raises(ValueError):
        FeeSchedule(Decimal("0.001"))
    with pytest.raises(ValueError):
        FeeSchedule(Decimal(-1))


def test_ledger_scales_make_every_cost_exact() -> None:
    acc = Accounts(PAIRS)
    assert acc.scale("USD") == 15  # DOGE/USD: 7 price + 8 qty decimals
    assert acc.scale("BTC") == 13  # ETH/BTC: 5 + 8
    assert acc.scale("ETH") == 10  # Kraken's asset precision, above qty_precision 8
    assert Accounts([BTC]).scale("USD") == 9


def test_deposit_balances_and_holds() -> None:
    acc = Accounts([BTC])
    acc.deposit("a", "USD", "100.5")
    assert acc.balances("a") == {"USD": Decimal("100.5")}
    acc.require("o1", "a", "USD", acc.to_ledger("USD", "40"))
    assert acc.available("a", "USD") == acc.to_ledger("USD", "60.5")
    assert acc.holds("a") == {"USD": Decimal(40)}
    with pytest.raises(InsufficientFunds) as info:
        acc.require("o2", "a", "USD", acc.to_ledger("USD", "61"))
    assert info.value.code == "EOrder:Insufficient funds"
    # raising an existing hold only needs the difference
    acc.require("o1", "a", "USD", acc.to_ledger("USD", "100.5"))
    acc.release("o1")
    assert acc.available("a", "USD") == acc.total("a", "USD")


def test_unlimited_account_has_no_checks_and_no_holds() -> None:
    acc = Accounts([BTC])
    acc.require("m1", MARKET_ACCOUNT, "BTC", 10**30)
    acc.check(MARKET_ACCOUNT, "BTC", 10**30)
    assert acc.held(MARKET_ACCOUNT, "BTC") == 0


def test_quote_fee_rounds_up_to_cost_precision_cumulatively() -> None:
    pm = Accounts([BTC]).pair("BTC/USD")
    # 0.0001 BTC at 65000.0 = 6.5 USD; 0.40 % = 0.026 USD exactly
    cost = 650000 * 10_000
    assert pm.fee_units(False, cost * 4000) == 2600  # units of 10**-5 USD
    # 1 satoshi at 65000.0 = 0.00065 USD; fee 0.0000026 rounds up to 0.00001
    tiny = 650000 * 1
    assert pm.fee_units(False, tiny * 4000) == 1
    # three such fills still pay only ceil(3 * 0.0000026) = 0.00001
    assert pm.fee_units(False, 3 * tiny * 4000) == 1
    assert pm.fee_decimal(False, 2600) == Decimal("0.02600")


def test_buy_hold_covers_cost_and_taker_fee() -> None:
    acc = Accounts([BTC])
    pm = acc.pair("BTC/USD")
    asset, amount = pm.hold("buy", False, 650000, 10_000, rate_ppm=4000)
    assert asset == "USD"
    assert Decimal(amount).scaleb(-acc.scale("USD")) == Decimal("6.526")
    asset, amount = pm.hold("buy", True, 650000, 10_000, rate_ppm=4000)
    assert Decimal(amount).scaleb(-acc.scale("USD")) == Decimal("6.5")
    asset, amount = pm.hold("sell", False, 650000, 10_000, rate_ppm=4000)
    assert (asset, Decimal(amount).scaleb(-acc.scale("BTC"))) == ("BTC", Decimal("0.0001"))
    asset, amount = pm.hold("sell", True, 650000, 10_000, rate_ppm=4000)
    assert Decimal(amount).scaleb(-acc.scale("BTC")) == Decimal("0.0001004")
    assert pm.hold("buy", False, 650000, 0, rate_ppm=4000) == ("USD", 0)


def test_hold_never_grows_when_a_fill_is_paid_from_it() -> None:
    pm = Accounts([BTC]).pair("BTC/USD")
    price, qty, rate = 650001, 123_457, 4000
    _, before = pm.hold("buy", False, price, qty, rate_ppm=rate)
    fill_price, fill_qty = 649_990, 100_001  # a better price, maker rate
    acc_fee = fill_price * fill_qty * 2500
    units = pm.fee_units(False, acc_fee)
    paid = fill_price * fill_qty * pm.quote_mul + pm.fee_ledger(False, units)
    _, after = pm.hold(
        "buy", False, price, qty - fill_qty, fee_acc=acc_fee, fee_units=units, rate_ppm=rate
    )
    assert paid <= before - after


def test_asset_sum_and_fee_accounts() -> None:
    acc = Accounts([BTC])
    acc.deposit("a", "USD", 10)
    acc.move("a", "USD", -5)
    acc.move("b", "USD", 5)
    assert acc.asset_sum("USD") == acc.to_ledger("USD", 10)
    assert acc.assets() == ["USD"]
    acc.set_fees("b", FeeSchedule(Decimal(0), Decimal(10)))
    assert acc.fees("b").taker_ppm == 1000 and acc.fees("a").taker_ppm == 4000
    assert acc.fees(MARKET_ACCOUNT).taker_ppm == 0
