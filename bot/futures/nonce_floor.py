"""Where a Futures API key's nonce high-water mark is kept between runs.

Kraken Futures refuses a nonce it has seen (``nonceDuplicate``) or one below its
threshold (``nonceBelowThreshold``); a new key pair resets that state (KRAKEN.md §6.1).
The client draws nonces from ``bot.kraken.nonce.NonceGenerator`` (``max(now_ns, last + 1)``
with a persisted mark ``M``: every nonce ever issued is ``<= M``, and a restart starts
above ``M``). This module is the small protocol that generator's mark goes through, so
that the daemon can later keep it in its store without this package knowing the store:

- ``NonceFloor``: ``load()`` the mark (0 for a key never used) and ``save(mark)`` durably.
- ``FileNonceFloor``: one small file per key, written atomically (temp file, fsync,
  rename, fsync of the directory), so a crash leaves either the old mark or the new one.
- ``MemoryNonceFloor``: for tests and throw-away clients (nothing survives the process).

``nonce_generator(clock, floor, later=...)`` joins the two; with ``later`` (the daemon and
the client pass ``run_soon``) the generator saves each next mark after the request's step,
before the nonces reach the old one, so no request waits for the fsync. This module owns
only the persistence protocol; the arithmetic is the generator's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from bot.core.clock import Clock
from bot.core.errors import StoreError
from bot.core.later import Later
from bot.kraken.nonce import DEFAULT_RESERVE_NS, MAX_NONCE, NonceGenerator

__all__ = ["FileNonceFloor", "MemoryNonceFloor", "NonceFloor", "nonce_generator"]

_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,19}")


@runtime_checkable
class NonceFloor(Protocol):
    """A key's persisted nonce mark."""

    def load(self) -> int:
        """The mark saved last (0 if none was ever saved)."""
        ...

    def save(self, mark: int) -> None:
        """Keep ``mark`` durably before returning; raise if it cannot be kept."""
        ...


class MemoryNonceFloor:
    """A mark kept in memory only (``saved`` lists every mark, for tests)."""

    def __init__(self, mark: int = 0) -> None:
        self.saved: list[int] = []
        self._mark = mark

    def load(self) -> int:
        return self._mark

    def save(self, mark: int) -> None:
        self.saved.append(mark)
        self._mark = mark


class FileNonceFloor:
    """The mark as decimal text in one file (created with its directory on first save).

    ``load`` of a missing file is 0; a file that is not a canonical decimal in
    ``0..2**64-1`` is a ``StoreError`` (never silently reset: that could reuse nonces).
    A failed write is a ``StoreError`` and leaves the previous file in place.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the nonce floor {self.path}: {exc}") from None
        if _DECIMAL.fullmatch(text) is None or int(text) > MAX_NONCE:
            raise StoreError(f"the nonce floor {self.path} is not a nonce: {text[:40]!r}")
        return int(text)

    def save(self, mark: int) -> None:
        if not 0 <= mark <= MAX_NONCE:
            raise StoreError(f"nonce mark {mark} is outside 0..2**64-1")
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, f"{mark}\n".encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StoreError(f"cannot write the nonce floor {self.path}: {exc}") from None


def nonce_generator(
    clock: Clock,
    floor: NonceFloor,
    *,
    reserve: int = DEFAULT_RESERVE_NS,
    later: Later | None = None,
) -> NonceGenerator:
    """A nonce generator for one key that starts above ``floor``'s mark and saves each new
    mark through it before issuing a nonce beyond the old one; with ``later``, ahead of
    time, off the request's path (``NonceGenerator``)."""
    return NonceGenerator(
        clock, floor=floor.load(), persist=floor.save, reserve=reserve, later=later
    )
