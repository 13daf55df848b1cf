"""The execution engine: commands carried out, every order's fate learned, never guessed.

``ExecutionEngine`` turns commands (``bot.execution.commands``: ``PlaceOrder``,
``AmendOrder``, ``CancelOrder``) into requests to the venue (``bot.execution.venue``: the
port; Kraken's REST today), and the venue's answers and events (replies, execution
reports, reconciliation) into ``Order`` states in the store. It tells the strategy side
through the callbacks given to its constructor: ``on_order(order)`` for every change,
``on_fill(fill, order)`` for every new fill (the order already showing it, and before that
change's ``on_order``: the order the strategy API promises, ``Strategy.on_fill``), and
``on_refused(command, refusal, order)`` for a command not carried out that no order state
shows (``order``: the engine's record now, None for a place never recorded).

- **One stage, once.** ``submit(command)`` runs the pre-trade stage
  (``bot.execution.pretrade``: readiness, the exchange's state, rate room, risk) once;
  refused, nothing is recorded or sent and ``on_refused`` says why; accepted, the
  command's work starts at once as a task (``spawn``: the daemon's group, its first step
  eagerly, so a place's request is written before ``submit`` returns). ``place(command)``
  is the same for a caller that awaits the outcome (a refusal raises ``RiskError``).
- **One cl_ord_id per order, saved before it is sent**, never reused: no duplicates by
  construction (Kraken refuses a duplicate open id too).
- **Unknown fate is resolved, never resent.** A lost answer (``OrderStateUnknown``) makes
  the order UNKNOWN; a resolver looks it up by ``cl_ord_id`` (open, then closed orders;
  reports resolve it too) until the venue shows it, or it is still absent ``grace_s`` after
  it was sent: LOST, and ``on_order`` tells the strategy, which may place a *new* order.
  ``amend``/``cancel`` of an UNKNOWN order wait for its fate (``resolve_wait_s``), else
  raise ``OrderUnavailable``.
- **Refusals are recorded.** Any other ``ExchangeError`` on a place means "not placed":
  REJECTED with the venue's string as ``reason`` (``on_order``).
- **The exchange is the truth.** Startup and crash recovery are one path (``run``): load
  open orders, mark leftover PENDING_NEW as UNKNOWN("restart"), adopt our orders whose rows a
  machine crash lost (closed orders read page after page, bounded), reconcile, set the
  readiness check ``reconciled``. ``ExecutionsSubscribed`` (each private (re)connect),
  ``SequenceGap`` and ``request_reconcile`` (a dead-man lapse) close it and reconcile again:
  open orders, orders by venue id, recent closed orders, open/closed orders by
  ``cl_ord_id``, missed fills from the trade history (rules: ``bot.execution.reconcile``).
  Fills are recorded (idempotent by ``exec_id``) before the order showing them is saved,
  both before the callbacks. Orders that are not ours are logged, never adopted.
- **Events drive state.** ``on_private`` (the venue's event sink: the ``PrivateFeed``'s
  today) merges sparse reports by ``cl_ord_id`` or venue id; a UUID ``cl_ord_id`` in either
  of Kraken's forms (``orders.canonical_cl_ord_id``). While no executions come (or with
  ``confirm_via_rest``) each write is followed by a query.
- **Amends** (``amend`` and an amend's answer: the base class
  ``bot.execution.engine_amend.AmendInPlace``): in place, refused ones recorded, lost
  answers looked up. Places and amends the venue can write at once are written at
  ``submit`` (the base class ``bot.execution.engine_now.WriteNow``).
- **Batches** (``submit_batch``, ``place_batch``, ``cancel_batch``, ``hold_amend``: the
  base class ``bot.execution.engine_batch.BatchOrders``): the same stage and rules, order
  by order, the accepted orders in as few venue calls as the venue takes (amends too,
  where the venue batches them: Kraken Futures).
- **Rate limits.** Changes use amends (cheaper than cancel-and-replace, keeps queue
  priority); amends and cancels pass the order's age so the venue charges Kraken's penalty
  and waits in time.

``run`` owns a ``TaskGroup`` for background work (reconciliations, resolvers, follow-up
reads) until cancelled; ``CancelledError`` is never swallowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock
from bot.core.errors import (
    BotError,
    ExchangeError,
    OrderStateUnknown,
    ProtocolError,
    RejectedError,
    RiskError,
)
from bot.core.later import Later
from bot.core.log import get_logger
from bot.execution import orders as o
from bot.execution import reconcile as rc
from bot.execution import venue as v
from bot.execution.commands import AmendOrder, Command, PlaceOrder
from bot.execution.engine_amend import AmendInPlace
from bot.execution.engine_batch import BatchOrders, place_acked, place_refused
from bot.execution.engine_now import AmendNowFn, PlaceNowFn, WriteNow
from bot.execution.ids import IdBlocks
from bot.execution.journal import OrderJournal
from bot.execution.orders import Fill, Order, OrderState
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import RECONCILED, ReadinessGate
from bot.execution.reconcile import OrderIndex, Plan, Recorded
from bot.execution.venue import ExchangeOrder, ExchangeTrade, Venue
from bot.execution.venue_reads import VenueReads
from bot.kraken.instruments import Instrument, InstrumentTable, to_scaled
from bot.kraken.protocol import ExecutionReport, ExecutionsFrame

__all__ = ["EngineConfig", "ExecutionEngine", "OrderUnavailable", "Spawn"]

S = OrderState
_NS: Final = 1_000_000_000
_UNSETTLED: Final = frozenset({S.UNKNOWN, S.PENDING_NEW})
_STOPPING: Final = Refusal("desk", "shutting_down", "the daemon is stopping")
log = get_logger(component="engine")

Spawn = Callable[[Coroutine[Any, Any, None]], bool]
"""Runs a command's coroutine as a task now (False, the coroutine closed: it cannot, the
group is closing)."""


class OrderUnavailable(BotError):
    """Not amendable or cancellable now: not ours, not live, or its fate still unknown."""

    def __init__(self, cl_ord_id: str, state: OrderState | None, why: str) -> None:
        self.cl_ord_id, self.state, self.why = cl_ord_id, state, why
        super().__init__(f"{cl_ord_id} ({state or 'no such order'}): {why}")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    grace_s: float = 5.0  # how long a just-placed order may be absent from Kraken's answers
    resolve_wait_s: float = 15.0  # amend/cancel wait this long (real time) for a fate
    fills_margin_s: float = 60.0  # TradesHistory starts this far before the last known fill
    closed_orders_from: int = 3  # unresolved orders without a txid worth a ClosedOrders read
    max_closed_pages: int = 20  # ClosedOrders pages (50 orders) read at start for adoption
    max_history_pages: int = 20  # TradesHistory pages (50 trades) per reconciliation
    confirm_via_rest: bool | None = None  # None: confirm writes by REST while the feed is down
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(1.0, 30.0))


class ExecutionEngine(WriteNow, BatchOrders, AmendInPlace):
    """See the module docstring. Prices and quantities are scaled ints."""

    def __init__(
        self,
        venue: Venue,
        store: OrderJournal,
        instruments: InstrumentTable,
        clock: Clock,
        *,
        on_order: Callable[[Order], None] | None = None,
        on_fill: Callable[[Fill, Order], None] | None = None,
        on_refused: Callable[[Command, Refusal, Order | None], None] | None = None,
        readiness: ReadinessGate | None = None,
        pretrade: PreTrade | None = None,
        spawn: Spawn | None = None,
        config: EngineConfig | None = None,
        ids: IdBlocks | None = None,
    ) -> None:
        """``pretrade``: the stage every command passes (default: the readiness gate
        alone); its gate is ``readiness``. ``spawn``: where submitted commands run
        (default: the engine's own group while it runs, not eagerly)."""
        self._venue, self._store, self._instruments, self._clock = venue, store, instruments, clock
        self._on_order, self._on_fill, self._on_refused = on_order, on_fill, on_refused
        self._cfg = config or EngineConfig()
        self._ids = ids if ids is not None else IdBlocks(store, clock)
        self._unsaved: set[str] = set()  # placed (block on record) or flagged: row to follow
        if readiness is None:
            readiness = pretrade.readiness if pretrade is not None else ReadinessGate(clock=clock)
        if pretrade is None:
            pretrade = PreTrade(readiness)
        elif pretrade.readiness is not readiness:
            raise ValueError("the pre-trade stage must read the engine's readiness gate")
        self.readiness, self.pretrade = readiness, pretrade
        if RECONCILED not in self.readiness.names:
            self.readiness.add(RECONCILED)
        self._spawn_command: Spawn = spawn if spawn is not None else self._spawn
        # A place written at ``submit`` (``PlaceNow``) needs the commands' tasks started
        # eagerly (``spawn``: the desk's), so that requests leave in the order submitted.
        self._place_now: PlaceNowFn | None = (
            getattr(venue, "place_now", None) if spawn is not None else None
        )
        self._amend_now: AmendNowFn | None = (
            getattr(venue, "amend_now", None) if spawn is not None else None
        )
        self._cancelling: set[str] = set()  # submitted cancels not finished yet
        self._held_amends: set[str] = set()  # amends accepted for a batch, not sent yet
        cfg = self._cfg
        self._reads = VenueReads(
            venue, closed_orders_from=cfg.closed_orders_from, fills_margin_s=cfg.fills_margin_s,
            max_history_pages=cfg.max_history_pages,
        )  # fmt: skip
        self._book = OrderIndex()
        self._inflight: set[str] = set()  # AddOrder sent, no answer yet
        self._resolving: set[str] = set()
        self._waiters: dict[str, asyncio.Event] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._wake = asyncio.Event()
        self._reasons: list[str] = []
        self._lock = asyncio.Lock()
        self._feed_live = False
        self._recovered = False  # the store's open orders loaded (once per process)

    def new_cl_ord_id(self, strategy: str = "") -> str:
        """A fresh ``cl_ord_id`` for one order of ``strategy``, from a recorded block."""
        return self._ids.next(strategy)

    @property
    def id_source(self) -> Callable[[str], str]:
        """``new_cl_ord_id`` itself (``IdBlocks.next``), for a caller that issues an id per
        order and keeps it: one call fewer on every place."""
        return self._ids.next

    def prepare_ids(self, strategies: Iterable[str], *, later: Later | None = None) -> None:
        """Record an id block for each strategy now, so that no order waits for one; with
        ``later`` (the loop's ``call_soon``), a spare block each as well, replaced off the
        order's path when taken (``IdBlocks.prepare``)."""
        self._ids.prepare(strategies, later=later)

    def order(self, cl_ord_id: str) -> Order | None:
        """One of our orders, open or done (from the store if no longer in memory)."""
        return self._book.get(cl_ord_id) or self._store.get_order(cl_ord_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._book.open(symbol)

    def cancelling(self, cl_ord_id: str) -> bool:
        """A cancel of this order was submitted and has not finished."""
        return cl_ord_id in self._cancelling

    async def run(self) -> None:
        """Recover, reconcile, open ``reconciled``; then reconcile on request, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                # Once per process: a run restarted by the daemon's supervisor finds the
                # orders in memory (some maybe in flight) and only reconciles them.
                reason = "engine restarted" if self._recovered else "startup"
                if not self._recovered:
                    self._recover()
                await self._reconcile_until_done(reason)
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    reasons, self._reasons = self._reasons, []
                    await self._reconcile_until_done(",".join(reasons))
            finally:
                self._tg = None
                self.readiness.clear(RECONCILED, "engine stopped")

    def _recover(self) -> None:
        """The store's open orders into memory; a PENDING_NEW one becomes UNKNOWN."""
        now = self._clock.time_ns()
        for order in self._store.load_orders(open_only=True):
            self._book.put(order)
            if order.state is S.PENDING_NEW:  # sent or not: the crash hid which
                self._put(o.mark_unknown(order, "restart", now_ns=now))
        self._recovered = True
        log.info("engine_recovered", open_orders=len(self._book.orders))

    def request_reconcile(self, reason: str) -> None:
        """Reconcile soon (a reconnect, a gap, a dead-man lapse); no order leaves until then."""
        self.readiness.clear(RECONCILED, f"reconciling: {reason}")
        self._reasons.append(reason)
        self._wake.set()

    async def _reconcile_until_done(self, reason: str) -> None:
        backoff = Backoff(self._cfg.backoff)
        while True:
            try:
                if reason == "startup":
                    await self._adopt_closed()
                await self.reconcile()
                break
            except (ExchangeError, ProtocolError) as exc:
                delay = backoff.next_delay()
                log.warning("reconcile_failed", reason=reason, error=str(exc), retry_s=delay)
                await self._clock.sleep(delay)
        if not self._wake.is_set():
            self.readiness.set(RECONCILED)

    def on_private(self, event: object) -> None:
        """The venue's event sink (``venue.VenueEvent``; others are ignored): merge reports;
        reconcile after a (re)subscribe or a gap."""
        if isinstance(event, ExecutionsFrame):
            self._on_reports(event.reports)
        elif isinstance(event, v.ExecutionsSubscribed):
            self._feed_live = True
            if event.snapshot is not None:
                self._on_reports(event.snapshot.reports)
            self.request_reconcile("subscribed")
        elif isinstance(event, v.SequenceGap):
            self.request_reconcile(f"sequence gap {event.expected}->{event.received}")
        elif isinstance(event, v.PrivateDisconnected):
            self._feed_live = False

    def _on_reports(self, reports: Iterable[ExecutionReport]) -> None:
        for echoed in reports:
            report = _canonical(echoed)
            cid = self._book.owner(report)
            if cid is None and self._recall(report.cl_ord_id) is not None:  # LOST, or done
                cid = report.cl_ord_id
            if cid is None:  # not ours, or ours before AddOrder's answer named it
                self._book.hold(report)
                continue
            old = self._book.orders[cid]
            try:
                new = o.apply_execution(old, report, now_ns=self._clock.time_ns())
                fill = o.fill_from_report(new, report)
            except (ProtocolError, o.IllegalTransition) as exc:
                log.error("report_refused", cl_ord_id=cid, error=str(exc))
                self.request_reconcile("bad report")
                continue
            fresh = (fill,) if fill is not None and self._store.record_fill(fill) else ()
            if new is not old:
                if old.state is S.LOST:
                    log.error("lost_order_revived", cl_ord_id=cid, state=str(new.state))
                self._put(new, fresh)
            elif fresh:
                self._emit_fill(fresh[0], old)

    # -- commands ------------------------------------------------------------------------

    def submit(self, command: Command) -> bool:
        """Run the pre-trade stage on ``command`` once; accepted (True), its work starts now
        as a task (``spawn``), a place's request written before this returns when the
        spawn is eager; refused (False), nothing is recorded or sent and ``on_refused``
        says why (``shutting_down`` when no task can start). What happens later is told
        by ``on_order`` and ``on_fill``, and ``on_refused`` for an amend or a cancel the
        venue or the engine refused, or a place never recorded."""
        target = self._amend_target(command) if type(command) is AmendOrder else None
        if target is not None and self._amend_fast(target):
            return True
        refusal = self.pretrade.check(command, self._book)
        if refusal is None:
            if type(command) is PlaceOrder and self._write_now(command):
                return True
            if target is not None and self._amend_go(target):
                return True
            cancel = type(command) is not PlaceOrder and type(command) is not AmendOrder
            if cancel:
                self._cancelling.add(command.cl_ord_id)
            if self._spawn_command(self._carry_out(command)):
                return True
            if cancel:
                self._cancelling.discard(command.cl_ord_id)
            refusal = _STOPPING
        self._refused(command, refusal)
        return False

    async def place(self, command: PlaceOrder) -> Order:
        """``submit`` for a caller that awaits the outcome: the pre-trade stage (a refusal
        raises ``RiskError`` with its reason), then ``command``'s order sent. Returns it
        NEW (or as the venue already says), REJECTED (the venue's reason) or UNKNOWN (see
        ``wait_settled``)."""
        refusal = self.pretrade.check(command, self._book)
        if refusal is not None:
            raise RiskError(refusal.reason, refusal.detail)
        return await self._send_place(command)

    async def _carry_out(
        self, command: Command, answer: Coroutine[Any, Any, Any] | None = None
    ) -> None:
        """A submitted command's task: its work, and ``on_refused`` if it was not done.
        ``answer``: a place or an amend already written and recorded (``_write_now``,
        ``_amend_go``), whose answer this awaits."""
        cid = command.cl_ord_id
        try:
            if type(command) is PlaceOrder:
                if answer is None:
                    await self._send_place(command)
                else:
                    await self._placed(command.order, answer)
            elif type(command) is AmendOrder:
                qty, price = command.new_qty, command.new_price
                if answer is None:
                    await self.amend(cid, qty=qty, price=price)
                else:
                    await self._amend_sent(command.order, answer, qty, price)
            else:
                await self.cancel(cid)
        except RiskError as exc:  # a place that could not go (the engine stopped)
            refusal = Refusal("desk", exc.reason, str(exc))
        except ExchangeError as exc:  # the venue refused an amend or a cancel
            refusal = Refusal("exchange", exc.code, str(exc))
        except OrderUnavailable as exc:
            refusal = Refusal("engine", "unavailable", str(exc))
        except BotError as exc:
            if type(command) is PlaceOrder:
                log.error("order_place_failed", cl_ord_id=cid, error=str(exc))
            refusal = Refusal("engine", "error", str(exc))
        else:
            return
        finally:
            if type(command) is not PlaceOrder and type(command) is not AmendOrder:
                self._cancelling.discard(cid)
        if type(command) is not PlaceOrder or self._book.get(cid) is None:
            self._refused(command, refusal)  # a place recorded is told by ``on_order``

    def _refused(self, command: Command, refusal: Refusal) -> None:
        if self._on_refused is None:
            return
        cid = command.cl_ord_id
        known = self._book.get(cid)
        if known is None and type(command) is not PlaceOrder:
            known = self._store.get_order(cid)
        self._call(self._on_refused, command, refusal, known)

    def _id_used(self, cid: str) -> bool:
        """Whether ``cid`` already names an order (one id per order)."""
        fresh = self._ids.fresh(cid)  # issued here from a recorded block: provably unused
        return self._book.get(cid) is not None or (not fresh and self.order(cid) is not None)

    def _record_sent(self, order: Order) -> None:
        """A new order on record before its request leaves (a place or a batch's), in
        flight from now."""
        cid = order.cl_ord_id
        if self._ids.owner(cid) is None:
            self._put(order)  # durable before it is sent: nothing else would prove it ours
        else:  # its block is on record (bot.execution.ids): the row can follow the request
            self._book.put(order)
            self._unsaved.add(cid)
        self._inflight.add(cid)
        self._book.sent[cid] = self._clock.monotonic()

    async def _send_place(self, command: PlaceOrder) -> Order:
        order = command.order
        cid, symbol = order.cl_ord_id, order.symbol
        if self._tg is None:
            failing = ", ".join(self.readiness.failing()) or "engine not running"
            raise RiskError("not_ready", f"waiting for: {failing}")
        if order.state is not S.PENDING_NEW:
            raise ProtocolError(f"{cid}: a place carries a new order, not one {order.state}")
        self._instrument(symbol)
        if self._id_used(cid):
            raise ProtocolError(f"cl_ord_id {cid} was used before: one id per order")
        self._record_sent(order)
        return await self._placed(order, self._venue.place(order, command.instrument))

    async def _placed(self, order: Order, answer: Awaitable[str]) -> Order:
        """A place recorded and sent (or sending): its answer (``answer``: the venue's
        order id, or what the venue raises) applied to the order."""
        cid = order.cl_ord_id
        try:
            order_id = await answer
        except OrderStateUnknown as exc:
            self._sent(cid)
            return self._went_unknown(cid, exc.code)
        except ExchangeError as exc:  # refused: not placed (the desk logs it, by strategy)
            self._sent(cid)
            place_refused(self, cid, exc)
            return self._book.orders[cid]
        except BaseException:  # cancelled, or a bug: the request may have left
            self._sent(cid)
            self._went_unknown(cid, "interrupted")
            raise
        self._sent(cid)
        place_acked(self, cid, order_id)
        log.debug("order_acked", cl_ord_id=cid, order_id=order_id)  # the desk logs it placed
        if self._confirming():
            await self._refresh([cid])
        return self._book.orders[cid]

    def _begin_amend(self, order: Order) -> float:
        """An amend of ``order`` (settled) about to be sent, alone or in a batch: flagged
        in flight; its age for the rate counter. ``OrderUnavailable`` if it is not live or
        a change is in flight."""
        cid = order.cl_ord_id
        live = order.state in (S.NEW, S.PARTIALLY_FILLED) and order.order_id is not None
        if not live or order.cancel_pending or order.amend_pending:
            raise OrderUnavailable(cid, order.state, "not live, or a change is in flight")
        age = self._age(self._book.touched.get(cid), order.updated_ns)
        self._put(o.request_amend(order, now_ns=self._clock.time_ns()))
        return age

    async def cancel(self, cl_ord_id: str) -> Order:
        """CancelOrder (a done order is returned as it is); the feed or a query tells the end."""
        order = await self.wait_settled(cl_ord_id)
        if not order.is_open or order.cancel_pending:
            return order
        age = self._age(self._book.touched.get(cl_ord_id), order.updated_ns)
        self._put(o.request_cancel(order, now_ns=self._clock.time_ns()))
        ask, unknown = self._confirming(), False
        try:
            await self._venue.cancel(order, self._instrument(order.symbol), order_age_s=age)
            log.info("cancel_sent", cl_ord_id=cl_ord_id)
        except OrderStateUnknown as exc:
            log.warning("cancel_unknown", cl_ord_id=cl_ord_id, code=exc.code)
            ask = unknown = True
        except ExchangeError as exc:
            now = self._clock.time_ns()
            self._put(o.cancel_failed(self._book.orders[cl_ord_id], exc.code, now_ns=now))
            if not isinstance(exc, RejectedError):
                raise
            ask = True  # "EOrder:Invalid order": already gone, but how? Ask.
        if ask:
            await self._refresh([cl_ord_id])
        if unknown and (current := self._book.orders[cl_ord_id]).is_open:  # not seen cancelled
            self._put(o.cancel_failed(current, "cancel not seen", now_ns=self._clock.time_ns()))
        return self._book.orders[cl_ord_id]

    async def cancel_all(self, symbol: str | None = None) -> int:
        """``symbol`` None: Kraken's CancelAll (account-wide, foreign orders too; Kraken's
        count). Else: cancel our open orders on ``symbol`` one by one (how many)."""
        if symbol is not None:
            return len([await self.cancel(x.cl_ord_id) for x in self.open_orders(symbol)])
        pairs = sorted({order.symbol for order in self.open_orders()})
        for order in self.open_orders():
            if not order.cancel_pending:
                self._put(o.request_cancel(order, now_ns=self._clock.time_ns()))
        try:
            count = await self._venue.cancel_all([self._instrument(p) for p in pairs])
        except ExchangeError as exc:
            for order in self.open_orders():
                self._put(o.cancel_failed(order, exc.code, now_ns=self._clock.time_ns()))
            self.request_reconcile("cancel_all failed")
            raise
        log.info("cancel_all_sent", count=count)
        if self._confirming():
            await self.reconcile()
        return count

    async def wait_settled(self, cl_ord_id: str, timeout_s: float | None = None) -> Order:
        """The order once it is neither in flight nor UNKNOWN; ``OrderUnavailable`` if it is
        not ours, or still unknown after ``timeout_s`` (``resolve_wait_s``; real time)."""
        if self._recall(cl_ord_id) is None:
            raise OrderUnavailable(cl_ord_id, None, "no such order")
        if not self._unsettled(cl_ord_id):
            return self._book.orders[cl_ord_id]  # the usual case: no timer to set and cancel
        try:
            async with asyncio.timeout(timeout_s or self._cfg.resolve_wait_s):
                while self._unsettled(cl_ord_id):
                    await self._waiters.setdefault(cl_ord_id, asyncio.Event()).wait()
        except TimeoutError:
            state = self._book.orders[cl_ord_id].state
            raise OrderUnavailable(cl_ord_id, state, "its fate is still being resolved") from None
        return self._book.orders[cl_ord_id]

    def _unsettled(self, cid: str) -> bool:
        order = self._book.get(cid)
        return cid in self._inflight or (order is not None and order.state is S.UNKNOWN)

    def _went_unknown(self, cid: str, reason: str) -> Order:
        self._inflight.discard(cid)
        current = self._book.orders[cid]
        new = o.mark_unknown(current, reason, now_ns=self._clock.time_ns())
        if new is not current:
            log.warning("order_unknown", cl_ord_id=cid, reason=reason)
            self._put(new)
        elif not self._unsettled(cid):  # a report told its fate first
            self._wake_waiter(cid)
        self._resolve_soon(cid)
        return self._book.orders[cid]

    def _resolve_soon(self, cid: str) -> None:
        order = self._book.get(cid)
        if cid not in self._resolving and order is not None and order.state in _UNSETTLED:
            self._resolving.add(cid)
            if not self._spawn(self._resolve(cid)):
                self._resolving.discard(cid)  # shutting down: the next start resolves it

    async def _resolve(self, cid: str) -> None:
        """Look the order up until Kraken shows it, or it is LOST (absent after grace_s)."""
        backoff = Backoff(self._cfg.backoff)
        try:
            while (order := self._book.get(cid)) is not None and order.state in _UNSETTLED:
                if cid in self._inflight:
                    break  # place() has it, and will hand it back
                result: Plan | None = None
                try:
                    result = await self._settle([cid], await self._reads.fetch([order], full=False))
                except (ExchangeError, ProtocolError) as exc:
                    log.warning("resolve_failed", cl_ord_id=cid, error=str(exc))
                if result is not None and cid in result.waiting:
                    await self._clock.sleep(max(self._cfg.grace_s - self._sent_age(order), 0.05))
                elif (now := self._book.get(cid)) is not None and now.state in _UNSETTLED:
                    await self._clock.sleep(backoff.next_delay())  # pending, vanished, failed
        finally:
            self._resolving.discard(cid)
            self._wake_waiter(cid)

    async def reconcile(self) -> Plan:
        """Reconcile every open local order with the exchange, and recover missed fills."""
        async with self._lock:
            local = [x for x in self.open_orders() if x.cl_ord_id not in self._inflight]
            found = await self._reads.fetch(local, full=True)
            cids = [x.cl_ord_id for x in local]
            for ex in rc.match_orders(local, found).unmatched:
                stored = self._recall(ex.cl_ord_id) if ex.is_open else None
                if stored is not None:  # a LOST (or done) order of ours, open after all
                    cids.append(stored.cl_ord_id)
                elif ex.is_open and (adopted := self._adopt(ex)) is not None:
                    cids.append(adopted.cl_ord_id)
            r = await self._settle(cids, found)
            for ex in r.foreign:  # not ours: left alone
                log.warning("foreign_order", order_id=ex.order_id, cl_ord_id=ex.cl_ord_id,
                            pair=ex.pair, side=ex.side, qty=str(ex.qty))  # fmt: skip
            log.info("reconciled", local=len(cids), changed=len(r.changed), lost=len(r.lost),
                     waiting=len(r.waiting), foreign=len(r.foreign))  # fmt: skip
            return r

    async def _refresh(self, cids: Sequence[str]) -> None:
        """Learn these orders' state from the exchange now; on failure, reconcile later."""
        try:
            local = [self._book.orders[c] for c in cids]
            await self._settle(cids, await self._reads.fetch(local, full=False))
        except (ExchangeError, ProtocolError) as exc:
            log.warning("refresh_failed", cl_ord_ids=list(cids), error=str(exc))
            self.request_reconcile("refresh failed")

    async def _settle(self, cids: Sequence[str], found: list[ExchangeOrder]) -> Plan:
        """Apply the pure plan for ``cids``; missed fills are fetched, then recorded first."""
        result = self._plan(cids, found)
        fills: list[Fill] = []
        if short := result.short_of_fills:
            known = self._recorded(short)
            trades = await self._reads.trades(short, known.last_ns)
            if known.last_ns and rc.still_short(short, known, self._fills(trades, short, known)):
                trades += await self._reads.trades(short, {})  # a fill older than the last known
            result = self._plan(cids, found)  # on the orders as they are now
            fills = self._fills(trades, result.short_of_fills, known)
        fresh: dict[str, list[Fill]] = {}
        for fill in fills:
            if self._store.record_fill(fill):
                log.info("fill_recovered", cl_ord_id=fill.cl_ord_id, exec_id=fill.exec_id)
                fresh.setdefault(fill.cl_ord_id, []).append(fill)
        for order in result.changed:
            self._put(order, fresh.pop(order.cl_ord_id, ()))
        for cid, rest in fresh.items():  # fills of orders that showed them already
            if (shown := self._recall(cid)) is not None:
                for fill in rest:
                    self._emit_fill(fill, shown)
        for cid in result.lost:
            log.warning("order_lost", cl_ord_id=cid)
        for cid in result.vanished:
            log.error("order_vanished", cl_ord_id=cid)
        for cid in result.waiting:
            self._resolve_soon(cid)
        return result

    def _plan(self, cids: Sequence[str], found: list[ExchangeOrder]) -> Plan:
        book, busy = self._book.orders, self._inflight
        local = [book[c] for c in cids if c in book and c not in busy]
        return rc.plan(
            local, found, now_ns=self._clock.time_ns(),
            ages_s={x.cl_ord_id: self._sent_age(x) for x in local},
            grace_s=self._cfg.grace_s, recorded_qty=self._recorded(local).qty,
        )  # fmt: skip

    def _recorded(self, orders: Sequence[Order]) -> Recorded:
        if not orders:
            return rc.recorded((), ())
        since = min(x.created_ns for x in orders) - int(self._cfg.fills_margin_s * _NS)
        return rc.recorded(self._store.fills_since(max(since, 0)), orders)

    def _fills(
        self, trades: list[ExchangeTrade], of: Sequence[Order], known: Recorded
    ) -> list[Fill]:
        by_id = {x.order_id: x for x in of if x.order_id is not None}
        return rc.missed_fills(trades, by_id, self._instruments, known.exec_ids)

    def _put(self, order: Order, fills: Sequence[Fill] = (), *, row_follows: bool = False) -> None:
        """Save, index, wake waiters, tell ``on_fill`` for each of ``fills`` (new fills,
        already recorded, that this change of ``order`` shows), then ``on_order``, then
        replay held reports. The save is durable (fsynced) unless the id's block is on
        record: then the exchange can always restore the row (``bot.execution.ids``), and a
        crash of the process keeps it anyway. ``row_follows`` (an amend's flag, written at
        ``submit``, of an order whose row is on record): no row now; the order's next change
        writes it (the amend's answer, a report, a lookup), and a crash before then loses
        only the flag: the next start adopts Kraken's numbers (``reconcile.report_for``)."""
        cid = order.cl_ord_id
        if row_follows:
            self._unsaved.add(cid)
        else:
            self._unsaved.discard(cid)
            self._store.save_order(order, sync=self._ids.owner(cid) is None)
        held = self._book.put(order)
        if not self._unsettled(order.cl_ord_id):
            self._wake_waiter(order.cl_ord_id)
        for fill in fills:
            self._emit_fill(fill, order)
        if self._on_order is not None:
            self._call(self._on_order, order)
        if held:
            self._on_reports(held)

    def _adopt(self, ex: ExchangeOrder) -> Order | None:
        """An exchange order whose row was lost (a machine crash before the store's next
        fsync) but whose id is from one of our recorded blocks: ours, so it is recorded
        again as the exchange shows it. Any other unknown order stays foreign."""
        strategy = self._ids.owner(ex.cl_ord_id)
        inst = None if ex.symbol is None else self._instruments.lookup(ex.symbol)
        if strategy is None or ex.cl_ord_id is None or inst is None:
            return None
        if self._book.get(ex.cl_ord_id) is not None or self._store.get_order(ex.cl_ord_id):
            return None
        pp, qp = inst.price_precision, inst.qty_precision
        price = None if ex.limit_price is None else to_scaled(ex.limit_price, pp)
        order = o.new_order(
            cl_ord_id=ex.cl_ord_id, instrument=inst, side=ex.side, order_type=ex.order_type,
            qty=to_scaled(ex.qty, qp), price=price, strategy=strategy, now_ns=ex.opened_ns,
        )  # fmt: skip
        order = o.acknowledge(order, ex.order_id, now_ns=self._clock.time_ns())
        log.warning("order_recovered", cl_ord_id=ex.cl_ord_id, order_id=ex.order_id,
                    strategy=strategy, status=ex.status)  # fmt: skip
        self._put(order)
        return order

    async def _adopt_closed(self) -> None:
        """At start: orders of ours that closed while the bot was down, whose rows a
        machine crash lost (see ``_adopt``), from ClosedOrders since the newest row (the
        store's log is written in order: a lost row is newer than any row kept), or since
        the first id block when no row is left."""
        if not self._ids.inherited:
            return  # no earlier process issued ids: nothing can have been lost
        since = self._store.newest_order_ns() or self._store.first_id_block_ns()
        if since is None:
            return
        start = max(since // _NS - int(self._cfg.fills_margin_s), 0)
        closed = await self._reads.closed_since(start, pages=self._cfg.max_closed_pages)
        adopted = [x.cl_ord_id for ex in closed if (x := self._adopt(ex)) is not None]
        if adopted:
            await self._settle(adopted, closed)

    def _sent(self, cid: str) -> None:
        """After AddOrder's request went out (whatever came back): the order's first row,
        if ``place`` let it wait, and the log line."""
        order = self._book.orders[cid]
        if cid in self._unsaved:
            self._put(order)
        log.info("order_sent", cl_ord_id=cid, symbol=order.symbol, side=order.side,
                 qty=order.qty, price=order.price)  # fmt: skip

    def _recall(self, cid: str | None) -> Order | None:
        """One of our orders: from memory, else from the store (and kept in memory)."""
        order = None if cid is None else self._book.get(cid)
        if order is None and cid is not None and (order := self._store.get_order(cid)):
            self._on_reports(self._book.put(order))  # reports held for its txid, if any
        return order

    def _wake_waiter(self, cid: str) -> None:
        if (event := self._waiters.pop(cid, None)) is not None:
            event.set()

    def _emit_fill(self, fill: Fill, order: Order) -> None:
        log.info("fill", cl_ord_id=fill.cl_ord_id, exec_id=fill.exec_id, qty=fill.qty)
        if self._on_fill is not None:
            self._call(self._on_fill, fill, order)

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a strategy's bug must not stop the engine: log it, go on
            log.exception("callback_failed", callback=getattr(callback, "__name__", "?"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> bool:
        try:
            if self._tg is not None:
                self._tg.create_task(coro)
                return True
        except RuntimeError:  # the group is shutting down
            pass
        coro.close()
        return False

    def _confirming(self) -> bool:
        return not self._feed_live if (flag := self._cfg.confirm_via_rest) is None else flag

    def _instrument(self, symbol: str) -> Instrument:
        if (inst := self._instruments.lookup(symbol)) is None:
            raise RiskError("unknown_symbol", symbol)
        return inst

    def _age(self, mono: float | None, wall_ns: int) -> float:
        """Seconds since ``mono`` (this process's monotonic clock), else since ``wall_ns``.
        An order's age for Kraken's penalties runs from its ack or last amend; after a
        restart from our last change to it (younger: the penalty charged errs high)."""
        if mono is not None:
            return max(self._clock.monotonic() - mono, 0.0)
        return max((self._clock.time_ns() - wall_ns) / _NS, 0.0)

    def _sent_age(self, order: Order) -> float:
        return self._age(self._book.sent.get(order.cl_ord_id), order.created_ns)


def _canonical(report: ExecutionReport) -> ExecutionReport:
    """``report`` with its ``cl_ord_id`` in the bot's spelling (Kraken may echo a UUID in
    its other form: ``orders.canonical_cl_ord_id``); the same object when it already is."""
    echoed = report.cl_ord_id
    if echoed is None or (cid := o.canonical_cl_ord_id(echoed)) == echoed:
        return report
    return replace(report, cl_ord_id=cid)
