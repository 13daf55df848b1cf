"""The engine-backed strategy ``Context``: a strategy's commands to the engine, its views.

``EngineContext`` (one per strategy) is ``bot.strategy.Context`` on the daemon: the
commands ``Context`` builds (``place``, ``amend``, ``cancel``: checked, then one
``bot.execution.commands`` value each) are submitted to the engine, which runs the
pre-trade stage once and carries them out (``ExecutionEngine.submit``). A refusal is not
raised: the desk's router turns a place's handle REJECTED with the reason (``not_ready``,
``rate_limit``, ``max_notional``...) and the strategy gets ``on_order``; an amend returns
False, its handle as the engine has the order. While the daemon stops, places and amends
are refused ``shutting_down`` here, before the engine sees them; cancels still go. An
``InvalidIntent`` is counted (source ``intent``) as it is raised. Every refusal goes
through the desk's one ``Refusals`` (``bot.strategy.refusals``). ``with ctx.batch():``
(``bot.strategy.batch``) hands the block's places and cancels to the engine together
(``ExecutionEngine.submit_batch``), and its amends where the venue batches them: each
checked at once (``hold_amend``), sent with the others.

The views (open orders, positions, balances, books, instruments) read the desk; marks are
book mids. It owns no socket and no task: the engine's ``spawn`` runs the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import PlaceTerms
from bot.execution.pretrade import Refusal
from bot.kraken.instruments import Instrument
from bot.strategy import BookSnapshot, Context, InstrumentInfo, InvalidIntent, OrderHandle
from bot.strategy.batch import ABORTED, BatchCommand, OrderBatch
from bot.strategy.desk import Desk
from bot.strategy.runner import Timers

__all__ = ["EngineContext"]

_STOPPING: Final = Refusal("desk", "shutting_down", "the daemon is stopping")


class EngineContext(Context):
    """One strategy's ``bot.strategy.Context`` on the desk; see the module docstring."""

    def __init__(
        self, engine: ExecutionEngine, desk: Desk, name: str, symbols: tuple[str, ...]
    ) -> None:
        super().__init__(name, symbols, desk.clock)
        self._engine, self._desk = engine, desk
        self._new_id = engine.id_source  # ``engine.new_cl_ord_id``, one call fewer per place
        self.timers = Timers(desk.clock)
        self._infos: dict[str, tuple[Instrument, InstrumentInfo]] = {}  # views, per symbol
        check = engine.hold_amend if engine.batches_amends else None
        self._batch = OrderBatch(self._send_batch, self._drop_batch, check)

    def batch(self) -> OrderBatch:
        return self._batch

    def _send_batch(self, commands: list[BatchCommand]) -> None:
        if not self._desk.accepting:  # stopping: places and amends refused here, cancels go
            self._drop_batch([c for c in commands if type(c) is not CancelOrder], _STOPPING)
            commands = [c for c in commands if type(c) is CancelOrder]
        if commands:
            self._engine.submit_batch(commands)

    def _drop_batch(self, commands: list[BatchCommand], refusal: Refusal = ABORTED) -> None:
        for command in commands:
            if type(command) is AmendOrder:
                self._engine.release_amend(command)
            known = None if type(command) is PlaceOrder else self._engine.order(command.cl_ord_id)
            self._desk.router.on_refused(command, refusal, known)

    # -- what ``Context``'s commands use -------------------------------------------------

    def _next_cl_ord_id(self) -> str:
        return self._new_id(self._name)

    def _track(self, handle: OrderHandle) -> None:
        self._desk.handles.add(handle)

    def _submit(self, command: Command) -> bool:
        batch = self._batch
        if type(command) is AmendOrder and batch.holds_amends and self._desk.accepting:
            return batch.hold(command)  # checked now, sent when the block ends
        if batch.open and batch.take(command):
            return True  # sent when the ``with ctx.batch():`` block ends
        if self._desk.accepting or type(command) is CancelOrder:
            return self._engine.submit(command)
        known = None if type(command) is PlaceOrder else self._engine.order(command.cl_ord_id)
        self._desk.router.on_refused(command, _STOPPING, known)
        return False

    def _submit_terms(
        self, terms: PlaceTerms, instrument: Instrument, make: Callable[[], PlaceOrder]
    ) -> bool:
        """The engine's ``submit_terms`` while no batch block is open and the desk accepts
        places (else ``_submit``'s way: kept for the batch, or refused ``shutting_down``)."""
        if self._batch.open or not self._desk.accepting:
            return False
        return self._engine.submit_terms(terms, instrument, self._name, make)

    def _cancelling(self, cl_ord_id: str) -> bool:
        return self._engine.cancelling(cl_ord_id)

    def _invalid(self, action: str, error: InvalidIntent, symbol: str, **fields: Any) -> None:
        self._desk.refusals.refuse(
            action,  # type: ignore[arg-type]  # place or amend: Context's own calls
            "intent", error.reason, strategy=self._name, symbol=symbol, detail=str(error),
            **fields,
        )  # fmt: skip

    # -- views -----------------------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> tuple[OrderHandle, ...]:
        handles = self._desk.handles.open(self._name, symbol)
        return tuple(sorted(handles, key=lambda h: h.order.created_ns))

    def order(self, cl_ord_id: str) -> OrderHandle | None:
        handle = self._desk.handles.get(cl_ord_id)
        return handle if handle is not None and handle.order.strategy == self._name else None

    def position(self, symbol: str) -> Decimal:
        qty = self._desk.positions.strategy_qty(symbol, self._name)
        return Decimal(0) if qty is None else qty

    def positions(self) -> Mapping[str, Decimal]:
        return MappingProxyType(
            {p.symbol: p.qty for p in self._desk.positions.positions(self._name)}
        )

    def balance(self, asset: str) -> Decimal:
        return self._desk.balances.get(asset.upper(), Decimal(0))

    def balances(self) -> Mapping[str, Decimal]:
        return MappingProxyType(dict(self._desk.balances))

    def book(self, symbol: str) -> BookSnapshot | None:
        book = self._desk.marks.book(symbol)
        if book is None or self._desk.instruments.lookup(symbol) is None:
            return None
        return BookSnapshot(book.view(), self.instrument(symbol))

    def instrument(self, symbol: str) -> InstrumentInfo:
        """The pair in Decimals (``InstrumentInfo``), built again only when it changed."""
        known = self._infos.get(symbol)  # only the strategy's own symbols are kept here
        if known is not None and known[0] is self._desk.instruments.by_symbol(symbol):
            return known[1]  # the common case, once per book message: no checks to repeat
        inst = self._instrument(symbol)
        if known is None or known[0] is not inst:
            known = self._infos[symbol] = (inst, InstrumentInfo.of(inst))
        return known[1]

    def _instrument(self, symbol: str) -> Instrument:
        """The daemon's ``Instrument`` (scaled ints) of one of the strategy's symbols."""
        if symbol not in self._symbols:
            raise InvalidIntent("symbol", f"{symbol!r} is not one of {self._name}'s symbols")
        table = self._desk.instruments
        inst = table.by_symbol(symbol) or table.lookup(symbol)  # the first: per order
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
