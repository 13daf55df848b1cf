"""Batches in the execution engine: several places, cancels or amends in one venue call.

``BatchOrders`` is the part of ``EngineParts`` (its base class) that carries out a
batch of commands (``PlaceOrder``, ``CancelOrder``, and ``AmendOrder`` on a venue that
takes amends in its batch: ``EditBatchVenue``, Kraken Futures) with the single-order
rules unchanged:

- **One stage, one by one.** Each command passes the pre-trade stage in turn, and each
  accepted place is recorded (its row durable, or its id's block on record) before the next
  is checked, so the counts and the risk gate see the batch's earlier orders. A refused
  command is left out, ``on_refused`` telling why; the rest go on.
- **Legal calls.** The accepted places go in as few venue calls as the venue allows
  (``bot.execution.batch.split``: one pair a call on spot, 15 places or 50 cancels a
  call); a call of one is a plain ``place``/``cancel``; a venue without ``BatchVenue`` gets
  one call per order. Cancels are sent before places (a re-quote frees its room first):
  two tasks, each started at once, so both requests are written before ``submit_batch``
  returns when the spawn is eager; a venue that takes both in one request
  (``EditBatchVenue``: Kraken Futures) gets one request, cancels first, when they fit.
- **Fates as for one order.** A call whose answer was lost makes every order of it
  UNKNOWN, each resolved by lookup by its ``cl_ord_id``, never resent; a call Kraken
  refused as a whole (``RejectedError``: it validates the whole batch, and one invalid
  order refuses them all) placed nothing, so each of its orders is sent alone, meeting the
  fate it would have met unbatched (a strategy's decisions do not depend on the grouping);
  a call refused for another remedy (rate limit, auth) makes each order REJECTED with
  that reason; otherwise each order gets its own answer: acknowledged with its id,
  REJECTED with its reason (recorded), or UNKNOWN. A cancel refused for one order is
  recorded on it (``cancel_failed``) and the order looked up, as a single cancel is.
- **Amends (``EditBatchVenue``).** A strategy's amend in a batch block passes the stage
  when it is asked for (``hold_amend``: ``ctx.amend`` keeps its True/False) and is not
  checked again; at the block's end the cancels, amends and places go in one request,
  in that order (cut at the venue's limit), each amend carried out by the single amend's
  own steps (``_begin_amend``: waited for, live, nothing in flight, flagged;
  ``_amend_answer``: amended, in doubt and looked up, or refused, recorded and told).
  A whole request refused as invalid sends each amend alone, as it does each place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, Protocol, cast

from bot.core.clock import Clock
from bot.core.errors import (
    BotError,
    ExchangeError,
    OrderStateUnknown,
    ProtocolError,
    RejectedError,
)
from bot.core.log import get_logger
from bot.execution import orders as o
from bot.execution.batch import (
    BatchAmend,
    BatchVenue,
    EditBatchVenue,
    PlaceAnswer,
    chunks,
    split,
)
from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.orders import Fill, Order, OrderState
from bot.execution.pretrade import PreTrade, Refusal
from bot.execution.readiness import ReadinessGate
from bot.execution.reconcile import OrderIndex
from bot.execution.venue import Venue
from bot.kraken.instruments import Instrument, InstrumentTable

__all__ = ["BatchCommand", "BatchOrders", "place_acked", "place_refused"]

S = OrderState
BatchCommand = PlaceOrder | CancelOrder | AmendOrder
_STOPPING: Final = Refusal("desk", "shutting_down", "the daemon is stopping")
log = get_logger(component="engine")


class EngineParts(Protocol):
    """What of ``bot.execution.engine.ExecutionEngine`` a batch uses (that module imports
    this one, so the engine is named here by its shape)."""

    pretrade: PreTrade
    readiness: ReadinessGate
    _book: OrderIndex
    _cancelling: set[str]
    _held_amends: set[str]
    _inflight: set[str]
    _tg: asyncio.TaskGroup | None
    _instruments: InstrumentTable
    _clock: Clock
    _venue: Venue
    _spawn_command: Callable[[Coroutine[Any, Any, None]], bool]

    def order(self, cl_ord_id: str) -> Order | None: ...
    async def wait_settled(self, cl_ord_id: str, timeout_s: float | None = None) -> Order: ...
    def _refused(self, command: Command, refusal: Refusal) -> None: ...
    def _put(self, order: Order, fills: Sequence[Fill] = ()) -> None: ...
    def _id_used(self, cid: str) -> bool: ...
    def _record_sent(self, order: Order) -> None: ...
    def _sent(self, cid: str) -> None: ...
    def _went_unknown(self, cid: str, reason: str) -> Order: ...
    def _confirming(self) -> bool: ...
    async def _refresh(self, cids: Sequence[str]) -> None: ...
    def _wake_waiter(self, cid: str) -> None: ...
    def _age(self, mono: float | None, wall_ns: int) -> float: ...
    def _begin_amend(self, order: Order) -> float: ...
    def _amend_answer(
        self, order: Order, answer: ExchangeError | None, qty: int | None, price: int | None
    ) -> ExchangeError | None: ...
    def _instrument(self, symbol: str) -> Instrument: ...
    def _recall(self, cid: str | None) -> Order | None: ...


class BatchOrders:
    """The engine's batch methods; see the module docstring."""

    __slots__ = ()

    @property
    def batches_amends(self) -> bool:
        """Whether the venue takes amends in its batches (``EditBatchVenue``: Kraken
        Futures' ``batchorder``); otherwise an amend goes alone, at once."""
        return isinstance(_engine(self)._venue, EditBatchVenue)

    def hold_amend(self, command: AmendOrder) -> bool:
        """The pre-trade stage for an amend that a batch will carry (``batches_amends``):
        accepted (True), it is held until ``submit_batch`` takes it, unchecked again;
        refused (False), ``on_refused`` says why. ``release_amend`` forgets one held
        amend that will not be sent."""
        e = _engine(self)
        if (refusal := e.pretrade.check(command, e._book)) is not None:
            e._refused(command, refusal)
            return False
        e._held_amends.add(command.cl_ord_id)
        return True

    def release_amend(self, command: AmendOrder) -> None:
        _engine(self)._held_amends.discard(command.cl_ord_id)

    def submit_batch(self, commands: Sequence[BatchCommand]) -> list[bool]:
        """``submit`` for several commands at once: each through the pre-trade stage (True:
        accepted; an amend ``hold_amend`` accepted is not checked again), the accepted
        ones carried out in as few venue calls as the venue takes (cancels first, then
        amends, on a venue that batches them: ``batches_amends``; else ``TypeError``).
        Refusals and outcomes are told as ``submit`` tells them."""
        e = _engine(self)
        if not self.batches_amends and any(type(c) is AmendOrder for c in commands):
            raise TypeError("this venue takes no amend in a batch: submit each alone")
        accepted: list[bool] = []
        places: list[PlaceOrder] = []
        cancels: list[CancelOrder] = []
        amends: list[AmendOrder] = []
        for command in commands:
            if type(command) is CancelOrder:
                refusal = e.pretrade.check(command, e._book)
                if refusal is None and command.cl_ord_id not in e._cancelling:
                    e._cancelling.add(command.cl_ord_id)
                    cancels.append(command)
            elif type(command) is AmendOrder:
                cid = command.cl_ord_id
                held = cid in e._held_amends
                e._held_amends.discard(cid)
                refusal = None if held else e.pretrade.check(command, e._book)
                if refusal is None:
                    amends.append(command)
            elif type(command) is PlaceOrder:
                refusal = e.pretrade.check(command, e._book)
                if refusal is None:
                    refusal = _record_place(e, command)
                if refusal is None:
                    places.append(command)
            else:
                raise TypeError(f"not a batch command: {command!r}")
            if refusal is not None:
                e._refused(command, refusal)
            accepted.append(refusal is None)
        venue = e._venue
        if amends:  # one request for all, as many as fit (Kraken Futures' batchorder)
            spawned = e._spawn_command(_edit_batch(e, cancels, amends, places))
        elif (
            cancels
            and places
            and isinstance(venue, EditBatchVenue)
            and len(cancels) + len(places) <= venue.batch_limits.max_place
        ):  # one request for both (Kraken Futures' batchorder)
            spawned = e._spawn_command(_edit_batch(e, cancels, (), places))
        else:
            if cancels and not e._spawn_command(_cancel_batch(e, cancels)):
                _not_started(e, cancels, [], [])
            if places and not e._spawn_command(_place_batch(e, places)):
                _not_started(e, [], [], places)
            return accepted
        if not spawned:
            _not_started(e, cancels, amends, places)
        return accepted

    async def place_batch(self, commands: Sequence[PlaceOrder]) -> list[Order | Refusal]:
        """``place`` for several orders: each through the pre-trade stage (a refusal is its
        entry), the rest sent in as few calls as the venue takes; each entry the order as
        ``place`` returns it (NEW, REJECTED with the venue's reason, or UNKNOWN)."""
        e = _engine(self)
        out: list[Order | Refusal] = []
        sent: list[PlaceOrder] = []
        for command in commands:
            refusal = e.pretrade.check(command, e._book) or _record_place(e, command)
            if refusal is None:
                sent.append(command)
            out.append(refusal or command.order)
        await _place_batch(e, sent)
        return [x if isinstance(x, Refusal) else e._book.orders[x.cl_ord_id] for x in out]

    async def cancel_batch(self, cl_ord_ids: Sequence[str]) -> list[Order]:
        """``cancel`` for several orders in as few calls as the venue takes (done orders
        are returned as they are); ``OrderUnavailable`` for an order not ours."""
        e = _engine(self)
        commands = [CancelOrder(await e.wait_settled(cid)) for cid in cl_ord_ids]
        await _cancel_batch(e, commands)
        return [e._recall(cid) or c.order for cid, c in zip(cl_ord_ids, commands, strict=True)]


