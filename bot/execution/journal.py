"""What execution needs of durable storage: the order journal and the id blocks, as protocols.

The engine and the id issuer keep orders, fills and client-id prefixes durable through these
two ports; ``bot.store.Store`` (SQLite) implements both. The store sits above execution (it
persists execution's ``Order`` and ``Fill``), so execution names what it needs here and never
imports ``bot.store``, as the REST client names its ``NonceFloors`` (``bot.kraken.nonce``).
"""

from __future__ import annotations

from typing import Protocol

from bot.execution.orders import Fill, Order

__all__ = ["IdBlockStore", "OrderJournal"]


class IdBlockStore(Protocol):
    """Where blocks of client order ids are recorded (``bot.execution.ids``)."""

    def add_id_block(self, prefix: str, strategy: str, created_ns: int) -> None:
        """Record ``prefix`` as ``strategy``'s, durably when it returns."""
        ...

    def id_blocks(self) -> dict[str, str]:
        """Every recorded block: prefix -> strategy."""
        ...


class OrderJournal(IdBlockStore, Protocol):
    """Orders and fills as the engine keeps them (``bot.execution.engine``)."""

    def save_order(self, order: Order, *, sync: bool = True) -> None:
        """Upsert ``order``; durable when it returns (``sync=False``: without the fsync)."""
        ...

    def get_order(self, cl_ord_id: str) -> Order | None:
        """One order by client id, open or done."""
        ...

    def load_orders(self, *, open_only: bool = True) -> list[Order]:
        """Orders by creation time; only those that might still trade unless told otherwise."""
        ...

    def newest_order_ns(self) -> int | None:
        """The creation time of the newest order on record."""
        ...

    def first_id_block_ns(self) -> int | None:
        """When the oldest id block was recorded."""
        ...

    def record_fill(self, fill: Fill) -> bool:
        """Insert ``fill`` once; ``False`` if its ``exec_id`` was already recorded."""
        ...

    def fills_since(self, ts_ns: int) -> list[Fill]:
        """Fills at or after ``ts_ns``, oldest first."""
        ...
