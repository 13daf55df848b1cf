"""Batch orders for strategies: ``with ctx.batch():`` sends its commands together.

A market maker re-quoting a ladder pulls, moves and places several orders at once; one
venue call for all of them costs less time and less rate counter than one call each
(Kraken spot's AddOrderBatch: +n/2 for n orders, against +n; Kraken Futures'
``batchorder``: 9 + n of the 500 per 10 s, against 10 n). Inside the block ``ctx.place``
and ``ctx.cancel`` behave as always (the same checks, ``InvalidIntent`` raised at once, a
handle returned PENDING_NEW), but their commands wait; when the block ends they are
handed on together, the cancels before the places, and the engine sends them in as few
calls as the venue takes (``bot.execution.engine_batch``)::

    with ctx.batch():
        for quote in ctx.open_orders(symbol):
            ctx.cancel(quote)
        for price in ladder:
            ctx.place(symbol, "buy", size, price, post_only=True)

Each order still passes the pre-trade stage on its own: a refused one is REJECTED with its
reason (``on_order``) and the rest go. Amends join the batch where the venue takes them in
one (Kraken Futures' ``batchorder``, ``ExecutionEngine.batches_amends``): ``ctx.amend``
is checked at once, as always (True: accepted by the pre-trade stage, the handle flagged;
False: refused, nothing sent), and only its sending waits for the block's end, after the
cancels and before the places. Where the venue has no batch amend (Kraken spot),
``ctx.amend`` inside the block goes at once, as outside it. Blocks nest: the outermost one
sends. A block left by an exception sends nothing it collected: its places are REJECTED
(``batch_aborted``), its cancels and amends not made (told ``batch_aborted``).

``OrderBatch`` is the block; a context (``EngineContext``, the harness's ``FakeContext``)
owns one, gives it each command first (``take``; an amend to ``hold`` where
``holds_amends``) and says what to do with a finished batch (``send``) or an aborted one
(``drop``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Final

from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.pretrade import Refusal

__all__ = ["ABORTED", "BatchCommand", "OrderBatch"]

BatchCommand = PlaceOrder | CancelOrder | AmendOrder
ABORTED: Final = Refusal("desk", "batch_aborted", "the batch block raised: nothing was sent")


class OrderBatch:
    """The ``with ctx.batch():`` block of one context (see the module docstring)."""

    __slots__ = ("_check", "_depth", "_drop", "_pending", "_send", "open")

    def __init__(
        self,
        send: Callable[[list[BatchCommand]], None],
        drop: Callable[[list[BatchCommand]], None],
        check: Callable[[AmendOrder], bool] | None = None,
    ) -> None:
        """``check``: the pre-trade stage for an amend the batch holds (the engine's
        ``hold_amend``); None: amends are not held (they go at once)."""
        self._send, self._drop, self._check = send, drop, check
        self._depth = 0
        self.open = False
        """A block is open (read on every place: an attribute, kept with ``_depth``)."""
        self._pending: list[BatchCommand] = []

    @property
    def holds_amends(self) -> bool:
        """Whether an amend inside an open block waits for its end (``hold``)."""
        return self._check is not None and self._depth > 0

    def hold(self, command: AmendOrder) -> bool:
        """Check ``command`` now; accepted (True), keep it for the batch. Only while
        ``holds_amends``."""
        if self._check is None or not self._depth:
            raise RuntimeError("amends are held only inside a block, on a venue that batches them")
        if not self._check(command):
            return False
        self._pending.append(command)
        return True

    def take(self, command: Command) -> bool:
        """Keep ``command`` for the batch (True) while a block is open; an amend, or any
        command outside a block, is not taken (False: submit it as usual)."""
        if not self._depth or isinstance(command, AmendOrder):
            return False
        self._pending.append(command)
        return True

    def __enter__(self) -> None:
        self._depth += 1
        self.open = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        self.open = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        cancels = [c for c in pending if type(c) is CancelOrder]
        amends = [c for c in pending if type(c) is AmendOrder]
        places = [c for c in pending if type(c) is PlaceOrder]
        (self._send if exc_type is None else self._drop)([*cancels, *amends, *places])
