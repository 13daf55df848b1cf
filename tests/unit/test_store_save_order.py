"""``Store.save_order`` on real files: its history rows, what each ``sync`` promises, failures.

A save is one autocommit statement whose history row comes from the store's TEMP triggers;
an unsynced save runs on a second connection at ``synchronous=NORMAL``. These tests hold
that to the contract: one history row per call with the right ``prev_state``, visible to
any reader when it returns, fsynced only when asked, all or nothing, and gone from
nowhere after a crash of the process or a close.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.core.errors import StoreError
from bot.execution.orders import OrderState, transition
from bot.store import Store
from tests.unit.test_store import REPO, T0, make_fill, make_order

S = OrderState


def _raw_rows(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The orders and history rows as an independent connection sees them."""
    raw = sqlite3.connect(path)
    try:
        orders = raw.execute("SELECT cl_ord_id, state, qty FROM orders ORDER BY cl_ord_id")
        events = raw.execute(
            "SELECT cl_ord_id, prev_state, state FROM order_events ORDER BY seq"
        ).fetchall()
        return orders.fetchall(), events
    finally:
        raw.close()


def test_history_across_synced_and_unsynced_saves(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "bot.db")
    a = make_order("a")
    b = make_order("b", qty=7)
    steps = [
        (a, False),
        (b, True),
        (a := transition(a, S.NEW, now_ns=T0 + 1, order_id="OA"), True),
        (b := transition(b, S.NEW, now_ns=T0 + 2, order_id="OB"), False),
        (a := transition(a, S.PARTIALLY_FILLED, now_ns=T0 + 3, filled_qty=40_000), False),
        (a := transition(a, S.PARTIALLY_FILLED, now_ns=T0 + 4, filled_qty=60_000), False),
        (b := transition(b, S.CANCELED, now_ns=T0 + 5, reason="user"), True),
        (a := transition(a, S.FILLED, now_ns=T0 + 6, filled_qty=100_000), True),
    ]
    for order, sync in steps:
        s.save_order(order, sync=sync)
        assert s.get_order(order.cl_ord_id) == order  # read at once, whichever connection
    history = {
        cid: [(e.prev_state, e.state, e.ts_ns, e.filled_qty, e.reason) for e in s.order_events(cid)]
        for cid in ("a", "b")
    }
    assert history == {
        "a": [
            (None, S.PENDING_NEW, T0, 0, ""),
            (S.PENDING_NEW, S.NEW, T0 + 1, 0, ""),
            (S.NEW, S.PARTIALLY_FILLED, T0 + 3, 40_000, ""),
            (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, T0 + 4, 60_000, ""),
            (S.PARTIALLY_FILLED, S.FILLED, T0 + 6, 100_000, ""),
        ],
        "b": [
            (None, S.PENDING_NEW, T0, 0, ""),
            (S.PENDING_NEW, S.NEW, T0 + 2, 0, ""),
            (S.NEW, S.CANCELED, T0 + 5, 0, "user"),
        ],
    }
    seqs = [e.seq for cid in ("a", "b") for e in s.order_events(cid)]
    assert len(set(seqs)) == len(steps)  # one row per call, none shared
    s.save_order(a)  # saving the same order again is a change too: one more row
    assert [(e.prev_state, e.state) for e in s.order_events("a")][-1] == (S.FILLED, S.FILLED)
    s.close()


@pytest.mark.parametrize("sync", [False, True])
def test_a_save_is_visible_to_an_independent_connection_when_it_returns(
    tmp_path: Path, sync: bool
) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    watcher = sqlite3.connect(path)  # opened before the write, as a reader already around
    try:
        o = make_order()
        s.save_order(o, sync=sync)
        row = watcher.execute("SELECT state, qty, price FROM orders WHERE cl_ord_id = 'o-1'")
        assert row.fetchall() == [("pending_new", "0.00100000", "29430.2")]
        o2 = transition(o, S.NEW, now_ns=T0 + 1, order_id="OU22CG-KLAF2-FWUDD7")
        s.save_order(o2, sync=sync)
        events = watcher.execute("SELECT prev_state, state FROM order_events ORDER BY seq")
        assert events.fetchall() == [(None, "pending_new"), ("pending_new", "new")]
        assert _raw_rows(path)[0] == [("o-1", "new", "0.00100000")]  # a fresh one too
    finally:
        watcher.close()
        s.close()


