"""The REST client over real sockets on 127.0.0.1.

Part 1 runs against ``FakeKraken``, a small aiohttp app defined here: it verifies every
signature with ``bot.kraken.signer.verify``, refuses replayed nonces as Kraken does, counts
requests in flight, and answers from a per-method script of canned replies (Kraken errors,
HTTP errors, stalls). Part 2 runs against the real simulator (``sim_factory`` fixture),
mostly on a ``FakeClock`` shared by the venue and the client, with its fault injection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import random
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from bot.core.clock import FakeClock, SystemClock
from bot.core.errors import (
    ConfigError,
    ExchangeError,
    LockoutError,
    NonceError,
    OrderStateUnknown,
    ProtocolError,
    RateLimitError,
    RejectedError,
    TransientError,
)
from bot.kraken.instruments import Instrument
from bot.kraken.nonce import DEFAULT_RESERVE_NS, key_id
from bot.kraken.ratelimit import CounterLimits, RestCounter, Tier, TradingCounter
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from bot.kraken.signer import extract_nonce, verify
from bot.net.http1 import ConnectFailed, ConnectionLost
from bot.sim.faults import FaultKind, FaultSpec
from bot.store import Store
from tests.loopback.conftest import SimFactory, SimHandle

API_KEY = "test-api-key-0123456789"
API_SECRET = base64.b64encode(bytes(range(64))).decode()
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=4.0)
BTC = Instrument(
    symbol="BTC/USD",
    base="BTC",
    quote="USD",
    price_precision=1,
    qty_precision=8,
    altname="XBTUSD",
    rest_name="XXBTZUSD",
)


@dataclass
class Reply:
    """One scripted answer: a JSON body, or a raw HTTP status, or a stall."""

    body: Any = None
    status: int = 200
    text: str | None = None
    stall: bool = False

    @staticmethod
    def ok(result: Any) -> Reply:
        return Reply(body={"error": [], "result": result})

    @staticmethod
    def error(*messages: str) -> Reply:
        return Reply(body={"error": list(messages)})


DEFAULT_RESULTS: dict[str, Any] = {
    "Balance": {"ZUSD": "1000.0000", "XXBT": "0.5000000000"},
    "AddOrder": {"descr": {"order": "buy 0.001 XBTUSD @ limit 27500.0"}, "txid": ["OABC-1"]},
    "CancelOrder": {"count": 1},
    "CancelAll": {"count": 0},
    "OpenOrders": {"open": {}},
    "CancelAllOrdersAfter": {
        "currentTime": "2023-03-24T17:41:56Z",
        "triggerTime": "2023-03-24T17:42:56Z",
    },
}


@dataclass
class Seen:
    method: str
    nonce: int
    body: bytes
    content_type: str


@dataclass
class FakeKraken:
    url: str = ""
    last_nonce: int = 0
    seen: list[Seen] = field(default_factory=list)
    public_seen: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    scripts: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    release: asyncio.Event = field(default_factory=asyncio.Event)
    handler_delay: Callable[[], float] = lambda: 0.0
    counter: RestCounter | None = None  # refuse as Kraken would, on a shared clock
    clock: FakeClock | None = None
    dedicated: bool = True  # which transport the tests' clients use for private calls

    def script(self, method: str, *replies: Reply) -> None:
        self.scripts[method].extend(replies)

    def calls(self, method: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method]

    def _next(self, method: str) -> Reply:
        queue = self.scripts[method]
        return queue.popleft() if queue else Reply.ok(DEFAULT_RESULTS.get(method, {}))

    async def _answer(self, reply: Reply) -> web.StreamResponse:
        if reply.stall:
            await self.release.wait()
        if reply.text is not None:
            return web.Response(status=reply.status, text=reply.text)
        return web.json_response(reply.body, status=reply.status)

    async def private(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self.handler_delay()
            if delay:
                await asyncio.sleep(delay)
            method = request.match_info["method"]
            body = await request.read()
            nonce = extract_nonce(body, request.content_type)
            if request.headers.get("API-Key") != API_KEY:
                return web.json_response({"error": ["EAPI:Invalid key"]})
            sign = request.headers.get("API-Sign", "")
            if not verify(API_SECRET, request.path, nonce, body, sign):
                return web.json_response({"error": ["EAPI:Invalid signature"]})
            if nonce <= self.last_nonce:
                return web.json_response({"error": ["EAPI:Invalid nonce"]})
            self.last_nonce = nonce
            self.seen.append(Seen(method, nonce, body, request.content_type))
            if self.counter is not None and self.clock is not None:
                cost = self.counter.cost(method)
                if not self.counter.try_charge(cost, self.clock.monotonic()):
                    return web.json_response({"error": ["EAPI:Rate limit exceeded"]})
            return await self._answer(self._next(method))
        finally:
            self.in_flight -= 1

    async def public(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.public_seen.append(request.path_qs)
        return await self._answer(self._next(method))


@pytest.fixture(params=[True, False], ids=["dedicated", "session"])
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeKraken]:
    kraken = FakeKraken(dedicated=request.param)
    app = web.Application()
    app.router.add_post("/0/private/{method}", kraken.private)
    app.router.add_get("/0/public/{method}", kraken.public)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    kraken.url = f"http://{host}:{port}"
    yield kraken
    kraken.release.set()
    await runner.cleanup()


GENEROUS = CounterLimits(1_000_000, 1_000.0)


def client(fake: FakeKraken, clock: FakeClock, **kwargs: Any) -> KrakenRestClient:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("rng", random.Random(7))
    kwargs.setdefault("dedicated", fake.dedicated)
    return KrakenRestClient(fake.url, clock=clock, api_key=API_KEY, api_secret=API_SECRET, **kwargs)


def form(seen: Seen) -> list[tuple[str, str]]:
    return parse_qsl(seen.body.decode(), keep_blank_values=True)


# --- encoding and signing --------------------------------------------------------------------


async def test_form_body_is_signed_as_sent_with_the_nonce_first(fake: FakeKraken) -> None:
    async with client(fake, FakeClock()) as kraken:
        result = await kraken.add_order(
            BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="my-1", oflags=["post"]
        )
    assert result["txid"] == ["OABC-1"]
    (seen,) = fake.calls("AddOrder")
    assert seen.content_type == "application/x-www-form-urlencoded"
    assert form(seen) == [
        ("nonce", str(seen.nonce)),
        ("pair", "XBTUSD"),
        ("type", "buy"),
        ("ordertype", "limit"),
        ("volume", "0.00100000"),
        ("price", "27500.0"),
        ("cl_ord_id", "my-1"),
        ("oflags", "post"),
    ]


async def test_json_body_is_signed_as_sent(fake: FakeKraken) -> None:
    async with client(fake, FakeClock(), body_format="json") as kraken:
        await kraken.cancel_order(BTC, order_age_s=400, cl_ord_id="my-1")
        await kraken.add_order_batch(
            BTC,
            [
                {"ordertype": "limit", "type": "buy", "volume": "0.001", "price": "1.0"},
                {"ordertype": "limit", "type": "sell", "volume": "0.001", "price": "9.0"},
            ],
        )
    cancel, batch = fake.seen
    assert cancel.content_type == batch.content_type == "application/json"
    assert json.loads(cancel.body) == {"nonce": cancel.nonce, "cl_ord_id": "my-1"}
    assert list(json.loads(batch.body))[:2] == ["nonce", "pair"]
    assert json.loads(batch.body)["orders"][1]["price"] == "9.0"


async def test_results_keep_every_number_exact(fake: FakeKraken) -> None:
    fake.script("Balance", Reply(text='{"error":[],"result":{"a":0.10000000,"b":12}}'))
    async with client(fake, FakeClock()) as kraken:
        result = await kraken.balance()
    assert result == {"a": Decimal("0.10000000"), "b": 12}
    assert str(result["a"]) == "0.10000000"


async def test_scaled_ints_need_an_instrument_and_floats_are_refused(fake: FakeKraken) -> None:
    async with client(fake, FakeClock()) as kraken:
        with pytest.raises(TypeError, match="Instrument"):
            await kraken.add_order("XBTUSD", "buy", "limit", 100_000, "27500.0")
        with pytest.raises(TypeError):
            await kraken.add_order(BTC, "buy", "limit", 0.001, 275_000)  # type: ignore[arg-type]
        await kraken.add_order("XBTUSD", "sell", "limit", Decimal("0.0010"), "27500.0")
    (seen,) = fake.seen
    assert ("volume", "0.0010") in form(seen)
    assert ("pair", "XBTUSD") in form(seen)


async def test_public_calls_are_gets_with_a_query(fake: FakeKraken) -> None:
    fake.script("Depth", Reply.ok({"XXBTZUSD": {"asks": [], "bids": []}}))
    async with client(fake, FakeClock()) as kraken:
        assert await kraken.server_time() == {}
        assert "XXBTZUSD" in await kraken.depth(BTC, count=10)
    assert fake.public_seen == ["/0/public/Time", "/0/public/Depth?pair=XBTUSD&count=10"]
    assert fake.seen == []


# --- nonces ---------------------------------------------------------------------------------


async def test_concurrent_calls_are_serialised_and_arrive_in_nonce_order(
    fake: FakeKraken,
) -> None:
    rng = random.Random(1)
    fake.handler_delay = lambda: rng.random() * 0.003
    clock = FakeClock()
    counters = {"rest_counter": RestCounter(Tier.PRO, limits=GENEROUS)}
    async with client(fake, clock, **counters) as kraken:
        results = await asyncio.gather(*(kraken.balance() for _ in range(40)))
    assert len(results) == 40
    nonces = [s.nonce for s in fake.seen]
    assert len(nonces) == 40
    assert nonces == sorted(set(nonces))
    assert fake.max_in_flight == 1


async def test_an_invalid_nonce_is_retried_once_with_a_fresh_nonce(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply.error("EAPI:Invalid nonce"))
    async with client(fake, FakeClock()) as kraken:
        result = await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="n1")
    assert result["txid"] == ["OABC-1"]
    first, second = fake.calls("AddOrder")
    assert first.nonce < second.nonce
    assert form(first)[1:] == form(second)[1:]  # the same order, a new nonce


async def test_a_second_invalid_nonce_is_raised(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply.error("EAPI:Invalid nonce"), Reply.error("EAPI:Invalid nonce"))
    async with client(fake, FakeClock()) as kraken:
        with pytest.raises(NonceError):
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="n2")
    assert len(fake.calls("AddOrder")) == 2


async def test_nonces_never_go_back_across_a_restart_with_the_clock_set_back(
    fake: FakeKraken, tmp_path: Path
) -> None:
    clock = FakeClock()
    store = Store.open(tmp_path / "bot.db")
    try:
        async with client(fake, clock, store=store) as first:
            await first.balance()
            await first.balance()
        clock.set_wall_ns(clock.time_ns() - 3_600 * 10**9)  # an hour back
        async with client(fake, clock, store=store) as second:
            await second.balance()  # FakeKraken refuses a lower nonce
    finally:
        store.close()
    nonces = [s.nonce for s in fake.seen]
    assert len(nonces) == 3
    assert nonces[0] < nonces[1] < nonces[2]


class Floors:
    """A hand-written ``NonceFloors`` (what the client needs of a store): marks in a dict."""

    def __init__(self) -> None:
        self.marks: dict[str, int] = {}

    def get_nonce_floor(self, key_id: str) -> int:
        return self.marks.get(key_id, 0)

    def set_nonce_floor(self, key_id: str, value: int) -> None:
        self.marks[key_id] = value


async def test_any_nonce_floors_will_do_for_the_store(fake: FakeKraken) -> None:
    clock, floors = FakeClock(), Floors()
    async with client(fake, clock, store=floors) as first:
        await first.balance()
    assert list(floors.marks) == [key_id(API_KEY)]
    clock.set_wall_ns(clock.time_ns() - 3_600 * 10**9)  # an hour back
    async with client(fake, clock, store=floors) as second:
        await second.balance()  # FakeKraken refuses a lower nonce
    first_nonce, second_nonce = (s.nonce for s in fake.seen)
    assert first_nonce < second_nonce <= floors.marks[key_id(API_KEY)]


class RecordedStore:
    """The SQLite store as the client's ``NonceFloors``, noting for each write whether it ran
    inside a task (a request) or in a bare loop callback, and what was written to the socket
    before it."""

    def __init__(self, store: Store, events: list[str]) -> None:
        self.store = store
        self.events = events
        self.writes: list[tuple[int, bool]] = []  # (mark, inside a task)

    def get_nonce_floor(self, key_id: str) -> int:
        return self.store.get_nonce_floor(key_id)

    def set_nonce_floor(self, key_id: str, value: int) -> None:
        self.store.set_nonce_floor(key_id, value)
        self.writes.append((value, asyncio.current_task() is not None))
        self.events.append(f"persist {value}")


async def test_the_nonce_mark_is_topped_up_by_the_loop_not_inside_the_request(
    fake: FakeKraken, tmp_path: Path
) -> None:
    """The client built inside the running loop writes the nonce mark ahead, from a loop
    callback after the request's step: past the first, no request waits for the fsync."""
    clock, events = FakeClock(), list[str]()
    start, reserve = clock.time_ns(), DEFAULT_RESERVE_NS
    # A top-up aims a reserve past the next nonce the clock allows: max(now, last + 1).
    ahead = [start + i * 6 * 10**9 + 1 + reserve for i in range(4)]
    store = Store.open(tmp_path / "bot.db")
    try:
        floors = RecordedStore(store, events)
        async with client(fake, clock, store=floors) as kraken:
            if kraken.connection is not None:
                kraken.connection.on_write = lambda: events.append("write")
            await kraken.balance()  # no mark yet: persisted inside the request, as before
            for _ in range(3):
                clock.advance(6.0)  # past half the 10 s reserve
                await kraken.balance()
        assert floors.writes == [(start + reserve, True)] + [(m, False) for m in ahead[1:]]
        assert store.get_nonce_floor(key_id(API_KEY)) == ahead[3]
    finally:
        store.close()
    assert [s.nonce for s in fake.seen] == [start + i * 6 * 10**9 for i in range(4)]
    if fake.dedicated:  # the request's bytes left before each top-up's write
        assert events == [
            f"persist {start + reserve}",
            "write",
            "write",
            f"persist {ahead[1]}",
            "write",
            f"persist {ahead[2]}",
            "write",
            f"persist {ahead[3]}",
        ]


