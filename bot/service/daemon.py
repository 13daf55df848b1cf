"""``krakenbot run``: the trading daemon, every component wired under one TaskGroup.

``Daemon(config, strategies).run()`` does, in order (crash-only: a restart after a crash
takes exactly this path, and the engine's reconciliation recovers from store and exchange):

1. the venue: Kraken (``mode: live``), or the simulator started in-process (``mode: paper``,
   ``bot.service.paper``); the store (SQLite), claimed for this mode, venue and key
   (``bot.store.owner``: another deployment's is refused); one aiohttp session; the REST
   client, with the store's nonce floor and (live) its REST counter as Kraken's may still
   hold it (``bot.service.wiring.assume_rest_counter``; recorded again after the last call); the
   instruments of every symbol (``AssetPairs``, retried); the key's permissions, each
   probed (``bot.service.permissions``: a missing one is a ``ConfigError``, exit 2);
2. one ``TaskGroup`` running: the public ``Feed`` (books, trades, tickers), the
   ``PrivateFeed`` (executions, fresh tokens from the ``TokenKeeper``), the
   ``ExecutionEngine`` (reconciliation), the ``DeadmanSwitch`` (armed, then refreshed), one
   timer driver per strategy runner, the ``pnl`` logger, the balance poller, the store's
   checkpoints (``run_checkpoints``: SQLite copies its WAL from a worker thread, never in
   a commit on the loop), the HTTP server (``/healthz``, ``/readyz``, ``/metrics``) when
   ``bot.service.http`` is present. Each long-lived task runs under ``bot.core.supervisor``: one
   that stops unasked is logged, counted and restarted; only fatal errors end the daemon;
3. the readiness gate (instruments, reconciled, every book valid, switch armed, private
   feed subscribed) opens: leftover orders of our strategies from a previous run are
   canceled, then each strategy's ``on_start`` runs and ``daemon_ready`` is logged. A
   place while the gate is closed is refused (REJECTED, reason ``not_ready``), never queued;
4. ``request_stop`` (SIGTERM/SIGINT) shuts down within ``shutdown.grace_s``: strategies'
   ``on_stop``, no new orders, intents in flight drained, open orders canceled (if
   ``shutdown.cancel_orders``) and confirmed, and only then the switch disarmed (timeout
   0, tried again on rate limits and transient failures within the grace); then the
   tasks end and the store is closed: ``shutdown_complete``, exit 0. A second signal
   exits at once (130), the switch left armed. ``reload`` (SIGHUP) validates the
   strategies' params from the YAML and hands them to ``on_params``, or rejects them all.

Exit statuses (``main_run``): 0 clean, 2 bad config (file:line) or a key without a
permission the daemon needs, 1 a fatal ``BotError``. Signals before the loop's handlers exist
and after they are gone are ``bot.service.signals``' (noted, replayed or logged: never fatal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import functools
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Final, Protocol, TypeVar

import aiohttp

from bot.config import Config, load_config
from bot.config.venues import Venue as VenueName
from bot.config.venues import venue_of
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.clock import Clock, SystemClock
from bot.core.errors import (
    BotError,
    ConfigError,
    ProtocolError,
    RateLimitError,
    StoreError,
    TransientError,
)
from bot.core.later import run_soon
from bot.core.log import configure_logging, get_logger
from bot.core.supervisor import Supervisor
from bot.core.waits import wait_event
from bot.execution import readiness as rd
from bot.execution.deadman import DeadmanSwitch
from bot.execution.engine import ExecutionEngine
from bot.execution.pnl import PositionBook
from bot.execution.private_feed import PrivateFeed
from bot.execution.risk import RiskGate
from bot.execution.tokens import TokenKeeper
from bot.execution.venue import Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken import system_status
from bot.kraken.instruments import Instrument, InstrumentTable, merge_rest_names
from bot.kraken.nonce import KEEP_AHEAD_EVERY_S, key_id
from bot.kraken.rest import KrakenRestClient
from bot.market.book import Book
from bot.market.feed import Feed
from bot.market.instrument_snapshot import fetch_instrument_snapshot
from bot.service import signals
from bot.service.http import HttpServer
from bot.service.metrics import Metrics
from bot.service.observe import Parts
from bot.service.paper import Endpoints, live_endpoints, paper_venue
from bot.service.permissions import (
    PERMISSIONS_CHECK,
    Missing,
    missing_error,
    probe,
    probes,
    recent_pass,
    record_pass,
)
from bot.service.preflight import load_deployment
from bot.service.view import TraderView
from bot.service.wiring import (
    assume_rest_counter,
    cancel_our_orders,
    close_paper_orders,
    freeze_startup_heap,
    http_server,
    metric_sources,
    order_venue,
    record_rest_counter,
    replay_fills,
)
from bot.store import Store, run_checkpoints
from bot.store.owner import StoreOwner, claim
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.loader import LoadedStrategy
from bot.strategy.order_path import build_order_path, route_market
from bot.strategy.runner import RunnerState, StrategyRunner

__all__ = ["EXIT_FORCED", "Daemon", "Runnable", "main_run"]

EXIT_FORCED: Final = 130
Components = dict[str, Callable[[], Coroutine[Any, Any, None]]]
"""The daemon's long-lived tasks by name, each run under the supervisor."""
RETRYABLE: Final = (TransientError, RateLimitError, ProtocolError)
T = TypeVar("T")


