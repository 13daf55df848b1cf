"""Small builders of the daemon's own ``Order`` and ``Fill`` values for report tests."""

from __future__ import annotations

import itertools
from decimal import Decimal

from bot.execution.orders import Fill, Order, OrderState
from bot.kraken.instruments import Instrument

S = 10**9
MINUTE = 60 * S
T0 = 1_700_000_000 * S  # 2023-11-14 22:13:20 UTC
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)
ETHBTC = Instrument("ETH/BTC", "ETH", "BTC", price_precision=5, qty_precision=8)
# Whole units: the arithmetic of the examples reads directly.
UNIT = Instrument("XYZ/USD", "XYZ", "USD", price_precision=0, qty_precision=0)

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