# -- places ----------------------------------------------------------------------------


def _record_place(e: EngineParts, command: PlaceOrder) -> Refusal | None:
    """``_send_place``'s checks and record for one order of a batch, before the next
    order is checked: None (recorded, in flight), or why it cannot go."""
    order = command.order
    cid = order.cl_ord_id
    if e._tg is None:
        failing = ", ".join(e.readiness.failing()) or "engine not running"
        return Refusal("desk", "not_ready", f"waiting for: {failing}")
    if order.state is not S.PENDING_NEW or e._instruments.lookup(order.symbol) is None:
        return Refusal("engine", "error", f"{cid}: not a new order on a known symbol")
    if e._id_used(cid):
        return Refusal("engine", "error", f"cl_ord_id {cid} was used before: one id per order")
    e._record_sent(order)
    return None


def _not_started(
    e: EngineParts,
    cancels: Sequence[CancelOrder],
    amends: Sequence[AmendOrder],
    places: Sequence[PlaceOrder],
) -> None:
    """Commands accepted whose task could not start (the daemon is stopping)."""
    for cancel in cancels:
        e._cancelling.discard(cancel.cl_ord_id)
        e._refused(cancel, _STOPPING)
    for amend in amends:
        e._refused(amend, _STOPPING)
    for place in places:
        _never_sent(e, place.cl_ord_id, "shutting_down")


