"""The rate room: whether a place or an amend leaves the venue's counters room to cancel.

Kraken spot charges every order write on the pair's trading counter, and an amend or a
cancel of a young order costs up to 8 points there (KRAKEN.md §2.2). A market maker that
quotes as fast as the counter allows would leave no room for the cancels of a pull or a
shutdown, which would then wait behind its own quotes. So the pre-trade stage holds a
place or an amend back (``rate_limit``) unless the pair's counter takes it *and* still has
room to cancel every open order on the pair (``CANCEL_RESERVE`` each, the youngest order's
penalty), and an amend also needs room on the REST call counter, which it spends too (only
AddOrder and CancelOrder are exempt there), beyond ``REST_RESERVE`` calls kept for the
dead-man's switch's refresh and a confirmation. A held-back amend is refused rather than
queued: its price would be stale by the time it left.

``RateRoom`` reads the room from two callables (the venue port's ``trading_headroom`` and
``rest_headroom``, or a test's); it is pure arithmetic on what they say now.

The place check is on every order's path, and through the venue port it is a chain of
calls (the WebSocket venue, the REST venue, the client, the counter), each a frame and an
object to fetch. So ``RateRoom.of(venue, clock)``, the daemon's, asks a venue that offers
it (``CounterVenue``) for its ``TradingCounter`` once, and builds a ``CounterRoom``, whose
``place_fits`` and ``amend_fits`` ask that counter's own ``headroom(symbol, now)``
directly: the same counter and clock the chain reads, so they decide exactly as the chain
would at that instant. Any other venue gets a ``RateRoom`` on its callables. ``rest_fits``
goes through the callables in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from bot.core.clock import Clock
from bot.execution.venue import CounterVenue, Venue
from bot.kraken.ratelimit import TradingCounter

__all__ = ["AMEND_COST_MAX", "CANCEL_RESERVE", "REST_RESERVE", "CounterRoom", "RateRoom"]

AMEND_COST_MAX: Final = 4.0  # an amend of a young order: 1 + Kraken's largest amend penalty
CANCEL_RESERVE: Final = 8.0  # trading-counter points kept free per open order: its cancel
REST_RESERVE: Final = 2.0  # REST calls kept free beside an amend's: the switch, a confirmation


class RateRoom:
    """Room on the trading counter of each pair (``trading(symbol)``) and on the REST call
    counter (``rest()``), as points or calls that can be spent now."""

    __slots__ = ("_rest", "_trading")

    def __init__(self, trading: Callable[[str], float], rest: Callable[[], float]) -> None:
        self._trading, self._rest = trading, rest

    @staticmethod
    def of(venue: Venue, clock: Clock) -> RateRoom:
        """The room of ``venue``, whose clock is ``clock``: a ``CounterRoom`` on its trading
        counter if it offers it (``CounterVenue``), else a ``RateRoom`` on its callables."""
        if isinstance(venue, CounterVenue):
            counter = venue.trading_counter()
            return CounterRoom(venue.trading_headroom, venue.rest_headroom, counter, clock)
        return RateRoom(venue.trading_headroom, venue.rest_headroom)

    @property
    def counter(self) -> TradingCounter | None:
        """The trading counter ``place_fits`` asks directly (None: it calls ``trading``)."""
        return None

    def place_fits(self, symbol: str, open_on_symbol: int) -> bool:
        """A new order on ``symbol`` (cost 1), and room left to cancel it and the
        ``open_on_symbol`` orders already there."""
        return self._trading(symbol) >= 1.0 + CANCEL_RESERVE * (open_on_symbol + 1)

    def amend_fits(self, symbol: str, open_on_symbol: int) -> bool:
        """An amend on ``symbol`` at its largest cost, and room left to cancel the
        ``open_on_symbol`` orders there (the amended one among them)."""
        return self._trading(symbol) >= AMEND_COST_MAX + CANCEL_RESERVE * open_on_symbol

    def rest_fits(self, calls: float = 1.0) -> bool:
        """``calls`` on the REST call counter, and ``REST_RESERVE`` left."""
        return self._rest() >= calls + REST_RESERVE


class CounterRoom(RateRoom):
    """A ``RateRoom`` whose ``place_fits`` and ``amend_fits`` ask the trading ``counter``
    itself, on ``clock``:
    the counter that ``trading`` reads, on the clock it reads it at (the module docstring).
    ``trading`` and ``rest`` serve the other checks."""

    __slots__ = ("_counter", "_headroom", "_now")

    def __init__(
        self,
        trading: Callable[[str], float],
        rest: Callable[[], float],
        counter: TradingCounter,
        clock: Clock,
    ) -> None:
        super().__init__(trading, rest)
        self._counter = counter
        self._headroom = counter.headroom  # the counters' own method: reads them live
        self._now = clock.monotonic  # ``time.monotonic`` itself on the system clock

    @property
    def counter(self) -> TradingCounter:
        return self._counter

    def place_fits(self, symbol: str, open_on_symbol: int) -> bool:
        """``RateRoom.place_fits`` with ``trading(symbol)`` asked of the counter itself."""
        return self._headroom(symbol, self._now()) >= 1.0 + CANCEL_RESERVE * (open_on_symbol + 1)

    def amend_fits(self, symbol: str, open_on_symbol: int) -> bool:
        """``RateRoom.amend_fits`` with ``trading(symbol)`` asked of the counter itself."""
        room = self._headroom(symbol, self._now())
        return room >= AMEND_COST_MAX + CANCEL_RESERVE * open_on_symbol
