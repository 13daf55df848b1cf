"""Refused commands: every refusal counted by who refused and why, and logged sparingly.

This module owns ``Refusals``, the one mechanism through which the desk reports each
place, amend or cancel of a strategy that was not carried out (the pre-trade stage's
``Refusal`` and the engine's, told to the desk's router; a context's own): it counts the refusal by
``(source, strategy, action, reason)`` (``krakenbot_rejections_total`` and the status page
read these counts) and logs it, at most once per ``every_s`` for the same strategy, action,
source, reason and symbol. Repeats inside that interval are counted, not logged: the next
line of the same kind carries ``suppressed=N``, and ``flush`` (run every few seconds by the
daemon) reports a count that no later line did as one ``refusals_suppressed`` line, so a
storm of 500 refusals is a few lines with their counts, not 500 lines.

Sources (who refused), with their reasons:

==============  ==========================================================================
``desk``        the pre-trade stage's own checks (``bot.execution.pretrade``):
                ``not_ready`` (a readiness check fails), ``exchange_status``,
                ``rate_limit`` (the holdback that keeps room on the pair's trading counter
                to cancel); and ``shutting_down``
``risk``        the risk gate's code (``max_notional``, ``price_band``, ``order_rate``...)
``exchange``    Kraken's error code (``EOrder:Insufficient funds``...)
``engine``      ``unavailable`` (the order is not live, or its fate is being resolved),
                ``error`` (the request failed before it could be sent)
``intent``      an ``InvalidIntent`` raised to the strategy (``price_tick``, ``qty_min``...)
==============  ==========================================================================

Actions: ``place`` (logged as ``order_rejected``), ``amend`` (``amend_rejected``),
``cancel`` (``cancel_rejected``). It is pure apart from logging: the clock is injected, the
counts are plain ints, and ``on_count`` (the metrics' push) is called for each refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from structlog.typing import FilteringBoundLogger

from bot.core.clock import Clock

__all__ = ["EVENTS", "LOG_EVERY_S", "SOURCES", "Action", "Refusals"]

Action = Literal["place", "amend", "cancel"]
SOURCES: Final = ("desk", "risk", "exchange", "engine", "intent")
EVENTS: Final[Mapping[str, str]] = {
    "place": "order_rejected",
    "amend": "amend_rejected",
    "cancel": "cancel_rejected",
}
LOG_EVERY_S: Final = 5.0

_Count = tuple[str, str, str, str]  # source, strategy, action, reason
_Line = tuple[str, str, str, str, str]  # strategy, action, source, reason, symbol


class Refusals:
    """Counts and logs refusals; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        log: FilteringBoundLogger,
        *,
        every_s: float = LOG_EVERY_S,
        on_count: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        self._clock, self._log, self._every_s = clock, log, every_s
        self.on_count = on_count
        """Called with (source, strategy, action, reason) for each refusal."""
        self._counts: dict[_Count, int] = {}
        self._lines: dict[_Line, tuple[float, int]] = {}  # last line's time, repeats since

    def refuse(
        self,
        action: Action,
        source: str,
        reason: str,
        *,
        strategy: str,
        symbol: str = "",
        **fields: Any,
    ) -> None:
        """One refusal: counted, and logged unless the same was logged under ``every_s`` ago
        (then its ``fields``, e.g. ``cl_ord_id`` and ``detail``, are not logged either)."""
        count: _Count = (source, strategy, action, reason)
        self._counts[count] = self._counts.get(count, 0) + 1
        if self.on_count is not None:
            self.on_count(*count)
        line: _Line = (strategy, action, source, reason, symbol)
        now = self._clock.monotonic()
        last = self._lines.get(line)
        if last is not None and now - last[0] < self._every_s:
            self._lines[line] = (last[0], last[1] + 1)
            return
        self._lines[line] = (now, 0)
        self._log.warning(
            EVENTS[action], strategy=strategy, symbol=symbol, source=source, reason=reason,
            suppressed=0 if last is None else last[1], **fields,
        )  # fmt: skip

    def flush(self) -> None:
        """Log the repeats no later line reported (``refusals_suppressed``, with the count),
        once their interval is over; forget the lines that have nothing left to say."""
        now = self._clock.monotonic()
        for line, (at, repeats) in list(self._lines.items()):
            if now - at < self._every_s:
                continue
            if repeats:
                strategy, action, source, reason, symbol = line
                self._log.warning(
                    "refusals_suppressed", strategy=strategy, action=action, source=source,
                    reason=reason, symbol=symbol, count=repeats, over_s=round(now - at, 3),
                )  # fmt: skip
            del self._lines[line]

    def counts(self) -> dict[_Count, int]:
        """Refusals so far by (source, strategy, action, reason)."""
        return dict(self._counts)

    def total(self, source: str | None = None, reason: str | None = None) -> int:
        """How many refusals (of ``source``, for ``reason``) so far."""
        return sum(
            n
            for (src, _, _, why), n in self._counts.items()
            if source in (None, src) and reason in (None, why)
        )
