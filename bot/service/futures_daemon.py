"""``krakenbot run`` for a Kraken Futures deployment (a config with a ``futures:`` section).

``FuturesDaemon`` is the spot ``Daemon`` (``bot.service.daemon``: the readiness gate, the
desk and the engine wired once, the strategies' start and stop, the shutdown's cancels and
the switch's disarm, signals, reload) with Futures parts where spot's talk to Kraken spot:

1. the venue: Kraken Futures (``mode: live``: ``futures.rest_url``/``ws_url`` and
   ``futures.credentials``) or the Futures simulator started in-process (``mode: paper``,
   ``bot.service.futures_paper``); the store claimed for it (a Futures store is never a
   spot one); the REST v3 client with the store's nonce floor; the contracts
   (``/instruments``, retried; a symbol Kraken does not list is a ``ConfigError``); the
   key's General API access, probed (``bot.service.futures_permissions``: anything but
   Full Access is a ``ConfigError``, exit 2, and ``/readyz`` names it);
2. the venue port ``FuturesRestVenue``, the desk and the engine; in live mode the
   recorded fills replayed into positions (paper mode: the last session's orders expired
   with its simulator);
3. one ``TaskGroup``: the public feed into the strategies' books
   (``bot.market.futures_feed``), the private feed into the engine
   (``bot.execution.futures_feed``: a (re)subscription reconciles over REST, from open
   orders and fills), the engine, the dead-man's switch (``cancelallordersafter``, armed
   then refreshed like spot's), the timers, the PnL log, the balances and margin poller,
   the store's checkpoints, the trader's view;
4. the gate (contracts, reconciled, every book valid, the switch armed, the private feed
   subscribed, and the liquidation distance when ``futures.risk`` sets one) opens and the
   strategies start with leftover orders cancelled, as on spot.

Strategies use the same API, with ``ctx.derivatives(symbol)`` and ``ctx.margin()``
(``bot.strategy.futures_context``) reading the private feed's positions and margin. This
module owns that wiring and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

import aiohttp

from bot.config import Config
from bot.config.futures_schema import FuturesConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.core.errors import ConfigError
from bot.core.later import run_soon
from bot.core.log import get_logger
from bot.execution import readiness as rd
from bot.execution.deadman import DeadmanSwitch
from bot.execution.futures_feed import FuturesPrivateFeed
from bot.execution.futures_risk import (
    LIQUIDATION_CHECK,
    DerivativesLimits,
    FuturesRiskGate,
    liquidation_distance,
    liquidation_ok,
)
from bot.execution.orders import Order
from bot.execution.pnl import PositionBook
from bot.execution.risk import RiskGate, RiskLimits, TradingState
from bot.execution.venue_futures import FuturesRestVenue, as_instrument, sizes_of
from bot.futures.instruments import FuturesInstrument, FuturesInstrumentTable
from bot.futures.rest import FuturesRestClient
from bot.kraken.instruments import InstrumentTable, from_scaled
from bot.kraken.nonce import KEEP_AHEAD_EVERY_S, NonceGenerator, key_id
from bot.market.book import Book
from bot.market.futures_feed import FuturesMarketFeed
from bot.service import metrics as m
from bot.service.daemon import Components, Daemon, Stopped
from bot.service.futures_metrics import futures_source
from bot.service.futures_paper import futures_paper_venue
from bot.service.futures_permissions import FULL_ACCESS, PROBES, missing_error, probe
from bot.service.observe import Parts
from bot.service.paper import Endpoints
from bot.service.permissions import PERMISSIONS_CHECK
from bot.service.wiring import close_paper_orders, replay_fills
from bot.store import Store, run_checkpoints
from bot.store.owner import StoreOwner
from bot.strategy.futures_context import FuturesContext
from bot.strategy.runner import StrategyRunner

__all__ = ["FuturesDaemon", "futures_symbols"]

PAPER_FUTURES_VENUE: Final = "futures-simulator"
log = get_logger(component="daemon")


def futures_symbols(config: Config) -> tuple[str, ...]:
    """The contracts traded: ``futures.symbols``, else the strategies' symbols."""
    assert config.futures is not None
    if config.futures.symbols:
        return config.futures.symbols
    return tuple(dict.fromkeys(s for strat in config.strategies for s in strat.symbols))


