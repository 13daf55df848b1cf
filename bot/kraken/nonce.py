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

The generator is synchronous and pure apart from the injected ``clock`` and ``persist``. It
takes no lock: the async REST client holds one ``asyncio.Lock`` around next-nonce, sign and
send, so that nonces reach Kraken in the order they were drawn. This module owns only the
numbers; storing the mark is the store's job, through ``persist``. ``NonceFloors`` is what
the REST client needs of a store (``bot.store.Store`` has it), and ``key_id`` the name a
key's mark is kept under: ``bot.kraken`` imports nothing from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final, Protocol

from bot.core.clock import Clock
from bot.core.errors import StoreError
from bot.kraken.signer import MAX_NONCE

__all__ = ["DEFAULT_RESERVE_NS", "MAX_NONCE", "NonceFloors", "NonceGenerator", "key_id"]

DEFAULT_RESERVE_NS: Final = 10_000_000_000  # 10 s of nanosecond nonces per persisted block


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
    """

    __slots__ = ("_clock", "_last", "_mark", "_persist", "_reserve")

    def __init__(
        self,
        clock: Clock,
        floor: int = 0,
        persist: Callable[[int], None] | None = None,
        reserve: int = DEFAULT_RESERVE_NS,
    ) -> None:
        if not 0 <= floor < MAX_NONCE:
            raise StoreError(f"nonce floor {floor} is outside 0..2**64-2")
        if reserve < 1:
            raise ValueError(f"reserve must be at least 1, got {reserve}")
        self._clock = clock
        self._last = floor
        self._mark = floor
        self._persist = persist
        self._reserve = reserve

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

        Raises whatever ``persist`` raises (nothing is issued then), and ``StoreError`` if the
        nonce space of an unsigned 64-bit integer is exhausted.
        """
        nonce = max(self._clock.time_ns(), self._last + 1)
        if nonce > MAX_NONCE:
            raise StoreError("nonce would exceed an unsigned 64-bit integer")
        if nonce > self._mark:
            mark = min(nonce + self._reserve, MAX_NONCE)
            if self._persist is not None:
                self._persist(mark)
            self._mark = mark
        self._last = nonce
        return nonce
