"""How the Futures simulator prints its state: REST v3 objects and WS v1 frame bodies.

Field names and shapes follow Kraken's pages, one function per object:

- ``order_event``: an ``orderEvents`` entry (PLACE, EXECUTION, EDIT, CANCEL, REJECT; the
  trigger variants carry ``orderTrigger`` with ``triggerPrice``, ``triggerSide`` and
  ``triggerSignal``), as on ``send-order``, ``edit-order-spring``, ``cancel-order`` and
  ``send-batch-order``. Symbols inside events are lower case, as Kraken prints them.
- ``open_order``, ``fill``, ``open_position``, ``flex_account``, ``ticker``: the entries
  of ``get-open-orders``, ``get-fills``, ``get-open-positions``, ``get-accounts`` and
  ``get-tickers``.
- ``ws_order``, ``ws_fill``, ``ws_position``, ``ws_flex``, ``ws_ticker``: the same for the
  ``open_orders``, ``fills``, ``open_positions``, ``balances`` and ``ticker`` feeds.

Numbers leave as exact ``Decimal`` (written with exactly their digits by
``bot.kraken.codec.dumps``); REST times are RFC 3339 with milliseconds
(``2023-04-07T15:18:04.699Z``), WS times integer milliseconds.

This module owns those renderings; it changes nothing.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Final

from bot.sim.futures.contracts import Contract
from bot.sim.futures.margin import ContractMargin, MarginView, liquidation_price
from bot.sim.futures.records import Ev, FillRec, OrderSnap, Position

__all__ = [
    "flex_account",
    "iso_ms",
    "ms",
    "open_order",
    "open_position",
    "order_event",
    "rest_fill",
    "ws_fill",
    "ws_flex",
    "ws_order",
    "ws_position",
]

_SIGNALS: Final = {"mark": "mark_price", "index": "spot_price", "last": "last_price"}


def iso_ms(ns: int) -> str:
    """``2023-04-07T15:18:04.699Z`` for ns since the epoch."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def ms(ns: int) -> int:
    return ns // 1_000_000


def _price(contract: Contract, n: int | None) -> Decimal | None:
    return None if n is None else contract.price_decimal(n)


def _order(contract: Contract, snap: OrderSnap) -> dict[str, Any]:
    return {
        "orderId": snap.order_id,
        "cliOrdId": snap.cli_ord_id,
        "type": snap.kind,
        "symbol": snap.symbol.lower(),
        "side": snap.side,
        "quantity": contract.qty_decimal(snap.qty),
        "filled": contract.qty_decimal(snap.filled),
        "limitPrice": _price(contract, snap.limit_price),
        "reduceOnly": snap.reduce_only,
        "timestamp": iso_ms(snap.received_ns),
        "lastUpdateTimestamp": iso_ms(snap.updated_ns),
    }


def _trigger(contract: Contract, snap: OrderSnap) -> dict[str, Any]:
    assert snap.stop_price is not None
    above = snap.side == "buy" if snap.kind == "stp" else snap.side == "sell"
    return {
        "uid": snap.order_id,
        "clientId": snap.cli_ord_id,
        "type": "lmt" if snap.limit_price is not None else "mkt",
        "symbol": snap.symbol.lower(),
        "side": snap.side,
        "quantity": contract.qty_decimal(snap.qty),
        "limitPrice": _price(contract, snap.limit_price),
        "triggerPrice": contract.price_decimal(snap.stop_price),
        "triggerSide": "trigger_above" if above else "trigger_below",
        "triggerSignal": _SIGNALS.get(snap.trigger_signal or "last", "last_price"),
        "reduceOnly": snap.reduce_only,
        "timestamp": iso_ms(snap.received_ns),
        "lastUpdateTimestamp": iso_ms(snap.updated_ns),
        "startTime": None,
    }


