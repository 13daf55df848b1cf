"""Kraken Futures REST v3: sign, send in nonce order, map every error, never guess a fate.

One ``FuturesRestClient`` per API key and process, over one ``aiohttp.ClientSession``
(inject the daemon's; otherwise the client makes one and closes it in ``close()``). A
private call, step by step:

1. **Budget.** Its cost (``ratelimit.endpoint_cost``) must fit the ``/derivatives``
   budget; the client sleeps on the injected clock until it does, before Kraken would
   answer ``apiLimitExceeded``.
2. **Nonce, encode, sign, send** under one ``Turn`` held until the answer is read, so
   nonces reach Kraken in the order they were drawn (``nonceBelowThreshold`` otherwise).
   The parameters are url-encoded once (``auth.encode_params``) into the query string;
   that exact text is the ``postData`` of ``Authent`` (the 2024 rule: sign what is sent),
   and the URL is handed to aiohttp pre-encoded so it cannot re-quote it.
3. **Map the answer.** ``result: error`` codes go through ``error_codes.futures_error``;
   aiohttp and HTTP failures are translated here, ``raise … from``: no connection is
   ``EHTTP:Connect failed`` (nothing was sent, even a write did not happen); a lost
   connection, a timeout or a 5xx after the request left is ``OrderStateUnknown`` on an
   order-entry endpoint (``sendorder``, ``editorder``, ``batchorder``, cancels, the
   dead-man's switch) and ``TransientError`` on a read.
4. **Retry.** ``nonceBelowThreshold``/``nonceDuplicate`` once with a fresh nonce (a
   refused nonce proves the request was not acted on); transient errors with capped,
   jittered backoff for reads and convergent writes (cancels, the dead-man's switch),
   never for ``sendorder``, ``editorder`` or ``batchorder``. When an earlier attempt of a
   write may have acted, whatever a later one says, the call ends ``OrderStateUnknown``.

The account history (``executions``, ``bot.futures.history``) goes another way: to
``/api/history/v3/...`` on the same host, signed with its path as it is and **without a
nonce** (Kraken's ``Nonce`` is optional, and ccxt signs every Futures call without one),
so it needs no ``Turn`` and never waits behind or holds up an order write; charged to its
own budget (``history_budget``, 100 per 10 minutes), and never waiting for it: a call that
does not fit is refused here at once (``RateLimitError``, nothing sent), for the caller to
read ``fills`` instead; for the same reason a failed history call is not retried. Pages
follow ``continuationToken`` up to ``max_pages`` (``futures_history_truncated`` when a
read stops there).

``result: success`` is not "placed": the typed calls read ``sendStatus.status`` and raise
the mapped rejection (``check=True``, the default) or return it. After an
``OrderStateUnknown`` on ``sendorder`` the caller resolves the order with ``lookup``
(open orders, then fills, by ``cliOrdId``) and never resends blindly.

Keys are held as ``Secret``; neither the ``Authent`` nor the query is logged. Events:
``futures_rest_call`` (endpoint, latency_ms, attempt), ``futures_rest_error``,
``futures_rest_wait``, ``futures_rest_retry``, ``futures_history_refused`` (the history
budget is spent), ``futures_history_truncated``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
from yarl import URL

from bot.core.clock import Clock
from bot.core.errors import (
    AuthError,
    ExchangeError,
    NonceError,
    OrderStateUnknown,
    ProtocolError,
    RateLimitError,
    TransientError,
)
from bot.core.later import run_soon
from bot.core.log import Secret, get_logger
from bot.futures import history as h
from bot.futures import orders as o
from bot.futures import queries as q
from bot.futures.auth import FuturesSigner, encode_params
from bot.futures.error_codes import NEVER_RETRIED, futures_error, is_write
from bot.futures.instruments import FuturesInstrument, instruments_from_response
from bot.futures.nonce_floor import NonceFloor, nonce_generator
from bot.futures.ratelimit import FuturesBudget, history_budget
from bot.kraken.codec import excerpt, loads_exact
from bot.kraken.nonce import NonceGenerator
from bot.kraken.turn import Turn

__all__ = [
    "DEFAULT_USER_AGENT",
    "Backoff",
    "FuturesRestClient",
    "decode_answer",
    "failure_after_send",
]

DEFAULT_USER_AGENT: Final = "krakenbot/0.1"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter; ``max_attempts`` counts every attempt of a
    call except the one nonce retry."""

    max_attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or min(self.base_delay_s, self.max_delay_s) < 0:
            raise ValueError(f"invalid backoff: {self}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be in 0..1: {self}")

    def delay(self, retry: int, u: float) -> float:
        """Seconds before retry number ``retry`` (1-based); ``u`` uniform in [0, 1)."""
        ceiling = self.base_delay_s * float(1 << min(max(retry - 1, 0), 62))
        return min(self.max_delay_s, ceiling) * (1.0 - self.jitter * u)


