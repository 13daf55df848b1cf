"""A store knows whose it is (bot.store.owner), and only its owner can read it (file modes).

Real SQLite files in ``tmp_path``. A store "from an older krakenbot" is one opened without
``claim``: the schema and the data, no stamp.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.core.errors import StoreError
from bot.execution.orders import Fill, new_order
from bot.kraken.instruments import Instrument
from bot.store import Store, key_id
from bot.store.owner import PAPER_VENUE, StoreOwner, claim, read_owner

BTC_USD = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
T0 = 1_700_000_000_000_000_000
LIVE_KEY = "live-api-key-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER_KEY = "other-api-key-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
KRAKEN = "https://api.kraken.com"
PAPER = StoreOwner.of("paper", "http://127.0.0.1:40321", "a-simulator-key")
LIVE = StoreOwner.of("live", KRAKEN + "/", LIVE_KEY)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.db"


def opened(path: Path) -> Store:
    return Store.open(path)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: what SQLite and mkdir would give is 0644/0755
    yield
    os.umask(old)


def record_history(store: Store, *signers: str) -> None:
    """Orders and a fill, as a run that signed with ``signers`` would leave them."""
    order = new_order(
        cl_ord_id="o-1", instrument=BTC_USD, side="buy", order_type="limit", qty=100_000,
        price=294_302, strategy="mm", now_ns=T0,
    )  # fmt: skip
    store.save_order(order)
    store.record_fill(
        Fill(
            exec_id="E-1", trade_id="1", cl_ord_id="o-1", order_id="O-1", symbol="BTC/USD",
            side="buy", price=294_302, qty=100_000, price_precision=1, qty_precision=8,
            cost=Decimal("29.4302"), fee=Decimal("0.07"), fee_asset="USD", liquidity="m",
            ts_ns=T0,
        )
    )  # fmt: skip
    for signer in signers:
        store.set_nonce_floor(key_id(signer), T0)


def test_owners_name_mode_venue_and_a_hash_of_the_key() -> None:
    assert StoreOwner("paper", PAPER_VENUE, "") == PAPER  # the simulator's key is new each run
    assert StoreOwner("live", KRAKEN, key_id(LIVE_KEY)) == LIVE
    assert LIVE_KEY not in LIVE.describe()
    assert LIVE.describe() == f"mode=live venue={KRAKEN} key={key_id(LIVE_KEY)}"


def test_a_new_store_is_stamped_by_its_first_owner_and_opens_for_it_again(path: Path) -> None:
    store = opened(path)
    with capture_logs() as events:
        claim(store, LIVE)
    assert read_owner(store) == LIVE
    assert [e["event"] for e in events] == ["store_stamped"]
    store.close()
    store = opened(path)
    claim(store, LIVE)  # its owner, again: nothing to say
    store.close()


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (PAPER, LIVE),  # the incident: a live run on paper's store
        (LIVE, PAPER),
        (LIVE, StoreOwner.of("live", KRAKEN, OTHER_KEY)),  # another key
        (LIVE, StoreOwner.of("live", "http://127.0.0.1:9999", LIVE_KEY)),  # another venue
    ],
)
def test_a_store_made_by_another_is_refused_naming_both(
    path: Path, first: StoreOwner, then: StoreOwner
) -> None:
    store = opened(path)
    claim(store, first)
    record_history(store)
    with pytest.raises(StoreError) as caught:
        claim(store, then)
    message = str(caught.value)
    assert f"store {path} was made by another deployment ({first.describe()})" in message
    assert f"this one ({then.describe()})" in message
    assert "store.path" in message and "data/live.db" in message  # what to do
    assert read_owner(store) == first  # untouched
    assert LIVE_KEY not in message and OTHER_KEY not in message
    store.close()


def test_a_stamped_store_with_no_history_yet_is_stamped_again(path: Path) -> None:
    """A first live start stopped by a missing permission; the user makes a new key."""
    store = opened(path)
    claim(store, LIVE)
    store.set_nonce_floor(key_id(LIVE_KEY), T0)  # its probes signed, nothing more
    new_key = StoreOwner.of("live", KRAKEN, OTHER_KEY)
    with capture_logs() as events:
        claim(store, new_key)
    assert read_owner(store) == new_key
    (stamped,) = events
    assert stamped["event"] == "store_stamped" and stamped["previous"] == LIVE.describe()
    store.close()


def test_an_unstamped_empty_store_is_stamped(path: Path) -> None:
    opened(path).close()  # an older krakenbot created it and never wrote
    store = opened(path)
    claim(store, PAPER)
    assert read_owner(store) == PAPER
    store.close()


def test_an_unstamped_store_only_this_live_key_signed_with_is_adopted(path: Path) -> None:
    store = opened(path)
    record_history(store, LIVE_KEY)
    with capture_logs() as events:
        claim(store, LIVE)
    assert read_owner(store) == LIVE
    (adopted,) = [e for e in events if e["event"] == "store_adopted"]
    assert adopted["log_level"] == "warning"
    assert (adopted["orders"], adopted["fills"], adopted["owner"]) == (1, 1, LIVE.describe())
    store.close()


@pytest.mark.parametrize(
    ("signers", "owner", "why"),
    [
        ((LIVE_KEY, "a-paper-simulator-key"), LIVE, "1 other API key(s) signed with it"),
        (("a-paper-simulator-key",), LIVE, "1 other API key(s) signed with it"),
        ((), LIVE, "this key never signed with it"),
        ((LIVE_KEY,), PAPER, "paper mode adopts no store with history"),
    ],
)
def test_an_unstamped_store_with_history_that_may_be_anothers_is_refused(
    path: Path, signers: tuple[str, ...], owner: StoreOwner, why: str
) -> None:
    store = opened(path)
    record_history(store, *signers)
    with pytest.raises(StoreError) as caught:
        claim(store, owner)
    message = str(caught.value)
    assert f"store {path} has no owner stamp" in message
    assert "holds 1 orders and 1 fills" in message and why in message
    assert f"this run is {owner.describe()}" in message
    assert read_owner(store) is None  # left as it was for a human to decide
    store.close()


def test_the_store_and_its_folder_are_private_to_their_owner(path: Path, umask: None) -> None:
    store = opened(path)
    store.set_meta("x", "y")  # a write: the WAL and its index exist now
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in (path.parent, path, path.with_name("bot.db-wal"), path.with_name("bot.db-shm"))
    }
    store.close()
    assert modes == {"data": 0o700, "bot.db": 0o600, "bot.db-wal": 0o600, "bot.db-shm": 0o600}


def test_an_existing_folder_and_file_keep_their_modes(tmp_path: Path, umask: None) -> None:
    """The modes are for what the store creates; a folder the user made is theirs."""
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o750)
    Store.open(folder / "bot.db").close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "bot.db").stat().st_mode) == 0o600