# --- failures -------------------------------------------------------------------------------


async def test_a_5xx_on_addorder_is_unknown_state_and_never_resent(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply(status=502, text="<html>Bad Gateway</html>"))
    async with client(fake, FakeClock(auto_advance=True)) as kraken:
        with pytest.raises(OrderStateUnknown) as info:
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="u1")
    assert info.value.code == "EHTTP:Status 502"
    assert len(fake.calls("AddOrder")) == 1


async def test_kraken_unavailable_on_addorder_is_unknown_state(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply.error("EService:Unavailable"))
    async with client(fake, FakeClock(auto_advance=True)) as kraken:
        with pytest.raises(OrderStateUnknown) as info:
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="u2")
    assert info.value.code == "EService:Unavailable"
    assert len(fake.calls("AddOrder")) == 1


async def test_a_timeout_on_addorder_is_unknown_state(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply(stall=True))
    async with client(fake, FakeClock(auto_advance=True), timeout_s=0.2) as kraken:
        with pytest.raises(OrderStateUnknown) as info:
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="u3")
        assert info.value.code == "EHTTP:Timeout"
        assert isinstance(info.value.__cause__, TimeoutError)
        # The lock was released: the next call goes through.
        assert await kraken.open_orders() == {"open": {}}
    assert len(fake.calls("AddOrder")) == 1


