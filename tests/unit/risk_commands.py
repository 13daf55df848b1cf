"""Commands for the risk gate's tests, in the shapes the tests read best: a place by
(strategy, instrument, side, qty, price), an amend by the order's current (side, qty,
price) and its new ones. The orders are built field by field (``Order`` itself), not with
``new_order``: the gate must judge what it is given, odd values included (a zero
quantity, a side that is neither)."""

from __future__ import annotations

from bot.execution.commands import AmendOrder, CancelOrder, PlaceOrder
from bot.execution.orders import Order, OrderState
from bot.kraken.instruments import Instrument

CID = "0123456789abcdef0123456789abcdef"


def _order(
    strategy: str, inst: Instrument, side: str, qty: int, price: int | None, **fields: object
) -> Order:
    return Order(
        CID, inst.symbol, side, "limit" if price is not None else "market", qty, price,
        inst.price_precision, inst.qty_precision, strategy, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def place_cmd(
    strategy: str, inst: Instrument, side: str, qty: int, price: int | None = None
) -> PlaceOrder:
    return PlaceOrder(_order(strategy, inst, side, qty, price), inst)


def amend_cmd(
    strategy: str,
    inst: Instrument,
    side: str,
    qty: int,
    price: int | None,
    *,
    new_qty: int | None = None,
    new_price: int | None = None,
    filled_qty: int = 0,
) -> AmendOrder:
    order = _order(strategy, inst, side, qty, price, state=OrderState.NEW, filled_qty=filled_qty)
    return AmendOrder(order, inst, new_qty, new_price)


def cancel_cmd(strategy: str, symbol: str = "BTC/USD", cl_ord_id: str = CID) -> CancelOrder:
    inst = Instrument(symbol, "X", "Y", price_precision=1, qty_precision=8)
    return CancelOrder(_order(strategy, inst, "buy", 1, 1, state=OrderState.NEW))
