"""The engine-backed strategy ``Context``, and the desk that routes orders and fills.

This module owns ``Desk`` (one per daemon) and ``EngineContext`` (one per strategy):

- **Intents.** ``place`` / ``amend`` / ``cancel`` / ``cancel_all`` return at once. A place is
  checked by ``bot.strategy.checked_order`` (``InvalidIntent`` raised to the strategy), then
  by the ``RiskGate``; a refusal is not raised: the handle turns REJECTED with the gate's
  reason (``max_notional``, ``price_band``...), and the strategy gets ``on_order``. While
  the readiness gate is closed (or the daemon is stopping) a place is refused the same way
  with ``not_ready: waiting for: ...`` (or ``shutting_down``): never queued; and with
  ``rate_limit`` when the pair's trading counter must keep room to cancel the open orders
  (``rate_room``; an amend then returns False). Every refusal, of a place, an amend or a
  cancel, by the desk, the risk gate, Kraken or the engine, goes through one ``Refusals``
  (``bot.strategy.refusals``): counted by source and reason (``krakenbot_rejections_total``) and
  logged at most once per interval with the count of repeats. An accepted intent becomes a
  task in the daemon's ``TaskGroup`` that awaits the ``ExecutionEngine``.
- **Handles.** Every order of ours has one ``OrderHandle``; the engine's ``on_order``
  updates it and tells the owning strategy's runner; ``on_fill`` feeds the ``PositionBook``
  (``apply_fill``), asks the risk gate to ``evaluate`` the loss limits (a breach cancels
  that scope's orders), logs ``order_filled`` and a ``pnl`` line, then ``on_fill``. The
  engine calls ``on_fill`` before the ``on_order`` of the change that shows the fill, with
  the order already updated: the strategy gets ``on_fill`` (its handle showing the fill),
  then ``on_order``, as ``Strategy.on_fill`` promises.
- **Views.** Open orders, positions (the ``PositionBook``), balances (polled by the
  daemon), books (``BookSnapshot`` of the feed's books), instruments. Marks are book mids.

It owns no socket and no task of its own: ``Desk.spawn`` runs coroutines in the TaskGroup
the daemon hands it. It never sends anything but through the engine.
"""

from __future__ import annotations

import asyncio
import operator
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import fields
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from structlog.typing import FilteringBoundLogger

from bot.core.clock import Clock
from bot.core.eager import EagerSpawner, TaskFactory
from bot.core.errors import BotError, ExchangeError, RiskError
from bot.core.log import get_logger
from bot.execution import orders as o
from bot.execution.engine import OrderUnavailable
from bot.execution.orders import Fill, Order, OrderState
from bot.execution.pnl import PositionBook
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import (
    AmendOrder,
    NewOrder,
    RiskContext,
    RiskDecision,
    RiskGate,
    Transition,
)
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.kraken.system_status import amend_refusal, place_refusal
from bot.market.book import Book
from bot.strategy import (
    BookSnapshot,
    InstrumentInfo,
    InvalidIntent,
    OrderHandle,
    OrderType,
    Side,
    TimeInForce,
    amend_intent,
    checked_order,
)
from bot.strategy.refusals import Action, Refusals
from bot.strategy.runner import StrategyRunner, Timers

if TYPE_CHECKING:
    from bot.execution.engine import ExecutionEngine

__all__ = ["Desk", "DeskMetrics", "EngineContext"]

log = get_logger(component="desk")
_RECENT_DONE: Final = 1000  # done handles kept for ``ctx.order`` after they leave the book
AMEND_COST_MAX: Final = 4.0  # an amend of a young order: 1 + Kraken's largest amend penalty
CANCEL_RESERVE: Final = 8.0  # trading-counter points kept free per open order: its cancel
# An amend costs 1 on the REST call counter too (only AddOrder and CancelOrder are exempt):
# it leaves room for this many other calls (a dead-man's switch refresh, a confirmation).
REST_RESERVE: Final = 2.0


