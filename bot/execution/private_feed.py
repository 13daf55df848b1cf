"""The private WebSocket driver: the ``executions`` channel, kept live across every fault.

``PrivateFeed(url, tokens, sink, clock=...).run()`` keeps one connection to Kraken's
authenticated WS v2 (``venue.ws_private_url``: ``wss://ws-auth.kraken.com/v2``, or the
simulator's ``/v2-auth``) subscribed to ``executions`` until it is cancelled. It only moves
frames: ``bot.kraken.protocol`` parses them, the execution engine interprets them. Events
reach the engine through one plain callback, ``sink(event)``, called in order:

=========================  ===========================================================
event                      when
=========================  ===========================================================
``PrivateConnected``       a connection opened (the subscribe is being sent)
``ExecutionsSubscribed``   the subscription is live; ``snapshot`` is the snapshot frame
                           (open orders and, with ``snap_trades``, the last 50 fills),
                           or None if none was asked for. Once per connection; the
                           snapshot is not sent again as a plain ``ExecutionsFrame``
``ExecutionsFrame``        an update (sparse reports: merge them by ``order_id``)
``SequenceGap``            an update's ``sequence`` is not the last one + 1: a message
                           was lost (or could not be parsed); reconcile over REST.
                           Sent just before the frame that revealed the gap
``PrivateDisconnected``    the connection ended (``reason``); ``PrivateConnected`` and
                           ``PrivateDisconnected`` alternate (cancelling ``run`` sends
                           no event: the connection just closes)
=========================  ===========================================================

Rate counter. The subscription asks for Kraken's trading rate counter (``ratecounter``).
The ack's ``maxratecount`` is Kraken's threshold for this account: when it differs from the
configured tier's, a warning says so, and the stricter of the two is used from then on by
the client's trading counter (``TradingCounter.adopt_threshold``). A count Kraken streams
(an execution report's ``ratecount``, for that report's pair) is a floor for the local
model (``TradingCounter.observe_floor``): the exchange is the truth, and the local model
never runs below it. Both need ``trading_counter``; without one they are only logged.

Tokens. Every connection starts with a token minted just before it (``TokenSource.fresh``,
KRAKEN.md §4); a token is never reused. A token or session error (``EAPI:Invalid token``,
``ESession:Invalid session``: ``TokenError`` through ``bot.core.errors``), which Kraken sends as a
failed ``subscribe`` without closing the socket, ends the connection: the feed closes it,
mints a new token and subscribes again on a new one. If the token failed after the
subscription had been live (revoked or expired mid-session), that happens at once; a
token refused on its first use goes through the backoff like any failure.

Sequence. ``sequence`` is counted per subscription (it restarts with each one): the
snapshot sets the baseline and each update must be the previous + 1. A gap is reported,
and the frame is still delivered. A frame that cannot be parsed is logged and counted;
the next frame then shows the gap.

Liveness. Kraken sends a heartbeat each second once subscribed. After ``stale_after_s / 2``
without any frame the watchdog sends a ping (its pong is a frame); after ``stale_after_s``
the connection is dead, and a subscription not live ``subscribe_timeout_s`` after the
connection opened is too: it is closed and a new one opened (with a new token).

Readiness. ``subscribed`` is the readiness gate's check; ``on_change`` (when set) is
called after every change that may turn it (a connection opened or closed, the
subscription live), so the gate can follow it rather than read it on every order
(``ReadinessGate.follow``).

The connection's life is ``bot.net.ws.ReconnectingSocket``'s, shared with the public feed:
reconnects forever after a capped, jittered backoff (``bot.core.backoff``) that starts again
from its shortest delay once a connection has lasted ``healthy_after_s``; a failure to mint
a token counts as a failed connect; only a malformed URL (``ConfigError``) stops the feed,
and whether to retry is the replaceable ``should_reconnect(error)``. websockets and socket
exceptions become ``PrivateConnectionLost`` (``bot.net.ws.ConnectionLost``) or
``ConfigError`` there; nothing above sees websockets. This module keeps what is the private
feed's own: the token per connection, the subscription, its sequence numbers and the rate
counter.

Order entry. With ``venue.order_entry: websocket`` the orders share this connection
(``bot.execution.venue_ws``): ``attach_orders`` routes Kraken's answers to order requests
(``MethodResponse``) there and tells it when the connection ends; ``send_order`` sends a
request built with this connection's token while the subscription is live (the token is
kept for the connection's life, in memory only), and ``order_ready`` says whether it is.
An order refused for its token ends the connection like a refused subscribe: a fresh
token, a new subscription, at once.

This module does not own order state, reconciliation or the readiness gate (the engine's);
it exposes ``subscribed`` and ``stats`` for them and for /metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from bot.core.backoff import Backoff
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, TokenError
from bot.core.log import get_logger
from bot.execution.tokens import TokenSource
from bot.execution.venue import ExecutionsSubscribed, PrivateDisconnected, SequenceGap
from bot.kraken import codec
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import (
    ExecutionReport,
    ExecutionsFrame,
    MethodResponse,
    Parser,
    Status,
    SubscribeAck,
    Unparsed,
)
from bot.net.ws import (
    ConnectionLost,
    ReconnectingSocket,
    Session,
    SocketStats,
    should_reconnect,
)

__all__ = [
    "ExecutionsSubscribed",
    "PrivateConnected",
    "PrivateConnectionLost",
    "PrivateDisconnected",
    "PrivateEvent",
    "PrivateFeed",
    "PrivateFeedStats",
    "PrivateSink",
    "RateCounterSink",
    "SequenceGap",
    "SequenceTracker",
    "TokenRejected",
    "should_reconnect",
]

_CHANNEL: Final = "executions"
_SYMBOLS_KEPT: Final = 4096  # order_id -> symbol, for sparse reports' rate counts

log = get_logger(component="private_feed")

PrivateConnectionLost = ConnectionLost
"""The private WebSocket failed to open, closed, went silent or lost its subscription."""


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class PrivateConnected:
    url: str
    connection: int  # 1 for the first connection, then counting


# ``PrivateDisconnected``, ``ExecutionsSubscribed`` and ``SequenceGap`` are the venue
# port's events (``bot.execution.venue``): what any venue tells the engine.


PrivateEvent = (
    ExecutionsFrame | PrivateConnected | PrivateDisconnected | ExecutionsSubscribed | SequenceGap
)
PrivateSink = Callable[[PrivateEvent], None]


class RateCounterSink(Protocol):
    """What the feed tells the client's trading counter (``bot.kraken.ratelimit``)."""

    @property
    def threshold(self) -> float: ...

    def adopt_threshold(self, maximum: float) -> bool: ...

    def observe_floor(self, pair: str | None, value: float, now: float) -> None: ...


