"""The control API over HTTP: ``POST /api/halt``, ``/api/resume``, ``/api/cancel-all``,
``/api/strategies/{name}/pause``, ``/api/strategies/{name}/resume``, ``/api/reload``.

Closed by default: without ``http.control_token_env`` every route answers 403 and does
nothing, on any address the server listens on. With a token, a request must carry, in
this order of checking:

1. ``Authorization: Bearer <token>``: compared in constant time (SHA-256 digests of both
   compared with ``hmac.compare_digest``, so not even the length leaks); else 401;
2. ``X-Krakenbot-Time``: the sender's clock in milliseconds since the epoch, within
   ``WINDOW_S`` of the daemon's; else 400;
3. ``X-Krakenbot-Nonce``: 16 to 128 letters, digits, ``-`` or ``_``, never used before
   within the window; a replay is refused with 409 and changes nothing.

So a captured request cannot be played again, not even within the window (the nonce), nor
later (the time); and every action is idempotent besides (``bot.service.control``).
Every call is logged with its action, outcome and the peer's address (``control_call``,
``control_refused``; never a header) and counted in ``krakenbot_control_calls_total``.
The token travels in clear over plain HTTP: keep the API on loopback, or behind TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import orjson
from aiohttp import web

from bot.core.clock import Clock
from bot.core.log import Secret, get_logger
from bot.service.control import Controls, Outcome
from bot.service.metrics import Sample

__all__ = [
    "NONCE_HEADER",
    "ROUTES",
    "TIME_HEADER",
    "WINDOW_S",
    "ControlApi",
    "Refusal",
    "RequestGuard",
]

NONCE_HEADER: Final = "X-Krakenbot-Nonce"
TIME_HEADER: Final = "X-Krakenbot-Time"
WINDOW_S: Final = 120.0
MAX_NONCES: Final = 10_000
_NONCE: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")
_NO_STORE: Final = {"Cache-Control": "no-store"}
ROUTES: Final = (
    ("halt", "/api/halt"),
    ("resume", "/api/resume"),
    ("cancel-all", "/api/cancel-all"),
    ("pause", "/api/strategies/{name}/pause"),
    ("resume-strategy", "/api/strategies/{name}/resume"),
    ("reload", "/api/reload"),
)
log = get_logger(component="control")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: HTTP status, a stable code (log, metrics), a message."""

    status: int
    code: str
    message: str


_DISABLED: Final = Refusal(403, "disabled", "the control API is off: set http.control_token_env")
_NO_TOKEN: Final = Refusal(401, "no_token", "Authorization: Bearer <token> required")
_WRONG_TOKEN: Final = Refusal(401, "wrong_token", "wrong token")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class RequestGuard:
    """The checks of the module docstring on one request's headers (pure but for the
    nonces it remembers, each until it falls out of the window)."""

    def __init__(
        self, token: Secret | None, *, window_s: float = WINDOW_S, max_nonces: int = MAX_NONCES
    ) -> None:
        self._digest = None if token is None else _digest(token.reveal())
        self.window_ns = int(window_s * 1e9)
        self.max_nonces = max_nonces
        self._seen: dict[str, int] = {}  # nonce -> when it may be forgotten (ns)

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def check(self, headers: Mapping[str, str], now_ns: int) -> Refusal | None:
        """None if the request may act (its nonce is then used up), else why not."""
        if self._digest is None:
            return _DISABLED
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _NO_TOKEN
        if not hmac.compare_digest(_digest(given.strip()), self._digest):
            return _WRONG_TOKEN
        raw_time = headers.get(TIME_HEADER, "")
        if not raw_time.isdigit() or len(raw_time) > 16:
            return Refusal(400, "no_time", f"{TIME_HEADER}: milliseconds since the epoch")
        skew_s = (int(raw_time) * 1_000_000 - now_ns) / 1e9
        if abs(skew_s) * 1e9 > self.window_ns:
            message = f"{TIME_HEADER} is {skew_s:+.0f} s off the daemon's clock (max ±"
            return Refusal(400, "stale", message + f"{self.window_ns / 1e9:.0f} s)")
        nonce = headers.get(NONCE_HEADER, "")
        if not _NONCE.fullmatch(nonce):
            return Refusal(400, "no_nonce", f"{NONCE_HEADER}: 16-128 of A-Z a-z 0-9 - _")
        self._forget(now_ns)
        if nonce in self._seen:
            return Refusal(409, "replay", "this request was already received (a replay)")
        if len(self._seen) >= self.max_nonces:
            return Refusal(429, "busy", "too many control requests: wait a minute")
        self._seen[nonce] = now_ns + 2 * self.window_ns
        return None

    def _forget(self, now_ns: int) -> None:
        expired = [n for n, until in self._seen.items() if until <= now_ns]
        for nonce in expired:
            del self._seen[nonce]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlApi:
    """The routes; ``install(app)`` adds them (before the app starts)."""

    def __init__(self, token: Secret | None, controls: Controls, clock: Clock) -> None:
        self.guard = RequestGuard(token)
        self.controls = controls
        self._clock = clock
        self._calls: dict[tuple[str, str], int] = {}

    def install(self, app: web.Application) -> None:
        for action, path in ROUTES:
            app.router.add_post(path, self._handler(action))

    def samples(self) -> Iterator[Sample]:
        """The metrics source: ``control_calls`` by action and outcome."""
        for (action, outcome), n in self._calls.items():
            yield Sample("control_calls", n, (action, outcome))

    def _handler(self, action: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return self.call(action, request)

        return handle

    def call(self, action: str, request: web.Request) -> web.Response:
        strategy = request.match_info.get("name")
        peer = request.remote or ""
        refusal = self.guard.check(request.headers, self._clock.time_ns())
        if refusal is not None:
            self._count(action, refusal.code)
            log.warning(
                "control_refused", action=action, strategy=strategy, reason=refusal.code,
                status=refusal.status, peer=peer,
            )  # fmt: skip
            headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else {}
            return _json({"ok": False, "error": refusal.message}, refusal.status, headers)
        outcome = self._act(action, strategy)
        self._count(action, "ok" if outcome.ok else f"http_{outcome.status}")
        level = log.info if outcome.ok else log.warning
        level(
            "control_call", action=action, strategy=strategy, status=outcome.status,
            result=outcome.result, peer=peer,
        )  # fmt: skip
        body = {"ok": outcome.ok, "action": action, "result": outcome.result, **outcome.details}
        if not outcome.ok:
            body["error"] = outcome.result
        return _json(body, outcome.status)

    def _act(self, action: str, strategy: str | None) -> Outcome:
        c = self.controls
        if action == "halt":
            return c.halt()
        if action == "resume":
            return c.resume()
        if action == "cancel-all":
            return c.cancel_all()
        if action == "reload":
            return c.reload()
        assert strategy is not None
        return c.pause(strategy) if action == "pause" else c.resume_strategy(strategy)

    def _count(self, action: str, outcome: str) -> None:
        key = (action, outcome)
        self._calls[key] = self._calls.get(key, 0) + 1


def _json(
    body: Mapping[str, object], status: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json",
        headers={**_NO_STORE, **(headers or {})},
    )  # fmt: skip
