"""Strictly increasing nonces for one Kraken API key, that never go backwards across restarts.

Kraken requires "an always increasing, unsigned 64-bit integer" per API key (KRAKEN.md §1.4);
a repeated or lower nonce is refused with ``EAPI:Invalid nonce``, and too many of those earn a
temporary ban. Each nonce is ``max(clock.time_ns(), last + 1)``: nanoseconds, like Kraken's
own example, so bursts stay distinct, and never below the previous one even when the wall
clock is frozen or set back.

Durability without a write per request: a *high-water mark*. The generator keeps a persisted
mark ``M`` with the invariant **every nonce ever issued is <= M**. Before issuing a nonce
``n > M`` it first calls ``persist(n + reserve)`` and only then returns ``n``; if ``persist``
raises, nothing is issued and the state is unchanged. A restart constructs the generator with
``floor = M`` (read back from the store), so its first nonce is at least ``M + 1``, above
anything the previous process sent, whatever the wall clock says now. With nanosecond nonces
and the default 10 s reserve, a busy daemon writes the mark at most about every 10 s, and a
restart may start up to 10 s (in nonce units) ahead of the wall clock, which Kraken does not
mind: it only asks for increase. A crash loop advances by at most ``reserve`` per restart.

The mark is kept ahead off the request's path. A persist is a durable write (an fsync: 0.2 ms
typically, 10 ms and more in its tail), and ``next()`` runs between a request's nonce and
its send. So when ``later`` is given (a way to run a callable after the current step, e.g.
``bot.core.later.run_soon``, the running event loop's ``call_soon``), a nonce past half the reserve
(``n > M - reserve // 2``) schedules one *top-up* through it. The top-up persists
``max(now, last + 1) + reserve`` and raises ``M`` only after that write returned; if the write
fails (``StoreError``) it logs ``nonce_top_up_failed`` and leaves ``M`` as it was, and a later
nonce schedules another. With the REST client's dedicated connection the top-up runs after
the request is written; while requests keep coming, no request waits for the write. So that
a quiet spell (over 5 s with the default reserve) does not make the next request wait
either, the daemon calls ``keep_ahead()`` every ``KEEP_AHEAD_EVERY_S``: it tops the mark up
by the same rule with no request, so the mark stays at least a quarter of the reserve
ahead of the clock. The synchronous persist in ``next()`` stays: it is the fallback when a
top-up is late, dropped or failed, so the invariant holds however they interleave. Without
``later`` (or without ``persist``) nothing is scheduled and ``keep_ahead`` does nothing.

The generator is synchronous and pure apart from the injected ``clock``, ``persist`` and
``later``. It takes no lock: the async REST client holds one ``asyncio.Lock`` around
next-nonce, sign and send, so that nonces reach Kraken in the order they were drawn. This
module owns only the numbers; storing the mark is the store's job, through ``persist``.
``NonceFloors`` is what the REST client needs of a store (``bot.store.Store`` has it), and
``key_id`` the name a key's mark is kept under: ``bot.kraken`` imports nothing from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final, Protocol

from bot.core.clock import Clock
from bot.core.errors import StoreError
from bot.core.later import Later
from bot.core.log import get_logger
from bot.kraken.signer import MAX_NONCE

__all__ = [
    "DEFAULT_RESERVE_NS",
    "KEEP_AHEAD_EVERY_S",
    "MAX_NONCE",
    "NonceFloors",
    "NonceGenerator",
    "key_id",
]

DEFAULT_RESERVE_NS: Final = 10_000_000_000  # 10 s of nanosecond nonces per persisted block
KEEP_AHEAD_EVERY_S: Final = DEFAULT_RESERVE_NS / 4e9
"""How often a daemon calls ``keep_ahead`` (2.5 s): a mark topped up when it is within half
the reserve is then never less than a quarter of the reserve ahead of the clock."""

log = get_logger(component="nonce")


def key_id(api_key: str) -> str:
    """The name under which a key's nonce floor is stored: never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class NonceFloors(Protocol):
    """Where each key's persisted mark is kept (``bot.store.Store``), by ``key_id``."""

    def get_nonce_floor(self, key_id: str) -> int: ...

    def set_nonce_floor(self, key_id: str, value: int) -> None: ...


