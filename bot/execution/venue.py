"""The venue port: the one typed protocol through which the bot talks to an exchange.

The execution engine (orders, reconciliation), the dead-man's switch, the token keeper and
the daemon's balance poller need these things of "Kraken", and only these: ``Venue``. An
implementation adapts one way of reaching an exchange; the engine cannot tell them apart,
so a new one needs no change to it:

- ``bot.execution.venue_rest.KrakenRestVenue``: Kraken spot over signed REST (the first);
- Kraken's WebSocket v2 order entry (requests correlated by ``req_id``, REST while the
  socket is down), the in-process simulator of a backtest (a simulated clock, orders
  reaching its matching engine after a latency), next;
- ``bot.execution.venue_futures.FuturesRestVenue``: Kraken Futures over REST v3 (its
  executions come from the WS v1 private feed, ``bot.execution.futures_feed``).

The contract
============

**Numbers are exact.** Quantities and prices going out are the engine's scaled ints, with
the ``Instrument`` that scales them; what comes back (``ExchangeOrder``, ``ExchangeTrade``,
balances) is ``Decimal`` exactly as the venue wrote it. Never a float. A UUID ``cl_ord_id``
comes back in the engine's canonical form (``orders.canonical_cl_ord_id``), whatever form
the venue printed.

**Order entry: one request each, never retried if it may have happened.**
``place(order, instrument)`` sends the engine's own ``Order`` (PENDING_NEW, its
``cl_ord_id`` already recorded on our side: side, type, quantity, price, time in force,
post-only) and returns the venue's order id. ``amend`` changes the quantity (the new total)
and/or the price in place; ``cancel`` cancels one order (by its venue id, else its
``cl_ord_id``); ``cancel_all`` cancels every order on the account (``instruments``: the
pairs with open orders, for venues that charge per pair) and returns how many.
``order_age_s`` is the seconds since the venue acknowledged or last amended the order, for
venues whose rate limits charge by it (Kraken spot); others ignore it.

**A write now, optionally.** A venue that can write a place synchronously offers
``place_now(order, instrument)``: the request written before it returns and the coroutine
of its answer (awaited, it returns or raises as ``place`` does), or None with nothing sent
or charged (the engine then calls ``place``). The engine records the order between the
write and the first ``await``, so nothing can tell the two orders apart (no answer is read
before then), and the work of keeping it is after the write (``PlaceNow``; the spot
WebSocket order entry has it). It reads only the order's ``OrderTerms``: the engine may
write a place from its ``PlaceTerms`` and make the ``Order`` after the write. So, for an
amend, ``amend_now(order, instrument, qty=, price=, order_age_s=)`` (``AmendNow``): the
amend written, or None with nothing sent or charged (the engine then calls ``amend``);
the engine flags the order's amend in flight between the write and the first ``await``.

**Errors, by remedy** (``bot.core.errors``), translated at the implementation's boundary (no
library exception passes): ``OrderStateUnknown`` when a write's answer was lost (a timeout,
a dropped connection, a 5xx, an answer without an order id): the engine looks the order up
by ``cl_ord_id`` and never resends; ``RejectedError`` (``InsufficientFunds``...) when the
venue refused it: nothing happened, never retried; ``RateLimitError``; ``TransientError``
(a read may be retried); ``AuthError`` (stop trading); ``ProtocolError`` for an answer that
cannot be trusted. A venue error missing from ``bot.core.errors``' table is a plain
``ExchangeError``, never data. ``code`` is the venue's own error string.

**Queries.** ``open_orders`` (all of them, or the one with ``cl_ord_id``);
``query_orders(order_ids)`` (any number; ids the venue does not know are left out);
``closed_orders`` and ``trades`` in pages (since ``start_s``, from ``offset``, newest first,
with the venue's total ``count`` so the engine can bound its reading; a venue that does not
say how many it has, or pages by time rather than offset, answers ``offset`` plus the
page's length, plus one while more may follow); ``balances`` by plain asset name (``BTC``,
``USD``).

**The switch and the token.** ``cancel_after(timeout_s)`` sets the venue's dead-man's
switch (0 disarms it) and answers with the delay until it fires as the venue counts it
(``CancelAfter``). ``ws_token()`` mints a token for one private WebSocket connection; it is
never logged (``WsToken`` hides it from ``repr``). It is only asked of a venue whose
private stream takes a token (Kraken spot): the daemon wires a token keeper for such a
feed alone, so a venue whose stream signs a challenge (Kraken Futures) or needs nothing
(the in-process simulator) may raise ``ProtocolError`` there.

**Room.** ``trading_headroom(symbol)`` and ``rest_headroom()``: what the venue's rate
limits (as the implementation models them) take now, read by the pre-trade stage's rate
room (``bot.execution.rate_room``); ``math.inf`` where the venue has no such limit (a
WebSocket amend spends no REST call).

**Room in fewer calls, optionally.** A venue whose trading counters are a
``bot.kraken.ratelimit.TradingCounter`` offers it (``trading_counter()``,
``CounterVenue``): the counter ``trading_headroom`` reads, keyed by the symbols it takes,
the same object for the venue's life. The rate room asks for it once, when it is built,
and reads a pair's room with the counter's own ``headroom(symbol, now)`` on every place;
that is exactly ``trading_headroom(symbol)`` at the same instant of the venue's clock. A
venue without it (the backtest's, Kraken Futures') is read through ``trading_headroom``.
Both Kraken spot venues have it: the WebSocket order entry charges the REST client's
counter.

**Executions are events, not answers.** No call returns executions. They reach the engine
through its sink, ``ExecutionEngine.on_private``, as ``VenueEvent`` values: an
``ExecutionsFrame`` of ``ExecutionReport``s (sparse, ``Decimal`` numbers, by ``cl_ord_id``
or order id), ``ExecutionsSubscribed`` on each (re)subscription (with its snapshot: the
engine then reconciles), ``SequenceGap`` (the engine reconciles) and
``PrivateDisconnected`` (the engine confirms each write with ``query_orders`` until the
next subscription). For Kraken spot the ``PrivateFeed`` (WS v2 ``executions``) delivers
them; a venue that produces its own (the in-process simulator) calls the sink itself with
the same events, acknowledgements and fills alike, after its latency.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

from bot.execution.orders import Order, OrderTerms
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import ExecutionsFrame
from bot.kraken.ratelimit import TradingCounter

__all__ = [
    "AmendNow",
    "CancelAfter",
    "CounterVenue",
    "EventSink",
    "ExchangeOrder",
    "ExchangeTrade",
    "ExecutionsSubscribed",
    "OrdersPage",
    "PlaceNow",
    "PrivateDisconnected",
    "SequenceGap",
    "TradesPage",
    "Venue",
    "VenueEvent",
    "WsToken",
]

_OPEN_STATUSES: Final = frozenset({"pending", "open"})


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class ExecutionsSubscribed:
    """The executions subscription is live; reconcile against ``snapshot``."""

    snapshot: ExecutionsFrame | None


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Update ``received`` arrived where ``expected`` was due: reconcile over REST."""

    expected: int
    received: int


