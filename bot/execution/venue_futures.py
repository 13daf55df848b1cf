"""Kraken Futures over REST v3: the venue port (``bot.execution.venue``) for derivatives.

``FuturesRestVenue`` adapts ``bot.futures.rest.FuturesRestClient`` to ``Venue``, so the
engine, its reconciliation and the dead-man's switch drive Futures exactly as they drive
spot. What the port needs and Kraken Futures says differently is decided here:

- **Numbers.** The engine's scaled ints are the contract's (``as_instrument`` gives the
  engine an ``Instrument`` with the ``FuturesInstrument``'s precisions), so a size or a
  price crosses unchanged; sizes are contracts.
- **Order types.** ``limit`` is ``lmt``, ``limit`` + post-only is ``post``, ``limit`` + IOC
  is ``ioc``, ``market`` is ``mkt``. Every order carries its ``cl_ord_id`` as ``cliOrdId``
  (saved by the engine before it is sent). ``result: success`` is not "placed": the client
  reads ``sendStatus.status`` and raises the mapped rejection; a success without an
  ``order_id`` is ``OrderStateUnknown``, as is a lost answer: the engine looks the order up
  by ``cl_ord_id`` (``open_orders`` then ``closed_orders``) and never resends.
- **Reads.** Kraken Futures keeps no order history a REST call of ``/derivatives`` can
  page through (``orders/status`` only remembers the last 5 seconds), so what the port
  calls closed orders is built from the account's executions: an order with executions
  that is not open is ``closed`` (its total shown as what filled, the only number Kraken
  still prints); an order the engine names by id (it was acknowledged) that is neither
  open nor among them has left the book unfilled: ``canceled``. The executions come from
  two reads, ``fills`` first (the newest 100, no fee) then the account history
  (``executions``, ``bot.futures.history``: every execution since a time, page after
  page, with its fee), merged (``history.merge_fills``: a fill the history has not
  caught up with is kept). A read for a window (``trades`` and ``closed_orders`` since
  ``start_s``: a reconciliation) always asks the history, so a recovered fill has its
  fee and the window has no ceiling of 100 (only ``history_pages`` pages of 500,
  ``futures_history_truncated`` past them). A read for named orders (``query_orders``,
  ``closed_orders`` by ``cl_ord_id``: the quick resolve of a write whose answer was lost)
  is ``fills`` alone when its newest 100 answer it (the page is not full, or it shows
  every order asked for): fast, 2 of the derivatives budget; only a full page that does
  not show them asks the history. When the history cannot be read (down, refused, its
  budget of 100 per 10 minutes spent) the venue reads ``fills`` alone, as before
  (``futures_history_fallback``; ``futures_fills_page_full`` when that page is full): a
  fee is then 0, and closing deductions hold only while the page reaches back. After a
  failure (not a spent budget, which costs nothing to learn) the history is left alone
  for ``HISTORY_PAUSE_S``, so a history service that hangs delays one read, not each. Kraken no
  longer prints a closed order's size, so the venue asks ``known_qty`` (the engine's
  record of the order it sent, by order id): with it, an order filled short of its size
  and gone is ``canceled`` with its true size; without it, an order gone unfilled is
  left out (the engine reports it ``vanished``) and one with fills is shown at the size
  that filled.
- **Fees** of recovered trades are the history's ``fee``: USD, the quote currency, for
  the multi-collateral (linear) contracts, as the ``fills`` feed's ``fee_paid`` is; an
  inverse contract's fee is charged in its base currency, so it is given in the quote at
  the execution's price (the port's fee is in the quote currency).
- **Batches** (``bot.execution.batch.EditBatchVenue``) go in one ``batchorder``:
  cancels, then edits (amends), then sends (each tagged by its place in the call,
  ``order_tag``, and carrying its ``cliOrdId``), contracts mixed, one status per
  instruction. Kraken documents no order in which it applies them ("The list is in no
  particular order": the ``batchOrder`` parameter of
  https://docs.kraken.com/api-reference/order-management/batch-order-management, also
  ``krakenfx/api-specs`` futures-rest/trading/public.yml), and its own example answers in
  another order than it asks: so a send's status is found by its ``order_tag``, and a
  cancel's or an edit's by its place among the untagged ones, checked against the
  ``order_id`` it names (else the one that names it). A send ``placed`` with its id is
  acknowledged, an edit ``edited`` is amended, a cancel ``cancelled`` is asked; another
  status refuses that instruction with it (``postWouldExecute``, ``orderForEditNotFound``
  ...); one missing, or a send without an id, is ``OrderStateUnknown``. A lost answer
  raises for the call. A batch send takes lmt, post, ioc, fok, stp or take_profit, not
  ``mkt`` (``BatchOrderSend.orderType``): a market order of a batch goes alone by
  ``sendorder`` once the ``batchorder`` is answered.
- **Balances** are the multi-collateral account's currencies (``accounts``).
- **The switch** is ``cancelallordersafter``; **tokens** do not exist (the private feed
  signs a challenge): ``ws_token`` raises ``ProtocolError``.
- **Room.** Futures charges one budget (500 per 10 s) for every private call; both
  headrooms are what is left of it, in calls of the dearest order-entry cost (10).

Executions as they happen come from the private feed (``bot.execution.futures_feed``);
this port reads them only to reconcile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final

from bot.core.clock import Clock
from bot.core.errors import (
    ExchangeError,
    OrderStateUnknown,
    ProtocolError,
    RateLimitError,
    RejectedError,
)
from bot.core.log import get_logger
from bot.execution.batch import FUTURES_LIMITS, BatchAmend, BatchAnswers, BatchLimits, PlaceAnswer
from bot.execution.orders import Order, canonical_cl_ord_id, timestamp_ns
from bot.execution.venue import (
    CancelAfter,
    ExchangeOrder,
    ExchangeTrade,
    OrdersPage,
    TradesPage,
    WsToken,
)
from bot.futures import history as h
from bot.futures import orders as fo
from bot.futures import queries as q
from bot.futures.error_codes import status_error
from bot.futures.instruments import FuturesInstrument, FuturesInstrumentTable
from bot.futures.rest import FuturesRestClient
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled

__all__ = [
    "FILLS_PAGE",
    "FuturesRestVenue",
    "as_instrument",
    "as_instrument_table",
    "futures_order_type",
    "sizes_of",
]

FILLS_PAGE: Final = 100  # fills per ``fills`` answer (Kraken's page)
HISTORY_PAUSE_S: Final = 60.0  # after the history fails, ``fills`` alone for this long
_MS_NS: Final = 1_000_000
ORDER_COST: Final = 10.0  # sendorder, editorder, cancelorder
_ENGINE_TYPES: Final = {"lmt": "limit", "post": "limit", "ioc": "limit", "mkt": "market"}
log = get_logger(component="venue")


def as_instrument(fi: FuturesInstrument) -> Instrument:
    """The engine's view of a contract: the same precisions and increments (sizes in
    contracts), so scaled ints mean the same number on either side."""
    return Instrument(
        symbol=fi.symbol, base=fi.base, quote=fi.quote,
        price_precision=fi.price_precision, qty_precision=fi.qty_precision,
        price_increment=fi.price_increment, qty_increment=fi.qty_increment,
        qty_min=fi.qty_increment, status="online" if fi.tradeable else "cancel_only",
        altname=fi.symbol, rest_name=fi.symbol,
    )  # fmt: skip


def as_instrument_table(table: Iterable[FuturesInstrument]) -> InstrumentTable:
    return InstrumentTable([as_instrument(fi) for fi in table])


def sizes_of(orders: Callable[[], Iterable[Order]]) -> Callable[[str], Decimal | None]:
    """``known_qty`` from the engine's open orders (``ExecutionEngine.open_orders``): the
    orders a reconciliation asks the venue about are the ones we still hold open."""

    def known_qty(order_id: str) -> Decimal | None:
        for order in orders():
            if order.order_id == order_id:
                return from_scaled(order.qty, order.qty_precision)
        return None

    return known_qty


def futures_order_type(order: Order) -> str:
    """The ``orderType`` Kraken Futures takes for the engine's order."""
    if order.order_type == "market":
        return "mkt"
    if order.order_type != "limit":
        raise RejectedError("invalidArgument", f"order type {order.order_type!r} on Futures")
    if order.post_only:
        return "post"
    if order.time_in_force == "IOC":
        return "ioc"
    return "lmt"