def order_event(contract: Contract, ev: Ev) -> dict[str, Any]:
    """One ``orderEvents`` entry."""
    snap = ev.order
    reduced = None if ev.reduced_quantity is None else contract.qty_decimal(ev.reduced_quantity)
    if ev.kind == "EXECUTION":
        assert ev.prior is not None and ev.price is not None and ev.amount is not None
        return {
            "type": "EXECUTION",
            "executionId": ev.execution_id,
            "price": contract.price_decimal(ev.price),
            "amount": contract.qty_decimal(ev.amount),
            "orderPriorEdit": None,
            "orderPriorExecution": _order(contract, ev.prior),
            "takerReducedQuantity": reduced,
        }
    body_key, body = (
        ("orderTrigger", _trigger(contract, snap))
        if snap.is_trigger
        else ("order", _order(contract, snap))
    )
    if ev.kind == "PLACE":
        out: dict[str, Any] = {"type": "PLACE", body_key: body}
        if not snap.is_trigger:
            out["reducedQuantity"] = reduced
        return out
    if ev.kind == "EDIT":
        assert ev.old is not None
        old = _trigger(contract, ev.old) if ev.old.is_trigger else _order(contract, ev.old)
        return {"type": "EDIT", "old": old, "new": body, "reducedQuantity": reduced}
    if ev.kind == "CANCEL":
        return {"type": "CANCEL", "uid": snap.order_id, body_key: body}
    return {"type": "REJECT", "uid": snap.order_id, body_key: body, "reason": ev.reason}


def open_order(contract: Contract, snap: OrderSnap) -> dict[str, Any]:
    """An ``openOrders`` entry."""
    out: dict[str, Any] = {
        "order_id": snap.order_id,
        "symbol": snap.symbol,
        "side": snap.side,
        "orderType": snap.rest_type,
    }
    if snap.cli_ord_id is not None:
        out["cliOrdId"] = snap.cli_ord_id
    if snap.limit_price is not None:
        out["limitPrice"] = contract.price_decimal(snap.limit_price)
    if snap.stop_price is not None:
        out["stopPrice"] = contract.price_decimal(snap.stop_price)
    out["unfilledSize"] = contract.qty_decimal(snap.remaining)
    out["receivedTime"] = iso_ms(snap.received_ns)
    out["status"] = "partiallyFilled" if snap.filled else "untouched"
    out["filledSize"] = contract.qty_decimal(snap.filled)
    out["reduceOnly"] = snap.reduce_only
    if snap.trigger_signal is not None:
        out["triggerSignal"] = snap.trigger_signal
    out["lastUpdateTime"] = iso_ms(snap.updated_ns)
    return out


def rest_fill(contract: Contract, fill: FillRec) -> dict[str, Any]:
    """A ``fills`` entry."""
    out: dict[str, Any] = {
        "fill_id": fill.fill_id,
        "symbol": fill.symbol,
        "side": fill.side,
        "order_id": fill.order_id,
        "size": contract.qty_decimal(fill.qty),
        "price": contract.price_decimal(fill.price),
        "fillTime": iso_ms(fill.time_ns),
        "fillType": fill.fill_type,
    }
    if fill.cli_ord_id is not None:
        out["cliOrdId"] = fill.cli_ord_id
    return out


def open_position(contract: Contract, symbol: str, pos: Position) -> dict[str, Any]:
    """An ``openPositions`` entry: the size is unsigned, the side says long or short."""
    return {
        "side": "long" if pos.qty > 0 else "short",
        "symbol": symbol,
        "price": pos.entry,
        "fillTime": iso_ms(pos.opened_ns),
        "size": contract.qty_decimal(abs(pos.qty)),
        "unrealizedFunding": pos.unrealized_funding,
        "pnlCurrency": "USD",
    }


def flex_account(view: MarginView) -> dict[str, Any]:
    """``accounts.flex``: the multi-collateral account (USD collateral only)."""
    usd = view.balance
    return {
        "type": "multiCollateralMarginAccount",
        "currencies": {"USD": {"quantity": usd, "value": usd, "collateral": usd, "available": usd}},
        "initialMargin": view.initial,
        "initialMarginWithOrders": view.initial_with_orders,
        "maintenanceMargin": view.maintenance,
        "balanceValue": usd,
        "portfolioValue": view.portfolio_value,
        "collateralValue": usd,
        "pnl": view.pnl,
        "unrealizedFunding": view.unrealized_funding,
        "totalUnrealized": view.pnl + view.unrealized_funding,
        "totalUnrealizedAsMargin": view.pnl + view.unrealized_funding,
        "availableMargin": view.available_margin,
        "marginEquity": view.margin_equity,
    }


# ------------------------------------------------------------------------- WS v1 bodies


