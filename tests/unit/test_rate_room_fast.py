"""The rate room that asks the trading counter itself (``CounterRoom``) decides every
place exactly as the room read through the venue port's calls, on both Kraken spot venues.

Random histories on a real ``TradingCounter`` (charges now, in the past and booked ahead,
admits, reservations, Kraken's counts and floors, refusals, pruning, a new threshold, the
fake clock moving on) behind a real REST client and the REST and WebSocket venues: after
every step the counter's own ``headroom`` gives ``trading_headroom`` to the bit, and
``place_fits`` of the room built by ``RateRoom.of`` equals the calls' room for open
counts around every threshold. Then the fallback (a venue without a counter), and the wiring:
the daemon's order path and the tick bench's read the counter directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.config import load_config
from bot.core.clock import FakeClock
from bot.execution.private_feed import PrivateFeed
from bot.execution.rate_room import CANCEL_RESERVE, CounterRoom, RateRoom
from bot.execution.tokens import TokenKeeper
from bot.execution.venue import CounterVenue, Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.execution.venue_ws import KrakenWsVenue, WsOrderEntry
from bot.kraken.instruments import InstrumentTable
from bot.kraken.ratelimit import ACCOUNT_WIDE, CounterLimits, TradingCost, TradingCounter
from bot.kraken.rest import KrakenRestClient
from bot.service.daemon import Daemon
from bot.service.wiring import order_venue
from bot.sim.pairs import default_instruments
from bot.store import Store
from tests.unit.paper_venue import PaperVenue

REPO = Path(__file__).resolve().parents[2]
TABLE = InstrumentTable(default_instruments(("BTC/USD", "ETH/USD")).values())
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")  # SOL/USD: never charged
OPEN_COUNTS = range(9)  # every threshold 9, 17, ... 73: past the largest maximum below


@dataclass
class Chain:
    """One counter behind the client and both spot venues, on one fake clock."""

    clock: FakeClock
    counter: TradingCounter
    rest: KrakenRestVenue
    ws: KrakenWsVenue


def chain(limits: CounterLimits) -> Chain:
    clock = FakeClock()
    counter = TradingCounter("starter", limits=limits)
    client = KrakenRestClient("http://127.0.0.1:9", clock=clock, trading_counter=counter)
    rest = KrakenRestVenue(client, TABLE)  # never called: no request is made here
    feed = PrivateFeed("ws://127.0.0.1:9", TokenKeeper(rest, clock), lambda _e: None, clock=clock)
    return Chain(clock, counter, rest, KrakenWsVenue(rest, WsOrderEntry(feed, counter, clock)))


def slow(venue: Venue) -> RateRoom:
    """The room as it was built before: on the venue port's calls."""
    return RateRoom(venue.trading_headroom, venue.rest_headroom)


# ------------------------------------------------------------------------------ the property

_PAIRS = st.sampled_from(["BTC/USD", "ETH/USD", ACCOUNT_WIDE])
# Whole and half points, half seconds, decays of 0.5 and 1: rooms land on the thresholds.
_POINTS = st.integers(0, 140).map(lambda n: n / 2)
_NONE, _ZERO = st.none(), st.just(0.0)
Op = tuple[str, str | None, float, float]  # what, on which pair, how much, how far ahead
_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("advance"), _NONE, st.sampled_from([0.0, 0.5, 1.0, 2.5, 7.0, 40.0]), _ZERO
        ),
        st.tuples(st.just("charge"), _PAIRS, _POINTS, st.sampled_from([-3.0, 0.0, 0.5, 4.0])),
        st.tuples(
            st.sampled_from(["admit", "reserve", "observe", "floor", "try_charge"]),
            _PAIRS,
            _POINTS,
            _ZERO,
        ),
        st.tuples(st.just("admit_cost"), _PAIRS, st.sampled_from([0.0, 2.0, 5.0, 8.0]), _ZERO),
        st.tuples(st.just("saturate"), _PAIRS, _ZERO, _ZERO),
        st.tuples(st.just("prune"), _NONE, _ZERO, _ZERO),
        st.tuples(
            st.just("threshold"), _NONE, st.sampled_from([-1.0, 9.0, 17.0, 24.5, 33.0, 57.0]), _ZERO
        ),
    ),
    max_size=40,
)


def apply(c: Chain, op: Op) -> None:
    counter, now = c.counter, c.clock.monotonic()
    what, pair, x, ahead = op
    if what == "advance":
        c.clock.advance(x)
    elif what == "charge":  # at a stamp in the past, now, or ahead
        counter.charge(pair, x, now + ahead)
    elif what == "admit":
        counter.admit_points(pair, x, now)
    elif what == "admit_cost":  # an amend or an edit with its penalty
        counter.admit(pair, TradingCost(1.0, x), now)
    elif what == "reserve":  # booked at the first instant it fits: ahead when full
        counter.reserve(pair, x, now)
    elif what == "observe":  # Kraken's count (set_value)
        counter.observe(pair, x, now)
    elif what == "floor":
        counter.observe_floor(pair, x, now)
    elif what == "try_charge":
        counter.try_charge(pair, TradingCost(1.0, x), now)
    elif what == "saturate":  # Kraken refused: full
        counter.saturate(pair, now)
    elif what == "prune":
        counter.prune(now)
    elif what == "threshold":  # Kraken's maxratecount: the limits replaced
        counter.adopt_threshold(x)
    else:
        raise AssertionError(op)