def _never_sent(e: EngineParts, cid: str, reason: str) -> None:
    """A recorded order whose request never left: REJECTED (nothing to resolve)."""
    e._inflight.discard(cid)
    current = e._book.orders[cid]
    if current.state is S.PENDING_NEW:
        e._put(o.transition(current, S.REJECTED, now_ns=e._clock.time_ns(), reason=reason))


async def _place_batch(e: EngineParts, commands: Sequence[PlaceOrder]) -> None:
    """Recorded places to the venue, one legal call after another."""
    venue = e._venue
    if isinstance(venue, BatchVenue):
        limits = venue.batch_limits
        calls = split(commands, limits.max_place, one_pair=limits.one_pair, symbol=_symbol)
    else:
        calls = [[c] for c in commands]
    for i, call in enumerate(calls):
        try:
            await _place_call(e, call)
        except BaseException:  # cancelled, or a bug: the calls after it never left
            for later in calls[i + 1 :]:
                for command in later:
                    _never_sent(e, command.cl_ord_id, "interrupted")
            raise


async def _place_call(e: EngineParts, call: Sequence[PlaceOrder]) -> None:
    answers: list[PlaceAnswer]
    try:
        answers = await _venue_place(e, call)
    except RejectedError as exc:
        if len(call) == 1:
            answers = [exc]
        else:  # refused whole: nothing placed, so each order goes alone, as if unbatched
            log.info("batch_refused_whole", orders=len(call), code=exc.code)
            for command in call:
                await _place_call(e, [command])
            return
    except (ExchangeError, ProtocolError) as exc:  # the whole call: lost, or not taken
        whole = exc if isinstance(exc, ExchangeError) else OrderStateUnknown("protocol", str(exc))
        answers = [whole] * len(call)
    except BaseException:  # cancelled, or a bug: the request may have left
        _interrupted(e, call)
        raise
    await _apply_places(e, call, answers)


