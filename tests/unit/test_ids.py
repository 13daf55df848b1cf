"""``bot.execution.ids.IdBlocks``: ids from durably recorded blocks, never issued twice."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

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