def assert_same_room(c: Chain, fast: dict[str, RateRoom], counter: TradingCounter) -> None:
    now = c.clock.monotonic()
    for symbol in SYMBOLS:
        headroom = c.rest.trading_headroom(symbol)
        assert c.ws.trading_headroom(symbol) == headroom
        assert counter.headroom(symbol, now) == headroom  # to the bit
        for n in OPEN_COUNTS:
            want = slow(c.rest).place_fits(symbol, n)
            assert want == (headroom >= 1.0 + CANCEL_RESERVE * (n + 1))
            for name, room in fast.items():
                assert room.place_fits(symbol, n) == want, (name, symbol, n, headroom)
                assert room.amend_fits(symbol, n) == slow(c.rest).amend_fits(symbol, n)
            if headroom == 1.0 + CANCEL_RESERVE * (n + 1):
                event("a room exactly on a threshold")


@settings(max_examples=300, deadline=None)
@given(
    _OPS,
    st.sampled_from([25.0, 60.0, 65.0]),
    st.sampled_from([0.5, 1.0, 2.34]),
)
def test_the_counter_room_decides_every_place_as_the_venues_calls(
    ops: list[Op], maximum: float, decay: float
) -> None:
    c = chain(CounterLimits(maximum, decay))
    fast = {"rest": RateRoom.of(c.rest, c.clock), "websocket": RateRoom.of(c.ws, c.clock)}
    counter = c.rest.trading_counter()  # held from the start, as the rooms hold it
    for room in fast.values():
        assert type(room) is CounterRoom and room.counter is counter
    assert_same_room(c, fast, counter)
    for op in ops:
        apply(c, op)
        assert_same_room(c, fast, counter)


# ------------------------------------------------------------------------------ the cases


@pytest.fixture
def c() -> Chain:
    return chain(CounterLimits(60.0, 1.0))


def fits(room: RateRoom, symbol: str = "BTC/USD") -> list[bool]:
    return [room.place_fits(symbol, n) for n in OPEN_COUNTS]


def test_no_state_is_the_whole_maximum(c: Chain) -> None:
    room = RateRoom.of(c.ws, c.clock)
    assert fits(room) == fits(slow(c.ws)) == [9 + 8 * n <= 60 for n in OPEN_COUNTS]


def test_a_pruned_pair_is_read_as_empty_through_the_held_counter(c: Chain) -> None:
    room = RateRoom.of(c.rest, c.clock)
    c.counter.charge("BTC/USD", 40.0, c.clock.monotonic())  # room 20
    assert fits(room) == fits(slow(c.rest)) == [9 + 8 * n <= 20 for n in OPEN_COUNTS]
    c.clock.advance(40.0)
    c.counter.prune(c.clock.monotonic())
    assert "BTC/USD" not in c.counter.pairs()
    assert fits(room) == fits(slow(c.rest)) == fits(RateRoom.of(c.rest, c.clock), "SOL/USD")
    c.counter.charge("BTC/USD", 50.0, c.clock.monotonic())  # a new state: room 10
    assert fits(room) == fits(slow(c.rest)) == [n == 0 for n in OPEN_COUNTS]


def test_a_count_booked_ahead_does_not_decay_before_its_stamp(c: Chain) -> None:
    room = RateRoom.of(c.rest, c.clock)
    c.counter.charge("BTC/USD", 40.0, c.clock.monotonic() + 5.0)  # booked 5 s ahead
    for _ in range(6):  # up to the stamp, room 20 (not 20 less the 5 s still to come)
        assert fits(room) == fits(slow(c.rest)) == [9 + 8 * n <= 20 for n in OPEN_COUNTS]
        c.clock.advance(1.0)
    c.clock.advance(10.0)  # 11 s past the stamp: room 31
    assert fits(room) == fits(slow(c.rest)) == [9 + 8 * n <= 31 for n in OPEN_COUNTS]


def test_a_reservation_on_a_full_counter_leaves_no_room_until_it_decays(c: Chain) -> None:
    room = RateRoom.of(c.rest, c.clock)
    now = c.clock.monotonic()
    c.counter.charge("BTC/USD", 60.0, now)
    assert c.counter.reserve("BTC/USD", 11.0, now) == 11.0  # 60 again, 11 s ahead
    c.clock.advance(13.0)  # 2 s past the stamp: room 2
    assert not any(fits(room)) and not any(fits(slow(c.rest)))
    c.clock.advance(9.0)  # room 11
    assert fits(room) == fits(slow(c.rest)) == [n == 0 for n in OPEN_COUNTS]


