"""The per-symbol book: levels, price-time priority, STP, change records."""

from __future__ import annotations

import itertools

from bot.sim.matching import Book, Order

_ids = itertools.count(1)


def order(side: str, price: int | None, qty: int, account: str = "a", **kw: object) -> Order:
    return Order(
        txid=f"O{next(_ids)}",
        account=account,
        symbol="BTC/USD",
        side=side,  # type: ignore[arg-type]
        ord_type="limit" if price is not None else "market",
        price=price,
        qty=qty,
        opentm=0,
        status="open",
        **kw,  # type: ignore[arg-type]
    )


def test_best_prices_and_depth_are_sorted_best_first() -> None:
    book = Book("BTC/USD")
    for p in (100, 102, 101):
        book.rest(order("buy", p, 1))
    for p in (105, 103, 104):
        book.rest(order("sell", p, 2))
    assert book.best_bid() == 102
    assert book.best_ask() == 103
    assert book.depth("bid") == [(102, 1), (101, 1), (100, 1)]
    assert book.depth("ask", 2) == [(103, 2), (104, 2)]
    assert book.level_count("ask") == 3


def test_level_aggregate_is_kept_and_changes_are_coalesced() -> None:
    book = Book("BTC/USD")
    a, b = order("buy", 100, 3), order("buy", 100, 4)
    book.rest(a)
    book.rest(b)
    assert book.level_qty("bid", 100) == 7
    assert book.drain_changes() == [("bid", 100, 7)]
    book.shrink(b, 1)
    book.unrest(a)
    assert book.drain_changes() == [("bid", 100, 1)]
    book.unrest(b)
    assert book.drain_changes() == [("bid", 100, 0)]
    assert book.best_bid() is None
    assert book.drain_changes() == []


def test_match_fills_in_price_then_time_order_at_maker_prices() -> None:
    book = Book("BTC/USD")
    first, second = order("sell", 101, 2, "m1"), order("sell", 101, 2, "m2")
    cheaper = order("sell", 100, 1, "m3")
    for o in (first, second, cheaper):
        book.rest(o)
    book.drain_changes()
    taker = order("buy", 101, 4, "t")
    res = book.match(taker, 101, exempt="~market")
    assert [(m.txid, p, q) for m, p, q in res.fills] == [
        (cheaper.txid, 100, 1),
        (first.txid, 101, 2),
        (second.txid, 101, 1),
    ]
    assert taker.filled == 0  # the caller applies taker fills
    assert second.filled == 1 and second.remaining == 1
    assert book.queue("ask", 101) == [second]
    assert sorted(book.drain_changes()) == [("ask", 100, 0), ("ask", 101, 1)]


def test_match_stops_at_the_limit_price() -> None:
    book = Book("BTC/USD")
    book.rest(order("sell", 100, 1, "m"))
    book.rest(order("sell", 102, 1, "m"))
    res = book.match(order("buy", 101, 5, "t"), 101, exempt="~market")
    assert [(p, q) for _, p, q in res.fills] == [(100, 1)]
    assert book.best_ask() == 102


def test_market_taker_sweeps_any_price() -> None:
    book = Book("BTC/USD")
    book.rest(order("buy", 100, 1, "m"))
    book.rest(order("buy", 90, 1, "m"))
    res = book.match(order("sell", None, 5, "t"), None, exempt="~market")
    assert [(p, q) for _, p, q in res.fills] == [(100, 1), (90, 1)]
    assert book.best_bid() is None


def test_stp_cancel_newest_stops_the_taker_and_keeps_the_maker() -> None:
    book = Book("BTC/USD")
    other, mine = order("sell", 100, 1, "x"), order("sell", 100, 1, "me")
    book.rest(other)
    book.rest(mine)
    res = book.match(order("buy", 100, 5, "me"), 100, exempt="~market")
    assert [m.account for m, _, _ in res.fills] == ["x"]
    assert res.taker_stopped and not res.stp_cancelled
    assert book.queue("ask", 100) == [mine]


def test_stp_cancel_oldest_removes_own_maker_and_goes_on() -> None:
    book = Book("BTC/USD")
    mine, other = order("sell", 100, 1, "me"), order("sell", 100, 1, "x")
    book.rest(mine)
    book.rest(other)
    taker = order("buy", 100, 5, "me", stptype="cancel-oldest")
    res = book.match(taker, 100, exempt="~market")
    assert res.stp_cancelled == [mine]
    assert [m.account for m, _, _ in res.fills] == ["x"]
    assert not res.taker_stopped
    assert book.best_ask() is None


def test_stp_cancel_both() -> None:
    book = Book("BTC/USD")
    mine, other = order("sell", 100, 1, "me"), order("sell", 100, 1, "x")
    book.rest(mine)
    book.rest(other)
    res = book.match(order("buy", 100, 5, "me", stptype="cancel-both"), 100, exempt="~market")
    assert res.stp_cancelled == [mine] and res.taker_stopped and not res.fills
    assert book.queue("ask", 100) == [other]
    assert book.level_qty("ask", 100) == 1


def test_exempt_account_trades_with_itself() -> None:
    book = Book("BTC/USD")
    book.rest(order("sell", 100, 1, "~market"))
    res = book.match(order("buy", 100, 1, "~market"), 100, exempt="~market")
    assert len(res.fills) == 1 and not res.taker_stopped


def test_preview_matches_what_match_does_without_changing_the_book() -> None:
    book = Book("BTC/USD")
    book.rest(order("sell", 100, 2, "x"))
    book.rest(order("sell", 101, 2, "me"))
    book.rest(order("sell", 102, 2, "x"))
    kw = {"account": "me", "exempt": "~market"}
    assert book.preview("buy", None, 3, stptype="cancel-newest", **kw) == (2, 200)
    assert book.preview("buy", None, 3, stptype="cancel-oldest", **kw) == (3, 302)
    assert book.preview("buy", 100, 3, stptype="cancel-oldest", **kw) == (2, 200)
    assert book.level_count("ask") == 3 and book.drain_changes() != []


def test_crosses() -> None:
    book = Book("BTC/USD")
    assert not book.crosses("buy", 10**9)
    book.rest(order("sell", 100, 1))
    book.rest(order("buy", 90, 1))
    assert book.crosses("buy", 100) and not book.crosses("buy", 99)
    assert book.crosses("sell", 90) and not book.crosses("sell", 91)


def test_many_levels_insert_and_remove_keep_order() -> None:
    book = Book("BTC/USD")
    orders = [order("sell", p, 1) for p in (7, 3, 9, 1, 5, 8, 2, 6, 4)]
    for o in orders:
        book.rest(o)
    for o in orders[::2]:
        book.unrest(o)
    assert [p for p, _ in book.depth("ask")] == [1, 3, 6, 8]
