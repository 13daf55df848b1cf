"""The simulator's exchange (pure): many symbols, many accounts, one facade for the server.

``Exchange`` validates orders with Kraken's error strings, holds funds, matches in each
symbol's ``Book``, settles fills through ``Accounts`` and reports every change as a
``Result`` (execution reports, public trades, changed book levels). Time comes in as
``now_ns`` on every call; ids come from one ``random.Random(seed)``, so the same seed and
the same calls give the same results, byte for byte.

Market liquidity (from a ``MarketSource``: synthetic now, replay later) rests in the same
books as user orders, owned by ``MARKET_ACCOUNT``, which has no funds limit, pays no fees,
may trade with itself and gets no execution reports. ``advance(now_ns)`` expires GTD orders
and steps the market source; every other call first expires what is due.

This module owns order life cycles (validation, placement, amend, cancel, expiry,
settlement) and the lookups the server needs; the book and the ledger live in
``matching`` and ``accounts``.
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from bot.core.errors import ExchangeError, RejectedError, error_from_kraken
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.sim.accounts import FEE_ACCOUNT, MARKET_ACCOUNT, Accounts, FeeSchedule, PairMath
from bot.sim.market_data import MarketAction, MarketFill, MarketPrint, MarketSource
from bot.sim.market_orders import MarketOrders
from bot.sim.matching import (
    STP_TYPES,
    Book,
    BookDelta,
    ExecEvent,
    Fill,
    Order,
    OrderRequest,
    OrderState,
    PublicTrade,
    Result,
)

__all__ = [
    "ERR_CANCEL_UNKNOWN",
    "ERR_DUPLICATE_CL_ORD_ID",
    "ERR_UNKNOWN_ORDER",
    "REASON_AMEND_BELOW_FILLED",
    "REASON_EXPIRED",
    "REASON_FOK",
    "REASON_IOC",
    "REASON_NO_LIQUIDITY",
    "REASON_POST_ONLY",
    "REASON_STP",
    "REASON_USER",
    "Exchange",
]

# Kraken's strings where known (KRAKEN.md §1.5, §8.3); ours otherwise
# (docs/contributors/simulator/server.md).
REASON_USER: Final = "User requested"
REASON_POST_ONLY: Final = "Post only order"
REASON_IOC: Final = "Unfilled IOC order"
REASON_FOK: Final = "Unfilled FOK order"
REASON_STP: Final = "Self trade prevention"
REASON_NO_LIQUIDITY: Final = "Insufficient liquidity"
REASON_EXPIRED: Final = "Order expired"
REASON_AMEND_BELOW_FILLED: Final = "Order quantity amended below filled quantity"
ERR_UNKNOWN_ORDER: Final = "EOrder:Unknown order"
ERR_CANCEL_UNKNOWN: Final = "EOrder:Unknown order"
ERR_DUPLICATE_CL_ORD_ID: Final = "EGeneral:Invalid arguments:cl_ord_id"

_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CL_ORD_ID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[\x21-\x7e]{1,18}"
)
_TIFS: Final = ("GTC", "IOC", "FOK", "GTD")
_CLOSE_EXEC: Final = {"closed": "filled", "canceled": "canceled", "expired": "expired"}
_INT32: Final = 2**31


def _invalid(field: str, detail: str = "") -> RejectedError:
    return RejectedError(f"EGeneral:Invalid arguments:{field}", detail)


def _reject(code: str, detail: str = "") -> ExchangeError:
    return error_from_kraken(code, detail)


class Exchange:
    """Kraken-compatible matching for every configured pair and account."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        seed: int = 0,
        fees: FeeSchedule | None = None,
        open_orders_limit: int = 60,
        market: MarketSource | None = None,
    ) -> None:
        self.instruments = InstrumentTable(instruments)
        self.market_account: Final = MARKET_ACCOUNT
        self.fee_account: Final = FEE_ACCOUNT
        self.accounts = Accounts(self.instruments.values(), fees=fees)
        self.open_orders_limit = open_orders_limit
        self._market = market
        self._rng = random.Random(seed)
        self._books = {symbol: Book(symbol) for symbol in self.instruments}
        self._orders: dict[str, Order] = {}
        self._open: dict[str, dict[str, Order]] = {}
        self._closed: dict[str, list[Order]] = {}
        self._fills: dict[str, list[Fill]] = {}
        self._cl_ids: dict[str, dict[str, Order]] = {}
        self._open_count: dict[tuple[str, str], int] = {}
        self._expiries: list[tuple[int, int, str]] = []
        self._trade_ids = dict.fromkeys(self._books, 0)
        self._market_book = MarketOrders(
            MARKET_ACCOUNT, self._books, market, take=self._market_take, touch=self._touch_book
        )
        self._seq = 0
        self._now = 0
        self._execs: list[ExecEvent] = []
        self._trades: list[PublicTrade] = []
        self._touched: dict[str, Book] = {}

    # ====================================================================== user calls
    def deposit(self, account: str, asset: str, amount: Decimal | int | str) -> None:
        """Credit an account (a negative amount withdraws)."""
        self.accounts.deposit(account, asset, amount)

    def add_order(self, account: str, req: OrderRequest, now_ns: int) -> Result:
        """AddOrder: validate, hold funds, match, rest the remainder (or reject)."""
        self._begin(now_ns)
        inst = self._instrument(req.symbol)
        self._validate(account, req, inst)
        book = self._books[inst.symbol]
        pm = self.accounts.pair(inst.symbol)
        asset, need = self._initial_hold(account, req, book, pm)
        self.accounts.check(account, asset, need)
        if req.validate:
            return self._finish(None)
        order = Order(
            txid=self._new_id("O"),
            account=account,
            symbol=inst.symbol,
            side="buy" if req.side == "buy" else "sell",
            ord_type=req.ord_type,
            price=req.price if req.ord_type == "limit" else None,
            qty=req.qty,
            opentm=now_ns,
            time_in_force=req.time_in_force if req.ord_type == "limit" else "IOC",
            expire_at=req.expire_at if req.time_in_force == "GTD" else None,
            post_only=req.post_only,
            fee_in_base=req.fee_in_base,
            stptype=req.stptype,
            cl_ord_id=req.cl_ord_id,
            userref=req.userref,
        )
        self._register(order)
        self.accounts.set_hold(order.txid, account, asset, need)
        self._touched[book.symbol] = book
        self._emit("pending_new", order)
        if order.post_only and order.price is not None and book.crosses(order.side, order.price):
            self._close(order, "canceled", REASON_POST_ONLY)
            return self._finish(order)
        if order.time_in_force == "FOK":
            fillable, _ = book.preview(
                order.side,
                order.price,
                order.qty,
                account=account,
                stptype=order.stptype,
                exempt=self.market_account,
            )
            if fillable < order.qty:
                self._close(order, "canceled", REASON_FOK)
                return self._finish(order)
        order.status = "open"
        self._emit("new", order)
        stopped = self._take(order, book, pm)
        self._after_take(order, book, pm, stopped)
        if order.is_open and order.expire_at is not None:
            self._seq += 1
            heapq.heappush(self._expiries, (order.expire_at, self._seq, order.txid))
        return self._finish(order)

    def amend_order(
        self,
        account: str,
        now_ns: int,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        order_qty: int | None = None,
        limit_price: int | None = None,
        post_only: bool = False,
    ) -> Result:
        """AmendOrder in place. Priority is kept when only the qty shrinks; a new price or
        a larger qty sends the order to the back (and it may trade if it now crosses).
        A qty at or below the filled qty cancels the rest, as Kraken documents. A new price
        that would take is refused only with ``post_only`` (the amend's flag, default
        false, as Kraken documents it): a post-only order's own flag does not guard it."""
        self._begin(now_ns)
        order = self._find_open(account, txid, cl_ord_id, ERR_UNKNOWN_ORDER)
        if order_qty is None and limit_price is None:
            raise _invalid("order_qty", "nothing to amend")
        inst = self.instruments[order.symbol]
        book = self._books[order.symbol]
        pm = self.accounts.pair(order.symbol)
        assert order.price is not None
        new_qty = order.qty if order_qty is None else order_qty
        new_price = order.price if limit_price is None else limit_price
        if new_qty <= 0:
            raise _invalid("order_qty")
        if new_price <= 0:
            raise _invalid("limit_price")
        if new_price % inst.price_increment:
            raise _reject("EOrder:Tick size check failed")
        if new_qty < inst.qty_min:
            raise _reject("EOrder:Order minimum not met")
        if inst.cost(new_price, new_qty) < inst.cost_min:
            raise _reject("EOrder:Cost minimum not met")
        moved = new_price != order.price
        if moved and post_only and book.crosses(order.side, new_price):
            raise _reject("EOrder:Post only order")
        self._touched[book.symbol] = book
        if new_qty <= order.filled:
            book.unrest(order)
            order.amended = True
            self._close(order, "canceled", REASON_AMEND_BELOW_FILLED)
            return self._finish(order)
        asset, need = self._hold_for(order, pm, new_price, new_qty)
        self.accounts.require(order.txid, account, asset, need)
        order.amended = True
        if not moved and new_qty <= order.qty:
            if new_qty < order.qty:
                book.shrink(order, new_qty)
            self._emit("amended", order)
            return self._finish(order)
        book.unrest(order)
        order.qty, order.price = new_qty, new_price
        self._emit("amended", order)
        stopped = self._take(order, book, pm) if book.crosses(order.side, new_price) else False
        self._after_take(order, book, pm, stopped)
        return self._finish(order)

    def cancel_order(
        self,
        account: str,
        now_ns: int,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        reason: str = REASON_USER,
    ) -> Result:
        """CancelOrder by txid, cl_ord_id, or every open order with a userref."""
        self._begin(now_ns)
        if (txid is not None) + (cl_ord_id is not None) + (userref is not None) != 1:
            raise _invalid("txid", "give exactly one of txid, cl_ord_id, userref")
        if userref is not None:
            targets = [o for o in self._open.get(account, {}).values() if o.userref == userref]
        else:
            targets = [self._find_open(account, txid, cl_ord_id, ERR_CANCEL_UNKNOWN)]
        for order in targets:
            self._cancel(order, reason)
        return self._finish(None, len(targets))

    def cancel_all(self, account: str, now_ns: int, reason: str = REASON_USER) -> Result:
        """CancelAll (and the dead man's switch when its timer fires)."""
        self._begin(now_ns)
        targets = list(self._open.get(account, {}).values())
        for order in targets:
            self._cancel(order, reason)
        return self._finish(None, len(targets))

    def advance(self, now_ns: int) -> Result:
        """Move time on: expire due GTD orders, then step the market source."""
        self._begin(now_ns)
        if self._market is not None:
            for action in self._market.step(now_ns):
                self._apply_market(action)
        return self._finish(None)

    def apply_market(self, actions: Sequence[MarketAction], now_ns: int) -> Result:
        """Apply market actions on the market account (no funds checks, no reports)."""
        self._begin(now_ns)
        for action in actions:
            self._apply_market(action)
        return self._finish(None)

    # ====================================================================== lookups
    def order(self, account: str, txid: str) -> OrderState | None:
        """One of ``account``'s orders, open or closed."""
        order = self._orders.get(txid)
        return self._snapshot(order) if order is not None and order.account == account else None

    def order_by_cl_ord_id(self, account: str, cl_ord_id: str) -> OrderState | None:
        """The open order with this cl_ord_id, else the latest closed one."""
        order = self._cl_ids.get(account, {}).get(cl_ord_id)
        if order is None:
            for closed in reversed(self._closed.get(account, [])):
                if closed.cl_ord_id == cl_ord_id:
                    order = closed
                    break
        return self._snapshot(order) if order is not None else None

    def open_orders(self, account: str) -> list[OrderState]:
        """Open orders, oldest first."""
        return [self._snapshot(o) for o in self._open.get(account, {}).values()]

    def closed_orders(self, account: str) -> list[OrderState]:
        """Closed, cancelled and expired orders, in the order they closed."""
        return [self._snapshot(o) for o in self._closed.get(account, [])]

    def trades(self, account: str) -> list[Fill]:
        """The account's fills, oldest first."""
        return list(self._fills.get(account, []))

    def balances(self, account: str) -> dict[str, Decimal]:
        return self.accounts.balances(account)

    def holds(self, account: str) -> dict[str, Decimal]:
        return self.accounts.holds(account)

    def resting_orders(self, symbol: str) -> list[Order]:
        """Every user order resting in ``symbol``'s book, oldest first (read them; never
        change them): what a live source's fill rule watches."""
        return [
            order
            for orders in self._open.values()
            for order in orders.values()
            if order.symbol == symbol and order.status == "open" and order.price is not None
        ]

    def book(self, symbol: str) -> Book:
        """The live book of ``symbol`` (read it; never change it)."""
        return self._books[self._instrument(symbol).symbol]

    def depth(
        self, symbol: str, n: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) top ``n`` levels as (price, qty), best first."""
        book = self.book(symbol)
        return book.depth("bid", n), book.depth("ask", n)

    # ====================================================================== validation
    def _instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.lookup(symbol)
        if inst is None:
            raise _reject("EQuery:Unknown asset pair", symbol)
        return inst

    def _validate(self, account: str, req: OrderRequest, inst: Instrument) -> None:
        if req.side not in ("buy", "sell"):
            raise _invalid("type")
        if req.ord_type not in ("limit", "market"):
            raise _invalid("ordertype")
        if type(req.qty) is not int or req.qty <= 0:
            raise _invalid("volume")
        if req.time_in_force not in _TIFS:
            raise _invalid("timeinforce")
        if req.ord_type == "market" and req.time_in_force in ("FOK", "GTD"):
            raise _invalid("timeinforce", "market orders are immediate-or-cancel")
        if req.time_in_force == "GTD" and (req.expire_at is None or req.expire_at <= self._now):
            raise _invalid("expiretm")
        if req.post_only and (req.ord_type != "limit" or req.time_in_force in ("IOC", "FOK")):
            raise _invalid("oflags", "post-only needs a resting limit order")
        if req.stptype not in STP_TYPES:
            raise _invalid("stptype")
        if req.cl_ord_id is not None:
            if req.userref is not None:
                raise _invalid("cl_ord_id", "cl_ord_id and userref are mutually exclusive")
            if not _CL_ORD_ID.fullmatch(req.cl_ord_id):
                raise _invalid("cl_ord_id")
            if req.cl_ord_id in self._cl_ids.get(account, {}):
                raise _reject(ERR_DUPLICATE_CL_ORD_ID, "duplicate among open orders")
        if req.userref is not None and not -_INT32 <= req.userref < _INT32:
            raise _invalid("userref")
        if req.ord_type == "limit":
            if req.price is None or type(req.price) is not int or req.price <= 0:
                raise _invalid("price")
            if req.price % inst.price_increment:
                raise _reject("EOrder:Tick size check failed")
        if req.qty % inst.qty_increment:
            raise _invalid("volume", "not a multiple of qty_increment")
        if req.qty < inst.qty_min:
            raise _reject("EOrder:Order minimum not met")
        ref_price = req.price if req.ord_type == "limit" else self._reference_price(inst, req)
        if ref_price is not None and inst.cost(ref_price, req.qty) < inst.cost_min:
            raise _reject("EOrder:Cost minimum not met")
        rests = req.ord_type == "limit" and req.time_in_force in ("GTC", "GTD")
        if rests and self._open_count.get((account, inst.symbol), 0) >= self.open_orders_limit:
            raise _reject("EOrder:Orders limit exceeded")

    def _reference_price(self, inst: Instrument, req: OrderRequest) -> int | None:
        book = self._books[inst.symbol]
        return book.best_ask() if req.side == "buy" else book.best_bid()

    def _initial_hold(
        self, account: str, req: OrderRequest, book: Book, pm: PairMath
    ) -> tuple[str, int]:
        rate = self.accounts.fees(account).max_ppm
        if req.ord_type == "limit":
            assert req.price is not None
            return pm.hold(req.side, req.fee_in_base, req.price, req.qty, rate_ppm=rate)
        if req.side == "sell":
            return pm.hold("sell", req.fee_in_base, 0, req.qty, rate_ppm=rate)
        _, cost = book.preview(
            "buy", None, req.qty, account=account, stptype=req.stptype, exempt=self.market_account
        )
        need = cost * pm.quote_mul
        if not req.fee_in_base:
            need += pm.fee_ledger(False, pm.fee_units(False, cost * rate))
        return pm.quote, need

    def _find_open(
        self, account: str, txid: str | None, cl_ord_id: str | None, missing: str
    ) -> Order:
        if (txid is None) == (cl_ord_id is None):
            raise _invalid("txid", "give exactly one of txid and cl_ord_id")
        if txid is not None:
            order = self._open.get(account, {}).get(txid)
        else:
            assert cl_ord_id is not None
            order = self._cl_ids.get(account, {}).get(cl_ord_id)
        if order is None:
            raise _reject(missing, txid or cl_ord_id or "")
        return order

    # ====================================================================== life cycle
    def _begin(self, now_ns: int) -> None:
        self._now = now_ns
        heap = self._expiries
        while heap and heap[0][0] <= now_ns:
            expire_at, _, txid = heapq.heappop(heap)
            order = self._orders.get(txid)
            if order is not None and order.is_open and order.expire_at == expire_at:
                book = self._books[order.symbol]
                book.unrest(order)
                self._touched[book.symbol] = book
                self._close(order, "expired", REASON_EXPIRED)

    def _finish(self, order: Order | None, count: int = 0) -> Result:
        book: list[BookDelta] = []
        for symbol, b in self._touched.items():
            book.extend((symbol, side, price, qty) for side, price, qty in b.drain_changes())
        result = Result(
            order=self._snapshot(order) if order is not None else None,
            count=count,
            executions=tuple(self._execs),
            trades=tuple(self._trades),
            book=tuple(book),
        )
        self._execs = []
        self._trades = []
        self._touched = {}
        return result

    def _new_id(self, prefix: str) -> str:
        while True:
            s = "".join(self._rng.choices(_ID_ALPHABET, k=16))
            txid = f"{prefix}{s[:5]}-{s[5:10]}-{s[10:]}"
            if txid not in self._orders:
                return txid

    def _register(self, order: Order) -> None:
        account = order.account
        self._orders[order.txid] = order
        self._open.setdefault(account, {})[order.txid] = order
        if order.cl_ord_id is not None:
            self._cl_ids.setdefault(account, {})[order.cl_ord_id] = order
        key = (account, order.symbol)
        self._open_count[key] = self._open_count.get(key, 0) + 1

    def _cancel(self, order: Order, reason: str) -> None:
        book = self._books[order.symbol]
        book.unrest(order)
        self._touched[book.symbol] = book
        self._close(order, "canceled", reason)

    def _close(self, order: Order, status: str, reason: str | None) -> None:
        """Finish an order that is no longer in the book."""
        order.status = status
        order.closetm = self._now
        order.reason = reason
        account = order.account
        if account == self.market_account:
            self._market_book.forget(order.ref)
            return
        self.accounts.release(order.txid)
        del self._open[account][order.txid]
        if order.cl_ord_id is not None:
            del self._cl_ids[account][order.cl_ord_id]
        self._open_count[(account, order.symbol)] -= 1
        self._closed.setdefault(account, []).append(order)
        self._emit(_CLOSE_EXEC[status], order, reason)

    def _take(self, order: Order, book: Book, pm: PairMath) -> bool:
        """Match ``order`` as taker and settle each fill; True if STP stopped it."""
        limit = order.price if order.ord_type == "limit" else None
        result = book.match(order, limit, self.market_account)
        self._touched[book.symbol] = book
        for maker, price, qty in result.steps:
            if qty:
                self._settle(order, maker, price, qty, pm)
            else:
                self._close(maker, "canceled", REASON_STP)
        return result.taker_stopped

    def _after_take(self, order: Order, book: Book, pm: PairMath, stopped: bool) -> None:
        """Close, cancel or rest what is left of a taker, and fix its hold."""
        if order.filled == order.qty:
            self._close(order, "closed", None)
        elif stopped:
            self._close(order, "canceled", REASON_STP)
        elif order.ord_type == "market":
            self._close(order, "canceled", REASON_NO_LIQUIDITY)
        elif order.time_in_force in ("IOC", "FOK"):
            self._close(
                order, "canceled", REASON_IOC if order.time_in_force == "IOC" else REASON_FOK
            )
        else:
            book.rest(order)
            self._rehold(order, pm)

    def _rehold(self, order: Order, pm: PairMath) -> None:
        if order.account == self.market_account:
            return
        assert order.price is not None
        asset, amount = self._hold_for(order, pm, order.price, order.qty)
        self.accounts.set_hold(order.txid, order.account, asset, amount)

    def _hold_for(self, order: Order, pm: PairMath, price: int, qty: int) -> tuple[str, int]:
        """What ``order`` must hold if its price and qty were ``price`` and ``qty``."""
        return pm.hold(
            order.side,
            order.fee_in_base,
            price,
            qty - order.filled,
            fee_acc=order.fee_acc,
            fee_units=order.fee_units,
            rate_ppm=self.accounts.fees(order.account).max_ppm,
        )

    def _settle(self, taker: Order, maker: Order, price: int, qty: int, pm: PairMath) -> None:
        symbol = taker.symbol
        trade_id = self._trade_ids[symbol] + 1
        self._trade_ids[symbol] = trade_id
        self._trades.append(
            PublicTrade(symbol, taker.side, price, qty, taker.ord_type, trade_id, self._now)
        )
        taker.filled += qty
        taker.cost += price * qty
        market = self.market_account
        if taker.account != market or maker.account != market:
            self._settle_side(taker, "t", price, qty, trade_id=trade_id, pm=pm)
            self._settle_side(maker, "m", price, qty, trade_id=trade_id, pm=pm)
        if maker.account == market:
            self._market_book.maker_filled(maker)
        elif maker.filled == maker.qty:
            self._close(maker, "closed", None)
        else:
            self._rehold(maker, pm)

    def _settle_side(
        self, order: Order, liquidity: str, price: int, qty: int, *, trade_id: int, pm: PairMath
    ) -> None:
        account = order.account
        fees = self.accounts.fees(account)
        rate = fees.maker_ppm if liquidity == "m" else fees.taker_ppm
        in_base = order.fee_in_base
        order.fee_acc += pm.fee_base_amount(in_base, price, qty) * rate
        units = pm.fee_units(in_base, order.fee_acc)
        fee_units = units - order.fee_units
        order.fee_units = units
        fee = pm.fee_ledger(in_base, fee_units)
        base_amount = qty * pm.base_mul
        quote_amount = price * qty * pm.quote_mul
        move = self.accounts.move
        if order.side == "buy":
            move(account, pm.quote, -quote_amount - (0 if in_base else fee))
            move(account, pm.base, base_amount - (fee if in_base else 0))
        else:
            move(account, pm.base, -base_amount - (fee if in_base else 0))
            move(account, pm.quote, quote_amount - (0 if in_base else fee))
        if fee:
            move(self.fee_account, pm.base if in_base else pm.quote, fee)
        if account == self.market_account:
            return
        inst = pm.inst
        fill = Fill(
            exec_id=self._new_id("T"),
            trade_id=trade_id,
            txid=order.txid,
            account=account,
            symbol=order.symbol,
            side=order.side,
            ord_type=order.ord_type,
            price=price,
            qty=qty,
            cost=inst.cost(price, qty),
            fee=pm.fee_decimal(in_base, fee_units),
            fee_asset=pm.base if in_base else pm.quote,
            liquidity=liquidity,
            timestamp=self._now,
        )
        order.trades.append(fill.exec_id)
        self._fills.setdefault(account, []).append(fill)
        self._emit("trade", order, fill=fill)

    # ====================================================================== market source
    def _market_take(self, order: Order, book: Book) -> None:
        """A crossing market order trades (the market account pays no fees)."""
        self._take(order, book, self.accounts.pair(order.symbol))

    def _apply_market(self, action: MarketAction) -> None:
        """The market's orders are ``MarketOrders``'; a live source's prints and fills of
        resting user orders (``MarketPrint``, ``MarketFill``) are the spot exchange's."""
        if isinstance(action, MarketPrint):
            symbol = self._instrument(action.symbol).symbol
            trade_id = self._trade_ids[symbol] + 1
            self._trade_ids[symbol] = trade_id
            self._trades.append(
                PublicTrade(
                    symbol, action.side, action.price, action.qty, action.ord_type, trade_id,
                    self._now,
                )
            )  # fmt: skip
        elif isinstance(action, MarketFill):
            self._market_fill(action)
        else:
            self._market_book.apply(action, self._now)

    def _market_fill(self, action: MarketFill) -> None:
        """The market trades with a resting user order at its price (``MarketFill``)."""
        maker = self._orders.get(action.txid)
        if maker is None or not maker.is_open or maker.price is None:
            return
        qty = min(action.qty, maker.remaining)
        if qty <= 0:
            return
        book = self._books[maker.symbol]
        pm = self.accounts.pair(maker.symbol)
        self._seq += 1
        taker = Order(
            txid=f"ML{self._seq}",  # the live market's side of a fill (MarketOrders has M…)
            account=self.market_account,
            symbol=maker.symbol,
            side="sell" if maker.side == "buy" else "buy",
            ord_type="market",
            price=None,
            qty=qty,
            opentm=self._now,
            time_in_force="IOC",
            status="open",
        )
        book.fill_resting(maker, qty, maker.price)
        self._touched[book.symbol] = book
        trade_id = self._trade_ids[maker.symbol] + 1
        self._trade_ids[maker.symbol] = trade_id
        taker.filled, taker.cost = qty, qty * maker.price
        self._settle_side(taker, "t", maker.price, qty, trade_id=trade_id, pm=pm)
        self._settle_side(maker, "m", maker.price, qty, trade_id=trade_id, pm=pm)
        if maker.filled == maker.qty:
            self._close(maker, "closed", None)
        else:
            self._rehold(maker, pm)

    def _touch_book(self, book: Book) -> None:
        self._touched[book.symbol] = book

    # ====================================================================== reporting
    def _emit(
        self, exec_type: str, order: Order, reason: str | None = None, fill: Fill | None = None
    ) -> None:
        if order.account != self.market_account:
            self._execs.append(ExecEvent(exec_type, self._snapshot(order), self._now, reason, fill))

    def _snapshot(self, order: Order) -> OrderState:
        inst = self.instruments[order.symbol]
        pm = self.accounts.pair(order.symbol)
        avg = None
        if order.filled:
            avg = (Decimal(order.cost) / order.filled).scaleb(-inst.price_precision)
            avg = avg.quantize(Decimal(1).scaleb(-inst.price_precision - 4), ROUND_HALF_EVEN)
        return OrderState(
            txid=order.txid,
            account=order.account,
            symbol=order.symbol,
            side=order.side,
            ord_type=order.ord_type,
            price=order.price,
            qty=order.qty,
            filled=order.filled,
            cost=from_scaled(order.cost, inst.price_precision + inst.qty_precision),
            fee=pm.fee_decimal(order.fee_in_base, order.fee_units),
            fee_asset=pm.base if order.fee_in_base else pm.quote,
            avg_price=avg,
            status=order.status,
            opentm=order.opentm,
            closetm=order.closetm,
            time_in_force=order.time_in_force,
            expire_at=order.expire_at,
            post_only=order.post_only,
            fee_in_base=order.fee_in_base,
            stptype=order.stptype,
            cl_ord_id=order.cl_ord_id,
            userref=order.userref,
            reason=order.reason,
            amended=order.amended,
            trades=tuple(order.trades),
        )