# Both transports of private calls: the dedicated connection and the aiohttp session.
_CAUSES = {
    True: (ConnectFailed, ConnectionLost),
    False: (aiohttp.ClientConnectorError, aiohttp.ClientError),
}


@pytest.mark.parametrize("dedicated", [True, False], ids=["dedicated", "session"])
async def test_a_refused_connection_is_transient_even_for_addorder(dedicated: bool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kraken = KrakenRestClient(
        f"http://127.0.0.1:{port}",
        clock=FakeClock(),
        api_key=API_KEY,
        api_secret=API_SECRET,
        dedicated=dedicated,
    )
    async with kraken:
        with pytest.raises(TransientError) as info:
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="c1")
    assert type(info.value) is TransientError  # nothing was sent: the order does not exist
    assert info.value.code == "EHTTP:Connect failed"
    assert isinstance(info.value.__cause__, _CAUSES[dedicated][0])


@pytest.mark.parametrize("dedicated", [True, False], ids=["dedicated", "session"])
async def test_a_connection_dropped_after_sending_addorder_is_unknown_state(
    dedicated: bool,
) -> None:
    requests = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await reader.readuntil(b"\r\n\r\n")  # the request's head has arrived: drop it
        requests += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kraken = KrakenRestClient(
        f"http://127.0.0.1:{port}",
        clock=FakeClock(),
        api_key=API_KEY,
        api_secret=API_SECRET,
        dedicated=dedicated,
    )
    try:
        async with kraken:
            with pytest.raises(OrderStateUnknown) as info:
                await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="d1")
    finally:
        server.close()
        await server.wait_closed()
    assert info.value.code == "EHTTP:Connection lost"
    assert isinstance(info.value.__cause__, _CAUSES[dedicated][1])
    assert requests == 1  # never resent


