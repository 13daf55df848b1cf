"""Checkpoints off the event loop: ``defer_checkpoints``, ``checkpoint`` from a worker thread,
``run_checkpoints`` on a clock. With them no commit copies the WAL into the file (SQLite's
automatic checkpoint stalls the commit that crosses 1,000 pages for milliseconds)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import StoreError
from bot.store import Store, run_checkpoints
from tests.unit.test_store import make_order


def _wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return 0 if not wal.exists() else (wal.stat().st_size - 32) // (4096 + 24)


def _wal_frames_now(path: Path) -> int:
    """Frames in use in the WAL, as an independent connection's checkpoint reports them."""
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        raw.close()


def _save_many(store: Store, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.save_order(make_order(f"o{i:05d}"), sync=False)


def test_deferred_checkpoints_leave_the_wal_to_grow_until_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store.open(path)
    store.defer_checkpoints()
    _save_many(store, 600)  # ~6 pages a save: far past the 1,000-page automatic mark
    grown = _wal_pages(path)
    assert grown > 1500  # nothing copied it back in a commit
    pages, copied = store.checkpoint()
    assert pages >= grown - 10 and copied == pages  # PASSIVE, nobody reading: all of it
    _save_many(store, 5, start=600)  # the next writer starts the WAL over
    assert _wal_frames_now(path) < 100
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT count(*) FROM orders").fetchone() == (605,)
    finally:
        raw.close()
    store.close()


def test_by_default_sqlite_checkpoints_in_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store.open(path)
    _save_many(store, 600)
    assert _wal_pages(path) < 1100  # reset by an automatic checkpoint along the way
    store.close()


def test_saves_go_on_while_a_thread_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store.open(path)
    store.defer_checkpoints()
    _save_many(store, 300)
    errors: list[BaseException] = []
    stop = threading.Event()

    def checkpoints() -> None:
        try:
            while not stop.is_set():
                store.checkpoint()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=checkpoints)
    worker.start()
    try:
        _save_many(store, 400, start=300)  # never SQLITE_BUSY: WAL writers and a checkpointer
        assert store.get_order("o00650") is not None
    finally:
        stop.set()
        worker.join(10)
    assert not errors
    store.checkpoint()
    store.close()
    reopened = Store.open(path)
    assert reopened.get_order("o00699") is not None
    reopened.close()


def test_a_failed_checkpoint_is_a_store_error(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "bot.db")
    store.close()
    store.path = tmp_path / "missing" / "bot.db"  # a directory that does not exist
    with pytest.raises(StoreError, match="checkpoint"):
        store.checkpoint()


class _CountingStore(Store):
    """Records each checkpoint, its thread, and tells the loop (``wait_for``)."""

    results: list[tuple[int, int]]
    threads: list[str]
    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event

    def checkpoint(self) -> tuple[int, int]:
        self.threads.append(threading.current_thread().name)
        result = super().checkpoint()
        self.results.append(result)
        self.loop.call_soon_threadsafe(self.changed.set)
        return result

    async def wait_for(self, n: int) -> None:
        async with asyncio.timeout(10):
            while len(self.results) < n:
                self.changed.clear()
                await self.changed.wait()


async def test_run_checkpoints_defers_then_checkpoints_on_its_clock(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = _CountingStore.open(path)
    assert isinstance(store, _CountingStore)
    store.results, store.threads, store.changed = [], [], asyncio.Event()
    store.loop = asyncio.get_running_loop()
    clock = FakeClock()
    task = asyncio.create_task(run_checkpoints(store, clock, every_s=5.0))
    await asyncio.sleep(0)
    _save_many(store, 600)
    assert _wal_pages(path) > 1500  # deferred: no commit checkpointed
    assert store.results == []
    clock.advance(5.0)
    await store.wait_for(1)  # the checkpoint runs in a worker thread
    ((pages, copied),) = store.results
    assert pages > 1500 and copied == pages
    assert store.threads != [threading.current_thread().name]  # not on the loop's thread
    _save_many(store, 3, start=600)  # a writer after a full checkpoint starts the WAL over
    async with asyncio.timeout(10):
        while len(store.results) < 2:  # the task sleeps again once the thread is back
            clock.advance(5.0)
            await asyncio.sleep(0.01)
    assert store.results[1][0] < 100  # only what came since
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()