class DeskMetrics(Protocol):
    """What the desk counts (``bot.service.metrics.Metrics`` implements it: the service
    layer's registry sits above the strategy layer, so the desk names what it pushes)."""

    def rejection(self, source: str, strategy: str, action: str, reason: str) -> None: ...

    def order_finished(self, state: OrderState | str) -> None: ...

    def fill(self, fill: Fill, strategy: str = "") -> None: ...

    def strategy_gauge(
        self, strategy: str, name: str, value: Decimal | float, symbol: str | None = None
    ) -> None: ...

    def strategy_count(
        self, strategy: str, name: str, n: int = 1, symbol: str | None = None
    ) -> None: ...


def _dec(value: Decimal) -> str:
    return f"{value.normalize():f}" if value else "0"


class _OpenHandles:
    """The handles of open orders by ``cl_ord_id``, with their counts per symbol and per
    strategy kept in step (read on every intent: no scan of the open orders)."""

    __slots__ = ("by_id", "per_strategy", "per_symbol")

    def __init__(self) -> None:
        self.by_id: dict[str, OrderHandle] = {}
        self.per_symbol: dict[str, int] = {}
        self.per_strategy: dict[str, int] = {}

    def add(self, handle: OrderHandle) -> None:
        if handle.cl_ord_id not in self.by_id:
            self._count(handle, 1)
        self.by_id[handle.cl_ord_id] = handle

    def pop(self, cl_ord_id: str) -> OrderHandle | None:
        handle = self.by_id.pop(cl_ord_id, None)
        if handle is not None:
            self._count(handle, -1)
        return handle

    def get(self, cl_ord_id: str) -> OrderHandle | None:
        return self.by_id.get(cl_ord_id)

    def values(self) -> Iterable[OrderHandle]:
        return self.by_id.values()

    def _count(self, handle: OrderHandle, step: int) -> None:
        for counts, key in (
            (self.per_symbol, handle.symbol),
            (self.per_strategy, handle.order.strategy),
        ):
            n = counts.get(key, 0) + step
            if n:
                counts[key] = n
            else:
                del counts[key]