async def test_a_read_is_retried_with_backoff_on_the_injected_clock(fake: FakeKraken) -> None:
    fake.script("Balance", Reply(status=503, text="busy"), Reply.error("EService:Busy"))
    clock = FakeClock(auto_advance=True)
    start = clock.monotonic()
    async with client(fake, clock) as kraken:
        result = await kraken.balance()
    assert result["ZUSD"] == "1000.0000"
    assert len(fake.calls("Balance")) == 3
    waited = clock.monotonic() - start
    assert 0.25 + 0.5 <= waited <= 0.5 + 1.0  # two backoffs, jittered down by at most half


async def test_a_read_gives_up_after_its_attempts(fake: FakeKraken) -> None:
    fake.script("OpenOrders", *[Reply.error("EService:Unavailable")] * 5)
    async with client(fake, FakeClock(auto_advance=True)) as kraken:
        with pytest.raises(TransientError) as info:
            await kraken.open_orders()
    assert type(info.value) is TransientError
    assert len(fake.calls("OpenOrders")) == FAST.max_attempts


async def test_a_cancel_retried_after_a_timeout_reports_unknown_not_rejected(
    fake: FakeKraken,
) -> None:
    fake.script("CancelOrder", Reply(stall=True), Reply.error("EOrder:Invalid order"))
    async with client(fake, FakeClock(auto_advance=True), timeout_s=0.2) as kraken:
        with pytest.raises(OrderStateUnknown) as info:
            await kraken.cancel_order(BTC, order_age_s=60, txid="OABC-1")
    assert info.value.code == "EOrder:Invalid order"
    assert isinstance(info.value.__cause__, RejectedError)
    assert len(fake.calls("CancelOrder")) == 2


async def test_a_cancel_is_retried_after_a_lost_response(fake: FakeKraken) -> None:
    fake.script("CancelOrder", Reply(status=504, text="gateway timeout"))
    async with client(fake, FakeClock(auto_advance=True)) as kraken:
        assert await kraken.cancel_order(BTC, order_age_s=60, cl_ord_id="x") == {"count": 1}
    assert len(fake.calls("CancelOrder")) == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.error("EFoo:Something new"), ExchangeError),
        (Reply.error("EGeneral:Invalid arguments:volume"), RejectedError),
        (Reply(text="not json"), ProtocolError),
        (Reply(body={"error": []}), ProtocolError),
        (Reply(status=404, text="no such page"), ExchangeError),
    ],
)
async def test_bad_answers_to_reads_raise_and_are_not_retried(
    fake: FakeKraken, reply: Reply, error: type[Exception]
) -> None:
    fake.script("Balance", reply)
    async with client(fake, FakeClock(auto_advance=True)) as kraken:
        with pytest.raises(error):
            await kraken.balance()
    assert len(fake.calls("Balance")) == 1


