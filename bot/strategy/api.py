"""The strategy plugin API: what a user's strategy sees and may do.

This module owns the ``Strategy`` base class and its handlers, the ``Context`` protocol
it acts through, ``Params`` (the base of every strategy's typed parameters) and the
``OrderHandle`` view of one of its orders. It gathers the rest of the public surface
under one name, from the modules that own it: the pure checks, the errors and a pair's
view (``bot.strategy.intents``: ``checked_order``, ``checked_amend``, ``InvalidIntent``,
``InstrumentInfo``, the rounding helpers), and the Decimal views of market data and of a
Futures account (``bot.strategy.views``: ``BookSnapshot``, ``TradeEvent``,
``TickerEvent``, ``FillEvent``, ``DerivativesPosition``, ``MarginInfo``).

It is pure: no I/O, no clock. It does not run handlers (``runner``), load classes
(``loader``), or send, risk-check or track orders (``Context``'s commands go to the
engine: ``context``; or to the harness: ``testing``). A strategy's numbers are
``Decimal`` (precisions are counts of decimals), everywhere in this API; inside the daemon
they are scaled ints. A strategy imports only
``bot.strategy`` (and ``bot.strategy.testing`` in its tests).
"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, ClassVar, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from structlog.typing import FilteringBoundLogger

from bot.core.clock import Clock
from bot.core.errors import ProtocolError
from bot.core.log import get_logger
from bot.execution.commands import AmendOrder, CancelOrder, Command, PlaceOrder
from bot.execution.orders import (
    DONE_STATES,
    Order,
    OrderState,
    PlaceTerms,
    new_order,
    request_amend,
    request_cancel,
)
from bot.kraken.instruments import Instrument, from_scaled
from bot.strategy.intents import (
    InstrumentInfo,
    InvalidIntent,
    OrderType,
    Side,
    StrategyError,
    TimeInForce,
    ceil_price,
    check_price,
    check_qty,
    checked_amend,
    checked_order,
    floor_price,
    floor_qty,
)
from bot.strategy.views import (
    BookSnapshot,
    DerivativesPosition,
    FillEvent,
    MarginInfo,
    PriceLevel,
    TickerEvent,
    TradeEvent,
)

# fmt: off
__all__ = [
    "HANDLERS",
    "BookSnapshot",
    "Context",
    "DerivativesPosition",
    "FillEvent",
    "InstrumentInfo",
    "InvalidIntent",
    "MarginInfo",
    "OrderHandle",
    "OrderState",
    "OrderType",
    "Params",
    "PriceLevel",
    "Side",
    "Strategy",
    "StrategyError",
    "TickerEvent",
    "TimeInForce",
    "TradeEvent",
    "ceil_price",
    "check_price",
    "check_qty",
    "checked_amend",
    "checked_order",
    "floor_price",
    "floor_qty",
    "params_class_of",
]
# fmt: on

_terms: Final = tuple.__new__  # PlaceTerms(...) without its generated __new__ (a call)


class Params(BaseModel):
    """Base of a strategy's parameters: frozen, unknown keys are errors.

    Subclass it with typed fields; the YAML's ``params:`` are validated against it at load
    time and problems name the file line. Use ``Decimal`` for prices and sizes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=Params)


# --------------------------------------------------------------------------- views


class OrderHandle:
    """A live view of one of the strategy's orders, updated as the order changes.

    The context returns it from ``place`` and passes the same object to ``on_order`` and
    ``on_fill``: its fields always show the latest state. Read them, never assign them;
    only the engine calls ``update``. ``qty`` is the total (filled included).
    """

    __slots__ = ("cl_ord_id", "order", "order_type", "reason", "side", "state", "symbol")

    order: Order  # the engine's record, in scaled ints
    cl_ord_id: str
    symbol: str
    side: str
    order_type: str
    state: OrderState
    reason: str  # why it was rejected, canceled or expired, when known

    def __init__(self, order: Order) -> None:
        self.cl_ord_id = order.cl_ord_id
        self.update(order)

    def update(self, order: Order) -> None:
        """The engine's new knowledge of this order (same ``cl_ord_id``)."""
        if order.cl_ord_id != self.cl_ord_id:
            raise ProtocolError(f"handle {self.cl_ord_id} updated with {order.cl_ord_id}")
        self.order, self.symbol, self.side = order, order.symbol, order.side
        self.order_type, self.state, self.reason = order.order_type, order.state, order.reason

    # The numbers are read from the order when asked for: most updates are never read.

    @property
    def qty(self) -> Decimal:
        """The total quantity, filled included."""
        return from_scaled(self.order.qty, self.order.qty_precision)

    @property
    def price(self) -> Decimal | None:
        """The limit price (None for a market order)."""
        o = self.order
        return None if o.price is None else from_scaled(o.price, o.price_precision)

    @property
    def filled(self) -> Decimal:
        return from_scaled(self.order.filled_qty, self.order.qty_precision)

    @property
    def remaining(self) -> Decimal:
        return from_scaled(self.order.remaining_qty, self.order.qty_precision)

    @property
    def avg_price(self) -> Decimal | None:
        return self.order.avg_price

    @property
    def is_open(self) -> bool:
        """Might still trade: pending, unknown, new or partially filled."""
        return self.order.is_open

    @property
    def is_done(self) -> bool:
        """Filled, canceled, expired, rejected or lost: it will not trade again."""
        return self.order.state in DONE_STATES

    @property
    def is_live(self) -> bool:
        """On the book (NEW or PARTIALLY_FILLED) with no cancel or amend in flight."""
        o = self.order
        live = o.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED)
        return live and not o.cancel_pending and not o.amend_pending

    @property
    def pending(self) -> bool:
        """A cancel or an amend is in flight."""
        return self.order.cancel_pending or self.order.amend_pending

    def __repr__(self) -> str:
        return (
            f"OrderHandle({self.cl_ord_id} {self.side} {self.qty} {self.symbol} "
            f"@ {self.price} {self.state})"
        )


