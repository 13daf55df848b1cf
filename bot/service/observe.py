"""What the trader's view reads from the running daemon, one picture per tick, read-only.

This module owns ``Observation`` (a frozen picture of the daemon at one instant: readiness
and risk, strategies, positions and PnL per quote currency, open orders, balances, the
last fills and those new since the previous picture, the metrics snapshot) and
``Observer``, which takes the pictures. It is the one place that knows which daemon
object holds what (``Parts``, typed by the small protocols below), so the dashboard, its
charts and the notification rules stay pure functions of pictures, and a change in the
daemon's insides is fixed here alone. It never changes what it reads.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol

from bot.core.clock import Clock
from bot.execution.orders import Fill, Order
from bot.execution.pnl import Position, PositionBook
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.kraken.instruments import Instrument
from bot.service.metrics import Metrics, Snapshot

__all__ = [
    "RECENT_FILLS",
    "FillSeen",
    "Observation",
    "Observer",
    "Parts",
    "Pnl",
    "StrategyView",
]

RECENT_FILLS: Final = 50
_STRATEGY_CACHE: Final = 5000  # cl_ord_id -> strategy of recent fills' orders


class MidsLike(Protocol):
    """Each valid book's mid (the desk's ``bot.strategy.marks.Marks``)."""

    def mids(self) -> dict[str, Decimal]: ...


class DeskLike(Protocol):
    """What the observer reads of the desk."""

    @property
    def positions(self) -> PositionBook: ...
    @property
    def risk(self) -> RiskGate: ...
    @property
    def balances(self) -> Mapping[str, Decimal]: ...
    @property
    def instruments(self) -> Mapping[str, Instrument]: ...
    @property
    def marks(self) -> MidsLike: ...


class EngineLike(Protocol):
    def open_orders(self, symbol: str | None = None) -> list[Order]: ...
    def order(self, cl_ord_id: str) -> Order | None: ...


class FillStore(Protocol):
    def recent_fills(self, limit: int) -> list[Fill]: ...
    def fills_since(self, ts_ns: int) -> list[Fill]: ...
    def get_order(self, cl_ord_id: str) -> Order | None: ...


class RunnerLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> object: ...
    @property
    def halt_reason(self) -> str: ...
    @property
    def errors(self) -> int: ...
    @property
    def stats(self) -> Mapping[str, object]: ...


@dataclass(frozen=True, slots=True)
class Parts:
    """The running daemon's components the observer reads (given once they exist)."""

    desk: DeskLike
    engine: EngineLike
    store: FillStore
    runners: Callable[[], Iterable[RunnerLike]]
    symbols: tuple[str, ...]  # the traded symbols (the venue's table holds every pair)


@dataclass(frozen=True, slots=True)
class Pnl:
    """Money in one quote currency: realised (fees included), unrealised, since UTC midnight."""

    realised: Decimal
    unrealised: Decimal
    today: Decimal

    @property
    def total(self) -> Decimal:
        return self.realised + self.unrealised


@dataclass(frozen=True, slots=True)
class StrategyView:
    """One strategy: its runner's state and counts, and the risk state in force for it."""

    name: str
    state: str
    halt_reason: str
    errors: int
    calls: int
    risk_state: str


@dataclass(frozen=True, slots=True)
class FillSeen:
    fill: Fill
    strategy: str


@dataclass(frozen=True, slots=True)
class Observation:
    """The daemon at ``at_ns`` (wall clock). ``running`` is False while it starts: then
    only readiness and the metrics are known and every collection is empty."""

    at_ns: int
    running: bool
    ready: bool
    failing: tuple[str, ...]
    metrics: Snapshot
    risk_state: str = ""
    strategies: tuple[StrategyView, ...] = ()
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    mids: Mapping[str, Decimal] = field(default_factory=dict)
    positions: tuple[Position, ...] = ()  # per strategy and symbol
    totals: tuple[Position, ...] = ()  # per symbol, all strategies
    pnl: Mapping[str, Pnl] = field(default_factory=dict)  # quote -> total
    strategy_pnl: Mapping[tuple[str, str], Pnl] = field(default_factory=dict)
    open_orders: tuple[Order, ...] = ()
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    balances_at_ns: int | None = None
    fills: tuple[FillSeen, ...] = ()  # the last RECENT_FILLS, oldest first
    new_fills: tuple[FillSeen, ...] = ()  # since the previous observation

    def instrument(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol)