async def test_a_garbled_200_to_addorder_is_unknown_state(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply(text='{"error":[],"resu'))
    async with client(fake, FakeClock()) as kraken:
        with pytest.raises(OrderStateUnknown):
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="g1")


async def test_warnings_are_not_errors(fake: FakeKraken) -> None:
    fake.script("Balance", Reply(body={"error": ["WGeneral:Something odd"], "result": {}}))
    async with client(fake, FakeClock()) as kraken:
        assert await kraken.balance() == {}


# --- lockout and rate limits ----------------------------------------------------------------


async def test_a_lockout_makes_private_calls_fail_fast_until_it_ends(fake: FakeKraken) -> None:
    fake.script("Balance", Reply.error("EGeneral:Temporary lockout"))
    clock = FakeClock()
    async with client(fake, clock, lockout_s=900) as kraken:
        with pytest.raises(LockoutError):
            await kraken.balance()
        until = kraken.locked_out_until
        assert until == clock.monotonic() + 900
        with pytest.raises(LockoutError):
            await kraken.cancel_all()
        assert len(fake.seen) == 1  # the second call never left
        assert await kraken.server_time() == {}  # public calls are not locked
        clock.advance(900)
        assert kraken.locked_out_until is None
        await kraken.cancel_all()
    assert [s.method for s in fake.seen] == ["Balance", "CancelAll"]


async def test_a_rest_rate_limit_error_saturates_the_counter_and_is_raised(
    fake: FakeKraken,
) -> None:
    fake.script("Balance", Reply.error("EAPI:Rate limit exceeded"))
    async with client(fake, FakeClock()) as kraken:
        with pytest.raises(RateLimitError):
            await kraken.balance()
        assert kraken.rest_headroom() <= 0
    assert len(fake.seen) == 1


async def test_a_trading_rate_limit_error_saturates_that_pair_only(fake: FakeKraken) -> None:
    fake.script("AddOrder", Reply.error("EOrder:Rate limit exceeded"))
    async with client(fake, FakeClock()) as kraken:
        with pytest.raises(RateLimitError):
            await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="r1")
        assert kraken.trading_headroom("BTC/USD") <= 0
        assert kraken.trading_headroom("ETH/USD") == 60
        assert kraken.rest_headroom() == 15


async def test_the_client_waits_before_kraken_would_refuse(fake: FakeKraken) -> None:
    clock = FakeClock(auto_advance=True)
    fake.counter, fake.clock = RestCounter(Tier.STARTER), clock
    start = clock.monotonic()
    async with client(fake, clock, tier=Tier.STARTER) as kraken:
        for _ in range(20):
            await kraken.balance()  # FakeKraken would answer EAPI:Rate limit exceeded
        assert len(fake.seen) == 20
        # Reads keep 2 of the 15 free (a switch refresh, a WS token): 13 at once, then one
        # per decay step; the kept room is there for a refresh at once.
        waited = clock.monotonic() - start
        assert waited == pytest.approx(7 / 0.33, rel=1e-6)
        await kraken.cancel_all_orders_after(60)
        assert clock.monotonic() - start == pytest.approx(waited)


class RecordingCounter(RestCounter):
    """The fake Kraken's counter, recording when each call came and whether it passed."""

    def __init__(self, tier: Tier) -> None:
        super().__init__(tier)
        self.calls: list[tuple[float, bool]] = []

    def try_charge(self, cost: float, now: float) -> bool:
        ok = super().try_charge(cost, now)
        self.calls.append((now, ok))
        return ok


async def until(cond: Callable[[], bool], within_s: float = 5.0) -> None:
    """A bounded wait for loopback round trips (real time)."""
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110 (the client's tasks change it)
            await asyncio.sleep(0.002)


async def run_until(clock: FakeClock, done: Callable[[], bool], *, limit_s: float) -> None:
    """Move fake time on in 0.1 s steps (each with a real moment for loopback round trips)
    until ``done``; at most ``limit_s`` of fake time."""
    for _ in range(round(limit_s / 0.1)):
        if done():
            return
        clock.advance(0.1)
        await asyncio.sleep(0.002)
    assert done(), f"not done within {limit_s} s of fake time"


async def test_kraken_over_its_limit_after_restarts_is_probed_one_call_at_a_time(
    fake: FakeKraken,
) -> None:
    """Issue 10 item 2: Kraken's counter left over its maximum by earlier processes (its
    refused calls count too). Five callers that retry at once (the switch's arm, which
    keeps no room for others): one probe goes at a time, further apart after each refusal,
    until the counter has really decayed; then all pass. Probing every decay step, as the
    client did, kept Kraken's counter where it was for ever."""
    clock = FakeClock()
    kraken_side = RecordingCounter(Tier.STARTER)
    kraken_side.assume(15 + 10, clock.monotonic())
    fake.counter, fake.clock = kraken_side, clock
    async with client(fake, clock, tier=Tier.STARTER) as kraken:

        async def caller() -> None:
            while True:
                with contextlib.suppress(RateLimitError):
                    await kraken.cancel_all_orders_after(60)
                    return

        callers = [asyncio.create_task(caller()) for _ in range(5)]
        await run_until(clock, lambda: all(c.done() for c in callers), limit_s=300)
        await asyncio.gather(*callers)
    refused = [t for t, ok in kraken_side.calls if not ok]
    assert 1 <= len(refused) <= 5
    gaps = [b - a for a, b in itertools.pairwise(refused)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))  # backing off
    assert kraken.rest_counter.streak == 0 and kraken.rest_counter.refusals == len(refused)


