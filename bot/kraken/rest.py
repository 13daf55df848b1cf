"""Kraken's Spot REST API: encode once, sign, send in nonce order, map every error.

One ``KrakenRestClient`` per API key and process. Public calls go over one
``aiohttp.ClientSession``: inject the daemon's (never closed here), or let the client make
its own on first use and close it in ``close()`` / ``async with``. Private calls go over the
client's own kept-alive HTTP/1.1 connection (``bot.net.http1``, ``dedicated=True``, the
default; ``warm()`` opens it ahead of the first order), which writes a request far sooner
than aiohttp's ``post`` (``bot.net.http1``); ``dedicated=False`` sends them through the
session instead. A private call, step by step:

1. **Lockout.** After ``EGeneral:Temporary lockout`` private calls fail fast with
   ``LockoutError`` until ``locked_out_until`` (monotonic seconds) has passed.
2. **Rate limits.** Its cost on the REST counter (by method) and on the trading counter of
   each pair it touches (``trading``) must fit, else it sleeps on the injected clock until
   they do, before Kraken would refuse. The fit is checked again under the lock and charged
   then, so the local counters are never charged earlier than Kraken's. A call leaves
   ``ROOM_KEPT`` of the REST counter for the lanes ahead of its own (``rest_methods.Lane``:
   reads leave room for a switch refresh and a WS token), and reads wait while
   ``hold_reads`` holds them (the switch's refresh is due).
3. **Nonce, encode, sign, send** under one ``Turn`` (``bot.kraken.turn``), held until the
   response headers arrive, taken by lane (the switch and cancels, then order entry and
   the token, then reads) and in arrival order within one. Kraken refuses a nonce lower
   than one it has seen; aiohttp has no "bytes flushed" event and two pooled connections
   can overtake each other, so only Kraken's answer proves it has seen a nonce. Private
   calls are thus serialised per key: nothing lost at Kraken's rate limits, and
   ``timeout_s`` bounds how long one request holds the lock. The body is encoded once
   (form or JSON); those exact bytes are signed and sent.
4. **Map the answer.** Kraken's error strings go through ``error_from_kraken`` (``W…``
   warnings are logged); connection, aiohttp and HTTP failures are translated here,
   ``raise … from``: no connection is ``EHTTP:Connect failed`` (nothing was sent), a lost
   connection or a timeout after the write is ``EHTTP:Connection lost`` / ``EHTTP:Timeout``.
   A *write* (``WRITE_METHODS``) failing after its bytes may have left raises
   ``OrderStateUnknown``: the caller reconciles by ``cl_ord_id`` and never resends.
5. **Retry** (``next_retry``, pure): ``EAPI:Invalid nonce`` once with a fresh nonce, for any
   method (a nonce rejection proves that request was not accepted); transient errors with
   capped, jittered backoff for reads and ``CONVERGENT_WRITES`` only, never AddOrder,
   AddOrderBatch, AmendOrder or EditOrder. A rate-limit error is raised at once: the pair's
   trading counter is taken as full, the REST counter as over its maximum by more after
   each refusal in a row (``RestCounter.refused``), so the next call is a lone probe,
   later each time; a counted call that passes ends the streak.

Public calls are GETs, retried on transient errors, with no lock, nonce or counter (Kraken
limits them per IP). Responses are decoded by ``codec.loads_exact``: numbers arrive exact.
The typed methods live in ``rest_methods``. Key and secret are held as ``Secret`` (and the
secret, keyed once, in a ``signer.Signer``); neither the signature nor the body is logged.
Events: ``rest_call`` (method, latency_ms, attempt), ``rest_error`` (method, code,
latency_ms), ``rest_rate_wait`` (seconds, lane), ``rest_rate_refused``, ``rest_retry``.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import aiohttp

from bot.core.clock import Clock
from bot.core.errors import (
    AuthError,
    ExchangeError,
    LockoutError,
    NonceError,
    OrderStateUnknown,
    ProtocolError,
    RateLimitError,
    TransientError,
    error_from_kraken,
)
from bot.core.later import run_soon
from bot.core.log import Secret, get_logger
from bot.kraken import signer
from bot.kraken.codec import excerpt, loads_exact
from bot.kraken.nonce import NonceFloors, NonceGenerator, key_id
from bot.kraken.ratelimit import RestCounter, Tier, TradingCounter
from bot.kraken.rest_methods import (
    NEVER_RETRIED,
    Lane,
    RestMethods,
    TradingCharge,
    is_write,
    lane,
)
from bot.kraken.turn import Turn
from bot.net.http1 import ConnectFailed, ConnectionLost, Http1Connection

__all__ = [
    "DEFAULT_USER_AGENT",
    "BodyFormat",
    "KrakenRestClient",
    "RetryKind",
    "RetryPolicy",
    "failure_after_send",
    "kraken_failure",
    "next_retry",
    "settle_error",
]

DEFAULT_USER_AGENT: Final = "krakenbot/0.1"
ROOM_KEPT: Final = {Lane.SAFETY: 0.0, Lane.TRADE: 1.0, Lane.READ: 2.0}
"""REST-counter room a call of each lane leaves for the lanes ahead of it: a read leaves
room for a switch refresh and a WebSocket token, a token for a refresh."""


class BodyFormat(StrEnum):
    """How a private request body is encoded (both are signed over the exact bytes sent)."""

    FORM = "form"
    JSON = "json"


class RetryKind(StrEnum):
    NONCE = "nonce"  # at once, with a fresh nonce
    BACKOFF = "backoff"  # after ``RetryPolicy.delay``


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, and how many attempts a call gets.

    Retry ``n`` (1 for the first) waits ``min(max_delay_s, base_delay_s * multiplier**(n-1))``
    scaled down by up to ``jitter`` at random. ``max_attempts`` counts every attempt of a
    call except the one nonce retry.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if (
            min(self.base_delay_s, self.max_delay_s) < 0
            or self.max_attempts < 1
            or not (0.0 <= self.jitter <= 1.0 and self.multiplier >= 1.0)
        ):
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, retry: int, u: float) -> float:
        """Seconds before retry number ``retry``; ``u`` is a uniform draw in [0, 1)."""
        exponent = max(retry - 1, 0)
        ceiling = self.base_delay_s * self.multiplier**exponent if exponent < 64 else float("inf")
        return min(self.max_delay_s, ceiling) * (1.0 - self.jitter * u)


# --- the pure policy ---------------------------------------------------------------------


def failure_after_send(method: str, code: str, detail: str = "") -> TransientError:
    """A network or HTTP failure once the request may have reached Kraken."""
    if is_write(method):
        return OrderStateUnknown(code, detail or "the request may have been executed")
    return TransientError(code, detail)


def kraken_failure(method: str, message: str, detail: str = "") -> ExchangeError:
    """Kraken's error string for this method: a transient one on a write is unknown state
    (KRAKEN.md §1.5: Unavailable, Busy, Deadline elapsed, Internal error on AddOrder)."""
    error = error_from_kraken(message, detail)
    if is_write(method) and type(error) is TransientError:
        return OrderStateUnknown(error.code, error.detail)
    return error


def next_retry(
    method: str,
    error: ExchangeError,
    *,
    attempt: int,
    nonce_retried: bool,
    policy: RetryPolicy,
) -> RetryKind | None:
    """Whether attempt number ``attempt`` (1-based) of ``method``, failed with ``error``,
    is tried again, and how. ``None``: raise it."""
    if isinstance(error, NonceError):
        return None if nonce_retried else RetryKind.NONCE
    if not isinstance(error, TransientError) or method in NEVER_RETRIED:
        return None
    return RetryKind.BACKOFF if attempt < policy.max_attempts else None


def settle_error(method: str, error: ExchangeError, *, uncertain: bool) -> ExchangeError:
    """The error a call finally raises. ``uncertain``: an earlier attempt of this write may
    have been executed, so whatever a later attempt says (``EOrder:Invalid order`` for a
    cancel that already happened, ...) the outcome is unknown; auth errors stay as they are
    (a human must act, and reconciliation follows on restart)."""
    if uncertain and is_write(method) and not isinstance(error, OrderStateUnknown | AuthError):
        unknown = OrderStateUnknown(
            error.code, f"an earlier attempt may have been executed; last: {error}"
        )
        unknown.__cause__ = error
        return unknown
    return error


# --- the client --------------------------------------------------------------------------


class KrakenRestClient(RestMethods):
    """Async client for Kraken's (or the simulator's) Spot REST API; one per API key.

    ``base_url``: scheme, host and port only (``https://api.kraken.com``). ``store``: where
    the nonce floor is kept (a ``NonceFloors``, e.g. ``bot.store.Store``, under
    ``key_id(api_key)``); without one nonces do not survive a restart, unless ``nonces``
    is given. The generator built here tops its mark up through ``run_soon``: on the event
    loop that runs the request, after the request's step, so no order waits for the
    store's fsync (``bot.kraken.nonce``). The loop is found when a top-up is due, not at
    construction: nonces are drawn only inside this client's coroutines, so there always
    is one, and it is the right one whichever loop built the client (a loop taken at
    construction could be closed by then, and a client built outside a loop would get no
    top-ups). A caller that wants another schedule passes its own ``nonces``. ``tier`` sets
    the default counters; ``rest_counter``/``trading_counter`` override them (e.g. with a
    safety margin). ``rng`` draws the backoff jitter.
    """

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock,
        api_key: Secret | str | None = None,
        api_secret: Secret | str | None = None,
        session: aiohttp.ClientSession | None = None,
        store: NonceFloors | None = None,
        nonces: NonceGenerator | None = None,
        tier: Tier | str = Tier.STARTER,
        rest_counter: RestCounter | None = None,
        trading_counter: TradingCounter | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        body_format: BodyFormat | str = BodyFormat.FORM,
        lockout_s: float = 900.0,
        rng: random.Random | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        dedicated: bool = True,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._clock = clock
        self._key = api_key if isinstance(api_key, Secret | None) else Secret(api_key)
        self._secret = api_secret if isinstance(api_secret, Secret | None) else Secret(api_secret)
        # A malformed secret: ConfigError now. Keyed once (its repr shows nothing).
        self._signer = None if self._secret is None else signer.Signer(self._secret.reveal())
        self._session = session
        self._owns_session = session is None
        if nonces is None:
            floor, persist = 0, None
            if store is not None and self._key is not None:
                kid = key_id(self._key.reveal())
                floor = store.get_nonce_floor(kid)
                persist = functools.partial(store.set_nonce_floor, kid)
            nonces = NonceGenerator(clock, floor=floor, persist=persist, later=run_soon)
        self._nonces = nonces
        self.rest_counter = rest_counter or RestCounter(tier)
        self.trading_counter = trading_counter or TradingCounter(tier)
        self._retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._format = BodyFormat(body_format)
        self._lockout_s = lockout_s
        self._locked_until: float | None = None
        self._rng = rng or random.Random()
        self._headers = {"User-Agent": user_agent}
        self._conn = (
            Http1Connection(
                self._base, extra_headers=(("User-Agent", user_agent),), clock=clock.monotonic
            )
            if dedicated
            else None
        )
        self._lock = Turn()
        self._reads_open = asyncio.Event()
        self._reads_open.set()
        self._log = get_logger(component="rest")

    # -- lifecycle and state --------------------------------------------------------------

    async def __aenter__(self) -> KrakenRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def warm(self) -> bool:
        """Open the dedicated connection now, so the first order does not pay for it.

        True when it is open (or there is none to open); a failure is logged and left to
        the first private call, which connects again."""
        if self._conn is None:
            return True
        try:
            await self._conn.connect()
        except ConnectFailed as exc:
            self._log.warning("rest_warm_failed", error=str(exc))
            return False
        return True

    @property
    def connection(self) -> Http1Connection | None:
        """The dedicated connection private calls use, or None (``dedicated=False``)."""
        return self._conn

    def keep_nonce_ahead(self) -> None:
        """Top the nonce mark up if it is within half its reserve of the clock
        (``NonceGenerator.keep_ahead``): the daemon calls it every ``KEEP_AHEAD_EVERY_S``,
        so that an order after a quiet spell does not wait for the mark's write."""
        self._nonces.keep_ahead()

    async def close(self) -> None:
        """Close the dedicated connection, and the session if this client created it (an
        injected one is left open)."""
        if self._conn is not None:
            self._conn.close()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def locked_out_until(self) -> float | None:
        """Monotonic time until which private calls fail fast, or ``None``."""
        if self._locked_until is not None and self._clock.monotonic() >= self._locked_until:
            self._locked_until = None
        return self._locked_until

    def clear_lockout(self) -> None:
        """Forget a lockout (a human checked the key); the next call goes to Kraken."""
        self._locked_until = None

    def hold_reads(self, held: bool) -> None:
        """Hold reads (``Lane.READ``) back until released: a read already sent finishes,
        none starts. The dead-man's switch holds them while its refresh is due and not yet
        done, so the refresh gets the line and the REST counter's room first."""
        if held:
            self._reads_open.clear()
        else:
            self._reads_open.set()

    @property
    def reads_held(self) -> bool:
        return not self._reads_open.is_set()

    def rest_headroom(self) -> float:
        """How much the REST call counter takes now before it is over its maximum."""
        return self.rest_counter.headroom(self._clock.monotonic())

    def trading_headroom(self, pair: str | None) -> float:
        """How much ``pair``'s trading counter takes now before it is over its threshold."""
        return self.trading_counter.headroom(pair, self._clock.monotonic())

    def trading_headrooms(self) -> dict[str | None, float]:
        """Headroom of every pair's trading counter seen so far (for /metrics)."""
        now = self._clock.monotonic()
        return {p: self.trading_counter.headroom(p, now) for p in self.trading_counter.pairs()}

    # -- public calls ---------------------------------------------------------------------

    async def public(
        self, method: str, params: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        """``GET /0/public/<method>?params``: the result object, or an ``ExchangeError``."""
        query = signer.encode_form(params or {}).decode("ascii")
        url = f"{self._base}/0/public/{method}" + (f"?{query}" if query else "")
        return await self._with_retries(method, lambda: self._get(method, url))

    async def _get(self, method: str, url: str) -> dict[str, Any]:
        with _translate(method):
            async with self._http().get(url, headers=self._headers, timeout=self._timeout) as r:
                raw = await r.read()
        return self._decode(method, r.status, raw)

    # -- private calls --------------------------------------------------------------------

    async def private(
        self,
        method: str,
        params: Mapping[str, object] | None = None,
        *,
        trading: Sequence[TradingCharge] = (),
        body_format: BodyFormat | str | None = None,
    ) -> dict[str, Any]:
        """``POST /0/private/<method>`` signed with a fresh nonce: the result object.

        ``trading``: ``(pair, TradingCost)`` charges on the trading counter (order entry).
        ``body_format`` overrides the client's (AddOrderBatch needs JSON).
        """
        if self._key is None or self._secret is None:
            raise AuthError("EAPI:Invalid key", "no API key configured for private calls")
        fmt = self._format if body_format is None else BodyFormat(body_format)
        cost, charges = self.rest_counter.cost(method), tuple(trading)
        # A copy, so a caller's later change cannot reach a retry; FormFields are not changed.
        body = params if type(params) is signer.FormFields else dict(params or {})
        return await self._with_retries(
            method,
            functools.partial(self._post, method, body, cost, charges, fmt, line=lane(method)),
        )

    async def _post(
        self,
        method: str,
        params: dict[str, object],
        rest_cost: float,
        trading: tuple[TradingCharge, ...],
        fmt: BodyFormat,
        *,
        line: Lane,
    ) -> dict[str, Any]:
        assert self._key is not None and self._signer is not None  # checked by private()
        path = f"/0/private/{method}"
        if not self._try_admit(rest_cost, trading, line):
            await self._admit(rest_cost, trading, line)
        try:
            # Held from the nonce until Kraken's answer has begun: see the module docstring.
            nonce = self._nonces.next()
            if fmt is BodyFormat.JSON:
                body = signer.encode_json({"nonce": nonce, **params})
                ctype = signer.JSON_CONTENT_TYPE
            elif type(params) is signer.FormFields:  # encoded with the fields (AddOrder)
                body, ctype = b"nonce=%d&%s" % (nonce, params.encoded), signer.FORM_CONTENT_TYPE
            else:
                body = signer.encode_form({"nonce": nonce, **params})
                ctype = signer.FORM_CONTENT_TYPE
            key, sig = self._key.reveal(), self._signer.sign(path, nonce, body)
            conn = self._conn
            if conn is not None:
                try:
                    status, raw = await conn.request(
                        "POST",
                        path,
                        body,
                        (("API-Key", key), ("API-Sign", sig), ("Content-Type", ctype)),
                        timeout_s=self._timeout_s,
                    )
                except ConnectFailed as exc:  # not a byte left: even a write did not happen
                    raise TransientError("EHTTP:Connect failed", str(exc)) from exc
                except ConnectionLost as exc:
                    code = "EHTTP:Connection lost"
                    raise failure_after_send(method, code, type(exc).__name__) from exc
                except TimeoutError as exc:
                    raise failure_after_send(method, "EHTTP:Timeout", "TimeoutError") from exc
            else:
                headers = {**self._headers, "API-Key": key, "API-Sign": sig, "Content-Type": ctype}
                status, raw = await self._session_post(method, path, body, headers)
        finally:
            self._lock.release()
        try:
            result = self._decode(method, status, raw)
        except RateLimitError as exc:
            self._refused(method, exc.code, rest_cost, trading, status)
            raise
        except LockoutError:
            self._locked_until = self._clock.monotonic() + self._lockout_s
            self._log.error("rest_locked_out", method=method, seconds=self._lockout_s)
            raise
        except ExchangeError as exc:
            if status == 429:  # a write's 429 is its unknown fate, and still a refusal
                self._refused(method, exc.code, rest_cost, trading, status)
            raise
        if rest_cost > 0:
            self.rest_counter.accepted()  # Kraken counted it: a streak of refusals is over
        return result

    async def _session_post(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """POST through the aiohttp session (``dedicated=False``): status and body.

        Returns once the whole body is read, so the caller's lock covers the answer, as on
        the dedicated connection."""
        with _translate(method):
            response = await self._http().post(
                self._base + path, data=body, headers=headers, timeout=self._timeout
            )
        try:
            with _translate(method):
                raw = await response.read()
        finally:
            response.release()
        return response.status, raw

    def _try_admit(self, rest_cost: float, trading: tuple[TradingCharge, ...], line: Lane) -> bool:
        """``_admit``'s usual case in a plain call: no lockout, the turn free, at most one
        pair to charge and room for the call now. True: the turn is held, all charged."""
        if (
            self._locked_until is not None
            or len(trading) > 1
            or (line is Lane.READ and not self._reads_open.is_set())
            or not self._lock.try_take()
        ):
            return False
        now = self._clock.monotonic()
        needed = rest_cost + ROOM_KEPT[line]
        rest_fits = rest_cost <= 0 or self.rest_counter.wait_time(needed, now) <= 0
        if rest_fits and (not trading or self.trading_counter.admit(*trading[0], now)):
            if rest_cost > 0:
                self.rest_counter.charge(rest_cost, now)
            return True
        self._lock.release()
        return False

    async def _admit(
        self, rest_cost: float, trading: tuple[TradingCharge, ...], line: Lane
    ) -> None:
        """Wait until the call fits the counters (leaving ``ROOM_KEPT[line]`` on the REST
        counter) and reads are not held, then return holding the turn (taken by ``line``),
        charged."""
        while True:
            self._check_lockout()
            if line is Lane.READ and not self._reads_open.is_set():
                await self._reads_open.wait()
                continue
            if self._lock.locked():  # wait for room before queueing behind the holder
                wait = self._wait_time(rest_cost, trading, line, self._clock.monotonic())
                if wait > 0:
                    self._log.info("rest_rate_wait", seconds=round(wait, 3), lane=line.name)
                    await self._clock.sleep(wait)
                    continue
            await self._lock.take(line)  # at once when free
            now = self._clock.monotonic()
            wait = self._wait_time(rest_cost, trading, line, now)
            held = line is Lane.READ and not self._reads_open.is_set()
            if self.locked_out_until is None and wait <= 0 and not held:
                self.rest_counter.charge(rest_cost, now)
                for pair, cost in trading:
                    self.trading_counter.charge(pair, cost, now)
                return
            self._lock.release()  # locked out, held, or no room yet: wait outside the turn
            if wait > 0:
                self._log.info("rest_rate_wait", seconds=round(wait, 3), lane=line.name)
                await self._clock.sleep(wait)

    def _wait_time(
        self, rest_cost: float, trading: tuple[TradingCharge, ...], line: Lane, now: float
    ) -> float:
        wait = (
            0.0 if rest_cost <= 0 else self.rest_counter.wait_time(rest_cost + ROOM_KEPT[line], now)
        )
        for pair, cost in trading:
            wait = max(wait, self.trading_counter.wait_time(pair, cost, now))
        return wait

    def _check_lockout(self) -> None:
        until = self.locked_out_until
        if until is not None:
            left = until - self._clock.monotonic()
            raise LockoutError("EGeneral:Temporary lockout", f"locked out for {left:.0f} s more")

    def _refused(
        self,
        method: str,
        code: str,
        rest_cost: float,
        trading: tuple[TradingCharge, ...],
        status: int,
    ) -> None:
        """Kraken refused the call for a rate limit: the pair's trading counter is full, or
        the REST counter is over its maximum by more after each refusal in a row
        (``RestCounter.refused``): the next call waits until then, one at a time."""
        now = self._clock.monotonic()
        if code.startswith("EOrder:") and trading:
            for pair, _ in trading:
                self.trading_counter.saturate(pair, now)
            return
        wait = self.rest_counter.refused(rest_cost, now)
        self._log.warning(
            "rest_rate_refused", method=method, code=code, status=status,
            refusals_in_a_row=self.rest_counter.streak, next_call_in_s=round(wait, 3),
        )  # fmt: skip

    # -- shared -------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _decode(self, method: str, status: int, raw: bytes) -> dict[str, Any]:
        """Kraken's envelope → the result, or the mapped error."""
        try:
            envelope = loads_exact(raw)
        except ProtocolError:
            envelope = None
        errors = envelope.get("error") if isinstance(envelope, dict) else None
        if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
            warnings = [e for e in errors if e.startswith("W")]
            if warnings:
                self._log.warning("rest_warning", method=method, warnings=warnings)
            failures = [e for e in errors if not e.startswith("W")]
            if failures:
                raise kraken_failure(method, failures[0], "; ".join(failures[1:]))
            if status == 200:
                result = envelope.get("result")
                if isinstance(result, dict):
                    return result
        if status != 200:
            raise _http_status_error(method, status, raw)
        # A 200 without a trustworthy envelope: a write may still have been executed.
        detail = f"malformed response: {excerpt(raw)}"
        if is_write(method):
            raise OrderStateUnknown("EHTTP:Bad response", detail)
        raise ProtocolError(f"{method}: {detail}")

    async def _with_retries(
        self, method: str, attempt_once: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        attempt, nonce_retried, retries, uncertain = 0, False, 0, False
        while True:
            attempt += 1
            started = self._clock.monotonic()
            try:
                result: dict[str, Any] = await attempt_once()
            except ExchangeError as exc:
                ms = round((self._clock.monotonic() - started) * 1000, 1)
                self._log.warning("rest_error", method=method, code=exc.code, latency_ms=ms)
                uncertain = uncertain or isinstance(exc, OrderStateUnknown)
                kind = next_retry(
                    method,
                    exc,
                    attempt=attempt - int(nonce_retried),
                    nonce_retried=nonce_retried,
                    policy=self._retry,
                )
                if kind is None:
                    final = settle_error(method, exc, uncertain=uncertain)
                    if final is exc:
                        raise
                    raise final from exc
                if kind is RetryKind.NONCE:
                    nonce_retried = True
                else:
                    retries += 1
                    delay = self._retry.delay(retries, self._rng.random())
                    self._log.info("rest_retry", method=method, code=exc.code, delay_s=delay)
                    await self._clock.sleep(delay)
                continue
            ms = round((self._clock.monotonic() - started) * 1000, 1)
            self._log.info("rest_call", method=method, latency_ms=ms, attempt=attempt)
            return result


class _translate:  # lower case: used like a function, ``with _translate(method):``
    """aiohttp's exceptions become ours here, at the boundary, ``raise ... from``.

    A class rather than a ``contextlib.contextmanager``: it is entered on every request's
    way to the wire, and a generator-based one costs three times as much.
    """

    __slots__ = ("_method",)

    def __init__(self, method: str) -> None:
        self._method = method

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            # No connection, so not a byte has left: even a write certainly did not happen.
            raise TransientError("EHTTP:Connect failed", type(exc).__name__) from exc
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            code = "EHTTP:Timeout" if isinstance(exc, TimeoutError) else "EHTTP:Connection lost"
            raise failure_after_send(self._method, code, type(exc).__name__) from exc


def _http_status_error(method: str, status: int, raw: bytes) -> ExchangeError:
    """A non-200 answer with no Kraken error inside (a proxy's, a load balancer's)."""
    code, detail = f"EHTTP:Status {status}", excerpt(raw, 120)
    if is_write(method):
        # Only Kraken's own answer proves what happened to a write.
        return OrderStateUnknown(code, detail)
    if status == 429:
        return RateLimitError(code, detail)
    if status >= 500 or status == 408:
        return TransientError(code, detail)
    return ExchangeError(code, detail)
