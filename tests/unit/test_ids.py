"""``bot.execution.ids.IdBlocks``: ids from durably recorded blocks, never issued twice."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.core.errors import StoreError
from bot.execution.ids import IdBlocks
from bot.execution.orders import is_valid_cl_ord_id
from bot.store import Store


def test_ids_are_uuid4_short_form_and_their_block_is_recorded_first(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    ids = IdBlocks(store, FakeClock(), block_size=4, random_bytes=random.Random(1).randbytes)
    first = ids.next("mm")
    assert is_valid_cl_ord_id(first) and uuid.UUID(hex=first).version == 4
    # Durable before it was handed out: another connection to the file sees the block.
    other = Store.open(path)
    assert other.id_blocks() == {first[:24]: "mm"}
    other.close()
    issued = [first] + [ids.next("mm") for _ in range(9)]
    assert len(set(issued)) == 10
    counters = [x[24:] for x in issued[:5]]
    assert counters == ["00000000", "00000001", "00000002", "00000003", "00000000"]
    assert ids.blocks_opened == 3  # 4 + 4 + 2
    assert {ids.owner(x) for x in issued} == {"mm"}
    store.close()


def test_a_restart_opens_new_blocks_and_still_knows_the_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    before = IdBlocks(store, FakeClock(), random_bytes=random.Random(5).randbytes)
    old = [before.next("grid") for _ in range(3)] + [before.next("")]
    store.close()
    store = Store.open(path)
    # The same random source again: a restart must still never reuse a block.
    after = IdBlocks(store, FakeClock(), random_bytes=random.Random(5).randbytes)
    with pytest.raises(StoreError):
        after.next("grid")  # that prefix is recorded: refused, and no id was issued
    after = IdBlocks(store, FakeClock(), random_bytes=random.Random(6).randbytes)
    new = after.next("grid")
    assert new[:24] != old[0][:24]
    assert after.owner(old[0]) == "grid" and after.owner(old[3]) == ""
    assert after.owner(new) == "grid"
    assert after.owner(uuid.uuid4().hex) is None  # someone else's
    assert after.owner("mm-1") is None and after.owner(None) is None
    store.close()


def test_prepare_records_a_block_per_strategy_up_front(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    ids = IdBlocks(store, FakeClock())
    ids.prepare(["a", "b", "a"])
    assert ids.blocks_opened == 2
    ids.next("a")
    ids.next("b")
    assert ids.blocks_opened == 2  # no write on the order path
    assert sorted(store.id_blocks().values()) == ["a", "b"]
    store.close()


def test_block_size_is_checked(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    for bad in (0, 16**8 + 1):
        with pytest.raises(ValueError):
            IdBlocks(store, FakeClock(), block_size=bad)
    store.close()


class _Blocks:
    """An ``IdBlockStore`` in memory that can be told to fail, and says when each prefix
    was recorded (the number of writes before it)."""

    def __init__(self) -> None:
        self.blocks: dict[str, str] = {}
        self.failing = False

    def add_id_block(self, prefix: str, strategy: str, created_ns: int) -> None:
        if self.failing:
            raise StoreError("disk full")
        if prefix in self.blocks:
            raise StoreError(f"{prefix} is recorded already")
        self.blocks[prefix] = strategy

    def id_blocks(self) -> dict[str, str]:
        return dict(self.blocks)


def test_a_spare_block_takes_over_with_no_write_and_is_replaced_later() -> None:
    blocks, queued = _Blocks(), []
    ids = IdBlocks(blocks, FakeClock(), block_size=4, random_bytes=random.Random(2).randbytes)
    ids.prepare(["mm"], later=queued.append)
    assert ids.blocks_opened == 2 and ids.spares == {"mm"} and not queued
    first = ids.next("mm")
    (spare,) = (p for p in blocks.blocks if p != first[:24])
    for _ in range(3):
        ids.next("mm")
    fifth = ids.next("mm")  # the block ran out: the spare, on record since start
    assert fifth == f"{spare}00000000" and ids.blocks_opened == 2
    assert ids.spares == frozenset() and len(queued) == 1
    queued.pop()()  # after the order's step: the next spare is recorded
    assert ids.blocks_opened == 3 and ids.spares == {"mm"}
    assert len(blocks.blocks) == 3 and set(blocks.blocks.values()) == {"mm"}
    assert ids.fresh(fifth) and ids.owner(fifth) == "mm"


def test_without_its_spare_a_block_is_recorded_when_needed_and_a_failed_spare_is_logged() -> None:
    blocks, queued = _Blocks(), []
    ids = IdBlocks(blocks, FakeClock(), block_size=2, random_bytes=random.Random(3).randbytes)
    ids.prepare(["mm"], later=queued.append)
    issued = [ids.next("mm") for _ in range(4)]  # block, spare: the spare's refill queued
    assert ids.blocks_opened == 2 and len(queued) == 1
    blocks.failing = True
    with capture_logs() as events:
        queued.pop()()  # the refill fails: logged, no spare, nothing issued from it
    assert ids.spares == frozenset() and ids.blocks_opened == 2
    assert [(e["event"], e["error"], e["strategy"]) for e in events] == [
        ("id_spare_not_recorded", "disk full", "mm")
    ]
    with pytest.raises(StoreError):
        ids.next("mm")  # none on record and the store still failing: no id, as ever
    blocks.failing = False
    issued.append(ids.next("mm"))  # recorded now, on the path, as without spares
    assert ids.blocks_opened == 3 and len(queued) == 1  # a take queues its refill
    refill = queued.pop()
    refill()
    refill()  # a second refill of a strategy with a spare records none
    assert ids.blocks_opened == 4 and ids.spares == {"mm"}
    assert len(set(issued)) == len(issued) and all(ids.fresh(x) for x in issued)


def test_without_later_there_are_no_spares() -> None:
    blocks = _Blocks()
    ids = IdBlocks(blocks, FakeClock(), block_size=2, random_bytes=random.Random(4).randbytes)
    ids.prepare(["a"])
    assert ids.spares == frozenset() and ids.blocks_opened == 1
    for _ in range(3):
        ids.next("a")
    assert ids.blocks_opened == 2


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("next"), st.sampled_from(["a", "b", ""])),
        st.tuples(st.just("run"), st.integers(0, 3)),
        st.tuples(st.just("drop"), st.integers(0, 3)),
        st.tuples(st.just("fail"), st.booleans()),
    ),
    max_size=80,
)


@given(ops=_OPS, size=st.integers(1, 3))
@settings(max_examples=300, deadline=None)
def test_every_id_is_issued_once_from_a_block_on_record_before_it(
    ops: list[tuple[str, object]], size: int
) -> None:
    blocks, queued = _Blocks(), []
    ids = IdBlocks(blocks, FakeClock(), block_size=size, random_bytes=random.Random(9).randbytes)
    ids.prepare(["a", "b"], later=queued.append)
    issued: list[str] = []
    for op, arg in ops:
        if op == "next":
            recorded = dict(blocks.blocks)  # before the call: a write in it is on the path
            try:
                cid = ids.next(str(arg))
            except StoreError:
                assert blocks.failing
                continue
            assert blocks.blocks.get(cid[:24]) == arg  # on record when handed out
            if cid[:24] in recorded:
                assert recorded[cid[:24]] == arg
            issued.append(cid)
        elif op == "run" and queued:
            queued.pop(int(str(arg)) % len(queued))()
        elif op == "drop" and queued:
            queued.pop(int(str(arg)) % len(queued))
        elif op == "fail":
            blocks.failing = bool(arg)
    assert len(set(issued)) == len(issued)
    assert all(ids.fresh(x) and ids.owner(x) is not None for x in issued)
    # A strategy's spare is never a block it has issued from.
    assert not {x[:24] for x in issued} & {ids._spares[s] for s in ids.spares}