@dataclass(frozen=True, slots=True)
class PrivateDisconnected:
    """The venue's executions stopped (the private socket closed): confirm by query."""

    reason: str


VenueEvent: TypeAlias = ExecutionsFrame | ExecutionsSubscribed | SequenceGap | PrivateDisconnected
"""What reaches the engine's ``on_private`` sink (see the module docstring)."""
EventSink: TypeAlias = Callable[[VenueEvent], None]


# ------------------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """One order as the venue shows it (Kraken: OpenOrders, QueryOrders, ClosedOrders)."""

    order_id: str
    cl_ord_id: str | None
    status: str  # pending | open | closed | canceled | expired
    pair: str  # the venue's name for the pair, as it wrote it (Kraken: an altname)
    symbol: str | None  # the WS symbol, when the pair is one of ours
    side: str
    order_type: str
    qty: Decimal  # the order's total
    filled: Decimal
    cost: Decimal
    avg_price: Decimal | None  # None until something filled
    limit_price: Decimal | None
    reason: str
    opened_ns: int
    closed_ns: int | None

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class ExchangeTrade:
    """One fill of one of the account's orders as the venue's trade history shows it."""

    exec_id: str  # unique per fill, the same id the executions events carry
    order_id: str
    pair: str
    side: str
    price: Decimal
    qty: Decimal
    cost: Decimal
    fee: Decimal  # in the quote currency
    ts_ns: int
    trade_id: str
    maker: bool | None


@dataclass(frozen=True, slots=True)
class OrdersPage:
    """One page of closed orders, and how many the venue has in all for the query."""

    orders: tuple[ExchangeOrder, ...]
    count: int


@dataclass(frozen=True, slots=True)
class TradesPage:
    """One page of trades, and how many the venue has in all for the query."""

    trades: tuple[ExchangeTrade, ...]
    count: int


@dataclass(frozen=True, slots=True)
class CancelAfter:
    """The dead-man's switch as the venue set it: ``delay_s`` until it fires as the venue
    counts it (None: off), and the venue's ``trigger_time`` as it wrote it (for people)."""

    delay_s: float | None
    trigger_time: str


@dataclass(frozen=True, slots=True)
class WsToken:
    """A token for one private WebSocket connection (``token`` never shown by ``repr``);
    ``expires_s``: how long it may wait for its first use, if the venue says."""

    token: str = field(repr=False)
    expires_s: int | None = None


class PlaceNow(Protocol):
    """A venue's optional synchronous place (see the module docstring)."""

    def place_now(
        self, order: OrderTerms, instrument: Instrument
    ) -> Coroutine[Any, Any, str] | None: ...


class AmendNow(Protocol):
    """A venue's optional synchronous amend (see the module docstring)."""

    def amend_now(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> Coroutine[Any, Any, None] | None: ...


@runtime_checkable
class CounterVenue(Protocol):
    """A venue's optional hand-out of its trading counter (see the module docstring)."""

    def trading_counter(self) -> TradingCounter: ...


@runtime_checkable
class Venue(Protocol):
    """An exchange as the bot uses it; the contract is the module docstring. (Runtime
    checkable, so a test can see that an implementation has every member.)"""

    # -- order entry ---------------------------------------------------------------------

    async def place(self, order: Order, instrument: Instrument) -> str: ...
    async def amend(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None: ...
    async def cancel(self, order: Order, instrument: Instrument, *, order_age_s: float) -> None: ...
    async def cancel_all(self, instruments: Sequence[Instrument]) -> int: ...
    async def cancel_after(self, timeout_s: int) -> CancelAfter: ...

    # -- what the venue knows ------------------------------------------------------------

    async def open_orders(self, *, cl_ord_id: str | None = None) -> list[ExchangeOrder]: ...
    async def query_orders(self, order_ids: Sequence[str]) -> list[ExchangeOrder]: ...
    async def closed_orders(
        self, *, start_s: int | None = None, offset: int = 0, cl_ord_id: str | None = None
    ) -> OrdersPage: ...
    async def trades(self, *, start_s: int, offset: int = 0) -> TradesPage: ...
    async def balances(self) -> Mapping[str, Decimal]: ...
    async def ws_token(self) -> WsToken: ...

    # -- room ----------------------------------------------------------------------------

    def trading_headroom(self, symbol: str) -> float: ...
    def rest_headroom(self) -> float: ...