async def test_a_refresh_or_a_cancel_goes_before_reads_queued_earlier(fake: FakeKraken) -> None:
    """Issue 10 item 3: reads waiting on the key's line no longer keep the dead-man's
    switch refresh (or a cancel) waiting behind them."""
    fake.script("QueryOrders", Reply(body={"error": [], "result": {}}, stall=True))
    async with client(fake, FakeClock(), tier=Tier.STARTER) as kraken:
        first = asyncio.create_task(kraken.query_orders(["O-0"]))
        await until(lambda: len(fake.seen) == 1)  # in flight, holding the line
        reads = [asyncio.create_task(kraken.query_orders([f"O-{i}"])) for i in range(1, 4)]
        await asyncio.sleep(0.01)
        refresh = asyncio.create_task(kraken.cancel_all_orders_after(60))
        cancel = asyncio.create_task(kraken.cancel_order(BTC, order_age_s=400, txid="O-9"))
        add = asyncio.create_task(
            kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="c1")
        )
        await asyncio.sleep(0.01)
        fake.release.set()
        await asyncio.gather(first, *reads, refresh, cancel, add)
    assert [x.method for x in fake.seen] == [
        "QueryOrders", "CancelAllOrdersAfter", "CancelOrder", "AddOrder",
        "QueryOrders", "QueryOrders", "QueryOrders",
    ]  # fmt: skip


async def test_held_reads_wait_and_keep_room_for_the_refresh(fake: FakeKraken) -> None:
    clock = FakeClock()
    fake.counter, fake.clock = RestCounter(Tier.STARTER), clock
    async with client(fake, clock, tier=Tier.STARTER) as kraken:
        reads = [asyncio.create_task(kraken.open_orders()) for _ in range(16)]
        await until(lambda: len(fake.seen) == 13)  # reads leave 2 of 15: 3 wait for room
        kraken.hold_reads(True)  # the switch's refresh is due
        clock.advance(30)  # room for all three: still none may go while held
        await asyncio.sleep(0.05)
        assert len(fake.seen) == 13 and kraken.reads_held
        await kraken.cancel_all_orders_after(60)  # not a read: at once
        kraken.hold_reads(False)
        await run_until(clock, lambda: all(r.done() for r in reads), limit_s=60)
        await asyncio.gather(*reads)
    methods = [x.method for x in fake.seen]
    assert methods[13] == "CancelAllOrdersAfter" and methods.count("OpenOrders") == 16


async def test_amends_cost_one_on_the_rest_counter_adds_and_cancels_nothing(
    fake: FakeKraken,
) -> None:
    """Kraken's REST counter exempts only AddOrder and CancelOrder ("a different limiter"):
    an amend counts there too, besides its trading-counter charge, so a burst of amends
    waits for the REST counter as well, before Kraken would answer EAPI:Rate limit."""
    clock = FakeClock(auto_advance=True)
    fake.counter, fake.clock = RestCounter(Tier.STARTER), clock
    async with client(fake, clock, tier=Tier.STARTER) as kraken:
        await kraken.add_order(BTC, "buy", "limit", 100_000, 275_000, cl_ord_id="a1")
        await kraken.cancel_order(BTC, order_age_s=400, txid="O")
        assert kraken.rest_headroom() == 15
        for _ in range(3):
            await kraken.amend_order(BTC, order_age_s=400, txid="O", limit_price=275_001)
        assert kraken.rest_headroom() == pytest.approx(12)
        assert kraken.trading_headroom("BTC/USD") == pytest.approx(60 - 1 - 3)
        start = clock.monotonic()
        for _ in range(13):  # 11 fit (order entry leaves 1 unit for the switch and cancels);
            # the 12th and the 13th each wait one decay step, never refused
            await kraken.amend_order(BTC, order_age_s=400, txid="O", limit_price=275_001)
        assert clock.monotonic() - start == pytest.approx(2 / 0.33)
    assert len(fake.calls("AmendOrder")) == 16