async def _apply_places(
    e: EngineParts, call: Sequence[PlaceOrder], answers: Sequence[PlaceAnswer]
) -> None:
    """Each order's answer onto it (its request has left)."""
    acked = []
    for command, answer in zip(call, answers, strict=True):
        cid = command.cl_ord_id
        e._sent(cid)
        if isinstance(answer, str):
            place_acked(e, cid, answer)
            acked.append(cid)
        elif isinstance(answer, OrderStateUnknown):
            e._went_unknown(cid, answer.code)
        else:
            place_refused(e, cid, answer)
    if len(call) > 1:
        log.info("batch_placed", orders=len(call), acked=len(acked))
    if acked and e._confirming():
        await e._refresh(acked)


async def _venue_place(e: EngineParts, call: Sequence[PlaceOrder]) -> list[PlaceAnswer]:
    if len(call) == 1:
        return [await e._venue.place(call[0].order, call[0].instrument)]
    venue = e._venue
    assert isinstance(venue, BatchVenue)
    answers = await venue.place_batch([c.order for c in call], [c.instrument for c in call])
    if len(answers) != len(call):
        raise ProtocolError(f"{len(answers)} answers to a batch of {len(call)}")
    return answers


def _interrupted(e: EngineParts, call: Sequence[PlaceOrder]) -> None:
    for command in call:
        e._sent(command.cl_ord_id)
        e._went_unknown(command.cl_ord_id, "interrupted")


def place_acked(e: EngineParts, cid: str, order_id: str) -> None:
    """A place's answer, its order id, onto the order (one sent alone or in a batch)."""
    e._inflight.discard(cid)
    e._book.touched[cid] = e._clock.monotonic()
    current = e._book.orders[cid]
    if (acked := o.acknowledge(current, order_id, now_ns=e._clock.time_ns())) is current:
        e._wake_waiter(cid)  # a report got there first
    else:
        e._put(acked)


def place_refused(e: EngineParts, cid: str, exc: ExchangeError) -> None:
    """The venue refused a place: not placed (REJECTED with its reason, unless a report
    told its fate first; then its waiter is woken, as it is no longer in flight)."""
    e._inflight.discard(cid)
    if (current := e._book.orders[cid]).state is S.PENDING_NEW:
        log.debug("add_order_refused", cl_ord_id=cid, code=exc.code, detail=exc.detail)
        now = e._clock.time_ns()
        e._put(o.transition(current, S.REJECTED, now_ns=now, reason=exc.code))
    else:
        e._wake_waiter(cid)


# -- amends (with cancels and places, in one request) -----------------------------------


async def _edit_batch(
    e: EngineParts,
    cancels: Sequence[CancelOrder],
    amends: Sequence[AmendOrder],
    places: Sequence[PlaceOrder],
) -> None:
    """Cancels, amends and places in one request (an ``EditBatchVenue``), in that order,
    cut into calls of the venue's limit. Each amend is the single amend's (``amend``):
    its order waited for, still live and unchanged by anything in flight (the cancels
    of this batch are flagged first, so an amend of an order the batch cancels is
    refused ``unavailable``), flagged, sent; its answer applied as one alone's."""
    try:
        live = await _live(e, cancels)
        _request_cancels(e, live)
        edits = await _live_amends(e, amends)
        if not live and not edits:  # nothing left to go with the places: as a place batch
            await _place_batch(e, places)
            return
        venue = e._venue
        assert isinstance(venue, EditBatchVenue)
        work: list[CancelOrder | tuple[AmendOrder, BatchAmend] | PlaceOrder]
        work = [*live, *edits, *places]
        calls = chunks(work, venue.batch_limits.max_place)
        for i, call in enumerate(calls):
            try:
                await _edit_call(
                    e,
                    [x for x in call if isinstance(x, CancelOrder)],
                    [x for x in call if isinstance(x, tuple)],
                    [x for x in call if isinstance(x, PlaceOrder)],
                )
            except BaseException:  # cancelled, or a bug: the calls after it never left
                for later in calls[i + 1 :]:
                    for x in later:
                        if isinstance(x, PlaceOrder):
                            _never_sent(e, x.cl_ord_id, "interrupted")
                        elif isinstance(x, tuple):
                            _amend_never_sent(e, x[1].order.cl_ord_id)
                raise
    finally:
        for cancel in cancels:
            e._cancelling.discard(cancel.cl_ord_id)


