"""``krakenbot orders`` and ``krakenbot fills``: filtered lists, as a table or as JSON.

Filters: ``since_ns`` (an order *changed* at or after it, i.e. its last update; a fill made
at or after it), ``strategy`` (a fill's strategy is its order's, as in the report, see
``bot.research.record``) and ``symbol``; ``open_only`` for orders. Rows come oldest first
(orders by creation, fills by time). JSON values are exact: prices and quantities as
decimal strings at the pair's precision, money as decimal strings, times as ns and ISO-8601.
Pure: the rows are built from values the caller read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.execution.orders import Fill, Order
from bot.kraken.instruments import format_scaled
from bot.research.fmt import strategy_name
from bot.research.record import RunRecord
from bot.research.report_json import iso_time
from bot.research.terminal import table

__all__ = [
    "Filters",
    "fill_rows",
    "fills_table",
    "order_rows",
    "orders_table",
    "select_fills",
    "select_orders",
]


@dataclass(frozen=True, slots=True)
class Filters:
    since_ns: int | None = None
    strategy: str | None = None
    symbol: str | None = None
    open_only: bool = False


def select_orders(orders: Iterable[Order], filters: Filters) -> list[Order]:
    chosen = [
        o
        for o in orders
        if (filters.since_ns is None or o.updated_ns >= filters.since_ns)
        and (filters.strategy is None or o.strategy == filters.strategy)
        and (filters.symbol is None or o.symbol == filters.symbol)
        and (not filters.open_only or o.is_open)
    ]
    chosen.sort(key=lambda o: (o.created_ns, o.cl_ord_id))
    return chosen


def select_fills(
    fills: Iterable[Fill], orders: Sequence[Order], owners: Mapping[str, str], filters: Filters
) -> list[tuple[str, Fill]]:
    """``(strategy, fill)`` pairs that pass ``filters``."""
    record = RunRecord("", owners=owners)
    by_id = {o.cl_ord_id: o for o in orders}
    chosen = []
    for fill in fills:
        if filters.since_ns is not None and fill.ts_ns < filters.since_ns:
            continue
        if filters.symbol is not None and fill.symbol != filters.symbol:
            continue
        strategy = record.strategy_of(fill, by_id)
        if filters.strategy is None or strategy == filters.strategy:
            chosen.append((strategy, fill))
    chosen.sort(key=lambda sf: (sf[1].ts_ns, sf[1].exec_id))
    return chosen


def _price(o: Order) -> str | None:
    return None if o.price is None else format_scaled(o.price, o.price_precision)


def order_rows(orders: Sequence[Order]) -> list[dict[str, Any]]:
    return [
        {
            "cl_ord_id": o.cl_ord_id,
            "order_id": o.order_id,
            "strategy": o.strategy,
            "symbol": o.symbol,
            "side": o.side,
            "order_type": o.order_type,
            "qty": format_scaled(o.qty, o.qty_precision),
            "price": _price(o),
            "filled_qty": format_scaled(o.filled_qty, o.qty_precision),
            "cum_cost": f"{o.cum_cost:f}",
            "avg_price": None if o.avg_price is None else f"{o.avg_price:f}",
            "state": str(o.state),
            "reason": o.reason,
            "time_in_force": o.time_in_force,
            "post_only": o.post_only,
            "created_ns": o.created_ns,
            "created": iso_time(o.created_ns),
            "updated_ns": o.updated_ns,
            "updated": iso_time(o.updated_ns),
        }
        for o in orders
    ]


def fill_rows(fills: Sequence[tuple[str, Fill]]) -> list[dict[str, Any]]:
    return [
        {
            "exec_id": f.exec_id,
            "trade_id": f.trade_id,
            "cl_ord_id": f.cl_ord_id,
            "order_id": f.order_id,
            "strategy": strategy,
            "symbol": f.symbol,
            "side": f.side,
            "qty": format_scaled(f.qty, f.qty_precision),
            "price": format_scaled(f.price, f.price_precision),
            "cost": f"{f.cost:f}",
            "fee": f"{f.fee:f}",
            "fee_asset": f.fee_asset,
            "liquidity": {"m": "maker", "t": "taker"}.get(f.liquidity, f.liquidity),
            "ts_ns": f.ts_ns,
            "time": iso_time(f.ts_ns),
        }
        for strategy, f in fills
    ]


def _short_time(iso: str | None) -> str:
    return "" if iso is None else iso[:10] + " " + iso[11:23]  # ms, UTC


def orders_table(orders: Sequence[Order]) -> str:
    rows = [
        [
            _short_time(r["created"]),
            strategy_name(r["strategy"]),
            r["symbol"],
            r["side"],
            r["order_type"],
            r["qty"],
            r["price"] or "market",
            r["filled_qty"],
            r["state"],
            r["reason"],
            r["cl_ord_id"],
        ]
        for r in order_rows(orders)
    ]
    headers = ["created (UTC)", "strategy", "symbol", "side", "type", "qty", "price", "filled",
               "state", "reason", "cl_ord_id"]  # fmt: skip
    lines = table(headers, rows, align="lllllrrrlll")
    lines.append(f"{len(rows)} order{'s' if len(rows) != 1 else ''}")
    return "\n".join(lines) + "\n"


def fills_table(fills: Sequence[tuple[str, Fill]]) -> str:
    rows = [
        [
            _short_time(r["time"]),
            strategy_name(r["strategy"]),
            r["symbol"],
            r["side"],
            r["qty"],
            r["price"],
            r["cost"],
            f"{r['fee']} {r['fee_asset']}".strip(),
            r["liquidity"],
            r["cl_ord_id"],
        ]
        for r in fill_rows(fills)
    ]
    headers = ["time (UTC)", "strategy", "symbol", "side", "qty", "price", "cost", "fee",
               "liquidity", "cl_ord_id"]  # fmt: skip
    lines = table(headers, rows, align="llllrrrrll")
    lines.append(f"{len(rows)} fill{'s' if len(rows) != 1 else ''}")
    return "\n".join(lines) + "\n"
