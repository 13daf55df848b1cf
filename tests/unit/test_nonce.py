"""Nonces strictly increase: frozen clock, clock set back, restarts from the persisted mark."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bot.kraken
from bot import store as store_module
from bot.core.clock import FakeClock
from bot.core.errors import StoreError
from bot.kraken.nonce import NonceGenerator, key_id
from bot.kraken.signer import MAX_NONCE

START = 1_700_000_000_000_000_000


class Store:
    """Stands in for the SQLite nonce floor: the last persisted mark, and every write."""

    def __init__(self) -> None:
        self.writes: list[int] = []

    @property
    def floor(self) -> int:
        return self.writes[-1] if self.writes else 0

    def persist(self, mark: int) -> None:
        self.writes.append(mark)


def test_follows_the_wall_clock_in_nanoseconds() -> None:
    clock = FakeClock(start_ns=START)
    gen = NonceGenerator(clock)
    assert gen.next() == START
    clock.advance(0.5)
    assert gen.next() == START + 500_000_000


def test_strictly_increasing_under_a_frozen_clock() -> None:
    gen = NonceGenerator(FakeClock(start_ns=START))
    nonces = [gen.next() for _ in range(10_000)]
    assert nonces == list(range(START, START + 10_000))
    assert gen.last == START + 9_999


def test_strictly_increasing_when_the_clock_is_set_back() -> None:
    clock = FakeClock(start_ns=START)
    gen = NonceGenerator(clock)
    first = gen.next()
    clock.set_wall_ns(START - 3_600_000_000_000)  # an hour back
    second = gen.next()
    third = gen.next()
    assert first < second < third
    assert second == first + 1
    # Once the clock passes the last nonce again, nonces follow the clock.
    clock.set_wall_ns(START + 10_000_000_000)
    assert gen.next() == START + 10_000_000_000


def test_many_calls_with_an_erratic_clock_never_repeat_or_go_back() -> None:
    clock = FakeClock(start_ns=START)
    store = Store()
    gen = NonceGenerator(clock, persist=store.persist, reserve=1_000_000)
    previous = 0
    for i in range(20_000):
        if i % 7 == 0:
            clock.advance(0.0003)
        if i % 1000 == 999:
            clock.set_wall_ns(clock.time_ns() - 5_000_000)
        nonce = gen.next()
        assert nonce > previous
        assert nonce <= store.floor  # every issued nonce is covered by the persisted mark
        previous = nonce


def test_restart_from_the_persisted_mark_with_the_clock_set_back() -> None:
    clock = FakeClock(start_ns=START)
    store = Store()
    gen = NonceGenerator(clock, floor=store.floor, persist=store.persist, reserve=10_000)
    issued = [gen.next() for _ in range(100)]
    # The process dies; the host clock is set back before it restarts.
    clock.set_wall_ns(START - 60_000_000_000)
    restarted = NonceGenerator(clock, floor=store.floor, persist=store.persist, reserve=10_000)
    after = restarted.next()
    assert after > max(issued)
    assert after == store.writes[-2] + 1
    assert restarted.next() == after + 1


def test_without_a_persisted_mark_a_restart_would_go_backwards() -> None:
    # The point of the floor: the same scenario with no floor reuses old nonces.
    clock = FakeClock(start_ns=START)
    gen = NonceGenerator(clock)
    issued = [gen.next() for _ in range(100)]
    clock.set_wall_ns(START - 60_000_000_000)
    assert NonceGenerator(clock).next() < max(issued)


def test_persists_in_blocks_not_per_request() -> None:
    clock = FakeClock(start_ns=START)
    store = Store()
    gen = NonceGenerator(clock, persist=store.persist, reserve=1_000)
    for _ in range(10_000):  # frozen clock: nonces START .. START+9999
        gen.next()
    # One write when the first nonce crossed the empty mark, then one per 1001 nonces.
    assert len(store.writes) == 10
    assert store.writes[0] == START + 1_000
    assert all(b - a == 1_001 for a, b in zip(store.writes, store.writes[1:], strict=False))
    assert gen.mark == store.floor >= gen.last


def test_default_reserve_writes_about_once_per_ten_seconds_of_traffic() -> None:
    clock = FakeClock(start_ns=START)
    store = Store()
    gen = NonceGenerator(clock, persist=store.persist)
    for _ in range(600):  # ten calls a second for a minute
        gen.next()
        clock.advance(0.1)
    assert 5 <= len(store.writes) <= 7


def test_a_failed_persist_issues_nothing() -> None:
    clock = FakeClock(start_ns=START)
    calls: list[int] = []

    def failing(mark: int) -> None:
        calls.append(mark)
        raise StoreError("disk full")

    gen = NonceGenerator(clock, floor=START - 10, persist=failing)
    with pytest.raises(StoreError):
        gen.next()
    assert gen.last == START - 10
    assert gen.mark == START - 10
    assert len(calls) == 1


def test_floor_and_reserve_are_checked() -> None:
    clock = FakeClock(start_ns=START)
    with pytest.raises(StoreError):
        NonceGenerator(clock, floor=-1)
    with pytest.raises(StoreError):
        NonceGenerator(clock, floor=MAX_NONCE)
    with pytest.raises(ValueError, match="reserve"):
        NonceGenerator(clock, reserve=0)


def test_the_u64_space_ends_with_an_error_not_a_wrap() -> None:
    gen = NonceGenerator(FakeClock(start_ns=START), floor=MAX_NONCE - 2)
    assert gen.next() == MAX_NONCE - 1
    assert gen.next() == MAX_NONCE
    assert gen.mark == MAX_NONCE
    with pytest.raises(StoreError):
        gen.next()


def test_the_kraken_layer_imports_nothing_from_the_store() -> None:
    """The REST client takes a ``NonceFloors`` (issue 12 §5): no module of ``bot.kraken``
    imports ``bot.store``, and the store names keys with the kraken layer's ``key_id``."""
    package = Path(bot.kraken.__file__).parent
    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("bot.store")]
    assert offenders == []
    assert store_module.key_id is key_id
    assert key_id("k") == key_id("k") != key_id("other") and "k" not in key_id("k")