def test_a_synced_save_after_unsynced_ones_keeps_them_all(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    for i in range(5):
        s.save_order(make_order(f"u-{i}"), sync=False)
    s.record_fill(make_fill())  # another synced writer in between
    s.save_order(make_order("synced"), sync=True)
    s.save_order(transition(make_order("u-0"), S.NEW, now_ns=T0 + 1), sync=True)
    orders, events = _raw_rows(path)
    assert [cid for cid, _, _ in orders] == ["synced", "u-0", "u-1", "u-2", "u-3", "u-4"]
    assert events[-1] == ("u-0", "pending_new", "new") and len(events) == 7
    s.close()


_STRACE_WRITER = textwrap.dedent(
    """
    import os, sys
    from tests.unit.test_store import make_order
    from bot.store import Store

    store = Store.open(sys.argv[1])
    os.write(2, b"<<unsynced>>")
    for i in range(3):
        store.save_order(make_order(f"u-{i}"), sync=False)
    os.write(2, b"<<synced>>")
    store.save_order(make_order("s-0"), sync=True)
    os.write(2, b"<<end>>")
    os._exit(0)
    """
)


def _syncs(trace: str) -> list[str]:
    return re.findall(r"\b(?:fsync|fdatasync)\(\d+<([^>]*)>\)", trace)


def test_only_a_synced_save_fsyncs_the_wal(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("needs strace")
    path, out = tmp_path / "bot.db", tmp_path / "trace"
    proc = subprocess.run(
        [strace, "-f", "-y", "-e", "trace=fsync,fdatasync,write", "-o", str(out),
         sys.executable, "-c", _STRACE_WRITER, str(path)],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    if proc.returncode != 0 or not out.exists():
        pytest.skip(f"strace cannot trace here: {proc.stderr[-300:]}")
    trace = out.read_text()
    _, unsynced_and_rest = trace.split("<<unsynced>>", 1)
    unsynced, synced_and_rest = unsynced_and_rest.split("<<synced>>", 1)
    synced, _ = synced_and_rest.split("<<end>>", 1)
    assert _syncs(unsynced) == []  # three saves, committed, not one fsync
    wal = f"{path}-wal"
    assert wal in _syncs(synced)  # the WAL, with the unsynced frames before it, on disk
    _, events = _raw_rows(path)  # os._exit: never closed, yet all four are there
    assert [cid for cid, _, _ in events] == ["u-0", "u-1", "u-2", "s-0"]


@pytest.mark.parametrize("sync", [False, True])
def test_a_save_that_fails_midway_leaves_no_partial_rows(tmp_path: Path, sync: bool) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    o = make_order()
    s.save_order(o, sync=sync)
    # Another writer adds a rule that refuses some history rows: the orders upsert has
    # already run when the history insert fails, inside the same statement.
    raw = sqlite3.connect(path)
    raw.execute(
        "CREATE TRIGGER refuse_history BEFORE INSERT ON order_events "
        "WHEN NEW.reason = 'refuse' BEGIN SELECT RAISE(ABORT, 'history refused'); END"
    )
    raw.commit()
    raw.close()
    refused = transition(o, S.NEW, now_ns=T0 + 1, order_id="OX", reason="refuse")
    with pytest.raises(StoreError, match=r"save order o-1: history refused"):
        s.save_order(refused, sync=sync)
    with pytest.raises(StoreError, match=r"save order o-2: history refused"):
        s.save_order(make_order("o-2", reason="refuse"), sync=sync)
    assert _raw_rows(path) == (
        [("o-1", "pending_new", "0.00100000")],
        [("o-1", None, "pending_new")],
    )
    assert s.get_order("o-1") == o and s.get_order("o-2") is None
    # The store goes on: the next save commits, and its history follows the last saved row.
    s.save_order(dataclasses.replace(refused, reason=""), sync=sync)
    assert [(e.prev_state, e.state) for e in s.order_events("o-1")] == [
        (None, S.PENDING_NEW),
        (S.PENDING_NEW, S.NEW),
    ]
    s.close()


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbol": None}, "NOT NULL constraint failed: orders.symbol"),
        ({"updated_ns": 2**64}, "too large"),  # past SQLite's 64 bits, refused before writing
    ],
)
def test_a_refused_order_raises_store_error_and_writes_nothing(
    tmp_path: Path, sync: bool, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    with pytest.raises(StoreError, match=f"save order o-1: .*{message}"):
        s.save_order(make_order("o-1", **changes), sync=sync)
    assert _raw_rows(path) == ([], [])
    s.save_order(make_order(), sync=sync)
    assert len(s.order_events("o-1")) == 1
    s.close()


def test_a_save_never_joins_a_transaction_left_open(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "bot.db")
    s._conn.execute("BEGIN")  # as if a failure had left the connection mid-transaction
    with pytest.raises(StoreError, match="save order o-1: a transaction is already open"):
        s.save_order(make_order())
    s._conn.execute("ROLLBACK")
    s.save_order(make_order())
    assert s.get_order("o-1") == make_order()
    s.close()


@pytest.mark.parametrize("sync", [False, True])
def test_saving_to_a_closed_store_raises_store_error(tmp_path: Path, sync: bool) -> None:
    s = Store.open(tmp_path / "bot.db")
    s.close()
    with pytest.raises(StoreError, match="save order o-1: Cannot operate on a closed database"):
        s.save_order(make_order(), sync=sync)


def test_close_closes_both_connections_and_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    o = make_order("u")
    s.save_order(o, sync=False)
    s.save_order(make_order("s"), sync=True)
    s.save_order(transition(o, S.NEW, now_ns=T0 + 1, order_id="OU"), sync=False)
    assert Path(f"{path}-wal").exists()
    s.close()
    # The WAL is removed only by the last connection to close, after it checkpoints: so
    # none is left open, and the main file holds everything on its own.
    assert not Path(f"{path}-wal").exists()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone() == (
        0,
    )  # the history triggers are the connections', never the file's
    raw.close()
    assert _raw_rows(path) == (
        [("s", "pending_new", "0.00100000"), ("u", "new", "0.00100000")],
        [("u", None, "pending_new"), ("s", None, "pending_new"), ("u", "pending_new", "new")],
    )
    again = Store.open(path)
    assert [x.cl_ord_id for x in again.load_orders()] == ["s", "u"]
    again.save_order(make_order("t"), sync=False)  # the reopened store records history too
    assert [e.state for e in again.order_events("t")] == [S.PENDING_NEW]
    again.close()


_CRASHER = textwrap.dedent(
    """
    import os, sys
    from decimal import Decimal
    from bot.execution.orders import OrderState, transition
    from bot.store import Store
    from tests.unit.test_store import T0, make_order

    store = Store.open(sys.argv[1])
    for i in range(50):
        order = make_order(f"o-{i}", qty=100_000 + i)
        store.save_order(order, sync=False)
        if i % 2:
            order = transition(order, OrderState.NEW, now_ns=T0 + i, order_id=f"O{i}")
            store.save_order(order, sync=False)
    print("saved", flush=True)
    os._exit(1)  # no close, no checkpoint: what is kept is what the WAL holds
    """
)


def test_unsynced_saves_survive_a_crash_of_the_process(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(path)],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (1, "saved\n"), proc.stderr
    assert Path(f"{path}-wal").exists()
    orders, events = _raw_rows(path)
    assert len(orders) == 50 and len(events) == 75
    s = Store.open(path)
    for i in range(50):
        order = s.get_order(f"o-{i}")
        assert order is not None and order.qty == 100_000 + i
        expected = [(None, S.PENDING_NEW)] + ([(S.PENDING_NEW, S.NEW)] if i % 2 else [])
        assert [(e.prev_state, e.state) for e in s.order_events(f"o-{i}")] == expected
    s.close()
