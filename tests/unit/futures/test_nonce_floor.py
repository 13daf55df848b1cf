"""The nonce floor survives a restart, never goes backwards, and fails loudly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import StoreError
from bot.futures.nonce_floor import FileNonceFloor, MemoryNonceFloor, nonce_generator


def test_a_restart_starts_above_everything_issued(tmp_path: Path) -> None:
    floor = FileNonceFloor(tmp_path / "keys" / "futures.nonce")
    clock = FakeClock(start_ns=1_000_000)
    first = nonce_generator(clock, floor, reserve=100)
    issued = [first.next() for _ in range(5)]
    assert issued == sorted(set(issued))
    assert floor.load() >= issued[-1]
    # The wall clock is set back a long way; a new process still goes up.
    clock.set_wall_ns(10)
    second = nonce_generator(clock, FileNonceFloor(tmp_path / "keys" / "futures.nonce"))
    assert second.next() > issued[-1]


def test_missing_file_is_zero_and_garbage_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "n"
    assert FileNonceFloor(path).load() == 0
    path.write_text("12ab")
    with pytest.raises(StoreError):
        FileNonceFloor(path).load()
    path.write_text(str(2**64))
    with pytest.raises(StoreError):
        FileNonceFloor(path).load()


def test_an_unwritable_floor_issues_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        FileNonceFloor(blocker / "sub" / "n").save(5)  # a directory under a file

    class Failing(MemoryNonceFloor):
        def save(self, mark: int) -> None:
            raise StoreError("disk full")

    gen = nonce_generator(FakeClock(), Failing())
    with pytest.raises(StoreError):
        gen.next()
    assert gen.last == 0


def test_memory_floor_records_marks() -> None:
    floor = MemoryNonceFloor(500)
    gen = nonce_generator(FakeClock(start_ns=100), floor, reserve=10)
    assert gen.next() == 501
    assert floor.saved == [511]


def test_the_generator_saves_the_next_mark_through_later() -> None:
    clock, floor = FakeClock(start_ns=100), MemoryNonceFloor()
    queue: list[Callable[[], object]] = []
    gen = nonce_generator(clock, floor, reserve=10, later=queue.append)
    assert gen.next() == 100 and floor.saved == [110]
    clock.set_wall_ns(106)  # past half the reserve: the next mark is saved later
    assert gen.next() == 106 and floor.saved == [110] and len(queue) == 1
    queue.pop()()
    assert floor.saved == [110, 117] and gen.mark == 117
