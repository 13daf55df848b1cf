"""Tick-to-trade floors, and the client plumbing they share with the krakenbot contender.

The floor (``floor``) is the least a Python trader on these libraries can do per book frame: a
``websockets`` client receives the frame, and an ``aiohttp`` POST sends a pre-built, pre-signed
``AddOrder`` (body and headers made before the block starts) at once. Nothing is parsed,
checked or signed per frame; the only per-frame test is a ``str.startswith`` that tells book
updates from heartbeats and acks.

A second floor (``floor_raw``) writes the same pre-built requests, as whole HTTP/1.1 bytes,
straight to a kept-alive TCP connection (``RawHttp``: one ``transport.write`` per request,
a minimal response reader): what sending costs without an HTTP client library, the figure
behind the fix proposed in docs/contributors/bench-tick.md.

Where the clocks are read (``time.perf_counter_ns``), the same for every contender:

- ``recv``: right after ``async for raw in ws`` hands the frame to the contender's code;
- ``post``: when ``aiohttp.ClientSession.post`` is called (``TimedSession`` stamps it);
- ``written``: in aiohttp's ``on_request_chunk_sent`` trace callback, which aiohttp awaits
  immediately before its one ``transport.write`` of the headers and body together (the
  earliest public hook after the request is built; for a small body aiohttp coalesces
  headers and body into that single write, so the request is whole at this point);
  ``floor_raw`` stamps it immediately before its own ``transport.write``.

Every contender uses one connection per block (``book_socket``: the feed's ``connect``
options, a depth-10 book subscription), the aiohttp ones one shared ``ClientSession`` with
a keep-alive connection to the simulator, and each awaits its POST's answer before it reads
the next frame: one order in flight, nothing overtakes. Frames are paced further apart
than that round trip, and each sample records its frame's age when it was received (the
simulator's ``timestamp`` to the wall clock at ``recv``), which shows whether it waited
behind another.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Final, cast

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from bot.execution.orders import new_cl_ord_id
from bot.kraken import codec
from bot.kraken.nonce import NonceGenerator
from bot.kraken.rest import DEFAULT_USER_AGENT
from bot.kraken.signer import FORM_CONTENT_TYPE, encode_form, sign

__all__ = [
    "BOOK_UPDATE",
    "DEPTH",
    "SYMBOL",
    "FloorRequests",
    "Probe",
    "RawHttp",
    "Samples",
    "TimedSession",
    "book_socket",
    "frame_time_ns",
    "percentiles",
    "run_floor_block",
    "run_raw_block",
]

SYMBOL: Final = "BTC/USD"
WIRE_PAIR: Final = "XBTUSD"
DEPTH: Final = 10
BOOK_UPDATE: Final = '{"channel":"book","type":"update"'
_MAX_MESSAGE: Final = 16 * 2**20  # as bot.market.feed
_ADD_ORDER: Final = "/0/private/AddOrder"

_now = time.perf_counter_ns


class Probe:
    """The timestamps of the sample being measured (ns, ``perf_counter_ns``).

    ``arm`` clears them before each timed request; ``post`` is stamped by ``TimedSession``,
    ``written`` by the trace callback (first chunk only), ``risk_in``/``risk_out`` by the
    krakenbot contender's context around ``RiskGate.check``.
    """

    __slots__ = ("post", "risk_in", "risk_out", "sent_in", "written")

    def __init__(self) -> None:
        self.post = self.written = self.risk_in = self.risk_out = self.sent_in = 0

    def arm(self) -> None:
        self.post = self.written = self.risk_in = self.risk_out = self.sent_in = 0

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_chunk_sent.append(self._on_chunk_sent)
        return config

    async def _on_chunk_sent(
        self, session: aiohttp.ClientSession, ctx: SimpleNamespace, params: object
    ) -> None:
        if not self.written:
            self.written = _now()


class TimedSession:
    """A ``ClientSession`` stand-in that stamps ``probe.post`` and delegates the call.

    Handed to ``KrakenRestClient`` (which only calls ``post`` and ``get`` on its session) and
    used by the floor, so both contenders' ``post`` stamp is the same point.
    """

    def __init__(self, session: aiohttp.ClientSession, probe: Probe) -> None:
        self.session = session
        self._probe = probe

    def post(self, url: str, **kwargs: Any) -> Any:
        if not self._probe.post:  # the first request after ``arm``: the order's
            self._probe.post = _now()
        return self.session.post(url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.session.get(url, **kwargs)


class GcRuns:
    """Counts the garbage collector's runs as they start (a ``gc.callbacks`` entry), so a
    contender can tell how many began inside one of its timed samples."""

    def __init__(self) -> None:
        self.started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started += 1


GC_RUNS: Final = GcRuns()  # the client's one counter (bench.tick installs it)


@dataclass(slots=True)
class Samples:
    """Per-stage durations (ns) of one contender, one list per stage, in sample order."""

    stages: tuple[str, ...]
    values: dict[str, list[int]] = field(default_factory=dict)
    placed: int = 0  # AddOrders the simulator accepted (answered with a txid)
    refused: int = 0  # AddOrders answered with an error
    gc_collections: int = 0  # the garbage collector's runs during the blocks
    gc_in_tick: int = 0  # runs that started inside a timed sample (recv to the write)
    ages: list[int] = field(default_factory=list)  # frame timestamp → recv, wall clock
    # The tick's work after its write (the write → the strategy's handler returned), which
    # the next order of the same tick waits behind; not a stage: it is outside ``total``.
    after: list[int] = field(default_factory=list)
    # The amend contender's amends (``sent``, ``acked``, ``refused``); None for the others.
    amends: dict[str, int] | None = None
    # The number of samples at the end of each recorded round: the run's contenders take
    # their blocks in turn, so round ``i`` of two contenders was measured minutes apart at
    # most, and seconds apart in most rounds.
    rounds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("total", *self.stages):
            self.values.setdefault(name, [])

    def add(self, total: int, **stages: int) -> None:
        values = self.values
        values["total"].append(total)
        for name, ns in stages.items():
            values[name].append(ns)

    def as_dict(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "placed": self.placed,
            "refused": self.refused,
            "gc_collections": self.gc_collections,
            "gc_in_tick": self.gc_in_tick,
            "ages": self.ages,
            "after": self.after,
            "amends": self.amends,
            "rounds": self.rounds,
        }


@asynccontextmanager
async def book_socket(url: str) -> AsyncIterator[ClientConnection]:
    """A public WS connection, subscribed to the depth-10 ``BTC/USD`` book (snapshot on)."""
    async with connect(
        url, open_timeout=10, close_timeout=2, ping_interval=None, max_size=_MAX_MESSAGE, proxy=None
    ) as ws:
        await ws.send(codec.subscribe_book(SYMBOL, req_id=1, depth=DEPTH), text=True)
        yield ws
        # Leave politely: unsubscribe and read up to the ack, so that nothing is queued and
        # websockets' flow control (reading paused past 16 queued frames) cannot hold back
        # the server's close frame.
        await ws.send(codec.unsubscribe("book", req_id=2, symbols=SYMBOL, depth=DEPTH), text=True)
        async with asyncio.timeout(5):
            async for raw in ws:
                if isinstance(raw, str) and '"method":"unsubscribe"' in raw:
                    break


def frame_time_ns(raw: str | bytes) -> int:
    """The wall-clock time in a book frame's ``timestamp`` (``...T12:16:16.123456Z``)."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    start = raw.rfind('"timestamp":"') + 13
    stamp = datetime.fromisoformat(raw[start : start + 26]).replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