class Observer:
    """Takes ``Observation``s: ``observe()`` now; ``attach(parts)`` once the daemon runs.

    Fills come from the store (the record of what the exchange reported), so the last
    fills survive a restart; ``new_fills`` are those recorded since the previous call.
    """

    def __init__(self, clock: Clock, metrics: Metrics, gate: ReadinessGate) -> None:
        self._clock, self._metrics, self._gate = clock, metrics, gate
        self._parts: Parts | None = None
        self._fills: deque[FillSeen] = deque(maxlen=RECENT_FILLS)
        self._cursor_ns: int | None = None  # the newest fill's ts_ns seen
        self._at_cursor: set[str] = set()  # exec_ids seen with that ts_ns
        self._strategies: OrderedDict[str, str] = OrderedDict()
        self._balances: tuple[Mapping[str, Decimal], int] | None = None

    @property
    def attached(self) -> bool:
        return self._parts is not None

    @property
    def parts(self) -> Parts | None:
        """The components attached (None until the daemon runs)."""
        return self._parts

    def attach(self, parts: Parts) -> None:
        self._parts = parts

    def detach(self) -> None:
        """The components are going (their store is about to close): back to pictures of
        readiness and metrics only."""
        self._parts = None

    def starting(self) -> Observation:
        """A picture without the components (while the daemon starts): readiness and the
        metrics only. Reads nothing else, so it never moves the fills along."""
        gate = self._gate
        return Observation(
            self._clock.time_ns(), False, gate.is_open, gate.failing(), self._metrics.snapshot()
        )

    def observe(self) -> Observation:
        """A picture now (the fills new since the previous call included)."""
        parts = self._parts
        if parts is None:
            return self.starting()
        gate, now = self._gate, self._clock.time_ns()
        snap = self._metrics.snapshot()
        ready, failing = gate.is_open, gate.failing()
        desk = parts.desk
        book, risk = desk.positions, desk.risk
        new = self._new_fills(parts)
        balances = desk.balances
        if self._balances is None or self._balances[0] is not balances:
            self._balances = (balances, now)  # the poller replaces the dict when it polls
        quotes = book.quotes()
        names = [r.name for r in parts.runners()]
        per_strategy = [*names, *(s for s in book.strategies() if s not in names)]
        return Observation(
            at_ns=now,
            running=True,
            ready=ready,
            failing=failing,
            metrics=snap,
            risk_state=str(risk.state),
            strategies=tuple(_strategy(r, risk) for r in parts.runners()),
            instruments={
                s: inst for s in parts.symbols if (inst := desk.instruments.get(s)) is not None
            },
            mids=desk.marks.mids(),
            positions=tuple(p for s in book.strategies() for p in book.positions(s)),
            totals=tuple(book.positions()),
            pnl={q: _pnl(book, q, None) for q in quotes},
            strategy_pnl={
                (s, q): _pnl(book, q, s)
                for s in per_strategy
                for q in quotes
                if any(p.quote == q for p in book.positions(s))
            },
            open_orders=tuple(sorted(parts.engine.open_orders(), key=_created)),
            balances=dict(balances),
            balances_at_ns=self._balances[1] if balances else None,
            fills=tuple(self._fills),
            new_fills=new,
        )

    def _new_fills(self, parts: Parts) -> tuple[FillSeen, ...]:
        store = parts.store
        if self._cursor_ns is None:  # the first picture: the record so far, nothing new
            found = store.recent_fills(RECENT_FILLS)
            self._fills.extend(self._seen(parts, f) for f in found)
            self._advance(found)
            return ()
        fresh = [
            f
            for f in store.fills_since(self._cursor_ns)
            if not (f.ts_ns == self._cursor_ns and f.exec_id in self._at_cursor)
        ]
        seen = tuple(self._seen(parts, f) for f in fresh)
        self._fills.extend(seen)
        self._advance(fresh)
        return seen

    def _advance(self, fills: Sequence[Fill]) -> None:
        cursor = self._cursor_ns if self._cursor_ns is not None else 0
        for fill in fills:
            if fill.ts_ns > cursor:
                cursor, self._at_cursor = fill.ts_ns, set()
            if fill.ts_ns == cursor:
                self._at_cursor.add(fill.exec_id)
        self._cursor_ns = cursor

    def _seen(self, parts: Parts, fill: Fill) -> FillSeen:
        cid, cache = fill.cl_ord_id, self._strategies
        strategy = cache.get(cid)
        if strategy is None:
            order = parts.engine.order(cid) or parts.store.get_order(cid)
            strategy = order.strategy if order is not None else ""
            cache[cid] = strategy
            while len(cache) > _STRATEGY_CACHE:
                cache.popitem(last=False)
        return FillSeen(fill, strategy)


def _created(order: Order) -> tuple[int, str]:
    return order.created_ns, order.cl_ord_id


def _pnl(book: PositionBook, quote: str, strategy: str | None) -> Pnl:
    return Pnl(
        book.realised(quote, strategy),
        book.unrealised(quote, strategy),
        book.daily_pnl(quote, strategy),
    )


def _strategy(runner: RunnerLike, risk: RiskGate) -> StrategyView:
    stats = runner.stats.values()
    calls = sum(int(getattr(s, "calls", 0)) for s in stats)
    return StrategyView(
        name=runner.name,
        state=str(runner.state),
        halt_reason=runner.halt_reason,
        errors=runner.errors,
        calls=calls,
        risk_state=str(risk.strategy_state(runner.name)),
    )