# ------------------------------------------------------------------------------ errors


class TokenRejected(ConnectionLost):
    """Kraken refused the token (``EAPI:Invalid token``, ``ESession:Invalid session``).

    ``after_live``: the subscription had been live on it (revoked or expired mid-session),
    so a new token is minted at once (``retry_now``); otherwise the reconnect waits out the
    backoff.
    """

    def __init__(self, error: TokenError, *, after_live: bool) -> None:
        self.error = error
        self.after_live = after_live
        self.retry_now = after_live
        super().__init__(f"token refused: {error.code}")


# ------------------------------------------------------------------------------ pure parts


class SequenceTracker:
    """The ``sequence`` check of one subscription (pure)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: int | None = None

    def check(self, sequence: int | None) -> SequenceGap | None:
        """Record ``sequence``; the gap it reveals, if any. None (no field) is not checked."""
        if sequence is None:
            return None
        last, self.last = self.last, sequence
        if last is None or sequence == last + 1:
            return None
        return SequenceGap(last + 1, sequence)


@dataclass
class PrivateFeedStats(SocketStats):
    """Counters for /metrics. ``last_frame_at`` is on the feed's clock (monotonic)."""

    execution_frames: int = 0
    token_failures: int = 0  # minting failed, or Kraken refused a token
    subscriptions: int = 0
    sequence_gaps: int = 0
    maxratecount: int | None = None  # Kraken's trading threshold, from the last ack


class _Subscription:
    """What lives and dies with one connection's subscription."""

    __slots__ = ("live", "opened_at", "sequence")

    def __init__(self, now: float) -> None:
        self.opened_at = now
        self.live = False  # ExecutionsSubscribed sent on this connection
        self.sequence = SequenceTracker()


# ------------------------------------------------------------------------------ the feed


