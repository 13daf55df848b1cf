"""Client order ids from recorded blocks: provably ours, with no write per order.

Why. An order must be recognisable as ours after any crash, so that reconciliation adopts
it instead of calling it foreign, and a duplicate can never be sent. The plain way is a
durable (fsynced) row per order before it is sent: a millisecond or so of fsync on the
order path, every order. Instead, ids come in *blocks*, like nonces (``bot.kraken.nonce``
keeps a high-water mark for the same reason):

- An id is ``prefix + counter``: a random 24-hex-digit prefix and an 8-hex-digit counter,
  32 hex digits in all, Kraken's short-UUID ``cl_ord_id`` format; the prefix carries the
  UUID version (4) and variant nibbles, so every id is a well-formed version-4 UUID.
- A prefix is recorded durably in the store (``Store.add_id_block``, with the strategy it
  belongs to) *before* the first id of its block is handed out, and a block is never
  resumed after a restart (the counter is not persisted): a restart opens new blocks, so
  an id is never issued twice.
- Hence: every order we ever sent has an id whose prefix is in the store, whatever
  happened to the order's own row. Its row can then be written after the request (or
  without an fsync) and a lost row is recovered from the exchange, the truth: an exchange
  order whose ``cl_ord_id`` has a recorded prefix is ours (``owner``), and 96 random bits
  of prefix make a collision with anyone else's id impossible in practice.

One durable write per ``block_size`` orders per strategy (and one per strategy at start,
``prepare``). Pure apart from the store and the random source, both injected.

That write is an fsync: 0.2 ms at p50 and up to 10 ms in its tail. So that no order waits
for it, ``prepare(..., later=run_soon)`` (``bot.core.later``) records a *spare* block per
strategy as well. When a strategy's block runs out, ``next`` moves to its spare with no
write and hands ``later`` the recording of the next spare, which runs after the current
step of the event loop: after the order that used the last id is written. If that
recording fails (a full disk), it is logged, and the next block is recorded when it is
needed, as without a spare. A spare recorded and never used is harmless: its prefix is ours
and issued nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import partial
from typing import Final

from bot.core.clock import Clock
from bot.core.errors import StoreError
from bot.core.later import Later
from bot.core.log import get_logger
from bot.execution.journal import IdBlockStore

__all__ = ["DEFAULT_BLOCK_SIZE", "IdBlocks"]

log = get_logger(component="ids")

DEFAULT_BLOCK_SIZE: Final = 4096
_PREFIX_HEX: Final = 24
_COUNTER_LIMIT: Final = 16**8


class IdBlocks:
    """Issues ``cl_ord_id`` values per strategy from blocks recorded in ``store``."""

    def __init__(
        self,
        store: IdBlockStore,
        clock: Clock,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not 1 <= block_size <= _COUNTER_LIMIT:
            raise ValueError(f"block_size must be in 1..{_COUNTER_LIMIT}, got {block_size}")
        self._store, self._clock = store, clock
        self._size = block_size
        self._random = random_bytes
        self._owners = store.id_blocks()  # every prefix ever recorded -> its strategy
        self._current: dict[str, tuple[str, int]] = {}  # strategy -> (prefix, next counter)
        self._mine: dict[str, int] = {}  # prefix opened by this process -> ids issued from it
        self._spares: dict[str, str] = {}  # strategy -> a recorded prefix not started yet
        self._later: Later | None = None  # set by ``prepare``: spares kept, refilled through it
        self.blocks_opened = 0
        """Blocks this process recorded (each one durable write)."""
        self.last: str | None = None
        """The id ``next`` issued last: ``fresh`` by construction (the engine's write at
        ``submit`` tells it by identity, with no call, on every place)."""

    def next(self, strategy: str) -> str:
        """A fresh id for an order of ``strategy`` (``""``: no strategy). May record a new
        block first (``StoreError`` if that fails: then no id is issued)."""
        current = self._current.get(strategy)
        if current is None or current[1] >= self._size:
            prefix, n = self._take(strategy), 0
        else:
            prefix, n = current
        self._current[strategy] = (prefix, n + 1)
        self._mine[prefix] = n + 1
        cid = self.last = f"{prefix}{n:08x}"
        return cid

    def prepare(self, strategies: Iterable[str], *, later: Later | None = None) -> None:
        """Record a block for each strategy now (at start), so no order waits for one. With
        ``later`` (an event loop's ``call_soon``), a spare block for each as well, and from
        then on every spare taken is replaced through ``later`` (the module docstring)."""
        if later is not None:
            self._later = later
        for strategy in strategies:
            if strategy not in self._current:
                self._current[strategy] = (self._open(strategy), 0)
            if self._later is not None and strategy not in self._spares:
                self._spares[strategy] = self._open(strategy)

    @property
    def spares(self) -> frozenset[str]:
        """The strategies whose next block is on record already."""
        return frozenset(self._spares)

    def fresh(self, cl_ord_id: str) -> bool:
        """True if this process issued ``cl_ord_id`` from a block it opened: no earlier
        process can have used it (a block is never resumed)."""
        issued = self._mine.get(cl_ord_id[:_PREFIX_HEX])
        if issued is None or len(cl_ord_id) != 32:
            return False
        try:
            return int(cl_ord_id[_PREFIX_HEX:], 16) < issued
        except ValueError:
            return False

    @property
    def inherited(self) -> bool:
        """True if earlier processes recorded blocks (their orders may need adopting)."""
        return any(prefix not in self._mine for prefix in self._owners)

    def owner(self, cl_ord_id: str | None) -> str | None:
        """The strategy an id was issued for, if a recorded block issued it; else None."""
        if cl_ord_id is None or len(cl_ord_id) != 32:
            return None
        return self._owners.get(cl_ord_id[:_PREFIX_HEX])

    def _take(self, strategy: str) -> str:
        """A new block for ``strategy``: its spare (no write), or one recorded now; the next
        spare is then recorded through ``later``, after the caller's step."""
        spare = self._spares.pop(strategy, None)
        prefix = self._open(strategy) if spare is None else spare
        later = self._later
        if later is not None:
            later(partial(self._refill, strategy))
        return prefix

    def _refill(self, strategy: str) -> None:
        """Record a spare block for ``strategy`` if it has none; a failure is logged, and its
        next block is then recorded when it is needed."""
        if strategy in self._spares:
            return
        try:
            self._spares[strategy] = self._open(strategy)
        except StoreError as exc:
            log.warning("id_spare_not_recorded", strategy=strategy, error=str(exc))

    def _open(self, strategy: str) -> str:
        raw = bytearray(self._random(_PREFIX_HEX // 2))
        raw[6] = (raw[6] & 0x0F) | 0x40  # UUID version 4 (hex digit 12)
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant (hex digit 16)
        prefix = raw.hex()
        self._store.add_id_block(prefix, strategy, self._clock.time_ns())  # durable first
        self._owners[prefix] = strategy
        self._mine[prefix] = 0
        self.blocks_opened += 1
        return prefix
