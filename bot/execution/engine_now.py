"""A place written at ``submit``: the engine's part between the decision and the write.

``WriteNow`` is the part of ``ExecutionEngine`` (its base class) that writes an accepted
place before ``submit`` returns, through a venue's optional ``place_now`` (``PlaceNow``:
the spot WebSocket order entry has it), with the single-order rules unchanged:

- **Recorded before any answer.** The order is on record (in flight, its row to follow:
  its id's block is on record) between the write and the first ``await``, so no answer or
  report can be read before it; its answer is awaited by the command's task. A venue that
  raises after writing leaves the order UNKNOWN, looked up, never resent.
- **The common case only.** Anything else (an id not issued here, the engine not running,
  the venue unable to write now) takes ``submit``'s general path, which decides and sends it
  as ever; requests still leave in the order submitted (the commands' tasks are started
  eagerly).
- **Decided on values** (``submit_terms``). A strategy's place can be decided and written
  from its ``PlaceTerms`` before its ``Order`` exists: the pre-trade stage's
  ``accepts_place`` accepts the common case (the exchange online, every readiness check
  passing, rate room, the risk gate's fast accept) with ``check``'s effects, and says
  nothing otherwise; the ``Order``, its command and the strategy's handle (``make``) are
  made after the write and before it is recorded. Its outcome is ``submit``'s, by
  construction: the same decision, the same request, the same record, the same task
  (tests/unit/test_submit_terms.py holds it to that).

An accepted amend is written at ``submit`` alike, through a venue's optional ``amend_now``
(``AmendNow``), when the engine can tell at once what ``amend`` would do: the order in
memory, settled (neither in flight nor UNKNOWN), live with Kraken's id, and no cancel or
amend in flight. Such an amend is decided on its values first (``PreTrade.accepts_amend``:
the exchange online, room on both counters, the risk gate's ``accept_amend``, counted as
``check`` counts), and by ``check`` when that cannot say. The frame is written first; then
the order is flagged amend-pending and told (``on_order``) before the first ``await``, so
no answer or report can be read before the flag; its answer is awaited by the command's
task and applied as ``amend`` applies it. The flag's row is not written: the order's next
row (the answer's) follows, as a place's row follows its request (the order's own row is
on record already; ``ExecutionEngine._put``'s ``row_follows``). Anything else (an order to wait for,
or one ``amend`` refuses as unavailable; the venue unable to write now) goes ``submit``'s
general way. If the process dies before the answer's row, the next start's reconciliation
finds Kraken's numbers different from the row and adopts them (``restated``), as it adopts
an amend found in flight (``amended``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from bot.core.log import get_logger
from bot.execution import orders as o
from bot.execution.commands import AmendOrder, Command, PlaceOrder
from bot.execution.engine_amend import IN_DOUBT
from bot.execution.engine_batch import EngineParts
from bot.execution.ids import IdBlocks
from bot.execution.orders import Fill, Order, OrderState, OrderTerms, PlaceTerms
from bot.execution.pretrade import Refusal
from bot.kraken.instruments import Instrument

__all__ = ["AmendNowFn", "AmendTarget", "PlaceNowFn", "WriteNow"]

S = OrderState
PlaceNowFn = Callable[[OrderTerms, Instrument], Coroutine[Any, Any, str] | None]  # v.PlaceNow
AmendNowFn = Callable[..., Coroutine[Any, Any, None] | None]  # v.AmendNow.amend_now
_LIVE = frozenset({S.NEW, S.PARTIALLY_FILLED})
_STOPPING = Refusal("desk", "shutting_down", "the daemon is stopping")
log = get_logger(component="engine")


class NowParts(EngineParts, Protocol):
    """What of ``ExecutionEngine`` a write at ``submit`` uses (named by its shape: that
    module imports this one)."""

    _ids: IdBlocks
    _place_now: PlaceNowFn | None
    _amend_now: AmendNowFn | None

    def _put(
        self, order: Order, fills: Sequence[Fill] = (), *, row_follows: bool = False
    ) -> None: ...

    def _carry_out(
        self, command: Command, answer: Coroutine[Any, Any, Any] | None = None
    ) -> Coroutine[Any, Any, None]: ...


class WriteNow:
    """The engine's write at ``submit``; see the module docstring."""

    __slots__ = ()

    def submit_terms(
        self,
        terms: PlaceTerms,
        instrument: Instrument,
        strategy: str,
        make: Callable[[], PlaceOrder],
    ) -> bool:
        """``submit(make())`` for a new order of ``strategy`` that says ``terms`` (its
        ``cl_ord_id`` fresh from ``new_cl_ord_id``), decided and written before the order
        is made: True when it was accepted (``make`` called once, after the write, its
        command carried out as ``submit`` carries it out); False, with nothing done or
        changed and ``make`` not called, when it is not the common case: ``submit(make())``
        then decides it."""
        e: NowParts = self  # type: ignore[assignment]  # its only subclass (no cast: a call)
        place_now, cid, ids = e._place_now, terms.cl_ord_id, e._ids
        if (
            place_now is None
            or e._tg is None
            or cid in e._book.orders
            or (cid is not ids.last and not ids.fresh(cid))  # issued here: its block on record
            or e._instruments.by_symbol(terms.symbol) is None  # its own symbol: exact
            or not e.pretrade.accepts_place(terms, instrument, strategy, e._book)
        ):
            return False
        try:  # accepted: from here on it is carried out, whatever happens
            answer = place_now(terms, instrument)
        except Exception as exc:  # a bug: the request may have left
            _failed_write(e, make().order, exc)
            return True
        command = make()
        if answer is None:  # not written now: sent by its task, as ``submit`` sends it
            if not e._spawn_command(e._carry_out(command)):
                e._refused(command, _STOPPING)
            return True
        _recorded(e, command, answer)
        return True

    def _write_now(self, command: PlaceOrder) -> bool:
        """An accepted place written before this returns (``PlaceNow``), the order
        recorded between the write and the first ``await`` (so before any answer can be
        read), its answer awaited by the command's task. False, with nothing sent, for
        anything but the common case (a fresh id from this process's recorded block, the
        engine running, the venue able to write now): ``_send_place`` then decides and
        sends it as ever."""
        e: NowParts = self  # type: ignore[assignment]  # its only subclass
        order = command.order
        cid = order.cl_ord_id
        place_now = e._place_now
        if (
            place_now is None
            or e._tg is None
            or order.state is not S.PENDING_NEW
            or cid in e._book.orders
            or not e._ids.fresh(cid)  # issued here: its block is on record
            or e._instruments.lookup(order.symbol) is None
        ):
            return False
        try:
            answer = place_now(order, command.instrument)
        except Exception as exc:  # a bug: the request may have left
            _failed_write(e, order, exc)
            return True
        if answer is None:
            return False
        _recorded(e, command, answer)
        return True

    def _amend_target(self, command: AmendOrder) -> AmendTarget | None:
        """The venue's ``amend_now``, ``command``, its order and its instrument, when
        ``amend`` would send the amend at once (the engine running, the order in memory,
        settled, live with Kraken's id and no change in flight) and the venue can write one
        at ``submit``; else None (``submit``'s general way). The pre-trade stage changes no
        order, so a target found before it still holds after it."""
        e: NowParts = self  # type: ignore[assignment]  # its only subclass
        cid, amend_now = command.cl_ord_id, e._amend_now
        if amend_now is None or e._tg is None or cid in e._inflight:
            return None
        order = e._book.get(cid)
        if (
            order is None
            or order.state not in _LIVE
            or order.order_id is None
            or order.cancel_pending
            or order.amend_pending
            or (inst := e._instruments.lookup(order.symbol)) is None
        ):
            return None
        return amend_now, command, order, inst

    def _amend_fast(self, target: AmendTarget) -> bool:
        """``submit`` of the amend of a ``target``, decided on its values
        (``PreTrade.accepts_amend``) and carried out: written now (``_amend_go``), else
        sent by its task as ``submit`` sends it. False, with nothing done or changed, when
        the stage cannot say at once: ``submit`` then decides it with ``check``."""
        e: NowParts = self  # type: ignore[assignment]  # its only subclass
        command = target[1]
        if not e.pretrade.accepts_amend(command, e._book):
            return False
        if not self._amend_go(target) and not e._spawn_command(e._carry_out(command)):
            e._refused(command, _STOPPING)
        return True

    def _amend_go(self, target: AmendTarget) -> bool:
        """An accepted amend written now (``AmendNow``), then flagged amend-pending and
        told, its row to follow (``_put(row_follows=True)``), its answer awaited by its
        task: True. False, with nothing sent or charged, when the venue cannot write it now
        (``amend`` then sends it, waiting for room or over REST)."""
        e: NowParts = self  # type: ignore[assignment]  # its only subclass
        amend_now, command, order, inst = target
        cid, qty, price = command.cl_ord_id, command.new_qty, command.new_price
        age = e._age(e._book.touched.get(cid), order.updated_ns)
        try:
            answer = amend_now(order, inst, qty=qty, price=price, order_age_s=age)
        except Exception as exc:  # a bug: the request may have left
            e._put(o.request_amend(order, now_ns=e._clock.time_ns()))
            log.error("order_amend_failed", cl_ord_id=cid, error=repr(exc))
            e._amend_answer(order, IN_DOUBT, qty, price)  # looked up
            return True
        if answer is None:
            return False
        e._put(o.request_amend(order, now_ns=e._clock.time_ns()), row_follows=True)
        if not e._spawn_command(e._carry_out(command, answer)):  # stopping: answer unread
            answer.close()
            e._amend_answer(order, IN_DOUBT, qty, price)
        return True


AmendTarget = tuple[AmendNowFn, AmendOrder, Order, Instrument]
"""What ``WriteNow._amend_target`` finds: the venue's ``amend_now``, the amend, the order
and its pair."""


def _recorded(e: NowParts, command: PlaceOrder, answer: Coroutine[Any, Any, str]) -> None:
    """A place just written: on record (in flight from now, its row to follow), its answer
    awaited by its task; the daemon stopping, the answer is not read and it is UNKNOWN."""
    e._record_sent(command.order)
    if not e._spawn_command(e._carry_out(command, answer)):
        answer.close()
        _interrupted(e, command.cl_ord_id)


def _failed_write(e: NowParts, order: Order, exc: Exception) -> None:
    """``place_now`` raised (a bug) after the request may have left: the order on record,
    logged, and UNKNOWN, to be looked up."""
    e._record_sent(order)
    log.error("order_place_failed", cl_ord_id=order.cl_ord_id, error=repr(exc))
    _interrupted(e, order.cl_ord_id)


def _interrupted(e: NowParts, cid: str) -> None:
    """A place written whose answer will not be read here: no longer in flight, UNKNOWN."""
    e._sent(cid)
    e._went_unknown(cid, "interrupted")