async def test_young_order_cancels_wait_on_their_own_pair_only(fake: FakeKraken) -> None:
    clock = FakeClock(auto_advance=True)
    start = clock.monotonic()
    async with client(fake, clock, tier=Tier.STARTER) as kraken:
        for _ in range(7):  # 7 x 8 = 56 of 60
            await kraken.cancel_order(BTC, order_age_s=1, txid="O")
        assert kraken.trading_headroom("BTC/USD") == pytest.approx(4)
        await kraken.cancel_order("ETH/USD", order_age_s=1, txid="O")
        assert clock.monotonic() == start  # another pair: no wait
        await kraken.cancel_order(BTC, order_age_s=1, txid="O")
        assert clock.monotonic() - start == pytest.approx(4.0)  # 56 + 8 fits at 52
        assert kraken.trading_headrooms() == {
            "BTC/USD": pytest.approx(0),
            "ETH/USD": pytest.approx(52 + 4),
        }


async def test_an_amend_is_charged_by_the_order_age(fake: FakeKraken) -> None:
    async with client(fake, FakeClock(), trading_counter=TradingCounter(Tier.STARTER)) as kraken:
        await kraken.amend_order(BTC, order_age_s=7, txid="O", limit_price=275_001)
        assert kraken.trading_headroom("BTC/USD") == pytest.approx(60 - 3)
    (seen,) = fake.seen
    assert form(seen)[1:] == [("txid", "O"), ("limit_price", "27500.1")]


# --- secrets and sessions -------------------------------------------------------------------


async def test_no_secret_signature_or_key_reaches_a_log_line(fake: FakeKraken) -> None:
    fake.script("Balance", Reply.error("EService:Unavailable"))
    with capture_logs() as events:
        async with client(fake, FakeClock(auto_advance=True)) as kraken:
            await kraken.balance()
            await kraken.cancel_all_orders_after(60)
    text = repr(events)
    assert {e["event"] for e in events} >= {"rest_call", "rest_error", "rest_retry"}
    assert API_SECRET not in text
    assert API_KEY not in text
    assert "API-Sign" not in text
    assert any(e.get("code") == "EService:Unavailable" for e in events)
    assert all("latency_ms" in e for e in events if e["event"] == "rest_call")


async def test_an_injected_session_is_used_and_left_open(fake: FakeKraken) -> None:
    async with aiohttp.ClientSession() as session:
        async with client(fake, FakeClock(), session=session) as kraken:
            await kraken.balance()
        assert not session.closed
        async with client(fake, FakeClock(), session=session) as again:
            await again.balance()
    assert len(fake.seen) == 2


async def test_private_calls_need_credentials(fake: FakeKraken) -> None:
    async with KrakenRestClient(fake.url, clock=FakeClock()) as anonymous:
        assert await anonymous.server_time() == {}
        with pytest.raises(ExchangeError, match="no API key"):
            await anonymous.balance()


# --- part 2: the real simulator -------------------------------------------------------------


def sim_client(sim: SimHandle, **kwargs: Any) -> KrakenRestClient:
    assert isinstance(sim.clock, FakeClock | SystemClock)
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("rng", random.Random(3))
    return KrakenRestClient(
        sim.base_url,
        clock=sim.clock,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        session=sim.session,
        **kwargs,
    )


def btc(sim: SimHandle) -> Instrument:
    return sim.venue.instruments["BTC/USD"]


async def resting_buy(kraken: KrakenRestClient, inst: Instrument, cl_ord_id: str) -> str:
    """A small limit buy far below the market, so it rests; its txid."""
    price = inst.price(Decimal("1000.0"))
    result = await kraken.add_order(
        inst, "buy", "limit", inst.qty(Decimal("0.001")), price, cl_ord_id=cl_ord_id
    )
    (txid,) = result["txid"]
    assert isinstance(txid, str)
    return txid


async def test_sim_place_query_cancel(sim_factory: SimFactory) -> None:
    sim = await sim_factory(clock=FakeClock(auto_advance=True))
    async with sim_client(sim) as kraken:
        txid = await resting_buy(kraken, btc(sim), "rest-1")
        by_id = await kraken.query_orders([txid])
        assert by_id[txid]["status"] == "open"
        assert by_id[txid]["vol"] == "0.00100000"
        by_cl = await kraken.query_orders(cl_ord_id="rest-1")
        assert list(by_cl) == [txid]
        assert txid in (await kraken.open_orders())["open"]
        assert (await kraken.cancel_order(btc(sim), order_age_s=0, cl_ord_id="rest-1"))[
            "count"
        ] == 1
        assert (await kraken.query_orders([txid]))[txid]["status"] == "canceled"
        assert (await kraken.open_orders())["open"] == {}
        armed = await kraken.cancel_all_orders_after(60)
        assert set(armed) >= {"currentTime", "triggerTime"}
        assert "token" in await kraken.get_websockets_token()
        balance = await kraken.balance()
        assert balance  # funded account
        pairs = await kraken.asset_pairs(["XBTUSD"])
        (pair,) = pairs.values()
        assert pair["altname"] == "XBTUSD"


