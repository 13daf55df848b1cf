"""Small builders of the daemon's own ``Order`` and ``Fill`` values for report tests."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

from bot.execution.orders import Fill, Order, OrderState
from bot.kraken.instruments import Instrument
from bot.store import Store

S = 10**9
MINUTE = 60 * S
T0 = 1_700_000_000 * S  # 2023-11-14 22:13:20 UTC
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)
ETHBTC = Instrument("ETH/BTC", "ETH", "BTC", price_precision=5, qty_precision=8)
# Whole units: the arithmetic of the examples reads directly.
UNIT = Instrument("XYZ/USD", "XYZ", "USD", price_precision=0, qty_precision=0)

PREFIX = "ef" * 12  # an id block of "mm" in write_paper_store
_ids = itertools.count(1)


def cid(n: int | None = None, prefix: str = "ab" * 12) -> str:
    """A 32-hex ``cl_ord_id`` (``prefix`` is its 24-hex id-block prefix)."""
    return f"{prefix}{next(_ids) if n is None else n:08x}"


def order(
    inst: Instrument,
    side: str,
    qty: str,
    price: str | None,
    *,
    state: OrderState = OrderState.FILLED,
    created: int = T0,
    updated: int | None = None,
    strategy: str = "mm",
    filled: str | None = None,
    cl_ord_id: str | None = None,
) -> Order:
    q = inst.qty(qty)
    return Order(
        cl_ord_id=cl_ord_id or cid(),
        symbol=inst.symbol,
        side=side,
        order_type="limit" if price is not None else "market",
        qty=q,
        price=None if price is None else inst.price(price),
        price_precision=inst.price_precision,
        qty_precision=inst.qty_precision,
        strategy=strategy,
        state=state,
        filled_qty=q if filled is None and state is OrderState.FILLED else inst.qty(filled or 0),
        created_ns=created,
        updated_ns=created if updated is None else updated,
    )


def fill(
    inst: Instrument,
    side: str,
    qty: str,
    price: str,
    *,
    ts: int = T0,
    fee: str = "0",
    fee_asset: str | None = None,
    liquidity: str = "m",
    cl_ord_id: str | None = None,
    of: Order | None = None,
) -> Fill:
    n = next(_ids)
    q, p = inst.qty(qty), inst.price(price)
    return Fill(
        exec_id=f"E{n:06d}",
        trade_id=f"T{n}",
        cl_ord_id=of.cl_ord_id if of is not None else (cl_ord_id or cid()),
        order_id=f"O{n}",
        symbol=inst.symbol,
        side=side,
        price=p,
        qty=q,
        price_precision=inst.price_precision,
        qty_precision=inst.qty_precision,
        cost=inst.cost(p, q),
        fee=Decimal(fee),
        fee_asset=fee_asset if fee_asset is not None else inst.quote,
        liquidity=liquidity,
        ts_ns=ts,
    )


def traded(
    inst: Instrument,
    side: str,
    qty: str,
    price: str,
    *,
    ts: int,
    fee: str = "0",
    strategy: str = "mm",
    liquidity: str = "m",
    fee_asset: str | None = None,
) -> tuple[Order, Fill]:
    """A limit order filled at once at ``ts``, and its fill."""
    o = order(inst, side, qty, price, created=ts, updated=ts, strategy=strategy)
    return o, fill(
        inst, side, qty, price, ts=ts, fee=fee, of=o, liquidity=liquidity, fee_asset=fee_asset
    )


def write_paper_store(path: Path) -> Store:
    """A small paper run: mm quotes BTC/USD and ETH/USD, grid trades BTC/USD, one order
    rejected, one still open, and a fill whose order row was lost (its id block says mm)."""
    store = Store.open(path)
    store.add_id_block(PREFIX, "mm", T0)
    store.set_meta("owner_mode", "paper")
    trades = [
        traded(BTC, "buy", "0.01", "30000.0", ts=T0 + 10 * S, fee="0.12"),
        traded(BTC, "sell", "0.01", "30050.0", ts=T0 + 70 * S, fee="0.12"),
        traded(ETH, "buy", "0.5", "2000.00", ts=T0 + 80 * S, fee="0.4"),
        traded(BTC, "sell", "0.02", "30020.0", ts=T0 + 90 * S, strategy="grid", liquidity="t"),
    ]
    for o, f in trades:
        store.save_order(o)
        store.record_fill(f)
    store.save_order(order(BTC, "buy", "0.01", "1.0", state=OrderState.REJECTED,
                           created=T0 + 20 * S, strategy="grid"))  # fmt: skip
    store.save_order(order(ETH, "sell", "0.5", "2100.00", state=OrderState.NEW,
                           created=T0 + 100 * S))  # fmt: skip
    store.record_fill(fill(BTC, "buy", "0.01", "30010.0", ts=T0 + 110 * S,
                           cl_ord_id=cid(prefix=PREFIX)))  # fmt: skip
    return store