class FuturesRestVenue:
    """See the module docstring. ``contracts``: the deployment's Futures instruments;
    ``known_qty``: an order's size as we sent it, by its order id (None: not ours);
    ``reduce_only``: whether Kraken is to be told an order may only reduce the position;
    ``history_pages``: how many pages of the account history one read may take."""

    __slots__ = (
        "_clock",
        "_contracts",
        "_history_pages",
        "_history_paused_until",
        "_known_qty",
        "_reduce_only",
        "rest",
    )

    def __init__(
        self,
        rest: FuturesRestClient,
        contracts: FuturesInstrumentTable,
        clock: Clock,
        *,
        known_qty: Callable[[str], Decimal | None] | None = None,
        reduce_only: Callable[[Order], bool] | None = None,
        history_pages: int = h.MAX_PAGES,
    ) -> None:
        self.rest = rest
        self._history_pages = history_pages
        self._history_paused_until = float("-inf")
        self._contracts = contracts
        self._clock = clock
        self._known_qty = known_qty or (lambda order_id: None)
        self._reduce_only = reduce_only or (lambda order: False)

    def _contract(self, symbol: str) -> FuturesInstrument:
        fi = self._contracts.lookup(symbol)
        if fi is None:
            raise RejectedError("invalidArgument", f"{symbol}: not a configured Futures contract")
        return fi

    # -- order entry ---------------------------------------------------------------------

    async def place(self, order: Order, instrument: Instrument) -> str:
        fi = self._contract(order.symbol)
        result = await self.rest.send_order(
            fi, side=order.side, order_type=futures_order_type(order), size=order.qty,
            cli_ord_id=order.cl_ord_id, limit_price=order.price,
            reduce_only=self._reduce_only(order),
        )  # fmt: skip
        if result.order_id is None:
            raise OrderStateUnknown("noOrderId", f"sendStatus {result.status} without order_id")
        return result.order_id

    @property
    def batch_limits(self) -> BatchLimits:
        return FUTURES_LIMITS

    async def place_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument]
    ) -> list[PlaceAnswer]:
        return (await self.edit_batch((), (), orders, ages_s=()))[2]

    async def cancel_batch(
        self, orders: Sequence[Order], instruments: Sequence[Instrument], *, ages_s: Sequence[float]
    ) -> list[ExchangeError | None]:
        return (await self.edit_batch(orders, (), (), ages_s=ages_s))[0]

    async def edit_batch(
        self,
        cancels: Sequence[Order],
        amends: Sequence[BatchAmend],
        places: Sequence[Order],
        *,
        ages_s: Sequence[float],
    ) -> BatchAnswers:
        """One ``batchorder``: the cancels, the edits, then the sends (each tagged by its
        place); each answer found as the module docstring says."""
        batchable = fo.BATCH_SEND_TYPES
        alone = {i for i, x in enumerate(places) if futures_order_type(x) not in batchable}
        sends = [
            fo.BatchSend(
                order_tag=str(i), inst=self._contract(x.symbol), side=x.side,
                order_type=futures_order_type(x), size=x.qty, cli_ord_id=x.cl_ord_id,
                limit_price=x.price, reduce_only=self._reduce_only(x),
            )
            for i, x in enumerate(places)
            if i not in alone
        ]  # fmt: skip
        edits = [
            fo.BatchEdit(
                self._contract(a.order.symbol),
                *_ids(a.order),
                size=a.qty,
                limit_price=a.price,
                qty_mode=_qty_mode(a.qty),
            )
            for a in amends
        ]
        items: list[fo.BatchInstruction] = [fo.BatchCancel(*_ids(x)) for x in cancels]
        results: tuple[fo.BatchItemResult, ...] = ()
        if items or edits or sends:
            results = await self.rest.batch_order([*items, *edits, *sends])
        if len(results) != len(items) + len(edits) + len(sends):
            raise OrderStateUnknown("batchStatus", "one status per instruction")
        targets = [*cancels, *(a.order for a in amends)]
        found = _untagged(results, [_ids(x)[0] for x in targets])
        answers = [_done(x, r) for x, r in zip(targets, found, strict=True)]
        by_tag = {r.order_tag: r for r in results if r.order_tag is not None}
        placed: list[PlaceAnswer] = []
        for i, x in enumerate(places):
            r = by_tag.get(str(i))
            if i in alone:
                placed.append(await self._place_alone(x))
            elif r is not None and r.ok and r.order_id is not None:
                placed.append(r.order_id)
            elif r is not None and not r.ok:
                placed.append(_refused(r, f"cliOrdId {x.cl_ord_id}"))
            else:
                placed.append(OrderStateUnknown("noOrderId", f"batchStatus: {x.cl_ord_id}"))
        return answers[: len(cancels)], answers[len(cancels) :], placed

    async def _place_alone(self, order: Order) -> PlaceAnswer:
        """A batch's order that ``batchorder`` does not take (``mkt``), sent by ``sendorder``
        after the batch; its answer as the batch's: the id, or what refused or hid it."""
        try:
            return await self.place(order, as_instrument(self._contract(order.symbol)))
        except ExchangeError as exc:
            return exc

    async def amend(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        order_id, cl_ord_id = _ids(order)
        await self.rest.edit_order(
            self._contract(order.symbol), order_id=order_id, cli_ord_id=cl_ord_id,
            size=qty, limit_price=price, qty_mode=_qty_mode(qty),
        )  # fmt: skip

    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None:
        order_id, cl_ord_id = _ids(order)
        await self.rest.cancel_order(order_id=order_id, cli_ord_id=cl_ord_id)

    async def cancel_all(self, instruments: Sequence[Instrument]) -> int:
        return len((await self.rest.cancel_all_orders()).cancelled)

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        status = await self.rest.cancel_all_orders_after(timeout_s)
        if status.trigger_time is None:
            return CancelAfter(None, "0")
        delay = (timestamp_ns(status.trigger_time) - timestamp_ns(status.current_time)) / 1e9
        return CancelAfter(max(delay, 0.0), status.trigger_time)

    # -- what the venue knows ------------------------------------------------------------

    async def open_orders(self, *, cl_ord_id: str | None = None) -> list[ExchangeOrder]:
        found = [self._open(x) for x in await self.rest.open_orders()]
        if cl_ord_id is None:
            return found
        wanted = canonical_cl_ord_id(cl_ord_id)
        return [x for x in found if x.cl_ord_id == wanted]

    async def query_orders(self, order_ids: Sequence[str]) -> list[ExchangeOrder]:
        if not order_ids:
            return []
        resting = {x.order_id: x for x in await self.open_orders()}
        asked = set(order_ids) - resting.keys()
        closed: dict[str, ExchangeOrder] = {}
        if asked:  # some are not open: their executions say what became of them
            execs = await self._executions(None, lambda got: asked <= {e.order_id for e in got})
            closed = {x.order_id: x for x in self._closed(execs)}
        found: list[ExchangeOrder] = []
        for oid in order_ids:
            ex = resting.get(oid) or closed.get(oid)
            if ex is None:
                size = self._known_qty(oid)
                if size is None:
                    continue  # neither open nor filled, size unknown: the engine reports it
                ex = _left_unfilled(oid, size)
            found.append(ex)
        return found

    async def closed_orders(
        self, *, start_s: int | None = None, offset: int = 0, cl_ord_id: str | None = None
    ) -> OrdersPage:
        wanted = None if cl_ord_id is None else canonical_cl_ord_id(cl_ord_id)
        if start_s is not None:
            execs = await self._executions(start_s * 1000)
        else:
            execs = await self._executions(
                None,
                lambda got: wanted is not None and any(_cid(e.cli_ord_id) == wanted for e in got),
            )
        orders = self._closed(execs)
        resting = {x.order_id for x in await self.open_orders()}
        orders = [x for x in orders if x.order_id not in resting]
        if wanted is not None:
            orders = [x for x in orders if x.cl_ord_id == wanted]
        if start_s is not None:
            orders = [x for x in orders if x.opened_ns >= start_s * 1_000_000_000]
        return OrdersPage(tuple(orders[offset:]), len(orders))

    async def trades(self, *, start_s: int, offset: int = 0) -> TradesPage:
        since = start_s * 1_000_000_000
        listed = [self._trade(e) for e in await self._executions(start_s * 1000)]
        listed = [t for t in listed if t.ts_ns >= since]
        return TradesPage(tuple(listed[offset:]), len(listed))

    async def balances(self) -> Mapping[str, Decimal]:
        accounts = await self.rest.accounts()
        found = dict(accounts.cash)
        if accounts.flex is not None:
            found.update(accounts.flex.currencies)
        return {asset.upper(): amount for asset, amount in found.items()}

    async def ws_token(self) -> WsToken:
        raise ProtocolError("Kraken Futures' private feed signs a challenge: no token")

    # -- room ----------------------------------------------------------------------------

    def trading_headroom(self, symbol: str) -> float:
        return self.rest_headroom()

    def rest_headroom(self) -> float:
        budget = self.rest.budget
        return budget.headroom(self._clock.monotonic()) / ORDER_COST

    # -- reading Kraken's answers ----------------------------------------------------------

    async def _executions(
        self,
        since_ms: int | None,
        answered: Callable[[tuple[h.Execution, ...]], bool] | None = None,
    ) -> tuple[h.Execution, ...]:
        """The account's executions, newest first: since ``since_ms`` (the history read,
        merged with ``fills``), or, with None, the newest ``fills`` when they are not a
        full page or they ``answered`` the question, else as far back as the history read
        goes. When the history cannot be read: ``fills`` alone (see the module docstring)."""
        fills = await self.rest.fills()
        quick = tuple(_from_fill(f) for f in fills)
        full = len(fills) >= FILLS_PAGE
        if since_ms is None and (not full or (answered is not None and answered(quick))):
            return quick
        now = self._clock.monotonic()
        if now < self._history_paused_until:
            return _fallback(quick, "paused", f"for {self._history_paused_until - now:.0f} s")
        try:
            read = await self.rest.executions(since_ms=since_ms, max_pages=self._history_pages)
        except (ExchangeError, ProtocolError) as exc:
            code = exc.code if isinstance(exc, ExchangeError) else "protocol"
            if not isinstance(exc, RateLimitError):  # a spent pool refuses at no cost
                self._history_paused_until = self._clock.monotonic() + HISTORY_PAUSE_S
            return _fallback(quick, code, str(exc), warn=not isinstance(exc, RateLimitError))
        merged = h.merge_fills(read.executions, quick)
        if merged.fills_only:
            log.info("futures_fills_not_in_history", fills=merged.fills_only)
        if merged.renamed:
            log.error("futures_history_ids_differ", executions=merged.renamed)
        return merged.executions

    def _open(self, x: q.OpenOrder) -> ExchangeOrder:
        qty = x.unfilled_size + x.filled_size
        price = x.limit_price
        fi = self._contracts.lookup(x.symbol)
        return ExchangeOrder(
            order_id=x.order_id, cl_ord_id=_cid(x.cli_ord_id),
            status="open", pair=x.symbol, symbol=fi.symbol if fi else None, side=x.side,
            order_type=_ENGINE_TYPES.get(x.order_type, x.order_type), qty=qty,
            filled=x.filled_size,
            cost=Decimal(0) if price is None else x.filled_size * price,
            avg_price=None, limit_price=price, reason="",
            opened_ns=_ns(x.received_time), closed_ns=None,
        )  # fmt: skip

    def _closed(self, execs: Sequence[h.Execution]) -> list[ExchangeOrder]:
        """One closed order per order id in ``execs`` (newest first)."""
        by_order: dict[str, list[h.Execution]] = {}
        for e in execs:
            by_order.setdefault(e.order_id, []).append(e)
        found = []
        for oid, mine in by_order.items():
            first, last = mine[-1], mine[0]
            filled = sum((e.qty for e in mine), Decimal(0))
            cost = sum((e.qty * e.price for e in mine), Decimal(0))
            fi = self._contracts.lookup(first.symbol)
            size = self._known_qty(oid)
            short = size is not None and filled < size
            cid = next((e.cli_ord_id for e in mine if e.cli_ord_id is not None), None)
            found.append(ExchangeOrder(
                order_id=oid, cl_ord_id=_cid(cid),
                status="canceled" if short else "closed",
                pair=first.symbol, symbol=fi.symbol if fi else None, side=first.side,
                order_type="limit", qty=size if size is not None else filled, filled=filled,
                cost=cost,
                avg_price=cost / filled if filled else None, limit_price=None, reason="",
                opened_ns=first.time_ms * _MS_NS, closed_ns=last.time_ms * _MS_NS,
            ))  # fmt: skip
        return found

    def _trade(self, e: h.Execution) -> ExchangeTrade:
        return ExchangeTrade(
            exec_id=e.exec_id, order_id=e.order_id, pair=e.symbol, side=e.side,
            price=e.price, qty=e.qty, cost=e.price * e.qty, fee=self._quote_fee(e),
            ts_ns=e.time_ms * _MS_NS, trade_id=e.exec_id,
            maker=None if e.liquidity is None else e.liquidity == "m",
        )  # fmt: skip

    def _quote_fee(self, e: h.Execution) -> Decimal:
        """The execution's fee in the quote currency (0 when unknown: a ``fills`` entry)."""
        if e.fee is None:
            return Decimal(0)
        fi = self._contracts.lookup(e.symbol)
        return e.fee * e.price if fi is not None and not fi.linear else e.fee


def _fallback(
    quick: tuple[h.Execution, ...], code: str, error: str, *, warn: bool = False
) -> tuple[h.Execution, ...]:
    """``fills`` alone, the history unread: said in the log (a warning when it failed)."""
    (log.warning if warn else log.info)("futures_history_fallback", code=code, error=error)
    if len(quick) >= FILLS_PAGE:
        log.warning("futures_fills_page_full", fills=len(quick))
    return quick


def _from_fill(fill: q.Fill) -> h.Execution:
    """A ``fills`` entry as an execution: no fee (``fills`` prints none)."""
    return h.Execution(
        exec_id=fill.fill_id, order_id=fill.order_id, cli_ord_id=fill.cli_ord_id,
        symbol=fill.symbol, side=fill.side, qty=fill.size, price=fill.price,
        time_ms=timestamp_ns(fill.fill_time) // _MS_NS,
        liquidity=q.fill_liquidity(fill.fill_type),  # takerAfterEdit is a taker's fill
        fee=None, order_type=None, position_size=None,
    )  # fmt: skip


def _left_unfilled(order_id: str, size: Decimal) -> ExchangeOrder:
    """An acknowledged order that is neither open nor in the fills: it left the book
    unfilled (cancelled by us, by the switch, or by Kraken)."""
    return ExchangeOrder(
        order_id=order_id, cl_ord_id=None, status="canceled", pair="", symbol=None, side="",
        order_type="", qty=size, filled=Decimal(0), cost=Decimal(0), avg_price=None,
        limit_price=None, reason="not open, no fill", opened_ns=0, closed_ns=None,
    )  # fmt: skip


def _done(order: Order, r: fo.BatchItemResult | None) -> ExchangeError | None:
    """A cancel's or an edit's answer: None (done), or what refused or hid it."""
    if r is None:
        return OrderStateUnknown("batchStatus", f"no status for {order.cl_ord_id}")
    return None if r.ok else _refused(r, f"order {order.order_id or order.cl_ord_id}")


def _refused(r: fo.BatchItemResult, what: str) -> ExchangeError:
    """The error of a status that is not a success (``OrderStateUnknown`` when its events
    show an execution: ``BatchItemResult.error``)."""
    return r.error(what) or status_error(r.status, what)


def _untagged(
    results: Sequence[fo.BatchItemResult], order_ids: Sequence[str | None]
) -> list[fo.BatchItemResult | None]:
    """The status of each cancel or edit (``order_ids``: the order each names, None when
    named by ``cliOrdId``), in order: the untagged status at its place when it names no
    other order; else the unused untagged status that names its order; else None."""
    untagged = [r for r in results if r.order_tag is None]
    used: set[int] = set()
    out: list[fo.BatchItemResult | None] = []
    for i, oid in enumerate(order_ids):
        at = i if i < len(untagged) and i not in used else None
        if oid is not None and (at is None or untagged[at].order_id not in (None, oid)):
            at = next(
                (j for j, r in enumerate(untagged) if j not in used and r.order_id == oid), None
            )
        if at is not None:
            used.add(at)
        out.append(None if at is None else untagged[at])
    return out


def _cid(value: str | None) -> str | None:
    return None if value is None else canonical_cl_ord_id(value)


def _ns(value: str | None) -> int:
    return 0 if value is None else timestamp_ns(value)


def _qty_mode(qty: int | None) -> str | None:
    """How Kraken is to read an edit's ``size``: the port's amend ``qty`` is the order's new
    total, fills included, which is ``ABSOLUTE``. Kraken's default, ``RELATIVE``, sets the
    *open* size to ``size``, so a partly filled order would grow by its fills (Kraken's
    OpenAPI, ``/editorder`` ``qtyMode``: "'ABSOLUTE' means that the total order size,
    including past fills, is set to `size`. 'RELATIVE' means that the current open order
    size is set to `size`")."""
    return None if qty is None else "ABSOLUTE"


def _ids(order: Order) -> tuple[str | None, str | None]:
    """(order_id, cliOrdId): Kraken is told the order's id, else (the sendorder answer was
    lost) its ``cl_ord_id``."""
    return (order.order_id, None) if order.order_id else (None, order.cl_ord_id)
