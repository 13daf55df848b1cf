"""``bot.execution.futures_reports``: Futures' private frames as the engine's reports."""

from __future__ import annotations

from decimal import Decimal

from bot.execution.futures_reports import FuturesReports
from bot.execution.orders import timestamp_ns
from bot.futures.times import rfc3339_ms
from bot.futures.ws_private import FillsFrame, OpenOrderGone, OpenOrderUpdate, WsFill, WsOrder


def ws_order(qty: str, filled: str) -> WsOrder:
    return WsOrder(
        order_id="o-1", cli_ord_id="c-1", symbol="PF_XBTUSD", side="buy", order_type="limit",
        qty=Decimal(qty), filled=Decimal(filled), limit_price=Decimal("50000"),
        stop_price=None, reduce_only=False, trigger_signal=None, time=1_700_000_000_000,
        last_update_time=1_700_000_000_500,
    )  # fmt: skip


def ws_fill(qty: str, remaining: str | None, fill_type: str = "maker") -> WsFill:
    return WsFill(
        fill_id="f-1", order_id="o-1", cli_ord_id="c-1", symbol="PF_XBTUSD", side="buy",
        price=Decimal("50000"), qty=Decimal(qty),
        remaining_order_qty=None if remaining is None else Decimal(remaining),
        fill_type=fill_type, fee_paid=Decimal("0.1"), fee_currency="usd", order_type="lmt",
        time=1_700_000_001_007, seq=None,
    )  # fmt: skip


def test_milliseconds_become_rfc3339_exactly() -> None:
    assert rfc3339_ms(1_700_000_001_007) == "2023-11-14T22:13:21.007Z"
    assert timestamp_ns(rfc3339_ms(1_700_000_001_007)) == 1_700_000_001_007_000_000


def test_a_fill_gets_its_cumulative_size_from_the_order_seen_before() -> None:
    reports = FuturesReports()
    unknown = reports.fills(FillsFrame(False, None, (ws_fill("0.2", "0.8"),))).reports[0]
    assert unknown.cum_qty is None  # the order's size is not known yet
    opened = reports.update(OpenOrderUpdate(ws_order("1", "0"), False, None)).reports[0]
    assert opened.order_status == "new" and opened.cum_qty == 0
    (fill,) = reports.fills(FillsFrame(False, None, (ws_fill("0.2", "0.8"),))).reports
    assert fill.exec_type == "trade" and fill.cum_qty == Decimal("0.2")
    assert fill.exec_id == "f-1" and fill.liquidity_ind == "m"
    assert fill.fees is not None and fill.fees[0].asset == "USD"


def test_leaving_the_book_is_filled_only_on_a_full_fill() -> None:
    reports = FuturesReports()
    done = reports.update(OpenOrderUpdate(ws_order("1", "1"), True, "full_fill")).reports[0]
    assert done.order_status == "filled" and done.cum_qty == 1
    part = reports.update(OpenOrderUpdate(ws_order("1", "0.4"), True, "dead_man_switch"))
    assert part.reports[0].order_status == "canceled" and part.reports[0].cum_qty == Decimal("0.4")
    assert part.reports[0].reason == "dead_man_switch"
    gone = reports.update(OpenOrderGone("o-1", None, "cancelled_by_user")).reports[0]
    assert gone.order_status == "canceled" and gone.cum_qty is None


def test_a_fill_made_by_an_edit_is_a_takers() -> None:
    """Kraken's OpenAPI ``FillJson.fillType``: ``takerAfterEdit`` (an edit that trades at
    once); a liquidation is neither side of a book order of ours."""
    reports = FuturesReports()
    frame = FillsFrame(False, None, (ws_fill("0.2", "0.8", "takerAfterEdit"),))
    assert reports.fills(frame).reports[0].liquidity_ind == "t"
    frame = FillsFrame(False, None, (ws_fill("0.2", "0.8", "liquidation"),))
    assert reports.fills(frame).reports[0].liquidity_ind is None
