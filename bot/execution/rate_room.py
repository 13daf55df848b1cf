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
it (``LevelsVenue``) for its trading counter's ``TradingLevels`` once, and builds a
``LevelsRoom``, whose ``place_fits`` reads the pair's counter there itself, in one frame:
the counter's dict and limits read at each place (a pruned pair, a new threshold are seen
at once) and the clock at most once, with ``TradingCounter.headroom``'s arithmetic written
out, so it decides exactly as the chain would at that instant. Any other venue gets a
``RateRoom`` on its callables. ``amend_fits`` and ``rest_fits`` go through the callables
in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from bot.core.clock import Clock
from bot.execution.venue import LevelsVenue, Venue
from bot.kraken.ratelimit import TradingLevels

__all__ = ["AMEND_COST_MAX", "CANCEL_RESERVE", "REST_RESERVE", "LevelsRoom", "RateRoom"]

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
        """The room of ``venue``, whose clock is ``clock``: a ``LevelsRoom`` on its trading
        levels if it offers them (``LevelsVenue``), else a ``RateRoom`` on its callables."""
        if isinstance(venue, LevelsVenue):
            levels = venue.trading_levels()
            return LevelsRoom(venue.trading_headroom, venue.rest_headroom, levels, clock)
        return RateRoom(venue.trading_headroom, venue.rest_headroom)

    @property
    def levels(self) -> TradingLevels | None:
        """The trading levels ``place_fits`` reads directly (None: it calls ``trading``)."""
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


class LevelsRoom(RateRoom):
    """A ``RateRoom`` whose ``place_fits`` reads the trading counter's ``levels`` itself, on
    ``clock``: the counter that ``trading`` reads, on the clock it reads it at (the module
    docstring). ``trading`` and ``rest`` serve the other checks."""

    __slots__ = ("_levels", "_now")

    def __init__(
        self,
        trading: Callable[[str], float],
        rest: Callable[[], float],
        levels: TradingLevels,
        clock: Clock,
    ) -> None:
        super().__init__(trading, rest)
        self._levels = levels
        self._now = clock.monotonic  # ``time.monotonic`` itself on the system clock

    @property
    def levels(self) -> TradingLevels:
        return self._levels

    def place_fits(self, symbol: str, open_on_symbol: int) -> bool:
        """``RateRoom.place_fits`` with ``trading(symbol)`` read from the levels: their
        ``state`` and ``limits`` read now, never kept (``TradingLevels``' arithmetic written
        out: one frame on every order's path)."""
        levels = self._levels
        limits = levels.limits
        state = levels.state.get(symbol)
        if state is None:
            room = limits.maximum - 0.0
        else:
            level, stamp = state
            now = self._now()
            if now <= stamp:  # booked ahead: no decay before the stamp
                room = limits.maximum - level
            else:
                room = limits.maximum - max(0.0, level - (now - stamp) * limits.decay_per_s)
        return room >= 1.0 + CANCEL_RESERVE * (open_on_symbol + 1)
