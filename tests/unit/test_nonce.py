"""Nonces strictly increase: frozen clock, clock set back, restarts from the persisted mark;
the mark topped up through ``later``, off the request's path, in any interleaving."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import bot.kraken
from bot import store as store_module
from bot.core.clock import FakeClock
from bot.core.errors import StoreError
from bot.kraken.nonce import DEFAULT_RESERVE_NS, KEEP_AHEAD_EVERY_S, NonceGenerator, key_id
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


# --- the mark topped up off the request's path (``later``) -----------------------------------


class Floor:
    """A persisted mark that records where each write ran: inside ``next()`` or inside a
    callback taken from the ``later`` queue (``run``), and fails on demand."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, str]] = []
        self.failing: BaseException | None = None
        self._where = "next"

    @property
    def marks(self) -> list[int]:
        return [mark for mark, _ in self.writes]

    def in_next(self) -> int:
        return sum(1 for _, where in self.writes if where == "next")

    def in_top_up(self) -> int:
        return sum(1 for _, where in self.writes if where == "top-up")

    def persist(self, mark: int) -> None:
        if self.failing is not None:
            raise self.failing
        self.writes.append((mark, self._where))

    def run(self, queue: list[Callable[[], object]]) -> None:
        """Run every queued callback, oldest first, as the event loop would."""
        self._where = "top-up"
        try:
            while queue:
                queue.pop(0)()
        finally:
            self._where = "next"


def test_past_half_the_reserve_one_top_up_is_scheduled_and_keeps_next_from_writing() -> None:
    clock, floor = FakeClock(start_ns=START), Floor()
    queue: list[Callable[[], object]] = []
    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000, later=queue.append)
    assert gen.next() == START  # above the empty mark: persisted in next(), as before
    assert floor.writes == [(START + 1_000, "next")]
    while gen.last < START + 500:  # up to half the reserve: nothing scheduled
        gen.next()
    assert queue == []
    assert gen.next() == START + 501  # past half: one top-up
    assert len(queue) == 1
    for _ in range(199):  # while it is pending, no second one
        gen.next()
    assert gen.last == START + 700 and len(queue) == 1
    clock.set_wall_ns(START + 750)
    floor.run(queue)
    # A reserve ahead of the clock, persisted in the callback; the mark follows the write.
    assert floor.writes == [(START + 1_000, "next"), (START + 1_750, "top-up")]
    assert gen.mark == START + 1_750
    # Every nonce up to the new mark issues with no write in next() (the top-up scheduled
    # on the way is left in the queue, never run).
    issued = [gen.next() for _ in range(1_001)]
    assert issued == list(range(START + 750, START + 1_751))
    assert floor.in_next() == 1 and floor.in_top_up() == 1
    assert len(queue) == 1
    # Past it, with the top-up still unrun, next() falls back to persisting first.
    assert gen.next() == START + 1_751
    assert floor.writes[-1] == (START + 2_751, "next")


def test_a_top_up_that_would_not_raise_the_mark_writes_nothing() -> None:
    # A top-up aims a reserve past the last nonce, so it is above the mark except where the
    # u64 space ends: there the mark is already the end and nothing is written.
    floor = Floor()
    queue: list[Callable[[], object]] = []
    clock = FakeClock(start_ns=START)
    gen = NonceGenerator(clock, MAX_NONCE - 10, floor.persist, 8, later=queue.append)
    gen.next()  # MAX_NONCE - 9; mark MAX_NONCE - 1
    while not queue:
        gen.next()
    assert gen.last == MAX_NONCE - 4
    while gen.last < MAX_NONCE:  # the last one persists the end in next()
        gen.next()
    assert floor.writes == [(MAX_NONCE - 1, "next"), (MAX_NONCE, "next")]
    floor.run(queue)
    assert floor.in_top_up() == 0 and gen.mark == MAX_NONCE


def _top_up_pending() -> tuple[FakeClock, Floor, NonceGenerator, list[Callable[[], object]]]:
    """A generator (reserve 1,000) that issued START, then START + 600 past half the
    reserve: one top-up waiting in the returned queue (``Floor.run`` runs it)."""
    clock, floor = FakeClock(start_ns=START), Floor()
    queue: list[Callable[[], object]] = []
    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000, later=queue.append)
    gen.next()
    clock.set_wall_ns(START + 600)
    gen.next()
    return clock, floor, gen, queue


