"""Marks under a guard: ``PositionBook.guard_marks`` and the risk gate that sets it.

A mark inside its bounds leaves ``revision`` as it is, so the risk gate's last evaluation
and its lanes hold while a market maker's inventory is marked tick after tick. The one
thing that must never happen: a mark that could take a guarded daily PnL down by more
than its room (for the gate: below a daily loss limit) without moving ``revision``.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from bot.execution.pnl import NS_PER_DAY, PositionBook, utc_day
from bot.execution.risk import RiskGate, RiskLimits, TradingState
from bot.kraken.instruments import Instrument

D = Decimal
BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
ETH = Instrument("ETH/USD", "ETH", "USD", price_precision=2, qty_precision=8)
ETHBTC = Instrument("ETH/BTC", "ETH", "BTC", price_precision=5, qty_precision=8)
INSTRUMENTS = (BTC, ETH, ETHBTC)
MIDS = {"BTC/USD": D("30000"), "ETH/USD": D("2000"), "ETH/BTC": D("0.06")}
STRATEGIES = ("mm", "arb")
# 2023-11-14 12:00:00 UTC: half a day before midnight
NOON = utc_day(1_700_000_000 * 10**9) * NS_PER_DAY + 12 * 3600 * 10**9


def long_btc(qty: str = "0.5", price: str = "30000.0") -> tuple[FakeClock, PositionBook]:
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty(qty), BTC.price(price), strategy="mm")
    book.mark("BTC/USD", D(price))
    return clock, book


def test_a_mark_inside_the_bounds_keeps_the_revision_and_one_outside_moves_it() -> None:
    _, book = long_btc()
    book.guard_marks({(None, "USD"): D(100)}, book.revision)  # 0.5 BTC: 200 USD a BTC
    guarded = book.revision
    for mark in ("30100", "29900", "29800", "35000"):  # the bound itself is inside
        book.mark("BTC/USD", D(mark))
        assert book.revision == guarded, mark
    assert book.daily_pnl("USD") == D(2500)  # figures are read at the current mark
    book.mark("BTC/USD", D("29799.9"))  # 100.05 USD below the guard's mark
    assert book.revision == guarded + 1
    book.mark("BTC/USD", D("29900"))  # the guard ended with the revision it held
    assert book.revision == guarded + 2


def test_a_short_is_bounded_above() -> None:
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    book.apply_fill("ETH/USD", ETH, "sell", ETH.qty("2"), ETH.price("2000"), strategy="mm")
    book.mark("ETH/USD", D(2000))
    book.guard_marks({("mm", "USD"): D(50)}, book.revision)  # 25 USD an ETH
    guarded = book.revision
    book.mark("ETH/USD", D(1))
    book.mark("ETH/USD", D(2025))
    assert book.revision == guarded
    book.mark("ETH/USD", D("2025.01"))
    assert book.revision == guarded + 1


def test_a_room_is_shared_among_its_symbols_and_scopes_narrow_each_other() -> None:
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1"), BTC.price("30000"), strategy="mm")
    book.apply_fill("ETH/USD", ETH, "buy", ETH.qty("10"), ETH.price("2000"), strategy="arb")
    book.mark("BTC/USD", D(30000))
    book.mark("ETH/USD", D(2000))
    # The total's 200 USD: 100 for each symbol. mm's own 40: all on BTC, the narrower.
    book.guard_marks({(None, "USD"): D(200), ("mm", "USD"): D(40)}, book.revision)
    guarded = book.revision
    book.mark("BTC/USD", D(29960))
    book.mark("ETH/USD", D(1990))  # 10 USD an ETH × 10
    assert book.revision == guarded
    assert book.daily_pnl("USD") == D(-140)  # both at their bounds: within the 200
    book.mark("ETH/USD", D("1989.99"))
    assert book.revision == guarded + 1


def test_what_no_room_names_is_free_and_what_has_no_mark_is_not_guarded() -> None:
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1"), BTC.price("30000"), strategy="mm")
    book.apply_fill("ETH/BTC", ETHBTC, "buy", ETHBTC.qty("1"), ETHBTC.price("0.06"))
    book.mark("BTC/USD", D(30000))  # ETH/BTC has no mark yet: at its fill price
    book.guard_marks({(None, "BTC"): D("0.5")}, book.revision)  # no room for USD at all
    guarded = book.revision
    book.mark("BTC/USD", D(1))  # no USD PnL is guarded: BTC/USD moves freely
    assert book.revision == guarded
    book.mark("ETH/BTC", D("0.06"))  # its first mark: not guarded, even at the fill price
    assert book.revision == guarded + 1


def test_a_fill_a_new_day_and_a_stale_revision_end_or_refuse_a_guard() -> None:
    clock, book = long_btc()
    book.guard_marks({(None, "USD"): D(1000)}, book.revision)
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("0.1"), BTC.price("30000"), strategy="mm")
    after_fill = book.revision
    book.mark("BTC/USD", D(29999))
    assert book.revision == after_fill + 1  # the fill ended the guard

    book.guard_marks({(None, "USD"): D(1000)}, book.revision - 1)  # read before that mark
    before = book.revision
    book.mark("BTC/USD", D(29998))
    assert book.revision == before + 1  # not set: its rooms were read at another revision

    book.guard_marks({(None, "USD"): D(1000)}, book.revision)
    clock.advance(13 * 3600)  # past midnight: a new baseline, and the guard ends
    rolled = book.day_number and book.revision
    book.mark("BTC/USD", D(29997))
    assert book.revision == rolled + 1


# -- the property: no guarded PnL falls by more than its room behind an unmoved revision ----

fills = st.lists(
    st.tuples(
        st.sampled_from(STRATEGIES),
        st.sampled_from(INSTRUMENTS),
        st.sampled_from(("buy", "sell")),
        st.integers(1, 300),  # hundredths of a unit
        st.integers(-20, 20),  # percent off the mid
    ),
    min_size=1,
    max_size=6,
)
# Each mark: a symbol and a move of its mid in basis points (mostly small, a few large).
marks = st.lists(
    st.tuples(
        st.sampled_from(INSTRUMENTS),
        st.one_of(st.integers(-30, 30), st.integers(-3000, 3000)),
    ),
    max_size=25,
)


def _filled(book: PositionBook, trades: list[tuple[str, Instrument, str, int, int]]) -> None:
    for strategy, inst, side, hundredths, off in trades:
        mid = MIDS[inst.symbol]
        price = inst.price(mid * (100 + off) / 100)
        book.apply_fill(
            inst.symbol, inst, side, inst.qty(D(hundredths) / 100), price, strategy=strategy
        )  # type: ignore[arg-type]
    for symbol, mid in MIDS.items():
        book.mark(symbol, mid)


@settings(max_examples=300, deadline=None)
@given(
    trades=fills,
    rooms=st.dictionaries(
        st.tuples(st.sampled_from((None, *STRATEGIES)), st.sampled_from(("USD", "BTC"))),
        st.decimals(0, 5000, places=4, allow_nan=False, allow_infinity=False),
        max_size=4,
    ),
    moves=marks,
)
def test_no_guarded_pnl_falls_past_its_room_behind_an_unmoved_revision(
    trades: list[tuple[str, Instrument, str, int, int]],
    rooms: dict[tuple[str | None, str], Decimal],
    moves: list[tuple[Instrument, int]],
) -> None:
    book = PositionBook(FakeClock(start_ns=NOON))
    _filled(book, trades)
    start = {key: book.daily_pnl(key[1], key[0]) for key in rooms}
    book.guard_marks(rooms, book.revision)
    guarded = book.revision
    held = 0
    for inst, bp in moves:
        last = book._marks[inst.symbol]
        book.mark(inst.symbol, last * (10_000 + bp) / 10_000)
        if book.revision != guarded:
            break
        held += 1
        for (scope, quote), room in rooms.items():
            assert book.daily_pnl(quote, scope) >= start[(scope, quote)] - room
    event(f"marks held by the guard: {min(held, 5)}{'+' if held >= 5 else ''}")


@settings(max_examples=300, deadline=None)
@given(
    trades=fills,
    # Each scope's limit: None, or its room at the evaluation (the limit less the loss
    # it had then), in quote units: a few to a few hundred, so marks cross it.
    rooms=st.tuples(
        st.one_of(st.none(), st.decimals(0, 300, places=2)),  # the bot's
        st.one_of(st.none(), st.decimals(0, 300, places=2)),  # mm's
    ),
    moves=marks,
)
def test_the_gate_never_holds_a_breach_behind_its_last_evaluation(
    trades: list[tuple[str, Instrument, str, int, int]],
    rooms: tuple[Decimal | None, Decimal | None],
    moves: list[tuple[Instrument, int]],
) -> None:
    """After every mark, either the revision the gate evaluated at moved (its next check
    evaluates again), or no limit it has not latched is breached: the guard never hides a
    halt that an evaluation at this mark would make."""
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    _filled(book, trades)

    def limit(scope: str | None, room: Decimal | None) -> RiskLimits | None:
        if room is None:
            return None
        worst = min((*book.daily_pnls(scope).values(), D(0)))
        return RiskLimits(daily_loss_limit=room - worst)  # ``room`` above the worst PnL

    bot, mm = limit(None, rooms[0]), limit("mm", rooms[1])
    gate = RiskGate(clock, book, bot or RiskLimits(), {"mm": mm} if mm else {})
    assert gate.evaluate() == ()
    scopes = [(None, bot), ("mm", mm)]
    for inst, bp in moves:
        last = book._marks[inst.symbol]
        book.mark(inst.symbol, last * (10_000 + bp) / 10_000)
        if book.revision != gate._evaluated[0]:  # type: ignore[index]
            event("a mark moved the revision")
            gate.evaluate()  # as the next check does
            continue
        event("a mark held by the guard")
        for scope, lim in scopes:
            if lim is None or lim.daily_loss_limit is None:
                continue
            if gate._loss_latch.get(scope) == book.day_number:
                continue  # halted today: its loss halts nothing more (``evaluate`` skips it)
            for quote, pnl in book.daily_pnls(scope).items():
                assert pnl >= -lim.daily_loss_limit, (scope, quote, pnl)


def test_a_loss_already_taken_narrows_the_guard() -> None:
    """The room is the limit less today's loss so far, not the limit."""
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    gate = RiskGate(clock, book, RiskLimits(daily_loss_limit=D(1000)), {})
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1"), BTC.price("30500"), strategy="mm")
    book.mark("BTC/USD", D(30000))  # 500 USD down already
    assert gate.evaluate() == ()
    evaluated = book.revision
    book.mark("BTC/USD", D(29500))  # 1000 down: at the limit
    assert book.revision == evaluated
    book.mark("BTC/USD", D("29499.9"))
    assert book.revision == evaluated + 1
    (halt,) = gate.evaluate()
    assert (halt.to_state, halt.reason) == (TradingState.HALTED, "daily_loss")


