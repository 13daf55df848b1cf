"""``route_market``: the book update written out first, against ``_route``, the general
dispatch it skips: the same marks, the same calls to every runner, in the same order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from bot.execution.pnl import PositionBook
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.kraken.instruments import InstrumentTable
from bot.kraken.protocol import BookFrame, TradeFrame
from bot.market.book import Book
from bot.market.feed import BookInvalid, BookUpdated, BookValid
from bot.strategy.desk import Desk
from bot.strategy.order_path import _route, route_market
from tests.unit.test_book import BTC


@dataclass(frozen=True, slots=True)
class LateUpdate(BookUpdated):
    """A subclass: not the written-out case, ``_route``'s ``isinstance`` takes it."""


class Recorder:
    """A runner's event methods, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def book(self, view: Any) -> None:
        self.calls.append(("book", view))

    def trades(self, frame: TradeFrame) -> None:
        self.calls.append(("trades", frame))

    def ticker(self, ticker: Any) -> None:
        self.calls.append(("ticker", ticker))

    def book_invalid(self, symbol: str) -> None:
        self.calls.append(("invalid", symbol))

    def book_valid(self, symbol: str) -> None:
        self.calls.append(("valid", symbol))


def desk_with(book: Book) -> tuple[Desk, ReadinessGate, list[Recorder]]:
    clock = FakeClock()
    positions = PositionBook(clock)
    desk = Desk(
        risk=RiskGate(clock, positions), positions=positions,
        instruments=InstrumentTable([BTC]), books=lambda: {"BTC/USD": book}, clock=clock,
    )  # fmt: skip
    runners = [Recorder(), Recorder()]
    for i, runner in enumerate(runners):
        desk.runners[f"r{i}"] = runner  # type: ignore[assignment]
    return desk, ReadinessGate(clock=clock), runners


LEVELS = st.lists(st.tuples(st.integers(990, 1030), st.integers(0, 3)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 6), LEVELS, LEVELS), min_size=1, max_size=15))
def test_route_market_does_what_route_does(
    steps: list[tuple[int, list[tuple[int, int]], list[tuple[int, int]]]],
) -> None:
    book = Book(BTC, 10)
    fast, fast_gate, fast_runners = desk_with(book)
    ref, ref_gate, ref_runners = desk_with(book)
    for kind, bids, asks in steps:
        book.apply(BookFrame("BTC/USD", kind == 0, tuple(bids), tuple(asks), 0, "t"))
        book._valid = kind != 1
        event: object = (
            BookUpdated("BTC/USD", book, kind == 0),
            BookUpdated("BTC/USD", book, False),
            LateUpdate("BTC/USD", book, False),
            BookInvalid("BTC/USD", "checksum mismatch"),
            BookValid("BTC/USD"),
            TradeFrame(False, ()),
            BookUpdated("BTC/USD", book, False),
        )[kind]
        route_market(fast, fast_gate, event)
        _route(ref, ref_gate, event)
        assert [r.calls for r in fast_runners] == [r.calls for r in ref_runners]
        assert fast.marks._cache == ref.marks._cache
        assert fast.marks.mids() == ref.marks.mids()
    assert any(r.calls for r in fast_runners)
