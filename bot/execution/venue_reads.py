"""How the engine reads the venue to reconcile: which queries, in which order, how many pages.

``VenueReads`` asks the venue port (``bot.execution.venue``) for what reconciliation needs
and nothing more: every open order (a full reconciliation), the orders it does not show
by venue id, then, for orders whose venue id was never learned (their place's answer was
lost), one page of recent closed orders when there are several and the open and closed
orders by ``cl_ord_id`` one by one; closed orders since a time and the trade history page
after page (``offset``) until the venue's ``count`` is covered or a page comes back empty,
within a bound (``closed_orders_truncated``, ``trades_history_truncated`` say when it cut
a read short). It decides nothing about the orders (``bot.execution.reconcile`` does)
and keeps no state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from bot.core.log import get_logger
from bot.execution import reconcile as rc
from bot.execution.orders import Order
from bot.execution.venue import ExchangeOrder, ExchangeTrade, Venue

__all__ = ["VenueReads"]

_NS: Final = 1_000_000_000
log = get_logger(component="engine")


class VenueReads:
    """See the module docstring; the bounds are the engine's (``EngineConfig``)."""

    __slots__ = ("_closed_orders_from", "_fills_margin_s", "_max_history_pages", "_venue")

    def __init__(
        self,
        venue: Venue,
        *,
        closed_orders_from: int,
        fills_margin_s: float,
        max_history_pages: int,
    ) -> None:
        self._venue = venue
        self._closed_orders_from = closed_orders_from
        self._fills_margin_s = fills_margin_s
        self._max_history_pages = max_history_pages

    async def fetch(self, local: Sequence[Order], *, full: bool) -> list[ExchangeOrder]:
        """The venue's view of ``local`` (with ``full``, and of every open order)."""
        venue = self._venue
        found: list[ExchangeOrder] = []
        if full:
            found += await venue.open_orders()
        txids = [x.order_id for x in rc.unseen(local, found, txid=True) if x.order_id]
        if txids:
            found += await venue.query_orders(txids)
        blind = rc.unseen(local, found, txid=False)
        if full and len(blind) >= self._closed_orders_from:
            start = min(x.created_ns for x in blind) // _NS - int(self._fills_margin_s)
            found += await self.closed_since(max(start, 0), pages=1)
        for order in blind:
            if not full:
                found += await venue.open_orders(cl_ord_id=order.cl_ord_id)
            if order in rc.unseen(local, found, txid=False):  # closed orders by cl_ord_id
                found += (await venue.closed_orders(cl_ord_id=order.cl_ord_id)).orders
        return found

    async def trades(self, of: Sequence[Order], last: Mapping[str, int]) -> list[ExchangeTrade]:
        """The trade history from the earliest of ``of``'s last recorded fills (``last``,
        else its creation), less the margin for clock skew."""
        margin = int(self._fills_margin_s * _NS)
        start = rc.trades_start_ns(of, last, margin_ns=margin) // _NS
        trades: list[ExchangeTrade] = []
        for _ in range(self._max_history_pages):
            page = await self._venue.trades(start_s=start, offset=len(trades))
            trades += page.trades
            if not page.trades or len(trades) >= page.count:
                return trades
        log.warning("trades_history_truncated", pages=self._max_history_pages)
        return trades

    async def closed_since(self, start: int, *, pages: int) -> list[ExchangeOrder]:
        """Closed orders since ``start`` (seconds), newest first, page after page
        (``offset``; Kraken: 50 a page, each costing 2 on the REST counter) until the venue's
        ``count`` is covered or a page comes back empty, at most ``pages`` pages. An order
        that closes meanwhile shifts the pages by one: the order it pushes across a
        boundary is read twice and kept once (by venue id), none is skipped."""
        found: dict[str, ExchangeOrder] = {}
        read = 0
        for _ in range(pages):
            page = await self._venue.closed_orders(start_s=start, offset=read)
            found.update((ex.order_id, ex) for ex in page.orders)
            read += len(page.orders)
            if not page.orders or read >= page.count:
                return list(found.values())
        log.warning("closed_orders_truncated", pages=pages, read=read, since_s=start)
        return list(found.values())
