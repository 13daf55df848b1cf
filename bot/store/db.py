"""The SQLite store: orders, their history, fills, nonce floors, balances, meta.

This module owns the database file and its schema. It knows nothing of Kraken's wire and
decides nothing: the engine hands it ``Order`` and ``Fill`` values (``bot.execution.orders``)
and gets the same values back after a restart.

Durability. The database runs in WAL mode with ``synchronous=FULL``: every write method is
one transaction, and when it returns the transaction is committed *and* fsynced, so it
survives a crash of the process, of the container and of the machine. That is the promise
the engine builds on: it records an id block before any id of it is used, it records a
fill before telling a strategy; it raises the nonce floor before signing past it. The price
is one fsync per write (a millisecond or so on an SSD) on the event loop's thread; no write
holds a transaction across an ``await``. One exception, asked for by the caller:
``save_order(order, sync=False)`` skips the fsync of that transaction (it survives a crash
of the process, and the next synced write makes it durable). The engine uses it for orders
whose id comes from a recorded block: such an order is provably ours even if its row is
lost with the machine, and reconciliation restores the row from the exchange
(``bot.execution.ids``), so no fsync sits on the order path. A
``Store`` belongs to the thread that opened it (the event loop's); one process writes it.

Two connections, one WAL. Every method runs on the first connection, at
``synchronous=FULL``; the second, on the same file at ``synchronous=NORMAL``, runs only
``save_order(sync=False)``, so no write toggles the pragma (a PRAGMA is compiled again on
every run). In WAL mode FULL adds to NORMAL only a sync of the WAL file after each commit
(sqlite.org/pragma.html#pragma_synchronous). There is one WAL file, so that sync also covers
the frames the other connection appended before it: a synced write makes the earlier
unsynced ones durable. Each connection sees the other's commits from its next statement on.
The price of two page caches: the first statement on one connection after the other wrote
reads its pages again (docs/contributors/benchmarks.md has the figure). ``close()`` closes the
second first, so the first is the last to close and checkpoints the WAL into the file.

Order history. Each connection installs two TEMP triggers on ``orders`` that append the
``order_events`` row, with the row's state before the write as ``prev_state`` (a TEMP
trigger may write tables of another schema: sqlite.org/lang_createtrigger.html). So a
save is one autocommit statement: its own transaction, with its history row, rolled back
whole if any part fails. Every write to ``orders`` through a ``Store`` is recorded; the
triggers live on the connections, never in the file.

Exact numbers. Prices and quantities are stored as decimal TEXT written at their own
precision (``"0.00100000"``), so the scaled int and its precision both round-trip, any
size fits, and the file reads well in ``sqlite3``. Costs, fees and balances are
``Decimal`` TEXT. Timestamps are INTEGER nanoseconds since the epoch.

Bad files. A file that is not SQLite, is corrupt or truncated, belongs to another program,
or has a schema newer than this code raises ``StoreError`` from ``Store.open``. The file is
never replaced, repaired or recreated: a human decides (docs/contributors/store.md). Which
deployment a store belongs to is ``bot.store.owner``'s (a stamp in ``meta``).

Privacy. ``Store.open`` creates the folder 0700 and the file 0600 (SQLite gives ``-wal`` and
``-shm`` the file's mode); what exists already keeps its modes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from bot.core.clock import Clock
from bot.core.errors import StoreError
from bot.core.log import get_logger
from bot.execution.orders import OPEN_STATES, Fill, Order, OrderState
from bot.kraken.instruments import format_scaled
from bot.kraken.nonce import key_id  # re-exported: the name of a key's nonce floor

__all__ = [
    "CHECKPOINT_EVERY_S",
    "LATEST_VERSION",
    "MIGRATIONS",
    "BalanceSnapshot",
    "OrderEvent",
    "Store",
    "key_id",
    "run_checkpoints",
]

CHECKPOINT_EVERY_S: Final = 2.0  # run_checkpoints' default: the WAL stays small
_WAL_PAGES_WARN: Final = 50_000  # ~200 MB of WAL: checkpoints are not keeping up
log = get_logger(component="store")

# Step i takes the schema from version i to i + 1. The steps a file lacks run in order in
# one transaction, so an upgrade is all or nothing. A released step is never edited: a
# change is a new step at the end.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # v1: orders and their history, fills, nonce floors, meta.
    (
        """CREATE TABLE orders (
            cl_ord_id TEXT PRIMARY KEY,
            order_id TEXT,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            order_type TEXT NOT NULL,
            qty TEXT NOT NULL,
            price TEXT,
            price_precision INTEGER NOT NULL,
            qty_precision INTEGER NOT NULL,
            strategy TEXT NOT NULL,
            state TEXT NOT NULL,
            filled_qty TEXT NOT NULL,
            cum_cost TEXT NOT NULL,
            avg_price TEXT,
            reason TEXT NOT NULL,
            time_in_force TEXT NOT NULL,
            post_only INTEGER NOT NULL,
            cancel_pending INTEGER NOT NULL,
            amend_pending INTEGER NOT NULL,
            created_ns INTEGER NOT NULL,
            updated_ns INTEGER NOT NULL
        )""",
        "CREATE INDEX orders_state ON orders (state)",
        """CREATE TABLE order_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            cl_ord_id TEXT NOT NULL REFERENCES orders (cl_ord_id),
            ts_ns INTEGER NOT NULL,
            prev_state TEXT,
            state TEXT NOT NULL,
            filled_qty TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        """CREATE TABLE fills (
            exec_id TEXT PRIMARY KEY,
            trade_id TEXT NOT NULL,
            cl_ord_id TEXT NOT NULL,
            order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            price TEXT NOT NULL,
            qty TEXT NOT NULL,
            cost TEXT NOT NULL,
            fee TEXT NOT NULL,
            fee_asset TEXT NOT NULL,
            liquidity TEXT NOT NULL,
            ts_ns INTEGER NOT NULL
        )""",
        "CREATE INDEX fills_ts ON fills (ts_ns)",
        "CREATE TABLE nonce_floor (key_id TEXT PRIMARY KEY, floor INTEGER NOT NULL)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # v2: balance snapshots; order history looked up by order.
    (
        """CREATE TABLE balances (
            ts_ns INTEGER NOT NULL,
            asset TEXT NOT NULL,
            amount TEXT NOT NULL,
            PRIMARY KEY (ts_ns, asset)
        )""",
        "CREATE INDEX order_events_order ON order_events (cl_ord_id, seq)",
    ),
    # v3: blocks of client order ids, recorded before any id of theirs is used.
    (
        """CREATE TABLE id_blocks (
            prefix TEXT PRIMARY KEY,
            strategy TEXT NOT NULL,
            created_ns INTEGER NOT NULL
        )""",
    ),
)
LATEST_VERSION: Final = len(MIGRATIONS)

