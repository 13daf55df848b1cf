"""A test harness for strategies: drive one with market data and fills, inspect its commands.

This module owns ``FakeContext`` (a complete in-memory ``Context``: orders, positions,
balances, books, timers and metrics, with no engine, risk gate or exchange behind it; its
``place``, ``amend`` and ``cancel`` are ``Context``'s own, so it records the very commands
the daemon submits, ``bot.execution.commands``) and ``StrategyHarness``, which runs a
strategy on it through the real ``StrategyRunner`` and plays the exchange: it
acknowledges, amends, cancels and fills orders. Use it in your own unit tests; it needs no
event loop, no network and no mock::

    h = StrategyHarness(MyStrategy, {"size": "0.01"}, symbols=("BTC/USD",))
    h.quote("30000", "30010")            # a one-level book: on_book
    (bid,) = h.open_orders(side="buy")
    h.fill(bid)                           # on_fill, then on_order (FILLED)
    h.advance(5)                          # the fake clock; due timers fire on time
    assert h.ctx.position("BTC/USD") == Decimal("0.01")

``with ctx.batch():`` runs as on the daemon (``h.ctx.batches`` lists each block's commands,
cancels first). Spot has no batch amend, so ``ctx.amend`` in a block goes at once; with
``batch_amends=True`` the harness plays Kraken Futures' rule instead: the amend is accepted
at once (True) and goes with the block, after its cancels and before its places.

By default (``auto_settle``) every request is settled after each event the harness
delivers: new orders are acknowledged (NEW), amends and cancels confirmed. With
``auto_settle=False`` orders wait until ``settle``, ``ack``, ``reject``, ``confirm_amend``
or ``confirm_cancel``. Time moves only through ``advance`` (a ``FakeClock``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Generic, Literal, TypeVar

from bot.config import validate_params
from bot.core.clock import FakeClock
from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.orders import Fill, OrderState, fill_price, new_cl_ord_id, transition
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.kraken.protocol import Ticker, Trade
from bot.market.book import BookView
from bot.strategy import (
    BookSnapshot,
    Context,
    InstrumentInfo,
    InvalidIntent,
    OrderHandle,
    Params,
    Strategy,
    StrategyError,
    params_class_of,
)
from bot.strategy.batch import ABORTED, BatchCommand, OrderBatch
from bot.strategy.runner import StrategyRunner, Timers, check_metric_name

__all__ = ["DEFAULT_INSTRUMENTS", "FakeContext", "StrategyHarness"]

DEFAULT_INSTRUMENTS: Final = (
    Instrument(
        "BTC/USD",
        "BTC",
        "USD",
        price_precision=1,
        qty_precision=8,
        qty_min=10_000,
        cost_min=Decimal("0.5"),
    ),
    Instrument(
        "ETH/USD",
        "ETH",
        "USD",
        price_precision=2,
        qty_precision=8,
        qty_min=100_000,
        cost_min=Decimal("0.5"),
    ),
)
"""BTC/USD (tick 0.1, lot 1e-8, minimum 0.0001) and ETH/USD (tick 0.01, minimum 0.001)."""

Num = Decimal | int | str
OrderRef = OrderHandle | PlaceOrder | str
S = TypeVar("S", bound=Strategy[Any])
_MAX_SETTLE_ROUNDS: Final = 1000


def _accept_amend(command: AmendOrder) -> bool:
    """The harness's pre-trade stage for an amend a block holds: no engine, no risk gate,
    so every amend ``Context.amend`` let through is accepted (as outside a block)."""
    return True


class FakeContext(Context):
    """An in-memory ``Context`` for one strategy; the harness plays the exchange on it.

    Every command the strategy submitted is in ``commands``; ``gauges`` and ``counters``
    hold its custom metrics by ``(name, symbol)``; ``requests`` holds the commands that
    await the exchange (the harness answers them).
    """

    def __init__(
        self,
        name: str,
        symbols: Sequence[str],
        instruments: Iterable[Instrument] = DEFAULT_INSTRUMENTS,
        *,
        clock: FakeClock | None = None,
        balances: Mapping[str, Num] | None = None,
        seed: int = 0,
        batch_amends: bool = False,
    ) -> None:
        """``batch_amends``: an amend inside ``ctx.batch()`` waits for the block's end, as on
        Kraken Futures (``batchorder``); else it goes at once, as on spot."""
        self._instruments = InstrumentTable(instruments)
        self._infos: dict[str, InstrumentInfo] = {}
        self.clock = clock or FakeClock()
        super().__init__(name, symbols, self.clock)
        self.timers = Timers(self.clock)
        self._random = random.Random(seed)
        self.handles: dict[str, OrderHandle] = {}
        self.commands: list[Command] = []
        self.requests: list[Command] = []
        self.batches: list[tuple[Command, ...]] = []  # each ``ctx.batch()`` block's commands
        hold = _accept_amend if batch_amends else None
        self._batch = OrderBatch(self._send_batch, self._drop_batch, hold)
        self._positions = {symbol: Decimal(0) for symbol in self._symbols}
        self._balances = {k: Decimal(v) for k, v in (balances or {}).items()}
        self.books: dict[str, BookSnapshot] = {}
        self.gauges: dict[tuple[str, str | None], Decimal | float] = {}
        self.counters: dict[tuple[str, str | None], int] = {}
        self.ready: dict[str, bool] = {}  # ``venue_ready``: a venue set False is down
        for symbol in self._symbols:
            self.scaled_instrument(symbol)

    # -- Context --------------------------------------------------------------------------

    def _instrument(self, symbol: str) -> Instrument:
        if symbol not in self._symbols:
            mine = ", ".join(self._symbols)
            raise InvalidIntent("symbol", f"{symbol!r} is not one of this strategy's ({mine})")
        return self.scaled_instrument(symbol)

    def _next_cl_ord_id(self) -> str:
        return new_cl_ord_id(self._random.randbytes)

    def _track(self, handle: OrderHandle) -> None:
        self.handles[handle.cl_ord_id] = handle

    def _submit(self, command: Command) -> bool:
        if type(command) is AmendOrder and self._batch.holds_amends:
            return self._batch.hold(command)  # recorded when the block ends
        if self._batch.take(command):
            return True  # recorded when the ``with ctx.batch():`` block ends
        self.commands.append(command)
        self.requests.append(command)
        return True

    def batch(self) -> OrderBatch:
        return self._batch

    def _send_batch(self, commands: list[BatchCommand]) -> None:
        self.batches.append(tuple(commands))
        self.commands += commands
        self.requests += commands

    def _drop_batch(self, commands: list[BatchCommand]) -> None:
        now = self.clock.time_ns()
        for command in commands:
            handle = self.handles[command.cl_ord_id]
            if type(command) is PlaceOrder:
                handle.update(transition(command.order, OrderState.REJECTED, now_ns=now,
                                         reason=ABORTED.reason))  # fmt: skip
            else:
                handle.update(command.order)  # the cancel's or the amend's flag undone

    def _cancelling(self, cl_ord_id: str) -> bool:
        return any(type(c) is CancelOrder and c.cl_ord_id == cl_ord_id for c in self.requests)

    def _invalid(self, action: str, error: InvalidIntent, symbol: str, **fields: Any) -> None:
        pass  # raised to the strategy: the harness counts nothing

    def open_orders(self, symbol: str | None = None) -> tuple[OrderHandle, ...]:
        return tuple(h for h in self.handles.values() if h.is_open and symbol in (None, h.symbol))

    def order(self, cl_ord_id: str) -> OrderHandle | None:
        return self.handles.get(cl_ord_id)

    def position(self, symbol: str) -> Decimal:
        return self._positions.get(symbol, Decimal(0))

    def positions(self) -> Mapping[str, Decimal]:
        return MappingProxyType(dict(self._positions))

    def balance(self, asset: str) -> Decimal:
        return self._balances.get(asset, Decimal(0))

    def balances(self) -> Mapping[str, Decimal]:
        return MappingProxyType(dict(self._balances))

    def book(self, symbol: str) -> BookSnapshot | None:
        return self.books.get(symbol)

    def instrument(self, symbol: str) -> InstrumentInfo:
        info = self._infos.get(symbol)
        if info is None:
            info = self._infos[symbol] = InstrumentInfo.of(self.scaled_instrument(symbol))
        return info

    def scaled_instrument(self, symbol: str) -> Instrument:
        """The daemon's ``Instrument`` of ``symbol`` (scaled ints): the harness's, not the
        strategy's (``instrument`` is the strategy's view, in Decimals)."""
        inst = self._instruments.lookup(symbol)
        if inst is None:
            raise StrategyError(
                f"no instrument for {symbol!r} (known: {', '.join(self._instruments)})"
            )
        return inst

    def venue_ready(self, venue: str) -> bool:
        return self.ready.get(venue, True)

    def set_timer(self, name: str, delay_s: float, repeat: bool = False) -> None:
        self.timers.set(name, delay_s, repeat)

    def cancel_timer(self, name: str) -> bool:
        return self.timers.cancel(name)

    def metric(self, name: str, value: Decimal | float, *, symbol: str | None = None) -> None:
        self.gauges[check_metric_name(name), symbol] = value

    def count(self, name: str, n: int = 1, *, symbol: str | None = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise StrategyError(f"counter {name!r}: n must be an int >= 0, got {n!r}")
        key = (check_metric_name(name), symbol)
        self.counters[key] = self.counters.get(key, 0) + n

    # -- the exchange's side --------------------------------------------------------------

    def handle(self, order: OrderRef) -> OrderHandle:
        """One of this strategy's orders, by handle, ``cl_ord_id`` or its ``PlaceOrder``."""
        key = order if isinstance(order, str) else order.cl_ord_id
        handle = self.handles.get(key)
        if handle is None:
            raise StrategyError(f"{key!r} is not one of this strategy's orders")
        return handle

    def apply_fill(self, handle: OrderHandle, fill: Fill) -> None:
        """Book a fill: the strategy's position and the account's balances."""
        inst = self.scaled_instrument(fill.symbol)
        qty, sign = inst.qty_decimal(fill.qty), 1 if fill.side == "buy" else -1
        cost = from_scaled(fill.price * fill.qty, fill.price_precision + fill.qty_precision)
        self._positions[fill.symbol] = self.position(fill.symbol) + sign * qty
        self._balances[inst.base] = self.balance(inst.base) + sign * qty
        self._balances[inst.quote] = self.balance(inst.quote) - sign * cost - fill.fee


