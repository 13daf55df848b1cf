"""Kraken's REST formats for the simulator's answers (pure).

Kraken's REST API prints prices, volumes, costs and balances as *strings* with a fixed
number of decimals (``"vol": "1.25000000"``, ``"price": "30010.0"``), times as JSON numbers
of seconds with four decimals (``"opentm": 1616666559.8974``), asset codes in their legacy
X/Z spelling (``XXBT``, ``ZUSD``) and pairs by REST name (``XXBTZUSD``) or altname
(``XBTUSD``). The shapes follow Kraken's documented examples (``krakenfx/api-specs``
``spot-rest/examples``) and a real ``AssetPairs`` capture.

This module owns those formats: the order object (OpenOrders/QueryOrders/ClosedOrders),
the trade object (TradesHistory), an ``AssetPairs`` entry and the time stamps. It holds no
state and never touches the exchange.
"""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from bot.kraken.instruments import Instrument
from bot.sim.accounts import FeeSchedule
from bot.sim.matching import Fill, OrderState
from bot.sim.pairs import ASSET_PRECISION

__all__ = [
    "ASSET_CODES",
    "asset_code",
    "balance_text",
    "fixed",
    "order_descr",
    "order_info",
    "order_text",
    "pair_info",
    "rfc1123",
    "rfc3339",
    "trade_info",
    "unix_seconds",
    "v1_asset",
    "wsname",
]

# Kraken's REST asset codes where they differ from the WS v2 names.
ASSET_CODES: Final[dict[str, str]] = {
    "BTC": "XXBT",
    "ETH": "XETH",
    "XRP": "XXRP",
    "LTC": "XLTC",
    "DOGE": "XXDG",
    "XMR": "XXMR",
    "XLM": "XXLM",
    "ETC": "XETC",
    "ZEC": "XZEC",
    "USD": "ZUSD",
    "EUR": "ZEUR",
    "GBP": "ZGBP",
    "CAD": "ZCAD",
    "JPY": "ZJPY",
}
_TIME_PLACES: Final = Decimal("0.0001")
_NS: Final = 1_000_000_000


def asset_code(asset: str) -> str:
    """``BTC`` → ``XXBT``, ``USD`` → ``ZUSD``; other assets keep their name."""
    return ASSET_CODES.get(asset, asset)


def fixed(value: Decimal | int, places: int, rounding: str = ROUND_HALF_EVEN) -> str:
    """``value`` as a fixed-point string with exactly ``places`` decimals."""
    quantized = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=rounding)
    return format(abs(quantized) if quantized == 0 else quantized, "f")


def unix_seconds(ns: int) -> Decimal:
    """Kraken's REST time stamp: seconds with four decimals, a JSON number."""
    return Decimal(ns).scaleb(-9).quantize(_TIME_PLACES, rounding=ROUND_DOWN)


def rfc3339(ns: int) -> str:
    """``2023-03-24T17:41:56Z`` (whole seconds, UTC), as CancelAllOrdersAfter answers."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // _NS))


def rfc1123(ns: int) -> str:
    """``Thu, 06 Jul 23 18:50:48 +0000``, as ``Time`` answers."""
    return time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(ns // _NS))


def balance_text(asset: str, amount: Decimal) -> str:
    """A balance at Kraken's asset precision (``ZUSD`` 4 decimals, ``XXBT`` 10), truncated."""
    return fixed(amount, ASSET_PRECISION.get(asset, 8), ROUND_DOWN)


def order_text(inst: Instrument, side: str, ord_type: str, qty: int, price: int | None) -> str:
    """``buy 1.25000000 XBTUSD @ limit 30010.0`` (``… @ market`` for a market order)."""
    head = f"{side} {inst.qty_text(qty)} {inst.altname or inst.symbol}"
    if ord_type == "limit" and price is not None:
        return f"{head} @ limit {inst.price_text(price)}"
    return f"{head} @ {ord_type}"


def order_descr(inst: Instrument, order: OrderState) -> dict[str, Any]:
    """The ``descr`` object of an order."""
    return {
        "pair": inst.altname or inst.symbol,
        "type": order.side,
        "ordertype": order.ord_type,
        "price": inst.price_text(order.price) if order.price is not None else "0",
        "price2": "0",
        "leverage": "none",
        "order": order_text(inst, order.side, order.ord_type, order.qty, order.price),
        "close": "",
    }