# --------------------------------------------------------------------------- context


class Context(ABC):
    """What a strategy acts through: the daemon's ``EngineContext``, or the test harness's
    ``FakeContext`` (``bot.strategy.testing``).

    Every method returns at once: ``place``, ``amend`` and ``cancel`` check the request and
    submit one command (``bot.execution.commands``) that the engine's pre-trade stage and
    the venue carry out; what becomes of it arrives later through ``on_order`` and
    ``on_fill``. Prices and quantities are ``Decimal``. docs/users/strategy-api.md ("The context")
    describes each method. Those three are written once, here, for every context, with the
    name, symbols, logger and clocks: an implementation provides the views below and the
    ``_`` members at the end.
    """

    def __init__(self, name: str, symbols: Iterable[str], clock: Clock) -> None:
        self._name, self._symbols, self._clock = name, tuple(symbols), clock
        self._log: FilteringBoundLogger = get_logger(strategy=name)

    # The strategy's name (bound in every log line and metric), the symbols it may trade,
    # and a structlog logger with ``strategy=<name>`` bound.
    @property
    def name(self) -> str:
        return self._name

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def log(self) -> FilteringBoundLogger:
        return self._log

    # The daemon's clocks (a fake clock in tests): monotonic seconds, wall-clock ns.
    def monotonic(self) -> float:
        return self._clock.monotonic()

    def time_ns(self) -> int:
        return self._clock.time_ns()

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
        """Place an order; returns its handle, PENDING_NEW with its ``cl_ord_id``.

        Raises ``InvalidIntent`` for a request that can never be valid (price off the tick,
        qty off the lot or below the minimum, a symbol not the strategy's). A refusal by the
        risk gate or the exchange is not raised: the order turns REJECTED with a ``reason``.
        """
        inst = self._instrument(symbol)
        try:
            q, p = checked_order(
                inst, side, qty, price,
                order_type=order_type, time_in_force=time_in_force, post_only=post_only,
            )  # fmt: skip
        except InvalidIntent as exc:
            self._invalid("place", exc, symbol, side=side)
            raise
        return self._place_checked(inst, side, order_type, q, p, time_in_force, post_only)

    def _place_checked(  # noqa: PLR0917 (positional: a place's path, cold)
        self,
        inst: Instrument,
        side: str,
        order_type: str,
        qty: int,
        price: int | None,
        time_in_force: str,
        post_only: bool,
    ) -> OrderHandle:
        """What ``place`` (and a ``PreparedOrder``) does once every check passed: a new id,
        then the place handed on by its ``PlaceTerms`` (``_submit_terms``: on the daemon the
        engine decides and writes it, then ``make`` makes the order, its handle tracked,
        and the command); else those made here, the handle tracked and the command
        submitted (refused: the handle turns REJECTED)."""
        cid, now_ns, name = self._next_cl_ord_id(), self._clock.time_ns(), self._name
        made: list[OrderHandle] = []

        def make() -> PlaceOrder:
            order = new_order(
                cl_ord_id=cid, instrument=inst, side=side, order_type=order_type, qty=qty,
                price=price, strategy=name, now_ns=now_ns, time_in_force=time_in_force,
                post_only=post_only,
            )  # fmt: skip
            handle = OrderHandle(order)
            self._track(handle)
            made.append(handle)
            return PlaceOrder(order, inst)

        terms = _terms(PlaceTerms, (cid, inst.symbol, side, order_type, qty, price,
                                    time_in_force, post_only))  # fmt: skip
        if not self._submit_terms(terms, inst, make):
            self._submit(make())
        return made[0]

    def amend(
        self, order: OrderHandle | str, *, qty: Decimal | None = None, price: Decimal | None = None
    ) -> bool:
        """Amend a live order in place (``qty`` is the new total). False, and nothing sent,
        when the order is not live (pending, done, or a cancel or amend in flight), or
        when the amend is refused (counted, like every refusal)."""
        handle = self._own(order)
        if not handle.is_live or handle.order.order_id is None:
            return False
        inst = self._instrument(handle.symbol)
        current = handle.order
        try:
            q, p = checked_amend(current, inst, qty, price)
        except InvalidIntent as exc:
            self._invalid("amend", exc, handle.symbol, cl_ord_id=handle.cl_ord_id)
            raise
        handle.update(request_amend(current, now_ns=self.time_ns()))
        return self._submit(AmendOrder(current, inst, q, p))  # refused: the flag undone

    def cancel(self, order: OrderHandle | str) -> bool:
        """Cancel an order. False when it is done or a cancel is already in flight."""
        handle = self._own(order)
        current, cid = handle.order, handle.cl_ord_id
        if not handle.is_open or current.cancel_pending or self._cancelling(cid):
            return False
        if current.state is not OrderState.PENDING_NEW or current.order_id:
            handle.update(request_cancel(current, now_ns=self.time_ns()))
        return self._submit(CancelOrder(current))

    def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel this strategy's open orders (on ``symbol``), never another's: how many."""
        return sum(self.cancel(h) for h in self.open_orders(symbol))

    # ``with ctx.batch():`` sends the block's places and cancels together, in as few venue
    # calls as the venue takes (``bot.strategy.batch``; docs/batch-orders.md).
    @abstractmethod
    def batch(self) -> AbstractContextManager[None]: ...

    # Read-only views. ``open_orders``: this strategy's, oldest first. ``order``: one of
    # its orders, open or recently done. ``position``: its net base position from its own
    # fills (sells negative). ``balance``: the account's, shared by every strategy.
    # ``book``: the latest, None before the first snapshot. ``instrument``: tick, lot,
    # minimums, as Decimals (``InstrumentInfo``).
    @abstractmethod
    def open_orders(self, symbol: str | None = None) -> tuple[OrderHandle, ...]: ...
    @abstractmethod
    def order(self, cl_ord_id: str) -> OrderHandle | None: ...
    @abstractmethod
    def position(self, symbol: str) -> Decimal: ...
    @abstractmethod
    def positions(self) -> Mapping[str, Decimal]: ...
    @abstractmethod
    def balance(self, asset: str) -> Decimal: ...
    @abstractmethod
    def balances(self) -> Mapping[str, Decimal]: ...
    @abstractmethod
    def book(self, symbol: str) -> BookSnapshot | None: ...
    @abstractmethod
    def instrument(self, symbol: str) -> InstrumentInfo: ...

    # Derivatives (Kraken Futures deployments): the exchange's position in ``symbol`` and
    # the margin account, as last reported; None on spot, or before the first report.
    def derivatives(self, symbol: str) -> DerivativesPosition | None:
        return None

    def margin(self) -> MarginInfo | None:
        return None

    # A strategy on both venues (``venue: both``): whether ``venue`` ("spot" or "futures")
    # takes orders now (its readiness gate open); its orders there are refused
    # ``not_ready`` while not. A one-venue strategy runs only while its venue is ready: True.
    def venue_ready(self, venue: str) -> bool:
        return True

    # Timers: ``on_timer(name)`` after ``delay_s`` (every ``delay_s`` if ``repeat``); a
    # name set again is replaced; ``cancel_timer`` is False if there was none.
    @abstractmethod
    def set_timer(self, name: str, delay_s: float, repeat: bool = False) -> None: ...
    @abstractmethod
    def cancel_timer(self, name: str) -> bool: ...

    # Custom metrics, labelled with the strategy (and ``symbol`` if given): ``metric``
    # sets a gauge, ``count`` adds ``n`` to a counter.
    @abstractmethod
    def metric(self, name: str, value: Decimal | float, *, symbol: str | None = None) -> None: ...
    @abstractmethod
    def count(self, name: str, n: int = 1, *, symbol: str | None = None) -> None: ...

    # -- what an implementation provides (not for strategies) --------------------------

    @abstractmethod
    def _instrument(self, symbol: str) -> Instrument:
        """The scaled ``Instrument`` of one of the strategy's symbols; ``InvalidIntent``
        for any other symbol."""

    @abstractmethod
    def _next_cl_ord_id(self) -> str:
        """A fresh ``cl_ord_id`` for a new order of this strategy."""

    @abstractmethod
    def _track(self, handle: OrderHandle) -> None:
        """A new order's handle, kept before its command is submitted."""

    @abstractmethod
    def _submit(self, command: Command) -> bool:
        """Hand ``command`` on; False: refused (the handle already shows it)."""

    def _submit_terms(
        self, terms: PlaceTerms, instrument: Instrument, make: Callable[[], PlaceOrder]
    ) -> bool:
        """Hand on a checked place by its ``PlaceTerms`` (its ``cl_ord_id`` from
        ``_next_cl_ord_id``) before its order is made: True when it was taken (``make``
        called once: the command, its handle tracked); False, with nothing done, when
        this context does not take it so: then ``_track`` and ``_submit`` as ever."""
        return False

    @abstractmethod
    def _cancelling(self, cl_ord_id: str) -> bool:
        """A cancel of this order was submitted and has not finished."""

    @abstractmethod
    def _invalid(self, action: str, error: InvalidIntent, symbol: str, **fields: Any) -> None:
        """An ``InvalidIntent`` about to be raised to the strategy (the daemon counts it)."""

    def _context_for(self, symbol: str) -> Context:
        """The context whose orders on ``symbol`` are its own (itself; a context routing
        over several venues answers its venue's: ``bot.strategy.two_venue``)."""
        return self

    def _own(self, order: OrderHandle | str) -> OrderHandle:
        cid = order if isinstance(order, str) else order.cl_ord_id
        handle = self.order(cid)
        if handle is None:
            why = f"{cid!r} is not one of this strategy's orders ({self.name})"
            raise InvalidIntent("order", why)
        return handle


