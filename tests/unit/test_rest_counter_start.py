"""What a new process assumes of Kraken's REST counter (issue 10 item 2): the store knows
whether the previous process stopped cleanly (its recorded value) or not (its nonce mark).

A real SQLite store in a temporary file and a real ``KrakenRestClient`` (it sends nothing
here) on a ``FakeClock``; ``bot.service.wiring`` reads and writes the store's meta records.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.kraken.nonce import key_id
from bot.kraken.rest import KrakenRestClient
from bot.service.wiring import assume_rest_counter, record_rest_counter
from bot.store import Store

KEY = "an-api-key"
SECRET = base64.b64encode(bytes(64)).decode()
KID = key_id(KEY)
S = 10**9


def client(clock: FakeClock) -> KrakenRestClient:
    return KrakenRestClient(
        "http://127.0.0.1:9", clock=clock, api_key=KEY, api_secret=SECRET, tier="starter",
        dedicated=False,
    )  # fmt: skip


def test_first_use_then_clean_stop_then_unclean_stop(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store.open(tmp_path / "bot.db")
    try:
        # Never used with this store: an empty counter, and a "running" mark left.
        first = client(clock)
        assert assume_rest_counter(store, first, clock, KID) == 0.0
        assert store.get_meta(f"rest_counter.{KID}") == "running"
        first.rest_counter.charge(9.0, clock.monotonic())
        record_rest_counter(store, first, clock, KID)  # a clean stop, after the last call

        # Restarted 3 s later: what the last one recorded, decayed (0.33/s).
        clock.advance(3.0)
        second = client(clock)
        assumed = assume_rest_counter(store, second, clock, KID)
        assert assumed == pytest.approx(9.0 - 0.99)
        assert second.rest_counter.value(clock.monotonic()) == pytest.approx(assumed)
        assert store.get_meta(f"rest_counter.{KID}") == "running"

        # The second one is killed (no record): the third assumes a full counter at the
        # last moment a call could have left, the nonce mark it persisted.
        store.set_nonce_floor(KID, clock.time_ns() - 6 * S)
        clock.advance(0.5)
        third = client(clock)
        assert assume_rest_counter(store, third, clock, KID) == pytest.approx(15 - 6.5 * 0.33)
        # A mark ahead of the clock (nonces run up to 10 s ahead): full now.
        store.set_nonce_floor(KID, clock.time_ns() + 8 * S)
        assert assume_rest_counter(store, client(clock), clock, KID) == 15.0
        # Long enough after the mark, nothing is left whatever happened.
        clock.advance(60)
        assert assume_rest_counter(store, client(clock), clock, KID) == 0.0
    finally:
        store.close()


def test_an_unreadable_record_counts_as_an_unclean_stop(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store.open(tmp_path / "bot.db")
    try:
        store.set_nonce_floor(KID, clock.time_ns())
        for junk in ('{"value": "x"}', "[1, 2]", "{", '{"at_ns": 1}'):
            store.set_meta(f"rest_counter.{KID}", junk)
            assert assume_rest_counter(store, client(clock), clock, KID) == 15.0
        # Another key's record is not this key's.
        other = key_id("another key")
        store.set_meta(f"rest_counter.{other}", '{"value": 0.0, "at_ns": 0}')
        assert assume_rest_counter(store, client(clock), clock, KID) == 15.0
    finally:
        store.close()
