"""The report core: every figure of a run, per strategy and symbol and in total per quote.

``build_report(record)`` replays a ``RunRecord`` once, in time order, through the daemon's
own ``PositionBook`` (so a report's PnL is the PnL the daemon logs) and returns a
``Report``: exact ``Decimal`` figures and, for charts only, decimated float points.

Scopes. A *line* is one strategy on one symbol. Each line belongs to its strategy's
subtotal in the symbol's quote currency and to the total of that quote currency. Nothing
is converted between currencies: a run trading BTC/USD and ETH/BTC has a USD total and a
BTC total.

The window. Figures cover ``[start, end]``: ``record.since_ns`` (default: the first order
or fill) to ``record.end_ns`` (default: the last event). Fills before the window build the
positions the window starts with; PnL figures are changes over the window.

Figures of a scope (``Figures``), each defined once here:

* ``realised``: realised PnL over the window, fees included (average cost, as
  ``bot.execution.pnl``); ``unrealised``: the open positions' value at the last mark minus
  their cost, at the end minus at the start; ``pnl`` = realised + unrealised.
* ``fees``: fees charged in the quote currency (a fee in the base asset at the fill
  price); ``other_fees``: fees in any other asset, per asset, not converted.
* ``volume_quote``: Σ qty × price of the window's fills; ``volume_base``: Σ qty (one-symbol
  scopes only).
* ``orders``: orders created in the window, and ``orders_by_state`` their states now;
  ``fills``: the window's fills.
* ``fill_ratio``: orders with a fill ÷ orders that reached the book (``RESTED_STATES``);
  ``qty_fill_ratio``: their filled quantity ÷ their quantity (one-symbol scopes only).
* ``maker_share``: maker fills' quote volume ÷ all fills' quote volume.
* ``max_drawdown``: the largest fall of the equity curve (realised + unrealised, at every
  fill and mark) below an earlier peak, in the quote currency, with when the peak and the
  trough were.
* ``sharpe`` / ``sortino``: on the report's ``Sampling`` (``bot.research.stats``).
* ``inventory`` (one-symbol scopes): the net position in base units at the end, its
  largest long and short; ``exposure``: Σ over symbols |net position| × mark, in the
  quote currency, at the end, its maximum and its time-weighted mean over the window;
  ``time_in_market``: the share of the window with any position open.

Marks. A symbol's positions are valued at its ``record.marks`` when it has any (a
backtest's mids), else at its latest fill price (what a store holds). Before its first
mark, a symbol is valued at its latest fill price, as the daemon does.

Pure: no I/O, no clock (the ``PositionBook``'s clock is a ``FakeClock`` set to each
event's time). Progress, if asked, goes to an injected ``Progress``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

from bot.core.clock import FakeClock
from bot.execution.orders import Fill, Order
from bot.execution.pnl import PositionBook
from bot.kraken.instruments import Instrument, from_scaled
from bot.research.chart_points import (
    MAX_FILL_MARKERS,
    Charts,
    FillMarker,
    aggregate_fills,
    quote_points,
)
from bot.research.progress import NULL_PROGRESS, Progress
from bot.research.quotes import RESTED_STATES, quotes_from_orders
from bot.research.record import (
    BadInput,
    Mark,
    RunRecord,
    instruments_of,
    rescale,
)
from bot.research.scope import Scope
from bot.research.series import BucketCloses, Decimator, Drawdown, TimeWeighted
from bot.research.stats import Ratio, Sampling, choose_sampling, sharpe, sortino

__all__ = [
    "CHART_BUCKETS",
    "Figures",
    "Report",
    "Scope",
    "build_report",
]

CHART_BUCKETS: Final = 600
PROGRESS_EVERY: Final = 1024
_ZERO: Final = Decimal(0)
_WIDE: Final = Context(prec=200, rounding=ROUND_HALF_EVEN)
_RATIO: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
_RATIO_PLACES: Final = Decimal("0.000001")  # ratios and shares, 1e-6
_MEAN_PLACES: Final = Decimal("0.00000001")  # the time-weighted mean exposure, 1e-8


@dataclass(frozen=True, slots=True)
class Figures:
    """Every figure of one scope over the window (see the module's definitions)."""

    scope: Scope
    symbols: tuple[str, ...]
    base: str | None
    pnl: Decimal
    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    other_fees: tuple[tuple[str, Decimal], ...]
    volume_base: Decimal | None
    volume_quote: Decimal
    orders: int
    orders_by_state: tuple[tuple[str, int], ...]
    fills: int
    maker_fills: int
    fill_ratio: Decimal | None
    qty_fill_ratio: Decimal | None
    maker_share: Decimal | None
    max_drawdown: Decimal
    drawdown_peak_ns: int | None
    drawdown_trough_ns: int | None
    sharpe: Ratio
    sortino: Ratio
    returns: int
    inventory: Decimal | None
    inventory_max_long: Decimal | None
    inventory_max_short: Decimal | None
    exposure: Decimal
    exposure_max: Decimal
    exposure_mean: Decimal
    time_in_market: Decimal | None


@dataclass(frozen=True, slots=True)
class Report:
    label: str
    meta: Mapping[str, str]
    start_ns: int
    end_ns: int
    sampling: Sampling
    instruments: Mapping[str, Instrument]
    valued_at: Mapping[str, str]  # symbol -> "marks" | "fill prices"
    quotes_from: str  # "recorded quotes" | "orders" | "none"
    figures: tuple[Figures, ...]
    charts: Charts

    def lines(self, quote: str | None = None) -> list[Figures]:
        return [
            f for f in self.figures if f.scope.kind == "line" and quote in (None, f.scope.quote)
        ]

    def currencies(self) -> list[str]:
        """The quote currencies, in the order of the figures."""
        return list(dict.fromkeys(f.scope.quote for f in self.figures))


# ------------------------------------------------------------------------- replay state


@dataclass(slots=True)
class _Line:
    strategy: str
    inst: Instrument
    scopes: list[_ScopeState] = field(default_factory=list)
    qty: Decimal = _ZERO
    basis: Decimal = _ZERO
    realised: Decimal = _ZERO
    fees: Decimal = _ZERO
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    equity: Decimal = _ZERO
    # at the window's start
    realised0: Decimal = _ZERO
    unrealised0: Decimal = _ZERO
    fees0: Decimal = _ZERO
    other0: dict[str, Decimal] = field(default_factory=dict)
    # the window's fills
    fills: int = 0
    maker_fills: int = 0
    volume_base: Decimal = _ZERO
    volume_quote: Decimal = _ZERO
    maker_quote: Decimal = _ZERO

    def unrealised(self, mark: Decimal | None) -> Decimal:
        if not self.qty or mark is None:
            return _ZERO
        return _WIDE.subtract(_WIDE.multiply(self.qty, mark), self.basis)


@dataclass(slots=True)
class _ScopeState:
    scope: Scope
    start_ns: int
    end_ns: int
    sampling: Sampling
    buckets: int
    symbols: list[str] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    equity: Decimal = _ZERO
    equity0: Decimal = _ZERO
    qty: dict[str, Decimal] = field(default_factory=dict)
    inv_long: Decimal = _ZERO
    inv_short: Decimal = _ZERO
    drawdown: Drawdown = field(init=False)
    closes: BucketCloses = field(init=False)
    exposure: TimeWeighted = field(init=False)
    equity_points: Decimator = field(init=False)
    drawdown_points: Decimator = field(init=False)
    exposure_points: Decimator = field(init=False)
    inventory_points: Decimator = field(init=False)

    def __post_init__(self) -> None:
        start, end = self.start_ns, self.end_ns
        self.drawdown = Drawdown(start)
        self.closes = BucketCloses(start, self.sampling.bucket_ns, end)
        self.exposure = TimeWeighted(start)
        self.equity_points = Decimator(start, end, self.buckets)
        self.drawdown_points = Decimator(start, end, self.buckets)
        self.exposure_points = Decimator(start, end, self.buckets)
        self.inventory_points = Decimator(start, end, self.buckets)

    def value_of_exposure(self, marks: _Marks) -> Decimal:
        total = _ZERO
        for symbol, qty in self.qty.items():
            mark = marks.get(symbol)
            if qty and mark is not None:
                total = _WIDE.add(total, _WIDE.multiply(abs(qty), mark))
        return total

    def observe(self, ts_ns: int, marks: _Marks) -> None:
        rel = _WIDE.subtract(self.equity, self.equity0)
        fall = self.drawdown.observe(ts_ns, rel)
        self.closes.observe(ts_ns, rel)
        exposure = self.value_of_exposure(marks)
        self.exposure.observe(ts_ns, exposure)
        self.equity_points.add(ts_ns, float(rel))
        self.drawdown_points.add(ts_ns, float(fall))
        self.exposure_points.add(ts_ns, float(exposure))
        if len(self.symbols) == 1:
            inventory = self.qty.get(self.symbols[0], _ZERO)
            self.inv_long = max(self.inv_long, inventory)
            self.inv_short = min(self.inv_short, inventory)
            self.inventory_points.add(ts_ns, float(inventory))


_Marks = dict[str, Decimal]  # symbol -> the price its positions are valued at now


# ------------------------------------------------------------------------- the replay


class _Replay:
    def __init__(
        self,
        record: RunRecord,
        *,
        instruments: Mapping[str, Instrument],
        start_ns: int,
        end_ns: int,
        sampling: Sampling,
        buckets: int,
        subtotals: set[tuple[str, str]],
    ) -> None:
        self.instruments = instruments
        self.subtotals = subtotals  # (strategy, quote) trading several symbols
        self.start_ns, self.end_ns = start_ns, end_ns
        self.sampling, self.buckets = sampling, buckets
        self.clock = FakeClock(start_ns=start_ns)
        self.book = PositionBook(self.clock)
        self.marked = {symbol for symbol, seq in record.marks.items() if seq}
        self.marks: _Marks = {}  # what positions are valued at: marks, else fill prices
        self.lines: dict[tuple[str, str], _Line] = {}
        self.scopes: dict[Scope, _ScopeState] = {}
        self.by_symbol: dict[str, list[_Line]] = {}
        self.open = False
        self.prices = {s: Decimator(start_ns, end_ns, buckets) for s in instruments}
        self.net = {s: Decimator(start_ns, end_ns, buckets) for s in instruments}
        self.markers: dict[str, list[FillMarker]] = {}

    # -- structure ------------------------------------------------------------------

    def line(self, strategy: str, symbol: str) -> _Line:
        line = self.lines.get((strategy, symbol))
        if line is not None:
            return line
        inst = self.instruments[symbol]
        line = self.lines[(strategy, symbol)] = _Line(strategy, inst)
        self.by_symbol.setdefault(symbol, []).append(line)
        scopes = [Scope(inst.quote, strategy, symbol), Scope(inst.quote, None, None)]
        if (strategy, inst.quote) in self.subtotals:
            scopes.insert(1, Scope(inst.quote, strategy, None))
        for scope in scopes:
            state = self.scopes.get(scope)
            if state is None:
                state = self.scopes[scope] = _ScopeState(
                    scope, self.start_ns, self.end_ns, self.sampling, self.buckets
                )
                if self.open:  # a scope that starts trading mid-window starts flat at 0
                    state.observe(self.start_ns, self.marks)
            state.lines.append(line)
            if symbol not in state.symbols:
                state.symbols.append(symbol)
            line.scopes.append(state)
        return line

    # -- events ---------------------------------------------------------------------

    def _revalue(self, lines: Sequence[_Line], symbol: str) -> None:
        mark = self.marks.get(symbol)
        for line in lines:
            equity = _WIDE.add(line.realised, line.unrealised(mark))
            delta = _WIDE.subtract(equity, line.equity)
            line.equity = equity
            if delta:
                for state in line.scopes:
                    state.equity = _WIDE.add(state.equity, delta)

    def _observe(self, ts_ns: int, lines: Sequence[_Line]) -> None:
        seen: set[int] = set()
        for line in lines:
            for state in line.scopes:
                if id(state) not in seen:
                    seen.add(id(state))
                    state.observe(ts_ns, self.marks)

    def enter_window(self) -> None:
        """Take the baselines: everything before this moment built the starting state."""
        self.open = True
        for line in self.lines.values():
            line.realised0, line.fees0 = line.realised, line.fees
            line.unrealised0 = line.unrealised(self.marks.get(line.inst.symbol))
            line.other0 = dict(line.other_fees)
        for state in self.scopes.values():
            state.equity0 = state.equity
            state.observe(self.start_ns, self.marks)
        for symbol, points in self.prices.items():
            if (mark := self.marks.get(symbol)) is not None:
                points.add(self.start_ns, float(mark))
            held = _sum_qty(self.by_symbol.get(symbol, ()), symbol)
            self.net[symbol].add(self.start_ns, float(held))

    def mark(self, ts_ns: int, symbol: str, price: Decimal) -> None:
        if self.marks.get(symbol) == price:
            return
        if not self.open and ts_ns >= self.start_ns:
            self.enter_window()
        self.marks[symbol] = price
        lines = self.by_symbol.get(symbol, ())
        self._revalue(lines, symbol)
        if self.open:
            self.prices[symbol].add(ts_ns, float(price))
            # a flat line's equity and exposure do not move with the price
            self._observe(ts_ns, [line for line in lines if line.qty])

    def fill(self, strategy: str, fill: Fill) -> None:
        ts = fill.ts_ns
        if not self.open and ts >= self.start_ns:
            self.enter_window()
        inst = self.instruments[fill.symbol]
        qty, price = rescale(fill, inst)
        if qty <= 0 or price <= 0 or fill.side not in ("buy", "sell"):
            raise BadInput(f"fill {fill.exec_id}: {fill.side} {qty} @ {price} is not a trade")
        self.clock.set_wall_ns(ts)
        self.book.apply_fill(
            fill.symbol, inst, fill.side,  # type: ignore[arg-type]
            qty, price, fee=fill.fee, fee_asset=fill.fee_asset if fill.fee else "",
            strategy=strategy, ts_ns=ts,
        )  # fmt: skip
        line = self.line(strategy, fill.symbol)
        position = self.book.position(fill.symbol, strategy)
        assert position is not None  # it was just traded
        line.qty, line.basis = position.qty, position.cost_basis
        line.realised, line.fees = position.realised, position.fees
        line.other_fees = dict(position.other_fees)
        for state in line.scopes:
            state.qty[fill.symbol] = _sum_qty(state.lines, fill.symbol)
        price_d = inst.price_decimal(price)
        qty_d = inst.qty_decimal(qty)
        if fill.symbol not in self.marked or fill.symbol not in self.marks:
            self.marks[fill.symbol] = price_d  # valued at fill prices (until a first mark)
        lines = self.by_symbol[fill.symbol]
        self._revalue(lines, fill.symbol)
        if not self.open:
            return
        notional = _WIDE.multiply(qty_d, price_d)
        line.fills += 1
        line.volume_base = _WIDE.add(line.volume_base, qty_d)
        line.volume_quote = _WIDE.add(line.volume_quote, notional)
        if fill.liquidity == "m":
            line.maker_fills += 1
            line.maker_quote = _WIDE.add(line.maker_quote, notional)
        if fill.symbol not in self.marked:
            self.prices[fill.symbol].add(ts, float(price_d))
        self.net[fill.symbol].add(ts, float(_sum_qty(lines, fill.symbol)))
        self.markers.setdefault(fill.symbol, []).append(
            FillMarker(ts, strategy, fill.side, price_d, qty_d, 1, fill.liquidity,
                       fill.fee, fill.fee_asset)
        )  # fmt: skip
        self._observe(ts, lines)


def _sum_qty(lines: Sequence[_Line], symbol: str) -> Decimal:
    total = _ZERO
    for line in lines:
        if line.inst.symbol == symbol:
            total = _WIDE.add(total, line.qty)
    return total


# ------------------------------------------------------------------------- building


def _window(record: RunRecord, orders: Sequence[Order], fills: Sequence[Fill]) -> tuple[int, int]:
    starts = [o.created_ns for o in orders] + [f.ts_ns for f in fills]
    ends = [o.updated_ns for o in orders] + [f.ts_ns for f in fills]
    for seq in record.marks.values():
        if seq:
            starts.append(seq[0].ts_ns)
            ends.append(seq[-1].ts_ns)
    start = record.since_ns if record.since_ns is not None else min(starts, default=0)
    end = record.end_ns if record.end_ns is not None else max(ends, default=start)
    end = max(end, start) if record.end_ns is None else end
    if end < start:
        raise BadInput("the report's window ends before it starts")
    return start, end


def _events(
    record: RunRecord, fills: Sequence[tuple[str, Fill]]
) -> Iterator[tuple[int, int, str, Mark | None, Fill | None]]:
    """Marks and fills in time order; at one instant, marks first."""

    def marks(
        symbol: str, seq: Sequence[Mark]
    ) -> Iterator[tuple[int, int, str, Mark | None, None]]:
        last = None
        for mark in seq:
            if last is not None and mark.ts_ns < last:
                raise BadInput(f"marks of {symbol} are not in time order at {mark.ts_ns}")
            if not mark.price.is_finite() or mark.price <= 0:
                raise BadInput(f"mark of {symbol} at {mark.ts_ns} is not a positive price")
            last = mark.ts_ns
            yield (mark.ts_ns, 0, symbol, mark, None)

    def fill_events() -> Iterator[tuple[int, int, str, None, Fill]]:
        for strategy, fill in fills:
            yield (fill.ts_ns, 1, strategy, None, fill)

    streams = [marks(s, seq) for s, seq in sorted(record.marks.items()) if seq]
    yield from heapq.merge(*streams, fill_events(), key=lambda e: (e[0], e[1]))


def build_report(
    record: RunRecord,
    *,
    sampling: str = "auto",
    progress: Progress = NULL_PROGRESS,
    chart_buckets: int = CHART_BUCKETS,
) -> Report:
    """Every figure of ``record`` (see the module's definitions)."""
    orders = {o.cl_ord_id: o for o in record.orders}
    unknown = sorted(set(record.marks) - {f.symbol for f in record.fills}
                     - {o.symbol for o in record.orders} - set(record.instruments))  # fmt: skip
    if unknown:
        raise BadInput(f"marks for symbols that have no instrument: {', '.join(unknown)}")
    instruments = instruments_of(record.orders, record.fills, record.instruments)
    fills = sorted(
        ((record.strategy_of(f, orders), f) for f in record.fills),
        key=lambda sf: (sf[1].ts_ns, sf[1].exec_id),
    )
    start, end = _window(record, record.orders, [f for _, f in fills])
    chosen = choose_sampling(end - start, sampling)
    symbols_of: dict[tuple[str, str], set[str]] = {}
    for strategy, done_fill in fills:
        quote = instruments[done_fill.symbol].quote
        symbols_of.setdefault((strategy, quote), set()).add(done_fill.symbol)
    for order in record.orders:
        if start <= order.created_ns <= end:
            quote = instruments[order.symbol].quote
            symbols_of.setdefault((order.strategy, quote), set()).add(order.symbol)
    replay = _Replay(
        record,
        subtotals={key for key, symbols in symbols_of.items() if len(symbols) > 1},
        instruments=instruments,
        start_ns=start,
        end_ns=end,
        sampling=chosen,
        buckets=chart_buckets,
    )
    in_window = [o for o in record.orders if start <= o.created_ns <= end]
    for order in in_window:
        replay.line(order.strategy, order.symbol)

    total = len(fills) + sum(len(seq) for seq in record.marks.values())
    progress.start("report", total)
    done = 0
    for ts, _, name, mark, fill in _events(record, fills):
        if ts > end:
            break
        if fill is not None:
            replay.fill(name, fill)
        elif mark is not None:
            replay.mark(ts, name, mark.price)
        done += 1
        if done % PROGRESS_EVERY == 0:
            progress.advance(PROGRESS_EVERY)
    if not replay.open:
        replay.enter_window()
    progress.advance(done % PROGRESS_EVERY)
    progress.finish()

    figures = [_figures(state, in_window, end, chosen) for state in replay.scopes.values()]
    figures = [f for f in figures if _worth_showing(f, replay)]
    figures.sort(key=lambda f: f.scope.sort_key())
    shown = {f.scope for f in figures}
    charts = _charts(record, replay, shown, instruments, end)
    return Report(
        label=record.label,
        meta=dict(record.meta),
        start_ns=start,
        end_ns=end,
        sampling=chosen,
        instruments=instruments,
        valued_at={s: "marks" if s in replay.marked else "fill prices" for s in instruments},
        quotes_from=(
            "recorded quotes" if record.quotes else ("orders" if charts.quotes else "none")
        ),
        figures=tuple(figures),
        charts=charts,
    )


def _worth_showing(f: Figures, replay: _Replay) -> bool:
    """Left out: scopes with nothing in the window (no order, no fill, no position), and a
    strategy's subtotal when it has one line (it would repeat that line)."""
    if f.scope.kind == "strategy" and len(replay.scopes[f.scope].lines) == 1:
        return False
    return bool(f.orders or f.fills or f.exposure_max or f.realised or f.unrealised)


def _places(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_RATIO_PLACES, context=_RATIO)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return _places(_RATIO.divide(numerator, denominator))


def _figures(state: _ScopeState, orders: Sequence[Order], end: int, s: Sampling) -> Figures:
    scope = state.scope
    lines = state.lines
    keys = {(line.strategy, line.inst.symbol) for line in lines}
    mine = [o for o in orders if (o.strategy, o.symbol) in keys]
    by_state: dict[str, int] = {}
    for order in mine:
        by_state[str(order.state)] = by_state.get(str(order.state), 0) + 1
    rested = [o for o in mine if o.state in RESTED_STATES]
    one_symbol = len(state.symbols) == 1
    filled_qty = sum((from_scaled(o.filled_qty, o.qty_precision) for o in rested), _ZERO)
    ordered_qty = sum((from_scaled(o.qty, o.qty_precision) for o in rested), _ZERO)

    def total(attr: str) -> Decimal:
        out = _ZERO
        for line in lines:
            out = _WIDE.add(out, getattr(line, attr))
        return out

    realised = _WIDE.subtract(total("realised"), total("realised0"))
    # A line's equity is realised + unrealised at its symbol's latest mark.
    unrealised = _WIDE.subtract(
        _WIDE.subtract(total("equity"), total("realised")), total("unrealised0")
    )
    other: dict[str, Decimal] = {}
    for line in lines:
        for asset, amount in line.other_fees.items():
            delta = _WIDE.subtract(amount, line.other0.get(asset, _ZERO))
            if delta:
                other[asset] = _WIDE.add(other.get(asset, _ZERO), delta)
    volume_quote = total("volume_quote")
    fills = sum(line.fills for line in lines)
    inventory = state.qty.get(state.symbols[0], _ZERO) if one_symbol else None
    returns = state.closes.returns()
    return Figures(
        scope=scope,
        symbols=tuple(sorted(state.symbols)),
        base=lines[0].inst.base if one_symbol else None,
        pnl=_WIDE.add(realised, unrealised),
        realised=realised,
        unrealised=unrealised,
        fees=_WIDE.subtract(total("fees"), total("fees0")),
        other_fees=tuple(sorted(other.items())),
        volume_base=total("volume_base") if one_symbol else None,
        volume_quote=volume_quote,
        orders=len(mine),
        orders_by_state=tuple(sorted(by_state.items())),
        fills=fills,
        maker_fills=sum(line.maker_fills for line in lines),
        fill_ratio=_ratio(Decimal(sum(1 for o in rested if o.filled_qty)), Decimal(len(rested))),
        qty_fill_ratio=_ratio(filled_qty, ordered_qty) if one_symbol else None,
        maker_share=_ratio(total("maker_quote"), volume_quote),
        max_drawdown=state.drawdown.max_drawdown,
        drawdown_peak_ns=state.drawdown.max_peak_ns,
        drawdown_trough_ns=state.drawdown.max_trough_ns,
        sharpe=sharpe(returns, s),
        sortino=sortino(returns, s),
        returns=len(returns),
        inventory=inventory,
        inventory_max_long=state.inv_long if one_symbol else None,
        inventory_max_short=state.inv_short if one_symbol else None,
        exposure=state.exposure.value,
        exposure_max=state.exposure.maximum,
        exposure_mean=state.exposure.mean(end).quantize(_MEAN_PLACES, context=_RATIO),
        time_in_market=_places(state.exposure.share(end)),
    )


# ------------------------------------------------------------------------- charts


def _charts(
    record: RunRecord,
    replay: _Replay,
    shown: set[Scope],
    instruments: Mapping[str, Instrument],
    end: int,
) -> Charts:
    start, buckets = replay.start_ns, replay.buckets
    states = [s for s in replay.scopes.values() if s.scope in shown]
    quotes_in = record.quotes or quotes_from_orders(record.orders, end)
    fills: dict[str, tuple[FillMarker, ...]] = {}
    aggregated: dict[str, bool] = {}
    for symbol, markers in replay.markers.items():
        aggregated[symbol] = len(markers) > MAX_FILL_MARKERS
        chosen = aggregate_fills(markers, start, end, buckets) if aggregated[symbol] else markers
        fills[symbol] = tuple(chosen)
    return Charts(
        equity={s.scope: s.equity_points.points() for s in states},
        drawdown={s.scope: s.drawdown_points.points() for s in states},
        exposure={s.scope: s.exposure_points.points() for s in states},
        inventory={s.scope: s.inventory_points.points() for s in states if s.scope.kind == "line"},
        net_inventory={
            symbol: replay.net[symbol].points()
            for symbol, lines in replay.by_symbol.items()
            if len({line.strategy for line in lines}) > 1
        },
        prices={s: pts for s, p in replay.prices.items() if len(pts := p.points())},
        fills=fills,
        fills_aggregated=aggregated,
        quotes={
            key: quote_points(samples, start, end, buckets)
            for key, samples in sorted(quotes_in.items())
            if samples and key[1] in instruments
        },
    )