# --------------------------------------------------------------------------- strategy


class Strategy(Generic[P]):
    """Base of every strategy. Subclass as ``class Mine(Strategy[MyParams])``.

    Handlers are plain methods called one at a time on the event loop: they must return
    quickly and never block or sleep (use ``ctx.set_timer``). One that raises is logged
    with its traceback and counted; at ``max_errors`` the strategy is halted and its orders
    canceled. Every handler is optional; the defaults do nothing.
    """

    params_class: ClassVar[type[Params] | None] = None
    """The params model; inferred from ``Strategy[MyParams]`` when not set."""

    def __init__(self, ctx: Context, params: P) -> None:
        self.ctx = ctx
        self.params = params

    @property
    def log(self) -> FilteringBoundLogger:
        return self.ctx.log

    def on_start(self) -> None:
        """Once, before any other handler, when the daemon is ready to trade."""

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        """After every book message of one of the strategy's symbols."""

    def on_trade(self, symbol: str, trade: TradeEvent) -> None:
        """For every public trade of one of the strategy's symbols."""

    def on_ticker(self, symbol: str, ticker: TickerEvent) -> None:
        """For every ticker update of one of the strategy's symbols."""

    def on_order(self, order: OrderHandle) -> None:
        """After every state change of one of the strategy's orders."""

    def on_fill(self, order: OrderHandle, fill: FillEvent) -> None:
        """For every execution of one of the strategy's orders, before the ``on_order`` of
        the state change it brings (``order`` already shows the fill). ``fill.price`` is
        exact as Kraken reported it: for a taker order across levels, an average that may
        have more decimals than the pair's prices."""

    def on_timer(self, name: str) -> None:
        """When a timer set with ``ctx.set_timer(name, ...)`` is due."""

    def on_book_invalid(self, symbol: str) -> None:
        """The book of ``symbol`` cannot be trusted (feed gap, checksum mismatch)."""

    def on_book_valid(self, symbol: str) -> None:
        """The book of ``symbol`` is trusted again (a fresh snapshot verified)."""

    def on_params(self, params: P) -> None:
        """New validated params (config reload); the default replaces ``self.params``."""
        self.params = params

    def on_stop(self) -> None:
        """Once, on a clean shutdown; the daemon cancels orders afterwards if configured."""


HANDLERS: Final = tuple(name for name in vars(Strategy) if name.startswith("on_"))
"""Every handler a strategy may override; all are plain ``def``, never ``async def``."""


def params_class_of(cls: type[Strategy[Any]]) -> type[Params]:
    """The params model of a strategy class: ``params_class``, else X of ``Strategy[X]``,
    else ``Params`` (no keys allowed). ``StrategyError`` if it does not subclass ``Params``.
    """
    found = cls.params_class or next(
        (
            args[0]
            for klass in cls.__mro__
            for base in getattr(klass, "__orig_bases__", ())
            if isinstance(origin := typing.get_origin(base), type) and issubclass(origin, Strategy)
            if (args := typing.get_args(base)) and isinstance(args[0], type)
        ),
        Params,
    )
    if not (isinstance(found, type) and issubclass(found, Params)):
        raise StrategyError(
            f"{cls.__name__}'s params class {found!r} must subclass bot.strategy.Params"
        )
    return found
