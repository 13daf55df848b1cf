"""Kraken's WS v2 execution reports, rendered from the simulator's exchange values (pure).

The ``executions`` channel (https://docs.kraken.com/api/docs/websocket-v2/executions,
KRAKEN.md §5.7) sends reports as sparse as Kraken's: ``pending_new`` and the snapshot carry
the whole order (``order_report``), ``new`` little more than ids and status, ``trade`` the
fill (``exec_id``, ``trade_id``, ``last_qty``, ``last_price``, ``cost``, ``liquidity_ind``,
``fees``, ``fee_usd_equiv``) and the order's cumulative figures (``fill_report``),
``filled``/``canceled``/``expired`` the final figures and ``reason``, ``amended`` the new
qty and price (``execution_report``). Numbers are ``Decimal`` (exact JSON numbers through
``codec.dumps``); ``fee_usd_equiv`` values a fee at the asset's USD best bid.

This module owns that rendering only; ``ws_private`` sends it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from bot.kraken.instruments import InstrumentTable, from_scaled
from bot.sim.exchange import Exchange
from bot.sim.matching import ExecEvent, Fill, OrderState
from bot.sim.ws_common import rfc3339

__all__ = ["Reports", "execution_report", "fill_report", "order_report"]

_USD_QUANTUM: Final = Decimal("0.0001")


class Reports:
    """Turns the exchange's values into Kraken's execution reports for one venue."""

    def __init__(self, exchange: Exchange, instruments: InstrumentTable) -> None:
        self.exchange = exchange
        self.instruments = instruments

    def usd(self, amount: Decimal, asset: str) -> Decimal:
        """``fee_usd_equiv``: the amount at the asset's USD best bid (0 with no such pair)."""
        if asset == "USD":
            return amount
        inst = self.instruments.lookup(f"{asset}/USD")
        bid = self.exchange.book(inst.symbol).best_bid() if inst is not None else None
        if inst is None or bid is None:
            return Decimal(0)
        value = amount * from_scaled(bid, inst.price_precision)
        return value.quantize(_USD_QUANTUM, ROUND_HALF_EVEN)

    def price(self, symbol: str, n: int) -> Decimal:
        return from_scaled(n, self.instruments[symbol].price_precision)

    def qty(self, symbol: str, n: int) -> Decimal:
        return from_scaled(n, self.instruments[symbol].qty_precision)


def _ids(order: OrderState) -> dict[str, Any]:
    out: dict[str, Any] = {"order_id": order.txid}
    if order.cl_ord_id is not None:
        out["cl_ord_id"] = order.cl_ord_id
    out["order_userref"] = order.userref or 0
    return out


def order_report(r: Reports, order: OrderState, exec_type: str, timestamp: int) -> dict[str, Any]:
    """The whole order, as ``pending_new`` and the snapshot show it."""
    sym = order.symbol
    out = _ids(order)
    out.update(
        symbol=sym,
        side=order.side,
        order_type=order.ord_type,
        order_qty=r.qty(sym, order.qty),
        time_in_force=order.time_in_force,
        exec_type=exec_type,
        order_status=order.order_status,
    )
    if order.price is not None:
        out["limit_price_type"] = "static"
        out["limit_price"] = r.price(sym, order.price)
    if order.post_only:
        out["post_only"] = True
    if order.expire_at is not None:
        out["expire_time"] = rfc3339(order.expire_at)
    out["cum_qty"] = r.qty(sym, order.filled)
    out["cum_cost"] = order.cost
    if order.avg_price is not None:
        out["avg_price"] = order.avg_price
    out["fee_usd_equiv"] = r.usd(order.fee, order.fee_asset)
    out["fee_ccy_pref"] = "fcib" if order.fee_in_base else "fciq"
    out["timestamp"] = rfc3339(timestamp)
    return out


def fill_report(r: Reports, order: OrderState, fill: Fill) -> dict[str, Any]:
    """A ``trade`` report: the fill and the order's cumulative figures after it."""
    sym = fill.symbol
    out = _ids(order)
    out.update(
        exec_id=fill.exec_id,
        exec_type="trade",
        trade_id=fill.trade_id,
        symbol=sym,
        side=fill.side,
        last_qty=r.qty(sym, fill.qty),
        last_price=r.price(sym, fill.price),
        liquidity_ind=fill.liquidity,
        cost=fill.cost,
        order_status=order.order_status,
        order_type=order.ord_type,
        timestamp=rfc3339(fill.timestamp),
        cum_qty=r.qty(sym, order.filled),
        cum_cost=order.cost,
        avg_price=order.avg_price if order.avg_price is not None else Decimal(0),
        fee_usd_equiv=r.usd(fill.fee, fill.fee_asset),
        fees=[{"asset": fill.fee_asset, "qty": fill.fee}],
        fee_ccy_pref="fcib" if order.fee_in_base else "fciq",
    )
    return out


def execution_report(r: Reports, event: ExecEvent) -> dict[str, Any]:
    """One execution report, as sparse as Kraken's for its ``exec_type``."""
    order = event.order
    kind = event.exec_type
    if kind == "pending_new":
        return order_report(r, order, kind, event.timestamp)
    if kind == "trade" and event.fill is not None:
        return fill_report(r, order, event.fill)
    sym = order.symbol
    out: dict[str, Any] = {
        "timestamp": rfc3339(event.timestamp),
        "order_status": order.order_status,
        "exec_type": kind,
    }
    if kind in ("amended", "restated"):
        out["cum_qty"] = r.qty(sym, order.filled)
        out["reason"] = event.reason or ("User requested" if kind == "amended" else "")
        if kind == "amended":
            out["amended"] = True
        out["order_qty"] = r.qty(sym, order.qty)
        if order.price is not None:
            out["limit_price"] = r.price(sym, order.price)
            out["limit_price_type"] = "static"
    elif kind != "new":
        out["cum_qty"] = r.qty(sym, order.filled)
        out["cum_cost"] = order.cost
        out["fee_usd_equiv"] = r.usd(order.fee, order.fee_asset)
        out["avg_price"] = order.avg_price if order.avg_price is not None else Decimal(0)
        reason = event.reason or order.reason
        if reason:
            out["reason"] = reason
    if order.post_only:
        out["post_only"] = True
    out.update(_ids(order))
    return out
