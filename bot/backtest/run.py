"""``run_backtest(spec)``: the configured strategies, on recorded data, through the daemon's code.

A backtest runs what ``krakenbot run`` runs (the same strategy API and runners, the desk's
risk gate and positions, the execution engine and its order state machine, the same
SQLite store; all wired by ``bot.strategy.order_path``, the daemon's own construction)
against the simulator's matching engine in this process (``BacktestVenue``, the venue
port), on a ``SimClock`` driven by the data's timestamps: no sockets, no sleeping.

The run: every data item at its time (``BacktestMarket``), and between items everything
the venue and the components scheduled (orders arriving after the latency, answers and
fills coming back, strategy timers) at its own time. Strategies start once the readiness
gate opens (every book valid, the engine reconciled) and the clock has reached
``from_ns``; items before it warm the books up. At the end of the data (or ``to_ns``) the
strategies stop, their open orders are cancelled (as ``shutdown.cancel_orders`` says) and
what is still in flight is let finish; then the report is built from the store
(``bot.research``) and, with ``out_dir``, written there (``report.json``, ``report.html``).

Deterministic: the same spec and data give the same orders, fills, store rows and
``report.json`` bytes (ids come from ``seed``; nothing reads the host's clock).
``run_backtest`` may be called many times in one process, and in worker processes: each
call builds everything afresh; ``params`` overrides a strategy's params for that call.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any, Final

from bot.backtest.clock import SimClock, settle
from bot.backtest.data import (
    BadData,
    Frame,
    Item,
    data_paths,
    open_data,
    trade_only_symbols,
)
from bot.backtest.fees import fees_for_volume
from bot.backtest.market import BacktestMarket
from bot.backtest.venue import BacktestVenue
from bot.config import Config, load_config
from bot.core.errors import BotError, ConfigError
from bot.core.log import get_logger
from bot.execution import readiness as rd
from bot.execution.ids import IdBlocks
from bot.execution.venue import ExecutionsSubscribed
from bot.kraken.instruments import InstrumentTable, instruments_from_ws_frame
from bot.research.figures import Report, build_report
from bot.research.record import RunRecord
from bot.research.report_json import report_to_json
from bot.research.store_reader import read_store
from bot.sim.exchange import Exchange
from bot.sim.live_source import LiveMarket
from bot.sim.pairs import default_instruments
from bot.store import Store
from bot.store.owner import StoreOwner, claim
from bot.strategy.context import EngineContext
from bot.strategy.loader import LoadedStrategy, load_strategies
from bot.strategy.order_path import build_order_path
from bot.strategy.runner import StrategyRunner

__all__ = ["BacktestResult", "BacktestSpec", "run_backtest", "run_backtest_async"]

log = get_logger(component="backtest")
DEFAULT_LATENCY_MS: Final = 5.0
STORE_NAME: Final = "backtest.db"
BACKTEST_VENUE: Final = "backtest"
_FLUSH_S: Final = 5.0  # after the data: how long in-flight orders get to finish
_INSTRUMENT_SCAN: Final = 50  # leading items searched for an instrument snapshot
_PROGRESS_EVERY: Final = 1000
_NEVER: Final = 2**63


@dataclass(frozen=True)
class BacktestSpec:
    """One backtest. ``config``: a deployment file or a loaded ``Config`` (its strategies,
    symbols, risk limits, ``sim.balances`` as the account's funds, ``market.book_depth``).
    ``data``: recorder files or directories, or trade-history CSVs. ``from_ns``/``to_ns``:
    the window traded (data before it warms the books). ``latency_ms``: each way.
    ``params``: per strategy name, params that override the file's for this run.
    ``store_path``: where orders and fills go (default ``out_dir/backtest.db``, else a new
    temporary directory's); it must not exist yet. ``instruments``: a WS v2 instrument
    snapshot file (default: the data's own, else the simulator's pair table).
    ``fee_volume_usd``: the 30-day volume that picks Kraken's fee tier. ``progress``: called
    with the frames done so far, now and then."""

    config: Path | Config
    data: tuple[Path, ...]
    from_ns: int | None = None
    to_ns: int | None = None
    latency_ms: float = DEFAULT_LATENCY_MS
    seed: int = 0
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    out_dir: Path | None = None
    store_path: Path | None = None
    instruments: Path | None = None
    fee_volume_usd: Decimal = Decimal(0)
    progress: Callable[[int], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest did: its store (open it with ``krakenbot report --store``), the
    report (``report.figures``; ``report_json`` is ``report.json``'s text), and counts.
    ``wall_s`` is the only figure that depends on the host."""

    store_path: Path
    report: Report
    report_json: str
    frames: int
    book_frames: int
    gaps: int
    orders: int
    fills: int
    start_ns: int
    end_ns: int
    wall_s: float


def run_backtest(spec: BacktestSpec) -> BacktestResult:
    """Run ``spec`` to the end of its data (see the module docstring). Raises
    ``ConfigError`` (``BadData`` among them) for unusable input, ``BotError`` otherwise."""
    return asyncio.run(run_backtest_async(spec))


async def run_backtest_async(spec: BacktestSpec) -> BacktestResult:
    """``run_backtest`` inside a running event loop (it never blocks on anything but the
    CPU and the store)."""
    started = time.perf_counter()
    config = spec.config if isinstance(spec.config, Config) else load_config(spec.config)
    strategies = _strategies(config, spec.params)
    paths = data_paths(spec.data)
    symbols = _symbols(config, strategies)
    instruments = _instruments(spec, paths, symbols)
    items = open_data(paths, instruments, symbols)
    first = next(items, None)
    if first is None:
        raise BadData("the data holds no frame")
    store_path = _store_path(spec)
    run = _Run(
        spec, config, strategies, instruments, symbols=symbols,
        trade_only=trade_only_symbols(paths, instruments, symbols), start_ns=first.at_ns,
        store_path=store_path,
    )  # fmt: skip
    try:
        await run.drive(chain([first], items))
    finally:
        run.store.close()
    return _result(run, store_path, time.perf_counter() - started)


# --------------------------------------------------------------------------- the run


class _Run:
    """Everything one backtest builds, wired as the daemon wires it."""

    def __init__(
        self,
        spec: BacktestSpec,
        config: Config,
        strategies: Sequence[LoadedStrategy],
        instruments: InstrumentTable,
        *,
        symbols: tuple[str, ...],
        trade_only: frozenset[str],
        start_ns: int,
        store_path: Path,
    ) -> None:
        self.spec, self.config, self.symbols = spec, config, symbols
        self.clock = clock = SimClock(start_ns)
        self.store = store = Store.open(store_path)
        store.skip_fsync()  # a backtest's rows are made again by running it again
        claim(store, StoreOwner(BACKTEST_VENUE, BACKTEST_VENUE))
        live = LiveMarket(instruments)
        fees = fees_for_volume(spec.fee_volume_usd)
        self.exchange = exchange = Exchange(
            instruments.values(), seed=spec.seed, fees=fees, market=live
        )
        live.attach(exchange)
        self.venue = venue = BacktestVenue(
            exchange, instruments, clock, latency_ns=round(spec.latency_ms * 1_000_000)
        )
        for asset, amount in config.sim.balances.items():
            exchange.deposit(venue.account, asset, amount)
        exchange.accounts.set_fees(venue.account, fees)
        depth = config.market.book_depth
        self.market = market = BacktestMarket(
            instruments, live, venue, clock, depth=depth, trade_only=trade_only
        )
        venue.on_arrival = market.sync
        self.gate = gate = rd.ReadinessGate(clock=clock)
        gate.add(rd.INSTRUMENTS_LOADED)
        gate.set(rd.INSTRUMENTS_LOADED)
        gate.add(rd.PRIVATE_SUBSCRIBED)
        gate.add(rd.BOOKS_VALID, lambda: market.books_valid(symbols))
        ids = IdBlocks(store, clock, random_bytes=random.Random(spec.seed).randbytes)
        self.desk, self.engine = build_order_path(
            config, clock, gate, store=store, venue=venue, instruments=instruments,
            books=lambda: market.frames.books, exchange_status=lambda: None, ids=ids,
            extra_mids=market.mids if trade_only else None,
        )  # fmt: skip
        venue.sink = self._on_private
        market.attach(self.desk, gate)
        self.engine.prepare_ids(s.name for s in strategies)
        self.runners: dict[str, StrategyRunner] = {}
        for loaded in strategies:
            ctx = EngineContext(self.engine, self.desk, loaded.name, loaded.symbols)
            self.desk.add_context(ctx)
            runner = StrategyRunner(
                loaded.create(ctx), timers=ctx.timers, clock=clock,
                max_errors=loaded.config.max_errors,
            )  # fmt: skip
            self.runners[loaded.name] = runner
            self.desk.add_runner(runner)
        self.started = False
        self.clock_start = self.end_ns = start_ns

    def _on_private(self, event: Any) -> None:
        self.engine.on_private(event)
        self.gate.notify()

    async def drive(self, items: Iterator[Item]) -> None:
        spec, clock, market, desk = self.spec, self.clock, self.market, self.desk
        from_ns = spec.from_ns if spec.from_ns is not None else 0
        to_ns = spec.to_ns
        progress = spec.progress
        async with asyncio.TaskGroup() as tg:
            desk.tasks.spawn_task = tg.create_task
            tasks = [tg.create_task(self.engine.run(), name="engine")]
            tasks += [
                tg.create_task(r.run_timers(), name=f"timers-{n}") for n, r in self.runners.items()
            ]
            self._on_private(ExecutionsSubscribed(None))  # the venue's executions are live
            self.gate.set(rd.PRIVATE_SUBSCRIBED)
            await settle()
            run_until, push, next_due = clock.run_until, market.push, clock.next_due_ns
            ready: Any = getattr(asyncio.get_running_loop(), "_ready", True)  # see settle
            end = to_ns if to_ns is not None else _NEVER
            for count, item in enumerate(items, 1):
                at = item.at_ns
                if at >= end:
                    break
                due = next_due()
                if due is not None and due <= at:
                    await run_until(at)
                else:
                    clock.move_to(at)
                push(item)
                if ready:  # something was started: let it run (else nothing to wait for)
                    await settle()
                if not self.started and at >= from_ns and self.gate.is_open:
                    self._start()
                if progress is not None and not count % _PROGRESS_EVERY:
                    progress(count)
            self.end_ns = clock.time_ns()
            await self._stop()
            desk.tasks.spawn_task = None
            for task in [*tasks, *desk.tasks.pending]:
                task.cancel()

    def _start(self) -> None:
        self.started = True
        for runner in self.runners.values():
            runner.start()
        log.info("backtest_started", at_ns=self.clock.time_ns(), strategies=list(self.runners))

    async def _stop(self) -> None:
        """As the daemon's shutdown: strategies stopped, no new orders, our open orders
        cancelled (``shutdown.cancel_orders``), what is in flight let finish (within
        ``_FLUSH_S`` of simulated time)."""
        clock, desk, engine = self.clock, self.desk, self.engine
        for runner in self.runners.values():
            runner.stop()
        desk.accepting = False
        await settle()
        if self.config.shutdown.cancel_orders:
            for order in engine.open_orders():
                if not order.cancel_pending:
                    desk.tasks.spawn(_cancel(self, order.cl_ord_id))
            await settle()
        await clock.run_until(clock.time_ns() + round(_FLUSH_S * 1e9))
        # What still waits now waits on a clock that no longer moves: the caller cancels it
        # (never ``drain``, which would wait for ever).


async def _cancel(run: _Run, cl_ord_id: str) -> None:
    try:
        await run.engine.cancel(cl_ord_id)
    except BotError as exc:
        log.warning("backtest_cancel_failed", cl_ord_id=cl_ord_id, error=str(exc))


# --------------------------------------------------------------------------- helpers


def _strategies(config: Config, overrides: Mapping[str, Mapping[str, Any]]) -> list[LoadedStrategy]:
    loaded = load_strategies(config.strategies)
    names = {s.name for s in loaded}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"params for strategies not in the config: {', '.join(unknown)}")
    out = []
    for s in loaded:
        extra = overrides.get(s.name)
        if extra:
            params = s.check_params({**s.config.params, **extra}, f"params override of {s.name}")
            out.append(LoadedStrategy(s.config, s.cls, params))
        else:
            out.append(s)
    return out


def _symbols(config: Config, strategies: Sequence[LoadedStrategy]) -> tuple[str, ...]:
    found = dict.fromkeys(config.symbols)
    for s in strategies:
        found.update(dict.fromkeys(s.symbols))
    if not found:
        raise ConfigError("a backtest needs symbols (market.symbols or a strategy's)")
    return tuple(found)


def _instruments(
    spec: BacktestSpec, paths: Sequence[Path], symbols: tuple[str, ...]
) -> InstrumentTable:
    """The spec's instrument file, else the data's leading instrument snapshot, else the
    simulator's pair table (``bot.sim.pairs``), restricted to ``symbols``."""
    table: InstrumentTable | None = None
    if spec.instruments is not None:
        table = _table_from(spec.instruments.read_bytes(), str(spec.instruments))
    else:
        table = _leading_snapshot(paths)
    chosen = []
    for symbol in symbols:
        inst = table.lookup(symbol) if table is not None else None
        if inst is None:
            try:
                inst = default_instruments((symbol,))[symbol]
            except KeyError:
                raise ConfigError(
                    f"no precisions for {symbol}: pass an instrument snapshot file"
                ) from None
        chosen.append(inst)
    return InstrumentTable(chosen)


def _table_from(raw: bytes, where: str) -> InstrumentTable:
    import orjson

    try:
        return InstrumentTable(instruments_from_ws_frame(orjson.loads(raw)))
    except (orjson.JSONDecodeError, BotError) as exc:
        raise BadData(f"{where}: not a WS v2 instrument snapshot: {exc}") from exc


def _leading_snapshot(paths: Sequence[Path]) -> InstrumentTable | None:
    captures = [p for p in paths if not p.name.lower().endswith((".csv", ".csv.gz"))]
    if not captures:
        return None
    for n, item in enumerate(open_data(captures[:1], InstrumentTable(), ())):
        if n >= _INSTRUMENT_SCAN:
            break
        if type(item) is Frame and b'"channel":"instrument"' in item.raw:
            with contextlib.suppress(BadData):
                return _table_from(item.raw, str(captures[0]))
    return None


def _store_path(spec: BacktestSpec) -> Path:
    if spec.store_path is not None:
        path = spec.store_path
    elif spec.out_dir is not None:
        path = spec.out_dir / STORE_NAME
    else:
        path = Path(tempfile.mkdtemp(prefix="krakenbot-backtest-")) / STORE_NAME
    if path.exists():
        raise BadData(f"{path}: exists already (a backtest writes a new store)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _result(run: _Run, store_path: Path, wall_s: float) -> BacktestResult:
    snapshot = read_store(store_path)
    record = RunRecord(
        label=f"backtest of {', '.join(run.runners) or 'no strategy'}",
        orders=snapshot.orders, fills=snapshot.fills, owners=snapshot.owners,
        instruments=dict(run.venue.instruments), marks=run.market.marks,
        meta={"mode": "backtest", "latency_ms": f"{run.spec.latency_ms:g}",
              "seed": str(run.spec.seed)},
    )  # fmt: skip
    report = build_report(record)
    frames = run.market.frames.stats
    return BacktestResult(
        store_path=store_path, report=report, report_json=report_to_json(report),
        frames=run.market.frame_count, book_frames=frames.book_frames, gaps=run.market.gaps,
        orders=len(snapshot.orders), fills=len(snapshot.fills), start_ns=run.clock_start,
        end_ns=run.end_ns, wall_s=wall_s,
    )  # fmt: skip