def failure_after_send(endpoint: str, code: str, detail: str = "") -> TransientError:
    """A network or HTTP failure once the request may have reached Kraken."""
    if is_write(endpoint):
        return OrderStateUnknown(code, detail or "the request may have been executed")
    return TransientError(code, detail)


def decode_answer(endpoint: str, status: int, raw: bytes) -> dict[str, Any]:
    """Kraken Futures' answer → the success body, or the mapped error (pure)."""
    try:
        body = loads_exact(raw)
    except ProtocolError:
        body = None
    if isinstance(body, dict):
        result = body.get("result")
        if result == "success" and status == 200:
            return body
        if result == "error":
            code = body.get("error")
            if type(code) is not str:
                errors = body.get("errors")
                code = errors[0] if isinstance(errors, list) and errors else None
            if type(code) is str:
                return _raise(futures_error(code, f"HTTP {status}", endpoint=endpoint))
    detail = excerpt(raw, 120)
    if status != 200:
        if is_write(endpoint):
            # Only Kraken's own answer proves what happened to a write.
            return _raise(OrderStateUnknown(f"EHTTP:Status {status}", detail))
        if status == 429:
            return _raise(RateLimitError(f"EHTTP:Status {status}", detail))
        if status >= 500 or status == 408:
            return _raise(TransientError(f"EHTTP:Status {status}", detail))
        return _raise(ExchangeError(f"EHTTP:Status {status}", detail))
    if is_write(endpoint):
        return _raise(OrderStateUnknown("EHTTP:Bad response", f"malformed answer: {detail}"))
    raise ProtocolError(f"{endpoint}: malformed answer: {detail}")


def _raise(error: ExchangeError) -> dict[str, Any]:
    raise error