def order_info(inst: Instrument, order: OrderState, *, trades: bool = False) -> dict[str, Any]:
    """One order as OpenOrders, QueryOrders and ClosedOrders print it."""
    zero_price = inst.price_text(0)
    avg = order.avg_price
    info: dict[str, Any] = {
        "refid": None,
        "userref": order.userref if order.userref is not None else 0,
    }
    if order.cl_ord_id is not None:
        info["cl_ord_id"] = order.cl_ord_id
    info.update(
        {
            "status": order.status,
            "opentm": unix_seconds(order.opentm),
            "starttm": 0,
            "expiretm": unix_seconds(order.expire_at) if order.expire_at else 0,
            "descr": order_descr(inst, order),
            "vol": inst.qty_text(order.qty),
            "vol_exec": inst.qty_text(order.filled),
            "cost": fixed(order.cost, inst.cost_precision),
            "fee": _fee_text(inst, order.fee, order.fee_asset),
            "price": fixed(avg, inst.price_precision) if avg is not None else zero_price,
            "stopprice": zero_price,
            "limitprice": zero_price,
            "misc": "amended" if order.amended else "",
            "oflags": order.oflags,
        }
    )
    if order.closetm is not None:
        info["closetm"] = unix_seconds(order.closetm)
        info["reason"] = order.reason
    if trades and order.trades:
        info["trades"] = list(order.trades)
    return info


def _fee_text(inst: Instrument, fee: Decimal, fee_asset: str) -> str:
    places = inst.qty_precision if fee_asset == inst.base else inst.cost_precision
    return fixed(fee, places)


def trade_info(inst: Instrument, fill: Fill) -> dict[str, Any]:
    """One fill as TradesHistory prints it."""
    return {
        "ordertxid": fill.txid,
        "postxid": "T" + fill.exec_id[1:6] + "-POSTX-" + fill.exec_id[-6:],
        "pair": inst.rest_name or inst.symbol,
        "aclass": "currency",
        "time": unix_seconds(fill.timestamp),
        "type": fill.side,
        "ordertype": fill.ord_type,
        "price": inst.price_text(fill.price),
        "cost": fixed(fill.cost, inst.cost_precision),
        "fee": _fee_text(inst, fill.fee, fill.fee_asset),
        "vol": inst.qty_text(fill.qty),
        "margin": fixed(0, inst.cost_precision),
        "leverage": "0",
        "misc": "",
        "trade_id": fill.trade_id,
        "maker": fill.liquidity == "m",
    }


def _percent(bps: Decimal) -> Decimal:
    return (Decimal(bps) / 100).normalize()


# Kraken's v1 (and REST ``altname``) spelling of the assets whose names differ from WS v2.
_V1_ASSETS: Final = {"BTC": "XBT", "DOGE": "XDG"}


def v1_asset(asset: str) -> str:
    """``BTC`` → ``XBT``, ``DOGE`` → ``XDG``: Kraken's ``altname`` of an asset."""
    return _V1_ASSETS.get(asset, asset)


def wsname(inst: Instrument) -> str:
    """The pair's WS v1 name, as AssetPairs' ``wsname`` (``XBT/USD``, ``XDG/USD``)."""
    return f"{v1_asset(inst.base)}/{v1_asset(inst.quote)}"


def pair_info(inst: Instrument, fees: FeeSchedule) -> dict[str, Any]:
    """One ``AssetPairs`` entry, with Kraken's field names and types."""
    return {
        "altname": inst.altname or inst.symbol.replace("/", ""),
        "wsname": wsname(inst),
        "aclass_base": "currency",
        "base": asset_code(inst.base),
        "aclass_quote": "currency",
        "quote": asset_code(inst.quote),
        "lot": "unit",
        "cost_decimals": inst.cost_precision,
        "pair_decimals": inst.price_precision,
        "lot_decimals": inst.qty_precision,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, _percent(fees.taker_bps)]],
        "fees_maker": [[0, _percent(fees.maker_bps)]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": format(inst.qty_decimal(inst.qty_min).normalize(), "f"),
        "costmin": format(inst.cost_min.normalize(), "f"),
        "tick_size": format(inst.price_decimal(inst.price_increment).normalize(), "f"),
        "status": inst.status,
        "long_position_limit": 0,
        "short_position_limit": 0,
    }