class Desk:
    """Routes strategies' intents to the risk gate and the engine, and orders and fills back.

    ``books`` reads the public feed's books; ``spawn`` is set by the daemon to its
    TaskGroup's ``create_task`` once it runs (before that, no intent is accepted).
    """

    def __init__(
        self,
        *,
        engine: ExecutionEngine,
        risk: RiskGate,
        positions: PositionBook,
        instruments: InstrumentTable,
        books: Callable[[], Mapping[str, Book]],
        readiness: ReadinessGate,
        clock: Clock,
        metrics: DeskMetrics | None = None,
        headroom: Callable[[str], float] | None = None,
        refusals: Refusals | None = None,
    ) -> None:
        self.engine, self.risk, self.positions = engine, risk, positions
        self.refusals = refusals or Refusals(
            clock, log, on_count=None if metrics is None else metrics.rejection
        )
        self._headroom = headroom
        self.instruments, self._books, self.readiness = instruments, books, readiness
        self.clock, self.metrics = clock, metrics
        self.runners: dict[str, StrategyRunner] = {}
        self.contexts: dict[str, EngineContext] = {}
        self.balances: dict[str, Decimal] = {}
        self.accepting = True  # False once the daemon stops: places are refused
        # The exchange's trading state (the public feed's ``status``), set by the daemon;
        # None: not known here (bot.kraken.system_status).
        self.exchange_status: Callable[[], str | None] = _no_status
        self._spawn_task: TaskFactory | None = None
        self._spawner: EagerSpawner | None = None
        self.pending: set[asyncio.Task[None]] = set()
        self.cancels: set[str] = set()  # cl_ord_ids with a cancel task in flight
        self._open = _OpenHandles()  # open orders' handles, counted by symbol and strategy
        self._done: OrderedDict[str, OrderHandle] = OrderedDict()
        # symbol -> (timestamp, checksum, mid) of the book state ``mark`` last saw
        self._mids: dict[str, tuple[str, int, Decimal]] = {}
        # cl_ord_id -> the order its strategy last saw in ``on_order``, kept when ``on_fill``
        # moved the handle on first (the engine's ``on_order`` for that change follows)
        self._seen: dict[str, Order] = {}
        engine.on_order = self.on_order
        engine.on_fill = self.on_fill

    # -- setup -----------------------------------------------------------------------------

    def context(self, name: str, symbols: tuple[str, ...]) -> EngineContext:
        ctx = EngineContext(self, name, symbols)
        self.contexts[name] = ctx
        return ctx

    def add_runner(self, runner: StrategyRunner) -> None:
        self.runners[runner.name] = runner

    def adopt_open_orders(self) -> list[OrderHandle]:
        """Handles for the engine's open orders (from the store, after reconciliation)."""
        return [self._handle(order) for order in self.engine.open_orders()]

    # -- tasks -----------------------------------------------------------------------------

    @property
    def spawn_task(self) -> TaskFactory | None:
        """The daemon's ``TaskGroup.create_task`` once it runs (None before, and after
        the daemon stopped: then a task kept ready for the next intent is cancelled)."""
        return self._spawn_task

    @spawn_task.setter
    def spawn_task(self, create_task: TaskFactory | None) -> None:
        if self._spawner is not None:
            self._spawner.close()
        self._spawn_task = create_task
        self._spawner = None if create_task is None else EagerSpawner(create_task)
        if self._spawner is not None:
            self._spawner.prime()  # the first order's task, made before it is needed

    def spawn(self, coro: Coroutine[Any, Any, None]) -> bool:
        """Run ``coro`` as a task of the daemon's group, its first step now (``bot.core.eager``:
        an order's request is written before ``on_book`` returns, and its timeouts and
        cancellation are the order task's, never the caller's). False: not started (no
        group yet, or it is closing), ``coro`` closed."""
        if self._spawner is None:
            coro.close()
            return False
        try:
            task = self._spawner.start(coro)
        except RuntimeError:  # the TaskGroup is shutting down: nothing was started
            return False
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return True

    async def drain(self) -> None:
        """Wait for every intent in flight (bound it with ``asyncio.timeout``)."""
        while self.pending:
            await asyncio.wait(set(self.pending))

    # -- views -----------------------------------------------------------------------------

    def handles(self, strategy: str | None = None, symbol: str | None = None) -> list[OrderHandle]:
        return [
            h
            for h in self._open.values()
            if (strategy is None or h.order.strategy == strategy)
            and (symbol is None or h.symbol == symbol)
            and h.is_open
        ]

    def handle(self, cl_ord_id: str) -> OrderHandle | None:
        return self._open.get(cl_ord_id) or self._done.get(cl_ord_id)

    def book(self, symbol: str) -> Book | None:
        return self._books().get(symbol)

    def mids(self) -> dict[str, Decimal]:
        """The mid of every valid book (from ``mark``'s cache while a book is unchanged)."""
        mids: dict[str, Decimal] = {}
        cache = self._mids
        for symbol, book in self._books().items():
            if not book.valid:
                continue
            seen = cache.get(symbol)
            if seen is not None and seen[0] == book.timestamp and seen[1] == book.checksum:
                mid: Decimal | None = seen[2]
            else:
                mid = book.mid()
            if mid is not None:
                mids[symbol] = mid
        return mids

    def mark(self, symbol: str, book: Book) -> None:
        """A book changed: its mid is the mark of positions in ``symbol``."""
        mid = book.mid() if book.valid else None
        if mid is not None:
            self._mids[symbol] = (book.timestamp, book.checksum, mid)
            if mid > 0:
                self.positions.mark(symbol, mid)

    def rate_room(self, symbol: str, cost: float, opening: int = 0) -> bool:
        """Whether ``symbol``'s trading counter takes ``cost`` now and still leaves room to
        cancel every open order on it (plus ``opening`` new ones) at the youngest-order
        penalty: a shutdown or a pull never waits behind quoting."""
        if self._headroom is None:
            return True
        orders = self._open.per_symbol.get(symbol, 0)
        return self._headroom(symbol) >= cost + CANCEL_RESERVE * (orders + opening)

    def rest_room(self, cost: float) -> bool:
        """Whether the REST call counter takes ``cost`` now and keeps ``REST_RESERVE``: an
        amend is held back rather than queued behind the counter (its price would be stale
        by the time it leaves) or in the way of the dead-man's switch's refresh."""
        return self.engine.rest_headroom() >= cost + REST_RESERVE

    def risk_context(self) -> RiskContext:
        return RiskContext(self.mids(), dict(self._open.per_strategy), len(self._open.by_id))

    # -- the engine's callbacks ------------------------------------------------------------

    def _handle(self, order: Order) -> OrderHandle:
        cid = order.cl_ord_id
        handle = self._open.get(cid) or self._done.get(cid)
        if handle is None:
            handle = OrderHandle(order)
        else:
            handle.update(order)
        if order.is_open:
            self._open.add(handle)
        else:
            self._open.pop(cid)
            self._done[cid] = handle
            self._done.move_to_end(cid)
            while len(self._done) > _RECENT_DONE:
                self._done.popitem(last=False)
        return handle

    def on_order(self, order: Order) -> None:
        """The engine's ``on_order``: update the handle, tell its strategy."""
        before = self.handle(order.cl_ord_id)
        was = self._seen.pop(order.cl_ord_id, None) or (None if before is None else before.order)
        handle = self._handle(order)
        if was is not None and _same(was, order):
            return  # a restamp (the engine's own PENDING_NEW record): nothing for the strategy
        if was is not None and was.is_open and not order.is_open and self.metrics is not None:
            self.metrics.order_finished(order.state)
        if order.state is OrderState.NEW and (was is None or was.state is not OrderState.NEW):
            log.info(
                "order_placed", strategy=order.strategy, cl_ord_id=order.cl_ord_id,
                order_id=order.order_id, symbol=order.symbol, side=order.side, qty=_dec(handle.qty),
                price=None if handle.price is None else _dec(handle.price),
            )  # fmt: skip
        elif order.state is OrderState.REJECTED and (was is None or was.state is not order.state):
            self.refusals.refuse(
                "place", "exchange", order.reason, strategy=order.strategy,
                symbol=order.symbol, cl_ord_id=order.cl_ord_id, side=order.side,
            )  # fmt: skip
        runner = self.runners.get(order.strategy)
        if runner is not None:
            runner.order(handle)

    def on_fill(self, fill: Fill) -> None:
        """The engine's ``on_fill``: positions, loss limits, log, then the strategy."""
        order = self.engine.order(fill.cl_ord_id)
        strategy = order.strategy if order is not None else ""
        inst = self.instruments.lookup(fill.symbol)
        realised = Decimal(0)
        if inst is not None:
            realised = self.positions.apply_fill(
                fill.symbol, inst, fill.side,  # type: ignore[arg-type]
                fill.qty, fill.price, fee=fill.fee,
                fee_asset=fill.fee_asset if fill.fee else "", strategy=strategy, ts_ns=fill.ts_ns,
                price_precision=fill.price_precision,
            )  # fmt: skip
        if self.metrics is not None:
            self.metrics.fill(fill, strategy)
        log.info(
            "order_filled", strategy=strategy, cl_ord_id=fill.cl_ord_id, symbol=fill.symbol,
            side=fill.side, qty=_dec(from_scaled(fill.qty, fill.qty_precision)),
            price=_dec(from_scaled(fill.price, fill.price_precision)),
            fee=_dec(fill.fee), maker=fill.liquidity == "m", realised=_dec(realised),
        )  # fmt: skip
        self.apply_transitions(self.risk.evaluate())
        self.log_pnl(strategy)
        handle = self.handle(fill.cl_ord_id)
        if order is not None:  # the engine's order already shows the fill: so does the handle
            if handle is not None and not _same(handle.order, order):
                self._seen.setdefault(order.cl_ord_id, handle.order)  # for on_order, next
            handle = self._handle(order)
        runner = self.runners.get(strategy)
        if runner is not None and handle is not None:
            runner.fill(handle, fill)

    def apply_transitions(self, transitions: tuple[Transition, ...]) -> None:
        """Log risk state changes; cancel the orders of a scope that must stop."""
        for t in transitions:
            log.warning("risk_state_changed", **t.log_fields())
            if not t.cancel_orders:
                continue
            for name, ctx in self.contexts.items():
                if t.strategy is None or t.strategy == name:
                    ctx.cancel_all()

    # -- pnl ---------------------------------------------------------------------------------

    def pnl_rows(self, strategy: str | None = None) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for name in self.positions.strategies():
            if strategy is not None and name != strategy:
                continue
            rows.extend({
                    "strategy": name, "symbol": pos.symbol, "position": _dec(pos.qty),
                    "realised": _dec(pos.realised), "unrealised": _dec(pos.unrealised),
                    "fees": _dec(pos.fees), "quote": pos.quote,
                } for pos in self.positions.positions(name))  # fmt: skip
        return rows

    def periodic(self) -> None:
        """Every few seconds: the loss limits against the latest marks, then ``pnl`` lines,
        and the counts of refusals whose repeats were not logged yet."""
        self.apply_transitions(self.risk.evaluate())
        self.log_pnl()
        self.refusals.flush()

    def log_pnl(self, strategy: str | None = None) -> None:
        """One ``pnl`` line per strategy and symbol (a flat strategy: one line of zeros),
        and with no ``strategy`` the totals per quote currency."""
        rows = self.pnl_rows(strategy)
        for row in rows:
            log.info("pnl", **row)
        names = [strategy] if strategy is not None else list(self.runners)
        for name in names:
            if not any(row["strategy"] == name for row in rows):
                log.info("pnl", strategy=name, symbol="*", position="0", realised="0",
                         unrealised="0", fees="0")  # fmt: skip
        if strategy is None:
            for quote in self.positions.quotes():
                log.info(
                    "pnl_total", quote=quote,
                    realised=_dec(self.positions.realised(quote)),
                    unrealised=_dec(self.positions.unrealised(quote)),
                    daily=_dec(self.positions.daily_pnl(quote)),
                )  # fmt: skip