class FuturesRestClient:
    """Async client for Kraken Futures' (or the simulator's) REST v3; one per API key.

    ``base_url``: scheme, host and port (``https://futures.kraken.com``). Nonces come from
    ``nonces``, or from a generator over ``nonce_floor`` (the persisted mark, topped up
    through ``run_soon`` on the loop that runs the request, as the spot client's is), or,
    with neither, from one that keeps nothing across restarts. ``budget`` is the
    ``/derivatives`` budget, ``history`` the history API's pool.
    """

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock,
        api_key: Secret | str | None = None,
        api_secret: Secret | str | None = None,
        session: aiohttp.ClientSession | None = None,
        nonces: NonceGenerator | None = None,
        nonce_floor: NonceFloor | None = None,
        budget: FuturesBudget | None = None,
        history: FuturesBudget | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        rng: random.Random | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._clock = clock
        self._key = api_key if isinstance(api_key, Secret | None) else Secret(api_key)
        secret = api_secret if isinstance(api_secret, Secret | None) else Secret(api_secret)
        self._signer = None if secret is None else FuturesSigner(secret.reveal())
        self._session = session
        self._owns_session = session is None
        if nonces is None:
            nonces = (
                nonce_generator(clock, nonce_floor, later=run_soon)
                if nonce_floor is not None
                else NonceGenerator(clock)
            )
        self._nonces = nonces
        self.budget = budget or FuturesBudget()
        self.history_budget = history or history_budget()
        self._backoff = backoff or Backoff()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._rng = rng or random.Random()
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._turn = Turn()
        self._log = get_logger(component="futures_rest")

    async def __aenter__(self) -> FuturesRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def keep_nonce_ahead(self) -> None:
        """Top the nonce mark up if it is within half its reserve of the clock
        (``NonceGenerator.keep_ahead``): the daemon calls it every ``KEEP_AHEAD_EVERY_S``,
        so that an order after a quiet spell does not wait for the mark's write."""
        self._nonces.keep_ahead()

    async def close(self) -> None:
        """Close the session if this client created it (an injected one is left open)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- the call ---------------------------------------------------------------------

    async def call(self, req: o.FuturesRequest, *, private: bool = True) -> dict[str, Any]:
        """Send ``req`` (signed when ``private``) and return the success body."""
        body, _ = await self._call(req, private=private)
        return body

    async def _call(
        self, req: o.FuturesRequest, *, private: bool = True
    ) -> tuple[dict[str, Any], bool]:
        """The success body, and whether an earlier attempt of this write may have acted
        (its answer was lost and it was retried)."""
        if private and (self._key is None or self._signer is None):
            raise AuthError("authenticationError", "no Futures API key configured")
        query = encode_params(dict(req.params))
        return await self._with_retries(
            req.endpoint, lambda: self._attempt(req, query, private=private)
        )

    async def _attempt(self, req: o.FuturesRequest, query: str, *, private: bool) -> dict[str, Any]:
        url = self._base + req.path + (f"?{query}" if query else "")
        headers = dict(self._headers)
        if not private:
            status, raw = await self._send(req, url, headers)
            return decode_answer(req.endpoint, status, raw)
        assert self._key is not None and self._signer is not None
        await self._admit(req.cost)
        try:
            nonce = str(self._nonces.next())
            headers["APIKey"] = self._key.reveal()
            headers["Nonce"] = nonce
            headers["Authent"] = self._signer.authent(query, nonce, req.path)
            status, raw = await self._send(req, url, headers)
        finally:
            self._turn.release()
        try:
            return decode_answer(req.endpoint, status, raw)
        except RateLimitError:
            self.budget.saturate(self._clock.monotonic())
            raise

    async def _history_attempt(self, req: h.HistoryRequest, query: str) -> dict[str, Any]:
        """One signed history call, no nonce, charged to the history pool (never waited
        for: refused at once when it does not fit)."""
        assert self._key is not None and self._signer is not None
        now = self._clock.monotonic()
        wait = self.history_budget.wait_time(req.cost, now)
        if wait > 0:
            self._log.info("futures_history_refused", endpoint=req.endpoint, wait_s=round(wait))
            raise RateLimitError("apiLimitExceeded", f"history budget spent for {wait:.0f} s")
        self.history_budget.charge(req.cost, now)
        url = self._base + req.path + (f"?{query}" if query else "")
        headers = dict(self._headers)
        headers["APIKey"] = self._key.reveal()
        headers["Authent"] = self._signer.authent(query, "", req.path)
        status, raw = await self._send(req, url, headers)
        try:
            return h.decode_answer(req.endpoint, status, raw)
        except RateLimitError:
            self.history_budget.saturate(self._clock.monotonic())
            raise

    async def history_call(self, req: h.HistoryRequest) -> dict[str, Any]:
        """Send one history request and return its body. A failure is not retried here:
        the caller has ``fills`` to read instead, which is quicker than backing off."""
        if self._key is None or self._signer is None:
            raise AuthError("authenticationError", "no Futures API key configured")
        query = encode_params(dict(req.params))
        started = self._clock.monotonic()
        try:
            body = await self._history_attempt(req, query)
        except ExchangeError as exc:
            ms = round((self._clock.monotonic() - started) * 1000, 1)
            self._log.warning("futures_rest_error", endpoint=req.endpoint, code=exc.code, ms=ms)
            raise
        ms = round((self._clock.monotonic() - started) * 1000, 1)
        self._log.info("futures_rest_call", endpoint=req.endpoint, latency_ms=ms, attempt=1)
        return body

    async def _send(
        self, req: o.FuturesRequest | h.HistoryRequest, url: str, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        endpoint = req.endpoint
        try:
            async with self._http().request(
                req.http_method,
                URL(url, encoded=True),  # sent exactly as signed: never re-quoted
                headers=headers,
                timeout=self._timeout,
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # No connection, so not a byte has left: even a write certainly did not happen.
            raise TransientError("EHTTP:Connect failed", type(exc).__name__) from exc
        except TimeoutError as exc:
            raise failure_after_send(endpoint, "EHTTP:Timeout", "TimeoutError") from exc
        except aiohttp.ClientError as exc:
            code = "EHTTP:Connection lost"
            raise failure_after_send(endpoint, code, type(exc).__name__) from exc

    async def _admit(self, cost: float) -> None:
        """Wait until ``cost`` fits the budget; return holding the turn, charged."""
        while True:
            wait = self.budget.wait_time(cost, self._clock.monotonic())
            if wait > 0:
                self._log.info("futures_rest_wait", seconds=round(wait, 3))
                await self._clock.sleep(wait)
                continue
            await self._turn.take()
            now = self._clock.monotonic()
            if self.budget.wait_time(cost, now) <= 0:
                self.budget.charge(cost, now)
                return
            self._turn.release()

    async def _with_retries(
        self, endpoint: str, attempt_once: Callable[[], Awaitable[dict[str, Any]]]
    ) -> tuple[dict[str, Any], bool]:
        attempt, retries, nonce_retried, uncertain = 0, 0, False, False
        while True:
            attempt += 1
            started = self._clock.monotonic()
            try:
                body = await attempt_once()
            except ExchangeError as exc:
                ms = round((self._clock.monotonic() - started) * 1000, 1)
                self._log.warning("futures_rest_error", endpoint=endpoint, code=exc.code, ms=ms)
                uncertain = uncertain or isinstance(exc, OrderStateUnknown)
                if isinstance(exc, NonceError) and not nonce_retried:
                    nonce_retried = True
                    continue
                retryable = isinstance(exc, TransientError) and endpoint not in NEVER_RETRIED
                if retryable and attempt - int(nonce_retried) < self._backoff.max_attempts:
                    retries += 1
                    delay = self._backoff.delay(retries, self._rng.random())
                    self._log.info("futures_rest_retry", endpoint=endpoint, delay_s=delay)
                    await self._clock.sleep(delay)
                    continue
                settled = not isinstance(exc, OrderStateUnknown | AuthError)
                if uncertain and is_write(endpoint) and settled:
                    detail = f"an earlier attempt may have been executed; last: {exc}"
                    raise OrderStateUnknown(exc.code, detail) from exc
                raise
            ms = round((self._clock.monotonic() - started) * 1000, 1)
            self._log.info("futures_rest_call", endpoint=endpoint, latency_ms=ms, attempt=attempt)
            return body, uncertain

    # -- public typed calls -----------------------------------------------------------

    async def instruments(self) -> list[FuturesInstrument]:
        return instruments_from_response(await self.call(q.instruments(), private=False))

    async def tickers(self) -> tuple[q.Ticker, ...]:
        return q.parse_tickers(await self.call(q.tickers(), private=False))

    async def orderbook(self, symbol: str) -> q.OrderBook:
        return q.parse_orderbook(await self.call(q.orderbook(symbol), private=False))

    # -- private typed calls ------------------------------------------------------------

    async def send_order(
        self,
        inst: FuturesInstrument,
        *,
        side: str,
        order_type: o.OrderType | str,
        size: int,
        cli_ord_id: str,
        limit_price: int | None = None,
        stop_price: int | None = None,
        reduce_only: bool = False,
        trigger_signal: o.TriggerSignal | str | None = None,
        check: bool = True,
    ) -> o.SendResult:
        """``sendorder``. ``check``: raise the mapped rejection unless the status is a
        success. A lost answer raises ``OrderStateUnknown``: resolve with ``lookup``."""
        req = o.send_order(
            inst,
            side=side,
            order_type=order_type,
            size=size,
            cli_ord_id=cli_ord_id,
            limit_price=limit_price,
            stop_price=stop_price,
            reduce_only=reduce_only,
            trigger_signal=trigger_signal,
        )
        body, uncertain = await self._call(req)
        return _checked(o.parse_send(body), check, f"cliOrdId {cli_ord_id}", uncertain)

    async def edit_order(
        self,
        inst: FuturesInstrument,
        *,
        order_id: str | None = None,
        cli_ord_id: str | None = None,
        size: int | None = None,
        limit_price: int | None = None,
        stop_price: int | None = None,
        qty_mode: str | None = None,
        check: bool = True,
    ) -> o.EditResult:
        req = o.edit_order(
            inst,
            order_id=order_id,
            cli_ord_id=cli_ord_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            qty_mode=qty_mode,
        )
        body, uncertain = await self._call(req)
        return _checked(o.parse_edit(body), check, f"order {order_id or cli_ord_id}", uncertain)

    async def cancel_order(
        self, *, order_id: str | None = None, cli_ord_id: str | None = None, check: bool = True
    ) -> o.CancelResult:
        """``cancelorder``. After a lost answer the cancel is sent again (it converges);
        if the later answer is ``notFound``/``filled``, the first may have done it: then the
        outcome is ``OrderStateUnknown`` (reconcile), never a plain rejection."""
        req = o.cancel_order(order_id=order_id, cli_ord_id=cli_ord_id)
        body, uncertain = await self._call(req)
        what = f"order {order_id or cli_ord_id}"
        return _checked(o.parse_cancel(body), check, what, uncertain)

    async def batch_order(
        self, instructions: Sequence[o.BatchInstruction]
    ) -> tuple[o.BatchItemResult, ...]:
        """``batchorder``: one status per instruction, in order (each has ``ok`` and
        ``error()``; a failed item does not raise)."""
        return o.parse_batch(await self.call(o.batch_order(instructions)))

    async def cancel_all_orders(self, symbol: str | None = None) -> o.CancelAllResult:
        return o.parse_cancel_all(await self.call(o.cancel_all_orders(symbol)))

    async def cancel_all_orders_after(self, seconds: int) -> o.DeadManStatus:
        """Arm or push back the dead-man's switch for ``seconds`` (0 disarms)."""
        return o.parse_dead_man(await self.call(o.cancel_all_orders_after(seconds)))

    async def open_orders(self) -> tuple[q.OpenOrder, ...]:
        return q.parse_open_orders(await self.call(q.open_orders()))

    async def fills(self, last_fill_time: str | None = None) -> tuple[q.Fill, ...]:
        return q.parse_fills(await self.call(q.fills(last_fill_time)))

    async def open_positions(self) -> tuple[q.OpenPosition, ...]:
        return q.parse_open_positions(await self.call(q.open_positions()))

    async def accounts(self) -> q.Accounts:
        return q.parse_accounts(await self.call(q.accounts()))

    async def executions(
        self,
        *,
        since_ms: int | None = None,
        count: int = h.PAGE_COUNT,
        max_pages: int = h.MAX_PAGES,
    ) -> h.ExecutionHistory:
        """The account's executions since ``since_ms`` (None: as far back as ``max_pages``
        pages reach), newest first, each with its fee, page after page
        (``continuationToken``). Stopped at ``max_pages`` with more to read, the result says
        ``truncated`` and ``futures_history_truncated`` is logged."""
        pager = h.ExecutionPager(since_ms, count=count, max_pages=max_pages)
        while (req := pager.next_request()) is not None:
            pager.take(h.parse_executions(await self.history_call(req)))
        found = pager.result()
        if found.truncated:
            self._log.warning(
                "futures_history_truncated", pages=found.pages, since_ms=since_ms,
                executions=len(found.executions),
            )  # fmt: skip
        return found

    async def lookup(self, cli_ord_id: str) -> q.OrderLookup:
        """What the exchange knows of ``cli_ord_id``: open orders first, then fills (in
        that order, so an order that fills in between is seen in the fills)."""
        resting = await self.open_orders()
        recent = await self.fills()
        return q.find_order(cli_ord_id, resting, recent)


_R = TypeVar("_R", o.SendResult, o.EditResult, o.CancelResult)


def _checked(result: _R, check: bool, what: str, uncertain: bool) -> _R:
    if check:
        error = result.error(what)
        if error is not None:
            if uncertain:
                detail = f"{what}: an earlier attempt may have been executed; last: {error}"
                raise OrderStateUnknown(error.code, detail) from error
            raise error
    return result