# format_scaled, remembered: an order's sizes and prices recur (zero fills, the same quote
# sizes, nearby prices), and each save formats three of them on the order path.
_fixed: Final = functools.lru_cache(maxsize=4096, typed=True)(format_scaled)
_KEY_ID: Final = re.compile(r"[0-9a-f]{16}")
_ID_PREFIX: Final = re.compile(r"[0-9a-f]{24}")
_MAX_INT64: Final = 2**63 - 1
_ORDER_COLUMNS: Final = (
    "cl_ord_id, order_id, symbol, side, order_type, qty, price, price_precision, "
    "qty_precision, strategy, state, filled_qty, cum_cost, avg_price, reason, time_in_force, "
    "post_only, cancel_pending, amend_pending, created_ns, updated_ns"
)
_UPSERT_ORDER: Final = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(_ORDER_COLUMNS.split(', ')))}) "
    "ON CONFLICT (cl_ord_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ORDER_COLUMNS.split(", ")[1:])
)
# One history row per upsert: its insert fires the first trigger, its DO UPDATE the second
# (OLD is the row before the write). TEMP: installed on each connection by ``Store.open``,
# never written to the file, so the schema and older files stay as they are.
_HISTORY_TRIGGERS: Final = tuple(
    f"""CREATE TEMP TRIGGER IF NOT EXISTS order_history_{event.lower()}
        AFTER {event} ON main.orders BEGIN
            INSERT INTO order_events (cl_ord_id, ts_ns, prev_state, state, filled_qty, reason)
            VALUES (NEW.cl_ord_id, NEW.updated_ns, {prev}, NEW.state, NEW.filled_qty, NEW.reason);
        END"""
    for event, prev in (("INSERT", "NULL"), ("UPDATE", "OLD.state"))
)
_FILL_COLUMNS: Final = (
    "exec_id, trade_id, cl_ord_id, order_id, symbol, side, price, qty, cost, fee, fee_asset, "
    "liquidity, ts_ns"
)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One row of an order's append-only history."""

    seq: int
    cl_ord_id: str
    ts_ns: int
    prev_state: OrderState | None
    state: OrderState
    filled_qty: int
    reason: str


