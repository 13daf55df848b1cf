"""``PreparedOrder`` decides as ``ctx.place``: the same refusals, the same orders and frames.

Two identical order paths (a real ``ExecutionEngine`` with its pre-trade stage: readiness,
the exchange's state, the rate room and a ``RiskGate`` with random limits; the desk with a
loaded book for the mids) are driven with the same requests, one through ``ctx.place``,
the other through a ``PreparedOrder``; everything each did is recorded and compared.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock
from bot.execution.commands import Command, PlaceOrder
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import Order
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import RECONCILED, ReadinessGate
from bot.execution.risk import RiskGate, RiskLimits
from bot.execution.ws_requests import add_order_frame
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.kraken.protocol import BookFrame
from bot.market.book import Book
from bot.store import Store
from bot.strategy import InvalidIntent, OrderHandle, PreparedOrder
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk

SYMBOL = "BTC/USD"


class _NoVenue:
    """The engine's venue: never reached (the commands' tasks are recorded, not run)."""

    def trading_headroom(self, symbol: str) -> float:
        raise AssertionError("not used")


class RecordingContext(EngineContext):
    """The daemon's context, recording each command submitted and each ``InvalidIntent``."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.events: list[tuple[Any, ...]] = []

    def _submit(self, command: Command) -> bool:
        accepted = super()._submit(command)
        self.events.append(("submit", command, accepted))
        return accepted

    def _invalid(self, action: str, error: InvalidIntent, symbol: str, **fields: Any) -> None:
        self.events.append(("invalid", action, error.reason, str(error), symbol, fields))
        super()._invalid(action, error, symbol, **fields)


@dataclasses.dataclass
class World:
    """What the example draws: the pair, the limits, the states, the book."""

    inst: Instrument
    limits: RiskLimits
    ready: bool
    status: str
    room: float
    best_bid: int


def loaded_books(world: World) -> dict[str, Book]:
    """The world's pair with a book of three levels a side around its best bid."""
    book = Book(world.inst, 10)
    bids = tuple((world.best_bid - i, 1000 + i) for i in range(3))
    asks = tuple((world.best_bid + 1 + i, 1000 + i) for i in range(3))
    crc = book_checksum(sorted(asks), sorted(bids, reverse=True))
    assert book.apply(BookFrame(SYMBOL, True, bids, asks, crc, "t")) is None
    return {SYMBOL: book}


class Path_:
    """One order path, as ``bot.strategy.order_path`` wires it, on a temporary store."""

    def __init__(self, world: World, directory: Path, name: str) -> None:
        clock = self.clock = FakeClock()
        self.store = Store.open(directory / f"{name}.sqlite")
        table = self.table = InstrumentTable([world.inst])
        books = loaded_books(world)
        positions = PositionBook(clock)
        risk = RiskGate(clock, positions, world.limits, {"s": world.limits})
        desk = Desk(
            risk=risk, positions=positions, instruments=table, books=lambda: books, clock=clock
        )
        gate = ReadinessGate(clock=clock)
        pretrade = PreTrade(
            gate, risk=risk, mids=desk.marks.live,
            room=RateRoom(lambda _symbol: world.room, lambda: 20.0),
            exchange_status=lambda: world.status, on_transitions=desk.router.apply_transitions,
        )  # fmt: skip
        self.spawned = 0
        engine = ExecutionEngine(
            _NoVenue(), self.store, table, clock, readiness=gate,  # type: ignore[arg-type]
            pretrade=pretrade, spawn=self._spawn, on_order=desk.router.on_order,
            on_refused=desk.router.on_refused,
        )  # fmt: skip
        engine.prepare_ids(["s"])
        if world.ready:
            gate.set(RECONCILED)
        self.ctx = RecordingContext(engine, desk, "s", (SYMBOL,))
        desk.add_context(self.ctx)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> bool:
        coro.close()  # the command was accepted: its task is not this test's subject
        self.spawned += 1
        return True


@contextmanager
def two_paths(world: World) -> Iterator[tuple[Path_, Path_]]:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path_(world, Path(tmp), "a"), Path_(world, Path(tmp), "b")
        try:
            yield a, b
        finally:
            a.store.close()
            b.store.close()


def _unstamped(order: Order) -> Order:
    """The order with its id made common (each store opens its own id block)."""
    return dataclasses.replace(order, cl_ord_id="0" * 32)