def test_a_failed_top_up_leaves_the_mark_and_next_still_persists_first() -> None:
    clock, floor, gen, queue = _top_up_pending()
    assert len(queue) == 1
    floor.failing = StoreError("store bot.db: save nonce floor: disk I/O error")
    with capture_logs() as logs:
        floor.run(queue)
    assert logs == [
        {
            "event": "nonce_top_up_failed",
            "log_level": "warning",
            "component": "nonce",
            "mark": START + 1_000,
            "wanted": START + 1_601,  # max(now, last + 1) + reserve
            "error": "store bot.db: save nonce floor: disk I/O error",
        }
    ]
    assert gen.mark == START + 1_000
    assert floor.marks == [START + 1_000]
    # No longer pending: the next nonce schedules a new top-up.
    gen.next()
    assert len(queue) == 1
    queue.clear()  # that one is lost (say the loop closed)
    # Above the mark, next() persists before it issues; while the store fails, nothing is.
    clock.set_wall_ns(START + 1_001)
    with pytest.raises(StoreError):
        gen.next()
    assert gen.last == START + 601 and gen.mark == START + 1_000
    floor.failing = None
    assert gen.next() == START + 1_001
    assert floor.writes[-1] == (START + 2_001, "next")


def test_a_top_up_that_fails_for_a_bug_is_raised_and_unblocks_the_next() -> None:
    # Only StoreError is a store's failure to write; anything else reaches whatever ran
    # the callback (the event loop logs it), the mark unchanged and the flag cleared.
    _, floor, gen, queue = _top_up_pending()
    floor.failing = TypeError("a bug")
    with pytest.raises(TypeError):
        floor.run(queue)
    assert gen.mark == START + 1_000
    gen.next()
    assert len(queue) == 1


def test_a_later_that_raises_issues_nothing() -> None:
    clock, floor = FakeClock(start_ns=START), Floor()
    refused: list[int] = []

    def closed_loop(callback: Callable[[], object]) -> None:
        refused.append(1)
        raise RuntimeError("Event loop is closed")

    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000, later=closed_loop)
    gen.next()
    clock.set_wall_ns(START + 600)
    with pytest.raises(RuntimeError):
        gen.next()
    assert gen.last == START
    with pytest.raises(RuntimeError):  # not left pending: it is tried again
        gen.next()
    assert len(refused) == 2


def test_a_later_that_runs_the_top_up_at_once_still_tops_up_each_time() -> None:
    # Not what a loop does, but nothing may depend on the top-up running after next():
    # the flag is set before later is called, so one run at once does not stay pending.
    clock, floor = FakeClock(start_ns=START), Floor()
    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000, later=lambda run: run())
    gen.next()
    for step in (600, 1_200, 1_800):
        clock.set_wall_ns(START + step)
        assert gen.next() == START + step
    assert floor.marks == [START + 1_000, START + 1_600, START + 2_200, START + 2_800]
    assert gen.mark == START + 2_800


def test_later_without_persist_or_at_the_end_of_the_space_schedules_nothing() -> None:
    queue: list[Callable[[], object]] = []
    clock = FakeClock(start_ns=START)
    gen = NonceGenerator(clock, reserve=10, later=queue.append)
    for _ in range(100):
        gen.next()
    assert queue == []
    floor = Floor()
    end = NonceGenerator(clock, MAX_NONCE - 3, floor.persist, 2, later=queue.append)
    assert [end.next(), end.next(), end.next()] == [MAX_NONCE - 2, MAX_NONCE - 1, MAX_NONCE]
    assert floor.marks == [MAX_NONCE] and queue == []
    with pytest.raises(StoreError):
        end.next()


Step = (
    st.tuples(st.just("next"), st.integers(1, 30))
    | st.tuples(st.just("clock"), st.integers(-300, 300))
    | st.tuples(st.just("run"), st.just(0))
    | st.tuples(st.just("drop"), st.just(0))
    | st.tuples(st.just("fail"), st.booleans())
    | st.tuples(st.just("keep"), st.just(0))
)