@dataclass(frozen=True, slots=True)
class BalanceSnapshot:
    """Every asset's balance at one instant."""

    ts_ns: int
    amounts: Mapping[str, Decimal]


def _parse_scaled(text: str) -> tuple[int, int]:
    """``"0.00100000"`` → ``(100000, 8)``: the scaled int and its precision."""
    whole, _, frac = text.partition(".")
    return int(whole + frac), len(frac)


def _scaled(text: str, precision: int) -> int:
    value, stored = _parse_scaled(text)
    if stored != precision:
        raise StoreError(f"stored {text!r} does not have precision {precision}")
    return value


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise StoreError(f"stored {text!r} is not a decimal number") from None


class Store:
    """One open database file. Use ``Store.open(path)``; call ``close()`` when done."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, unsynced: sqlite3.Connection
    ) -> None:
        self._conn = conn  # synchronous=FULL: reads and every durable write
        self._unsynced = unsynced  # synchronous=NORMAL: save_order(sync=False) only
        self.path = path

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (or create) the store at ``path`` and bring its schema up to date.

        Raises ``StoreError`` if the file cannot be opened, is not a healthy SQLite
        database, belongs to another program, or has a schema newer than this code.
        """
        path = Path(path)
        try:  # only its owner may read orders, fills and nonce floors: 0700, then 0600
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store {path}: cannot create its directory: {exc}") from exc
        if path.exists() and not path.is_file():
            raise StoreError(f"store {path}: not a regular file")
        _create_private(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"store {path}: cannot open: {exc}") from exc
        try:
            _prepare(conn, path)
            unsynced = _open_unsynced(path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, unsynced=unsynced)

    def close(self) -> None:
        """Close both connections; the last one checkpoints the WAL into the main file."""
        with self._errors("close"):
            try:
                self._unsynced.close()
            finally:
                self._conn.close()

    def skip_fsync(self) -> None:
        """Stop syncing commits and checkpoints to disk (``synchronous=OFF``, both
        connections).

        For a store whose every row is made again by running the same input once more (a
        backtest's: deterministic, rebuilt from its data): each write stays one atomic
        transaction and survives a crash of the process, not of the machine. A daemon's
        store never calls this (see Durability above)."""
        with self._errors("skip fsync"):
            for conn in (self._conn, self._unsynced):
                conn.execute("PRAGMA synchronous=OFF")

    @property
    def schema_version(self) -> int:
        with self._errors("read schema version"):
            return _version(self._conn)

    # -- orders --------------------------------------------------------------------------

    def defer_checkpoints(self) -> None:
        """Stop SQLite's automatic checkpoint; the owner runs ``checkpoint`` off the loop.

        By default the commit that takes the WAL past 1,000 pages copies it into the
        database file and syncs it: a stall of several milliseconds on whichever write
        crosses the line (about every 165 order saves), on the event loop. After this,
        commits only append to the WAL, and ``run_checkpoints`` (or the owner's own
        schedule) copies it from a worker thread. ``close()`` still checkpoints."""
        with self._errors("defer checkpoints"):
            for conn in (self._conn, self._unsynced):
                conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL into the database file, without waiting for anyone (``PASSIVE``):
        ``(wal_pages, pages_copied)``. Safe from any thread: it opens a connection of its
        own for the call (``sqlite3`` releases the GIL while SQLite works), and the WAL
        lets the loop's connections keep writing meanwhile."""
        with self._errors("checkpoint"):
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout=2000")
                _busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                conn.close()
        return int(pages), int(copied)

    def save_order(self, order: Order, *, sync: bool = True) -> None:
        """Upsert ``order`` and append one row to its history; durable when it returns.

        ``sync=False``: committed without the fsync (WAL, ``synchronous=NORMAL``): the row
        is visible to every reader and survives a crash of the process, not of the machine.
        For an order whose ``cl_ord_id`` comes from a recorded id block (``add_id_block``),
        which reconciliation recognises as ours even if the row is lost
        (``bot.execution.ids``). The next synced write makes it durable too.

        On the order path, so one statement: the history row comes from the triggers
        (``_HISTORY_TRIGGERS``), and the autocommit statement is its own transaction,
        committed when it returns and rolled back whole if any part fails."""
        conn = self._conn if sync else self._unsynced
        row = _order_row(order)
        try:
            if conn.in_transaction:  # never join a transaction some failure left open
                raise sqlite3.OperationalError("a transaction is already open")
            conn.execute(_UPSERT_ORDER, row)
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an int past 64 bits
            raise StoreError(f"store {self.path}: save order {order.cl_ord_id}: {exc}") from exc

    def get_order(self, cl_ord_id: str) -> Order | None:
        with self._errors(f"read order {cl_ord_id}"):
            row = self._conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE cl_ord_id = ?", (cl_ord_id,)
            ).fetchone()
        return None if row is None else _order(row)

    def newest_order_ns(self) -> int | None:
        """The creation time of the newest order on record, or None if there is none."""
        with self._errors("read newest order"):
            row = self._conn.execute("SELECT MAX(created_ns) FROM orders").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def first_id_block_ns(self) -> int | None:
        """When the oldest id block was recorded, or None if there is none."""
        with self._errors("read id blocks"):
            row = self._conn.execute("SELECT MIN(created_ns) FROM id_blocks").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def load_orders(self, *, open_only: bool = True) -> list[Order]:
        """Orders by creation time; only those that might still trade unless told otherwise."""
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders"
        args: tuple[str, ...] = ()
        if open_only:
            states = sorted(s.value for s in OPEN_STATES)
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            args = tuple(states)
        with self._errors("load orders"):
            rows = self._conn.execute(sql + " ORDER BY created_ns, cl_ord_id", args).fetchall()
        return [_order(row) for row in rows]

    def order_events(self, cl_ord_id: str) -> list[OrderEvent]:
        """The history of one order, oldest first."""
        with self._errors(f"read history of {cl_ord_id}"):
            rows = self._conn.execute(
                "SELECT seq, cl_ord_id, ts_ns, prev_state, state, filled_qty, reason "
                "FROM order_events WHERE cl_ord_id = ? ORDER BY seq",
                (cl_ord_id,),
            ).fetchall()
        return [
            OrderEvent(
                seq=seq,
                cl_ord_id=cid,
                ts_ns=ts,
                prev_state=None if prev is None else OrderState(prev),
                state=OrderState(state),
                filled_qty=_parse_scaled(filled)[0],
                reason=reason,
            )
            for seq, cid, ts, prev, state, filled, reason in rows
        ]

    # -- fills ---------------------------------------------------------------------------

    def record_fill(self, fill: Fill) -> bool:
        """Insert ``fill`` once; ``False`` if its ``exec_id`` was already recorded."""
        row = (
            fill.exec_id,
            fill.trade_id,
            fill.cl_ord_id,
            fill.order_id,
            fill.symbol,
            fill.side,
            format_scaled(fill.price, fill.price_precision),
            format_scaled(fill.qty, fill.qty_precision),
            str(fill.cost),
            str(fill.fee),
            fill.fee_asset,
            fill.liquidity,
            fill.ts_ns,
        )
        with self._transaction(f"record fill {fill.exec_id}") as conn:
            cursor = conn.execute(
                f"INSERT INTO fills ({_FILL_COLUMNS}) VALUES ({', '.join('?' * len(row))}) "
                "ON CONFLICT (exec_id) DO NOTHING",
                row,
            )
            return cursor.rowcount == 1

    def fills_since(self, ts_ns: int) -> list[Fill]:
        """Fills with ``ts_ns`` at or after ``ts_ns``, oldest first."""
        with self._errors("read fills"):
            rows = self._conn.execute(
                f"SELECT {_FILL_COLUMNS} FROM fills WHERE ts_ns >= ? ORDER BY ts_ns, exec_id",
                (ts_ns,),
            ).fetchall()
        return [_fill(row) for row in rows]

    def recent_fills(self, limit: int) -> list[Fill]:
        """The newest ``limit`` fills, oldest first (the dashboard's "last fills")."""
        with self._errors("read fills"):
            rows = self._conn.execute(
                f"SELECT {_FILL_COLUMNS} FROM fills ORDER BY ts_ns DESC, exec_id DESC LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        return [_fill(row) for row in reversed(rows)]

    # -- nonce floors --------------------------------------------------------------------

    def get_nonce_floor(self, key_id: str) -> int:
        """The highest nonce floor saved for this key (0 if none)."""
        _check_key_id(key_id)
        with self._errors("read nonce floor"):
            row = self._conn.execute(
                "SELECT floor FROM nonce_floor WHERE key_id = ?", (key_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def set_nonce_floor(self, key_id: str, value: int) -> None:
        """Raise the floor to ``value``; a lower value leaves it as it is.

        Fits ``NonceGenerator(persist=functools.partial(store.set_nonce_floor, kid))``.
        """
        _check_key_id(key_id)
        if not 0 <= value <= _MAX_INT64:
            raise StoreError(f"nonce floor {value} is outside 0..2**63-1")
        with self._transaction("save nonce floor") as conn:
            conn.execute(
                "INSERT INTO nonce_floor (key_id, floor) VALUES (?, ?) "
                "ON CONFLICT (key_id) DO UPDATE SET floor = max(floor, excluded.floor)",
                (key_id, value),
            )

    # -- balances ------------------------------------------------------------------------

    def save_balances(self, amounts: Mapping[str, Decimal], ts_ns: int) -> None:
        """Save one snapshot of every asset's balance, taken at ``ts_ns``."""
        rows = [(ts_ns, asset, str(amount)) for asset, amount in sorted(amounts.items())]
        with self._transaction("save balances") as conn:
            conn.execute("DELETE FROM balances WHERE ts_ns = ?", (ts_ns,))
            conn.executemany("INSERT INTO balances (ts_ns, asset, amount) VALUES (?, ?, ?)", rows)

    def add_id_block(self, prefix: str, strategy: str, created_ns: int) -> None:
        """Record a block of client order ids (durable when it returns): every id that
        starts with ``prefix`` is ours, placed for ``strategy``."""
        if not _ID_PREFIX.fullmatch(prefix):
            raise StoreError(f"store {self.path}: id block prefix must be 24 hex digits")
        with self._transaction(f"add id block {prefix}") as conn:
            conn.execute(
                "INSERT INTO id_blocks (prefix, strategy, created_ns) VALUES (?, ?, ?)",
                (prefix, strategy, created_ns),
            )

    def id_blocks(self) -> dict[str, str]:
        """Every recorded id block: prefix -> strategy."""
        with self._errors("read id blocks"):
            rows = self._conn.execute("SELECT prefix, strategy FROM id_blocks").fetchall()
        return {str(prefix): str(strategy) for prefix, strategy in rows}

    def latest_balances(self) -> BalanceSnapshot | None:
        """The most recent snapshot, or ``None`` if none was ever saved.

        An empty snapshot (no assets) is not stored as a row and so is not returned.
        """
        with self._errors("read balances"):
            rows = self._conn.execute(
                "SELECT ts_ns, asset, amount FROM balances "
                "WHERE ts_ns = (SELECT max(ts_ns) FROM balances) ORDER BY asset"
            ).fetchall()
        if not rows:
            return None
        return BalanceSnapshot(rows[0][0], {asset: _decimal(a) for _, asset, a in rows})

    # -- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._errors(f"read meta {key}"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.set_metas({key: value})

    def set_metas(self, values: Mapping[str, str]) -> None:
        """Set several meta keys in one transaction: all of them, or none."""
        with self._transaction(f"save meta {', '.join(values)}") as conn:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def nonce_key_ids(self) -> frozenset[str]:
        """The ``key_id`` of every API key that has signed with a nonce floor kept here."""
        with self._errors("read nonce floors"):
            rows = self._conn.execute("SELECT key_id FROM nonce_floor").fetchall()
        return frozenset(str(row[0]) for row in rows)

    def history(self) -> dict[str, int]:
        """How many orders, fills and id blocks the file holds (all zero: a fresh store)."""
        with self._errors("count history"):
            return {
                table: int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("orders", "fills", "id_blocks")
            }

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an int past 64 bits
            raise StoreError(f"store {self.path}: {what}: {exc}") from exc

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._errors(what), _transaction(self._conn):
            yield self._conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # the original error is the one worth raising
                conn.execute("ROLLBACK")
        raise


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists. SQLite reads an empty file as
    an empty database, and creates its ``-wal`` and ``-shm`` files with the database
    file's mode, so nothing of the store is ever readable by another user (SQLite itself
    would create the file 0644 less the umask)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"store {path}: cannot create: {exc.strerror or exc}") from exc


def _check_key_id(value: str) -> None:
    # Never echo the value: a caller that got this wrong may have passed the key itself.
    if not isinstance(value, str) or not _KEY_ID.fullmatch(value):
        raise StoreError("nonce floor key must be key_id(api_key): 16 lowercase hex digits")


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file, switch on WAL and FULL sync, and migrate to the latest schema."""
    try:
        # The first read of the header: "file is not a database" surfaces here.
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            problems = "; ".join(str(r[0]) for r in check[:5])
            raise StoreError(f"store {path}: database is corrupt: {problems}")
        if tables and "schema_version" not in tables:
            raise StoreError(
                f"store {path}: an SQLite database but not a krakenbot store "
                f"(tables: {', '.join(sorted(tables))})"
            )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"store {path}: cannot use WAL mode here (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=2000")
        _migrate(conn, path)
        for statement in _HISTORY_TRIGGERS:
            conn.execute(statement)
    except sqlite3.Error as exc:
        raise StoreError(f"store {path}: unreadable or not a database: {exc}") from exc


def _open_unsynced(path: Path) -> sqlite3.Connection:
    """The second connection, on a file ``_prepare`` has checked: NORMAL sync, same rules."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"store {path}: cannot open: {exc}") from exc
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=2000")
        for statement in _HISTORY_TRIGGERS:
            conn.execute(statement)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"store {path}: cannot open a second connection: {exc}") from exc
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    with _transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        current = _version(conn)
        if current > len(MIGRATIONS):
            raise StoreError(
                f"store {path}: schema version {current} is newer than this krakenbot "
                f"(which knows up to {len(MIGRATIONS)}): upgrade krakenbot, or use another file"
            )
        for version in range(current + 1, LATEST_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def _order_row(order: Order) -> tuple[Any, ...]:
    """``order`` as the values of ``_UPSERT_ORDER``, in ``_ORDER_COLUMNS`` order."""
    qp = order.qty_precision
    return (
        order.cl_ord_id,
        order.order_id,
        order.symbol,
        order.side,
        order.order_type,
        _fixed(order.qty, qp),
        None if order.price is None else _fixed(order.price, order.price_precision),
        order.price_precision,
        qp,
        order.strategy,
        str(order.state),  # a StrEnum's str() is its value, without the Enum.value descriptor
        _fixed(order.filled_qty, qp),
        str(order.cum_cost),
        None if order.avg_price is None else str(order.avg_price),
        order.reason,
        order.time_in_force,
        int(order.post_only),
        int(order.cancel_pending),
        int(order.amend_pending),
        order.created_ns,
        order.updated_ns,
    )


def _order(row: tuple[Any, ...]) -> Order:
    (cid, order_id, symbol, side, order_type, qty, price, pp, qp, strategy, state, filled,
     cum_cost, avg_price, reason, tif, post_only, cancel_pending, amend_pending, created,
     updated) = row  # fmt: skip
    return Order(
        cl_ord_id=str(cid),
        order_id=None if order_id is None else str(order_id),
        symbol=str(symbol),
        side=str(side),
        order_type=str(order_type),
        qty=_scaled(str(qty), qp),
        price=None if price is None else _scaled(str(price), pp),
        price_precision=pp,
        qty_precision=qp,
        strategy=str(strategy),
        state=OrderState(str(state)),
        filled_qty=_scaled(str(filled), qp),
        cum_cost=_decimal(str(cum_cost)),
        avg_price=None if avg_price is None else _decimal(str(avg_price)),
        reason=str(reason),
        time_in_force=str(tif),
        post_only=bool(post_only),
        cancel_pending=bool(cancel_pending),
        amend_pending=bool(amend_pending),
        created_ns=int(created),
        updated_ns=int(updated),
    )


def _fill(row: tuple[Any, ...]) -> Fill:
    (exec_id, trade_id, cid, order_id, symbol, side, price, qty, cost, fee, fee_asset,
     liquidity, ts) = row  # fmt: skip
    price_value, pp = _parse_scaled(str(price))
    qty_value, qp = _parse_scaled(str(qty))
    return Fill(
        exec_id=str(exec_id),
        trade_id=str(trade_id),
        cl_ord_id=str(cid),
        order_id=str(order_id),
        symbol=str(symbol),
        side=str(side),
        price=price_value,
        qty=qty_value,
        price_precision=pp,
        qty_precision=qp,
        cost=_decimal(str(cost)),
        fee=_decimal(str(fee)),
        fee_asset=str(fee_asset),
        liquidity=str(liquidity),
        ts_ns=int(ts),
    )


async def run_checkpoints(store: Store, clock: Clock, every_s: float = CHECKPOINT_EVERY_S) -> None:
    """``store.defer_checkpoints()``, then ``store.checkpoint()`` in a worker thread every
    ``every_s`` until cancelled (the daemon's task). A failed checkpoint is logged and tried
    again next time: the WAL only grows meanwhile, nothing is lost."""
    store.defer_checkpoints()
    while True:
        await clock.sleep(every_s)
        try:
            pages, copied = await asyncio.to_thread(store.checkpoint)
        except StoreError as exc:
            log.warning("store_checkpoint_failed", error=str(exc))
            continue
        if pages > _WAL_PAGES_WARN:
            log.warning("store_wal_large", wal_pages=pages, copied=copied)
