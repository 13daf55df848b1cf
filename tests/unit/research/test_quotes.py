"""Quotes rebuilt from the lives of limit orders: best bid and ask over time, by hand."""

from __future__ import annotations

from decimal import Decimal

from bot.execution.orders import OrderState
from bot.research.quotes import quotes_from_orders
from bot.research.record import QuoteSample
from tests.unit.research.helpers import BTC, T0, UNIT, order

D = Decimal
F, C, N = OrderState.FILLED, OrderState.CANCELED, OrderState.NEW


def test_best_bid_and_ask_follow_the_orders_lives() -> None:
    orders = [
        order(UNIT, "buy", "1", "100", state=F, created=T0, updated=T0 + 10),
        order(UNIT, "buy", "1", "99", state=C, created=T0 + 5, updated=T0 + 20),
        order(UNIT, "sell", "1", "101", state=N, created=T0, updated=T0 + 1),  # still open
        order(UNIT, "sell", "1", "90", state=OrderState.REJECTED, created=T0 + 2),  # never rested
        order(UNIT, "buy", "1", None, state=F, created=T0 + 3),  # a market order: no quote
    ]
    assert quotes_from_orders(orders, end_ns=T0 + 30) == {
        ("mm", "XYZ/USD"): [
            QuoteSample(T0, D(100), D(101)),
            QuoteSample(T0 + 10, D(99), D(101)),
            QuoteSample(T0 + 20, None, D(101)),
            QuoteSample(T0 + 30, None, None),  # the open order is drawn up to the end
        ]
    }


def test_a_replacement_at_one_instant_leaves_no_gap() -> None:
    orders = [
        order(BTC, "buy", "1", "100.0", state=C, created=T0, updated=T0 + 10),
        order(BTC, "buy", "1", "100.5", state=C, created=T0 + 10, updated=T0 + 20),
    ]
    samples = quotes_from_orders(orders, end_ns=T0 + 20)[("mm", "BTC/USD")]
    assert samples == [
        QuoteSample(T0, D("100.0"), None),
        QuoteSample(T0 + 10, D("100.5"), None),
        QuoteSample(T0 + 20, None, None),
    ]


def test_strategies_quote_separately() -> None:
    orders = [
        order(UNIT, "buy", "1", "100", state=N, created=T0, strategy="a"),
        order(UNIT, "buy", "1", "105", state=N, created=T0, strategy="b"),
    ]
    quotes = quotes_from_orders(orders, end_ns=T0 + 5)
    assert quotes[("a", "XYZ/USD")][0].bid == 100
    assert quotes[("b", "XYZ/USD")][0].bid == 105


def test_an_order_done_as_it_was_placed_never_quoted() -> None:
    orders = [
        order(UNIT, "buy", "1", "100", state=F, created=T0, updated=T0),  # took at once
        order(UNIT, "sell", "1", "101", state=N, created=T0 + 1),
    ]
    assert quotes_from_orders(orders, end_ns=T0 + 5)[("mm", "XYZ/USD")] == [
        QuoteSample(T0 + 1, None, D(101)),
        QuoteSample(T0 + 5, None, None),
    ]
