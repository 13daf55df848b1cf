"""``PlaceOrder`` commands for tests that drive the engine directly, built as the strategy
context builds them: an id from the engine's recorded block (or the one given), the new
order stamped on the test's clock."""

from __future__ import annotations

from typing import Any

from bot.core.clock import Clock
from bot.execution.commands import PlaceOrder
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import new_order
from bot.kraken.instruments import Instrument


def command(  # noqa: PLR0917 (an order's fields, in the order tests read them)
    engine: ExecutionEngine,
    clock: Clock,
    inst: Instrument,
    side: str,
    qty: int,
    price: int | None = None,
    **fields: Any,
) -> PlaceOrder:
    """``fields``: ``strategy``, ``cl_ord_id``, and ``new_order``'s ``order_type``,
    ``time_in_force``, ``post_only``."""
    strategy = fields.pop("strategy", "")
    cid = fields.pop("cl_ord_id", None) or engine.new_cl_ord_id(strategy)
    fields.setdefault("order_type", "limit")
    order = new_order(
        cl_ord_id=cid, instrument=inst, side=side, qty=qty, price=price, strategy=strategy,
        now_ns=clock.time_ns(), **fields,
    )  # fmt: skip
    return PlaceOrder(order, inst)
