"""The daemon's HTTP face: /healthz, /readyz, /metrics and a plain status page at /status.

This module owns ``HttpServer`` (an aiohttp app on ``http.host:http.port``; port 0 picks a
free port, ``port`` tells which), ``LoopLagProbe`` (how late a periodic sleep wakes: the
event loop's responsiveness), ``render_status`` (the HTML page, pure) and
``main_healthcheck`` (``krakenbot healthcheck``: the Docker HEALTHCHECK client).

* ``/healthz``: the process is alive and its event loop responsive. 200 with JSON while
  the largest loop lag of the recent window is within ``max_loop_lag_s``, else 503.
* ``/readyz``: the readiness gate's ``snapshot()``; 200 when open, 503 with every check
  and why it fails when not.
* ``/metrics``: ``Metrics.render()`` in Prometheus' text format.
* ``/status`` (and ``/`` unless another page took it, as the daemon's live dashboard
  does: ``bot.service.dashboard``): HTML for a human, refreshed by ``<meta
  http-equiv="refresh">``, no JavaScript:
  readiness, loop health, feeds, books, orders, fills, rejections, strategies, the dead-man's
  switch and rate-limit headroom, all read from the same ``Metrics.snapshot()`` as
  /metrics; plus whatever facts ``status_source()`` returns (mode, venue, version...).
  Every value is HTML-escaped and scrubbed of registered secrets.

Every page a browser reads answers only to the names in ``allowed_hosts`` (loopback's,
``http.host`` unless it is a wildcard, and ``http.allowed_hosts``): another ``Host`` header
gets 421, so a web page elsewhere cannot read the dashboard or call the control API through
DNS rebinding. /healthz, /readyz and /metrics answer to any name (probes, Prometheus).

It reads components only through ``Metrics``, the ``ReadinessGate`` and ``status_source``;
it never changes them. Routes added to ``app`` before ``start()`` are served beside these
(the dashboard, the control API). It listens on 127.0.0.1 by default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import http.client
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web

from bot.config import HttpConfig
from bot.core.clock import Clock, SystemClock
from bot.core.errors import ConfigError
from bot.core.log import get_logger, scrub_text
from bot.execution.readiness import ReadinessGate
from bot.service.metrics import Metrics, Sample, Snapshot, SnapshotView

__all__ = [
    "DEFAULT_HEALTH_URL",
    "HttpServer",
    "LoopLagProbe",
    "StatusSource",
    "add_healthcheck_arguments",
    "allowed_hosts",
    "host_allowed",
    "host_guard",
    "main_healthcheck",
    "render_status",
]

StatusSource = Callable[[], Mapping[str, object]]

DEFAULT_HEALTH_URL: Final = "http://127.0.0.1:8080/healthz"
_NO_STORE: Final = {"Cache-Control": "no-store"}
_SHUTDOWN_TIMEOUT_S: Final = 2.0
log = get_logger(component="http")


# --------------------------------------------------------------------------- loop lag


class LoopLagProbe:
    """Sleeps ``interval_s`` again and again on ``clock`` and records how late it woke.

    ``lag_s()`` is the latest lag, or how overdue the pending wake-up already is (so a
    loop blocked right now shows); ``max_lag_s()`` the largest over the last ``window_s``.
    """

    def __init__(self, clock: Clock, *, interval_s: float = 0.5, window_s: float = 10.0) -> None:
        if interval_s <= 0 or window_s <= 0:
            raise ValueError("interval_s and window_s must be positive")
        self._clock = clock
        self.interval_s = interval_s
        self.window_s = window_s
        self._due: float | None = None
        self._latest = 0.0
        self._recent: deque[tuple[float, float]] = deque()  # (woke at, lag)
        self.running = False

    async def run(self) -> None:
        clock = self._clock
        self.running = True
        try:
            while True:
                due = self._due = clock.monotonic() + self.interval_s
                await clock.sleep(self.interval_s)
                now = clock.monotonic()
                self._due = None
                self._latest = lag = max(0.0, now - due)
                recent = self._recent
                recent.append((now, lag))
                while recent and recent[0][0] < now - self.window_s:
                    recent.popleft()
        finally:
            self.running = False
            self._due = None

    def lag_s(self) -> float:
        due = self._due
        overdue = 0.0 if due is None else self._clock.monotonic() - due
        return max(self._latest, overdue)

    def max_lag_s(self) -> float:
        since = self._clock.monotonic() - self.window_s
        return max((lag for at, lag in self._recent if at >= since), default=self.lag_s())

    def samples(self) -> list[Sample]:
        """The metrics source: ``loop_lag_seconds`` and ``loop_lag_max_seconds``."""
        lag = self.lag_s()
        return [
            Sample("loop_lag_seconds", lag),
            Sample("loop_lag_max_seconds", max(lag, self.max_lag_s())),
        ]


# --------------------------------------------------------------------------- server


_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
_WILDCARDS: Final = frozenset({"", "0.0.0.0", "::", "[::]"})
_ANY_HOST_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})


def allowed_hosts(config: HttpConfig) -> frozenset[str]:
    """The names (no port, lower case) the browser-facing pages answer to."""
    names = set(_LOOPBACK_NAMES)
    host = config.host.lower()
    if host not in _WILDCARDS:
        names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    names.update(name.lower() for name in config.allowed_hosts)
    return frozenset(names)


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request's ``Host`` header (``name[:port]``) names an allowed host."""
    if not header:
        return False
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:8080
        end = name.find("]")
        name = name[: end + 1] if end > 0 else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in allowed