def _record(path: Path_, act: Callable[[], object]) -> list[Any]:
    """What one request did: its outcome, then every command, refusal and handle state."""
    before = len(path.ctx.events)
    try:
        result = act()
        handle = result if isinstance(result, OrderHandle) else None
        outcome: Any = "placed"
    except InvalidIntent as exc:
        handle, outcome = None, ("raised", exc.reason, str(exc))
    except Exception as exc:  # any other error must be the same too
        handle, outcome = None, ("error", type(exc).__name__, str(exc))
    seen: list[Any] = [outcome]
    for event in path.ctx.events[before:]:
        if event[0] == "submit":
            command, accepted = event[1], event[2]
            assert type(command) is PlaceOrder
            order = _unstamped(command.order)
            frame = add_order_frame(order, command.instrument, token="t", req_id=7)
            seen.append(("submit", order, command.instrument, accepted, frame))
        else:
            seen.append(event)
    if handle is not None:
        seen.append(("handle", handle.state, handle.reason, _unstamped(handle.order)))
    seen.append(("refusals", dict(path.ctx._desk.refusals.counts())))
    seen.append(("spawned", path.spawned))
    return seen


# -- the draws -------------------------------------------------------------------------


def _decimal(units: st.SearchStrategy[int], exponents: st.SearchStrategy[int]) -> Any:
    return st.builds(lambda n, e: Decimal(n).scaleb(e), units, exponents)


instruments = st.builds(
    lambda pp, qp, pinc, qinc, qmin, cost, status: Instrument(
        SYMBOL,
        "BTC",
        "USD",
        pp,
        qp,
        price_increment=pinc,
        qty_increment=qinc,
        qty_min=qmin * qinc,
        cost_min=cost,
        status=status,
    ),
    st.integers(0, 4),
    st.integers(0, 8),
    st.sampled_from([1, 2, 5, 10]),
    st.sampled_from([1, 10, 1000]),
    st.integers(0, 5),
    st.one_of(st.just(Decimal(0)), _decimal(st.integers(0, 500), st.integers(-3, 1))),
    st.sampled_from(["online", "post_only"]),
)
limits = st.builds(
    RiskLimits,
    max_order_qty=st.none() | _decimal(st.integers(1, 10**6), st.integers(-8, 0)),
    max_order_notional=st.none() | _decimal(st.integers(1, 10**6), st.integers(-2, 2)),
    max_open_orders=st.none() | st.integers(0, 3),
    price_band_pct=st.none() | _decimal(st.integers(1, 300), st.integers(-1, 0)),
    max_orders_per_minute=st.none() | st.integers(0, 4),
)
worlds = st.builds(
    World,
    inst=instruments,
    limits=limits,
    ready=st.booleans(),
    status=st.sampled_from(["online", "post_only", "limit_only", "cancel_only"]),
    room=st.sampled_from([0.0, 5.0, 100.0]),
    best_bid=st.integers(100, 10**6),
)
prices = st.one_of(
    _decimal(st.integers(-5, 10**7), st.integers(-6, 2)),
    st.sampled_from([None, Decimal("NaN"), Decimal("Infinity"), Decimal("-0"), 7, True, 1.5]),
    st.sampled_from(  # beyond 28 digits, where Decimal's scaling rounds
        [Decimal("1E+40"), Decimal("1E-40"), Decimal(10**29 + 1), Decimal("9" * 27 + ".5")]
    ),
)


def requests(inst: Instrument) -> st.SearchStrategy[dict[str, Any]]:
    """A place's fixed parts, mostly valid for ``inst`` (a quantity on its lot)."""
    on_lot = st.builds(
        lambda k: from_scaled(k * inst.qty_increment, inst.qty_precision), st.integers(0, 10**4)
    )
    return st.fixed_dictionaries(
        {
            "side": st.sampled_from(["buy", "sell", "buy", "sell", "hold"]),
            "qty": st.one_of(
                on_lot,
                on_lot,
                _decimal(st.integers(-2, 10**6), st.integers(-9, 0)),
                st.sampled_from([3, 0.5]),
            ),
            "order_type": st.sampled_from(["limit", "limit", "limit", "market", "stop"]),
            "time_in_force": st.sampled_from(["GTC", "IOC", "GTC", "IOC", "FOK"]),
            "post_only": st.booleans(),
        }
    )


