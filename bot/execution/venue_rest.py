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
Batches (``bot.execution.batch.BatchVenue``): AddOrderBatch (2 to 15 orders, one pair,
Kraken validating the whole batch: one invalid order refuses it all) answers one entry
per order, in order: a scalar ``txid`` or that order's ``error``; an entry with neither is
``OrderStateUnknown`` for that order. CancelOrderBatch (up to 50, by txid, else by
``cl_ord_id``) answers a count only: the executions or a query tell each order's end.
Executions do not come from here: the ``PrivateFeed`` (WS v2) delivers them to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from bot.core.errors import ExchangeError, OrderStateUnknown, ProtocolError, RejectedError
from bot.core.log import get_logger
from bot.execution import rest_answers as answers
from bot.execution.batch import SPOT_LIMITS, BatchLimits, PlaceAnswer
from bot.execution.orders import Order, OrderTerms, amend_post_only
from bot.execution.venue import CancelAfter, ExchangeOrder, OrdersPage, TradesPage, WsToken
from bot.kraken.instruments import Instrument, InstrumentTable, format_scaled
from bot.kraken.ratelimit import TradingCounter
from bot.kraken.rest import KrakenRestClient, kraken_failure

__all__ = ["QUERY_BATCH", "KrakenRestVenue"]

QUERY_BATCH: Final = 50  # txids per QueryOrders call (Kraken's limit)
# Every order asks for its fee in quote (``fciq``): Kraken's default for a sell is base
# (``fcib``, KRAKEN.md §8.1), which would take the fee out of the base bought or held, so
# the base balance would drift from the fills (a position, a risk limit, a flat inventory
# all count fills) and the trades' ``fee`` ("quote currency") would not say what was paid.
_OFLAGS: Final = {True: "post,fciq", False: "fciq"}
log = get_logger(component="venue")


class KrakenRestVenue:
    """See the module docstring. ``instruments`` maps Kraken's pair names in answers onto
    the bot's symbols."""

    __slots__ = ("_instruments", "rest")

    def __init__(self, rest: KrakenRestClient, instruments: InstrumentTable) -> None:
        self.rest = rest
        self._instruments = instruments

    # -- order entry ---------------------------------------------------------------------

    async def place(self, order: OrderTerms, instrument: Instrument) -> str:
        result = await self.rest.add_order(
            instrument, order.side, order.order_type, order.qty, order.price,
            cl_ord_id=order.cl_ord_id, oflags=_OFLAGS[order.post_only],
            timeinforce=None if order.time_in_force == "GTC" else order.time_in_force,
        )  # fmt: skip
        txids = result.get("txid")
        if not (isinstance(txids, list) and len(txids) == 1 and isinstance(txids[0], str)):
            raise OrderStateUnknown("no txid in AddOrder's answer")
        return txids[0]

    @property
    def batch_limits(self) -> BatchLimits:
        return SPOT_LIMITS

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[PlaceAnswer]:
        result = await self.rest.add_order_batch(
            instruments[0], [_batch_entry(order, instruments[0]) for order in orders]
        )
        entries = result.get("orders")
        if not isinstance(entries, list) or len(entries) != len(orders):
            raise OrderStateUnknown("EGeneral:Bad batch answer", "AddOrderBatch: one per order")
        return [_batch_answer(order, entry) for order, entry in zip(orders, entries, strict=True)]

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]:
        await self.rest.cancel_order_batch(
            instruments[0], ages_s=ages_s,
            txids=[x.order_id for x in orders if x.order_id],
            cl_ord_ids=[x.cl_ord_id for x in orders if not x.order_id],
        )  # fmt: skip
        return [None] * len(orders)

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
            order_qty=qty, limit_price=price, post_only=amend_post_only(order, price),
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

    def trading_counter(self) -> TradingCounter:
        """The counter ``trading_headroom`` reads: the client's (``CounterVenue``)."""
        return self.rest.trading_counter

    def rest_headroom(self) -> float:
        return self.rest.rest_headroom()


def _batch_entry(order: Order, instrument: Instrument) -> dict[str, object]:
    """One order of an AddOrderBatch, in Kraken's fields (numbers as exact strings)."""
    entry: dict[str, object] = {
        "ordertype": order.order_type, "type": order.side,
        "volume": format_scaled(order.qty, instrument.qty_precision),
        "cl_ord_id": order.cl_ord_id,
    }  # fmt: skip
    if order.price is not None:
        entry["price"] = format_scaled(order.price, instrument.price_precision)
    entry["oflags"] = _OFLAGS[order.post_only]
    if order.time_in_force != "GTC":
        entry["timeinforce"] = order.time_in_force
    return entry


def _batch_answer(order: Order, entry: object) -> PlaceAnswer:
    """One AddOrderBatch entry: its scalar txid, or its refusal as the client maps it."""
    if isinstance(entry, dict):
        if isinstance(error := entry.get("error"), str) and error:
            return kraken_failure("AddOrderBatch", error, order.cl_ord_id)
        if isinstance(txid := entry.get("txid"), str) and txid:
            return txid
    return OrderStateUnknown("EGeneral:No txid", f"AddOrderBatch: {order.cl_ord_id}")


def _ids(order: Order) -> tuple[str | None, str | None]:
    """(txid, cl_ord_id): Kraken is told the order's txid, else (its AddOrder answer was
    lost) its ``cl_ord_id``."""
    return (order.order_id, None) if order.order_id else (None, order.cl_ord_id)
