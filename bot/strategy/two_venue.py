"""The context of ONE strategy on both venues (spot and Kraken Futures): calls routed by symbol.

A ``venue: both`` strategy (``bot.config.venues``) is one instance with one runner, and
``TwoVenueContext`` is its ``Context``: a composition over one context per venue (the
daemon's ``EngineContext`` on spot, ``FuturesContext`` on Futures, or the harness's
``FakeContext``), each attached once its venue's desk and engine exist. Every call that
names a symbol or an order goes to that venue's context (``place``, ``amend``, ``cancel``,
``book``, ``instrument``, ``position``; ``derivatives`` and ``margin`` to Futures'), so the
order goes through that venue's risk gate, rate counters, store and idempotency, unchanged;
the views without a symbol merge both (``open_orders``, ``positions``); ``balance`` is
spot's account (Futures' is ``margin()``); ``cancel_all`` and ``batch`` span both.
``venue_ready(venue)``: whether that venue's readiness gate is open now (a venue not ready
refuses its orders ``not_ready``, as for any strategy). It owns its timers (one runner)
and no task or socket.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from bot.core.clock import Clock
from bot.execution.commands import Command
from bot.kraken.instruments import Instrument
from bot.strategy.api import (
    BookSnapshot,
    Context,
    DerivativesPosition,
    InstrumentInfo,
    InvalidIntent,
    MarginInfo,
    OrderHandle,
    OrderType,
    Side,
    StrategyError,
    TimeInForce,
)
from bot.strategy.runner import Timers

__all__ = ["TwoVenueContext"]

SPOT, FUTURES = "spot", "futures"


class TwoVenueContext(Context):
    """See the module docstring. ``symbols``: the strategy's symbols by venue name."""

    def __init__(self, name: str, symbols: Mapping[str, tuple[str, ...]], clock: Clock) -> None:
        super().__init__(name, (s for syms in symbols.values() for s in syms), clock)
        self._venue_of = {s: venue for venue, syms in symbols.items() for s in syms}
        self._by_venue = dict(symbols)
        self._sides: dict[str, Context] = {}
        self._ready: dict[str, Callable[[], bool]] = {}
        self.timers = Timers(clock)

    def attach(self, venue: str, ctx: Context, ready: Callable[[], bool]) -> None:
        """``venue``'s context (its desk and engine wired) and its readiness."""
        if venue not in self._by_venue:
            raise StrategyError(f"{self._name}: no venue {venue!r} (it has {list(self._by_venue)})")
        self._sides[venue], self._ready[venue] = ctx, ready

    def symbols_on(self, venue: str) -> tuple[str, ...]:
        return self._by_venue.get(venue, ())

    def venue_of(self, symbol: str) -> str:
        """The venue ``symbol`` trades on; ``InvalidIntent`` for another symbol."""
        venue = self._venue_of.get(symbol)
        if venue is None:
            raise InvalidIntent("symbol", f"{symbol!r} is not one of {self._name}'s symbols")
        return venue

    def venue_ready(self, venue: str) -> bool:
        ready = self._ready.get(venue)
        return ready is not None and ready()

    def side(self, venue: str) -> Context:
        """``venue``'s own context (attached)."""
        ctx = self._sides.get(venue)
        if ctx is None:
            raise StrategyError(f"{self._name}: the {venue} venue is not connected yet")
        return ctx

    def _at(self, symbol: str) -> Context:
        return self.side(self.venue_of(symbol))

    def _owner(self, order: OrderHandle | str) -> Context:
        cid = order if isinstance(order, str) else order.cl_ord_id
        for ctx in self._sides.values():
            if ctx.order(cid) is not None:
                return ctx
        why = f"{cid!r} is not one of this strategy's orders ({self._name})"
        raise InvalidIntent("order", why)

    # -- commands: each to its venue -------------------------------------------------------

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
        return self._at(symbol).place(
            symbol, side, qty, price,
            order_type=order_type, time_in_force=time_in_force, post_only=post_only,
        )  # fmt: skip

    def amend(
        self, order: OrderHandle | str, *, qty: Decimal | None = None, price: Decimal | None = None
    ) -> bool:
        return self._owner(order).amend(order, qty=qty, price=price)

    def cancel(self, order: OrderHandle | str) -> bool:
        return self._owner(order).cancel(order)

    def cancel_all(self, symbol: str | None = None) -> int:
        if symbol is not None:
            return self._at(symbol).cancel_all(symbol)
        return sum(ctx.cancel_all() for ctx in self._sides.values())

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Each venue's batch at once: the block's commands go to each venue together."""
        with contextlib.ExitStack() as stack:
            for ctx in self._sides.values():
                stack.enter_context(ctx.batch())
            yield

    # -- views -----------------------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> tuple[OrderHandle, ...]:
        if symbol is not None:
            return self._at(symbol).open_orders(symbol)
        handles = [h for ctx in self._sides.values() for h in ctx.open_orders()]
        return tuple(sorted(handles, key=lambda h: h.order.created_ns))

    def order(self, cl_ord_id: str) -> OrderHandle | None:
        for ctx in self._sides.values():
            handle = ctx.order(cl_ord_id)
            if handle is not None:
                return handle
        return None

    def position(self, symbol: str) -> Decimal:
        return self._at(symbol).position(symbol)

    def positions(self) -> Mapping[str, Decimal]:
        return MappingProxyType(
            {s: q for c in self._sides.values() for s, q in c.positions().items()}
        )

    def balance(self, asset: str) -> Decimal:
        return self.side(SPOT).balance(asset)

    def balances(self) -> Mapping[str, Decimal]:
        return self.side(SPOT).balances()

    def book(self, symbol: str) -> BookSnapshot | None:
        return self._at(symbol).book(symbol)

    def instrument(self, symbol: str) -> InstrumentInfo:
        return self._at(symbol).instrument(symbol)

    def derivatives(self, symbol: str) -> DerivativesPosition | None:
        return self._at(symbol).derivatives(symbol)

    def margin(self) -> MarginInfo | None:
        return self.side(FUTURES).margin()

    # -- timers and metrics: the one strategy's ------------------------------------------

    def set_timer(self, name: str, delay_s: float, repeat: bool = False) -> None:
        self.timers.set(name, delay_s, repeat)

    def cancel_timer(self, name: str) -> bool:
        return self.timers.cancel(name)

    def metric(self, name: str, value: Decimal | float, *, symbol: str | None = None) -> None:
        ctx = self.side(SPOT) if symbol is None else self._at(symbol)
        ctx.metric(name, value, symbol=symbol)

    def count(self, name: str, n: int = 1, *, symbol: str | None = None) -> None:
        ctx = self.side(SPOT) if symbol is None else self._at(symbol)
        ctx.count(name, n, symbol=symbol)

    # -- ``Context``'s own members: each venue's context has them; ``place``, ``amend``
    # and ``cancel`` are routed whole above, so these only route too.

    def _instrument(self, symbol: str) -> Instrument:
        return self._at(symbol)._instrument(symbol)

    def _context_for(self, symbol: str) -> Context:
        return self._at(symbol)

    def _next_cl_ord_id(self) -> str:
        raise StrategyError("a two-venue context names no order: each venue's context does")

    def _track(self, handle: OrderHandle) -> None:
        self._at(handle.symbol)._track(handle)

    def _submit(self, command: Command) -> bool:
        return self._at(command.symbol)._submit(command)

    def _cancelling(self, cl_ord_id: str) -> bool:
        return self._owner(cl_ord_id)._cancelling(cl_ord_id)

    def _invalid(self, action: str, error: InvalidIntent, symbol: str, **fields: Any) -> None:
        self._at(symbol)._invalid(action, error, symbol, **fields)