def host_guard(allowed: frozenset[str]) -> Any:
    """An aiohttp middleware refusing (421) a page request whose ``Host`` is not allowed."""

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path not in _ANY_HOST_PATHS and not host_allowed(request.host, allowed):
            log.warning("http_host_refused", path=request.path)
            text = (
                "421 Misdirected Request: this daemon does not answer to that host name."
                " Add it to http.allowed_hosts if you reach the daemon by that name.\n"
            )
            return web.Response(status=421, text=text)
        response: web.StreamResponse = await handler(request)
        return response

    return guard


class HttpServer:
    """Serves the four routes on ``config.host:config.port``; see the module docstring.

    ``start()`` listens (and starts the loop-lag probe), ``close()`` stops; ``run()`` does
    both around waiting until cancelled. With ``config.enabled`` false nothing listens.
    """

    def __init__(
        self,
        config: HttpConfig,
        metrics: Metrics,
        readiness: ReadinessGate,
        status_source: StatusSource | None = None,
        clock: Clock | None = None,
        *,
        max_loop_lag_s: float = 1.0,
        lag_interval_s: float = 0.5,
        lag_window_s: float = 10.0,
        refresh_s: int = 5,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.readiness = readiness
        self.status_source = status_source
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.max_loop_lag_s = max_loop_lag_s
        self.refresh_s = refresh_s
        self.probe = LoopLagProbe(self._clock, interval_s=lag_interval_s, window_s=lag_window_s)
        self._started_at = self._clock.monotonic()
        self._runner: web.AppRunner | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.app = web.Application(middlewares=[host_guard(allowed_hosts(config))])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/status", self._status)

    @property
    def url(self) -> str:
        """``http://host:port`` once listening."""
        if self.port is None:
            raise RuntimeError("the HTTP server is not listening")
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if not self.config.enabled:
            log.info("http_disabled")
            return
        if self._runner is not None:
            return
        if not any(r.canonical == "/" for r in self.app.router.resources()):
            self.app.router.add_get("/", self._status)  # no dashboard: the plain page
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self.config.host}:{self.config.port}"
            raise ConfigError(f"http: cannot listen on {where}: {exc.strerror or exc}") from None
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.config.port
        self._started_at = self._clock.monotonic()
        self.metrics.add_source(self.probe.samples)
        self._probe_task = asyncio.create_task(self.probe.run(), name="http-loop-lag")
        log.info("http_listening", host=self.config.host, port=self.port)

    async def close(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.metrics.remove_source(self.probe.samples)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.port = None

    async def run(self) -> None:
        """Listen until cancelled (for the daemon's TaskGroup)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.close())

    # -- what the routes say -------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The /healthz body; ``healthy`` decides 200 or 503."""
        lag, worst = self.probe.lag_s(), self.probe.max_lag_s()
        task = self._probe_task
        probing = task is None or not task.done()  # not started yet, or probing
        healthy = probing and max(lag, worst) <= self.max_loop_lag_s
        return {
            "healthy": healthy,
            "status": "ok" if healthy else "unhealthy",
            "loop_lag_s": round(lag, 6),
            "loop_lag_max_s": round(max(lag, worst), 6),
            "max_loop_lag_s": self.max_loop_lag_s,
            "window_s": self.probe.window_s,
            "probe_running": self.probe.running,
            "uptime_s": round(self._clock.monotonic() - self._started_at, 3),
        }

    def ready(self) -> dict[str, Any]:
        """The /readyz body (the gate's snapshot, details scrubbed)."""
        snap = self.readiness.snapshot()
        checks = {
            name: {"ok": bool(c["ok"]), "detail": scrub_text(str(c["detail"]))}
            for name, c in snap["checks"].items()
        }
        failing = [name for name, c in checks.items() if not c["ok"]]
        return {"ready": bool(snap["ready"]), "failing": failing, "checks": checks}

    def facts(self) -> dict[str, str]:
        if self.status_source is None:
            return {}
        try:
            return {str(k): str(v) for k, v in self.status_source().items()}
        except Exception as exc:  # the page still shows the rest
            log.exception("http_status_source_failed")
            return {"status": f"unavailable ({type(exc).__name__})"}

    async def _healthz(self, request: web.Request) -> web.Response:
        body = self.health()
        return _json(body, 200 if body["healthy"] else 503)

    async def _readyz(self, request: web.Request) -> web.Response:
        body = self.ready()
        return _json(body, 200 if body["ready"] else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type, **_NO_STORE})

    async def _status(self, request: web.Request) -> web.Response:
        page = render_status(
            self.metrics.snapshot(),
            self.ready(),
            self.health(),
            self.facts(),
            now_ns=self._clock.time_ns(),
            refresh_s=self.refresh_s,
        )
        return web.Response(text=page, content_type="text/html", charset="utf-8", headers=_NO_STORE)


