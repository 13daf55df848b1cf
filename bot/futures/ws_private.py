"""Kraken Futures WebSocket v1 private feeds: frames in as frozen dataclasses (pure).

Each feed as its page under https://docs.kraken.com/api/docs/futures-api/websocket/
shows it (subscribing needs the signed challenge, ``ws_auth``):

- ``open_orders``: ``open_orders_snapshot`` {account, orders[]}, then per change
  ``open_orders`` {order, is_cancel, reason}, or, for an order that is gone,
  {order_id, is_cancel: true, reason} (``OpenOrdersSnapshot``, ``OpenOrderUpdate``,
  ``OpenOrderGone``). Orders name their side by ``direction`` (0 buy, 1 sell).
- ``fills``: ``fills_snapshot`` and ``fills`` {account, fills[]} (``FillsFrame``).
- ``open_positions``: {account, positions[], seq, timestamp} (``OpenPositionsFrame``);
  ``balance`` is the signed size.
- ``balances``: ``balances_snapshot`` and ``balances`` {account, holding, futures,
  flex_futures, seq, timestamp} (``BalancesFrame``; the multi-collateral wallet is read).

Numbers are exact ``Decimal``. Anything malformed raises ``ProtocolError`` (and only that):
this module is called by ``ws_protocol.parse_frame``, which owns the dispatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.core.errors import ProtocolError
from bot.futures.fields import (
    as_object,
    list_of_objects,
    opt_bool,
    opt_decimal,
    opt_str,
    req_bool,
    req_decimal,
    req_int,
    req_str,
)

__all__ = [
    "BalancesFrame",
    "FillsFrame",
    "FlexBalances",
    "OpenOrderGone",
    "OpenOrderUpdate",
    "OpenOrdersSnapshot",
    "OpenPositionsFrame",
    "WsFill",
    "WsOrder",
    "WsPosition",
    "parse_balances",
    "parse_fills",
    "parse_open_orders",
    "parse_open_orders_snapshot",
    "parse_open_positions",
]


@dataclass(frozen=True, slots=True)
class WsOrder:
    """An open order as the ``open_orders`` feed shows it; ``order_type`` is ``limit``,
    ``stop``, ``take_profit`` (or ``trailing_stop``)."""

    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    filled: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    reduce_only: bool
    trigger_signal: str | None
    time: int
    last_update_time: int

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled


@dataclass(frozen=True, slots=True)
class OpenOrdersSnapshot:
    account: str
    orders: tuple[WsOrder, ...]


@dataclass(frozen=True, slots=True)
class OpenOrderUpdate:
    """An order placed, changed or finished. ``is_cancel``: it left the open orders
    (filled, cancelled or rejected); ``reason`` says why (``full_fill``,
    ``cancelled_by_user``, ``dead_man_switch``, …)."""

    order: WsOrder
    is_cancel: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class OpenOrderGone:
    """An order removed, named by id only (Kraken's short cancel delta)."""

    order_id: str
    cli_ord_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class WsFill:
    fill_id: str
    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    remaining_order_qty: Decimal | None
    fill_type: str
    fee_paid: Decimal | None
    fee_currency: str | None
    order_type: str | None
    time: int
    seq: int | None


@dataclass(frozen=True, slots=True)
class FillsFrame:
    snapshot: bool
    account: str | None
    fills: tuple[WsFill, ...]


@dataclass(frozen=True, slots=True)
class WsPosition:
    """One position: ``balance`` is the signed size in contracts."""

    symbol: str
    balance: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    index_price: Decimal | None
    pnl: Decimal | None
    unrealized_funding: Decimal | None
    liquidation_threshold: Decimal | None
    effective_leverage: Decimal | None
    initial_margin: Decimal | None
    initial_margin_with_orders: Decimal | None
    maintenance_margin: Decimal | None


@dataclass(frozen=True, slots=True)
class OpenPositionsFrame:
    account: str | None
    positions: tuple[WsPosition, ...]
    seq: int | None
    timestamp: int | None


@dataclass(frozen=True, slots=True)
class FlexBalances:
    """The multi-collateral wallet (USD values) and each collateral currency's quantity."""

    balance_value: Decimal
    portfolio_value: Decimal
    collateral_value: Decimal
    initial_margin: Decimal
    initial_margin_without_orders: Decimal
    maintenance_margin: Decimal
    pnl: Decimal
    unrealized_funding: Decimal
    total_unrealized: Decimal
    margin_equity: Decimal
    available_margin: Decimal
    currencies: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class BalancesFrame:
    snapshot: bool
    account: str | None
    seq: int | None
    timestamp: int | None
    holding: Mapping[str, Decimal]
    flex: FlexBalances | None


# --------------------------------------------------------------------------- parsing


def _side(raw: Mapping[str, Any], where: str) -> str:
    direction = raw.get("direction")
    if direction == 0 and type(direction) is int:
        return "buy"
    if direction == 1 and type(direction) is int:
        return "sell"
    raise ProtocolError(f"{where}: direction must be 0 or 1, got {direction!r}")


def _ws_order(raw: Mapping[str, Any], where: str) -> WsOrder:
    limit = opt_decimal(raw, "limit_price", where)
    stop = opt_decimal(raw, "stop_price", where)
    return WsOrder(
        order_id=req_str(raw, "order_id", where),
        cli_ord_id=opt_str(raw, "cli_ord_id", where),
        symbol=req_str(raw, "instrument", where).upper(),
        side=_side(raw, where),
        order_type=req_str(raw, "type", where),
        qty=req_decimal(raw, "qty", where),
        filled=req_decimal(raw, "filled", where),
        limit_price=limit,
        # Kraken writes stop_price 0.0 on plain limit orders: no stop.
        stop_price=stop if stop else None,
        reduce_only=bool(opt_bool(raw, "reduce_only", where)),
        trigger_signal=opt_str(raw, "triggerSignal", where),
        time=req_int(raw, "time", where),
        last_update_time=req_int(raw, "last_update_time", where),
    )


def parse_open_orders_snapshot(msg: Mapping[str, Any]) -> OpenOrdersSnapshot:
    where = "open_orders_snapshot"
    orders = list_of_objects(msg, "orders", where)
    return OpenOrdersSnapshot(
        account=req_str(msg, "account", where),
        orders=tuple(_ws_order(o, f"{where}: orders[{i}]") for i, o in enumerate(orders)),
    )


def parse_open_orders(msg: Mapping[str, Any]) -> OpenOrderUpdate | OpenOrderGone:
    where = "open_orders"
    is_cancel = req_bool(msg, "is_cancel", where)
    reason = opt_str(msg, "reason", where)
    if "order" in msg:
        order = _ws_order(as_object(msg["order"], f"{where}: order"), f"{where}: order")
        return OpenOrderUpdate(order, is_cancel, reason)
    if not is_cancel:
        raise ProtocolError(f"{where}: an update without an order must be a cancel")
    return OpenOrderGone(req_str(msg, "order_id", where), opt_str(msg, "cli_ord_id", where), reason)


def _ws_fill(raw: Mapping[str, Any], where: str) -> WsFill:
    return WsFill(
        fill_id=req_str(raw, "fill_id", where),
        order_id=req_str(raw, "order_id", where),
        cli_ord_id=opt_str(raw, "cli_ord_id", where),
        symbol=req_str(raw, "instrument", where).upper(),
        side="buy" if req_bool(raw, "buy", where) else "sell",
        price=req_decimal(raw, "price", where),
        qty=req_decimal(raw, "qty", where),
        remaining_order_qty=opt_decimal(raw, "remaining_order_qty", where),
        fill_type=req_str(raw, "fill_type", where),
        fee_paid=opt_decimal(raw, "fee_paid", where),
        fee_currency=opt_str(raw, "fee_currency", where),
        order_type=opt_str(raw, "order_type", where),
        time=req_int(raw, "time", where),
        seq=raw.get("seq") if type(raw.get("seq")) is int else None,
    )


def parse_fills(msg: Mapping[str, Any], *, snapshot: bool) -> FillsFrame:
    where = "fills_snapshot" if snapshot else "fills"
    fills = list_of_objects(msg, "fills", where)
    return FillsFrame(
        snapshot=snapshot,
        account=opt_str(msg, "account", where),
        fills=tuple(_ws_fill(f, f"{where}: fills[{i}]") for i, f in enumerate(fills)),
    )


def _opt_int(msg: Mapping[str, Any], key: str, where: str) -> int | None:
    value = msg.get(key)
    if value is not None and type(value) is not int:
        raise ProtocolError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def parse_open_positions(msg: Mapping[str, Any]) -> OpenPositionsFrame:
    where = "open_positions"
    positions = []
    for i, raw in enumerate(list_of_objects(msg, "positions", where)):
        at = f"{where}: positions[{i}]"
        positions.append(
            WsPosition(
                symbol=req_str(raw, "instrument", at).upper(),
                balance=req_decimal(raw, "balance", at),
                entry_price=req_decimal(raw, "entry_price", at),
                mark_price=opt_decimal(raw, "mark_price", at),
                index_price=opt_decimal(raw, "index_price", at),
                pnl=opt_decimal(raw, "pnl", at),
                unrealized_funding=opt_decimal(raw, "unrealized_funding", at),
                liquidation_threshold=opt_decimal(raw, "liquidation_threshold", at),
                effective_leverage=opt_decimal(raw, "effective_leverage", at),
                initial_margin=opt_decimal(raw, "initial_margin", at),
                initial_margin_with_orders=opt_decimal(raw, "initial_margin_with_orders", at),
                maintenance_margin=opt_decimal(raw, "maintenance_margin", at),
            )
        )
    return OpenPositionsFrame(
        account=opt_str(msg, "account", where),
        positions=tuple(positions),
        seq=_opt_int(msg, "seq", where),
        timestamp=_opt_int(msg, "timestamp", where),
    )


def _flex_balances(raw: Mapping[str, Any], where: str) -> FlexBalances:
    def num(key: str) -> Decimal:
        return opt_decimal(raw, key, where) or Decimal(0)

    currencies: dict[str, Decimal] = {}
    for name, entry in as_object(raw.get("currencies", {}), f"{where}: currencies").items():
        obj = as_object(entry, f"{where}: currencies.{name}")
        currencies[name] = req_decimal(obj, "quantity", f"{where}: currencies.{name}")
    return FlexBalances(
        balance_value=num("balance_value"),
        portfolio_value=num("portfolio_value"),
        collateral_value=num("collateral_value"),
        initial_margin=num("initial_margin"),
        initial_margin_without_orders=num("initial_margin_without_orders"),
        maintenance_margin=num("maintenance_margin"),
        pnl=num("pnl"),
        unrealized_funding=num("unrealized_funding"),
        total_unrealized=num("total_unrealized"),
        margin_equity=num("margin_equity"),
        available_margin=num("available_margin"),
        currencies=currencies,
    )


def parse_balances(msg: Mapping[str, Any], *, snapshot: bool) -> BalancesFrame:
    where = "balances_snapshot" if snapshot else "balances"
    holding: dict[str, Decimal] = {}
    for name, amount in as_object(msg.get("holding", {}), f"{where}: holding").items():
        holding[name] = req_decimal({name: amount}, name, f"{where}: holding")
    flex_raw = msg.get("flex_futures")
    flex = None if flex_raw is None else _flex_balances(as_object(flex_raw, where), where)
    return BalancesFrame(
        snapshot=snapshot,
        account=opt_str(msg, "account", where),
        seq=_opt_int(msg, "seq", where),
        timestamp=_opt_int(msg, "timestamp", where),
        holding=holding,
        flex=flex,
    )
