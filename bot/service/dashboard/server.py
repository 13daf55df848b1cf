"""The live dashboard over HTTP: the page at ``/``, its assets, its JSON and its stream.

Routes (all GET, all read-only):

* ``/``: the page (``static/index.html``), which loads ``/assets/dashboard.js``,
  ``/assets/dashboard.css`` and plotly.js, served from the ``plotly`` Python package's own
  copy at ``/assets/plotly-<version>.min.js`` (no CDN: the page works offline);
* ``/api/status``: the latest picture's JSON (``bot.service.dashboard.state``);
* ``/api/history``: the session's chart series (``bot.service.dashboard.history``);
* ``/api/stream``: Server-Sent Events, one ``status`` event per picture: ``{"seq", "epoch",
  "status", "point", "fills"}``, the status as ``/api/status`` has it, the new chart point
  and fills. A client that sees ``seq`` skip, or ``epoch`` change, fetches the history again.

``publish(observation)`` samples the charts; the status is built once, when a stream or
``/api/status`` first reads it (with no dashboard open, never), and the same bytes go to
every stream; a slow client skips to the latest picture rather than queueing. On the
server's shutdown every stream ends at once. Pages carry a Content-Security-Policy that
allows scripts and connections to this server only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import orjson
import plotly
from aiohttp import web

from bot.core.clock import Clock
from bot.core.waits import wait_event
from bot.service.dashboard.history import History
from bot.service.dashboard.state import build_status
from bot.service.metrics import Sample
from bot.service.observe import Observation

__all__ = ["KEEPALIVE_S", "Dashboard", "StatusInputs"]

KEEPALIVE_S: Final = 15.0
PLOTLY_ASSET: Final = f"plotly-{plotly.__version__}.min.js"
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_JSON_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class StatusInputs:
    """What the status needs besides the picture: /readyz's and /healthz's bodies, the
    facts, and a picture to show before the first tick."""

    ready: Callable[[], Mapping[str, Any]]
    health: Callable[[], Mapping[str, Any]]
    facts: Callable[[], Mapping[str, str]]
    fallback: Callable[[], Observation]


class _Message:
    """One picture's status and SSE event, built when first read (nobody watching: never)."""

    __slots__ = ("_build", "_event", "_status", "epoch", "obs", "seq", "tail")

    def __init__(
        self, seq: int, epoch: int, obs: Observation, tail: bytes, build: Callable[..., bytes]
    ) -> None:
        self.seq, self.epoch, self.obs, self.tail = seq, epoch, obs, tail
        self._build = build
        self._status: bytes | None = None
        self._event: bytes | None = None

    @property
    def status(self) -> bytes:
        """The /api/status body."""
        if self._status is None:
            self._status = self._build(self.obs)
        return self._status

    @property
    def event(self) -> bytes:
        """The whole SSE event: ``{"seq", "epoch", "status", "point", "fills"}``."""
        if self._event is None:
            head = b'{"seq":%d,"epoch":%d,"status":' % (self.seq, self.epoch)
            data = head + self.status + b"," + self.tail[1:]
            self._event = b"id: %d\nevent: status\ndata: " % self.seq + data + b"\n\n"
        return self._event


def _static(name: str) -> bytes:
    return (resources.files("bot.service.dashboard") / "static" / name).read_bytes()


def _plotly_js() -> bytes:
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()


class Dashboard:
    """See the module docstring. ``control``: show the control buttons (a token is set)."""

    def __init__(
        self,
        clock: Clock,
        *,
        control: bool = False,
        history: History | None = None,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._clock = clock
        self.control = control
        self.history = history if history is not None else History()
        self.keepalive_s = keepalive_s
        self._inputs: StatusInputs | None = None
        self._message: _Message | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self._streams = 0
        self._seq = 0
        self._plotly: bytes | None = None
        page = _static("index.html").replace(b"PLOTLY_JS", PLOTLY_ASSET.encode())
        self._assets = {
            "dashboard.js": (_static("dashboard.js"), "application/javascript"),
            "dashboard.css": (_static("dashboard.css"), "text/css"),
        }
        self._page = page

    # -- wiring ------------------------------------------------------------------------------

    def install(self, app: web.Application, inputs: StatusInputs) -> None:
        self._inputs = inputs
        app.router.add_get("/", self._index)
        app.router.add_get("/assets/{name}", self._asset)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/history", self._history)
        app.router.add_get("/api/stream", self._stream)
        app.on_shutdown.append(self._shutdown)

    def samples(self) -> Iterator[Sample]:
        """The metrics source: how many dashboards are connected to the stream."""
        yield Sample("dashboard_streams", self._streams)

    # -- publishing ----------------------------------------------------------------------------

    def status(self, obs: Observation) -> dict[str, Any]:
        inputs = self._inputs
        if inputs is None:
            raise RuntimeError("the dashboard is not installed on a server")
        return build_status(
            obs, ready=inputs.ready(), health=inputs.health(), facts=inputs.facts(),
            control=self.control,
        )  # fmt: skip

    def publish(self, obs: Observation) -> None:
        """A new picture: the history's new point and fills now; the status (the costly
        part) when a stream or ``/api/status`` first reads it."""
        point, fills = self.history.add(obs)
        self._seq += 1
        tail = orjson.dumps({"point": None if point is None else point.json(), "fills": fills})
        self._message = _Message(self._seq, self.history.epoch, obs, tail, self._encode)
        self._wake()

    def _encode(self, obs: Observation) -> bytes:
        return orjson.dumps(self.status(obs))

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- handlers ------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._page, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS
        )

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == PLOTLY_ASSET:
            if self._plotly is None:
                self._plotly = await asyncio.to_thread(_plotly_js)
            headers = {"Cache-Control": "public, max-age=31536000, immutable"}
            return web.Response(
                body=self._plotly, content_type="application/javascript", headers=headers
            )
        found = self._assets.get(name)
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, content_type=content_type, headers=_PAGE_HEADERS)

    async def _status(self, request: web.Request) -> web.Response:
        message = self._message
        if message is not None:
            body = message.status
        else:
            assert self._inputs is not None
            body = orjson.dumps(self.status(self._inputs.fallback()))
        return web.Response(body=body, content_type="application/json", headers=_JSON_HEADERS)

    async def _history(self, request: web.Request) -> web.Response:
        body = orjson.dumps(self.history.json())
        return web.Response(body=body, content_type="application/json", headers=_JSON_HEADERS)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a proxy in front must not buffer the events
            }
        )
        await response.prepare(request)
        self._streams += 1
        sent = -1
        try:
            await response.write(b"retry: 2000\n\n")
            while not self._closing:
                message = self._message
                if message is not None and message.seq != sent:
                    await response.write(message.event)
                    sent = message.seq
                    continue
                changed = self._changed
                await wait_event(changed, self._clock, self.keepalive_s)
                if not changed.is_set() and not self._closing:
                    await response.write(b": keepalive\n\n")  # finds a vanished client
        except ConnectionError:  # the page was closed: the write found out
            pass
        finally:
            self._streams -= 1
        return response

    async def _shutdown(self, app: web.Application) -> None:
        self._closing = True
        self._wake()
