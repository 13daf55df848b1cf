"""The handle index: one ``OrderHandle`` per order of ours, for the strategies to hold.

A strategy keeps the handle ``place`` returned and gets the same object in every
``on_order`` and ``on_fill``; ``HandleIndex`` is where that object is found again by
``cl_ord_id``. Open orders' handles stay while the order is open; a done order's handle is
kept among the most recent ``recent_done`` (so ``ctx.order(cl_ord_id)`` still finds it for
a while), then forgotten (the store keeps the order). ``update`` moves a handle on with the
engine's newest ``Order`` (making one for an order it has never seen: adopted after a
restart). No I/O, no clock, no strategy calls: the router tells the strategies.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from dataclasses import fields
from typing import Final

from bot.execution.orders import Order
from bot.strategy import OrderHandle

__all__ = ["RECENT_DONE", "HandleIndex", "same"]

RECENT_DONE: Final = 1000  # done handles kept for ``ctx.order`` after they leave the book


class HandleIndex:
    """See the module docstring."""

    __slots__ = ("_done", "_open", "_recent_done")

    def __init__(self, recent_done: int = RECENT_DONE) -> None:
        self._open: dict[str, OrderHandle] = {}
        self._done: OrderedDict[str, OrderHandle] = OrderedDict()
        self._recent_done = recent_done

    def get(self, cl_ord_id: str) -> OrderHandle | None:
        """The handle of an open or recently done order."""
        return self._open.get(cl_ord_id) or self._done.get(cl_ord_id)

    def open(self, strategy: str | None = None, symbol: str | None = None) -> list[OrderHandle]:
        """The open orders' handles (of ``strategy``, on ``symbol``), in the order placed."""
        return [
            h
            for h in self._open.values()
            if (strategy is None or h.order.strategy == strategy)
            and (symbol is None or h.symbol == symbol)
            and h.is_open
        ]

    def add(self, handle: OrderHandle) -> None:
        """A new order's handle (a place), before anything can be told about it."""
        self._open[handle.cl_ord_id] = handle

    def update(self, order: Order) -> OrderHandle:
        """The handle of ``order`` (made if there is none), showing ``order`` now."""
        cid = order.cl_ord_id
        handle = self._open.get(cid) or self._done.get(cid)
        if handle is None:
            handle = OrderHandle(order)
        else:
            handle.update(order)
        if order.is_open:
            self._open[cid] = handle
            return handle
        self._open.pop(cid, None)
        done = self._done
        done[cid] = handle
        done.move_to_end(cid)
        while len(done) > self._recent_done:
            done.popitem(last=False)
        return handle


_UNSTAMPED: Final = operator.attrgetter(
    *(f.name for f in fields(Order) if f.name not in ("created_ns", "updated_ns"))
)


def same(a: Order, b: Order) -> bool:
    """Equal but for when they were stamped (a restamp tells a strategy nothing)."""
    return a is b or _UNSTAMPED(a) == _UNSTAMPED(b)