class NonceGenerator:
    """``next()`` returns strictly increasing nonces; the persisted mark survives restarts.

    ``floor``: the mark persisted by the previous run (0 on first use of a key); every nonce
    returned is greater than it. ``persist``: called with a new mark before any nonce above
    the current mark is returned (durably, e.g. a SQLite commit); ``None`` keeps nothing
    across restarts. ``reserve``: how far ahead of the issued nonce each new mark is placed.
    ``later``: runs a callable after the current step (``run_soon``); with it the mark is
    topped up there, off the request's path, before the nonces reach it (module docstring).
    Ignored without ``persist``: a mark kept nowhere costs nothing to raise in ``next()``.
    """

    __slots__ = (
        "_clock",
        "_last",
        "_later",
        "_mark",
        "_pending",
        "_persist",
        "_reserve",
        "_top_up_at",
    )

    def __init__(
        self,
        clock: Clock,
        floor: int = 0,
        persist: Callable[[int], None] | None = None,
        reserve: int = DEFAULT_RESERVE_NS,
        *,
        later: Later | None = None,
    ) -> None:
        if not 0 <= floor < MAX_NONCE:
            raise StoreError(f"nonce floor {floor} is outside 0..2**64-2")
        if reserve < 1:
            raise ValueError(f"reserve must be at least 1, got {reserve}")
        self._clock = clock
        self._last = floor
        self._persist = persist
        self._reserve = reserve
        self._later = later if persist is not None else None
        self._pending = False  # a top-up is scheduled and has not run yet
        self._set_mark(floor)

    @property
    def last(self) -> int:
        """The last nonce returned (the floor before the first one)."""
        return self._last

    @property
    def mark(self) -> int:
        """The persisted high-water mark: no nonce issued so far is above it."""
        return self._mark

    def next(self) -> int:
        """The next nonce: ``max(clock.time_ns(), last + 1)``, its mark persisted first.

        Raises whatever ``persist`` or ``later`` raises (nothing is issued then), and
        ``StoreError`` if the nonce space of an unsigned 64-bit integer is exhausted.
        """
        nonce = max(self._clock.time_ns(), self._last + 1)
        if nonce > MAX_NONCE:
            raise StoreError("nonce would exceed an unsigned 64-bit integer")
        if nonce > self._mark:  # no top-up got there first: persist on the request's path
            mark = min(nonce + self._reserve, MAX_NONCE)
            if self._persist is not None:
                self._persist(mark)
            self._set_mark(mark)
        if nonce > self._top_up_at and not self._pending:
            assert self._later is not None  # else _top_up_at is MAX_NONCE
            self._pending = True
            try:
                self._later(self._top_up)
            except BaseException:
                self._pending = False
                raise
        self._last = nonce
        return nonce

    def _set_mark(self, mark: int) -> None:
        """``mark`` is persisted: nonces up to it may be issued; past half of it, top up."""
        self._mark = mark
        if self._later is None or mark >= MAX_NONCE:
            self._top_up_at = MAX_NONCE  # no nonce is above it: never scheduled
        else:
            self._top_up_at = mark - self._reserve // 2

    def keep_ahead(self) -> bool:
        """Top the mark up now if a nonce drawn now would schedule a top-up (the clock past
        half the reserve before the mark) and none is scheduled: for a periodic task while
        no request comes, so that the first request after a quiet spell finds its nonce
        under the mark already. Returns whether a new mark was written. Without ``later``
        (or ``persist``) it does nothing, as ``next()`` schedules nothing then."""
        if self._pending or max(self._clock.time_ns(), self._last + 1) <= self._top_up_at:
            return False
        before = self._mark
        self._top_up()  # a failed write is logged there
        return self._mark != before

    def _top_up(self) -> None:
        """Persist a mark a reserve ahead of now, then raise ``mark`` to it (run by
        ``later``). A failed write (``StoreError``) is logged and changes nothing; any
        other error propagates to whatever ran this (the event loop logs it)."""
        try:
            mark = min(max(self._clock.time_ns(), self._last + 1) + self._reserve, MAX_NONCE)
            if mark <= self._mark:
                return  # the end of the u64 space (else a reserve past last)
            assert self._persist is not None  # else nothing is scheduled
            try:
                self._persist(mark)
            except StoreError as exc:
                log.warning("nonce_top_up_failed", mark=self._mark, wanted=mark, error=str(exc))
                return
            self._set_mark(mark)
        finally:
            self._pending = False
