"""The Futures simulator's exchange (pure): orders, matching, positions, margin, funding.

``FuturesExchange`` keeps one matching ``Book`` per contract (``bot.sim.matching``, the
engine spot uses: price-time priority, partial fills), the accounts (USD collateral,
signed positions with an average entry price, open orders, fills) and the prices a
Futures venue needs: the last trade, the index (the market source's mid, when it has
one) and the mark (the book's mid on the tick grid, else the index).

Order entry follows https://docs.kraken.com/api/docs/futures-api/trading/send-order and
its siblings, and answers with their statuses (``placed``, ``postWouldExecute``,
``iocWouldNotExecute``, ``wouldNotReducePosition``, ``insufficientAvailableFunds``,
``maxPositionViolation``, ``selfFill``, ``clientOrderIdAlreadyExist``, …):

- ``lmt`` rests what does not trade; ``post`` is refused if it would trade; ``ioc`` and
  ``fok`` never rest (``fok`` all or nothing); ``mkt`` is an ``ioc`` with 1% price
  protection around the mark;
- ``stp`` / ``take_profit`` wait for their trigger signal (mark, index or last) to cross
  the stop price (a buy stop at or above, a sell stop at or below; take-profit the other
  way), then enter as ``lmt`` at their limit price or as ``mkt`` without one;
- ``reduceOnly`` orders are cut to the position (``reducedQuantity``) or refused, and
  cut again (or cancelled) whenever the position shrinks under them;
- an order that would trade with the same account's resting order is refused
  (``selfFill``); a ``cliOrdId`` may be used once per account, ever.

Every fill moves the position (realising PnL and a share of the accrued funding on a
reduction) and charges the maker or taker fee in USD. Funding is charged every
``funding_interval_s`` at ``funding_rate`` of each position's notional at the mark (longs
pay a positive rate) and accrues as unrealised funding. Every call returns a ``Report``
(``records``); time comes in as ``now_ns``; ids come from one seeded RNG, so the same
seed and calls give the same results.

Market liquidity comes from a ``MarketSource`` (``bot.sim.market_data``) as on spot, on
the market account, which has no margin, pays no fees and gets no reports. Not modelled:
liquidation (``liquidation_price`` is only estimated), trailing stops, leverage
preferences and isolated margin.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from bot.sim.futures.contracts import Contract
from bot.sim.futures.liquidity import MARKET_ACCOUNT, MarketLiquidity
from bot.sim.futures.margin import MarginView, margin_view
from bot.sim.futures.records import (
    Account,
    Ev,
    FillRec,
    FuturesOrder,
    OrderSnap,
    OrderUpdate,
    Position,
    Report,
    TradeRec,
)
from bot.sim.market_data import MarketSource
from bot.sim.matching import Book, Order

__all__ = ["KINDS", "MARKET_ACCOUNT", "FuturesExchange", "Outcome", "SendRequest"]

KINDS: Final = frozenset({"lmt", "post", "ioc", "fok", "mkt", "stp", "take_profit"})
_LIMITED: Final = frozenset({"lmt", "post", "ioc", "fok"})
_TRIGGERS: Final = frozenset({"stp", "take_profit"})
_PROTECTION: Final = Decimal("0.01")  # mkt: "an immediate-or-cancel order with 1% price protection"
_CENT: Final = Decimal("0.00000001")
_MAX_FILLS: Final = 10_000
_MAX_CLOSED: Final = 10_000


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A decoded ``sendorder`` (prices and size already scaled ints)."""

    symbol: str
    side: str
    order_type: str
    size: int
    limit_price: int | None = None
    stop_price: int | None = None
    cli_ord_id: str | None = None
    reduce_only: bool = False
    trigger_signal: str = "last"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A status answer: ``status`` (Kraken's), the order's id (None if none was made) and
    what the call changed."""

    status: str
    order_id: str | None
    cli_ord_id: str | None
    report: Report
    cancelled: tuple[tuple[str, str | None], ...] = ()


def _q8(value: Decimal) -> Decimal:
    return value.quantize(_CENT, ROUND_HALF_EVEN)


def _reported_kind(order: FuturesOrder) -> str:
    """The type Kraken reports: a ``mkt`` order runs as ``ioc``; a triggered stop as the
    ``lmt`` or ``ioc`` it became."""
    if order.triggered:
        return "lmt" if order.limit_price is not None else "ioc"
    return "ioc" if order.kind == "mkt" else order.kind


class FuturesExchange(MarketLiquidity):
    """Kraken-Futures-compatible matching for linear perpetuals (see the module doc)."""

    def __init__(
        self,
        contracts: Mapping[str, Contract],
        *,
        seed: int = 0,
        market: MarketSource | None = None,
        index_source: Callable[[str], int] | None = None,
        maker_fee: Decimal = Decimal("0.0002"),
        taker_fee: Decimal = Decimal("0.0005"),
        funding_rate: Decimal = Decimal("0.0001"),
        funding_interval_s: float = 3600.0,
    ) -> None:
        if funding_interval_s <= 0:
            raise ValueError("funding_interval_s must be positive")
        self.contracts = dict(contracts)
        self.market = market
        self._index_source = index_source
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.funding_rate = funding_rate
        self.funding_interval_ns = round(funding_interval_s * 1e9)
        self.next_funding_ns: int | None = None
        self.accounts: dict[str, Account] = {}
        self._books = {s: Book(s) for s in self.contracts}
        self._rng = random.Random(seed)
        self._fill_seq = 0  # numbers every fill, in the order they happen
        self._orders: dict[str, FuturesOrder] = {}
        self._triggers: dict[str, dict[str, FuturesOrder]] = {s: {} for s in self.contracts}
        self.last: dict[str, int | None] = dict.fromkeys(self.contracts)
        self._now = 0
        self._report = Report()
        self._touched: dict[str, Book] = {}
        self._init_liquidity()

    # ================================================================ accounts and prices
    def add_account(self, name: str, balance: Decimal) -> Account:
        if name in self.accounts or name == MARKET_ACCOUNT:
            raise ValueError(f"account {name} exists")
        account = self.accounts[name] = Account(name, Decimal(balance))
        return account

    def deposit(self, name: str, amount: Decimal) -> None:
        self.accounts[name].balance += amount

    def book(self, symbol: str) -> Book:
        return self._books[symbol]

    def index(self, symbol: str) -> int:
        """The index price: the market source's mid, else the book's, else the last."""
        if self._index_source is not None:
            return self._index_source(symbol)
        mid = self._mid(symbol)
        if mid is not None:
            return mid
        last = self.last[symbol]
        if last is not None:
            return last
        contract = self.contracts[symbol]
        return int(contract.start_price.scaleb(contract.price_precision))

    def mark(self, symbol: str) -> int:
        """The mark price: the book's mid on the tick grid, else the index."""
        mid = self._mid(symbol)
        return mid if mid is not None else self.index(symbol)

    def marks(self) -> dict[str, int]:
        return {s: self.mark(s) for s in self.contracts}

    def _mid(self, symbol: str) -> int | None:
        book = self._books[symbol]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        inc = self.contracts[symbol].price_increment
        mid = (bid + ask) // 2
        return mid - mid % inc

    def margin(self, name: str, extra: tuple[str, str, int] | None = None) -> MarginView:
        return margin_view(self.accounts[name], self.contracts, self.marks(), extra=extra)

    # ================================================================ lookups
    def open_orders(self, name: str) -> list[OrderSnap]:
        return [self._snap(o) for o in self.accounts[name].open_orders.values()]

    def order(self, name: str, order_id: str) -> FuturesOrder | None:
        order = self._orders.get(order_id)
        return order if order is not None and order.account == name else None

    def fills(self, name: str, before_ns: int | None = None, limit: int = 100) -> list[FillRec]:
        """The newest ``limit`` fills (before ``before_ns``), newest first."""
        listed = [
            f
            for f in reversed(self.accounts[name].fills)
            if before_ns is None or f.time_ns < before_ns
        ]
        return listed[:limit]

    def positions(self, name: str) -> dict[str, Position]:
        return {s: p for s, p in self.accounts[name].positions.items() if p.qty}

    # ================================================================ order entry
    def send_order(self, name: str, req: SendRequest, now_ns: int) -> Outcome:
        self._begin(now_ns)
        account = self.accounts[name]
        contract = self.contracts[req.symbol]
        refusal = self._check_new(account, contract, req)
        if refusal is not None:
            return self._outcome(refusal, None, req.cli_ord_id)
        size, reduced = req.size, None
        if req.reduce_only and req.order_type not in _TRIGGERS:
            allowed = self._reducible(account, req.symbol, req.side)
            if allowed == 0:
                return self._outcome("wouldNotReducePosition", None, req.cli_ord_id)
            if size > allowed:
                size, reduced = allowed, size - allowed
        if not req.reduce_only:
            if self._exceeds_max(account, contract, req.side, size):
                return self._outcome("maxPositionViolation", None, req.cli_ord_id)
            if req.order_type not in _TRIGGERS:
                view = self.margin(name, (req.symbol, req.side, size))
                if view.available_margin < 0:
                    return self._outcome("insufficientAvailableFunds", None, req.cli_ord_id)
        order = FuturesOrder(
            txid=self._uuid(),
            account=name,
            symbol=req.symbol,
            side="buy" if req.side == "buy" else "sell",
            ord_type="limit",
            price=req.limit_price,
            qty=size,
            opentm=now_ns,
            cl_ord_id=req.cli_ord_id,
            kind=req.order_type,
            reduce_only=req.reduce_only,
            stop_price=req.stop_price,
            trigger_signal=req.trigger_signal,
            limit_price=req.limit_price,
            updated_ns=now_ns,
        )
        self._orders[order.txid] = order
        if order.cl_ord_id is not None:
            account.cli_ids[order.cl_ord_id] = order.txid
        if order.is_trigger:
            account.open_orders[order.txid] = order
            self._triggers[order.symbol][order.txid] = order
            order.status = "open"
            snap = self._snap(order)
            self._report.events.append(Ev("PLACE", snap))
            self._update(order, False, "new_placed_order_by_user")
            self._check_triggers(order.symbol)
            return self._outcome("placed", order.txid, order.cl_ord_id)
        status = self._enter(order, reduced, "new_placed_order_by_user", fill_type="taker")
        return self._outcome(status, order.txid, order.cl_ord_id)

    def _check_new(self, account: Account, contract: Contract, req: SendRequest) -> str | None:
        if req.order_type not in KINDS:
            return "invalidOrderType"
        if req.side not in ("buy", "sell"):
            return "invalidSide"
        if req.size <= 0 or req.size % contract.qty_increment:
            return "invalidSize"
        inc = contract.price_increment
        for price, needed in (
            (req.limit_price, req.order_type in _LIMITED),
            (req.stop_price, req.order_type in _TRIGGERS),
        ):
            if price is None:
                if needed:
                    return "invalidPrice"
            elif price <= 0 or price % inc:
                return "invalidPrice"
        if req.cli_ord_id is not None:
            if len(req.cli_ord_id) > 100:
                return "clientOrderIdTooLong"
            if req.cli_ord_id in account.cli_ids:
                return "clientOrderIdAlreadyExist"
        return None

    def _exceeds_max(self, account: Account, contract: Contract, side: str, size: int) -> bool:
        pos = account.positions.get(contract.symbol)
        q = pos.qty if pos is not None else 0
        same_side = sum(
            o.qty - o.filled
            for o in account.open_orders.values()
            if o.symbol == contract.symbol and o.side == side and not o.reduce_only
        )
        reach = q + same_side + size if side == "buy" else q - same_side - size
        limit = int(contract.max_position.scaleb(contract.qty_precision))
        return abs(reach) > limit and abs(reach) > abs(q)

    def _reducible(self, account: Account, symbol: str, side: str, skip: str | None = None) -> int:
        """How much a new reduce-only order on ``side`` may still take off the position."""
        pos = account.positions.get(symbol)
        q = pos.qty if pos is not None else 0
        if q == 0 or (q > 0) == (side == "buy"):
            return 0
        taken = sum(
            o.qty - o.filled
            for o in account.open_orders.values()
            if o.symbol == symbol
            and o.side == side
            and o.reduce_only
            and not o.is_trigger
            and o.txid != skip
        )
        return max(abs(q) - taken, 0)

    def _enter(
        self,
        order: FuturesOrder,
        reduced: int | None,
        reason: str,
        fill_type: str,
        *,
        announce: bool = True,
    ) -> str:
        """Match a live order (new, triggered or edited) and rest what may rest; an edited
        order (``announce=False``) was already reported by its EDIT event."""
        book = self._books[order.symbol]
        kind = order.kind
        if order.triggered:
            kind = "lmt" if order.limit_price is not None else "mkt"
        if kind == "mkt":
            order.price = self._protected(order.symbol, order.side)
        assert order.price is not None
        account = self.accounts[order.account]
        if kind == "post" and book.crosses(order.side, order.price):
            return self._reject(order, "postWouldExecute", "POST_WOULD_EXECUTE", reduced)
        reach_self, _ = book.preview(
            order.side,
            order.price,
            order.qty - order.filled,
            account=order.account,
            stptype="cancel-newest",
            exempt=MARKET_ACCOUNT,
        )
        reach_all, _ = book.preview(
            order.side,
            order.price,
            order.qty - order.filled,
            account=order.account,
            stptype="cancel-newest",
            exempt=order.account,
        )
        if reach_self < reach_all:
            return self._reject(order, "selfFill", None, reduced)
        if kind in ("ioc", "mkt") and reach_all == 0:
            return self._reject(order, "iocWouldNotExecute", "IOC_WOULD_NOT_EXECUTE", reduced)
        if kind == "fok" and reach_all < order.qty - order.filled:
            return self._reject(order, "iocWouldNotExecute", "IOC_WOULD_NOT_EXECUTE", reduced)
        order.status = "open"
        account.open_orders[order.txid] = order
        self._touched[order.symbol] = book
        result = book.match(order, order.price, MARKET_ACCOUNT)
        for maker, price, qty in result.steps:
            if qty:
                self._fill(order, maker, price, qty, fill_type)
        if order.filled == order.qty:
            self._close(order, "closed", "full_fill")
        elif kind in ("ioc", "mkt", "fok"):
            self._close(order, "canceled", "ioc_order_failed_because_it_would_not_be_executed")
        else:
            book.rest(order)
            if announce:
                self._report.events.append(Ev("PLACE", self._snap(order), reduced_quantity=reduced))
                self._update(order, False, reason)
        self._after_fills()
        return "placed"

    def _protected(self, symbol: str, side: str) -> int:
        """The limit of a ``mkt`` order: 1% beyond the mark, on the tick grid."""
        contract = self.contracts[symbol]
        mark = Decimal(self.mark(symbol))
        inc = contract.price_increment
        if side == "buy":
            limit = int(mark * (1 + _PROTECTION))
            return limit - limit % inc
        limit = -int(-(mark * (1 - _PROTECTION)) // 1)
        return limit + (-limit % inc)

    def _reject(
        self, order: FuturesOrder, status: str, reason: str | None, reduced: int | None
    ) -> str:
        order.status = "canceled"
        order.closetm = self._now
        snap = self._snap(order)
        if reason is not None:
            self._report.events.append(Ev("REJECT", snap, reason=reason, reduced_quantity=reduced))
        account = self.accounts[order.account]
        if account.open_orders.pop(order.txid, None) is not None or order.triggered:
            ws_reason = {
                "POST_WOULD_EXECUTE": "post_order_failed_because_it_would_filled",
                "IOC_WOULD_NOT_EXECUTE": "ioc_order_failed_because_it_would_not_be_executed",
            }.get(reason or "", "would_execute_self")
            self._update(order, True, ws_reason)
        self._remember_closed(account, order)
        return status

    # ================================================================ edit and cancel
    def edit_order(
        self,
        name: str,
        now_ns: int,
        *,
        order_id: str | None = None,
        cli_ord_id: str | None = None,
        size: int | None = None,
        limit_price: int | None = None,
        stop_price: int | None = None,
        qty_mode: str = "RELATIVE",
    ) -> Outcome:
        self._begin(now_ns)
        account = self.accounts[name]
        order = self._find_open(account, order_id, cli_ord_id)
        if order is None:
            return self._outcome("orderForEditNotFound", order_id, cli_ord_id)
        contract = self.contracts[order.symbol]
        if stop_price is not None and not order.is_trigger:
            return self._outcome("orderForEditNotAStop", order.txid, order.cl_ord_id)
        new_qty = order.qty
        if size is not None:
            new_qty = size if qty_mode == "ABSOLUTE" else order.filled + size
            if new_qty <= order.filled or size % contract.qty_increment:
                return self._outcome("invalidSize", order.txid, order.cl_ord_id)
        inc = contract.price_increment
        for price in (limit_price, stop_price):
            if price is not None and (price <= 0 or price % inc):
                return self._outcome("invalidPrice", order.txid, order.cl_ord_id)
        reduced = None
        if order.reduce_only and not order.is_trigger:
            allowed = self._reducible(account, order.symbol, order.side, skip=order.txid)
            if allowed == 0:
                return self._outcome("wouldNotReducePosition", order.txid, order.cl_ord_id)
            if new_qty - order.filled > allowed:
                reduced = new_qty - order.filled - allowed
                new_qty = order.filled + allowed
        grows = new_qty > order.qty
        if grows and not order.reduce_only and not order.is_trigger:
            view = self.margin(name, (order.symbol, order.side, new_qty - order.qty))
            if view.available_margin < 0:
                return self._outcome("insufficientAvailableFunds", order.txid, order.cl_ord_id)
        new_price = order.limit_price if limit_price is None else limit_price
        book = self._books[order.symbol]
        moved = not order.is_trigger and new_price != order.price
        crosses = new_price is not None and book.crosses(order.side, new_price)
        if moved and order.kind == "post" and crosses:
            return self._outcome("postWouldExecute", order.txid, order.cl_ord_id)
        old = self._snap(order)
        order.updated_ns = now_ns
        if order.is_trigger:
            order.qty, order.limit_price = new_qty, new_price
            if stop_price is not None:
                order.stop_price = stop_price
            self._edited(order, old, reduced)
            self._check_triggers(order.symbol)
            return self._outcome("edited", order.txid, order.cl_ord_id)
        self._touched[order.symbol] = book
        if not moved and new_qty <= order.qty:
            if new_qty < order.qty:
                book.shrink(order, new_qty)
            self._edited(order, old, reduced)
            return self._outcome("edited", order.txid, order.cl_ord_id)
        book.unrest(order)
        del account.open_orders[order.txid]
        order.qty, order.price, order.limit_price = new_qty, new_price, new_price
        self._edited(order, old, reduced)
        status = self._enter(
            order, None, "edited_by_user", fill_type="takerAfterEdit", announce=False
        )
        return self._outcome(
            "edited" if status == "placed" else status, order.txid, order.cl_ord_id
        )

    def _edited(self, order: FuturesOrder, old: OrderSnap, reduced: int | None) -> None:
        new = self._snap(order)
        self._report.events.append(Ev("EDIT", new, old=old, reduced_quantity=reduced))
        self._update(order, False, "edited_by_user")

    def cancel_order(
        self, name: str, now_ns: int, *, order_id: str | None = None, cli_ord_id: str | None = None
    ) -> Outcome:
        self._begin(now_ns)
        account = self.accounts[name]
        order = self._find_open(account, order_id, cli_ord_id)
        if order is None:
            known = account.cli_ids.get(cli_ord_id or "") if order_id is None else order_id
            gone = account.closed.get(known or "")
            status = "filled" if gone is not None and gone.status == "closed" else "notFound"
            return self._outcome(status, order_id, cli_ord_id)
        self._cancel(order, "cancelled_by_user")
        return self._outcome("cancelled", order.txid, order.cl_ord_id)

    def cancel_all(
        self,
        name: str,
        now_ns: int,
        *,
        symbol: str | None = None,
        reason: str = "cancelled_by_user",
    ) -> Outcome:
        """``cancelallorders`` (and the dead-man's switch, ``reason="dead_man_switch"``)."""
        self._begin(now_ns)
        account = self.accounts[name]
        targets = [o for o in account.open_orders.values() if symbol in (None, o.symbol)]
        for order in targets:
            self._cancel(order, reason)
        cancelled = tuple((o.txid, o.cl_ord_id) for o in targets)
        status = "cancelled" if targets else "noOrdersToCancel"
        return Outcome(status, None, None, self._finish(), cancelled)

    def _find_open(
        self, account: Account, order_id: str | None, cli_ord_id: str | None
    ) -> FuturesOrder | None:
        if order_id is None and cli_ord_id is not None:
            order_id = account.cli_ids.get(cli_ord_id)
        return account.open_orders.get(order_id or "")

    def _cancel(self, order: FuturesOrder, reason: str) -> None:
        if order.is_trigger:
            self._triggers[order.symbol].pop(order.txid, None)
        else:
            book = self._books[order.symbol]
            book.unrest(order)
            self._touched[order.symbol] = book
        self._report.events.append(Ev("CANCEL", self._snap(order)))
        self._close(order, "canceled", reason)

    def _close(self, order: FuturesOrder, status: str, reason: str) -> None:
        order.status = status
        order.closetm = self._now
        order.updated_ns = self._now
        account = self.accounts[order.account]
        account.open_orders.pop(order.txid, None)
        self._update(order, True, reason)
        self._remember_closed(account, order)

    def _remember_closed(self, account: Account, order: FuturesOrder) -> None:
        account.closed[order.txid] = order
        if len(account.closed) > _MAX_CLOSED:
            oldest = next(iter(account.closed))
            del account.closed[oldest]
            self._orders.pop(oldest, None)

    # ================================================================ fills
    def _fill(self, taker: Order, maker: Order, price: int, qty: int, taker_type: str) -> None:
        symbol = taker.symbol
        self.last[symbol] = price
        self._report.trades.append(
            TradeRec(symbol, self._uuid(), taker.side, price, qty, self._now)
        )
        prior = self._snap(taker) if isinstance(taker, FuturesOrder) else None
        maker_done = maker.filled == maker.qty  # the book has applied this step to it
        taker.filled += qty
        taker.cost += price * qty
        if isinstance(taker, FuturesOrder):
            taker.updated_ns = self._now
            self._settle(taker, price, qty, taker_type, taker.kind, limit_filled=maker_done)
            assert prior is not None
            self._report.events.append(
                Ev(
                    "EXECUTION",
                    self._snap(taker),
                    prior=prior,
                    execution_id=self._uuid(),
                    price=price,
                    amount=qty,
                )
            )
        taker_kind = taker.kind if isinstance(taker, FuturesOrder) else "ioc"
        if isinstance(maker, FuturesOrder):
            maker.updated_ns = self._now
            self._settle(maker, price, qty, "maker", taker_kind, limit_filled=maker_done)
            if maker.filled == maker.qty:
                self._close(maker, "closed", "full_fill")
            else:
                self._update(maker, False, "partial_fill")
        else:
            self.market_book.maker_filled(maker)

    def _settle(
        self,
        order: FuturesOrder,
        price: int,
        qty: int,
        fill_type: str,
        taker_kind: str,
        *,
        limit_filled: bool,
    ) -> None:
        account = self.accounts[order.account]
        contract = self.contracts[order.symbol]
        rate = self.maker_fee if fill_type == "maker" else self.taker_fee
        fee = _q8(contract.notional(qty, price) * rate)
        account.balance -= fee
        self._move(account, contract, qty if order.side == "buy" else -qty, price)
        self._fill_seq += 1
        fill = FillRec(
            account=account.name,
            fill_id=self._uuid(),
            order_id=order.txid,
            cli_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            remaining=order.qty - order.filled,
            fill_type=fill_type,
            fee=fee,
            order_kind=order.kind,
            taker_kind=taker_kind,
            time_ns=self._now,
            order=self._snap(order),
            mark=self.mark(order.symbol),
            position=account.position_qty(order.symbol),
            limit_filled=limit_filled,
            seq=self._fill_seq,
        )
        account.fills.append(fill)
        if len(account.fills) > _MAX_FILLS:
            del account.fills[: len(account.fills) - _MAX_FILLS]
        self._report.fills.append(fill)
        self._report.accounts.add(account.name)

    def _move(self, account: Account, contract: Contract, delta: int, price: int) -> None:
        """Apply a signed fill of ``delta`` at ``price`` to the position."""
        pos = account.positions.setdefault(contract.symbol, Position(opened_ns=self._now))
        q, px = pos.qty, contract.price_decimal(price)
        if q == 0 or (q > 0) == (delta > 0):
            total = abs(q) + abs(delta)
            entry = (pos.entry * abs(q) + px * abs(delta)) / total
            pos.entry = entry.quantize(Decimal(1).scaleb(-(contract.price_precision + 8)))
            pos.qty = q + delta
            if q == 0:
                pos.opened_ns = self._now
            return
        closed = min(abs(delta), abs(q))
        size = contract.qty_decimal(closed) * contract.contract_size
        pnl = (px - pos.entry) * size * (1 if q > 0 else -1)
        share = _q8(pos.unrealized_funding * closed / abs(q))
        account.balance += _q8(pnl) + share
        pos.unrealized_funding -= share
        pos.qty = q + delta
        if pos.qty == 0:
            del account.positions[contract.symbol]
        elif (pos.qty > 0) != (q > 0):  # flipped: the rest opens at this price
            pos.entry, pos.unrealized_funding, pos.opened_ns = px, Decimal(0), self._now

    def _after_fills(self) -> None:
        """Cut reduce-only orders that now exceed their positions; fire due triggers."""
        for name in sorted(self._report.accounts):
            account = self.accounts[name]
            for order in [o for o in account.open_orders.values() if o.reduce_only]:
                if order.is_trigger:
                    continue
                allowed = self._reducible(account, order.symbol, order.side, skip=order.txid)
                left = order.qty - order.filled
                if allowed == 0:
                    self._cancel(order, "would_not_reduce_position")
                elif left > allowed:
                    self._books[order.symbol].shrink(order, order.filled + allowed)
                    self._touched[order.symbol] = self._books[order.symbol]
                    self._update(order, False, "would_not_reduce_position")
        for symbol in {t.symbol for t in self._report.trades}:
            self._check_triggers(symbol)

    # ================================================================ triggers
    def _signal(self, symbol: str, signal: str) -> int:
        if signal == "mark":
            return self.mark(symbol)
        if signal == "index":
            return self.index(symbol)
        last = self.last[symbol]
        return last if last is not None else self.mark(symbol)

    def _check_triggers(self, symbol: str) -> None:
        for order in list(self._triggers[symbol].values()):
            if order.txid not in self._triggers[symbol]:
                continue
            price = self._signal(symbol, order.trigger_signal)
            assert order.stop_price is not None
            above = order.side == "buy" if order.kind == "stp" else order.side == "sell"
            if (price >= order.stop_price) if above else (price <= order.stop_price):
                self._fire(order)

    def _fire(self, order: FuturesOrder) -> None:
        del self._triggers[order.symbol][order.txid]
        account = self.accounts[order.account]
        self._update(order, True, "stop_order_triggered")
        order.triggered = True
        order.updated_ns = self._now
        del account.open_orders[order.txid]
        if order.reduce_only:
            allowed = self._reducible(account, order.symbol, order.side, skip=order.txid)
            if allowed == 0:
                self._close(order, "canceled", "would_not_reduce_position")
                return
            order.qty = min(order.qty, allowed)
        else:
            extra = (order.symbol, order.side, order.qty)
            if margin_view(account, self.contracts, self.marks(), extra=extra).available_margin < 0:
                self._close(order, "canceled", "not_enough_margin")
                return
        order.price = order.limit_price
        self._enter(order, None, "limit_order_from_stop", fill_type="taker")

    # ================================================================ time
    def advance(self, now_ns: int) -> Report:
        """Move time on: the market source's step, triggers, and funding when due."""
        self._begin(now_ns)
        if self.market is not None:
            for action in self.market.step(now_ns):
                self._apply_market(action)
        self._after_fills()
        for symbol in self.contracts:
            self._check_triggers(symbol)
        self._fund()
        return self._finish()

    def _fund(self) -> None:
        if self.next_funding_ns is None:
            self.next_funding_ns = self._now + self.funding_interval_ns
            return
        while self._now >= self.next_funding_ns:
            self.next_funding_ns += self.funding_interval_ns
            if not self.funding_rate:
                continue
            for account in self.accounts.values():
                for symbol, pos in account.positions.items():
                    contract = self.contracts[symbol]
                    notional = contract.notional(pos.qty, self.mark(symbol))
                    paid = _q8(notional * self.funding_rate) * (1 if pos.qty > 0 else -1)
                    pos.unrealized_funding -= paid
                    self._report.accounts.add(account.name)

    def funding_due_in_ns(self) -> int | None:
        return None if self.next_funding_ns is None else max(self.next_funding_ns - self._now, 0)

    # ================================================================ reporting
    def _begin(self, now_ns: int) -> None:
        self._now = max(now_ns, self._now)
        self._report = Report()
        self._touched = {}

    def _finish(self) -> Report:
        report = self._report
        for symbol, book in self._touched.items():
            report.book.extend(
                (symbol, side, price, qty) for side, price, qty in book.drain_changes()
            )
        self._report = Report()
        self._touched = {}
        return report

    def _outcome(self, status: str, order_id: str | None, cli_ord_id: str | None) -> Outcome:
        return Outcome(status, order_id, cli_ord_id, self._finish())

    def _update(self, order: FuturesOrder, is_cancel: bool, reason: str) -> None:
        self._report.updates.append(
            OrderUpdate(order.account, self._snap(order), is_cancel, reason)
        )
        self._report.accounts.add(order.account)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _snap(self, order: FuturesOrder) -> OrderSnap:
        trigger = order.is_trigger
        return OrderSnap(
            order_id=order.txid,
            cli_ord_id=order.cl_ord_id,
            kind=_reported_kind(order),
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            filled=order.filled,
            limit_price=order.limit_price if trigger else order.price,
            stop_price=order.stop_price if trigger else None,
            reduce_only=order.reduce_only,
            trigger_signal=order.trigger_signal if trigger else None,
            received_ns=order.opentm,
            updated_ns=order.updated_ns,
            is_trigger=trigger,
        )
