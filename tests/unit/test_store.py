"""The SQLite store, on real database files: round trips, durability, bad files, migrations."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.errors import StoreError
from bot.execution.orders import Fill, Order, OrderState, new_order, transition
from bot.kraken.instruments import Instrument
from bot.store import LATEST_VERSION, Store, key_id

REPO = Path(__file__).resolve().parents[2]
BTC_USD = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
T0 = 1_700_000_000_000_000_000
KEY = key_id("an-api-key-that-is-never-stored")


def make_order(cid: str = "o-1", **changes: object) -> Order:
    o = new_order(
        cl_ord_id=cid,
        instrument=BTC_USD,
        side="buy",
        order_type="limit",
        qty=100_000,
        price=294_302,
        strategy="grid",
        now_ns=T0,
    )
    return dataclasses.replace(o, **changes)  # type: ignore[arg-type]


def make_fill(exec_id: str = "TKH2SE-M7IF5-CFI7LT", ts_ns: int = T0, **changes: object) -> Fill:
    f = Fill(
        exec_id=exec_id,
        trade_id="365573",
        cl_ord_id="o-1",
        order_id="OU22CG-KLAF2-FWUDD7",
        symbol="BTC/USD",
        side="buy",
        price=294_302,
        qty=25_000_000,
        price_precision=1,
        qty_precision=8,
        cost=Decimal("7357.55"),
        fee=Decimal("1.91296"),
        fee_asset="USD",
        liquidity="m",
        ts_ns=ts_ns,
    )
    return dataclasses.replace(f, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "state" / "bot.db")
    yield s
    s.close()


# -- round trips -------------------------------------------------------------------------


def test_open_creates_the_directory_and_a_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "bot.db"
    s = Store.open(path)
    assert path.is_file() and s.schema_version == LATEST_VERSION
    s.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_order_round_trip_and_history(store: Store) -> None:
    o = make_order()
    store.save_order(o)
    assert store.get_order("o-1") == o
    o2 = transition(o, OrderState.NEW, now_ns=T0 + 1, order_id="OU22CG-KLAF2-FWUDD7")
    o3 = transition(
        o2,
        OrderState.PARTIALLY_FILLED,
        now_ns=T0 + 2,
        filled_qty=40_000,
        cum_cost=Decimal("11.77208"),
        avg_price=Decimal("29430.2000000001"),
        cancel_pending=True,
        reason="partial",
    )
    store.save_order(o2)
    store.save_order(o3)
    assert store.get_order("o-1") == o3
    assert store.get_order("missing") is None
    history = store.order_events("o-1")
    assert [(e.prev_state, e.state, e.ts_ns, e.filled_qty) for e in history] == [
        (None, OrderState.PENDING_NEW, T0, 0),
        (OrderState.PENDING_NEW, OrderState.NEW, T0 + 1, 0),
        (OrderState.NEW, OrderState.PARTIALLY_FILLED, T0 + 2, 40_000),
    ]
    assert history[-1].reason == "partial"
    assert [e.seq for e in history] == sorted(e.seq for e in history)


def test_load_orders_open_only(store: Store) -> None:
    states = list(OrderState)
    for i, state in enumerate(states):
        store.save_order(make_order(f"o-{i}", state=state, created_ns=T0 + i))
    open_ids = {o.cl_ord_id for o in store.load_orders()}
    assert open_ids == {f"o-{i}" for i, s in enumerate(states) if make_order(state=s).is_open}
    assert [o.state for o in store.load_orders(open_only=False)] == states


def test_market_order_without_price_and_odd_precisions(store: Store) -> None:
    o = make_order(price=None, order_type="market", qty=7, qty_precision=0, price_precision=0)
    store.save_order(o)
    assert store.get_order(o.cl_ord_id) == o


_exact = st.fixed_dictionaries(
    {
        "qty": st.integers(min_value=1, max_value=10**30),
        "price": st.one_of(st.none(), st.integers(min_value=-(10**20), max_value=10**30)),
        "price_precision": st.integers(min_value=0, max_value=18),
        "qty_precision": st.integers(min_value=0, max_value=18),
        "cum_cost": st.decimals(allow_nan=False, allow_infinity=False),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(numbers=_exact)
def test_exact_numbers_round_trip(store: Store, numbers: dict[str, object]) -> None:
    o = make_order("exact", **numbers)
    store.save_order(o)
    back = store.get_order("exact")
    assert back == o
    assert back is not None and str(back.cum_cost) == str(o.cum_cost)  # same digits, exponent


# -- fills -------------------------------------------------------------------------------


def test_fills_are_recorded_once(store: Store) -> None:
    fill = make_fill()
    assert store.record_fill(fill) is True
    assert store.record_fill(fill) is False
    assert store.record_fill(dataclasses.replace(fill, qty=1)) is False  # same exec_id
    assert store.fills_since(0) == [fill]


def test_a_failed_write_is_rolled_back_and_the_store_stays_usable(store: Store) -> None:
    with pytest.raises(StoreError, match="record fill T-bad"):
        store.record_fill(make_fill("T-bad", ts_ns=2**64))
    assert store.fills_since(0) == []
    assert store.record_fill(make_fill()) is True


def test_fills_since_filters_and_orders_by_time(store: Store) -> None:
    fills = [make_fill(f"T{i}", ts_ns=T0 + (5 - i)) for i in range(5)]
    for f in fills:
        store.record_fill(f)
    assert [f.exec_id for f in store.fills_since(T0 + 3)] == ["T2", "T1", "T0"]
    assert store.fills_since(T0 + 100) == []


# -- nonce floors ------------------------------------------------------------------------


def test_nonce_floor_only_goes_up(store: Store) -> None:
    assert store.get_nonce_floor(KEY) == 0
    store.set_nonce_floor(KEY, 1_700_000_000_000_000_500)
    assert store.get_nonce_floor(KEY) == 1_700_000_000_000_000_500
    store.set_nonce_floor(KEY, 1_600_000_000_000_000_000)
    assert store.get_nonce_floor(KEY) == 1_700_000_000_000_000_500
    store.set_nonce_floor(KEY, 2**63 - 1)
    assert store.get_nonce_floor(KEY) == 2**63 - 1
    store.set_nonce_floor(KEY, 5)
    other = key_id("another key")
    assert store.get_nonce_floor(other) == 0
    store.set_nonce_floor(other, 5)
    assert store.get_nonce_floor(KEY) == 2**63 - 1


def test_nonce_floor_never_takes_the_key_itself(store: Store) -> None:
    assert len(KEY) == 16 and int(KEY, 16) >= 0
    secret = (
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    )
    with pytest.raises(StoreError) as info:
        store.set_nonce_floor(secret, 1)
    assert secret not in str(info.value)
    with pytest.raises(StoreError):
        store.set_nonce_floor(KEY, 2**64)


# -- balances and meta -------------------------------------------------------------------


def test_balances_latest_snapshot_is_exact(store: Store) -> None:
    assert store.latest_balances() is None
    store.save_balances({"USD": Decimal("1000.0001"), "BTC": Decimal("0.5")}, T0)
    store.save_balances({"USD": Decimal("12.30"), "ETH": Decimal("-0.000000000000000001")}, T0 + 1)
    snap = store.latest_balances()
    assert snap is not None and snap.ts_ns == T0 + 1
    assert dict(snap.amounts) == {"ETH": Decimal("-0.000000000000000001"), "USD": Decimal("12.30")}
    assert str(snap.amounts["USD"]) == "12.30"


def test_meta(store: Store) -> None:
    assert store.get_meta("last_seq") is None
    store.set_meta("last_seq", "41")
    store.set_meta("last_seq", "42")
    assert store.get_meta("last_seq") == "42"


# -- durability --------------------------------------------------------------------------


def test_reopen_after_close_preserves_everything(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    o = make_order(state=OrderState.UNKNOWN, reason="AddOrder timed out")
    s.save_order(o)
    s.record_fill(make_fill())
    s.set_nonce_floor(KEY, 99)
    s.save_balances({"USD": Decimal("1.5")}, T0)
    s.set_meta("k", "v")
    s.close()
    s = Store.open(path)
    assert s.load_orders() == [o]
    assert s.fills_since(0) == [make_fill()]
    assert s.get_nonce_floor(KEY) == 99
    snap = s.latest_balances()
    assert snap is not None and dict(snap.amounts) == {"USD": Decimal("1.5")}
    assert s.get_meta("k") == "v"
    assert len(s.order_events(o.cl_ord_id)) == 1
    s.close()


def test_a_second_connection_sees_what_the_first_committed(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    first = Store.open(path)
    first.save_order(make_order())
    first.set_nonce_floor(KEY, 7)
    # The first store is never closed: as after a crash, the WAL has not been checkpointed.
    second = Store.open(path)
    assert second.get_order("o-1") == make_order()
    assert second.get_nonce_floor(KEY) == 7
    second.close()
    first.close()


_WRITER = textwrap.dedent(
    """
    import dataclasses, sys
    from bot.execution.orders import new_order
    from bot.kraken.instruments import Instrument
    from bot.store import Store, key_id

    inst = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
    store = Store.open(sys.argv[1])
    key = key_id("k")
    i = 0
    while True:
        order = new_order(cl_ord_id=f"o-{i}", instrument=inst, side="buy", order_type="limit",
                          qty=100_000 + i, price=294_302, strategy="s", now_ns=i)
        store.save_order(order)
        store.set_nonce_floor(key, i + 1)
        print(i, flush=True)  # only now is the write acknowledged
        i += 1
    """
)


def test_committed_rows_survive_sigkill_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    acked = -1
    try:
        assert proc.stdout is not None
        while acked < 150:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer died: {proc.stderr.read() if proc.stderr else ''}")
            acked = int(line)
        proc.send_signal(signal.SIGKILL)  # while it is in the middle of its next write
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    s = Store.open(path)
    orders = {o.cl_ord_id: o for o in s.load_orders()}
    for i in range(acked + 1):
        assert orders[f"o-{i}"].qty == 100_000 + i
    assert s.get_nonce_floor(key_id("k")) >= acked + 1
    s.close()


# -- bad files ---------------------------------------------------------------------------


def _assert_refused_and_untouched(path: Path, match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match):
        Store.open(path)
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists()


def test_garbage_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    path.write_bytes(bytes(range(256)) * 20)
    _assert_refused_and_untouched(path, "not a database")


def test_truncated_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    for i in range(200):
        s.save_order(make_order(f"o-{i}", strategy="x" * 200))
    s.close()
    data = path.read_bytes()
    assert len(data) > 16_384
    path.write_bytes(data[: len(data) // 2])
    _assert_refused_and_untouched(path, "malformed|corrupt")


def test_damage_deep_inside_the_file_is_found_on_open(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    s = Store.open(path)
    for i in range(200):
        s.save_order(make_order(f"o-{i}", strategy="x" * 200))
    s.close()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(range(256)) * 16  # one page of an orders b-tree
    path.write_bytes(bytes(data))
    _assert_refused_and_untouched(path, "malformed|corrupt")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bot.db").mkdir()
    with pytest.raises(StoreError, match="not a regular file"):
        Store.open(tmp_path / "bot.db")


def test_someone_elses_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE recipes (name TEXT)")
    raw.commit()
    raw.close()
    _assert_refused_and_untouched(path, "not a krakenbot store")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    Store.open(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=f"schema version {LATEST_VERSION + 1} is newer"):
        Store.open(path)
    raw = sqlite3.connect(path)
    newer = raw.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    assert newer == LATEST_VERSION + 1  # untouched
    raw.close()


# -- migrations --------------------------------------------------------------------------

# The schema as version 1 shipped it, frozen here on purpose: if a released migration step
# is edited, databases in the field no longer match, and this test says so.
_V1 = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY);
CREATE TABLE orders (
    cl_ord_id TEXT PRIMARY KEY, order_id TEXT, symbol TEXT NOT NULL, side TEXT NOT NULL,
    order_type TEXT NOT NULL, qty TEXT NOT NULL, price TEXT, price_precision INTEGER NOT NULL,
    qty_precision INTEGER NOT NULL, strategy TEXT NOT NULL, state TEXT NOT NULL,
    filled_qty TEXT NOT NULL, cum_cost TEXT NOT NULL, avg_price TEXT, reason TEXT NOT NULL,
    time_in_force TEXT NOT NULL, post_only INTEGER NOT NULL, cancel_pending INTEGER NOT NULL,
    amend_pending INTEGER NOT NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX orders_state ON orders (state);
CREATE TABLE order_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    cl_ord_id TEXT NOT NULL REFERENCES orders (cl_ord_id), ts_ns INTEGER NOT NULL,
    prev_state TEXT, state TEXT NOT NULL, filled_qty TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE fills (
    exec_id TEXT PRIMARY KEY, trade_id TEXT NOT NULL, cl_ord_id TEXT NOT NULL,
    order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL,
    qty TEXT NOT NULL, cost TEXT NOT NULL, fee TEXT NOT NULL, fee_asset TEXT NOT NULL,
    liquidity TEXT NOT NULL, ts_ns INTEGER NOT NULL);
CREATE INDEX fills_ts ON fills (ts_ns);
CREATE TABLE nonce_floor (key_id TEXT PRIMARY KEY, floor INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
INSERT INTO orders VALUES ('o-1', 'OU22CG-KLAF2-FWUDD7', 'BTC/USD', 'sell', 'limit',
    '0.00100000', '29430.2', 1, 8, 'grid', 'new', '0.00000000', '0', NULL, '', 'GTC', 1, 0, 0,
    1700000000000000000, 1700000000000000001);
INSERT INTO order_events (cl_ord_id, ts_ns, prev_state, state, filled_qty, reason)
    VALUES ('o-1', 1700000000000000001, 'pending_new', 'new', '0.00000000', '');
INSERT INTO fills VALUES ('T1', '9', 'o-1', 'OU22CG-KLAF2-FWUDD7', 'BTC/USD', 'sell', '29430.2',
    '0.00050000', '14.7151', '0.03826', 'USD', 't', 1700000000000000002);
INSERT INTO nonce_floor VALUES ('0123456789abcdef', 1700000000000000003);
INSERT INTO meta VALUES ('created_by', 'krakenbot 0.1.0');
"""