class StrategyHarness(Generic[S]):
    """One strategy on a ``FakeContext``, run by a real ``StrategyRunner`` (see module doc).

    ``params`` is a params instance, or a mapping validated like the YAML's ``params:``
    (a ``ConfigError`` names the bad key). Prices and quantities may be given as
    ``Decimal``, ``int`` or ``str``. ``symbol`` defaults to the first symbol.
    ``batch_amends=True`` plays Kraken Futures' batch rule (``FakeContext``).
    """

    def __init__(
        self,
        strategy_cls: type[S],
        params: Params | Mapping[str, Any] | None = None,
        *,
        name: str = "test",
        symbols: Sequence[str] = ("BTC/USD",),
        instruments: Iterable[Instrument] = DEFAULT_INSTRUMENTS,
        balances: Mapping[str, Num] | None = None,
        clock: FakeClock | None = None,
        max_errors: int = 10,
        auto_settle: bool = True,
        start: bool = True,
        batch_amends: bool = False,
    ) -> None:
        self.clock = clock or FakeClock()
        self.ctx = FakeContext(
            name, symbols, instruments, clock=self.clock, balances=balances,
            batch_amends=batch_amends,
        )  # fmt: skip
        if not isinstance(params, Params):
            params = validate_params(params_class_of(strategy_cls), params or {}, f"{name}.params")
        self.strategy: S = strategy_cls(self.ctx, params)
        self.runner = StrategyRunner(
            self.strategy, timers=self.ctx.timers, clock=self.clock, max_errors=max_errors
        )
        self.auto_settle = auto_settle
        self._seq = 0
        if start:
            self.start()

    # -- lifecycle and market data --------------------------------------------------------

    def start(self) -> None:
        self.runner.start()
        self._settled()

    def stop(self) -> None:
        self.runner.stop()
        self._settled()

    def set_params(self, params: Params | Mapping[str, Any]) -> None:
        if not isinstance(params, Params):
            cls = params_class_of(type(self.strategy))
            params = validate_params(cls, params, f"{self.ctx.name}.params")
        self.runner.update_params(params)
        self._settled()

    def _symbol(self, symbol: str | None) -> str:
        return self.ctx.symbols[0] if symbol is None else symbol

    def book(
        self,
        bids: Iterable[tuple[Num, Num]],
        asks: Iterable[tuple[Num, Num]],
        symbol: str | None = None,
    ) -> BookSnapshot:
        """A (valid) book: levels in any order, best first after sorting; ``on_book``."""
        sym = self._symbol(symbol)
        inst = self.ctx.scaled_instrument(sym)
        b = sorted(((inst.price(p), inst.qty(q)) for p, q in bids), reverse=True)
        a = sorted((inst.price(p), inst.qty(q)) for p, q in asks)
        self._seq += 1
        view = BookView(sym, True, f"t{self._seq}", inst.price_precision, tuple(b), tuple(a))
        snapshot = self.ctx.books[sym] = BookSnapshot(view, InstrumentInfo.of(inst))
        self.runner.book(view)
        self._settled()
        return snapshot

    def quote(
        self, bid: Num, ask: Num, bid_qty: Num = 1, ask_qty: Num = 1, symbol: str | None = None
    ) -> BookSnapshot:
        """A one-level book: ``bid_qty`` at ``bid``, ``ask_qty`` at ``ask``."""
        return self.book([(bid, bid_qty)], [(ask, ask_qty)], symbol)

    def book_invalid(self, symbol: str | None = None) -> None:
        """The feed lost the book (gap, checksum mismatch): ``on_book_invalid``."""
        sym = self._symbol(symbol)
        old = self.ctx.books.get(sym)
        if old is not None:
            self.ctx.books[sym] = BookSnapshot(replace(old.view, valid=False), old.instrument)
        self.runner.book_invalid(sym)
        self._settled()

    def book_valid(self, symbol: str | None = None) -> None:
        """The book verified again: ``on_book_valid`` (send the new book with ``book``)."""
        self.runner.book_valid(self._symbol(symbol))
        self._settled()

    def trade(
        self,
        price: Num,
        qty: Num = "0.01",
        side: str = "buy",
        symbol: str | None = None,
        *,
        snapshot: bool = False,
    ) -> None:
        """A public trade: ``on_trade``."""
        sym = self._symbol(symbol)
        inst = self.ctx.scaled_instrument(sym)
        self._seq += 1
        trade = Trade(sym, side, inst.price(price), inst.qty(qty), "limit", self._seq, "")
        self.runner.trade(trade, snapshot)
        self._settled()

    def ticker(
        self, bid: Num, ask: Num, last: Num | None = None, symbol: str | None = None
    ) -> None:
        """A ticker update (24 h statistics zero): ``on_ticker``."""
        sym = self._symbol(symbol)
        inst = self.ctx.scaled_instrument(sym)
        p_bid, p_ask = inst.price(bid), inst.price(ask)
        p_last = p_bid if last is None else inst.price(last)
        zero = Decimal(0)
        ticker = Ticker(sym, False, p_bid, 0, p_ask, 0, p_last, 0, zero, 0, 0, zero, zero)
        self.runner.ticker(ticker)
        self._settled()

    def advance(self, seconds: float) -> int:
        """Move the clock ``seconds`` on, firing each timer at its due time; how many fired."""
        target = self.clock.monotonic() + seconds
        fired = 0
        while self.runner.running:
            due = self.ctx.timers.next_due()
            if due is None or due > target:
                break
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
            count = self.runner.fire_timers()
            if count == 0:
                break
            fired += count
            self._settled()
        self.clock.advance(max(target - self.clock.monotonic(), 0.0))
        return fired

    # -- the exchange -------------------------------------------------------------------------

    def settle(self) -> None:
        """Answer every request: acknowledge new orders, apply amends, confirm cancels."""
        for _ in range(_MAX_SETTLE_ROUNDS):
            if not self.ctx.requests:
                return
            requests, self.ctx.requests = self.ctx.requests, []
            for command in requests:
                handle = self.ctx.handle(command.cl_ord_id)
                if type(command) is PlaceOrder and handle.state is OrderState.PENDING_NEW:
                    self.ack(handle)
                elif type(command) is AmendOrder and handle.order.amend_pending:
                    self.confirm_amend(handle, command)
                elif type(command) is CancelOrder and handle.is_open:
                    self.confirm_cancel(handle)
        raise StrategyError(f"the strategy kept sending orders for {_MAX_SETTLE_ROUNDS} rounds")

    def _settled(self) -> None:
        if self.auto_settle:
            self.settle()

    def _move(self, handle: OrderHandle, state: OrderState, **changes: Any) -> None:
        now = self.clock.time_ns()
        if handle.order.order_id is None and state is not OrderState.REJECTED:
            changes.setdefault("order_id", f"O{handle.cl_ord_id[:5].upper()}-{self._next()}")
        handle.update(transition(handle.order, state, now_ns=now, **changes))
        self.runner.order(handle)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def ack(self, order: OrderRef) -> None:
        """The exchange accepted the order: NEW, ``on_order``."""
        self._move(self.ctx.handle(order), OrderState.NEW)

    def reject(self, order: OrderRef, reason: str = "EOrder:Insufficient funds") -> None:
        """The risk gate or the exchange refused it: REJECTED with ``reason``, ``on_order``."""
        self._move(self.ctx.handle(order), OrderState.REJECTED, reason=reason)

    def confirm_cancel(self, order: OrderRef) -> None:
        """The cancel went through: CANCELED, ``on_order``."""
        self._move(self.ctx.handle(order), OrderState.CANCELED, reason="User requested")

    def expire(self, order: OrderRef) -> None:
        """The order expired (e.g. an IOC order's unfilled rest): EXPIRED, ``on_order``."""
        self._move(self.ctx.handle(order), OrderState.EXPIRED, reason="expired")

    def confirm_amend(self, order: OrderRef, command: AmendOrder | None = None) -> None:
        """Apply the order's last amend (or ``command``): ``on_order``, same state, new
        price/qty."""
        handle = self.ctx.handle(order)
        if command is None:
            command = next(
                c
                for c in reversed(self.ctx.commands)
                if type(c) is AmendOrder and c.cl_ord_id == handle.cl_ord_id
            )
        changes: dict[str, Any] = {"amend_pending": False}
        if command.new_qty is not None:
            changes["qty"] = command.new_qty
        if command.new_price is not None:
            changes["price"] = command.new_price
        self._move(handle, handle.state, **changes)

    def fill(
        self,
        order: OrderRef,
        qty: Num | None = None,
        price: Num | None = None,
        *,
        fee: Num = 0,
        maker: bool = True,
    ) -> Fill:
        """The order traded ``qty`` (default: all that remains) at ``price`` (default: its
        limit; it may have more decimals than the pair, as Kraken's average price of a
        taker order across levels does): position and balances move, then ``on_fill`` and
        ``on_order``."""
        handle = self.ctx.handle(order)
        o = handle.order
        if not o.is_open:
            raise StrategyError(f"{handle.cl_ord_id} is {handle.state}: it cannot fill")
        inst = self.ctx.scaled_instrument(handle.symbol)
        q = o.remaining_qty if qty is None else inst.qty(qty)
        p, pp = o.price, inst.price_precision
        if price is not None:
            p, pp = fill_price(Decimal(price), inst.price_precision)
        if p is None or not 0 < q <= o.remaining_qty:
            raise StrategyError(f"bad fill of {handle!r}: qty {qty}, price {price}")
        seq, filled = self._next(), o.filled_qty + q
        cost = from_scaled(p * q, pp + inst.qty_precision)
        cum_cost = o.cum_cost + cost
        fill = Fill(
            f"E{seq}",
            f"T{seq}",
            o.cl_ord_id,
            o.order_id or f"O{seq}",
            o.symbol,
            o.side,
            p,
            q,
            pp,
            inst.qty_precision,
            cost,
            Decimal(fee),
            inst.quote,
            "m" if maker else "t",
            self.clock.time_ns(),
        )
        state = OrderState.FILLED if filled == o.qty else OrderState.PARTIALLY_FILLED
        avg = cum_cost / inst.qty_decimal(filled)
        changes: dict[str, Any] = {"filled_qty": filled, "cum_cost": cum_cost, "avg_price": avg}
        if o.order_id is None:
            changes["order_id"] = fill.order_id
        handle.update(transition(o, state, now_ns=self.clock.time_ns(), **changes))
        self.ctx.apply_fill(handle, fill)
        self.runner.fill(handle, fill)
        self.runner.order(handle)
        self._settled()
        return fill

    # -- inspection -----------------------------------------------------------------------

    @property
    def commands(self) -> list[Command]:
        """Every command the strategy submitted, in order: what the daemon would submit."""
        return self.ctx.commands

    def placed(self) -> list[PlaceOrder]:
        return [c for c in self.ctx.commands if type(c) is PlaceOrder]

    def amended(self) -> list[AmendOrder]:
        return [c for c in self.ctx.commands if type(c) is AmendOrder]

    def canceled(self) -> list[CancelOrder]:
        return [c for c in self.ctx.commands if type(c) is CancelOrder]

    def clear_commands(self) -> None:
        self.ctx.commands.clear()

    def open_orders(
        self, symbol: str | None = None, side: Literal["buy", "sell"] | None = None
    ) -> list[OrderHandle]:
        """Open orders (on ``symbol``, of ``side``), oldest first."""
        return [o for o in self.ctx.open_orders(symbol) if side in (None, o.side)]

    @property
    def errors(self) -> int:
        return self.runner.errors

    @property
    def halted(self) -> bool:
        return self.runner.halted