def _json(body: Mapping[str, Any], status: int) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=_NO_STORE
    )


# --------------------------------------------------------------------------- status page

_STYLE: Final = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
    "h1{font-size:1.4em}h2{font-size:1.1em;margin:1.2em 0 .3em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.15em .6em;"
    "text-align:left}th{background:#f3f3f3}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}.ok{color:#070}.bad{color:#b00;font-weight:bold}"
    ".none{color:#888}"
)


class _Mark:
    """A cell with a CSS class (``ok``/``bad``)."""

    __slots__ = ("cls", "text")

    def __init__(self, text: str, cls: str) -> None:
        self.text, self.cls = text, cls


def _yes(ok: bool, yes: str = "yes", no: str = "no") -> _Mark:
    return _Mark(yes, "ok") if ok else _Mark(no, "bad")


def _num(value: float, digits: int = 10) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def _cell(value: object) -> str:
    if value is None:
        return '<td class="none">–</td>'
    if isinstance(value, _Mark):
        return f'<td class="{value.cls}">{html.escape(value.text)}</td>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="n">{html.escape(_num(float(value)))}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    if not body:
        return '<p class="none">none</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{body}</table>"


_NOT_RUNNING: Final = '<p class="none">not running</p>'


def _feeds(v: SnapshotView) -> str:
    rows = [
        (
            f,
            _yes(v.get("feed_connected", f) == 1),
            v.get("feed_frame_age_seconds", f),
            v.get("feed_frames", f),
            v.get("feed_book_frames", f),
            v.get("feed_reconnects", f),
            v.get("feed_unparsed_frames", f),
            v.get("feed_ping_rtt_seconds", f),
        )
        for f in v.keys(("feed_connected", "feed_frames"))
    ]
    out = _table(
        ("feed", "connected", "frame age s", "frames", "book frames", "reconnects", "unparsed",
         "ping rtt s"),
        rows,
    )  # fmt: skip
    subscribed = v.get("private_feed_subscribed")
    if subscribed is not None:
        out += _table(("private feed", ""), [("executions subscribed", _yes(subscribed == 1))])
    return out


