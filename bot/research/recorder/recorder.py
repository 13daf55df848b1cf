"""The recorder: Kraken's public feed written to files as received, with its gaps marked.

``Recorder(url, market, writer).run()`` is the live feed (``bot.market.feed.Feed``: the same
WebSocket driver, subscriptions, watchdog, reconnects and resubscriptions the daemon uses)
with a tap: every message is written (``RotatingWriter.write_frame``) with its wall-clock
receive time *before* the feed parses it, exactly as received, and then goes through
``MarketFrames`` like the daemon's, which verifies every book checksum. What the feed says
about its books becomes gap markers in the files:

=========================  =============================================================
feed event                 written
=========================  =============================================================
``FeedDisconnected``       gap, every book, ``disconnected`` (the socket dropped, went
                           silent, or failed; the gap lasts until the next snapshots)
``BookInvalid`` (not by a  gap, that symbol, with the reason (``checksum mismatch``,
disconnect)                ``bad frame``, ``instrument changed``, ``depth changed``);
                           the feed resubscribes the symbol for a fresh snapshot
=========================  =============================================================

A checksum mismatch is written as received (the recorder never alters what Kraken sent),
then its gap marker; ``krakenbot replay`` finds the same mismatch. Every new file begins
with the latest instrument snapshot, and the recorder asks fresh book snapshots when it
rotates (``Feed.refresh_books``), so any one file replays on its own.

This module owns that wiring and its counters; files are ``files``', the command
``bot.service.recorder``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from bot.config import MarketConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError
from bot.core.log import get_logger
from bot.market.feed import (
    BookInvalid,
    Feed,
    FeedDisconnected,
    FeedEvent,
    SubscriptionFailed,
    should_reconnect,
)
from bot.research.recorder.files import RotatingWriter

__all__ = ["Recorder", "RecorderStats"]

log = get_logger(component="record")

_INSTRUMENT_SNAPSHOT: Final = (b'"channel":"instrument"', b'"type":"snapshot"')
DISCONNECTED: Final = "disconnected"


@dataclass
class RecorderStats:
    gaps: dict[str, int] = field(default_factory=dict)  # by reason
    subscription_failures: int = 0


def _is_instrument_snapshot(data: bytes) -> bool:
    head = data[:120]
    return all(marker in head for marker in _INSTRUMENT_SNAPSHOT)


class Recorder:
    """Kraken's public feed for ``market`` written by ``writer``; see the module docstring."""

    def __init__(
        self,
        url: str,
        market: MarketConfig,
        writer: RotatingWriter,
        *,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        resync_backoff: BackoffPolicy | None = None,
        reconnect: Callable[[BotError], bool] = should_reconnect,
        healthy_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.writer = writer
        self.stats = RecorderStats()
        self._instrument: bytes | None = None  # the latest instrument snapshot, as received
        self._recv_ns = 0
        self._files_seen = 0
        writer.on_new_file = self._on_new_file
        self.feed = Feed(
            url,
            market,
            self._on_event,
            clock=self._clock,
            backoff=backoff,
            resync_backoff=resync_backoff,
            reconnect=reconnect,
            healthy_after_s=healthy_after_s,
            open_timeout_s=open_timeout_s,
            tap=self._on_raw,
        )

    @property
    def books_valid(self) -> bool:
        """Every book the feed keeps verified its last frame (False before the first;
        always True when no book is recorded)."""
        if "book" not in self.feed.market.channels:
            return True
        books = self.feed.books
        return bool(books) and all(book.valid for book in books.values())

    async def run(self) -> None:
        """Record until cancelled (the writer is the caller's to close)."""
        await self.feed.run()

    # -- frames in -----------------------------------------------------------------------

    def _on_raw(self, raw: str | bytes) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        recv_ns = self._recv_ns = self._clock.time_ns()
        if _is_instrument_snapshot(data):
            self._instrument = data
        self.writer.write_frame(recv_ns, data)

    def _on_event(self, event: FeedEvent) -> None:
        kind = type(event)
        if kind is FeedDisconnected:
            self._gap(DISCONNECTED, None)
        elif kind is BookInvalid:
            invalid: BookInvalid = event  # type: ignore[assignment]
            if invalid.reason != DISCONNECTED:
                self._gap(invalid.reason, (invalid.symbol,))
        elif kind is SubscriptionFailed:
            self.stats.subscription_failures += 1

    def _gap(self, reason: str, symbols: tuple[str, ...] | None) -> None:
        now = self._clock.time_ns()
        if self.writer.write_gap(now, reason, symbols):
            gaps = self.stats.gaps
            gaps[reason] = gaps.get(reason, 0) + 1
        log.warning("record_gap", reason=reason, symbols=list(symbols) if symbols else "all")

    def _on_new_file(self, recv_ns: int) -> None:
        """A file was opened: it begins with the instrument snapshot; after the first, fresh
        book snapshots are asked so it replays on its own."""
        self._files_seen += 1
        if self._instrument is not None:
            self.writer.write_frame(recv_ns, self._instrument)
        if self._files_seen > 1:
            self.feed.refresh_books()
