"""What the WebSocket order entry counts, for ``/metrics``: plain ints, no metrics library.

``WsOrderEntry`` (``bot.execution.venue_ws``) and ``KrakenWsVenue`` keep one
``WsOrderStats``; ``bot.service.metrics.ws_orders_source`` reads it at scrape time. The
counting is done where the request ends (after its frame was written) or where the route
switches, never before the write: an attribute increment, one ``dict`` lookup per request
and a ``Histogram.observe`` of the ack latency (send to answer, on the injected clock).

Labels stay bounded: the method is one of Kraken's eight order methods, the outcome one
of ``OUTCOMES``, a refusal is named by its class in the error tree (``InsufficientFunds``,
``RateLimitError``, ``TokenError``...: one per remedy, never Kraken's free text), and a
fallback's reason one of ``REASONS``. No order id, no token.
"""

from __future__ import annotations

from typing import Final

from bot.core.errors import ExchangeError, OrderStateUnknown, TokenError
from bot.core.histogram import Histogram

__all__ = ["ACK_BUCKETS", "OUTCOMES", "REASONS", "MethodStats", "WsOrderStats"]

# Kraken answers an order in milliseconds; ``ack_timeout_s`` (10 s by default) ends the wait.
ACK_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
OUTCOMES: Final = ("ok", "refused", "unknown", "lost", "timeout")
"""ok: Kraken accepted; refused: Kraken refused it (nothing done); unknown: Kraken's answer
leaves the order's fate open (``EService:Unavailable``...); lost: the connection ended
before the answer; timeout: no answer within ``ack_timeout_s``. The last three make the
order UNKNOWN, resolved by lookup."""
REASONS: Final = ("socket_down", "token_refused")
"""Why a write went over REST: the executions subscription was not live, or Kraken
refused the token (it did not act on the write)."""


class MethodStats:
    """One order method's requests by outcome, and its ack latency."""

    __slots__ = ("ack", "lost", "ok", "refused", "timeouts", "unknown")

    def __init__(self) -> None:
        self.ok = 0
        self.unknown = 0
        self.lost = 0
        self.timeouts = 0
        self.refused: dict[str, int] = {}  # error class name -> count
        self.ack = Histogram(ACK_BUCKETS)

    def answered_with(self, error: ExchangeError) -> None:
        """Kraken answered with ``error``: unknown if the order may exist, else refused."""
        if isinstance(error, OrderStateUnknown):
            self.unknown += 1
        else:
            name = type(error).__name__
            self.refused[name] = self.refused.get(name, 0) + 1

    def outcomes(self) -> list[tuple[str, str, int]]:
        """(outcome, error class or "", count): every outcome, zeros too."""
        out = [("ok", "", self.ok), ("unknown", "", self.unknown), ("lost", "", self.lost)]
        out.append(("timeout", "", self.timeouts))
        out += (("refused", name, n) for name, n in sorted(self.refused.items()))
        return out


class WsOrderStats:
    """Every count of the WebSocket order entry (see the module docstring)."""

    __slots__ = ("late_answers", "methods", "to_rest", "to_websocket", "token_refusals")

    def __init__(self) -> None:
        self.methods: dict[str, MethodStats] = {}
        self.late_answers = 0  # answers after the timeout: ignored, the lookup decided
        self.token_refusals = 0  # writes Kraken refused for the session's token
        self.to_rest = dict.fromkeys(REASONS, 0)  # switches to REST, by reason
        self.to_websocket = 0  # switches back to the WebSocket

    def of(self, method: str) -> MethodStats:
        stats = self.methods.get(method)
        if stats is None:
            stats = self.methods[method] = MethodStats()
        return stats

    def refused(self, method: str, error: ExchangeError) -> None:
        """Kraken answered ``method`` with ``error``."""
        self.of(method).answered_with(error)
        if isinstance(error, TokenError):
            self.token_refusals += 1
