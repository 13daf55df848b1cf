"""Builders for the trader's view tests: instruments, orders, fills and pictures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot.execution.orders import Fill, Order, OrderState
from bot.execution.pnl import PositionBook
from bot.kraken.instruments import Instrument
from bot.service.observe import FillSeen, Observation, Pnl, StrategyView

T0 = 1_800_000_000_000_000_000  # ns
S = 1_000_000_000
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)
INSTRUMENTS = {"BTC/USD": BTC, "ETH/USD": ETH}


def order(
    n: int,
    side: str = "buy",
    price: str | None = "30000.0",
    qty: str = "0.01",
    *,
    inst: Instrument = BTC,
    state: OrderState = OrderState.NEW,
    strategy: str = "mm",
    created_ns: int = T0,
    filled: str = "0",
) -> Order:
    return Order(
        cl_ord_id=f"{n:032x}",
        symbol=inst.symbol,
        side=side,
        order_type="limit" if price is not None else "market",
        qty=inst.qty(qty),
        price=None if price is None else inst.price(price),
        price_precision=inst.price_precision,
        qty_precision=inst.qty_precision,
        strategy=strategy,
        state=state,
        filled_qty=inst.qty(filled),
        created_ns=created_ns,
    )


def fill(
    n: int,
    side: str = "buy",
    price: str = "30000.0",
    qty: str = "0.01",
    *,
    inst: Instrument = BTC,
    ts_ns: int = T0,
    fee: str = "0.12",
    liquidity: str = "m",
) -> Fill:
    return Fill(
        exec_id=f"EXEC-{n}",
        trade_id=f"T{n}",
        cl_ord_id=f"{n:032x}",
        order_id=f"O{n}",
        symbol=inst.symbol,
        side=side,
        price=inst.price(price),
        qty=inst.qty(qty),
        price_precision=inst.price_precision,
        qty_precision=inst.qty_precision,
        cost=Decimal(price) * Decimal(qty),
        fee=Decimal(fee),
        fee_asset=inst.quote,
        liquidity=liquidity,
        ts_ns=ts_ns,
    )


def strategy(name: str = "mm", **kw: Any) -> StrategyView:
    base = StrategyView(name, "running", "", 0, 10, "active")
    return replace(base, **kw)


def picture(
    *,
    at_ns: int = T0,
    metrics: Mapping[str, Sequence[tuple[tuple[str, ...], float]]] | None = None,
    fills: Sequence[Fill] = (),
    new_fills: Sequence[Fill] = (),
    strategies: Sequence[StrategyView] | None = None,
    book: PositionBook | None = None,
    **kw: Any,
) -> Observation:
    """A running picture of a bot trading BTC/USD and ETH/USD (``kw`` overrides fields)."""
    positions = book.positions("mm") if book is not None else []
    totals = book.positions() if book is not None else []
    pnl = (
        {q: Pnl(book.realised(q), book.unrealised(q), book.daily_pnl(q)) for q in book.quotes()}
        if book is not None
        else {}
    )
    fields: dict[str, Any] = {
        "risk_state": "active",
        "strategies": tuple(strategies if strategies is not None else [strategy()]),
        "instruments": INSTRUMENTS,
        "mids": {"BTC/USD": Decimal("30000.05"), "ETH/USD": Decimal("2000.005")},
        "positions": tuple(positions),
        "totals": tuple(totals),
        "pnl": pnl,
        "fills": tuple(FillSeen(f, "mm") for f in fills),
        "new_fills": tuple(FillSeen(f, "mm") for f in new_fills),
    }
    fields.update(kw)
    return Observation(at_ns, True, True, (), dict(metrics or {}), **fields)
