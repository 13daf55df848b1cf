"""Paper trading on live prices: the Kraken client that feeds the simulator's live source.

``UpstreamMirror(venue, market, url, symbols, depth).run()`` subscribes to an upstream
Kraken public WS v2 (``sim.upstream_url``: Kraken's by default; in tests a second
simulator) through the daemon's own feed (``bot.market.feed.Feed``: the shared
reconnecting driver, checksum verification, resync of a bad book), and hands what it
says to ``LiveMarket``, applying the resulting actions to the venue at once (each through
``venue.execute``, so the venue's WebSocket subscribers get them as frames):

=========================  =============================================================
upstream feed event        the venue
=========================  =============================================================
``BookUpdated``            the mirror follows the verified book (``LiveMarket.on_book``)
``TradeFrame`` (updates)   prints published, paper orders filled (``on_prints``)
``BookInvalid``            that mirror frozen until its snapshot (a one-symbol resync)
``FeedDisconnected``       every mirror emptied; the venue's public WebSockets are closed
                           and refused (HTTP 503) until every upstream book is valid again
=========================  =============================================================

So while the upstream is down, the venue's books are invalid to its own subscribers (a
daemon's feed sees its socket drop, its readiness gate closes, and it reconnects once the
mirror is back). An upstream pair whose precisions differ from the simulator's pair table
is refused (logged; its mirror stays invalid), since the two books' checksums could never
agree.

It lives outside ``bot/sim`` on purpose: it is a Kraken *client* (the daemon's own feed,
with the client's checksum code), and the simulator itself never loads the client's
signer, rate limiter or checksum (``tests/unit/sim/test_independence.py``): only a
simulator asked for ``sim.source: live`` imports this module.

This module owns that wiring; the fill rule is ``bot.sim.live_source``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.config import Config, MarketConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock
from bot.core.errors import ConfigError
from bot.core.log import get_logger
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import TradeFrame
from bot.market.feed import (
    BookInvalid,
    BookUpdated,
    BookValid,
    Feed,
    FeedConnected,
    FeedDisconnected,
    FeedEvent,
)
from bot.net.ws import check_url
from bot.sim.live_source import LiveMarket, Print
from bot.sim.market_data import MarketAction
from bot.sim.pairs import default_instruments

if TYPE_CHECKING:
    from bot.sim.venue import SimVenue

__all__ = ["UpstreamMirror", "attach_live", "live_market"]

log = get_logger(component="paper_live")


class UpstreamMirror:
    """The upstream connection of a live venue; see the module docstring."""

    def __init__(
        self,
        venue: SimVenue,
        market: LiveMarket,
        url: str,
        symbols: Sequence[str],
        depth: int,
        *,
        clock: Clock | None = None,
        stale_after_s: float = 10.0,
        backoff: Backoff | None = None,
        resync_backoff: BackoffPolicy | None = None,
    ) -> None:
        self.venue = venue
        self.market = market
        self.depth = depth
        self._refused: set[str] = set()
        self._lost = asyncio.Event()
        config = MarketConfig(
            symbols=tuple(symbols),
            book_depth=depth,
            channels=("book", "trade"),
            stale_after_s=stale_after_s,
            ping_interval_s=max(stale_after_s, 1.0),
        )
        self.feed = Feed(
            url,
            config,
            self._on_event,
            clock=clock if clock is not None else venue.clock,
            backoff=backoff,
            resync_backoff=resync_backoff,
        )

    async def run(self) -> None:
        """Mirror until cancelled; close the venue's public sockets after each loss."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.feed.run(), name="sim-upstream-feed")
            while True:
                await self._lost.wait()
                self._lost.clear()
                for conn in self.venue.find_connections(kind="public"):
                    await conn.drop()

    # -- the feed's events ---------------------------------------------------------------

    def _on_event(self, event: FeedEvent) -> None:
        kind = type(event)
        market = self.market
        if kind is BookUpdated:
            updated: BookUpdated = event  # type: ignore[assignment]
            symbol = updated.symbol
            if symbol in self._refused:
                return
            book = updated.book
            self._apply(market.on_book(symbol, book.bids(self.depth), book.asks(self.depth)))
        elif kind is TradeFrame:
            frame: TradeFrame = event  # type: ignore[assignment]
            if frame.snapshot:
                return  # the channel's recent history, not new prints
            prints = [
                Print(t.symbol, t.side, t.price, t.qty, t.ord_type)
                for t in frame.trades
                if t.symbol not in self._refused
            ]
            self._apply(market.on_prints(prints))
        elif kind is BookValid:
            valid: BookValid = event  # type: ignore[assignment]
            self._check_precisions(valid.symbol)
        elif kind is BookInvalid:
            invalid: BookInvalid = event  # type: ignore[assignment]
            if invalid.reason != "disconnected":
                self._apply(market.on_invalid(invalid.symbol, clear=False))
        elif kind is FeedDisconnected:
            self._apply(market.on_disconnected())
            self._lost.set()
            lost: FeedDisconnected = event  # type: ignore[assignment]
            log.warning("upstream_lost", reason=lost.reason)
        elif kind is FeedConnected:
            log.info("upstream_connected", url=self.feed.url)

    def _check_precisions(self, symbol: str) -> None:
        upstream = self.feed.instruments.lookup(symbol)
        ours = self.venue.instruments.lookup(symbol)
        if upstream is None or ours is None:
            return
        same = (upstream.price_precision, upstream.qty_precision) == (
            ours.price_precision,
            ours.qty_precision,
        )
        if not same and symbol not in self._refused:
            self._refused.add(symbol)
            log.error(
                "upstream_precision_differs",
                symbol=symbol,
                upstream=[upstream.price_precision, upstream.qty_precision],
                simulator=[ours.price_precision, ours.qty_precision],
            )
        elif same:
            self._refused.discard(symbol)

    def _apply(self, actions: list[MarketAction]) -> None:
        if not actions:
            return
        venue = self.venue  # applied even while paused: the upstream does not pause
        venue.execute(lambda: venue.exchange.apply_market(actions, venue.now_ns()))


def live_market(config: Config) -> tuple[LiveMarket, InstrumentTable]:
    """The live source for ``config`` (``sim.symbols``, else the deployment's symbols), on
    the simulator's pair table."""
    symbols = tuple(config.sim.symbols) or config.symbols
    if not symbols:
        raise ConfigError("sim.source: 'live' needs symbols (sim.symbols or market.symbols)")
    try:
        instruments = default_instruments(symbols)
    except KeyError as exc:
        raise ConfigError(f"sim.symbols: the simulator has no pair {exc.args[0]}") from None
    unknown = [s for s in symbols if s not in instruments]
    if unknown:
        raise ConfigError(f"sim.symbols: the simulator has no pair {', '.join(unknown)}")
    return LiveMarket(instruments), instruments


def attach_live(venue: SimVenue, market: LiveMarket, config: Config) -> UpstreamMirror:
    """Connect ``venue``'s live ``market`` to ``sim.upstream_url`` (run with the venue)."""
    check_url(config.sim.upstream_url, "sim.upstream_url")
    market.attach(venue.exchange)
    mirror = UpstreamMirror(
        venue,
        market,
        config.sim.upstream_url,
        tuple(market.instruments),
        config.market.book_depth,
        stale_after_s=max(config.market.stale_after_s, 5.0),
    )
    venue.upstream = mirror
    log.info("live_source", upstream=config.sim.upstream_url, symbols=list(market.instruments))
    return mirror