def test_migrates_a_version_1_database_to_the_latest(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    raw = sqlite3.connect(path)
    raw.executescript(_V1)
    raw.close()
    s = Store.open(path)
    assert s.schema_version == LATEST_VERSION == 3
    assert s.id_blocks() == {}  # v3: the table exists, empty
    [o] = s.load_orders()
    assert (o.cl_ord_id, o.side, o.state, o.qty, o.price, o.post_only) == (
        "o-1",
        "sell",
        OrderState.NEW,
        100_000,
        294_302,
        True,
    )
    assert [e.state for e in s.order_events("o-1")] == [OrderState.NEW]
    [f] = s.fills_since(0)
    assert (f.exec_id, f.qty, f.qty_precision, f.fee) == ("T1", 50_000, 8, Decimal("0.03826"))
    assert s.get_nonce_floor("0123456789abcdef") == 1_700_000_000_000_000_003
    assert s.get_meta("created_by") == "krakenbot 0.1.0"
    s.save_balances({"BTC": Decimal("0.1")}, T0)  # the table v2 added
    s.close()
    s = Store.open(path)  # and opening again migrates nothing
    assert s.schema_version == 3
    snap = s.latest_balances()
    assert snap is not None and snap.amounts == {"BTC": Decimal("0.1")}
    s.close()


def test_id_blocks_are_durable_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "ids.db"
    s = Store.open(path)
    s.add_id_block("0123456789abcdef01234567", "mm", 1)
    s.add_id_block("fedcba9876543210fedcba98", "", 2)
    with pytest.raises(StoreError, match="24 hex"):
        s.add_id_block("not-hex", "mm", 3)
    with pytest.raises(StoreError):  # a prefix is recorded once
        s.add_id_block("0123456789abcdef01234567", "other", 4)
    s.close()
    again = Store.open(path)
    assert again.id_blocks() == {
        "0123456789abcdef01234567": "mm",
        "fedcba9876543210fedcba98": "",
    }
    again.close()


def test_an_unsynced_save_is_readable_and_synchronous_is_full_again(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "nosync.db")
    order = new_order(
        cl_ord_id="c" * 32, instrument=BTC_USD, side="buy", order_type="limit", qty=100_000,
        price=294_302, strategy="mm", now_ns=1,
    )  # fmt: skip
    s.save_order(order, sync=False)
    assert s.get_order(order.cl_ord_id) == order
    pragma = s._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert pragma == 2  # FULL: only that one transaction skipped the fsync
    s.close()


def test_a_store_told_to_skip_fsync_syncs_nothing_and_keeps_every_row(tmp_path: Path) -> None:
    """A backtest's store: no fsync on either connection; the rows are all there after."""
    s = Store.open(tmp_path / "scratch.db")
    connections = (s._conn, s._unsynced)
    assert [c.execute("PRAGMA synchronous").fetchone()[0] for c in connections] == [2, 1]
    s.skip_fsync()
    assert [c.execute("PRAGMA synchronous").fetchone()[0] for c in connections] == [0, 0]
    order = new_order(
        cl_ord_id="d" * 32, instrument=BTC_USD, side="buy", order_type="limit", qty=100_000,
        price=294_302, strategy="mm", now_ns=1,
    )  # fmt: skip
    s.save_order(order)
    s.save_order(transition(order, OrderState.NEW, now_ns=2, order_id="OX"), sync=False)
    s.close()
    again = Store.open(tmp_path / "scratch.db")
    saved = again.get_order(order.cl_ord_id)
    assert saved is not None and saved.state is OrderState.NEW
    again.close()
