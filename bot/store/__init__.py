"""The daemon's SQLite state: orders, fills, nonce floors, balances (``db``), and who owns the
file (``owner``). ``from bot.store import Store`` is the import callers use.
"""

from bot.store.db import (
    CHECKPOINT_EVERY_S,
    LATEST_VERSION,
    MIGRATIONS,
    BalanceSnapshot,
    OrderEvent,
    Store,
    key_id,
    run_checkpoints,
)

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
