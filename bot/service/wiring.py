"""Small pieces of the daemon's wiring: metrics sources, the HTTP face, shutdown cancels.

This module owns helpers ``bot.service.daemon`` composes: which ``bot.service.metrics``
sources read which component (``metric_sources``), the ``HttpServer`` built on the daemon's
gate and metrics with the trader's view (dashboard, control API) on it (``http_server``),
the shutdown's "cancel our open orders and see them gone" (``cancel_our_orders``), what a
start recovers from the store
(``replay_fills`` in live mode, ``close_paper_orders`` in paper mode, and what Kraken's
REST counter may still hold: ``assume_rest_counter`` at start, ``record_rest_counter``
after the last call), the venue the order path writes through (``order_venue``:
``venue.order_entry``), and the start-up heap frozen before trading
(``freeze_startup_heap``). It keeps no state of its own.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Mapping, Sequence
from typing import Final, Protocol

from bot.config import Config
from bot.core import gc_ticks
from bot.core.clock import Clock
from bot.core.errors import BotError
from bot.core.log import get_logger
from bot.core.supervisor import Supervisor
from bot.execution import orders as o
from bot.execution.deadman import DeadmanSwitch
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import OrderState
from bot.execution.pnl import PositionBook
from bot.execution.private_feed import PrivateFeed
from bot.execution.readiness import ReadinessGate
from bot.execution.tokens import TokenKeeper
from bot.execution.venue import Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.execution.venue_ws import KrakenWsVenue, WsOrderEntry
from bot.kraken.instruments import InstrumentTable
from bot.kraken.ratelimit import start_value
from bot.kraken.rest import KrakenRestClient
from bot.market.feed import Feed
from bot.service import metrics as m
from bot.service.control import Controls
from bot.service.http import HttpServer
from bot.service.paper import Endpoints
from bot.service.view import TraderView
from bot.store import Store
from bot.strategy.desk import Desk
from bot.strategy.loader import LoadedStrategy
from bot.strategy.runner import StrategyRunner

__all__ = [
    "DaemonView",
    "assume_rest_counter",
    "cancel_our_orders",
    "close_paper_orders",
    "freeze_startup_heap",
    "http_server",
    "metric_sources",
    "order_venue",
    "record_rest_counter",
    "replay_fills",
]

log = get_logger(component="daemon")
CONFIRM_POLL_S: Final = 0.1
RECONCILE_EVERY: Final = 10  # polls between REST reconciliations while confirming cancels


class DaemonView(Protocol):
    """The running daemon as these helpers read it (``bot.service.daemon.Daemon``): named
    here so that this module, which the daemon composes, does not import the daemon."""

    @property
    def config(self) -> Config: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def metrics(self) -> m.Metrics: ...
    @property
    def gate(self) -> ReadinessGate: ...
    @property
    def supervisor(self) -> Supervisor: ...
    @property
    def endpoints(self) -> Endpoints | None: ...
    @property
    def loaded(self) -> Sequence[LoadedStrategy]: ...
    @property
    def runners(self) -> Mapping[str, StrategyRunner]: ...
    @property
    def desk(self) -> Desk | None: ...
    @property
    def feed(self) -> Feed | None: ...
    @property
    def private(self) -> PrivateFeed | None: ...
    @property
    def deadman(self) -> DeadmanSwitch | None: ...
    @property
    def engine(self) -> ExecutionEngine | None: ...
    @property
    def view(self) -> TraderView: ...
    def reload_params(self) -> list[str]: ...


def metric_sources(
    daemon: DaemonView, rest: KrakenRestClient, tokens: TokenKeeper, venue: Venue
) -> list[m.Source]:
    """One scrape-time source per component the daemon runs (``venue``: the one orders
    are written through; its WebSocket order entry's, when it has one)."""
    desk, engine = daemon.desk, daemon.engine
    assert desk is not None and engine is not None
    assert daemon.feed is not None and daemon.private is not None
    sources = [
        m.feed_source(daemon.feed),
        m.private_feed_source(daemon.private),
        m.rest_source(rest),
        m.risk_source(desk.risk, [x.name for x in daemon.loaded]),
        m.positions_source(desk.positions),
        m.runners_source(daemon.runners.values()),
        m.orders_source(engine.open_orders),
        m.supervisor_source(daemon.supervisor),
    ]
    if daemon.deadman is not None:
        sources.append(m.deadman_source(daemon.deadman))
    if isinstance(venue, KrakenWsVenue):
        sources.append(m.ws_orders_source(venue))
    del tokens  # token stats are not exported yet
    return sources


async def http_server(daemon: DaemonView) -> HttpServer:
    """The HTTP face on ``http:``, listening (unless ``http.enabled`` is false)."""

    def facts() -> dict[str, object]:
        ep = daemon.endpoints
        return {
            "mode": daemon.config.mode,
            "venue": "" if ep is None else ep.rest_url,
            "strategies": ", ".join(x.name for x in daemon.loaded),
            "symbols": ", ".join(daemon.config.symbols),
        }

    server = HttpServer(daemon.config.http, daemon.metrics, daemon.gate, facts, daemon.clock)
    controls = Controls(lambda: daemon.desk, daemon.reload_params)
    daemon.view.install(server, controls)  # the dashboard at /, the control API
    daemon.metrics.add_source(m.readiness_source(daemon.gate))
    await server.start()
    return server


async def cancel_our_orders(engine: ExecutionEngine, clock: Clock) -> list[str]:
    """Cancel every open order of ours and wait until the exchange shows them closed;
    returns those still open if the caller's timeout does not end it first (never: it
    polls until done, so bound it)."""
    orders = engine.open_orders()
    if not orders:
        return []
    log.info("shutdown_canceling", count=len(orders))
    await asyncio.gather(*(_cancel(engine, o.cl_ord_id) for o in orders))
    polls = 0
    while engine.open_orders():
        polls += 1
        if polls % RECONCILE_EVERY == 0:
            try:
                await engine.reconcile()
            except BotError as exc:
                log.warning("shutdown_reconcile_failed", error=str(exc))
            for order in engine.open_orders():
                if not order.cancel_pending:
                    await _cancel(engine, order.cl_ord_id)
        await clock.sleep(CONFIRM_POLL_S)
    log.info("shutdown_orders_canceled", count=len(orders))
    return []


async def _cancel(engine: ExecutionEngine, cl_ord_id: str) -> None:
    try:
        await engine.cancel(cl_ord_id)
    except BotError as exc:
        log.warning("shutdown_cancel_failed", cl_ord_id=cl_ord_id, error=str(exc))


def order_venue(config: Config, rest: KrakenRestVenue, private: PrivateFeed, clock: Clock) -> Venue:
    """The venue the engine and the switch write through: ``venue.order_entry: rest``, the
    REST venue itself; ``websocket``, writes on the private feed's connection (REST's
    while it is down; reads stay REST's), charged on REST's trading counter."""
    if config.venue.order_entry == "rest":
        return rest
    entry = WsOrderEntry(
        private, rest.rest.trading_counter, clock, ack_timeout_s=config.venue.ack_timeout_s
    )
    log.info("order_entry", via="websocket", fallback="rest")
    return KrakenWsVenue(rest, entry)


def freeze_startup_heap() -> int:
    """Collect, then move every object alive now (modules, instruments, the wired
    components) out of the collector's sight (``gc.freeze``): they live as long as the
    daemon, and a full collection on the order path would otherwise walk them all. Returns
    how many were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    gc_ticks.install()  # and from now on, collections between ticks (bot.core.gc_ticks)
    log.info("startup_heap_frozen", objects=frozen, gc_between_ticks=True)
    return frozen


def assume_rest_counter(store: Store, rest: KrakenRestClient, clock: Clock, key: str) -> float:
    """Before the first private call: start the REST counter from what Kraken's may still
    hold of the previous process's calls (``ratelimit.start_value``): the value it recorded
    at a clean stop, else full at its nonce mark (an unclean stop), else empty. The record
    is replaced by a "running" mark at once, so a crash of this process is seen as one by
    the next. ``key``: the API key's ``key_id``. Returns the value assumed."""
    name = f"{_REST_COUNTER}.{key}"
    saved, raw = None, store.get_meta(name)
    try:
        found = json.loads(raw) if raw is not None else None
        if isinstance(found, dict):
            saved = (float(found["value"]), int(found["at_ns"]))
    except (ValueError, KeyError, TypeError):
        saved = None  # "running", or unreadable: as after an unclean stop
    store.set_meta(name, "running")
    mark = store.get_nonce_floor(key) or None
    value = start_value(
        rest.rest_counter.limits, clock.time_ns(), saved=saved, last_sent_bound_ns=mark
    )
    rest.rest_counter.assume(value, clock.monotonic())
    why = "clean_stop" if saved is not None else "unclean_stop" if mark else "first_use"
    log.info("rest_counter_assumed", value=round(value, 2), previous=why)
    return value


def record_rest_counter(store: Store, rest: KrakenRestClient, clock: Clock, key: str) -> None:
    """After the last private call: what the REST counter holds now, for the next start."""
    value = rest.rest_counter.value(clock.monotonic())
    record = {"value": round(value, 6), "at_ns": clock.time_ns()}
    store.set_meta(f"{_REST_COUNTER}.{key}", json.dumps(record))


_REST_COUNTER: Final = "rest_counter"  # meta key prefix, one record per API key (key_id)


def replay_fills(
    store: Store, engine: ExecutionEngine, positions: PositionBook, table: InstrumentTable
) -> None:
    """Positions survive a restart: every recorded fill, in order, into the book."""
    count = 0
    for fill in store.fills_since(0):
        inst = table.lookup(fill.symbol)
        order = engine.order(fill.cl_ord_id)
        if inst is None or fill.qty <= 0 or fill.price <= 0:
            continue
        positions.apply_fill(
            fill.symbol, inst, fill.side,  # type: ignore[arg-type]
            fill.qty, fill.price, fee=fill.fee, fee_asset=fill.fee_asset if fill.fee else "",
            strategy=order.strategy if order is not None else "", ts_ns=fill.ts_ns,
            price_precision=fill.price_precision,
        )  # fmt: skip
        count += 1
    if count:
        log.info("positions_recovered", fills=count)


def close_paper_orders(store: Store, clock: Clock) -> None:
    """Paper mode: orders left open by an earlier session died with its simulator."""
    left = store.load_orders(open_only=True)
    for order in left:
        now = clock.time_ns()
        store.save_order(
            o.transition(order, OrderState.EXPIRED, now_ns=now, reason="paper_session_ended")
        )
    if left:
        log.info("paper_orders_expired", count=len(left))