class PrivateFeed:
    """The ``executions`` subscription on ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        tokens: TokenSource,
        sink: PrivateSink,
        *,
        clock: Clock | None = None,
        stale_after_s: float = 10.0,
        backoff: Backoff | None = None,
        snap_orders: bool = True,
        snap_trades: bool = True,
        ratecounter: bool = True,
        trading_counter: RateCounterSink | None = None,
        subscribe_timeout_s: float = 10.0,
        healthy_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        reconnect: Callable[[BotError], bool] = should_reconnect,
    ) -> None:
        if stale_after_s <= 0 or subscribe_timeout_s <= 0:
            raise ValueError("stale_after_s and subscribe_timeout_s must be positive")
        self.url = url
        self._tokens = tokens
        self._sink = sink
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._snap_orders = snap_orders
        self._snap_trades = snap_trades
        self._ratecounter = ratecounter
        self._trading = trading_counter
        self._subscribe_timeout_s = subscribe_timeout_s
        self._parser = Parser(InstrumentTable())  # execution reports need no instruments
        self._req_id = 0
        self._token: str | None = None
        self._link_token: str | None = None  # this connection's: order requests carry it
        self._on_answer: Callable[[MethodResponse], None] | None = None
        self._on_link_lost: Callable[[str], None] | None = None
        self._sub: _Subscription | None = None
        self.on_change: Callable[[], None] | None = None  # ``subscribed`` may have turned
        self._symbols: dict[str, str] = {}  # order_id -> symbol (reports are sparse)
        self.stats = PrivateFeedStats()
        self._socket = ReconnectingSocket(
            url,
            self,
            name="private_feed",
            url_key="venue.ws_private_url",
            clock=self._clock,
            stats=self.stats,
            stale_after_s=stale_after_s,
            backoff=backoff,
            reconnect=reconnect,
            healthy_after_s=healthy_after_s,
            open_timeout_s=open_timeout_s,
            close_timeout_s=close_timeout_s,
        )

    @property
    def subscribed(self) -> bool:
        """The executions subscription is live (for the readiness gate)."""
        return self._sub is not None and self._sub.live

    @property
    def connected(self) -> bool:
        return self._socket.connected

    def frame_age_s(self) -> float | None:
        """Seconds since the last frame, None before the first."""
        return self._socket.frame_age_s()

    # -- order entry on this connection (bot.execution.venue_ws) -------------------------

    def attach_orders(
        self, on_answer: Callable[[MethodResponse], None], on_lost: Callable[[str], None]
    ) -> None:
        """Order entry shares this connection: answers to its requests go to
        ``on_answer``, and ``on_lost(reason)`` is called when the connection ends."""
        self._on_answer, self._on_link_lost = on_answer, on_lost

    @property
    def order_ready(self) -> bool:
        """Orders can be sent now: connected and the executions subscription live (the
        subscription is what keeps the connection's token valid, KRAKEN.md §4)."""
        sub = self._sub  # ``subscribed``, written out: on every order
        return self._link_token is not None and sub is not None and sub.live

    def write_order(self, build: Callable[[str], bytes]) -> bool:
        """``send_order`` without an ``await``: ``build(token)`` written now, or False with
        nothing built or written (no live connection, or one whose write would have to
        wait: then ``send_order``). A write the transport refuses raises
        ``ConnectionLost``."""
        session, token, sub = self._socket.session, self._link_token, self._sub
        if session is None or token is None or sub is None or not sub.live:  # ``subscribed``
            return False
        return session.write_now(build(token))

    async def send_order(self, build: Callable[[str], bytes]) -> bool:
        """Send ``build(token)`` on the live connection; False (nothing sent) when there is
        none. A connection that closes during the send raises ``ConnectionLost``."""
        session, token = self._socket.session, self._link_token
        if session is None or token is None or not self.subscribed:
            return False
        await session.send(build(token))
        return True

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Mint, connect, subscribe, and do it again after every loss, until cancelled."""
        await self._socket.run()

    # -- the driver's hooks (bot.net.ws.SocketHandler) -------------------------------------

    async def prepare(self) -> None:
        """A fresh token for every connection (KRAKEN.md §4); never reused."""
        self._token = None
        try:
            self._token = await self._tokens.fresh()
        except BotError as exc:
            self.stats.token_failures += 1
            log.warning("private_feed_token_failed", error=str(exc))
            raise

    def on_open(self, session: Session) -> None:
        self._sub = _Subscription(session.opened_at)
        self._changed()
        self._sink(PrivateConnected(self.url, session.number))
        token, self._token = self._token, None
        assert token is not None  # prepare() minted it
        self._link_token = token
        session.queue(
            codec.subscribe_executions(
                token,
                req_id=self._next_req_id(),
                snap_orders=self._snap_orders,
                snap_trades=self._snap_trades,
                ratecounter=self._ratecounter,
            )
        )
        session.spawn(self._subscribe_deadline(session))

    def on_message(self, session: Session, raw: str | bytes, now: float) -> None:
        sub = self._sub
        assert sub is not None
        for event in self._parser.parse_safe(raw):
            if type(event) is ExecutionsFrame:
                self._on_executions(sub, event, now)
            elif type(event) is SubscribeAck:
                self._on_subscribe_ack(sub, event)
            elif type(event) is Unparsed:
                self._socket.note_unparsed(event.reason, event.excerpt)
            elif type(event) is MethodResponse:
                self._on_method_answer(sub, event)
            elif type(event) is Status:
                log.info("private_feed_status", system=event.system)
            # heartbeats, pongs and other answers: liveness only

    def ping(self, session: Session) -> bytes:
        return codec.ping(req_id=self._next_req_id())

    def on_close(self, error: BotError | None) -> None:
        self._sub = None  # shutting down too: not subscribed, but no event
        self._link_token = None
        self._changed()
        reason = "shutting down"
        if error is not None:
            reason = error.reason if isinstance(error, ConnectionLost) else str(error)
            self._sink(PrivateDisconnected(reason))
        if self._on_link_lost is not None:
            self._on_link_lost(reason)  # order requests still waiting lost their answers

    def _changed(self) -> None:
        """``subscribed`` may have turned (each place that writes what it reads calls this)."""
        if self.on_change is not None:
            self.on_change()

    # -- the connection's tasks ----------------------------------------------------------

    async def _subscribe_deadline(self, session: Session) -> None:
        """A subscription not live ``subscribe_timeout_s`` after connecting: reconnect."""
        await self._clock.sleep(
            max(session.opened_at + self._subscribe_timeout_s - self._clock.monotonic(), 0.0)
        )
        sub = self._sub
        if sub is not None and not sub.live:
            raise PrivateConnectionLost(
                f"not subscribed {self._subscribe_timeout_s:.3g} s after connecting"
            )

    def _next_req_id(self) -> int:
        self._req_id += 1
        return self._req_id

    # -- frames in (synchronous) ---------------------------------------------------------

    def _on_subscribe_ack(self, sub: _Subscription, ack: SubscribeAck) -> None:
        if ack.channel not in (None, _CHANNEL):
            return  # not ours: this socket subscribes to nothing else
        if ack.success:
            log.info("executions_subscribe_ack", maxratecount=ack.maxratecount)
            if ack.maxratecount is not None:
                self._on_maxratecount(ack.maxratecount)
            if not (self._snap_orders or self._snap_trades):
                self._go_live(sub, None)  # no snapshot will come
            return
        error = ack.exception()
        if isinstance(error, TokenError):
            self.stats.token_failures += 1
            log.warning("private_feed_token_refused", error=error.code, live=sub.live)
            raise TokenRejected(error, after_live=sub.live)
        raise PrivateConnectionLost(f"subscribe refused: {ack.error}")

    def _on_method_answer(self, sub: _Subscription, answer: MethodResponse) -> None:
        """An answer to an order request: order entry's. One refused for its token
        (revoked or expired while the subscription lived on) ends the connection too: a new
        token is minted and the subscription made again at once, as after a refused
        subscribe, so that the next orders go over the socket again."""
        if self._on_answer is not None:
            self._on_answer(answer)
        error = answer.exception()
        if isinstance(error, TokenError):
            self.stats.token_failures += 1
            log.warning("private_feed_token_refused", error=error.code, method=answer.method)
            raise TokenRejected(error, after_live=sub.live)

    def _on_maxratecount(self, maximum: int) -> None:
        """Kraken's trading threshold for this account against the configured tier's."""
        self.stats.maxratecount = maximum
        trading = self._trading
        if trading is None:
            return
        configured = trading.threshold
        if maximum != configured:
            log.warning(
                "rate_threshold_differs",
                kraken=maximum,
                configured=configured,
                using=min(maximum, configured),
                hint="set venue.tier to match the account's verification level",
            )
        trading.adopt_threshold(maximum)

    def _on_executions(self, sub: _Subscription, frame: ExecutionsFrame, now: float) -> None:
        self.stats.execution_frames += 1
        self._note_rate_counts(frame.reports, now)
        if not sub.live:
            if frame.snapshot:
                sub.sequence.check(frame.sequence)  # the baseline
                self._go_live(sub, frame)
                return
            self._go_live(sub, None)  # an update first: no snapshot is coming
        gap = sub.sequence.check(frame.sequence)
        if gap is not None:
            self.stats.sequence_gaps += 1
            log.warning("executions_sequence_gap", expected=gap.expected, received=gap.received)
            self._sink(gap)
        self._sink(frame)

    def _note_rate_counts(self, reports: tuple[ExecutionReport, ...], now: float) -> None:
        """Remember each order's pair; a streamed ``ratecount`` floors that pair's counter."""
        symbols = self._symbols
        for report in reports:
            order_id = report.order_id
            symbol = report.symbol
            if symbol is not None and order_id is not None and order_id not in symbols:
                if len(symbols) >= _SYMBOLS_KEPT:
                    del symbols[next(iter(symbols))]
                symbols[order_id] = symbol
            count = report.ratecount
            if count is None:
                continue
            if symbol is None and order_id is not None:
                symbol = symbols.get(order_id)
            if self._trading is not None and symbol is not None:
                self._trading.observe_floor(symbol, float(count), now)
            log.debug("ratecount", symbol=symbol, count=str(count))

    def _go_live(self, sub: _Subscription, snapshot: ExecutionsFrame | None) -> None:
        sub.live = True
        self._changed()
        self.stats.subscriptions += 1
        reports = len(snapshot.reports) if snapshot is not None else None
        log.info("executions_subscribed", snapshot_reports=reports)
        self._sink(ExecutionsSubscribed(snapshot))
