"""The one place that reads a daemon's store for reports: read-only, one consistent snapshot.

``krakenbot report``, ``orders`` and ``fills`` read a store that a daemon may be writing at
that moment, and must never change it: no file created, no migration, no checkpoint. So
this adapter opens the file through SQLite's read-only URI (``mode=ro``), checks that it is
a krakenbot store of a schema this code knows, and reads everything in one read
transaction (WAL gives it a snapshot while the daemon commits). Rows are decoded by the
``Store``'s own public reading methods (``load_orders``, ``fills_since``, ``id_blocks``),
run on that read-only connection, so a change of the stored format is followed here without
a second decoder. Only the ``meta`` table, which the ``Store`` reads by key alone, is read
with plain SQL.

Bad input is ``BadInput`` (exit status 2): a missing path, a directory, a file that is not
SQLite, another program's database, a schema newer than this krakenbot, and a file that
fails while it is read (corrupt pages, undecodable rows): the human decides what to do with
it, and this code changes nothing.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import StoreError
from bot.execution.orders import Fill, Order
from bot.research.record import BadInput
from bot.store import LATEST_VERSION, Store
from bot.store.owner import OWNER_KEYS

__all__ = ["StoreSnapshot", "read_store"]


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """Everything a report needs from one store, read at one instant."""

    path: Path
    schema_version: int
    orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    owners: dict[str, str]  # id-block prefix -> strategy
    meta: dict[str, str]


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise BadInput(f"store {path}: no such file")
    if not path.is_file():
        raise BadInput(f"store {path}: not a regular file")
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise BadInput(f"store {path}: cannot open: {exc}") from exc


def _tables(conn: sqlite3.Connection, path: Path) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise BadInput(f"store {path}: not an SQLite database ({exc})") from exc
    return {str(r[0]) for r in rows}


def _version(conn: sqlite3.Connection, path: Path, tables: set[str]) -> int:
    needed = {"schema_version", "orders", "fills", "meta"}
    if not needed <= tables:
        found = ", ".join(sorted(tables)) or "none"
        raise BadInput(f"store {path}: not a krakenbot store (tables: {found})")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    version = int(row[0] or 0)
    if version > LATEST_VERSION:
        raise BadInput(
            f"store {path}: schema version {version} is newer than this krakenbot "
            f"(which knows up to {LATEST_VERSION}): upgrade krakenbot"
        )
    return version


def read_store(path: str | Path, *, since_ns: int = 0) -> StoreSnapshot:
    """Every order, the fills from ``since_ns`` on, the id blocks and meta of ``path``."""
    path = Path(path)
    conn = _connect(path)
    try:
        tables = _tables(conn, path)
        version = _version(conn, path, tables)
        # The Store's readers on a read-only connection: they only SELECT.
        store = Store(conn, path, unsynced=conn)
        try:
            conn.execute("BEGIN")  # one snapshot for every read below
            orders = tuple(store.load_orders(open_only=False))
            fills = tuple(store.fills_since(since_ns))
            owners = store.id_blocks() if "id_blocks" in tables else {}
            stamp = dict(conn.execute("SELECT key, value FROM meta"))
            # Whose run it is (bot.store.owner's stamp), under plain names: mode, venue, key_id.
            meta = {k.removeprefix("owner_"): str(stamp[k]) for k in OWNER_KEYS if k in stamp}
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"store {path}: read: {exc}") from exc
    except (sqlite3.Error, StoreError) as exc:
        # Corrupt pages, rows this code cannot decode, a file locked away from us: the
        # human decides (docs/contributors/store.md says how), nothing is changed here.
        raise BadInput(f"store {path}: unreadable: {exc}") from exc
    finally:
        conn.close()
    return StoreSnapshot(path, version, orders, fills, owners, meta)