class EngineContext:
    """One strategy's ``bot.strategy.Context`` on the desk; see the module docstring."""

    def __init__(self, desk: Desk, name: str, symbols: tuple[str, ...]) -> None:
        self._desk, self._name, self._symbols = desk, name, tuple(symbols)
        self._log: FilteringBoundLogger = get_logger(strategy=name)
        self.timers = Timers(desk.clock)
        self._infos: dict[str, tuple[Instrument, InstrumentInfo]] = {}  # views, per symbol

    @property
    def name(self) -> str:
        return self._name

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def log(self) -> FilteringBoundLogger:
        return self._log

    def monotonic(self) -> float:
        return self._desk.clock.monotonic()

    def time_ns(self) -> int:
        return self._desk.clock.time_ns()

    # -- intents ---------------------------------------------------------------------------

    def place(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None = None,
        *,
        order_type: OrderType = "limit",
        time_in_force: TimeInForce = "GTC",
        post_only: bool = False,
    ) -> OrderHandle:
        desk = self._desk
        inst = self._instrument(symbol)
        try:
            q, p = checked_order(
                inst, side, qty, price,
                order_type=order_type, time_in_force=time_in_force, post_only=post_only,
            )  # fmt: skip
        except InvalidIntent as exc:
            self._refused("place", "intent", exc.reason, symbol, detail=str(exc), side=side)
            raise
        order = o.new_order(
            cl_ord_id=desk.engine.new_cl_ord_id(self._name), instrument=inst, side=side,
            order_type=order_type,
            qty=q, price=p, strategy=self._name, now_ns=self.time_ns(),
            time_in_force=time_in_force, post_only=post_only,
        )  # fmt: skip
        handle = OrderHandle(order)
        refusal: tuple[str, str, str] | None = None  # source, reason, detail
        if not desk.accepting or desk.spawn_task is None:
            refusal = ("desk", "shutting_down", "the daemon is stopping")
        elif (why := place_refusal(desk.exchange_status(), order_type, post_only)) is not None:
            refusal = ("desk", "exchange_status", why)  # the exchange's state would refuse it
        elif not desk.readiness.is_open:
            refusal = ("desk", "not_ready", "waiting for: " + ", ".join(desk.readiness.failing()))
        elif not desk.rate_room(symbol, 1.0, opening=1):
            refusal = ("desk", "rate_limit", _RATE_LIMIT)
        else:
            decision = desk.risk.check(NewOrder(self._name, inst, side, q, p), desk.risk_context())
            desk.apply_transitions(decision.transitions)
            refusal = _refusal(decision)
        if refusal is not None:
            self._refuse(handle, *refusal)
            return handle
        desk._open.add(handle)
        if not desk.spawn(self._send_place(handle, post_only)):  # the group is closing
            desk._open.pop(handle.cl_ord_id)
            self._refuse(handle, "desk", "shutting_down", "the daemon is stopping")
        return handle

    def _refused(
        self, action: Action, source: str, reason: str, symbol: str, **fields: Any
    ) -> None:
        self._desk.refusals.refuse(
            action, source, reason, strategy=self._name, symbol=symbol, **fields
        )

    def _refuse(self, handle: OrderHandle, source: str, reason: str, detail: str) -> None:
        """A place refused before it was sent: REJECTED with ``reason``, then ``on_order``."""
        now = self.time_ns()
        handle.update(o.transition(handle.order, OrderState.REJECTED, now_ns=now, reason=reason))
        self._desk._done[handle.cl_ord_id] = handle
        self._refused(
            "place", source, reason, handle.symbol,
            cl_ord_id=handle.cl_ord_id, side=handle.side, detail=detail,
        )  # fmt: skip
        runner = self._desk.runners.get(self._name)
        if runner is not None:
            asyncio.get_running_loop().call_soon(runner.order, handle)

    async def _send_place(self, handle: OrderHandle, post_only: bool) -> None:
        # Spawned by ``place`` right after it found the gate open, and started eagerly
        # (``Desk.spawn``): the engine's ``place`` runs in that same step (``gate_asked``).
        order = handle.order
        try:
            await self._desk.engine.place(
                order.symbol, order.side, order.qty, order.price, order_type=order.order_type,
                time_in_force=order.time_in_force, post_only=post_only, strategy=self._name,
                cl_ord_id=order.cl_ord_id, prepared=order, gate_asked=True,
            )  # fmt: skip
        except RiskError as exc:  # the gate closed meanwhile: never sent
            if self._desk.engine.order(order.cl_ord_id) is None:
                self._desk._open.pop(order.cl_ord_id)
                self._refuse(handle, "desk", exc.reason, str(exc))
        except BotError as exc:
            self._log.error("order_place_failed", cl_ord_id=order.cl_ord_id, error=str(exc))
            if self._desk.engine.order(order.cl_ord_id) is None:  # never recorded: not sent
                self._desk._open.pop(order.cl_ord_id)
                self._refuse(handle, "engine", "error", str(exc))
            else:
                self._resync(handle)

    def _resync(self, handle: OrderHandle) -> None:
        current = self._desk.engine.order(handle.cl_ord_id)
        if current is not None:
            self._desk._handle(current)

    def _own(self, order: OrderHandle | str) -> OrderHandle:
        cid = order if isinstance(order, str) else order.cl_ord_id
        handle = self._desk.handle(cid)
        if handle is None or handle.order.strategy != self._name:
            raise InvalidIntent("order", f"{cid} is not an order of strategy {self._name}")
        return handle

    def amend(
        self, order: OrderHandle | str, *, qty: Decimal | None = None, price: Decimal | None = None
    ) -> bool:
        handle = self._own(order)
        if not handle.is_live or handle.order.order_id is None:
            return False
        cid, symbol = handle.cl_ord_id, handle.symbol
        if not self._desk.accepting:
            self._refused("amend", "desk", "shutting_down", symbol, cl_ord_id=cid)
            return False
        current = handle.order  # the exchange's state would refuse the order as it stands
        why = amend_refusal(self._desk.exchange_status(), current.order_type, current.post_only)
        if why is not None:
            self._refused("amend", "desk", "exchange_status", symbol, cl_ord_id=cid, detail=why)
            return False
        if not self._desk.rate_room(symbol, AMEND_COST_MAX):
            self._refused("amend", "desk", "rate_limit", symbol, cl_ord_id=cid, detail=_RATE_LIMIT)
            return False
        if not self._desk.rest_room(1.0):
            self._refused("amend", "desk", "rate_limit", symbol, cl_ord_id=cid, detail=_REST_LIMIT)
            return False
        inst = self._instrument(symbol)
        try:
            intent = amend_intent(
                strategy=self._name, order=handle.order, instrument=inst, qty=qty, price=price
            )
        except InvalidIntent as exc:
            self._refused("amend", "intent", exc.reason, symbol, cl_ord_id=cid, detail=str(exc))
            raise
        q = None if intent.qty is None else inst.qty(intent.qty)
        p = None if intent.price is None else inst.price(intent.price)
        current = handle.order
        decision = self._desk.risk.check(
            AmendOrder(
                self._name, inst, current.side, current.qty, current.price,  # type: ignore[arg-type]
                new_qty=q, new_price=p, filled_qty=current.filled_qty,
            ),
            self._desk.risk_context(),
        )  # fmt: skip
        self._desk.apply_transitions(decision.transitions)
        refusal = _refusal(decision)
        if refusal is not None:
            source, reason, detail = refusal
            self._refused("amend", source, reason, symbol, cl_ord_id=cid, detail=detail)
            return False
        handle.update(o.request_amend(current, now_ns=self.time_ns()))
        if self._desk.spawn(self._send_amend(handle, q, p)):
            return True
        handle.update(current)  # not sent: as it was
        return False

    async def _send_amend(self, handle: OrderHandle, qty: int | None, price: int | None) -> None:
        try:
            await self._desk.engine.amend(handle.cl_ord_id, qty=qty, price=price)
        except BotError as exc:
            self._engine_refused("amend", handle, exc)
        self._resync(handle)

    def _engine_refused(self, action: Action, handle: OrderHandle, exc: BotError) -> None:
        """Kraken (its error code) or the engine (the order is not live, its fate unknown,
        or the request failed) refused an amend or a cancel that the desk sent on."""
        source, reason = "engine", "unavailable" if isinstance(exc, OrderUnavailable) else "error"
        if isinstance(exc, ExchangeError):
            source, reason = "exchange", exc.code
        self._refused(
            action, source, reason, handle.symbol, cl_ord_id=handle.cl_ord_id, detail=str(exc)
        )

    def cancel(self, order: OrderHandle | str) -> bool:
        handle = self._own(order)
        desk = self._desk
        if not handle.is_open or handle.order.cancel_pending or handle.cl_ord_id in desk.cancels:
            return False
        if handle.order.state is not OrderState.PENDING_NEW or handle.order.order_id:
            handle.update(o.request_cancel(handle.order, now_ns=self.time_ns()))
        desk.cancels.add(handle.cl_ord_id)
        if desk.spawn(self._send_cancel(handle)):
            return True
        desk.cancels.discard(handle.cl_ord_id)  # no task group: the daemon is not running
        self._refused("cancel", "desk", "shutting_down", handle.symbol, cl_ord_id=handle.cl_ord_id)
        return False

    async def _send_cancel(self, handle: OrderHandle) -> None:
        try:
            await self._desk.engine.cancel(handle.cl_ord_id)
        except BotError as exc:
            self._engine_refused("cancel", handle, exc)
        finally:
            self._desk.cancels.discard(handle.cl_ord_id)
        self._resync(handle)

    def cancel_all(self, symbol: str | None = None) -> int:
        return sum(self.cancel(h) for h in self._desk.handles(self._name, symbol))

    # -- views -----------------------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> tuple[OrderHandle, ...]:
        handles = self._desk.handles(self._name, symbol)
        return tuple(sorted(handles, key=lambda h: h.order.created_ns))

    def order(self, cl_ord_id: str) -> OrderHandle | None:
        handle = self._desk.handle(cl_ord_id)
        return handle if handle is not None and handle.order.strategy == self._name else None

    def position(self, symbol: str) -> Decimal:
        pos = self._desk.positions.position(symbol, self._name)
        return Decimal(0) if pos is None else pos.qty

    def positions(self) -> Mapping[str, Decimal]:
        return MappingProxyType(
            {p.symbol: p.qty for p in self._desk.positions.positions(self._name)}
        )

    def balance(self, asset: str) -> Decimal:
        return self._desk.balances.get(asset.upper(), Decimal(0))

    def balances(self) -> Mapping[str, Decimal]:
        return MappingProxyType(dict(self._desk.balances))

    def book(self, symbol: str) -> BookSnapshot | None:
        book = self._desk.book(symbol)
        if book is None or self._desk.instruments.lookup(symbol) is None:
            return None
        return BookSnapshot(book.view(), self.instrument(symbol))

    def instrument(self, symbol: str) -> InstrumentInfo:
        """The pair in Decimals (``InstrumentInfo``), built again only when it changed."""
        inst = self._instrument(symbol)
        known = self._infos.get(symbol)
        if known is None or known[0] is not inst:
            known = self._infos[symbol] = (inst, InstrumentInfo.of(inst))
        return known[1]

    def _instrument(self, symbol: str) -> Instrument:
        """The daemon's ``Instrument`` (scaled ints) of one of the strategy's symbols."""
        if symbol not in self._symbols:
            raise InvalidIntent("symbol", f"{symbol!r} is not one of {self._name}'s symbols")
        inst = self._desk.instruments.lookup(symbol)
        if inst is None:
            raise InvalidIntent("symbol", f"{symbol!r}: no such instrument on the venue")
        return inst

    # -- timers and metrics ----------------------------------------------------------------

    def set_timer(self, name: str, delay_s: float, repeat: bool = False) -> None:
        self.timers.set(name, delay_s, repeat)

    def cancel_timer(self, name: str) -> bool:
        return self.timers.cancel(name)

    def metric(self, name: str, value: Decimal | float, *, symbol: str | None = None) -> None:
        if self._desk.metrics is not None:
            self._desk.metrics.strategy_gauge(self._name, name, value, symbol)

    def count(self, name: str, n: int = 1, *, symbol: str | None = None) -> None:
        if self._desk.metrics is not None:
            self._desk.metrics.strategy_count(self._name, name, n, symbol)


_UNSTAMPED: Final = operator.attrgetter(
    *(f.name for f in fields(Order) if f.name not in ("created_ns", "updated_ns"))
)


def _no_status() -> str | None:
    return None


def _same(a: Order, b: Order) -> bool:
    """Equal but for when they were stamped."""
    return a is b or _UNSTAMPED(a) == _UNSTAMPED(b)


_RATE_LIMIT: Final = "the trading counter keeps room to cancel open orders"
_REST_LIMIT: Final = "the REST call counter keeps room for the dead-man's switch"


def _refusal(decision: RiskDecision) -> tuple[str, str, str] | None:
    """The risk gate's refusal as (source, reason, detail), or None if it accepted."""
    if decision.error is None:
        return None
    return "risk", decision.error.reason, str(decision.error)