def live_futures_endpoints(futures: FuturesConfig) -> Endpoints:
    creds = futures.credentials
    if creds is None:
        raise ConfigError(
            "futures.credentials: required in live mode (api_key_env, api_secret_env)"
        )
    return Endpoints(
        futures.rest_url, futures.ws_url, futures.ws_url, creds.api_key, creds.api_secret
    )


class FuturesDaemon(Daemon):
    """See the module docstring."""

    VENUE = "futures"
    market_feed: FuturesMarketFeed | None = None
    futures_private: FuturesPrivateFeed | None = None
    contracts: FuturesInstrumentTable | None = None

    @property
    def futures(self) -> FuturesConfig:
        assert self.config.futures is not None
        return self.config.futures

    async def _venue(self, stack: contextlib.AsyncExitStack) -> Endpoints:
        if self.config.mode == "paper":
            endpoints, self.sim = await stack.enter_async_context(futures_paper_venue(self.config))
            return endpoints
        return live_futures_endpoints(self.futures)

    def _store_owner(self, ep: Endpoints) -> StoreOwner:
        """A Futures store is never a spot one: paper claims the Futures simulator."""
        if self.config.mode == "paper":
            return StoreOwner("paper", PAPER_FUTURES_VENUE)
        return StoreOwner.of("live", ep.rest_url, ep.api_key.reveal())

    async def _serve(self, store: Store, session: aiohttp.ClientSession) -> None:
        # The notifiers' task around the run, and their last words after it.
        async with self.view.serving(session, self.supervisor.keep, lambda: self.exit_code):
            await self._serve_futures(store, session)

    async def _serve_futures(self, store: Store, session: aiohttp.ClientSession) -> None:
        cfg, clock, ep = self.config, self.clock, self.endpoints
        assert ep is not None
        kid = key_id(ep.api_key.reveal())
        nonces = NonceGenerator(  # the mark topped up on this loop, off the order's path
            clock, floor=store.get_nonce_floor(kid),
            persist=functools.partial(store.set_nonce_floor, kid), later=run_soon,
        )  # fmt: skip
        rest = FuturesRestClient(
            ep.rest_url, clock=clock, api_key=ep.api_key, api_secret=ep.api_secret,
            session=session, nonces=nonces, timeout_s=self.futures.request_timeout_s,
        )  # fmt: skip
        try:
            for check in rd.STANDARD_CHECKS:
                if check != rd.DEADMAN_ARMED or cfg.deadman.enabled:
                    self.gate.add(check)
            self.gate.add(PERMISSIONS_CHECK)
            contracts = await self._contracts(rest)
            if contracts is None:
                return  # stopped while loading
            self.gate.set(rd.INSTRUMENTS_LOADED)
            if not await self._access(rest):
                return  # stopped while probing
            venue = self._wire(store, rest, contracts)
            await self._run_tasks(store, venue)
        finally:
            await rest.close()

    def _wire(
        self, store: Store, rest: FuturesRestClient, contracts: FuturesInstrumentTable
    ) -> FuturesRestVenue:
        """The feeds, the venue port, the desk and engine, the switch, the strategies."""
        cfg, clock, ep = self.config, self.clock, self.endpoints
        assert ep is not None
        self.contracts = contracts
        table = InstrumentTable([as_instrument(fi) for fi in contracts.values()])
        private = self.futures_private = FuturesPrivateFeed(
            ep.ws_private_url, ep.api_key, ep.api_secret, self._on_private, clock=clock
        )
        self.gate.add(rd.PRIVATE_SUBSCRIBED, functools.partial(getattr, private, "subscribed"))
        venue = FuturesRestVenue(
            rest, contracts, clock, known_qty=sizes_of(self._engine_orders),
            reduce_only=self._reducing,
        )  # fmt: skip
        desk, engine = self._order_path(store, venue, table)
        engine.prepare_ids((x.name for x in self.loaded), later=run_soon)  # spare id blocks
        if cfg.mode == "live":
            replay_fills(store, engine, desk.positions, table)
        else:
            close_paper_orders(store, clock)
        market = self.market_feed = FuturesMarketFeed(
            ep.ws_public_url, [(fi, table[fi.symbol]) for fi in contracts.values()],
            self._on_market, clock=clock,
        )  # fmt: skip
        self.gate.add(rd.BOOKS_VALID, market.valid_probe(market.books))
        limit = self.futures.risk.min_liquidation_distance
        if limit is not None:
            self.gate.add(LIQUIDATION_CHECK, lambda: liquidation_ok(private.positions, limit))
        if cfg.deadman.enabled:
            deadman = self.deadman = DeadmanSwitch(
                venue, clock, timeout_s=cfg.deadman.timeout_s,
                refresh_s=cfg.deadman.refresh_interval_s,
                on_lapse=lambda: engine.request_reconcile("deadman lapse"),
            )  # fmt: skip
            self.gate.add(rd.DEADMAN_ARMED, functools.partial(getattr, deadman, "armed"))
        for loaded in self.loaded:
            ctx = FuturesContext(engine, desk, loaded.name, loaded.symbols, private)
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
        for source in (
            m.risk_source(desk.risk, [x.name for x in self.loaded]),
            m.positions_source(desk.positions),
            m.runners_source(self.runners.values()),
            m.orders_source(engine.open_orders),
            m.supervisor_source(self.supervisor),
        ):
            self.metrics.add_source(source)
        self.metrics.add_source(futures_source(market, private, venue))
        if self.deadman is not None:
            self.metrics.add_source(m.deadman_source(self.deadman))
        runners = desk.runners.values  # the dashboard's: a venue: both strategy's too
        self.view.attach(Parts(desk, engine, store, runners, tuple(table)))
        log.info(
            "daemon_starting", mode=cfg.mode, venue="futures", rest_url=ep.rest_url,
            symbols=list(table), strategies=[x.name for x in self.loaded],
            store=str(cfg.store.path),
        )  # fmt: skip
        return venue

    async def _run_tasks(self, store: Store, venue: FuturesRestVenue) -> None:
        """Every component under one ``TaskGroup`` until ``request_stop``, then the
        shutdown (``Daemon._shutdown``)."""
        desk, engine = self.desk, self.engine
        market, private = self.market_feed, self.futures_private
        assert desk is not None and engine is not None
        assert market is not None and private is not None
        components: Components = {
            "feed": market.run,
            "private-feed": private.run,
            "engine": engine.run,
            "deadman": self._deadman,
            "pnl": functools.partial(self._every, self.pnl_every_s, desk.periodic),
            "balances": functools.partial(self._balances, venue, store),
            "checkpoints": functools.partial(run_checkpoints, store, self.clock),
            "view": self.view.run,
            "account": functools.partial(self._every, self.pnl_every_s, self._log_account),
            # The nonce mark kept ahead through quiet spells: no order waits for its write.
            "nonce-mark": functools.partial(
                self._every, KEEP_AHEAD_EVERY_S, venue.rest.keep_nonce_ahead
            ),
        }
        await self._run_components(components, desk, engine)

    def _log_account(self) -> None:
        """Kraken's side of the books: each position with its funding (apart from the
        desk's ``pnl`` lines, which count fills and fees) and the margin account."""
        private = self.futures_private
        if private is None:
            return
        for pos in private.positions.values():
            distance = liquidation_distance(pos)
            log.info(
                "futures_position", symbol=pos.symbol, size=str(pos.size),
                entry_price=str(pos.entry_price), unrealized_pnl=_text(pos.unrealized_pnl),
                unrealized_funding=_text(pos.unrealized_funding),
                liquidation_distance=_text(distance),
            )  # fmt: skip
        margin = private.margin
        if margin is not None:
            log.info(
                "futures_margin", equity=str(margin.margin_equity),
                available=str(margin.available_margin),
                maintenance=str(margin.maintenance_margin),
                unrealized_funding=str(margin.unrealized_funding),
            )  # fmt: skip

    def _engine_orders(self) -> list[Order]:
        return [] if self.engine is None else self.engine.open_orders()

    def _resting(self, symbol: str, side: str) -> Decimal:
        """Our open quantity on one side of one contract, in contracts."""
        return sum(
            (
                from_scaled(o.remaining_qty, o.qty_precision)
                for o in self._engine_orders()
                if o.symbol == symbol and o.side == side
            ),
            Decimal(0),
        )

    def _reducing(self, order: Order) -> bool:
        """Kraken is told ``reduceOnly`` while the strategy (or the bot) is REDUCING."""
        desk = self.desk
        return (
            desk is not None and desk.risk.strategy_state(order.strategy) is TradingState.REDUCING
        )

    def _risk_gate(self, positions: PositionBook) -> RiskGate:
        cfg, private = self.config, self.futures_private
        assert private is not None  # built before the order path
        return FuturesRiskGate(
            self.clock, positions, RiskLimits.from_config(cfg.risk),
            {s.name: RiskLimits.from_config(cfg.strategy_risk(s)) for s in cfg.strategies},
            derivatives=DerivativesLimits.from_config(self.futures.risk), state=private,
            resting=self._resting, contracts=self.contracts,
        )  # fmt: skip

    def _books(self) -> Mapping[str, Book]:
        return {} if self.market_feed is None else self.market_feed.books

    async def _access(self, rest: FuturesRestClient) -> bool:
        """Probe the key's General API access (``bot.service.futures_permissions``), waiting
        out transient errors; a refusal closes the gate naming it and raises
        ``ConfigError`` (exit 2). False if stopped meanwhile."""
        backoff = Backoff(BackoffPolicy(0.5, 10.0))
        for item in PROBES:
            refused = await self._retried(
                functools.partial(probe, rest, item), backoff, "permission_probe_failed",
                endpoint=item.endpoint,
            )  # fmt: skip
            if refused is Stopped.STOPPED:
                return False
            if refused is not None:  # a read refused: the write would be too; say one thing
                self.gate.clear(PERMISSIONS_CHECK, f"missing {FULL_ACCESS}: {refused.describe()}")
                raise missing_error([refused])
        self.gate.set(PERMISSIONS_CHECK)
        log.info("permissions_checked", permissions=[FULL_ACCESS])
        return True

    async def _contracts(self, rest: FuturesRestClient) -> FuturesInstrumentTable | None:
        """``/instruments``, retried; only the deployment's contracts are kept."""
        wanted = futures_symbols(self.config)
        listed = await self._retried(
            rest.instruments, Backoff(BackoffPolicy(0.5, 10.0)), "instruments_failed"
        )
        if listed is Stopped.STOPPED:
            return None
        found = FuturesInstrumentTable(listed)
        chosen: list[FuturesInstrument] = []
        missing = []
        for symbol in wanted:
            fi = found.lookup(symbol)
            if fi is None:
                missing.append(symbol)
            else:
                chosen.append(fi)
        if missing:
            raise ConfigError(
                f"futures.symbols: not listed by Kraken Futures: {', '.join(missing)}"
            )
        log.info("instruments_loaded", symbols=[fi.symbol for fi in chosen])
        return FuturesInstrumentTable(chosen)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