def _amend_never_sent(e: EngineParts, cid: str) -> None:
    """A flagged amend whose request never left: the order unchanged, its flag cleared."""
    now = e._clock.time_ns()
    e._put(o.amend_failed(e._book.orders[cid], "interrupted", now_ns=now))


async def _live_amends(
    e: EngineParts, amends: Sequence[AmendOrder]
) -> list[tuple[AmendOrder, BatchAmend]]:
    """Each amend still to make, flagged in flight, with what the venue is sent; one that
    cannot be made is told (``on_refused``: ``unavailable``), as ``amend`` tells it."""
    out = []
    for command in amends:
        try:
            order = await e.wait_settled(command.cl_ord_id)
            age = e._begin_amend(order)
        except BotError as exc:  # OrderUnavailable: not ours, unknown still, not live
            e._refused(command, Refusal("engine", "unavailable", str(exc)))
            continue
        out.append((command, BatchAmend(order, command.new_qty, command.new_price, age)))
    return out


async def _edit_call(
    e: EngineParts,
    cancels: Sequence[CancelOrder],
    edits: Sequence[tuple[AmendOrder, BatchAmend]],
    places: Sequence[PlaceOrder],
) -> None:
    """One request; each answer applied as a call of its own kind would apply it."""
    amends = [a for _, a in edits]
    cancelled: list[ExchangeError | None]
    amended: list[ExchangeError | None]
    placed: list[PlaceAnswer]
    try:
        cancelled, amended, placed = await _venue_edit(e, cancels, amends, places)
    except RejectedError as exc:  # refused whole: nothing done; amends and places go alone
        await _apply_cancels(e, cancels, [exc] * len(cancels))
        for edit, amend in edits:
            _apply_amend(e, edit, amend, await _amend_alone(e, amend))
        for place in places:
            await _place_call(e, [place])
        return
    except (ExchangeError, ProtocolError) as exc:  # the whole call: lost, or not taken
        whole = exc if isinstance(exc, ExchangeError) else OrderStateUnknown("protocol", str(exc))
        cancelled, amended = [whole] * len(cancels), [whole] * len(amends)
        placed = [whole] * len(places)
    except BaseException:  # cancelled, or a bug: the request may have left
        _interrupted(e, places)
        raise
    log.info("batch_mixed", cancels=len(cancels), amends=len(amends), places=len(places))
    await _apply_places(e, places, placed)
    for (edit, amend), answer in zip(edits, amended, strict=True):
        _apply_amend(e, edit, amend, answer)
    await _apply_cancels(e, cancels, cancelled)


async def _venue_edit(
    e: EngineParts,
    cancels: Sequence[CancelOrder],
    amends: Sequence[BatchAmend],
    places: Sequence[PlaceOrder],
) -> tuple[list[ExchangeError | None], list[ExchangeError | None], list[PlaceAnswer]]:
    venue = e._venue
    assert isinstance(venue, EditBatchVenue)
    orders = [c.order for c in cancels]
    ages = [e._age(e._book.touched.get(x.cl_ord_id), x.updated_ns) for x in orders]
    answers = await venue.edit_batch(orders, amends, [c.order for c in places], ages_s=ages)
    cancelled, amended, placed = answers
    if (len(cancelled), len(amended), len(placed)) != (len(cancels), len(amends), len(places)):
        raise ProtocolError("the batch's answers do not match its instructions")
    return cancelled, amended, placed


async def _amend_alone(e: EngineParts, amend: BatchAmend) -> ExchangeError | None:
    order = amend.order
    try:
        await e._venue.amend(
            order, e._instrument(order.symbol), qty=amend.qty, price=amend.price,
            order_age_s=amend.age_s,
        )  # fmt: skip
    except ExchangeError as exc:
        return exc
    return None


def _apply_amend(
    e: EngineParts, command: AmendOrder, amend: BatchAmend, answer: ExchangeError | None
) -> None:
    """One amend's answer onto its order, a refusal told as a single amend's is."""
    refused = e._amend_answer(amend.order, answer, amend.qty, amend.price)
    if refused is not None:
        e._refused(command, Refusal("exchange", refused.code, str(refused)))


