"""One WS v2 ``instrument`` snapshot, fetched at start-up: the WS v2 names of every pair.

``await fetch_instrument_snapshot(url, clock=...)`` opens the public WebSocket (on the
shared driver, ``bot.net.ws``), subscribes to the ``instrument`` channel, returns the
snapshot's pairs as ``Instrument``s and closes. The daemon maps REST ``AssetPairs`` onto them
(``bot.kraken.instruments.merge_rest_names``) before anything is keyed by a symbol, so that
a pair Kraken names differently on REST and WS v2 (``XDG/USD`` and ``DOGE/USD``) is one pair
everywhere. The feed keeps the channel subscribed afterwards: later precision changes reach
its books.

Failures are ``TransientError`` (nothing arrived within ``timeout_s``, or the connection kept
failing: try again later) or ``ConfigError`` (the URL); a refused subscription is a
``RejectedError``.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock
from bot.core.errors import BotError, TransientError
from bot.kraken import codec
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.kraken.protocol import InstrumentFrame, Parser, SubscribeAck
from bot.net.ws import ReconnectingSocket, Session

__all__ = ["fetch_instrument_snapshot"]

_CHANNEL: Final = "instrument"


class _Snapshot:
    """The driver's handler: subscribe, wait for the snapshot, hand it over."""

    def __init__(self) -> None:
        self.done: asyncio.Future[tuple[Instrument, ...]] = (
            asyncio.get_running_loop().create_future()
        )
        self._parser = Parser(InstrumentTable())
        self._req_id = 0

    async def prepare(self) -> None:
        """Nothing to do before a connect."""

    def on_open(self, session: Session) -> None:
        self._req_id += 1
        session.queue(codec.subscribe_instrument(req_id=self._req_id))

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None:
        if self.done.done():
            return
        for event in self._parser.parse_safe(raw):
            if type(event) is InstrumentFrame and event.snapshot:
                self.done.set_result(event.instruments)
                return
            if type(event) is SubscribeAck and event.channel == _CHANNEL and not event.success:
                error = event.exception()
                if error is not None:
                    self.done.set_exception(error)
                    return

    def ping(self, session: Session) -> bytes:
        self._req_id += 1
        return codec.ping(req_id=self._req_id)

    def on_close(self, error: BotError | None) -> None:
        """A lost connection is the driver's to reopen; nothing to tidy here."""


async def fetch_instrument_snapshot(
    url: str,
    *,
    clock: Clock | None = None,
    timeout_s: float = 30.0,
    backoff: Backoff | None = None,
) -> tuple[Instrument, ...]:
    """The pairs of the WS v2 instrument snapshot at ``url`` (see the module docstring)."""
    handler = _Snapshot()
    socket = ReconnectingSocket(
        url,
        handler,
        name="instruments",
        url_key="venue.ws_public_url",
        clock=clock,
        backoff=backoff if backoff is not None else Backoff(BackoffPolicy(0.5, 5.0)),
    )
    run = asyncio.ensure_future(socket.run())
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.wait((run, handler.done), return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        raise TransientError(
            "WS:no instrument snapshot", f"none from {url} within {timeout_s:g} s"
        ) from None
    finally:
        run.cancel()
        try:
            await run
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        # (a run that ended first raised its error, a bad URL, from the ``await`` above)
        if not handler.done.done():
            handler.done.cancel()
    return handler.done.result()
