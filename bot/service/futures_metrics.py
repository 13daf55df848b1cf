"""What ``/metrics`` shows of a Kraken Futures deployment's own parts.

The feeds use the spot feeds' families with their own ``feed`` label (``futures_public``,
``futures_private``): connection, frames, unparsed frames, connects, reconnects, failed
connects, book resyncs (here after a sequence gap or a crossed book) and lag; each book's
validity, mid and spread; the private subscription; the REST budget's headroom in
order-entry calls (``rest_headroom``). This module owns only that mapping.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.execution.futures_feed import FuturesPrivateFeed
from bot.execution.venue_futures import FuturesRestVenue
from bot.market.futures_feed import FuturesMarketFeed
from bot.net.ws import SocketStats
from bot.service.metrics import Sample, Source

__all__ = ["futures_source"]


def _socket(stats: SocketStats, label: str, age: float | None) -> Iterator[Sample]:
    f = (label,)
    yield Sample("feed_frames", stats.frames, f)
    yield Sample("feed_unparsed_frames", stats.unparsed, f)
    yield Sample("feed_connects", stats.connects, f)
    yield Sample("feed_reconnects", stats.reconnects, f)
    yield Sample("feed_connect_failures", stats.connect_failures, f)
    if age is not None:
        yield Sample("feed_frame_age_seconds", age, f)


def futures_source(
    market: FuturesMarketFeed, private: FuturesPrivateFeed, venue: FuturesRestVenue
) -> Source:
    def read() -> Iterator[Sample]:
        yield Sample("feed_connected", float(market.connected), ("futures_public",))
        yield from _socket(market.stats, "futures_public", market.frame_age_s())
        yield Sample("feed_resyncs", market.stats.resyncs, ("futures_public",))
        yield Sample("feed_connected", float(private.connected), ("futures_private",))
        yield from _socket(private.stats, "futures_private", private.frame_age_s())
        yield Sample("private_feed_subscribed", float(private.subscribed))
        yield Sample("rest_headroom", venue.rest_headroom())
        for symbol, book in market.books.items():
            yield Sample("book_valid", float(book.valid), (symbol,))
            mid, spread = (book.mid(), book.spread()) if book.valid else (None, None)
            if mid is not None and spread is not None:
                yield Sample("book_mid", float(mid), (symbol,))
                yield Sample("book_spread", spread / 10**book.instrument.price_precision, (symbol,))

    return read