async def test_sim_50_concurrent_calls_never_collide_on_nonces(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(rate_limits=False)  # the real clock: real nanosecond nonces
    generous = RestCounter(Tier.PRO, limits=GENEROUS)
    async with sim_client(sim, rest_counter=generous) as kraken:
        results = await asyncio.gather(
            *(kraken.balance() for _ in range(25)), *(kraken.open_orders() for _ in range(25))
        )
    assert len(results) == 50
    assert all("open" in r for r in results[25:])


async def test_sim_nonces_survive_a_restart_with_the_clock_set_back(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    clock = FakeClock(auto_advance=True)
    sim = await sim_factory(clock=clock)
    store = Store.open(tmp_path / "bot.db")
    try:
        async with sim_client(sim, store=store) as first:
            await first.balance()
        clock.set_wall_ns(clock.time_ns() - 3_600 * 10**9)
        async with sim_client(sim, store=store) as second:
            await second.balance()  # above the persisted floor, whatever the clock says
        # The control: without the floor, the simulator refuses the clock's nonces.
        async with sim_client(sim) as amnesiac:
            with pytest.raises(NonceError):
                await amnesiac.balance()
    finally:
        store.close()


async def test_sim_forced_invalid_nonce_is_retried_once(sim_factory: SimFactory) -> None:
    sim = await sim_factory(clock=FakeClock(auto_advance=True))
    fault = sim.venue.faults.schedule(FaultSpec(kind=FaultKind.INVALID_NONCE, endpoint="AddOrder"))
    async with sim_client(sim) as kraken:
        txid = await resting_buy(kraken, btc(sim), "nonce-1")
        assert fault.fired == 1
        assert list(await kraken.query_orders(cl_ord_id="nonce-1")) == [txid]


async def test_sim_a_starter_burst_waits_instead_of_being_refused(
    sim_factory: SimFactory,
) -> None:
    clock = FakeClock(auto_advance=True)
    sim = await sim_factory(clock=clock, tier="starter")
    start = clock.monotonic()
    async with sim_client(sim, tier="starter") as kraken:
        for _ in range(13):
            await kraken.balance()
        assert clock.monotonic() == start  # 13 reads fit at once (2 of 15 kept for others)
        burst = await asyncio.gather(*(kraken.open_orders() for _ in range(10)))
        assert len(burst) == 10
        assert clock.monotonic() - start == pytest.approx(10 / 0.33)
        # Seven young orders (+1 each), cancelled at once (+8 each): 63 > 60 on BTC/USD.
        txids = [await resting_buy(kraken, btc(sim), f"burst-{i}") for i in range(7)]
        before = clock.monotonic()
        for txid in txids:
            await kraken.cancel_order(btc(sim), order_age_s=clock.monotonic() - before, txid=txid)
        assert clock.monotonic() - before == pytest.approx(3.0)
        assert (await kraken.open_orders())["open"] == {}


async def test_sim_unavailable_reads_are_retried(sim_factory: SimFactory) -> None:
    sim = await sim_factory(clock=FakeClock(auto_advance=True))
    kraken_error = sim.venue.faults.schedule(
        FaultSpec(kind=FaultKind.REST_ERROR, endpoint="OpenOrders", count=2)
    )
    http_error = sim.venue.faults.schedule(
        FaultSpec(kind=FaultKind.REST_ERROR, endpoint="Balance", status=503)
    )
    async with sim_client(sim) as kraken:
        assert await kraken.open_orders() == {"open": {}}
        assert await kraken.balance()
    assert kraken_error.fired == 2
    assert http_error.fired == 1


async def test_sim_a_lost_addorder_response_is_unknown_and_the_order_exists(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(clock=FakeClock(auto_advance=True))
    fault = sim.venue.faults.schedule(
        FaultSpec(kind=FaultKind.LOSE_RESPONSE, endpoint="AddOrder", mode="abort")
    )
    async with sim_client(sim) as kraken:
        with pytest.raises(OrderStateUnknown):
            await resting_buy(kraken, btc(sim), "lost-1")
        assert fault.fired == 1
        found = await kraken.query_orders(cl_ord_id="lost-1")
        (order,) = found.values()
        assert order["status"] == "open"
        # Sent once, never resent: one open order carries the cl_ord_id.
        assert len((await kraken.open_orders(cl_ord_id="lost-1"))["open"]) == 1


async def test_sim_a_rate_limit_answer_is_raised_once(sim_factory: SimFactory) -> None:
    sim = await sim_factory(clock=FakeClock(auto_advance=True))
    fault = sim.venue.faults.schedule(FaultSpec(kind=FaultKind.RATE_LIMIT, endpoint="Balance"))
    async with sim_client(sim) as kraken:
        with pytest.raises(RateLimitError):
            await kraken.balance()
        assert kraken.rest_headroom() <= 0
    assert fault.fired == 1


def test_a_malformed_secret_is_a_config_error_at_construction() -> None:
    with pytest.raises(ConfigError, match="base64") as info:
        KrakenRestClient("http://127.0.0.1:1", clock=FakeClock(), api_key="k", api_secret="n0t!")
    assert "n0t!" not in str(info.value)
