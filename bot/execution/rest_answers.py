"""Kraken spot's REST answers as the venue port's values (pure).

This module owns what Kraken's REST results *mean* to the bot: an OpenOrders /
QueryOrders / ClosedOrders order object as an ``ExchangeOrder``, a TradesHistory trade as an
``ExchangeTrade`` (numbers exact, as ``codec.loads_exact`` decoded them; a UUID
``cl_ord_id`` in its canonical form), CancelAllOrdersAfter's ``currentTime``/``triggerTime``
(RFC 3339) as the switch's delay, and Kraken's asset codes (``XXBT``, ``ZUSD``) as plain
names. Something that does not match Kraken's documented shape raises ``ProtocolError``,
never passes as data. No I/O: ``bot.execution.venue_rest`` fetches, this module reads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from bot.core.errors import ProtocolError
from bot.execution.orders import canonical_cl_ord_id
from bot.execution.venue import CancelAfter, ExchangeOrder, ExchangeTrade
from bot.kraken.instruments import InstrumentTable

__all__ = [
    "asset_name",
    "cancel_after",
    "parse_balances",
    "parse_order",
    "parse_orders",
    "parse_rfc3339",
    "parse_trades",
    "trigger_delay_s",
]

_RFC3339: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)
_ASSETS: Final = {"XXBT": "BTC", "XBT": "BTC", "XXDG": "DOGE", "XDG": "DOGE"}


# ------------------------------------------------------------------------- orders and trades


def _dec(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ProtocolError(f"{what}: expected a decimal number, got {value!r}")
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise ProtocolError(f"{what}: expected a decimal number, got {value!r}") from None
    if not out.is_finite():
        raise ProtocolError(f"{what}: not a finite number: {value!r}")
    return out


def _seconds_ns(value: Any, what: str) -> int:
    return int(_dec(value, what).scaleb(9))


def parse_order(
    order_id: str, raw: Mapping[str, Any], instruments: InstrumentTable
) -> ExchangeOrder:
    """One REST order object (``result["open"][txid]`` and the like)."""
    where = f"order {order_id}"
    if not isinstance(raw, Mapping):
        raise ProtocolError(f"{where}: not an object")
    descr = raw.get("descr")
    if not isinstance(descr, Mapping):
        raise ProtocolError(f"{where}: no descr")
    status = raw.get("status")
    if status not in ("pending", "open", "closed", "canceled", "expired"):
        raise ProtocolError(f"{where}: unknown status {status!r}")
    pair = str(descr.get("pair", ""))
    inst = instruments.lookup(pair)
    filled = _dec(raw.get("vol_exec", "0"), f"{where} vol_exec")
    order_type = str(descr.get("ordertype", ""))
    limit = descr.get("price")
    limit_price = _dec(limit, f"{where} descr.price") if order_type == "limit" else None
    closed = raw.get("closetm")
    cl_ord_id = raw.get("cl_ord_id")
    return ExchangeOrder(
        order_id=order_id,
        cl_ord_id=canonical_cl_ord_id(str(cl_ord_id)) if cl_ord_id else None,
        status=str(status),
        pair=pair,
        symbol=inst.symbol if inst is not None else None,
        side=str(descr.get("type", "")),
        order_type=order_type,
        qty=_dec(raw.get("vol"), f"{where} vol"),
        filled=filled,
        cost=_dec(raw.get("cost", "0"), f"{where} cost"),
        avg_price=_dec(raw.get("price"), f"{where} price") if filled > 0 else None,
        limit_price=limit_price,
        reason=str(raw.get("reason") or ""),
        opened_ns=_seconds_ns(raw.get("opentm", 0), f"{where} opentm"),
        closed_ns=_seconds_ns(closed, f"{where} closetm") if closed else None,
    )


def parse_orders(orders: Mapping[str, Any], instruments: InstrumentTable) -> list[ExchangeOrder]:
    """Every order of ``{txid: order}`` (OpenOrders' ``open``, ClosedOrders' ``closed``, or
    QueryOrders' whole result)."""
    if not isinstance(orders, Mapping):
        raise ProtocolError("orders: not an object")
    return [parse_order(str(txid), raw, instruments) for txid, raw in orders.items()]


def parse_trades(result: Mapping[str, Any]) -> list[ExchangeTrade]:
    """The trades of one TradesHistory page (``{"trades": {id: trade}, "count": n}``)."""
    trades = result.get("trades")
    if not isinstance(trades, Mapping):
        raise ProtocolError("TradesHistory: no trades object")
    out: list[ExchangeTrade] = []
    for exec_id, raw in trades.items():
        where = f"trade {exec_id}"
        if not isinstance(raw, Mapping):
            raise ProtocolError(f"{where}: not an object")
        maker = raw.get("maker")
        out.append(
            ExchangeTrade(
                exec_id=str(exec_id),
                order_id=str(raw.get("ordertxid", "")),
                pair=str(raw.get("pair", "")),
                side=str(raw.get("type", "")),
                price=_dec(raw.get("price"), f"{where} price"),
                qty=_dec(raw.get("vol"), f"{where} vol"),
                cost=_dec(raw.get("cost", "0"), f"{where} cost"),
                fee=_dec(raw.get("fee", "0"), f"{where} fee"),
                ts_ns=_seconds_ns(raw.get("time", 0), f"{where} time"),
                trade_id=str(raw.get("trade_id", "")),
                maker=maker if isinstance(maker, bool) else None,
            )
        )
    return out


# ------------------------------------------------------------------------- the switch


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch for Kraken's ``2023-03-24T17:41:56Z`` (fraction optional)."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ProtocolError(f"not an RFC3339 timestamp: {text[:40]!r}")
    y, mo, d, h, mi, s, frac, zulu, sign, oh, om = match.groups()
    offset = dt.timedelta(0)
    if not zulu:
        offset = dt.timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
    try:
        stamp = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=dt.UTC)
    except ValueError as exc:
        raise ProtocolError(f"not an RFC3339 timestamp: {text[:40]!r} ({exc})") from None
    seconds = (stamp - offset).timestamp()
    return seconds + (int(frac) / 10 ** len(frac) if frac else 0.0)