# -- cancels ---------------------------------------------------------------------------


async def _cancel_batch(e: EngineParts, commands: Sequence[CancelOrder]) -> None:
    """Cancels of live orders in as few calls as the venue takes."""
    try:
        live = await _live(e, commands)
        venue = e._venue
        if isinstance(venue, BatchVenue):
            limits = venue.batch_limits
            calls = split(live, limits.max_cancel, one_pair=limits.one_pair, symbol=_symbol)
        else:
            calls = [[c] for c in live]
        for call in calls:
            await _cancel_call(e, call)
    finally:
        for command in commands:
            e._cancelling.discard(command.cl_ord_id)


async def _live(e: EngineParts, commands: Sequence[CancelOrder]) -> list[CancelOrder]:
    """The cancels still to make: an order still unsettled is waited for first
    (``wait_settled``), one done or already being cancelled is left as it is."""
    live: list[CancelOrder] = []
    for command in commands:
        try:
            order = await e.wait_settled(command.cl_ord_id)
        except BotError as exc:  # OrderUnavailable: unknown still, or not ours
            e._refused(command, Refusal("engine", "unavailable", str(exc)))
            continue
        if order.is_open and not order.cancel_pending:
            live.append(CancelOrder(order))
    return live


async def _cancel_call(e: EngineParts, call: Sequence[CancelOrder]) -> None:
    orders, ages = _request_cancels(e, call)
    answers: list[ExchangeError | None]
    try:
        answers = await _venue_cancel(e, orders, ages)
    except ExchangeError as exc:  # the whole call: lost, or refused
        answers = [exc] * len(call)
    await _apply_cancels(e, call, answers)


def _request_cancels(
    e: EngineParts, call: Sequence[CancelOrder]
) -> tuple[list[Order], list[float]]:
    """The orders as sent (and their ages, for the rate counter), marked cancelling."""
    orders = [c.order for c in call]
    ages = [e._age(e._book.touched.get(x.cl_ord_id), x.updated_ns) for x in orders]
    now = e._clock.time_ns()
    for x in orders:
        e._put(o.request_cancel(x, now_ns=now))
    return orders, ages


async def _apply_cancels(
    e: EngineParts, call: Sequence[CancelOrder], answers: Sequence[ExchangeError | None]
) -> None:
    """Each cancel's answer onto its order; the ones in doubt looked up."""
    ask: list[str] = []
    unknown: list[str] = []
    for command, answer in zip(call, answers, strict=True):
        cid = command.cl_ord_id
        if answer is None:
            log.info("cancel_sent", cl_ord_id=cid)
            if e._confirming():
                ask.append(cid)
            continue
        if isinstance(answer, OrderStateUnknown):
            log.warning("cancel_unknown", cl_ord_id=cid, code=answer.code)
            ask.append(cid)
            unknown.append(cid)
            continue
        now = e._clock.time_ns()
        e._put(o.cancel_failed(e._book.orders[cid], answer.code, now_ns=now))
        if isinstance(answer, RejectedError):
            ask.append(cid)  # "EOrder:Invalid order": already gone, but how? Ask.
        else:
            e._refused(command, Refusal("exchange", answer.code, str(answer)))
    if ask:
        await e._refresh(ask)
    for cid in unknown:
        if (current := e._book.orders[cid]).is_open:  # not seen cancelled
            now = e._clock.time_ns()
            e._put(o.cancel_failed(current, "cancel not seen", now_ns=now))


async def _venue_cancel(
    e: EngineParts, orders: Sequence[Order], ages: Sequence[float]
) -> list[ExchangeError | None]:
    instruments = [e._instrument(x.symbol) for x in orders]
    if len(orders) == 1:
        await e._venue.cancel(orders[0], instruments[0], order_age_s=ages[0])
        return [None]
    venue = e._venue
    assert isinstance(venue, BatchVenue)
    answers = await venue.cancel_batch(orders, instruments, ages_s=ages)
    if len(answers) != len(orders):
        raise OrderStateUnknown("protocol", f"{len(answers)} answers to {len(orders)}")
    return answers


def _engine(mixin: BatchOrders) -> EngineParts:
    """The engine a ``BatchOrders`` is (its only subclass)."""
    return cast(EngineParts, mixin)


def _symbol(command: PlaceOrder | CancelOrder) -> str:
    return command.order.symbol
