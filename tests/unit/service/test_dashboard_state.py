"""The dashboard's JSON from one picture: exact figures written at their precision."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from bot.core.clock import FakeClock
from bot.core.log import Secret
from bot.execution.orders import OrderState
from bot.execution.pnl import PositionBook
from bot.service.dashboard.figures import distance, equity, held, our_quotes
from bot.service.dashboard.state import build_status
from bot.service.fmt import Places, at_least, fixed, money, plain, signed
from bot.service.observe import Observation, Pnl
from tests.unit.service.helpers import BTC, ETH, INSTRUMENTS, T0, S, fill, order, picture, strategy

READY = {"ready": True, "failing": [], "checks": {"books": {"ok": True, "detail": ""}}}
HEALTH = {"healthy": True, "loop_lag_s": 0.001, "loop_lag_max_s": 0.002, "max_loop_lag_s": 1.0,
          "uptime_s": 12.5}  # fmt: skip
FACTS = {"mode": "paper", "venue": "http://127.0.0.1:1", "strategies": "mm", "symbols": "BTC/USD"}


def status(obs: Observation, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"ready": READY, "health": HEALTH, "facts": FACTS, "control": False}
    args.update(kw)
    body = build_status(obs, **args)
    orjson.dumps(body)  # JSON-ready, every value
    return body


# --------------------------------------------------------------------------- formatting


def test_fixed_rounds_half_even_never_shows_minus_zero_and_groups_money() -> None:
    assert fixed(Decimal("1.25"), 1) == "1.2" and fixed(Decimal("1.35"), 1) == "1.4"
    assert fixed(Decimal("-0.004"), 2) == "0.00"
    assert at_least(Decimal("30000.05"), 1) == "30000.05" and at_least(Decimal(3), 1) == "3.0"
    assert money(Decimal("-1234567.891"), 2) == "-1,234,567.89"
    assert plain(Decimal("0.10000")) == "0.1" and plain(Decimal(0)) == "0"
    assert signed("1.00") == "+1.00" and signed("-1.00") == "-1.00" and signed("0.00") == "0.00"


def test_places_come_from_the_traded_instruments() -> None:
    places = Places.of(INSTRUMENTS)
    assert places.of_money("USD") == 2  # ETH/USD's two decimals; at least two
    assert places.of_money("EUR") == 2  # nothing traded in it: the minimum
    assert places.amount("BTC", Decimal("0.5")) == "0.50000000"
    assert places.amount("USD", Decimal("100000")) == "100,000.00"
    assert places.amount("DOT", Decimal("1.50")) == "1.5"


# --------------------------------------------------------------------------- figures


def test_equity_values_each_base_at_its_mid_in_its_quote() -> None:
    obs = picture(balances={"USD": Decimal(1000), "BTC": Decimal("0.5"), "ETH": Decimal(2)})
    assert equity(obs) == {"USD": Decimal(1000) + Decimal("15000.025") + Decimal("4000.010")}
    assert equity(picture(balances={})) == {}  # not polled yet: unknown, not zero
    no_mid = picture(balances={"USD": Decimal(1), "BTC": Decimal(1)}, mids={})
    assert equity(no_mid) == {"USD": Decimal(1)}


def test_our_open_orders_hold_the_quote_for_buys_and_the_base_for_sells() -> None:
    orders = (
        order(1, "buy", "30000.0", "0.02", filled="0.01"),  # 0.01 left × 30000
        order(2, "sell", "30010.0", "0.03"),
        order(3, "buy", "2000.00", "1", inst=ETH),
        order(4, "buy", None, "1"),  # a market order: no price, nothing counted
    )
    pairs = {s: (i.base, i.quote) for s, i in INSTRUMENTS.items()}
    assert held(orders, pairs) == {"USD": Decimal("2300.0000"), "BTC": Decimal("0.03")}
    assert our_quotes(orders) == {
        "BTC/USD": (Decimal("30000.0"), Decimal("30010.0")),
        "ETH/USD": (Decimal("2000.00"), None),
    }
    gap = distance(orders[1], Decimal("30000.05"))
    assert gap is not None and gap[0] == Decimal("9.95")
    assert distance(orders[3], Decimal(1)) is None and distance(orders[0], None) is None


# --------------------------------------------------------------------------- the status


def test_a_running_picture_becomes_every_section_formatted_at_its_precision() -> None:
    book = PositionBook(FakeClock(T0))
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("0.02"), BTC.price("29990.0"),
                    fee=Decimal("0.15"), fee_asset="USD", strategy="mm", ts_ns=T0)  # fmt: skip
    book.mark("BTC/USD", Decimal("30000.05"))
    opened = order(7, "sell", "30010.0", "0.01", created_ns=T0 - 90 * S)
    fills = [fill(1, ts_ns=T0 - 5 * S), fill(2, "sell", "30001.5", ts_ns=T0 - 2 * S)]
    metrics = {
        "fills": [(("mm", "BTC/USD", "buy", "m"), 3.0)],
        "strategy_metric": [(("mm", "spread_bps", "BTC/USD"), 2.5)],
        "rejections": [
            (("desk", "mm", "amend", "rate_limit"), 4.0),
            (("risk", "mm", "place", "max_position"), 9.0),
            (("exchange", "mm", "place", "EOrder:Insufficient funds"), 4.0),
        ],
        "deadman_armed": [((), 1.0)],
        "deadman_seconds_to_trigger": [((), 44.0)],
        "feed_connected": [(("public",), 1.0)],
        "feed_frames": [(("public",), 120.0)],
        "book_valid": [(("BTC/USD",), 1.0)],
        "book_spread": [(("BTC/USD",), 0.1)],
        "task_restarts": [(("feed",), 1.0)],
    }
    mm_pnl = Pnl(book.realised("USD", "mm"), book.unrealised("USD", "mm"), book.daily_pnl("USD"))
    obs = picture(
        book=book, metrics=metrics, fills=fills, open_orders=(opened,),
        balances={"USD": Decimal(100000), "BTC": Decimal(1)}, balances_at_ns=T0 - 30 * S,
        strategy_pnl={("mm", "USD"): mm_pnl},
    )  # fmt: skip
    body = status(obs)
    assert body["phase"] == "running" and body["mode"] == "paper" and body["risk"] == "active"
    usd = body["money"][0]
    assert usd["quote"] == "USD" and usd["realised"] == "-0.15"  # the fee
    assert usd["unrealised"] == "+0.20" and usd["total"] == "+0.05" and usd["today"] == "+0.05"
    assert usd["equity"] == "130,000.05"
    (pos,) = body["positions"]
    assert pos["qty"] == "+0.02000000" and pos["avg_price"] == "29990.0"
    assert pos["mark"] == "30000.05"  # a mid: half a tick finer than the pair's prices
    (row,) = body["orders"]
    assert row["price"] == "30010.0" and row["qty"] == "0.01000000" and row["age_s"] == 90.0
    assert row["distance"] == "+10.0" and row["distance_bps"] == "+3.3"  # 9.95 / 30000.05
    assert [f["exec_id"] for f in body["fills"]] == ["EXEC-2", "EXEC-1"]  # newest first
    assert body["fills"][0]["price"] == "30001.5" and body["fills"][0]["age_s"] == 2.0
    assert body["fills"][0]["fee"] == "0.12" and body["fills"][0]["liquidity"] == "maker"
    balances = {r["asset"]: r for r in body["balances"]["rows"]}
    assert balances["BTC"] == {"asset": "BTC", "total": "1.00000000", "held": "0.01000000",
                               "free": "0.99000000"}  # fmt: skip
    assert body["balances"]["age_s"] == 30.0
    (mm,) = body["strategies"]
    assert mm["fills"] == 3 and mm["open_orders"] == 1
    assert mm["pnl"] == [{"quote": "USD", "realised": "-0.15", "unrealised": "+0.20",
                          "today": "+0.05"}]  # fmt: skip
    assert mm["metrics"] == [{"name": "spread_bps", "symbol": "BTC/USD", "kind": "gauge",
                              "value": 2.5}]  # fmt: skip
    rejections = body["rejections"]
    assert rejections["by_reason"][0] == {"reason": "max_position", "count": 9}
    assert [r["count"] for r in rejections["rows"]] == [9, 4, 4]
    health = body["health"]
    assert health["switch"]["armed"] is True and health["switch"]["seconds_to_trigger"] == 44.0
    assert health["feeds"][0]["connected"] is True and health["feeds"][0]["frames"] == 120
    assert health["books"][0]["spread"] == "0.1" and health["books"][0]["mid"] == "30000.05"
    assert health["tasks"] == [{"task": "feed", "restarts": 1}]
    assert health["loop"]["uptime_s"] == 12.5


def test_a_starting_daemon_shows_readiness_and_nothing_else() -> None:
    obs = Observation(T0, False, False, ("books",), {"risk_state": [(("active",), 1.0)]})
    body = status(obs, ready={"ready": False, "failing": ["books"], "checks": {}})
    assert body["phase"] == "starting" and body["ready"] is False and body["failing"] == ["books"]
    assert body["risk"] == "active"  # from the metrics while the desk does not exist
    assert body["positions"] == body["orders"] == body["fills"] == body["strategies"] == []
    assert body["balances"] == {"rows": [], "time": None, "age_s": None}


def test_no_registered_secret_reaches_the_status() -> None:
    secret = Secret("sekrit-value-in-a-detail")
    obs = picture(strategies=[strategy(state="halted", halt_reason=f"boom {secret.reveal()}")],
                  open_orders=(order(1, state=OrderState.UNKNOWN),))  # fmt: skip
    detail = f"token {secret.reveal()} refused"
    ready = {"ready": False, "failing": ["x"], "checks": {"x": {"ok": False, "detail": detail}}}
    text = orjson.dumps(status(obs, ready=ready)).decode()
    assert "sekrit-value" not in text and "***" in text


@pytest.mark.parametrize("control", [True, False])
def test_the_status_says_whether_control_buttons_may_show(control: bool) -> None:
    assert status(picture(), control=control)["control"] == {"enabled": control}