@settings(max_examples=300, deadline=None)
@given(reserve=st.integers(1, 200), steps=st.lists(Step, max_size=80))
def test_any_interleaving_keeps_every_nonce_under_a_persisted_mark(
    reserve: int, steps: list[tuple[str, int]]
) -> None:
    clock = FakeClock(start_ns=START)
    durable = 0  # what the store holds: the largest mark whose persist returned
    failing = False

    def persist(mark: int) -> None:
        nonlocal durable
        if failing:
            raise StoreError("disk full")
        durable = max(durable, mark)

    queue: list[Callable[[], object]] = []
    gen = NonceGenerator(clock, persist=persist, reserve=reserve, later=queue.append)
    issued: list[int] = []
    for action, arg in steps:
        if action == "next":
            for _ in range(arg):
                try:
                    issued.append(gen.next())
                except StoreError:
                    assert failing
        elif action == "clock":
            clock.set_wall_ns(max(0, clock.time_ns() + arg))
        elif action == "run" and queue:
            with capture_logs():
                queue.pop(0)()
        elif action == "drop" and queue:
            queue.pop(0)  # never runs: the generator must not depend on it
        elif action == "fail":
            failing = bool(arg)
        elif action == "keep":
            with capture_logs():
                gen.keep_ahead()
        assert len(queue) <= 1  # never two top-ups scheduled at once
        assert gen.mark == durable  # the mark moves only after its write returned
        assert not issued or issued[-1] <= durable
    assert issued == sorted(set(issued))
    assert all(n <= durable for n in issued)
    # A new process starts from what the store holds, with the clock set back.
    clock.set_wall_ns(START - 10**12)
    assert NonceGenerator(clock, floor=durable).next() > max(issued, default=0)


# --- the mark kept ahead through a quiet spell (``keep_ahead``) ------------------------------


def test_keep_ahead_writes_only_past_half_the_reserve_and_not_while_a_top_up_waits() -> None:
    clock, floor, queue = FakeClock(start_ns=START), Floor(), list[Callable[[], object]]()
    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000, later=queue.append)
    gen.next()  # the first mark, START + 1_000, written inside next()
    clock.set_wall_ns(START + 500)  # not past half the reserve: nothing to do
    assert gen.keep_ahead() is False and floor.marks == [START + 1_000]
    clock.set_wall_ns(START + 501)  # past it, with no request: written now, a reserve ahead
    floor._where = "keep"
    assert gen.keep_ahead() is True
    assert floor.writes[-1] == (START + 1_501, "keep") and gen.mark == START + 1_501
    assert gen.keep_ahead() is False  # ahead again
    clock.set_wall_ns(START + 1_100)
    gen.next()  # past half: a top-up scheduled; keep_ahead leaves it to run
    assert len(queue) == 1 and gen.keep_ahead() is False and gen.mark == START + 1_501
    floor.run(queue)
    assert gen.mark == START + 2_101 and not queue  # a reserve past last + 1


def test_keep_ahead_that_fails_is_logged_and_leaves_the_mark() -> None:
    clock, floor, queue = FakeClock(start_ns=START), Floor(), list[Callable[[], object]]()
    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000, later=queue.append)
    gen.next()
    clock.set_wall_ns(START + 900)
    floor.failing = StoreError("disk full")
    with capture_logs() as events:
        assert gen.keep_ahead() is False
    assert gen.mark == START + 1_000
    assert [e["event"] for e in events] == ["nonce_top_up_failed"]
    floor.failing = None
    assert gen.keep_ahead() is True and gen.mark == START + 1_900  # tried again next time


def test_without_later_keep_ahead_does_nothing() -> None:
    clock, floor = FakeClock(start_ns=START), Floor()
    gen = NonceGenerator(clock, persist=floor.persist, reserve=1_000)
    gen.next()
    clock.set_wall_ns(START + 999)
    assert gen.keep_ahead() is False and floor.marks == [START + 1_000]


def test_a_daemon_keeping_the_mark_ahead_never_makes_a_rare_request_wait() -> None:
    # Requests every 40 s (longer than the default reserve), ``keep_ahead`` every 2.5 s as
    # the daemon calls it: after the first request, no mark is written inside ``next()``.
    clock, floor, queue = FakeClock(start_ns=START), Floor(), list[Callable[[], object]]()
    gen = NonceGenerator(clock, persist=floor.persist, later=queue.append)
    gen.next()
    floor._where = "keep"
    for tick in range(1, 16 * 20 + 1):  # 20 requests, 16 keeps apart
        clock.advance(KEEP_AHEAD_EVERY_S)
        gen.keep_ahead()
        assert gen.mark - clock.time_ns() >= DEFAULT_RESERVE_NS // 4
        if tick % 16 == 0:
            floor._where = "next"
            gen.next()
            floor._where = "keep"
            floor.run(queue)
            floor._where = "keep"
    assert floor.in_next() == 1
