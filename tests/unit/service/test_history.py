"""The charts' series: sampled per picture, aligned on one time axis, thinned when full."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.core.clock import FakeClock
from bot.execution.pnl import PositionBook
from bot.service.dashboard.history import History, sample
from bot.service.observe import Observation
from tests.unit.service.helpers import BTC, T0, S, fill, order, picture


def test_a_sample_holds_equity_pnl_mid_our_quotes_and_inventory() -> None:
    book = PositionBook(FakeClock(T0))
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("0.5"), BTC.price("30000.0"), strategy="mm")
    book.mark("BTC/USD", Decimal("30010.0"))
    obs = picture(
        book=book, balances={"USD": Decimal(100)},
        open_orders=(order(1, "buy", "29990.0"), order(2, "sell", "30020.0")),
    )  # fmt: skip
    values = sample(obs)
    assert values["pnl:USD"] == 5.0 and values["today:USD"] == 5.0
    assert values["equity:USD"] == 100.0  # no BTC balance polled
    assert values["mid:BTC/USD"] == 30000.05
    assert values["bid:BTC/USD"] == 29990.0 and values["ask:BTC/USD"] == 30020.0
    assert values["inv:BTC/USD"] == 0.5
    assert values["bid:ETH/USD"] is None and values["inv:ETH/USD"] == 0.0


def test_series_stay_aligned_when_one_appears_later() -> None:
    history = History()
    history.add(picture(at_ns=T0, balances={}))
    history.add(picture(at_ns=T0 + S, balances={"USD": Decimal(5)}))
    body = history.json()
    assert body["t"] == [T0 // 1_000_000, (T0 + S) // 1_000_000]
    assert body["series"]["equity:USD"] == [None, 5.0]
    assert all(len(v) == 2 for v in body["series"].values())


def test_a_full_history_keeps_every_other_point_and_doubles_its_stride() -> None:
    history = History(capacity=4)
    times = []
    for k in range(4):
        point, _ = history.add(picture(at_ns=T0 + k * S))
        assert point is not None
        times.append(point.t_ms)
    assert history.epoch == 1 and history.stride == 2
    assert history.json()["t"] == [times[1], times[3]]  # the newest kept
    sampled = [history.add(picture(at_ns=T0 + k * S))[0] for k in range(4, 8)]
    assert [p is not None for p in sampled] == [False, True, False, True]
    assert len(history) == 2 + 2 - 2  # full again at 4: thinned to 2
    assert history.epoch == 2 and history.stride == 4


def test_fills_are_markers_per_symbol_the_recorded_ones_first() -> None:
    history = History(fills_per_symbol=2)
    old = fill(1, ts_ns=T0 - 60 * S)
    _, new = history.add(picture(fills=[old]))
    assert new == []  # the record before the session: seeded, not "new"
    _, new = history.add(picture(fills=[old, fill(2)], new_fills=[fill(2)]))
    assert [f["price"] for f in new] == [30000.0]
    history.add(picture(new_fills=[fill(3, "sell", "30001.0")]))
    kept = history.json()["fills"]["BTC/USD"]
    assert [f["side"] for f in kept] == ["buy", "sell"]  # the oldest fell out


def test_a_starting_picture_samples_nothing() -> None:
    history = History()
    assert history.add(Observation(T0, False, False, (), {})) == (None, [])
    assert history.json()["t"] == []


def test_capacity_must_hold_two_points() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        History(capacity=1)
