"""Whose a store is: the stamp of mode, venue and API key every store carries.

A store's orders, fills and positions belong to one account on one venue: paper fills
replayed into a live run's positions (or one key's orders into another's) would feed the
risk limits made-up numbers. So the daemon stamps each store with its ``StoreOwner`` (the
mode; the venue, ``simulator`` in paper mode, else the REST URL; the API key's
``key_id``, a hash, never the key) the first time it opens it, and ``claim`` refuses a
store stamped by another owner with a ``StoreError`` naming both (exit status 1, like
every store the daemon cannot use). Paper mode's key is the simulator's own, new each run,
so a paper owner has no key.

A store with no history yet (no order, fill or id block: say the first run stopped at the
permission check, and the user made a new key) is stamped again by whoever opens it.
Stores written before stamps existed are claimed by one rule (``claim``): an empty one is
stamped; one with history is adopted only in live mode and only if every key that signed
with it is this run's key (a store paper mode ever used holds the simulator's keys too);
any other is refused, and the human decides (docs/contributors/store.md).

This module owns the stamp's meta keys and that rule; the file itself is ``bot.store``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.core.errors import StoreError
from bot.core.log import get_logger
from bot.store import Store, key_id

__all__ = ["OWNER_KEYS", "PAPER_VENUE", "StoreOwner", "claim", "read_owner"]

PAPER_VENUE: Final = "simulator"
OWNER_KEYS: Final = ("owner_mode", "owner_venue", "owner_key_id")
"""The ``meta`` keys of the stamp."""
_REMEDY: Final = (
    "give this deployment a store of its own (store.path; by default data/paper.db in paper"
    " mode, data/live.db in live mode), or move this file aside: see"
    " docs/contributors/store.md"
)
log = get_logger(component="store")


@dataclass(frozen=True, slots=True)
class StoreOwner:
    """Who may use a store: a mode, a venue and an API key's ``key_id`` ("" in paper)."""

    mode: str
    venue: str
    key_id: str = ""

    @classmethod
    def of(cls, mode: str, rest_url: str, api_key: str) -> StoreOwner:
        """The owner a run is: paper runs on the simulator with no key of their own."""
        if mode == "paper":
            return cls("paper", PAPER_VENUE)
        return cls(mode, rest_url.rstrip("/"), key_id(api_key))

    def describe(self) -> str:
        return f"mode={self.mode} venue={self.venue} key={self.key_id or 'none'}"


def read_owner(store: Store) -> StoreOwner | None:
    """The stamp on ``store``, or None if it has none (a store from an older krakenbot)."""
    mode, venue, kid = (store.get_meta(k) for k in OWNER_KEYS)
    if mode is None or venue is None or kid is None:
        return None
    return StoreOwner(mode, venue, kid)


def claim(store: Store, owner: StoreOwner) -> None:
    """Make ``store`` ``owner``'s, or raise ``StoreError`` naming its owner and ``owner``."""
    stamped = read_owner(store)
    if stamped == owner:
        return
    history = store.history()
    if not any(history.values()):  # nothing in it is anyone's yet
        _stamp(store, owner)
        previous = "none" if stamped is None else stamped.describe()
        log.info("store_stamped", path=str(store.path), owner=owner.describe(), previous=previous)
        return
    if stamped is not None:
        raise StoreError(
            f"store {store.path} was made by another deployment ({stamped.describe()}), not"
            f" this one ({owner.describe()}): {_REMEDY}"
        )
    keys = store.nonce_key_ids()
    if owner.mode == "live" and keys == {owner.key_id}:
        _stamp(store, owner)
        log.warning(
            "store_adopted", path=str(store.path), reason="no owner stamp; only this key signed",
            owner=owner.describe(), **history,
        )  # fmt: skip
        return
    why = (
        "paper mode adopts no store with history"
        if owner.mode == "paper"
        else f"{len(keys - {owner.key_id})} other API key(s) signed with it"
        if keys - {owner.key_id}
        else "this key never signed with it"
    )
    raise StoreError(
        f"store {store.path} has no owner stamp (an older krakenbot wrote it) and holds"
        f" {history['orders']} orders and {history['fills']} fills that may be another"
        f" deployment's ({why}); this run is {owner.describe()}: {_REMEDY}"
    )


def _stamp(store: Store, owner: StoreOwner) -> None:
    store.set_metas(dict(zip(OWNER_KEYS, (owner.mode, owner.venue, owner.key_id), strict=True)))