def near(world: World) -> st.SearchStrategy[Any]:
    """Prices around the book's, on and off the tick, and odd ones."""
    pp, bid = world.inst.price_precision, world.best_bid
    return st.one_of(
        st.builds(lambda n: from_scaled(n, pp), st.integers(bid // 2, bid * 2)),
        st.builds(lambda n: from_scaled(n * world.inst.price_increment, pp), st.integers(-1, 50)),
        st.none(),  # a market order's
        prices,
    )


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(world=worlds, data=st.data())
def test_a_prepared_order_places_refuses_and_raises_as_ctx_place(
    world: World, data: st.DataObject
) -> None:
    request = data.draw(requests(world.inst))
    ticks = data.draw(st.lists(near(world), min_size=1, max_size=6))
    with two_paths(world) as (general, fast):
        made: list[PreparedOrder] = []
        prepare = _record(fast, lambda: made.append(PreparedOrder(fast.ctx, SYMBOL, **request)))
        if not made:
            # A fixed part no price changes is wrong: every place raises that, counted so.
            want = _record(general, lambda: general.ctx.place(SYMBOL, price=ticks[0], **request))
            assert prepare == want
            return
        assert prepare == ["placed", ("refusals", {}), ("spawned", 0)]  # nothing counted
        for price in ticks:
            want = _record(general, lambda p=price: general.ctx.place(SYMBOL, price=p, **request))
            got = _record(fast, lambda p=price: made[0].place(p))
            assert got == want


@_SETTINGS
@given(world=worlds, qty=_decimal(st.integers(1, 10**6), st.integers(-8, 0)),
       units=st.lists(st.integers(-3, 10**9), min_size=1, max_size=6))  # fmt: skip
def test_place_units_is_ctx_place_at_the_decimal_price(
    world: World, qty: Decimal, units: list[int]
) -> None:
    with two_paths(world) as (general, fast):
        try:
            prepared = PreparedOrder(fast.ctx, SYMBOL, "buy", qty, post_only=True)
        except InvalidIntent:
            return  # the quantity is wrong for this pair: the other test's case
        pp = world.inst.price_precision
        for n in units:
            price = from_scaled(n, pp)
            want = _record(
                general, lambda p=price: general.ctx.place(SYMBOL, "buy", qty, p, post_only=True)
            )
            got = _record(fast, lambda n=n: prepared.place_units(n))
            assert got == want


def test_a_changed_instrument_is_checked_again_before_the_next_tick() -> None:
    inst = Instrument(SYMBOL, "BTC", "USD", 1, 4, qty_min=10)
    world = World(inst, RiskLimits(), True, "online", 100.0, 500_000)
    with two_paths(world) as (_, path):
        prepared = PreparedOrder(path.ctx, SYMBOL, "buy", Decimal("0.001"))
        assert prepared.place(Decimal("50000.0")).order.price == 500_000
        # The venue raises the minimum: the same prepared order now raises as a place does.
        path.table.update([dataclasses.replace(inst, qty_min=100)])
        with pytest.raises(InvalidIntent, match="below the minimum") as raised:
            prepared.place(Decimal("50000.0"))
        assert raised.value.reason == "qty_min"
        assert path.ctx.events[-1][:3] == ("invalid", "place", "qty_min")


def test_a_symbol_not_the_strategys_is_refused_when_prepared() -> None:
    inst = Instrument(SYMBOL, "BTC", "USD", 1, 4)
    world = World(inst, RiskLimits(), True, "online", 100.0, 500_000)
    with two_paths(world) as (_, path):
        with pytest.raises(InvalidIntent, match="not one of s's symbols"):
            PreparedOrder(path.ctx, "ETH/USD", "buy", Decimal(1))


def test_what_it_was_made_with_cannot_be_changed_under_it() -> None:
    """Its checks were made for these: a different order is a new ``PreparedOrder``."""
    inst = Instrument(SYMBOL, "BTC", "USD", 1, 4)
    world = World(inst, RiskLimits(), True, "online", 100.0, 500_000)
    with two_paths(world) as (_, path):
        prepared = PreparedOrder(path.ctx, SYMBOL, "sell", Decimal("0.5"), time_in_force="IOC")
        made = (prepared.symbol, prepared.side, prepared.qty, prepared.order_type)
        assert made == (SYMBOL, "sell", Decimal("0.5"), "limit")
        assert (prepared.time_in_force, prepared.post_only) == ("IOC", False)
        for name, value in (("qty", Decimal(5)), ("side", "buy"), ("post_only", True)):
            with pytest.raises(AttributeError):
                setattr(prepared, name, value)
        assert prepared.place(Decimal("50000.1")).order.qty == 5000