def ws_order(contract: Contract, snap: OrderSnap) -> dict[str, Any]:
    """An order as the ``open_orders`` feed prints it."""
    out: dict[str, Any] = {
        "instrument": snap.symbol,
        "time": ms(snap.received_ns),
        "last_update_time": ms(snap.updated_ns),
        "qty": contract.qty_decimal(snap.qty),
        "filled": contract.qty_decimal(snap.filled),
        "limit_price": _price(contract, snap.limit_price) or Decimal(0),
        "stop_price": _price(contract, snap.stop_price) or Decimal(0),
        "type": snap.ws_type,
        "order_id": snap.order_id,
        "direction": 0 if snap.side == "buy" else 1,
        "reduce_only": snap.reduce_only,
    }
    if snap.cli_ord_id is not None:
        out["cli_ord_id"] = snap.cli_ord_id
    if snap.trigger_signal is not None:
        out["triggerSignal"] = snap.trigger_signal
    return out


def ws_fill(contract: Contract, fill: FillRec, seq: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "instrument": fill.symbol,
        "time": ms(fill.time_ns),
        "price": contract.price_decimal(fill.price),
        "seq": seq,
        "buy": fill.side == "buy",
        "qty": contract.qty_decimal(fill.qty),
        "remaining_order_qty": contract.qty_decimal(fill.remaining),
        "order_id": fill.order_id,
        "fill_id": fill.fill_id,
        "fill_type": fill.fill_type,
        "fee_paid": fill.fee,
        "fee_currency": "USD",
        "taker_order_type": "market" if fill.taker_kind in ("mkt", "ioc") else fill.taker_kind,
        "order_type": "limit" if fill.order_kind in ("lmt", "post") else fill.order_kind,
    }
    if fill.cli_ord_id is not None:
        out["cli_ord_id"] = fill.cli_ord_id
    return out


def ws_position(
    contract: Contract, cm: ContractMargin, index: int, equity_elsewhere: Decimal
) -> dict[str, Any]:
    liq = liquidation_price(contract, cm.qty, cm.entry, equity_elsewhere)
    roe = cm.pnl / cm.initial if cm.initial else Decimal(0)
    return {
        "instrument": cm.symbol,
        "balance": contract.qty_decimal(cm.qty),
        "pnl": cm.pnl,
        "entry_price": cm.entry,
        "mark_price": contract.price_decimal(cm.mark),
        "index_price": contract.price_decimal(index),
        "liquidation_threshold": (liq or Decimal(0)).quantize(Decimal("0.01")),
        "effective_leverage": Decimal(0),
        "return_on_equity": roe.quantize(Decimal("0.0001")),
        "unrealized_funding": cm.unrealized_funding,
        "initial_margin": cm.initial,
        "initial_margin_with_orders": cm.initial_with_orders,
        "maintenance_margin": cm.maintenance,
        "pnl_currency": "USD",
    }


def ws_flex(view: MarginView) -> dict[str, Any]:
    """``flex_futures`` of the ``balances`` feed."""
    usd = view.balance
    unrealized = view.pnl + view.unrealized_funding
    return {
        "currencies": {
            "USD": {
                "quantity": usd,
                "value": usd,
                "collateral_value": usd,
                "available": view.available_margin,
                "haircut": Decimal(0),
                "conversion_spread": Decimal(0),
            }
        },
        "balance_value": usd,
        "portfolio_value": view.portfolio_value,
        "collateral_value": usd,
        "initial_margin": view.initial_with_orders,
        "initial_margin_without_orders": view.initial,
        "maintenance_margin": view.maintenance,
        "pnl": view.pnl,
        "unrealized_funding": view.unrealized_funding,
        "total_unrealized": unrealized,
        "total_unrealized_as_margin": unrealized,
        "margin_equity": view.margin_equity,
        "available_margin": view.available_margin,
        "isolated": {},
        "cross": {
            "balance_value": usd,
            "portfolio_value": view.portfolio_value,
            "collateral_value": usd,
            "initial_margin": view.initial_with_orders,
            "initial_margin_without_orders": view.initial,
            "maintenance_margin": view.maintenance,
            "pnl": view.pnl,
            "unrealized_funding": view.unrealized_funding,
            "total_unrealized": unrealized,
            "total_unrealized_as_margin": unrealized,
            "margin_equity": view.margin_equity,
            "available_margin": view.available_margin,
            "effective_leverage": Decimal(0),
        },
    }