def trigger_delay_s(result: Mapping[str, Any]) -> float | None:
    """``triggerTime - currentTime`` of a ``CancelAllOrdersAfter`` result, in seconds;
    None when the switch is off (``triggerTime`` ``"0"``, or not after ``currentTime``)."""
    current = result.get("currentTime")
    trigger = result.get("triggerTime")
    if not isinstance(current, str) or not isinstance(trigger, str):
        raise ProtocolError(f"CancelAllOrdersAfter: unexpected result {dict(result)!r:.200}")
    if trigger.strip() in ("0", ""):
        return None
    delay = parse_rfc3339(trigger) - parse_rfc3339(current)
    return delay if delay > 0 else None


def cancel_after(result: Mapping[str, Any]) -> CancelAfter:
    """A ``CancelAllOrdersAfter`` result as the port's ``CancelAfter``."""
    return CancelAfter(trigger_delay_s(result), str(result.get("triggerTime")))


# ------------------------------------------------------------------------- balances


def asset_name(code: str) -> str:
    """``XXBT``/``XBT`` → ``BTC``, ``ZUSD`` → ``USD``, ``XETH`` → ``ETH``, ``USDT`` as is."""
    code = code.upper()
    if code in _ASSETS:
        return _ASSETS[code]
    if len(code) == 4 and code[0] in "XZ" and code not in ("ZEUS",):
        return _ASSETS.get(code[1:], code[1:])
    return code


def parse_balances(raw: Mapping[str, Any]) -> dict[str, Decimal]:
    """``Balance``'s result by plain asset name (amounts of one asset's codes added up)."""
    out: dict[str, Decimal] = {}
    for name, value in raw.items():
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            continue
        asset = asset_name(str(name))
        out[asset] = out.get(asset, Decimal(0)) + amount
    return out