def _books(v: SnapshotView) -> str:
    rows = [
        (
            s,
            _yes(v.get("book_valid", s) == 1),
            v.get("book_mid", s),
            v.get("book_spread", s),
            v.get("book_checksum_failures", s),
        )
        for s in v.keys(("book_valid", "book_checksum_failures"))
    ]
    return _table(("symbol", "valid", "mid", "spread", "checksum failures"), rows)


def _orders(v: SnapshotView) -> str:
    states = v.keys(("orders", "orders_finished"))
    rows = [(s, v.get("orders", s), v.get("orders_finished", s)) for s in states]
    return _table(("state", "now", "finished"), rows)


def _listing(v: SnapshotView, name: str, headers: Sequence[str]) -> str:
    return _table(headers, [(*lab, val) for lab, val in sorted(v.series(name))])


_STRATEGY_FAMILIES: Final = (
    "strategy_state",
    "strategy_handler_calls",
    "strategy_realised_pnl",
    "strategy_position",
    "strategy_metric",
    "strategy_counter",
    "strategy_risk_state",
)


def _strategies(v: SnapshotView) -> str:
    def per(name: str, strategy: str) -> str | None:
        """``1.5 USD; -2 EUR``: the strategy's series of ``name`` with their second label."""
        parts = [f"{_num(val)} {lab[1]}" for lab, val in sorted(v.where(name, strategy))]
        return "; ".join(parts) or None

    rows = []
    for s in v.keys(_STRATEGY_FAMILIES):
        state = v.state("strategy_state", s)
        rows.append(
            (
                s,
                None if state is None else _yes(state == "running", state, state),
                v.state("strategy_risk_state", s),
                sum(val for _, val in v.where("strategy_handler_calls", s)),
                sum(val for _, val in v.where("strategy_handler_errors", s)),
                per("strategy_realised_pnl", s),
                per("strategy_unrealised_pnl", s),
                per("strategy_daily_pnl", s),
                per("strategy_position", s),
            )
        )
    out = _table(
        ("strategy", "state", "risk", "calls", "errors", "realised", "unrealised", "today",
         "positions"),
        rows,
    )  # fmt: skip
    custom = [(*lab, "gauge", val) for lab, val in sorted(v.series("strategy_metric"))]
    custom += [(*lab, "counter", val) for lab, val in sorted(v.series("strategy_counter"))]
    if custom:
        headers = ("strategy", "name", "symbol", "kind", "value")
        out += "<h3>Strategy metrics</h3>" + _table(headers, custom)
    return out


def _risk(v: SnapshotView) -> str:
    state = v.state("risk_state")
    if state is None:
        return _NOT_RUNNING
    return _table(("bot trading state",), [(_yes(state == "active", state, state),)])


def _switch(v: SnapshotView) -> str:
    armed = v.get("deadman_armed")
    if armed is None:
        return _NOT_RUNNING
    row = (
        _yes(armed == 1),
        v.get("deadman_seconds_to_trigger"),
        v.get("deadman_refreshes"),
        v.get("deadman_failures"),
        v.get("deadman_lapses"),
    )
    return _table(("armed", "seconds to trigger", "refreshes", "failures", "lapses"), [row])


def _headroom(v: SnapshotView) -> str:
    rows: list[tuple[object, ...]] = []
    rest = v.get("rest_headroom")
    if rest is not None:
        rows.append(("REST calls", "", rest))
    rows += [("trading", lab[0], val) for lab, val in sorted(v.series("trading_headroom"))]
    return _table(("counter", "pair", "headroom"), rows)