def test_the_room_decays_with_the_clock(c: Chain) -> None:
    room = RateRoom.of(c.ws, c.clock)
    c.counter.charge("BTC/USD", 60.0, c.clock.monotonic())
    for _ in range(70):
        assert fits(room) == fits(slow(c.ws))
        c.clock.advance(1.0)
    assert all(room.place_fits("BTC/USD", n) for n in range(6))


def test_kraken_s_threshold_is_seen_by_a_room_built_before_it(c: Chain) -> None:
    room = RateRoom.of(c.rest, c.clock)
    c.counter.charge("BTC/USD", 3.0, c.clock.monotonic())  # room 57 = 1 + 8 * 7
    assert room.place_fits("BTC/USD", 6) and room.place_fits("SOL/USD", 6)
    assert c.counter.adopt_threshold(52.0)  # room 49 = 1 + 8 * 6
    assert not room.place_fits("BTC/USD", 6) and room.place_fits("BTC/USD", 5)
    assert fits(room) == fits(slow(c.rest))
    assert not room.place_fits("SOL/USD", 6)  # a pair with no state: the new maximum too


def test_the_reserve_keeps_room_to_cancel_the_new_order_and_every_open_one(c: Chain) -> None:
    room = RateRoom.of(c.rest, c.clock)
    c.counter.observe("BTC/USD", 60.0 - 25.0, c.clock.monotonic())  # room 25 = 1 + 8 * 3
    assert room.place_fits("BTC/USD", 2)  # the new order and two open: 3 cancels
    assert not room.place_fits("BTC/USD", 3)


# ------------------------------------------------------------------------------ fallback, wiring


def test_a_venue_without_a_counter_is_read_through_its_calls() -> None:
    venue = PaperVenue()
    assert not isinstance(venue, CounterVenue)
    room = RateRoom.of(venue, FakeClock())
    assert type(room) is RateRoom and room.counter is None
    assert venue.trading_headroom("BTC/USD") == math.inf  # PaperVenue has no limits
    assert all(room.place_fits("BTC/USD", n) for n in (0, 1, 1000))


def test_a_venue_s_own_headroom_decides_without_a_counter() -> None:
    class Tight(PaperVenue):
        def trading_headroom(self, symbol: str) -> float:
            return 17.0

    room = RateRoom.of(Tight(), FakeClock())
    assert room.place_fits("BTC/USD", 1) and not room.place_fits("BTC/USD", 2)


@contextmanager
def daemon_venue(tmp_path: Path, order_entry: str) -> Iterator[tuple[Daemon, Venue, Store]]:
    config = load_config(REPO / "config" / "default.yaml", env={})
    venue_cfg = config.venue.model_copy(update={"order_entry": order_entry})
    config = config.model_copy(update={"venue": venue_cfg})
    clock = FakeClock()
    daemon = Daemon(config, clock=clock, serve_http=False)
    rest = KrakenRestClient("http://127.0.0.1:9", clock=clock)
    reads = KrakenRestVenue(rest, TABLE)
    private = PrivateFeed("ws://127.0.0.1:9", TokenKeeper(reads, clock), lambda _e: None,
                          clock=clock, trading_counter=rest.trading_counter)  # fmt: skip
    store = Store.open(tmp_path / "bot.db")
    try:
        yield daemon, order_venue(config, reads, private, clock), store
    finally:
        store.close()


@pytest.mark.parametrize("order_entry", ["rest", "websocket"])
def test_the_daemon_s_pre_trade_stage_reads_the_counter_directly(
    tmp_path: Path, order_entry: str
) -> None:
    with daemon_venue(tmp_path, order_entry) as (daemon, venue, store):
        _, engine = daemon._order_path(store, venue, TABLE)
        room = engine.pretrade.room
        assert isinstance(venue, CounterVenue)
        assert type(room) is CounterRoom
        assert room.counter is venue.trading_counter()
        counter = (venue.rest if isinstance(venue, KrakenWsVenue) else venue).rest.trading_counter
        assert room.counter is counter  # the counter the order entry charges
        counter.charge("BTC/USD", counter.limits.maximum - 9.0, daemon.clock.monotonic())
        assert room.place_fits("BTC/USD", 0) and not room.place_fits("BTC/USD", 1)


@pytest.mark.parametrize("order_entry", ["rest", "websocket"])
def test_the_tick_bench_s_pre_trade_stage_reads_the_counter_directly(order_entry: str) -> None:
    from bench.tick_daemon import DaemonPath
    from bench.tick_floor import Probe

    config = {
        "rest_url": "http://127.0.0.1:9",
        "ws_private_url": "ws://127.0.0.1:9",
        "keys": {"krakenbot": ("key", "c2VjcmV0")},
    }
    path = DaemonPath(config, None, Probe(), order_entry=order_entry)
    try:
        room = path.engine.pretrade.room
        assert type(room) is CounterRoom and room.counter is path.rest.trading_counter
    finally:
        path.store.close()
        path._tmp.cleanup()