class FloorRequests:
    """Signed ``AddOrder`` requests made ahead of time: post-only buys at one price.

    The fields, their order and the headers are those ``KrakenRestClient.add_order`` sends,
    so both contenders put requests of the same size on the wire. ``nonces`` is shared with
    the REST client that cancels the floor's orders between blocks, so the simulator sees
    one strictly increasing sequence.
    """

    def __init__(
        self, api_key: str, api_secret: str, nonces: NonceGenerator, price: str, volume: str
    ) -> None:
        self._key, self._secret, self._nonces = api_key, api_secret, nonces
        self._price, self._volume = price, volume

    def build(self, n: int) -> Iterator[tuple[bytes, dict[str, str]]]:
        """``n`` requests as ``(body, headers)``, nonces increasing, signed now."""
        return iter(self._build(n))

    def build_raw(self, n: int, host: str) -> Iterator[bytes]:
        """``n`` whole HTTP/1.1 requests, with the headers aiohttp would add."""
        raw = []
        for body, headers in self._build(n):
            lines = [f"POST {_ADD_ORDER} HTTP/1.1", f"Host: {host}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines += ["Accept: */*", "Accept-Encoding: gzip, deflate"]
            lines += [f"Content-Length: {len(body)}", "", ""]
            raw.append("\r\n".join(lines).encode("ascii") + body)
        return iter(raw)

    def _build(self, n: int) -> list[tuple[bytes, dict[str, str]]]:
        requests = []
        for _ in range(n):
            nonce = self._nonces.next()
            body = encode_form(
                {
                    "nonce": nonce,
                    "pair": WIRE_PAIR,
                    "type": "buy",
                    "ordertype": "limit",
                    "volume": self._volume,
                    "price": self._price,
                    "cl_ord_id": new_cl_ord_id(),
                    "oflags": "post",
                }
            )
            headers = {
                "User-Agent": DEFAULT_USER_AGENT,
                "API-Key": self._key,
                "API-Sign": sign(self._secret, _ADD_ORDER, nonce, body),
                "Content-Type": FORM_CONTENT_TYPE,
            }
            requests.append((body, headers))
        return requests


async def run_floor_block(
    ws_url: str,
    rest_url: str,
    session: TimedSession,
    probe: Probe,
    requests: Iterator[tuple[bytes, dict[str, str]]],
    *,
    samples: Samples,
    frames: int,
    warmup: int,
) -> None:
    """One connection: ``warmup`` + ``frames`` book updates, a POST for each; the last
    ``frames`` are recorded in ``samples`` (stages ``post``: recv → post, ``send``: post →
    written)."""
    url = rest_url + _ADD_ORDER
    seen = 0
    async with book_socket(ws_url) as ws:
        async for raw in ws:
            wall, t_recv = time.time_ns(), _now()
            if not (isinstance(raw, str) and raw.startswith(BOOK_UPDATE)):
                continue
            probe.arm()
            body, headers = next(requests)
            async with session.post(url, data=body, headers=headers) as response:
                reply = await response.read()
            if seen >= warmup:
                written = probe.written
                samples.add(written - t_recv, post=probe.post - t_recv, send=written - probe.post)
                samples.ages.append(wall - frame_time_ns(raw))
                if b'"txid"' in reply and response.status == 200:
                    samples.placed += 1
                else:
                    samples.refused += 1
            seen += 1
            if seen >= warmup + frames:
                break


class RawHttp(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection, written to directly; one request at a time.

    Reads answers with a ``Content-Length`` (the simulator's aiohttp server sends one).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> RawHttp:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the simulator closed the connection"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            raise ConnectionError("an answer without a Content-Length")
        stop = head.find(b"\r\n", start + 2)
        total = end + 4 + int(head[start + 17 : stop if stop > 0 else None])
        if len(buffer) >= total and self._waiter is not None:
            answer = (int(head[9:12]), bytes(buffer[end + 4 : total]))
            del buffer[:total]
            self._waiter.set_result(answer)

    def write(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Write ``request`` now; the future is its answer, ``(status, body)``."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def run_raw_block(
    ws_url: str,
    conn: RawHttp,
    requests: Iterator[bytes],
    samples: Samples,
    *,
    frames: int,
    warmup: int,
) -> None:
    """``run_floor_block`` with ``RawHttp`` in place of aiohttp. The total stops before the
    ``transport.write``, as aiohttp's does; stage ``write_syscall`` is that write (not in the
    total)."""
    seen = 0
    async with book_socket(ws_url) as ws:
        async for raw in ws:
            wall, t_recv = time.time_ns(), _now()
            if not (isinstance(raw, str) and raw.startswith(BOOK_UPDATE)):
                continue
            request = next(requests)
            written = _now()
            answer = conn.write(request)
            t_syscall = _now()
            status, reply = await answer
            if seen >= warmup:
                samples.add(written - t_recv, write_syscall=t_syscall - written)
                samples.ages.append(wall - frame_time_ns(raw))
                if b'"txid"' in reply and status == 200:
                    samples.placed += 1
                else:
                    samples.refused += 1
            seen += 1
            if seen >= warmup + frames:
                break


def _pick(ordered: list[int], q: float) -> int:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _us(ns: float) -> float:
    return round(ns / 1000, 1)


def percentiles(values: list[int]) -> dict[str, float]:
    """p50, p90, p99, p99.9 (nearest rank), max and mean of ``values`` (ns), in µs."""
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "p50_us": _us(_pick(ordered, 0.50)),
        "p90_us": _us(_pick(ordered, 0.90)),
        "p99_us": _us(_pick(ordered, 0.99)),
        "p99_9_us": _us(_pick(ordered, 0.999)),
        "max_us": _us(ordered[-1]),
        "mean_us": _us(sum(ordered) / len(ordered)),
    }
