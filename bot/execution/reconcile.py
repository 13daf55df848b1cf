"""Reconciliation as pure functions: what the venue's answers say about our orders.

The engine fetches through the venue port (open, queried and closed orders, trade
history: ``ExchangeOrder`` and ``ExchangeTrade`` values, ``bot.execution.venue``); this
module decides. It matches them with the local orders, and returns the new local orders
(``Plan``) and the fills that were missed (``missed_fills``). No I/O, no clock (the caller
passes ``now_ns`` and each order's age), no store, no venue's wire format.

The rules
=========

1. **The exchange is the truth.** A local order the exchange shows is merged with what the
   exchange says through ``orders.apply_execution``, as if the REST object were one more
   execution report (``report_for``); the transition table's rules hold (stale news moves
   nothing back, terminal states are absorbing).
2. **Matching** is by ``order_id`` (Kraken's txid) first, then by ``cl_ord_id`` for an order
   whose txid we never learned (AddOrder's answer was lost). Never by anything fuzzier; a
   UUID ``cl_ord_id`` is compared as the 128-bit number Kraken keeps, whichever form it
   prints (``orders.canonical_cl_ord_id``, applied by the venue as it reads each order).
3. **Absent is not lost until proven.** A local order the exchange does not show:

   - with no ``order_id``, UNKNOWN or PENDING_NEW (sent, fate unknown): LOST once it is at
     least ``grace_s`` old (Kraken: "a just-placed order may be absent briefly"); before,
     it is ``waiting`` and the engine looks again. Only the engine's lookups by
     ``cl_ord_id`` (open and closed) may declare it absent.
   - with an ``order_id`` (Kraken told us it has it): ``vanished``. Kraken had it, so it
     was not lost; its fate cannot be guessed. It is left as it is and reported, loudly.
4. **Foreign orders are reported, never adopted.** An open exchange order that matches no
   order of ours is ``foreign``: placed by someone else on the same account (the web UI,
   another bot) or by us with a store that was lost. Every order we send is saved in the
   store *before* it is sent, so an order of ours always has a local record; a
   ``cl_ord_id`` that looks like ours (32 hex digits) proves nothing, and adopting an order
   would make the bot manage, amend or cancel what it did not place. The engine logs each
   foreign order once per reconciliation and leaves it alone (``cancel_all()`` with no
   symbol is Kraken's CancelAll, which does cancel them: it is account-wide by nature).
5. **Fills.** An order whose exchange ``vol_exec`` exceeds the quantity of the fills we
   recorded for it is ``short_of_fills``; the engine reads TradesHistory from
   ``trades_start_ns`` and ``missed_fills`` turns the trades of our orders into ``Fill``
   values. The store records them idempotently by ``exec_id`` (Kraken's trade id, the same
   id in TradesHistory and in the executions feed, TradesHistory being asked for each
   taker match apart: ``consolidate_taker`` false), so a fill is counted once however
   often it is seen. TradesHistory's fee is in the quote currency (Kraken's documentation);
   a consolidated taker price finer than the pair's precision is kept exact, at a finer
   scale (``orders.fill_price``), as the executions feed's ``last_price`` is.

It also holds ``OrderIndex``, the engine's in-memory orders by ``cl_ord_id`` and txid,
which routes sparse execution reports (pure data, no I/O either). This module does not
fetch, store or send: the engine does.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from bot.execution.orders import (
    Fill,
    Order,
    OrderState,
    apply_execution,
    fill_price,
    mark_unknown,
    transition,
)
from bot.execution.venue import ExchangeOrder, ExchangeTrade
from bot.kraken.instruments import InstrumentTable, to_scaled
from bot.kraken.protocol import ExecutionReport

__all__ = [
    "Match",
    "OrderIndex",
    "Plan",
    "Recorded",
    "match_orders",
    "missed_fills",
    "plan",
    "recorded",
    "report_for",
    "still_short",
    "trades_start_ns",
    "unseen",
]

S = OrderState
_STATUS: Final[Mapping[str, str]] = {
    "pending": "pending_new",
    "closed": "filled",
    "canceled": "canceled",
    "expired": "expired",
}
_UNSENT_OR_UNKNOWN: Final = frozenset({S.UNKNOWN, S.PENDING_NEW})


# ------------------------------------------------------------------------- orders


def report_for(order: Order, ex: ExchangeOrder) -> ExecutionReport:
    """What ``ex`` says about ``order``, as an execution report for ``apply_execution``.

    Quantity and limit price are merged when an amend of ours was in flight (``amended``:
    it clears the flag, and Kraken's numbers say whether the amend happened) or when they
    differ from ours (``restated``)."""
    status = _STATUS.get(ex.status)
    if status is None:  # open
        status = "partially_filled" if ex.filled > 0 else "new"
    exec_type: str | None = None
    qty = to_scaled(ex.qty, order.qty_precision)
    price = None if ex.limit_price is None else to_scaled(ex.limit_price, order.price_precision)
    if order.amend_pending:
        exec_type = "amended"
    elif qty != order.qty or (price is not None and price != order.price):
        exec_type = "restated"
    return ExecutionReport(
        exec_type=exec_type,
        order_id=ex.order_id,
        cl_ord_id=ex.cl_ord_id,
        order_status=status,
        order_qty=ex.qty if exec_type else None,
        limit_price=ex.limit_price if exec_type else None,
        cum_qty=ex.filled,
        cum_cost=ex.cost,
        avg_price=ex.avg_price,
        reason=ex.reason or None,
    )


@dataclass(frozen=True, slots=True)
class Match:
    """Local orders paired with what the exchange showed, and what is left on each side."""

    found: tuple[tuple[Order, ExchangeOrder], ...]
    missing: tuple[Order, ...]  # local orders the exchange did not show
    unmatched: tuple[ExchangeOrder, ...]  # exchange orders that are none of the local ones


def match_orders(local: Iterable[Order], exchange: Iterable[ExchangeOrder]) -> Match:
    """Pair by ``order_id``, else by ``cl_ord_id`` when we never learned the txid (rule 2)."""
    by_id: dict[str, ExchangeOrder] = {}
    by_cl: dict[str, ExchangeOrder] = {}
    for ex in exchange:
        by_id[ex.order_id] = ex
        if ex.cl_ord_id is not None:
            seen = by_cl.get(ex.cl_ord_id)
            if seen is None or (ex.is_open and not seen.is_open):  # the open one wins
                by_cl[ex.cl_ord_id] = ex
    found: list[tuple[Order, ExchangeOrder]] = []
    missing: list[Order] = []
    used: set[str] = set()
    for order in local:
        txid = order.order_id
        hit = by_id.get(txid) if txid is not None else by_cl.get(order.cl_ord_id)
        if hit is None or hit.order_id in used:
            missing.append(order)
            continue
        used.add(hit.order_id)
        found.append((order, hit))
    unmatched = tuple(ex for txid, ex in by_id.items() if txid not in used)
    return Match(tuple(found), tuple(missing), unmatched)


def unseen(local: Iterable[Order], exchange: Iterable[ExchangeOrder], *, txid: bool) -> list[Order]:
    """The ``local`` orders the ``exchange`` orders do not show, with (or without) a txid:
    what is left to look up by txid (or by ``cl_ord_id``)."""
    missing = match_orders(local, exchange).missing
    return [o for o in missing if (o.order_id is not None) == txid]


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one reconciliation (rules 1 to 5)."""

    changed: tuple[Order, ...]  # new values of local orders that moved (LOST ones included)
    lost: tuple[str, ...]  # cl_ord_ids proven absent after the grace period: now LOST
    waiting: tuple[str, ...]  # absent, but still within the grace period: look again
    vanished: tuple[str, ...]  # known to Kraken by txid, yet not shown: alert, leave as is
    foreign: tuple[ExchangeOrder, ...]  # open exchange orders that are not ours
    short_of_fills: tuple[Order, ...]  # (new values of) orders with fills not yet recorded


def plan(
    local: Iterable[Order],
    exchange: Iterable[ExchangeOrder],
    *,
    now_ns: int,
    ages_s: Mapping[str, float],
    grace_s: float,
    recorded_qty: Mapping[str, int],
) -> Plan:
    """Reconcile ``local`` orders with the ``exchange`` orders fetched for them.

    ``ages_s``: seconds since each order was sent (by ``cl_ord_id``; absent means old).
    ``recorded_qty``: the scaled quantity of the fills recorded for each order.
    """
    match = match_orders(local, exchange)
    changed: list[Order] = []
    short: list[Order] = []
    for order, ex in match.found:
        new = apply_execution(order, report_for(order, ex), now_ns=now_ns)
        if new is not order:
            changed.append(new)
        if to_scaled(ex.filled, order.qty_precision) > recorded_qty.get(order.cl_ord_id, 0):
            short.append(new)
    lost: list[str] = []
    waiting: list[str] = []
    vanished: list[str] = []
    for order in match.missing:
        if order.order_id is not None or order.state not in _UNSENT_OR_UNKNOWN:
            vanished.append(order.cl_ord_id)
        elif ages_s.get(order.cl_ord_id, float("inf")) >= grace_s:
            unknown = mark_unknown(order, "absent at the exchange", now_ns=now_ns)
            changed.append(transition(unknown, S.LOST, now_ns=now_ns, reason="not at the exchange"))
            lost.append(order.cl_ord_id)
        else:
            waiting.append(order.cl_ord_id)
    foreign = tuple(ex for ex in match.unmatched if ex.is_open)
    return Plan(tuple(changed), tuple(lost), tuple(waiting), tuple(vanished), foreign, tuple(short))


# ------------------------------------------------------------------------- fills


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the store already holds of some orders' fills."""

    qty: Mapping[str, int]  # scaled quantity filled, by cl_ord_id
    last_ns: Mapping[str, int]  # time of the last fill, by cl_ord_id
    exec_ids: frozenset[str]


def recorded(fills: Iterable[Fill], orders: Iterable[Order]) -> Recorded:
    """Sum up the recorded ``fills`` that belong to ``orders``."""
    wanted = {o.cl_ord_id for o in orders}
    qty: dict[str, int] = {}
    last: dict[str, int] = {}
    seen: set[str] = set()
    for fill in fills:
        cid = fill.cl_ord_id
        if cid in wanted and fill.exec_id not in seen:
            seen.add(fill.exec_id)
            qty[cid] = qty.get(cid, 0) + fill.qty
            last[cid] = max(last.get(cid, 0), fill.ts_ns)
    return Recorded(qty, last, frozenset(seen))


def still_short(orders: Iterable[Order], known: Recorded, new: Iterable[Fill]) -> bool:
    """Whether some order's ``filled_qty`` (the exchange's) exceeds its recorded fills
    plus ``new`` ones."""
    got = dict(known.qty)
    for fill in new:
        got[fill.cl_ord_id] = got.get(fill.cl_ord_id, 0) + fill.qty
    return any(got.get(o.cl_ord_id, 0) < o.filled_qty for o in orders)


def trades_start_ns(
    orders: Iterable[Order], last_fill_ns: Mapping[str, int], *, margin_ns: int
) -> int:
    """Where to start reading TradesHistory for ``orders``: for each, its last recorded
    fill (else its creation), minus ``margin_ns`` for clock skew; the earliest of them."""
    starts = [max(o.created_ns, last_fill_ns.get(o.cl_ord_id, 0)) for o in orders]
    return max(min(starts, default=0) - margin_ns, 0)


def missed_fills(
    trades: Iterable[ExchangeTrade],
    orders_by_id: Mapping[str, Order],
    instruments: InstrumentTable,
    recorded_ids: frozenset[str] = frozenset(),
) -> list[Fill]:
    """The ``Fill`` of every trade of one of ``orders_by_id`` (keyed by txid) whose
    ``exec_id`` is not in ``recorded_ids``, oldest first, each once, its price exact
    (rule 5). Trades of other orders are not ours to record."""
    fills: dict[str, Fill] = {}
    for trade in sorted(trades, key=lambda t: (t.ts_ns, t.exec_id)):
        order = orders_by_id.get(trade.order_id)
        if order is None or trade.exec_id in recorded_ids or trade.exec_id in fills:
            continue
        inst = instruments.lookup(order.symbol)
        price, price_precision = fill_price(trade.price, order.price_precision)
        fills[trade.exec_id] = Fill(
            exec_id=trade.exec_id,
            trade_id=trade.trade_id,
            cl_ord_id=order.cl_ord_id,
            order_id=trade.order_id,
            symbol=order.symbol,
            side=trade.side or order.side,
            price=price,
            qty=to_scaled(trade.qty, order.qty_precision),
            price_precision=price_precision,
            qty_precision=order.qty_precision,
            cost=trade.cost,
            fee=trade.fee,
            fee_asset=inst.quote if inst is not None else "",
            liquidity={True: "m", False: "t", None: ""}[trade.maker],
            ts_ns=trade.ts_ns,
        )
    return list(fills.values())


# ------------------------------------------------------------------------- the index


class OrderIndex:
    """Our orders in memory, by ``cl_ord_id`` and by Kraken's txid (no I/O).

    Sparse execution reports may name only the txid (``order_id``): ``owner`` finds the
    order either way. A report naming a txid not yet known (it overtook AddOrder's answer)
    is ``hold``-ed, and ``put`` hands it back when an order gains that txid. Done orders
    beyond the newest ``max_done`` are forgotten (the store keeps them). ``touched`` and
    ``sent`` keep monotonic times per order (ack or last amend; AddOrder sent). The open
    orders are counted per symbol and per strategy as they change (``open_per_symbol``,
    ``open_per_strategy``, ``open_total``: what the pre-trade stage reads on every command,
    with no scan).
    """

    def __init__(self, *, max_done: int = 2000, max_held: int = 512) -> None:
        self.orders: dict[str, Order] = {}
        self.open_per_symbol: dict[str, int] = {}
        self.open_per_strategy: dict[str, int] = {}
        self.open_total = 0
        self.touched: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self._by_txid: dict[str, str] = {}
        self._done: deque[str] = deque()
        self._held: OrderedDict[str, list[ExecutionReport]] = OrderedDict()
        self._max_done, self._max_held = max_done, max_held

    def get(self, cl_ord_id: str) -> Order | None:
        return self.orders.get(cl_ord_id)

    def open(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def owner(self, report: ExecutionReport) -> str | None:
        """The ``cl_ord_id`` a report is about, if that order is here."""
        cid = report.cl_ord_id or self._by_txid.get(report.order_id or "")
        return cid if cid is not None and cid in self.orders else None

    def hold(self, report: ExecutionReport) -> None:
        """Keep a txid-only report whose order is not known yet (bounded, oldest dropped)."""
        if report.order_id is not None and report.cl_ord_id is None:
            self._held.setdefault(report.order_id, []).append(report)
            while len(self._held) > self._max_held:
                self._held.popitem(last=False)

    def put(self, order: Order) -> list[ExecutionReport]:
        """Store ``order``; returns the held reports its txid now makes ours."""
        old = self.orders.get(order.cl_ord_id)
        self.orders[order.cl_ord_id] = order
        if (old is not None and old.is_open) is not order.is_open:
            self._count(order, 1 if order.is_open else -1)
        held: list[ExecutionReport] = []
        txid = order.order_id
        if txid is not None and self._by_txid.get(txid) != order.cl_ord_id:
            self._by_txid[txid] = order.cl_ord_id
            held = self._held.pop(txid, [])
        if not order.is_open:
            self._done.append(order.cl_ord_id)
            while len(self._done) > self._max_done:
                self._forget(self._done.popleft())
        return held

    def _forget(self, cid: str) -> None:
        order = self.orders.get(cid)
        if order is not None and not order.is_open and cid not in self._done:
            del self.orders[cid]
            self._by_txid.pop(order.order_id or "", None)
            self.touched.pop(cid, None)
            self.sent.pop(cid, None)

    def _count(self, order: Order, step: int) -> None:
        self.open_total += step
        for counts, key in (
            (self.open_per_symbol, order.symbol),
            (self.open_per_strategy, order.strategy),
        ):
            n = counts.get(key, 0) + step
            if n:
                counts[key] = n
            else:
                del counts[key]
