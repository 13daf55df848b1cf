"""Kraken spot over signed REST: the venue port's first implementation.

``KrakenRestVenue`` adapts ``bot.kraken.rest.KrakenRestClient`` (whose own signatures stay
Kraken's: ``add_order(pair, side, ordertype, volume, ...)``) to ``bot.execution.venue.Venue``:
the engine's ``Order`` and scaled ints out, ``ExchangeOrder``/``ExchangeTrade`` values in
(``bot.execution.rest_answers`` reads Kraken's results), errors as the client raises them
(``bot.core.errors`` by remedy; the client never retries AddOrder or AmendOrder, and a lost
answer is ``OrderStateUnknown``). What Kraken's REST needs and the port does not say is
here: an order is named by its txid, else its ``cl_ord_id``; QueryOrders takes 50 txids a
call and refuses the whole batch for one it does not know (``EOrder:Invalid order``), so
the batch is asked again id by id and the unknown one left out (``order_unknown_to_kraken``);
an AddOrder answer without exactly one txid is ``OrderStateUnknown``: the order may exist.
Executions do not come from here: the ``PrivateFeed`` (WS v2) delivers them to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from bot.core.errors import OrderStateUnknown, ProtocolError, RejectedError
from bot.core.log import get_logger
from bot.execution import rest_answers as answers
from bot.execution.orders import Order
from bot.execution.venue import CancelAfter, ExchangeOrder, OrdersPage, TradesPage, WsToken
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.kraken.rest import KrakenRestClient

__all__ = ["QUERY_BATCH", "KrakenRestVenue"]

QUERY_BATCH: Final = 50  # txids per QueryOrders call (Kraken's limit)
log = get_logger(component="venue")


class KrakenRestVenue:
    """See the module docstring. ``instruments`` maps Kraken's pair names in answers onto
    the bot's symbols."""

    __slots__ = ("_instruments", "rest")

    def __init__(self, rest: KrakenRestClient, instruments: InstrumentTable) -> None:
        self.rest = rest
        self._instruments = instruments

    # -- order entry ---------------------------------------------------------------------

    async def place(self, order: Order, instrument: Instrument) -> str:
        result = await self.rest.add_order(
            instrument, order.side, order.order_type, order.qty, order.price,
            cl_ord_id=order.cl_ord_id, oflags="post" if order.post_only else None,
            timeinforce=None if order.time_in_force == "GTC" else order.time_in_force,
        )  # fmt: skip
        txids = result.get("txid")
        if not (isinstance(txids, list) and len(txids) == 1 and isinstance(txids[0], str)):
            raise OrderStateUnknown("no txid in AddOrder's answer")
        return txids[0]

    async def amend(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        txid, cl_ord_id = _ids(order)
        await self.rest.amend_order(
            instrument, order_age_s=order_age_s, txid=txid, cl_ord_id=cl_ord_id,
            order_qty=qty, limit_price=price,
        )  # fmt: skip

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        txid, cl_ord_id = _ids(order)
        await self.rest.cancel_order(
            instrument, order_age_s=order_age_s, txid=txid, cl_ord_id=cl_ord_id
        )

    async def cancel_all(self, instruments: Sequence[Instrument]) -> int:
        return int((await self.rest.cancel_all(instruments)).get("count", 0))

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        return answers.cancel_after(await self.rest.cancel_all_orders_after(timeout_s))

    # -- what the venue knows ------------------------------------------------------------

    async def open_orders(self, *, cl_ord_id: str | None = None) -> list[ExchangeOrder]:
        reply = await self.rest.open_orders(cl_ord_id=cl_ord_id)
        return answers.parse_orders(reply.get("open", {}), self._instruments)

    async def query_orders(self, order_ids: Sequence[str]) -> list[ExchangeOrder]:
        found: list[ExchangeOrder] = []
        for i in range(0, len(order_ids), QUERY_BATCH):
            found += await self._query(list(order_ids[i : i + QUERY_BATCH]))
        return found

    async def _query(self, txids: list[str]) -> list[ExchangeOrder]:
        try:
            return answers.parse_orders(await self.rest.query_orders(txids), self._instruments)
        except RejectedError as exc:  # one unknown txid fails the batch: ask one by one
            if len(txids) == 1:
                log.error("order_unknown_to_kraken", order_id=txids[0], code=exc.code)
                return []
            return [x for txid in txids for x in await self._query([txid])]

    async def closed_orders(
        self, *, start_s: int | None = None, offset: int = 0, cl_ord_id: str | None = None
    ) -> OrdersPage:
        ofs = offset if start_s is not None or offset else None
        reply = await self.rest.closed_orders(start=start_s, ofs=ofs, cl_ord_id=cl_ord_id)
        orders = answers.parse_orders(reply.get("closed", {}), self._instruments)
        return OrdersPage(tuple(orders), int(reply.get("count", 0)))

    async def trades(self, *, start_s: int, offset: int = 0) -> TradesPage:
        reply = await self.rest.trades_history(start=start_s, ofs=offset)
        return TradesPage(tuple(answers.parse_trades(reply)), int(reply.get("count", 0)))

    async def balances(self) -> Mapping[str, Decimal]:
        return answers.parse_balances(await self.rest.balance())

    async def ws_token(self) -> WsToken:
        result = await self.rest.get_websockets_token()
        token = result.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("GetWebSocketsToken: the result has no token")
        expires = result.get("expires")
        return WsToken(token, expires if isinstance(expires, int) else None)

    # -- room ----------------------------------------------------------------------------

    def trading_headroom(self, symbol: str) -> float:
        return self.rest.trading_headroom(symbol)

    def rest_headroom(self) -> float:
        return self.rest.rest_headroom()


def _ids(order: Order) -> tuple[str | None, str | None]:
    """(txid, cl_ord_id): Kraken is told the order's txid, else (its AddOrder answer was
    lost) its ``cl_ord_id``."""
    return (order.order_id, None) if order.order_id else (None, order.cl_ord_id)
