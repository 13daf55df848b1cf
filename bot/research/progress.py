"""Progress of a long job: a bar on a terminal, periodic log lines otherwise.

This module owns the ``Progress`` protocol that long-running research jobs report to (the
report's replay now; the backtester's data loop later) and its three displays:

* ``TerminalProgress``: one line redrawn in place on a terminal (``\\r``), at most every
  ``every_s``: label, bar, percentage, count and elapsed time; a final line at ``finish``.
* ``LogProgress``: a ``progress`` log event every ``every_s`` (10 s by default) and a
  ``progress_done`` event at ``finish``, for logs, containers and CI.
* ``NULL_PROGRESS``: nothing.

``progress_for(stream, clock)`` picks the bar when ``stream`` is a terminal, else log
lines. Time comes from an injected ``Clock`` (its ``monotonic``), so tests drive it by hand.
A job calls ``start(label, total)``, then ``advance(n)`` as often as it likes (the displays
rate-limit themselves), then ``finish()``. ``total`` may be ``None`` when unknown.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, TextIO

from bot.core.clock import Clock
from bot.core.log import get_logger

__all__ = [
    "NULL_PROGRESS",
    "LogProgress",
    "NullProgress",
    "Progress",
    "TerminalProgress",
    "progress_for",
]

_BAR_WIDTH: Final = 30


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """Shows nothing."""

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


NULL_PROGRESS: Final = NullProgress()


class _Counting:
    """What every display tracks: the label, the total, the count and when it started."""

    def __init__(self, clock: Clock, every_s: float) -> None:
        self._clock, self._every = clock, every_s
        self.label = ""
        self.total: int | None = None
        self.done = 0
        self._started = self._shown = 0.0

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done = label, total, 0
        self._started = self._shown = self._clock.monotonic()
        self._begin()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self._clock.monotonic()
        if now - self._shown >= self._every:
            self._shown = now
            self._show(now - self._started)

    def finish(self) -> None:
        self._end(self._clock.monotonic() - self._started)

    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def _begin(self) -> None:
        pass

    def _show(self, elapsed: float) -> None:
        raise NotImplementedError

    def _end(self, elapsed: float) -> None:
        raise NotImplementedError


class TerminalProgress(_Counting):
    """A bar redrawn in place on ``stream`` (a terminal)."""

    def __init__(self, stream: TextIO, clock: Clock, every_s: float = 0.1) -> None:
        super().__init__(clock, every_s)
        self._stream = stream

    def line(self, elapsed: float) -> str:
        pct = self.percent()
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        if pct is None:
            return f"{self.label} {count} {elapsed:.1f}s"
        filled = round(_BAR_WIDTH * pct / 100)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        return f"{self.label} [{bar}] {pct:5.1f}% {count} {elapsed:.1f}s"

    def _show(self, elapsed: float) -> None:
        self._stream.write("\r" + self.line(elapsed))
        self._stream.flush()

    def _end(self, elapsed: float) -> None:
        if self.total is not None:
            self.done = max(self.done, self.total)
        self._stream.write("\r" + self.line(elapsed) + "\n")
        self._stream.flush()


class LogProgress(_Counting):
    """``progress`` log events every ``every_s``; ``progress_done`` at the end."""

    def __init__(self, clock: Clock, every_s: float = 10.0, logger: Any = None) -> None:
        super().__init__(clock, every_s)
        self._log = logger if logger is not None else get_logger(component="progress")

    def _fields(self, elapsed: float) -> dict[str, Any]:
        fields: dict[str, Any] = {"task": self.label, "done": self.done}
        if self.total is not None:
            fields["total"] = self.total
        if (pct := self.percent()) is not None:
            fields["pct"] = round(pct, 1)
        fields["elapsed_s"] = round(elapsed, 1)
        return fields

    def _show(self, elapsed: float) -> None:
        self._log.info("progress", **self._fields(elapsed))

    def _end(self, elapsed: float) -> None:
        self._log.info("progress_done", **self._fields(elapsed))


def progress_for(stream: TextIO, clock: Clock) -> Progress:
    """A bar if ``stream`` is a terminal, else log lines."""
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return TerminalProgress(stream, clock)
    return LogProgress(clock)
