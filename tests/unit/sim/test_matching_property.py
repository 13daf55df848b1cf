"""Properties of the engine under random order flow (hypothesis).

Conservation of every asset (fees included), fills adding up, no crossed book, level
aggregates and holds matching the orders, price-time priority, and determinism.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.errors import RejectedError
from bot.sim.exchange import Exchange
from bot.sim.market_data import MarketAdd, MarketCancel, MarketTake
from bot.sim.matching import Book, Order, OrderRequest, Result
from bot.sim.pairs import default_instruments

T0 = 1_700_000_000_000_000_000
MID = 650_000  # 65000.0 BTC/USD
ACCOUNTS = ("alice", "bob", "carol")
ASSETS = ("USD", "BTC")


@dataclass(frozen=True)
class Add:
    account: int
    side: str
    ord_type: str
    tif: str
    qty: int
    offset: int
    post_only: bool
    stptype: str
    fee_in_base: bool
    gtd: bool


@dataclass(frozen=True)
class Amend:
    account: int
    pick: int
    qty: int | None
    offset: int | None


@dataclass(frozen=True)
class Cancel:
    account: int
    pick: int


@dataclass(frozen=True)
class Market:
    side: str
    qty: int
    offset: int | None  # None: a market order that takes
    cancel_pick: int | None


@dataclass(frozen=True)
class Tick:
    seconds: int


qtys = st.integers(10_000, 60_000_000)  # 0.0001 .. 0.6 BTC
small_qtys = st.integers(10_000, 10_000_000)  # 0.0001 .. 0.1 BTC
offsets = st.integers(-12, 12)
adds = st.builds(
    Add,
    account=st.integers(0, 2),
    side=st.sampled_from(["buy", "sell"]),
    ord_type=st.sampled_from(["limit", "limit", "limit", "market"]),
    tif=st.sampled_from(["GTC", "GTC", "IOC", "FOK"]),
    qty=qtys,
    offset=offsets,
    post_only=st.booleans(),
    stptype=st.sampled_from(["cancel-newest", "cancel-oldest", "cancel-both"]),
    fee_in_base=st.booleans(),
    gtd=st.booleans(),
)
ops = st.one_of(
    adds,
    adds,
    st.builds(
        Amend,
        account=st.integers(0, 2),
        pick=st.integers(0, 20),
        qty=st.none() | qtys,
        offset=st.none() | offsets,
    ),
    st.builds(Cancel, account=st.integers(0, 2), pick=st.integers(0, 20)),
    st.builds(
        Market,
        side=st.sampled_from(["buy", "sell"]),
        qty=small_qtys,
        offset=st.none() | offsets,
        cancel_pick=st.none() | st.integers(0, 50),
    ),
    st.builds(Tick, seconds=st.integers(0, 20)),
)


class Runner:
    """Applies ops to one exchange and keeps what the checks need."""

    def __init__(self, seed: int = 5) -> None:
        self.ex = Exchange(default_instruments(("BTC/USD",)).values(), seed=seed)
        for account in ACCOUNTS:
            self.ex.deposit(account, "USD", "50000")
            self.ex.deposit(account, "BTC", "2")
        self.now = T0
        self.refs: list[int] = list(range(1, 21))
        seeded = [
            MarketAdd("BTC/USD", i + 1, side, MID + sign * (1 + 2 * (i // 2)), 20_000_000)
            for i, (side, sign) in enumerate([("buy", -1), ("sell", 1)] * 10)
        ]
        self.results: list[Result | str] = [self.ex.apply_market(seeded, self.now)]
        self.initial = {a: self.ex.accounts.asset_sum(a) for a in ASSETS}

    def apply(self, op: object) -> None:
        ex = self.ex
        self.now += 1_000
        try:
            if isinstance(op, Add):
                self.results.append(ex.add_order(ACCOUNTS[op.account], self._request(op), self.now))
            elif isinstance(op, Amend):
                account = ACCOUNTS[op.account]
                open_ = ex.open_orders(account)
                if open_:
                    order = open_[op.pick % len(open_)]
                    price = None if op.offset is None else MID + op.offset
                    self.results.append(
                        ex.amend_order(
                            account, self.now, txid=order.txid, order_qty=op.qty, limit_price=price
                        )
                    )
            elif isinstance(op, Cancel):
                account = ACCOUNTS[op.account]
                open_ = ex.open_orders(account)
                if open_:
                    txid = open_[op.pick % len(open_)].txid
                    self.results.append(ex.cancel_order(account, self.now, txid=txid))
            elif isinstance(op, Market):
                self.results.append(ex.apply_market(self._market(op), self.now))
            elif isinstance(op, Tick):
                self.now += op.seconds * 1_000_000_000
                self.results.append(ex.advance(self.now))
        except RejectedError as exc:
            self.results.append(exc.code)

    def _request(self, op: Add) -> OrderRequest:
        tif = op.tif
        if op.gtd and op.ord_type == "limit" and tif == "GTC":
            tif = "GTD"
        return OrderRequest(
            "BTC/USD",
            op.side,
            op.ord_type,
            op.qty,
            MID + op.offset if op.ord_type == "limit" else None,
            time_in_force=tif if op.ord_type == "limit" else "IOC",
            expire_at=self.now + 5_000_000_000 if tif == "GTD" else None,
            post_only=op.post_only and op.ord_type == "limit" and tif in ("GTC", "GTD"),
            fee_in_base=op.fee_in_base,
            stptype=op.stptype,
        )

    def _market(self, op: Market) -> list[MarketAdd | MarketCancel | MarketTake]:
        if op.cancel_pick is not None and self.refs:
            return [MarketCancel("BTC/USD", self.refs[op.cancel_pick % len(self.refs)])]
        if op.offset is None:
            return [MarketTake("BTC/USD", op.side, op.qty)]
        ref = self.refs[-1] + 1
        self.refs.append(ref)
        return [MarketAdd("BTC/USD", ref, op.side, MID + op.offset, op.qty)]

    # -- checks --------------------------------------------------------------------------
    def check(self) -> None:
        ex = self.ex
        book = ex.book("BTC/USD")
        # every asset is conserved, fees included
        assert {a: ex.accounts.asset_sum(a) for a in ASSETS} == self.initial
        # the book is never crossed and every level's aggregate is its orders' remaining
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        in_book: set[str] = set()
        for side in ("bid", "ask"):
            for price, total in book.depth(side):
                queue = book.queue(side, price)
                assert total == sum(o.remaining for o in queue) > 0
                assert all(o.is_open and o.price == price and o.remaining > 0 for o in queue)
                in_book.update(o.txid for o in queue)
        pm = ex.accounts.pair("BTC/USD")
        for account in ACCOUNTS:
            fills_by_order: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for fill in ex.trades(account):
                fills_by_order[fill.txid].append((fill.price, fill.qty))
            held: dict[str, int] = defaultdict(int)
            for o in ex.open_orders(account) + ex.closed_orders(account):
                # quantities add up and the fills account for every filled unit
                assert 0 <= o.filled <= o.qty
                assert o.filled == sum(q for _, q in fills_by_order[o.txid])
                cost = sum(p * q for p, q in fills_by_order[o.txid])
                assert o.cost == Decimal(cost).scaleb(-9)
                hold = ex.accounts.hold_of(o.txid)
                if o.status == "open":
                    assert o.txid in in_book and o.price is not None
                    # the hold covers the rest of the order and its fee, and no more
                    asset, floor = pm.hold(o.side, True, o.price, o.remaining, rate_ppm=0)
                    rate = ex.accounts.fees(account).max_ppm
                    _, ceiling = pm.hold(o.side, o.fee_in_base, o.price, o.remaining, rate_ppm=rate)
                    assert floor <= hold <= ceiling
                    held[asset] += hold
                else:
                    assert o.txid not in in_book and hold == 0
            for asset in ASSETS:
                assert ex.accounts.held(account, asset) == held[asset]
                assert ex.accounts.total(account, asset) >= 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=20, max_size=80))
def test_invariants_hold_after_every_operation(program: list[object]) -> None:
    runner = Runner()
    runner.check()
    for op in program:
        runner.apply(op)
        runner.check()


@settings(max_examples=40, deadline=None)
@given(st.lists(ops, max_size=30))
def test_same_seed_and_inputs_give_the_same_event_log(program: list[object]) -> None:
    a, b = Runner(seed=11), Runner(seed=11)
    for op in program:
        a.apply(op)
        b.apply(op)
    assert a.results == b.results


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(1, 5)), min_size=1, max_size=30),
    st.integers(1, 60),
    st.none() | st.integers(0, 8),
)
def test_takers_fill_in_price_then_time_order(
    resting: list[tuple[int, int]], want: int, limit: int | None
) -> None:
    book = Book("BTC/USD")
    orders = []
    for i, (price, qty) in enumerate(resting):
        o = Order(f"O{i}", f"m{i}", "BTC/USD", "sell", "limit", 100 + price, qty, 0, status="open")
        orders.append(o)
        book.rest(o)
    cap = None if limit is None else 100 + limit
    taker = Order("T", "taker", "BTC/USD", "buy", "limit", cap, want, 0, status="open")
    result = book.match(taker, cap, exempt="~market")
    # reference: sort by (price, arrival), take greedily while the price is acceptable
    expected, left = [], want
    for i in sorted(range(len(orders)), key=lambda i: (orders[i].price, i)):
        o = orders[i]
        if left == 0 or (cap is not None and (o.price or 0) > cap):
            break
        take = min(left, resting[i][1])
        expected.append((o.txid, o.price, take))
        left -= take
    assert [(m.txid, p, q) for m, p, q in result.fills] == expected
    remaining = sum(q for _, q in resting) - sum(q for _, _, q in expected)
    assert sum(q for _, q in book.depth("ask")) == remaining
    best = book.best_ask()
    assert best is None or cap is None or left == 0 or best > cap