_SECTIONS: Final[tuple[tuple[str, Callable[[SnapshotView], str]], ...]] = (
    ("Feeds", _feeds),
    ("Books", _books),
    ("Orders", _orders),
    ("Fills", lambda v: _listing(v, "fills", ("strategy", "symbol", "side", "liquidity", "n"))),
    (
        "Rejections",
        lambda v: _listing(v, "rejections", ("source", "strategy", "action", "reason", "n")),
    ),
    ("Strategies", _strategies),
    ("Risk", _risk),
    ("Dead-man's switch", _switch),
    ("Rate-limit headroom", _headroom),
)


def render_status(
    snap: Snapshot,
    ready: Mapping[str, Any],
    health: Mapping[str, Any],
    facts: Mapping[str, str],
    *,
    now_ns: int,
    refresh_s: int = 5,
) -> str:
    """The status page: ``snap`` from ``Metrics.snapshot()``, ``ready`` and ``health`` as
    /readyz and /healthz return them, ``facts`` shown at the top. Everything escaped."""
    is_ready, healthy = bool(ready.get("ready")), bool(health.get("healthy"))
    when = datetime.fromtimestamp(now_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = f"krakenbot: {'ready' if is_ready else 'NOT READY'}"
    checks = [
        (name, _yes(bool(c["ok"]), "ok", "failing"), c.get("detail") or None)
        for name, c in ready.get("checks", {}).items()
    ]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{int(refresh_s)}">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        _heading(is_ready),
        f"<p>{html.escape(when)} · refreshes every {int(refresh_s)} s</p>",
        _table(("", ""), [(k, scrub_text(val)) for k, val in facts.items()]) if facts else "",
        "<h2>Readiness</h2>",
        _table(("check", "state", "detail"), checks),
        "<h2>Health</h2>",
        _table(
            ("event loop", "lag s", "max lag s (window)", "limit s", "uptime s"),
            [
                (
                    _yes(healthy, "responsive", "LAGGING"),
                    health.get("loop_lag_s"),
                    health.get("loop_lag_max_s"),
                    health.get("max_loop_lag_s"),
                    health.get("uptime_s"),
                )
            ],
        ),
    ]
    view = SnapshotView(snap)
    parts += (f"<h2>{html.escape(name)}</h2>{section(view)}" for name, section in _SECTIONS)
    parts.append("</body></html>")
    return "\n".join(parts)


def _heading(is_ready: bool) -> str:
    cls, text = ("ok", "READY") if is_ready else ("bad", "NOT READY")
    return f'<h1>krakenbot <span class="{cls}">{text}</span></h1>'


# --------------------------------------------------------------------------- healthcheck


def add_healthcheck_arguments(parser: argparse.ArgumentParser) -> None:
    """``krakenbot healthcheck [--url URL] [--timeout S]``."""
    parser.add_argument("--url", default=DEFAULT_HEALTH_URL, help="what to GET (/healthz)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")


def main_healthcheck(args: argparse.Namespace) -> int:
    """GET ``args.url``: 0 on HTTP 200, else 1 (Docker reserves 2), one line, no traceback.

    Proxies from the environment are ignored: this is a loopback probe.
    """
    url = str(getattr(args, "url", None) or DEFAULT_HEALTH_URL)
    timeout = float(getattr(args, "timeout", None) or 3.0)
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError as exc:
        scheme = f"invalid ({exc})"
    if scheme not in ("http", "https"):
        print(f"healthcheck: {url}: not an http(s) URL", file=sys.stderr)
        return 1
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status, body = response.status, response.read(2000)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(2000)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        print(f"healthcheck: {url}: {reason}", file=sys.stderr)
        return 1
    text = body.decode("utf-8", "replace").strip()
    if status == 200:
        print(text or "ok")
        return 0
    print(f"healthcheck: {url}: HTTP {status} {text}", file=sys.stderr)
    return 1
