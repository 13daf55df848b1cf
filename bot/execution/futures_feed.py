"""The Kraken Futures private feed: WS v1 ``open_orders``/``fills`` into the engine's sink.

``FuturesPrivateFeed(url, api_key, api_secret, sink).run()`` keeps one connection to
``/ws/v1`` on the shared driver (``bot.net.ws.ReconnectingSocket``: backoff, staleness,
one ``TaskGroup`` a connection) and, on each connection:

1. asks for a challenge and signs it (``bot.futures.ws_auth``: the key pair never leaves
   this object, and no frame carrying the signature is logged);
2. subscribes ``open_orders``, ``fills``, ``open_positions`` and ``balances`` (and the
   ``heartbeat`` feed, so a quiet account still shows the connection alive);
3. turns frames into ``VenueEvent`` values for the engine (``bot.execution.venue``):
   the ``open_orders`` snapshot is ``ExecutionsSubscribed`` (the engine then reconciles
   over REST, so whatever happened while disconnected is found: fills, the dead-man's
   switch's cancels), updates and fills are ``ExecutionsFrame`` (``futures_reports``);
   a lost connection is ``PrivateDisconnected`` (the engine confirms its writes by query
   until the next subscription).

Positions and the margin account are kept as the venue last sent them (``positions``,
``balances``: ``open_positions`` and ``balances`` frames), for the strategy context and
the risk gate. A ``Failed to subscribe to authenticated feed`` error is an ``AuthError``:
it ends the feed (a bad key is a human's to fix). Events: ``futures_private_subscribed``,
``futures_private_error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from bot.core.backoff import Backoff
from bot.core.clock import Clock, SystemClock
from bot.core.errors import AuthError, BotError, ProtocolError
from bot.core.log import Secret, get_logger
from bot.execution.futures_reports import FuturesReports
from bot.execution.venue import EventSink, ExecutionsSubscribed, PrivateDisconnected
from bot.futures import ws_private as wp
from bot.futures import ws_protocol as wsp
from bot.futures.ws_auth import ChallengeHandshake
from bot.net.ws import ConnectionLost, ReconnectingSocket, Session, SocketStats

__all__ = ["FEEDS", "FuturesPrivateFeed", "MarginState", "PositionState"]

FEEDS: Final = ("open_orders", "fills", "open_positions", "balances")
log = get_logger(component="futures_private")


@dataclass(frozen=True, slots=True)
class PositionState:
    """One open position as Kraken Futures last reported it (signed size in contracts)."""

    symbol: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    unrealized_pnl: Decimal | None
    unrealized_funding: Decimal | None
    liquidation_price: Decimal | None
    effective_leverage: Decimal | None


@dataclass(frozen=True, slots=True)
class MarginState:
    """The multi-collateral margin account (USD) as last reported."""

    portfolio_value: Decimal
    margin_equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    available_margin: Decimal
    unrealized_pnl: Decimal
    unrealized_funding: Decimal


class FuturesPrivateFeed:
    """See the module docstring. ``sink``: the engine's ``on_private``."""

    def __init__(
        self,
        url: str,
        api_key: Secret,
        api_secret: Secret,
        sink: EventSink,
        *,
        clock: Clock | None = None,
        stale_after_s: float = 30.0,
        backoff: Backoff | None = None,
        subscribe_timeout_s: float = 10.0,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._handshake = ChallengeHandshake(api_key, api_secret)
        self._sink = sink
        self._reports = FuturesReports()
        self._subscribe_timeout_s = subscribe_timeout_s
        self.stats = SocketStats()
        self.subscribed = False
        self.positions: dict[str, PositionState] = {}
        self.margin: MarginState | None = None
        self._socket = ReconnectingSocket(
            url, self, name="futures_private", url_key="futures.ws_url", clock=self._clock,
            stats=self.stats, stale_after_s=stale_after_s, backoff=backoff,
        )  # fmt: skip

    @property
    def connected(self) -> bool:
        return self._socket.connected

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame (the feed's lag), None before the first."""
        return self._socket.frame_age_s()

    async def run(self) -> None:
        await self._socket.run()

    # -- the driver's hooks --------------------------------------------------------------

    async def prepare(self) -> None:
        return None

    def on_open(self, session: Session) -> None:
        self._handshake.reset()
        self.subscribed = False
        session.queue(self._handshake.request())
        session.queue(wsp.subscribe("heartbeat"))
        session.spawn(self._subscribe_deadline(session))

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None:
        try:
            event = wsp.parse_frame(raw)
        except ProtocolError as exc:
            self._socket.note_unparsed(str(exc), str(raw)[:120])
            return
        if isinstance(event, wsp.ChallengeIssued):
            self._handshake.accept(event)
            for feed in FEEDS:
                session.queue(self._handshake.subscribe(feed))
        elif isinstance(event, wp.OpenOrdersSnapshot):
            self.subscribed = True
            log.info("futures_private_subscribed", orders=len(event.orders))
            self._sink(ExecutionsSubscribed(self._reports.snapshot(event)))
        elif isinstance(event, wp.OpenOrderUpdate | wp.OpenOrderGone):
            self._sink(self._reports.update(event))
        elif isinstance(event, wp.FillsFrame):
            if event.fills:
                self._sink(self._reports.fills(event))
        elif isinstance(event, wp.OpenPositionsFrame):
            self.positions = {p.symbol: _position(p) for p in event.positions if p.balance}
        elif isinstance(event, wp.BalancesFrame):
            if event.flex is not None:
                self.margin = _margin(event.flex)
        elif isinstance(event, wsp.WsError | wsp.Alert):
            error = event.exception()
            log.error("futures_private_error", error=str(error))
            if isinstance(error, AuthError):
                raise error
            raise ConnectionLost(f"futures private feed: {error}")
        elif isinstance(event, wsp.SubscriptionChange) and not event.ok:
            raise ConnectionLost(f"futures private feed: {event.event} {event.feed}")

    def ping(self, session: Session) -> bytes | None:
        return wsp.subscribe("heartbeat")  # answered by a ``subscribed`` frame

    def on_close(self, error: BotError | None) -> None:
        self.subscribed = False
        if error is not None:
            reason = error.reason if isinstance(error, ConnectionLost) else str(error)
            self._sink(PrivateDisconnected(reason))

    async def _subscribe_deadline(self, session: Session) -> None:
        """Not subscribed ``subscribe_timeout_s`` after connecting: reconnect."""
        await self._clock.sleep(self._subscribe_timeout_s)
        if not self.subscribed:
            raise ConnectionLost(f"not subscribed {self._subscribe_timeout_s:.3g} s after connect")


def _position(p: wp.WsPosition) -> PositionState:
    return PositionState(
        symbol=p.symbol.upper(), size=p.balance, entry_price=p.entry_price,
        mark_price=p.mark_price, unrealized_pnl=p.pnl, unrealized_funding=p.unrealized_funding,
        liquidation_price=p.liquidation_threshold, effective_leverage=p.effective_leverage,
    )  # fmt: skip


def _margin(f: wp.FlexBalances) -> MarginState:
    return MarginState(
        portfolio_value=f.portfolio_value, margin_equity=f.margin_equity,
        initial_margin=f.initial_margin, maintenance_margin=f.maintenance_margin,
        available_margin=f.available_margin, unrealized_pnl=f.total_unrealized,
        unrealized_funding=f.unrealized_funding,
    )  # fmt: skip
