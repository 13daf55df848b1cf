"""``krakenbot run``'s signals from start-up to exit: none ends the process unlogged.

The daemon's own handlers (SIGTERM/SIGINT: a graceful stop; SIGHUP: reload) live on the
event loop, so they exist only while ``asyncio.run`` runs. Before it (reading the config,
importing strategies, starting the loop) and after it (the loop closing, the interpreter
exiting) a signal would take its default action: SIGTERM and SIGHUP would end the process
by signal, with no log line and an exit status no one documented. This module covers both
windows with plain handlers (``install``) that only take note:

- **before the loop**: each signal is kept, and ``replay`` logs it (``signal_received
  phase=starting``) and hands it to the loop's handlers once they are installed: a SIGTERM
  during start-up stops the daemon as soon as it can (exit 0), a SIGHUP is ignored (there
  is nothing to reload yet); a second SIGTERM/SIGINT exits at once with 130 and one raw
  line on stderr (``FORCED_LINE``), as a second one does while the daemon runs;
- **after the loop** (``after_loop``): a signal is ignored, so the exit status stays the one
  the run ended with, and ``drain`` (at the end of ``main_run``) logs it
  (``signal_ignored``).

A handler never logs itself: a Python-level handler runs between two bytecodes of the main
thread, which may be inside the logger, holding the lock that writes a line (a handler that
logged would wait for it forever). The notes are logged at safe points: ``replay``,
``drain``, and ``hold``'s loop.

The swaps between these handlers and the loop's run with the signals blocked
(``blocked``), so a signal in between waits for the new handler instead of the default.
The window left is the interpreter's own start, before ``bot.cli`` runs.

``hold(point)`` is a test hook: with ``KRAKENBOT_TEST_HOLD=POINT:FILE`` set, the process
logs ``test_hold`` at POINT (``startup``: handlers installed, config and strategies loaded,
before the loop; ``exit``: the loop gone, before the process exits) and waits there until
FILE exists (at most ``HOLD_MAX_S``). End-to-end tests send their signals in that pause: the
windows are otherwise milliseconds wide.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from bot.core.log import get_logger

__all__ = [
    "HOLD_ENV",
    "WATCHED",
    "after_loop",
    "blocked",
    "drain",
    "hold",
    "install",
    "replay",
    "wait_for_stop",
]

WATCHED: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STOPS: Final = (signal.SIGTERM, signal.SIGINT)
EXIT_FORCED: Final = 130
FORCED_LINE: Final = b"krakenbot: a second stop signal during start-up: exiting at once (130)\n"
HOLD_ENV: Final = "KRAKENBOT_TEST_HOLD"
HOLD_MAX_S: Final = 60.0
log = get_logger(component="signals")


class _State:
    """Process-wide, as signal handlers are: the phase, the signals not yet handled, and
    the notes not yet logged."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.pending: list[signal.Signals] = []
        self.unlogged: list[tuple[str, signal.Signals]] = []


_state = _State()


def _note(signum: int, _frame: Any) -> None:
    """The handler: list appends only (atomic under the GIL), never a lock nor a log; but a
    second stop signal during start-up exits at once, as one does while running (a start
    stuck in a strategy's import can still be interrupted)."""
    sig = signal.Signals(signum)
    if _state.phase == "starting":
        if sig in _STOPS and any(s in _STOPS for s in _state.pending):
            os.write(2, FORCED_LINE)  # a raw write: no lock the interrupted code may hold
            os._exit(EXIT_FORCED)
        _state.pending.append(sig)
    _state.unlogged.append((_state.phase, sig))


def drain() -> None:
    """Log the signals noted since the last call (call it where no log line is half
    written: never from a handler)."""
    while _state.unlogged:
        phase, sig = _state.unlogged.pop(0)
        if phase == "starting":
            log.warning("signal_received", signal=sig.name, phase=phase)
        else:
            log.warning("signal_ignored", signal=sig.name, reason="shutdown complete")


def install() -> None:
    """Note every watched signal from now on (``krakenbot run``'s first step)."""
    _state.phase = "starting"
    for sig in WATCHED:
        signal.signal(sig, _note)


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """The watched signals held back in the block; delivered when it ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def replay(handlers: Mapping[signal.Signals, Callable[[], object]]) -> None:
    """Hand the signals noted during start-up to the loop's ``handlers``, in order."""
    drain()
    pending, _state.pending = _state.pending, []
    for sig in pending:
        if sig == signal.SIGHUP:
            log.info("reload_ignored", reason="SIGHUP before the daemon started")
        elif sig in handlers:
            handlers[sig]()


def after_loop() -> None:
    """The loop's handlers are gone: from now on a signal is logged and ignored."""
    _state.phase = "stopped"
    for sig in WATCHED:
        signal.signal(sig, _note)


def wait_for_stop() -> signal.Signals:
    """Block until SIGTERM or SIGINT arrives (one noted already counts at once) and return
    it; SIGHUP meanwhile is noted, never acted on. ``krakenbot run`` waits here after a
    configuration error when told to (``bot.cli``): a supervisor then sees a process that
    stays up, unhealthy, rather than one to restart in a loop."""
    with blocked():
        noted = [*_state.pending, *(sig for _, sig in _state.unlogged)]
        stop: signal.Signals | None = next((sig for sig in noted if sig in _STOPS), None)
        if stop is None:
            stop = signal.Signals(signal.sigwait(set(_STOPS)))
    drain()
    return stop


def hold(point: str) -> None:
    """The test hook: wait at ``point`` while ``$KRAKENBOT_TEST_HOLD`` says so."""
    wanted, _, file = os.environ.get(HOLD_ENV, "").partition(":")
    if wanted != point or not file:
        return
    log.info("test_hold", point=point, file=file)
    deadline = time.monotonic() + HOLD_MAX_S
    while not Path(file).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
        drain()