def test_a_held_position_marked_tick_after_tick_keeps_its_lane() -> None:
    """The point of the guard: a market maker holding inventory, its mark moving a little
    on every tick, is decided on its lane (no evaluation, no exact check), until a mark
    could reach its daily loss limit."""
    clock = FakeClock(start_ns=NOON)
    book = PositionBook(clock)
    gate = RiskGate(clock, book, RiskLimits(daily_loss_limit=D(1000)), {})
    book.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1"), BTC.price("30000"), strategy="mm")
    book.mark("BTC/USD", D(30000))
    mids = {"BTC/USD": D(30000)}

    def place() -> bool:
        return gate.accept_place("mm", BTC, "buy", BTC.qty("0.01"), BTC.price("29000"), mids, {}, 0)

    assert not place()  # the fill is not evaluated yet: the exact path's
    gate.evaluate()
    evaluated = gate._evaluated
    for tick in range(200):
        book.mark("BTC/USD", D(30000) + D(tick % 7) - 3)
        assert place(), tick
    assert gate._evaluated == evaluated  # never evaluated again
    book.mark("BTC/USD", D(29000))  # 1000 USD down: at the limit, not past it
    assert place()
    book.mark("BTC/USD", D("28999.9"))  # past it: the revision moves, the exact path decides
    assert not place()
    (halt,) = gate.evaluate()
    assert (halt.to_state, halt.reason) == (TradingState.HALTED, "daily_loss")