class Stopped(enum.Enum):
    """What ``Daemon._retried`` answers when a stop came before the call did."""

    STOPPED = "stopped"


"""Errors start-up and pollers wait out; any other (a bad key, a lockout) is fatal: exit 1."""
PNL_EVERY_S: Final = 5.0
BALANCES_EVERY_S: Final = 30.0
log = get_logger(component="daemon")


class Runnable(Protocol):
    """What ``main_run`` runs: one venue's ``Daemon``, or both venues'
    (``bot.service.both_daemon.BothDaemon``)."""

    exit_code: int

    def request_stop(self, reason: str = "requested") -> None: ...
    def reload(self) -> bool: ...
    async def run(self) -> None: ...


class Daemon:
    """The daemon; see the module docstring. ``clock`` is injectable for tests.

    ``metrics`` and ``serve_http`` are for a deployment that runs this daemon as one venue's
    side beside another (``bot.service.both_daemon``): its own metrics, and no HTTP face of
    its own (the deployment serves one for both)."""

    VENUE: ClassVar[VenueName] = "spot"

    def __init__(
        self,
        config: Config,
        strategies: list[LoadedStrategy] | None = None,
        *,
        config_path: Path | None = None,
        clock: Clock | None = None,
        pnl_every_s: float = PNL_EVERY_S,
        metrics: Metrics | None = None,
        serve_http: bool = True,
    ) -> None:
        self.config = config
        self.serve_http = serve_http
        self.loaded = list(strategies) if strategies is not None else []
        self.config_path = config_path
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.pnl_every_s = pnl_every_s
        self.metrics = metrics if metrics is not None else Metrics()
        self.exit_code = 0
        self.endpoints: Endpoints | None = None
        self.desk: Desk | None = None
        self.engine: ExecutionEngine | None = None
        self.deadman: DeadmanSwitch | None = None
        self.feed: Feed | None = None
        # The feed's books, a live read-only view kept once the feed is built: the desk reads
        # it on every order (the risk gate's mid), with no call into the feed and no new view.
        self._book_map: Mapping[str, Book] = MappingProxyType({})
        self._status_changed: Callable[[], None] | None = None  # PreTrade.follow_status's
        self.private: PrivateFeed | None = None
        self.gate = rd.ReadinessGate(clock=self.clock)
        self.supervisor = Supervisor(self.clock)
        self.runners: dict[str, StrategyRunner] = {}
        self.sim: Any = None  # the in-process SimServer in paper mode
        self.http: HttpServer | None = None
        # One venue of a deployment says which in its notices ("krakenbot paper futures").
        label = None if serve_http else f"krakenbot {config.mode} {self.VENUE}"
        self.view = TraderView(config, self.clock, self.metrics, self.gate, label=label)
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._started = asyncio.Event()
        # Called once the desk and engine are wired, before anything trades: a two-venue
        # deployment attaches its two-venue strategies' contexts here (``BothDaemon``).
        self.on_wired: Callable[[Desk, ExecutionEngine], None] | None = None

    # -- control ---------------------------------------------------------------------------

    def request_stop(self, reason: str = "requested") -> None:
        """Begin a graceful shutdown (SIGTERM/SIGINT). A second call while stopping exits
        the process at once (``force_exit``), leaving the switch armed."""
        if self._stopping:
            self.force_exit(reason)
            return
        self._stopping = True
        log.info("shutdown_requested", reason=reason)
        if self._stop is not None:
            self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (a second ``request_stop`` would force the exit)."""
        return self._stopping

    def force_exit(self, reason: str) -> None:
        log.warning("shutdown_forced", reason=reason, exit_code=EXIT_FORCED)
        sys.stderr.flush()
        os._exit(EXIT_FORCED)

    async def wait_started(self) -> None:
        """Until the gate has opened and the strategies have started."""
        await self._started.wait()

    def reload(self) -> bool:
        """Reload strategies' params from ``config_path``: all valid, or none applied."""
        return not self.reload_params()

    def reload_params(self) -> list[str]:
        """``reload``, returning the problems that rejected it (empty: applied)."""
        if self.config_path is None:
            log.warning("reload_rejected", problems=["no config file to reload"])
            return ["no config file to reload"]
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload_rejected", problems=exc.problems)
            return list(exc.problems)
        by_name = {
            s.name: s for s in new.strategies if s.enabled and venue_of(new, s) == self.VENUE
        }
        problems: list[str] = []
        updates: list[LoadedStrategy] = []
        for loaded in self.loaded:
            fresh = by_name.pop(loaded.name, None)
            if fresh is None:
                problems.append(f"strategy {loaded.name!r} removed or disabled: restart to apply")
                continue
            if fresh.class_ != loaded.config.class_ or fresh.symbols != loaded.config.symbols:
                problems.append(f"strategy {loaded.name!r}: class or symbols changed: restart")
                continue
            try:
                params = loaded.check_params(fresh.params, fresh.where)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            updates.append(LoadedStrategy(fresh, loaded.cls, params))
        problems += [f"strategy {name!r} added: restart to apply" for name in by_name]
        if problems:
            log.error("reload_rejected", problems=problems)
            return problems
        changed = []
        for old, fresh_loaded in zip(self.loaded, updates, strict=True):
            if fresh_loaded.params != old.params:
                changed.append(old.name)
                runner = self.runners.get(old.name)
                if runner is not None:
                    runner.update_params(fresh_loaded.params)
        self.loaded = updates
        log.info("reload_applied", changed=changed)
        return []

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until ``request_stop``; raises the first fatal ``BotError``."""
        self._stop = asyncio.Event()
        if self._stopping:
            self._stop.set()
        try:
            async with contextlib.AsyncExitStack() as stack:
                self.endpoints = await self._venue(stack)
                if self.serve_http:
                    self.http = await http_server(self)
                    stack.push_async_callback(self.http.close)
                store = Store.open(self.config.store.path)
                stack.callback(store.close)
                # Run before the close: a face that outlives this venue (a two-venue
                # deployment's) then reads no closed store.
                stack.callback(self.view.detach)
                # A store made by another mode, venue or key: refused.
                claim(store, self._store_owner(self.endpoints))
                session = await stack.enter_async_context(aiohttp.ClientSession())
                await self._serve(store, session)
        except BaseExceptionGroup as group:
            error = _first_bot_error(group)
            self.exit_code = 2 if isinstance(error, ConfigError) else 1
            raise error from None
        except BotError as error:
            self.exit_code = 2 if isinstance(error, ConfigError) else 1
            raise
        finally:
            if self.serve_http:
                log.info("shutdown_complete", exit_code=self.exit_code)
            else:  # one venue of a deployment, which says shutdown_complete
                log.info("venue_shutdown_complete", venue=self.VENUE, exit_code=self.exit_code)

    async def _venue(self, stack: contextlib.AsyncExitStack) -> Endpoints:
        """Where to trade: the simulator started in-process (paper, kept running by
        ``stack``) or Kraken (live)."""
        if self.config.mode == "paper":
            endpoints, self.sim = await stack.enter_async_context(paper_venue(self.config))
            return endpoints
        return live_endpoints(self.config)

    def _store_owner(self, ep: Endpoints) -> StoreOwner:
        return StoreOwner.of(self.config.mode, ep.rest_url, ep.api_key.reveal())

    async def _serve(self, store: Store, session: aiohttp.ClientSession) -> None:
        cfg, clock, ep = self.config, self.clock, self.endpoints
        assert ep is not None
        rest = KrakenRestClient(
            ep.rest_url, clock=clock, api_key=ep.api_key, api_secret=ep.api_secret,
            session=session, store=store, tier=cfg.venue.tier,
            timeout_s=cfg.venue.request_timeout_s, dedicated=cfg.venue.dedicated_connection,
        )  # fmt: skip
        # Live: Kraken's REST counter outlives a process; the store says what it may hold.
        kid = key_id(ep.api_key.reveal()) if cfg.mode == "live" else None
        if kid is not None:
            assume_rest_counter(store, rest, clock, kid)
        try:
            await rest.warm()  # the order connection, opened before the first order needs it
            async with self.view.serving(session, self.supervisor.keep, lambda: self.exit_code):
                await self._serve_with(store, rest)
        finally:
            await rest.close()  # the dedicated connection; the session is the caller's
            if kid is not None:  # every call has ended: a clean record for the next start
                try:
                    record_rest_counter(store, rest, clock, kid)
                except StoreError as exc:  # the next start assumes a full counter instead
                    log.warning("rest_counter_not_recorded", error=str(exc))

    async def _serve_with(self, store: Store, rest: KrakenRestClient) -> None:
        cfg, clock, ep = self.config, self.clock, self.endpoints
        assert ep is not None
        for check in rd.STANDARD_CHECKS:  # all declared first: the gate never opens early
            if check != rd.DEADMAN_ARMED or cfg.deadman.enabled:
                self.gate.add(check)
        self.gate.add(PERMISSIONS_CHECK)
        instruments = await self._instruments(rest)
        if instruments is None:
            return  # stopped while loading
        self.gate.set(rd.INSTRUMENTS_LOADED)
        if not await self._permissions(rest, store, instruments):
            return  # stopped while probing
        symbols = tuple(instruments)
        reads = KrakenRestVenue(rest, instruments)  # the venue port: Kraken spot over REST
        tokens = TokenKeeper(reads, clock)
        private = self.private = PrivateFeed(
            ep.ws_private_url, tokens, self._on_private, clock=clock,
            trading_counter=rest.trading_counter,  # Kraken's maxratecount and rate counts
        )  # fmt: skip
        venue = order_venue(cfg, reads, private, clock)  # venue.order_entry: websocket | rest
        desk, engine = self._order_path(store, venue, instruments)
        # Id blocks on record before trading, and a spare each, replaced off the order path.
        engine.prepare_ids((x.name for x in self.loaded), later=run_soon)
        if cfg.mode == "live":
            replay_fills(store, engine, desk.positions, instruments)
        else:  # the in-process simulator starts afresh: the last session's orders are gone
            close_paper_orders(store, clock)
        market = cfg.market.model_copy(update={"symbols": symbols})
        self._exchange_status(None)  # not ready until the exchange says it trades
        # The instrument channel stays subscribed: precision changes reach the books.
        feed = self.feed = Feed(
            ep.ws_public_url, market, self._on_market, clock=clock, instruments=instruments,
            on_status=self._exchange_status,
        )  # fmt: skip
        self._status_changed = engine.pretrade.follow_status()  # read from this feed on
        self._book_map = feed.books  # a view of its books: a book replaced shows at once
        # Followed, not read on every order: each owner tells the gate after every change
        # that may turn its probe (``ReadinessGate.follow``), and the dead man's switch
        # also says when it lapses by itself. An order's path reads the gate's flags only.
        feed.follow_valid(self.gate.follow(rd.BOOKS_VALID, feed.valid_probe(symbols)))
        private.on_change = self.gate.follow(
            rd.PRIVATE_SUBSCRIBED, functools.partial(getattr, private, "subscribed")
        )
        if cfg.deadman.enabled:
            deadman = self.deadman = DeadmanSwitch(
                venue, clock, timeout_s=cfg.deadman.timeout_s,
                refresh_s=cfg.deadman.refresh_interval_s,
                on_lapse=lambda: engine.request_reconcile("deadman lapse"),
                hold_reads=rest.hold_reads,  # while a refresh is due, it goes first
            )  # fmt: skip
            deadman.on_change = self.gate.follow(
                rd.DEADMAN_ARMED, functools.partial(getattr, deadman, "armed"),
                until=deadman.lapses_at,
            )  # fmt: skip
        for loaded in self.loaded:
            ctx = EngineContext(engine, desk, loaded.name, loaded.symbols)
            desk.add_context(ctx)
            runner = StrategyRunner(
                loaded.create(ctx), timers=ctx.timers, clock=clock,
                max_errors=loaded.config.max_errors,
                observe=self.metrics.handler_observer(loaded.name),
            )  # fmt: skip
            self.runners[loaded.name] = runner
            desk.add_runner(runner)
        if self.on_wired is not None:
            self.on_wired(desk, engine)
        for source in metric_sources(self, rest, tokens, venue):
            self.metrics.add_source(source)
        runners = desk.runners.values  # the dashboard's: a venue: both strategy's too
        self.view.attach(Parts(desk, engine, store, runners, symbols))
        log.info(
            "daemon_starting", mode=cfg.mode, rest_url=ep.rest_url, symbols=list(symbols),
            strategies=[x.name for x in self.loaded], store=str(cfg.store.path),
        )  # fmt: skip
        components: Components = {
            "feed": feed.run,
            "private-feed": private.run,
            "engine": engine.run,
            "deadman": self._deadman,
            "pnl": functools.partial(self._every, self.pnl_every_s, desk.periodic),
            "balances": functools.partial(self._balances, reads, store),
            "checkpoints": functools.partial(run_checkpoints, store, clock),
            "view": self.view.run,  # the dashboard's pictures and the notification rules
        }
        if cfg.venue.order_entry == "rest":
            # The nonce mark kept ahead through quiet spells: no order waits for its write.
            # (Orders over the WebSocket draw no nonce: there the task's write every 5 s
            # would only add fsyncs to the loop.)
            components["nonce-mark"] = functools.partial(
                self._every, KEEP_AHEAD_EVERY_S, rest.keep_nonce_ahead
            )
        await self._run_components(components, desk, engine)

    async def _run_components(
        self, components: Components, desk: Desk, engine: ExecutionEngine
    ) -> None:
        """Every component, the strategies' start and their timers under one
        ``TaskGroup`` until ``request_stop``; then the shutdown, and the tasks end."""
        keep = self.supervisor.keep  # a component that stops unasked is restarted, loudly
        freeze_startup_heap()  # what lives as long as the daemon: no collection walks it again
        async with asyncio.TaskGroup() as tg:
            desk.tasks.spawn_task = tg.create_task
            tasks = [
                tg.create_task(keep(n, run), name=f"keep:{n}") for n, run in components.items()
            ]
            tasks.append(tg.create_task(self._start_strategies(), name="start"))
            tasks += [
                tg.create_task(
                    keep(f"timers-{n}", r.run_timers, finished=_runner_ended(r)),
                    name=f"keep:timers-{n}",
                )
                for n, r in self.runners.items()
            ]
            assert self._stop is not None
            await self._stop.wait()
            await self._shutdown(engine)
            desk.tasks.spawn_task = None  # and the task kept ready for the next command ends
            for task in [*tasks, *desk.tasks.pending]:
                task.cancel()

    def _order_path(
        self, store: Store, venue: Venue, instruments: InstrumentTable
    ) -> tuple[Desk, ExecutionEngine]:
        """The desk and the engine, wired once (``bot.strategy.order_path``, the backtest's
        too). The feed is read when asked: it is built after them."""
        self.desk, self.engine = build_order_path(
            self.config, self.clock, self.gate, store=store, venue=venue, instruments=instruments,
            books=self._books, exchange_status=self._trading_state, metrics=self.metrics,
            risk_gate=self._risk_gate,
        )  # fmt: skip
        return self.desk, self.engine

    def _risk_gate(self, positions: PositionBook) -> RiskGate:
        """The pre-trade risk gate on ``positions`` (a venue's daemon may add its limits)."""
        return RiskGate.from_config(self.config, self.clock, positions)

    def _books(self) -> Mapping[str, Book]:
        return self._book_map

    def _trading_state(self) -> str | None:
        return None if self.feed is None else self.feed.exchange_status

    async def _instruments(self, rest: KrakenRestClient) -> InstrumentTable | None:
        """REST ``AssetPairs`` mapped onto the WS v2 instrument snapshot: WS v2 names and
        precisions, REST names for order entry (``bot.kraken.instruments``)."""
        wanted = self.config.symbols
        endpoints = self.endpoints
        assert endpoints is not None

        async def load() -> list[Instrument]:
            pairs = await rest.asset_pairs()
            ws = await fetch_instrument_snapshot(endpoints.ws_public_url, clock=self.clock)
            return merge_rest_names(pairs, ws)

        found = await self._retried(load, Backoff(BackoffPolicy(0.5, 10.0)), "instruments_failed")
        if found is Stopped.STOPPED:
            return None
        table = InstrumentTable(found)
        chosen = [table.lookup(s) for s in wanted]
        missing = [s for s, inst in zip(wanted, chosen, strict=True) if inst is None]
        if missing:
            raise ConfigError(f"market.symbols: not traded on the venue: {', '.join(missing)}")
        result = InstrumentTable([inst for inst in chosen if inst is not None])
        log.info("instruments_loaded", symbols=list(result))
        return result

    async def _retried(
        self, call: Callable[[], Awaitable[T]], backoff: Backoff, event: str, **fields: object
    ) -> T | Stopped:
        """``call()``'s answer, the transient errors (``RETRYABLE``) waited out with
        ``backoff`` and logged as ``event``; ``Stopped.STOPPED`` if a stop came first."""
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                return await call()
            except RETRYABLE as exc:
                delay = backoff.next_delay()
                log.warning(event, **fields, error=str(exc), retry_s=delay)
                await wait_event(self._stop, self.clock, delay)
        return Stopped.STOPPED

    async def _permissions(
        self, rest: KrakenRestClient, store: Store, instruments: InstrumentTable
    ) -> bool:
        """Probe each permission the key needs (``bot.service.permissions``), waiting out transient
        errors; a missing one closes the gate naming it and raises ``ConfigError`` (exit 2).
        False if stopped meanwhile."""
        assert self.endpoints is not None
        kid = key_id(self.endpoints.api_key.reveal())
        needed = probes(next(iter(instruments.values())))
        age_s = recent_pass(store, kid, self.clock.time_ns())
        if age_s is not None:
            self.gate.set(PERMISSIONS_CHECK)
            log.info("permissions_checked", cached=True, age_s=round(age_s, 1))
            return True
        backoff = Backoff(BackoffPolicy(0.5, 10.0))
        missing: list[Missing] = []
        for item in needed:
            found = await self._retried(
                functools.partial(probe, rest, item), backoff, "permission_probe_failed",
                method=item.method,
            )  # fmt: skip
            if found is Stopped.STOPPED:
                return False
            if found is not None:
                missing.append(found)
        if missing:
            self.gate.clear(
                PERMISSIONS_CHECK, "missing: " + "; ".join(m.describe() for m in missing)
            )
            raise missing_error(missing)
        self.gate.set(PERMISSIONS_CHECK)
        record_pass(store, kid, self.clock.time_ns())
        log.info("permissions_checked", permissions=[n.permission for n in needed])
        return True

    async def _deadman(self) -> None:
        """Arm the switch (retrying), then keep it refreshed."""
        if self.deadman is None:
            return
        backoff = Backoff(BackoffPolicy(0.5, 10.0))
        while True:
            try:
                await self.deadman.arm()
                break
            except RETRYABLE as exc:
                delay = backoff.next_delay()
                log.warning("deadman_arm_failed", error=str(exc), retry_s=delay)
                await self.clock.sleep(delay)
        await self.deadman.run()

    async def _start_strategies(self) -> None:
        await self.gate.wait()
        assert self.desk is not None
        assert self.engine is not None
        adopted = self.desk.adopt(self.engine.open_orders())
        leftovers = [h for h in adopted if h.order.strategy in self.runners]
        if leftovers:
            log.warning("leftover_orders_canceled", count=len(leftovers))
            for handle in leftovers:
                self.desk.contexts[handle.order.strategy].cancel(handle)
        if self._stopping:
            return
        for runner in self.runners.values():
            runner.start()
        self._started.set()
        log.info(
            "daemon_ready", mode=self.config.mode, venue=self.VENUE, strategies=list(self.runners),
            symbols=list(self.config.symbols),
            http=None if self.http is None or self.http.port is None else self.http.url,
        )  # fmt: skip
        self.view.started({
            "strategies": ", ".join(self.runners), "symbols": ", ".join(self.config.symbols),
        })  # fmt: skip

    async def _every(self, seconds: float, action: Callable[[], None]) -> None:
        while True:
            await self.clock.sleep(seconds)
            if self._started.is_set():
                action()

    async def _balances(self, venue: Venue, store: Store) -> None:
        assert self.desk is not None
        while True:
            try:
                self.desk.balances = dict(await venue.balances())
                store.save_balances(self.desk.balances, self.clock.time_ns())
            except RETRYABLE as exc:
                log.warning("balances_failed", error=str(exc))
            await self.clock.sleep(BALANCES_EVERY_S)

    # -- events ----------------------------------------------------------------------------

    def _on_market(self, event: object) -> None:
        assert self.desk is not None
        route_market(self.desk, self.gate, event)

    def _exchange_status(self, system: str | None) -> None:
        """The feed's ``status``: the readiness check that names the exchange's state, and
        the pre-trade stage's followed state (``PreTrade.follow_status``)."""
        ok, detail = system_status.readiness(system)
        self.gate.set(system_status.READINESS_CHECK, ok, detail if not ok else "")
        if self._status_changed is not None:
            self._status_changed()

    def _on_private(self, event: Any) -> None:
        assert self.engine is not None
        self.engine.on_private(event)
        self.gate.notify()

    # -- shutdown --------------------------------------------------------------------------

    async def _shutdown(self, engine: ExecutionEngine) -> None:
        cfg, desk = self.config, self.desk
        assert desk is not None
        log.info("shutdown_started", grace_s=cfg.shutdown.grace_s)
        clean = False
        try:
            async with asyncio.timeout(cfg.shutdown.grace_s):
                for runner in self.runners.values():
                    runner.stop()
                desk.accepting = False
                await desk.tasks.drain()
                left = (
                    await cancel_our_orders(engine, self.clock)
                    if cfg.shutdown.cancel_orders
                    else []
                )
                if left:
                    log.error("orders_left_open", cl_ord_ids=left, deadman="left armed")
                elif self.deadman is not None:
                    await self.deadman.disarm()
                clean = not left
        except TimeoutError:
            log.error("shutdown_timeout", grace_s=cfg.shutdown.grace_s, deadman="left armed")
        except BotError as exc:
            log.error("shutdown_failed", error=str(exc), deadman="left armed")
        desk.pnl.log()
        self.exit_code = 0 if clean else 1


# --------------------------------------------------------------------------- helpers


def _runner_ended(runner: StrategyRunner) -> Callable[[], bool]:
    """A runner's timers end with it (stopped, or halted after too many errors)."""
    return lambda: runner.state in (RunnerState.STOPPED, RunnerState.HALTED)


def _first_bot_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first ``BotError`` inside ``group`` (else the group): what ``main_run`` reports."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            inner = _first_bot_error(exc)
            if isinstance(inner, BotError):
                return inner
        elif isinstance(exc, BotError):
            return exc
    return group


async def _amain(daemon: Runnable) -> int:
    loop = asyncio.get_running_loop()
    handlers: dict[signal.Signals, Callable[[], object]] = {
        signal.SIGTERM: lambda: daemon.request_stop("SIGTERM"),
        signal.SIGINT: lambda: daemon.request_stop("SIGINT"),
        signal.SIGHUP: daemon.reload,
    }
    with signals.blocked():  # no signal between bot.service.signals' handlers and these
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        signals.replay(handlers)  # those that came during start-up, handled now
    try:
        await daemon.run()
    except BotError as exc:
        log.error("fatal_error", error=str(exc), kind=type(exc).__name__)
        raise
    finally:
        with signals.blocked():
            for sig in handlers:
                loop.remove_signal_handler(sig)
            signals.after_loop()  # a signal from here to the exit is logged, not fatal
    return daemon.exit_code


def main_run(
    args: argparse.Namespace, choose: Callable[[Config], Callable[..., Runnable]] | None = None
) -> int:
    """The ``krakenbot run`` subcommand: ``args.config`` (a Path) names the YAML;
    ``choose``: the daemon class for the loaded config (default ``Daemon``, spot)."""
    signals.install()  # bot.cli did it already for the real command; tests call this
    path = Path(args.config)

    def logging_from(config: Config) -> None:
        level = getattr(args, "log_level", None) or config.log.level
        configure_logging(level, getattr(args, "log_format", None) or config.log.format)

    deployment = load_deployment(path, on_config=logging_from)  # what check-config checks
    kind = Daemon if choose is None else choose(deployment.config)
    daemon = kind(deployment.config, deployment.strategies, config_path=path)
    signals.hold("startup")
    try:
        return asyncio.run(_amain(daemon))
    finally:
        signals.hold("exit")
        signals.drain()  # signals after the loop: logged, the exit status unchanged
