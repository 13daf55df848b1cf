"""The private feed and its token keeper (bot.execution.private_feed, bot.execution.tokens)
against real WebSockets on 127.0.0.1: the simulator's ``/v2-auth`` with its faults (expired
tokens, dropped and silent sockets, lost frames, REST failures), and for Kraken's other
token error string and an arbitrary first sequence number, a small in-test server.

Orders are placed over REST with the bot's own client (the one the token keeper uses), so
one client owns the API key's nonces. Every wait is bounded by ``WAIT_S``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock, FakeClock, SystemClock
from bot.core.errors import BotError
from bot.execution.private_feed import (
    ExecutionsSubscribed,
    PrivateConnected,
    PrivateDisconnected,
    PrivateEvent,
    PrivateFeed,
    SequenceGap,
    SequenceTracker,
)
from bot.execution.tokens import TokenKeeper
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import ExecutionsFrame
from bot.kraken.ratelimit import Tier, TradingCounter
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from tests.loopback.conftest import SimHandle

WAIT_S = 5.0  # the bound on every wait; scale up on a slow machine
RESTING = {"pair": "XBTUSD", "side": "buy", "ordertype": "limit", "volume": "0.001"}


def fast_backoff() -> Backoff:
    return Backoff(BackoffPolicy(initial_s=0.01, max_s=0.05))


async def until(cond: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    """Poll ``cond``: a bounded wait on state that several components own (the feed's
    counters, the simulator's book), which no single event announces."""
    try:
        async with asyncio.timeout(within):
            while not cond():  # noqa: ASYNC110 (polling across components, see above)
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Recorder:
    """The feed's sink: every event, in order."""

    def __init__(self) -> None:
        self.events: list[PrivateEvent] = []

    def __call__(self, event: PrivateEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events if not isinstance(e, ExecutionsFrame)]

    def reports(self, order_id: str) -> list[tuple[int | None, str | None]]:
        """(sequence, exec_type) of the updates about ``order_id``."""
        return [
            (frame.sequence, r.exec_type)
            for frame in self.of(ExecutionsFrame)
            for r in frame.reports
            if r.order_id == order_id
        ]


class RecordingKeeper(TokenKeeper):
    """The real keeper, remembering each token, and holding a mint while ``hold`` is set."""

    def __init__(self, rest: KrakenRestClient, clock: Clock) -> None:
        super().__init__(KrakenRestVenue(rest, InstrumentTable()), clock)
        self.tokens: list[str] = []
        self.hold: asyncio.Event | None = None
        self.waiting = False

    async def fresh(self) -> str:
        if self.hold is not None:
            self.waiting = True
            await self.hold.wait()
            self.waiting = False
        token = await super().fresh()
        self.tokens.append(token)
        return token


def rest_for(sim: SimHandle, clock: Clock) -> KrakenRestClient:
    return KrakenRestClient(
        sim.base_url,
        clock=clock,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        session=sim.session,
        retry=RetryPolicy(max_attempts=1),
    )


@asynccontextmanager
async def running(feed: PrivateFeed) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(feed.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not feed.subscribed


async def market_buy(rest: KrakenRestClient, sim: SimHandle) -> str:
    """A market buy that fills at once; waits for the synthetic market to quote first."""
    await until(lambda: sim.venue.exchange.book("BTC/USD").best_ask() is not None, "a quote")
    result = await rest.add_order("XBTUSD", "buy", "market", "0.001")
    (txid,) = result["txid"]
    return str(txid)


async def resting_buy(rest: KrakenRestClient) -> str:
    result = await rest.add_order("XBTUSD", "buy", "limit", "0.001", "1000.0", oflags="post")
    (txid,) = result["txid"]
    return str(txid)


# ------------------------------------------------------------------------------ pure


def test_sequence_tracker_reports_every_gap() -> None:
    seq = SequenceTracker()
    assert seq.check(8) is None  # the first number is the baseline, whatever it is
    assert seq.check(9) is None
    assert seq.check(None) is None  # no sequence field: not checked
    assert seq.check(12) == SequenceGap(expected=10, received=12)
    assert seq.check(13) is None
    assert seq.check(13) == SequenceGap(expected=14, received=13)  # a repeat is a gap too


# ------------------------------------------------------------------------------ simulator


async def test_subscribes_with_a_fresh_token_and_streams_an_orders_life(sim: SimHandle) -> None:
    clock = SystemClock()
    rest = rest_for(sim, clock)
    resting = await resting_buy(rest)
    keeper = RecordingKeeper(rest, clock)
    sink = Recorder()
    feed = PrivateFeed(sim.ws_private_url, keeper, sink, clock=clock, backoff=fast_backoff())
    async with running(feed):
        await until(lambda: feed.subscribed, "the subscription")
        (subscribed,) = sink.of(ExecutionsSubscribed)
        snapshot = subscribed.snapshot
        assert snapshot is not None and snapshot.snapshot
        assert [(r.order_id, r.exec_type) for r in snapshot.reports] == [(resting, "new")]
        assert not sink.of(ExecutionsFrame)  # the snapshot comes once, inside the event

        txid = await market_buy(rest, sim)
        await until(lambda: "filled" in {t for _, t in sink.reports(txid)}, "the fill")
        life = sink.reports(txid)
        kinds = [t for _, t in life]
        assert kinds[:2] == ["pending_new", "new"] and kinds[-1] == "filled"
        assert set(kinds[2:-1]) == {"trade"}
        sequences = [f.sequence for f in sink.of(ExecutionsFrame)]
        assert snapshot.sequence is not None
        assert sequences == list(
            range(snapshot.sequence + 1, snapshot.sequence + 1 + len(sequences))
        )
        assert sink.kinds() == ["PrivateConnected", "ExecutionsSubscribed"]
    assert len(keeper.tokens) == 1 and keeper.stats.minted == 1
    assert sink.kinds()[-1] == "ExecutionsSubscribed"  # cancelled: no event on the way out
    assert not sink.of(SequenceGap)


async def test_token_revoked_mid_session_is_replaced_and_no_fill_is_missed(
    sim: SimHandle,
) -> None:
    clock = SystemClock()
    rest = rest_for(sim, clock)
    keeper = RecordingKeeper(rest, clock)
    sink = Recorder()
    feed = PrivateFeed(sim.ws_private_url, keeper, sink, clock=clock, backoff=fast_backoff())
    async with running(feed):
        await until(lambda: feed.subscribed, "the subscription")
        keeper.hold = asyncio.Event()  # the next mint waits: the subscription stays down
        await sim.venue.faults.inject(kind="expire_token", account=sim.account)
        await until(lambda: keeper.waiting, "the feed to ask for a new token")
        assert not feed.subscribed
        (lost,) = sink.of(PrivateDisconnected)
        assert "EAPI:Invalid token" in lost.reason

        filled = await market_buy(rest, sim)  # while nobody listens
        resting = await resting_buy(rest)
        keeper.hold.set()
        await until(lambda: len(sink.of(ExecutionsSubscribed)) == 2, "the resubscription")
        snapshot = sink.of(ExecutionsSubscribed)[1].snapshot
        assert snapshot is not None
        seen = {(r.order_id, r.exec_type) for r in snapshot.reports}
        assert (filled, "trade") in seen  # snap_trades: the fill missed while down
        assert (resting, "new") in seen  # snap_orders: the order placed while down
    assert len(set(keeper.tokens)) == len(keeper.tokens) == 2
    assert sink.kinds()[:5] == [
        "PrivateConnected",
        "ExecutionsSubscribed",
        "PrivateDisconnected",
        "PrivateConnected",
        "ExecutionsSubscribed",
    ]
    assert feed.stats.token_failures == 1


async def test_dropped_socket_reconnects_with_a_new_token(sim: SimHandle) -> None:
    clock = SystemClock()
    keeper = RecordingKeeper(rest_for(sim, clock), clock)
    sink = Recorder()
    feed = PrivateFeed(sim.ws_private_url, keeper, sink, clock=clock, backoff=fast_backoff())
    async with running(feed):
        await until(lambda: feed.subscribed, "the subscription")
        await sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
        await until(lambda: len(sink.of(ExecutionsSubscribed)) == 2, "the resubscription")
        assert feed.subscribed
    assert len(set(keeper.tokens)) == 2
    assert sink.kinds()[:5] == [
        "PrivateConnected",
        "ExecutionsSubscribed",
        "PrivateDisconnected",
        "PrivateConnected",
        "ExecutionsSubscribed",
    ]
    assert feed.stats.reconnects == 1


async def test_silent_socket_is_closed_and_replaced(sim: SimHandle) -> None:
    clock = SystemClock()
    keeper = RecordingKeeper(rest_for(sim, clock), clock)
    sink = Recorder()
    feed = PrivateFeed(
        sim.ws_private_url, keeper, sink, clock=clock, stale_after_s=0.6, backoff=fast_backoff()
    )
    async with running(feed):
        await until(lambda: feed.subscribed, "the subscription")
        await until(lambda: feed.stats.frames >= 3, "heartbeats")  # status, ack, snapshot ...
        await sim.venue.faults.inject(kind="ws_silence", conn_kind="private", hold_s=30)
        await until(lambda: len(sink.of(ExecutionsSubscribed)) == 2, "the resubscription")
        (lost,) = sink.of(PrivateDisconnected)
        assert "no frame" in lost.reason
        # The new connection is not silenced: heartbeats and pongs keep it up.
        connects, frames = feed.stats.connects, feed.stats.frames
        await until(lambda: feed.stats.frames >= frames + 3, "frames on the new connection")
        assert feed.stats.connects == connects and feed.subscribed
    assert len(set(keeper.tokens)) == 2


async def test_lost_frames_show_as_a_sequence_gap(fake_sim: SimHandle) -> None:
    """Frames sent while the socket is silenced are lost; the next one reveals the gap."""
    clock = fake_sim.clock
    assert isinstance(clock, FakeClock)
    rest = rest_for(fake_sim, clock)
    sink = Recorder()
    feed = PrivateFeed(
        fake_sim.ws_private_url,
        TokenKeeper(KrakenRestVenue(rest, InstrumentTable()), clock),
        sink,
        clock=SystemClock(),  # the feed's watchdog on real time; the venue on fake time
        backoff=fast_backoff(),
    )
    async with running(feed):
        await until(lambda: feed.subscribed, "the subscription")
        snapshot = sink.of(ExecutionsSubscribed)[0].snapshot
        assert snapshot is not None and snapshot.sequence is not None
        first = snapshot.sequence
        await fake_sim.venue.faults.inject(kind="ws_silence", conn_kind="private", hold_s=10)
        lost = await resting_buy(rest)  # pending_new and new: two frames lost
        clock.advance(11)
        kept = await resting_buy(rest)
        await until(lambda: len(sink.reports(kept)) == 2, "the second order's reports")
        assert sink.reports(lost) == []
        assert sink.of(SequenceGap) == [SequenceGap(expected=first + 1, received=first + 3)]
        # The gap comes just before the frame that revealed it, and that frame is delivered.
        gap_at = sink.events.index(sink.of(SequenceGap)[0])
        after = sink.events[gap_at + 1]
        assert isinstance(after, ExecutionsFrame) and after.sequence == first + 3
        assert [s for s, _ in sink.reports(kept)] == [first + 3, first + 4]
        assert feed.stats.sequence_gaps == 1
        assert feed.subscribed  # a gap is the engine's to reconcile, not a reconnect


async def test_a_failed_token_mint_is_retried(sim: SimHandle) -> None:
    clock = SystemClock()
    keeper = RecordingKeeper(rest_for(sim, clock), clock)
    sink = Recorder()
    feed = PrivateFeed(sim.ws_private_url, keeper, sink, clock=clock, backoff=fast_backoff())
    await sim.venue.faults.inject(
        kind="rest_error", endpoint="GetWebSocketsToken", error="EService:Unavailable", count=2
    )
    async with running(feed):
        await until(lambda: feed.subscribed, "the subscription")
    assert feed.stats.token_failures == 2 and keeper.stats.failures == 2
    assert len(keeper.tokens) == 1
    assert sink.kinds()[:2] == ["PrivateConnected", "ExecutionsSubscribed"]  # no connect first


async def test_krakens_rate_threshold_is_compared_with_the_tier_and_the_stricter_used(
    sim: SimHandle,
) -> None:
    """The simulator's account is Starter (maxratecount 60); the client was configured Pro
    (180): the ack's threshold is adopted, with a warning naming both."""
    clock = SystemClock()
    keeper = RecordingKeeper(rest_for(sim, clock), clock)
    counter = TradingCounter(Tier.PRO)
    feed = PrivateFeed(
        sim.ws_private_url, keeper, Recorder(), clock=clock, backoff=fast_backoff(),
        trading_counter=counter,
    )  # fmt: skip
    with capture_logs() as logs:
        async with running(feed):
            await until(lambda: feed.subscribed, "the subscription")
    assert feed.stats.maxratecount == 60
    assert counter.threshold == 60  # stricter than Pro's 180
    (warning,) = [e for e in logs if e["event"] == "rate_threshold_differs"]
    assert (warning["kraken"], warning["configured"], warning["using"]) == (60, 180, 60)


# ------------------------------------------------------------------------------ in-test server


class StaticTokens:
    """Tokens without REST: ``t1``, ``t2``, ..."""

    def __init__(self) -> None:
        self.minted = 0

    async def fresh(self) -> str:
        self.minted += 1
        return f"t{self.minted}"


@asynccontextmanager
async def scripted_server(
    script: Callable[[ServerConnection, dict[str, Any], int], Any],
) -> AsyncIterator[str]:
    """A WS server calling ``script(ws, subscribe_request, n)`` for the n-th subscribe."""
    count = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal count
        with suppress(ConnectionClosed):  # the feed is cancelled at the end of each test
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("method") == "subscribe":
                    count += 1
                    await script(ws, msg, count)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v2"


def frame(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


STAMP = "2024-01-01T00:00:00.000000Z"


async def test_session_error_gets_a_new_token_and_sequences_start_anywhere() -> None:
    requests: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, msg: dict[str, Any], n: int) -> None:
        requests.append(msg)
        base = {"method": "subscribe", "req_id": msg["req_id"], "time_in": STAMP}
        if n == 1:  # Kraken's captured refusal (KRAKEN.md §4)
            await ws.send(frame({**base, "error": "ESession:Invalid session", "success": False}))
            return
        result = {"channel": "executions", "snap_orders": True, "snap_trades": True}
        await ws.send(frame({**base, "result": result, "success": True}))
        report = {"order_id": "O1", "exec_type": "new", "order_status": "new"}
        for seq, kind in ((7, "snapshot"), (8, "update"), (10, "update")):
            data = [report] if kind == "update" else []
            msg_out = {"channel": "executions", "type": kind, "data": data, "sequence": seq}
            await ws.send(frame(msg_out))

    tokens = StaticTokens()
    sink = Recorder()
    async with scripted_server(script) as url:
        feed = PrivateFeed(url, tokens, sink, clock=SystemClock(), backoff=fast_backoff())
        async with running(feed):
            await until(lambda: len(sink.of(ExecutionsFrame)) == 2, "two updates")
    assert [r["params"]["token"] for r in requests] == ["t1", "t2"]
    assert all(r["params"]["snap_orders"] and r["params"]["snap_trades"] for r in requests)
    assert sink.of(SequenceGap) == [SequenceGap(expected=9, received=10)]
    assert sink.kinds() == [
        "PrivateConnected",
        "PrivateDisconnected",  # refused on first use: reconnect after the backoff
        "PrivateConnected",
        "ExecutionsSubscribed",
        "SequenceGap",
    ]
    assert isinstance(sink.events[0], PrivateConnected)
    (first_loss,) = sink.of(PrivateDisconnected)
    assert "ESession:Invalid session" in first_loss.reason


async def test_a_subscription_never_answered_is_abandoned() -> None:
    async def script(ws: ServerConnection, msg: dict[str, Any], n: int) -> None:
        if n >= 2:
            result = {"channel": "executions"}
            await ws.send(frame({"method": "subscribe", "result": result, "success": True}))
            await ws.send(frame({"channel": "executions", "type": "snapshot", "data": []}))

    tokens = StaticTokens()
    sink = Recorder()
    async with scripted_server(script) as url:
        feed = PrivateFeed(
            url,
            tokens,
            sink,
            clock=SystemClock(),
            subscribe_timeout_s=0.2,
            backoff=fast_backoff(),
        )
        async with running(feed):
            await until(lambda: feed.subscribed, "the second subscription")
    (lost,) = sink.of(PrivateDisconnected)
    assert "not subscribed" in lost.reason and tokens.minted == 2


async def test_a_bad_url_stops_the_feed() -> None:
    feed = PrivateFeed("not a url", StaticTokens(), Recorder(), clock=SystemClock())
    with pytest.raises(BotError, match="ws_private_url"):
        async with asyncio.timeout(WAIT_S):
            await feed.run()


async def test_a_streamed_rate_count_floors_the_local_counter() -> None:
    """With ``ratecounter`` Kraken streams the pair's count on execution reports; updates are
    sparse, so the pair of a report without ``symbol`` is the one its order was seen with."""
    requests: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, msg: dict[str, Any], n: int) -> None:
        requests.append(msg)
        result = {"channel": "executions", "maxratecount": 60, "snap_orders": True}
        ack = {"method": "subscribe", "req_id": msg["req_id"], "result": result, "success": True}
        await ws.send(frame(ack))
        new = {"order_id": "O1", "symbol": "BTC/USD", "exec_type": "new", "ratecount": 12.5}
        await ws.send(frame({"channel": "executions", "type": "snapshot", "data": [new]}))
        amended = {"order_id": "O1", "exec_type": "amended", "ratecount": 17}  # no symbol
        await ws.send(frame({"channel": "executions", "type": "update", "data": [amended]}))

    counter = TradingCounter(Tier.STARTER)
    clock = FakeClock()  # the counter does not decay while the test runs
    sink = Recorder()
    async with scripted_server(script) as url:
        feed = PrivateFeed(
            url, StaticTokens(), sink, clock=clock, backoff=fast_backoff(),
            trading_counter=counter,
        )  # fmt: skip
        async with running(feed):
            await until(lambda: len(sink.of(ExecutionsFrame)) == 1, "the update")
    assert requests[0]["params"]["ratecounter"] is True
    assert counter.value("BTC/USD", clock.monotonic()) == 17.0
    assert counter.threshold == 60  # Starter's: Kraken agrees, nothing to adopt
