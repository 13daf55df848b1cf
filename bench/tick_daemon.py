"""The tick bench's ``krakenbot`` contenders: the daemon's own objects, wired as it wires them.

``DaemonPath`` builds what ``bot.service.daemon`` builds for one strategy on one symbol,
with real objects throughout: the ``Parser``/``Book`` pair the feed uses
(``frames.parse_into``), the ``Desk`` with its ``EngineContext`` (the request checked, the
``PlaceOrder`` command), the ``ExecutionEngine`` with its pre-trade stage (readiness, the
exchange's state, the rate room, ``RiskGate.check`` with the engine's open-order counts and
the desk's mids) and the desk's eager task per command (running, with its startup
reconciliation, on a real SQLite ``Store`` in a temporary directory: id blocks, order rows;
its WAL checkpointed from a worker thread by ``run_checkpoints``), the executions feed
(``PrivateFeed``, as the daemon runs it) and the venue port over the ``KrakenRestClient``
with its dedicated connection (or aiohttp's session for the ``krakenbot_aiohttp``
contender). Per book frame it does what the feed and ``Daemon._on_market`` do:
``desk.marks.mark``, ``book.view()``, ``runner.book(view)``, the collection due
(``bot.core.gc_ticks``); then it waits for the order's
answer (``desk.tasks.drain``) before it reads the next frame, as the floors do, so only one
order is ever in flight.

Timing points (``perf_counter_ns``), on top of ``recv``/``post``/``written``
(``bench.tick_floor``): ``risk_in``/``risk_out`` around ``RiskGate.check`` (a proxy of the
stage's gate) and ``sent_in`` when the venue calls ``add_order`` (a subclass of the REST
client). Stages: ``parse`` (``parse_into``: decode, apply, checksum), ``book`` (mark and
view), ``strategy`` (runner, ``on_book``, ``PreparedOrder.place_units`` and the pre-trade
stage up to the risk call), ``risk``, ``engine`` (the rest of ``ExecutionEngine.submit``, the eager
start of the command's task (``bot.core.eager``), the engine's bookkeeping: id, order,
index, and the venue's ``place``), ``sign`` (``add_order`` until the transport is called) and
``send``: consecutive clock points, so the stages add up to the total. The request is
written before ``runner.book`` returns.

With ``order_entry="websocket"`` (the ``krakenbot_ws`` contender) the venue is
``KrakenWsVenue`` on the executions feed's connection, as ``bot.service.wiring.order_venue``
builds it: the engine writes the place at ``submit`` (``PlaceNow``: ``place_now``, the
order recorded after the write), so ``sent_in`` and ``post`` are both stamped when its
frame's builder starts, ``written`` when the frame is built (just before it is written to
the socket): ``engine`` is then the engine's and the order entry's part up to the frame
(``place_now``, the counter, the request opened, the link), ``sign`` is 0 and ``send``
the encoding; a place the engine sends later (not written at ``submit``) has ``sent_in``
stamped by ``add_order`` as before. The strategy's place is
decided on its values and the ``Order`` made after the write (``submit_terms``): the
``risk`` stamps are then around ``RiskGate.accept_place``. The engine's
bookkeeping (the order recorded, its task) follows the write and is not in the figure.

With ``amend=True`` (the ``krakenbot_ws_amend`` contender; WebSocket only) the strategy is
``EveryFrameAmender``: one post-only buy, placed on the block's snapshot frame, amended in
place on every other frame. The amend goes ``Context.amend`` (its checks, the handle
flagged) → ``ExecutionEngine.submit``, which writes it at ``submit`` (``AmendNow``:
``bot.execution.engine_now``): decided on its values (``PreTrade.accepts_amend``: the
exchange's state, the rate room, then ``RiskGate.accept_amend``, stamped
``risk_in``/``risk_out`` by the same proxy; ``RiskGate.check`` when that cannot say) →
``KrakenWsVenue.amend_now`` → ``WsOrderEntry.amend_order_now`` (the counter charged, the
request opened) → the frame's builder (``_amend_order_frame``:
``ws_requests.amend_order_frame``, one pass), stamped as the place's: ``sent_in`` and
``post`` when it starts, ``written`` when the frame is built, before the executions
connection writes it. So ``risk`` is the risk gate's decision, ``engine`` runs from there
to the builder, ``sign`` is 0 and ``send`` the frame's encoding. The order is flagged
``amend_pending`` (handed to the router; its row follows with the answer) after the write,
and is not in the figure; an amend not written at ``submit`` goes by the command's task
(``ExecutionEngine.amend``), as before. A tick is a sample only when it built one amend
frame and no ``add_order`` frame (counted after the tick's answer, outside the timed
window): the place on the snapshot is never one. Per block, the path counts its places
(what ``CancelAll`` must match) and its amends sent, acknowledged and refused (the desk's
count: every source).
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, cast

import aiohttp

from bench.tick_floor import (
    DEPTH,
    GC_RUNS,
    SYMBOL,
    Probe,
    Samples,
    book_socket,
    frame_time_ns,
)
from bot.core import gc_ticks
from bot.core.clock import SystemClock
from bot.core.errors import ExchangeError
from bot.core.later import run_soon
from bot.execution.deadman import DeadmanSwitch
from bot.execution.engine import ExecutionEngine
from bot.execution.orders import Order
from bot.execution.pnl import PositionBook
from bot.execution.pretrade import PreTrade
from bot.execution.private_feed import PrivateFeed
from bot.execution.rate_room import RateRoom
from bot.execution.readiness import (
    BOOKS_VALID,
    DEADMAN_ARMED,
    INSTRUMENTS_LOADED,
    PRIVATE_SUBSCRIBED,
    STANDARD_CHECKS,
    ReadinessGate,
)
from bot.execution.risk import RiskDecision, RiskGate, RiskLimits
from bot.execution.tokens import TokenKeeper
from bot.execution.venue import Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.execution.venue_ws import KrakenWsVenue, WriteTicket, WsOrderEntry
from bot.execution.ws_requests import AddOrderFrames
from bot.kraken.instruments import Instrument, InstrumentTable, from_scaled
from bot.kraken.protocol import Parser
from bot.kraken.ratelimit import CounterLimits, RestCounter, Tier, TradingCounter
from bot.kraken.rest import KrakenRestClient
from bot.market.book import Book, BookApplied
from bot.market.frames import parse_into
from bot.net.http1 import Http1Connection
from bot.service.permissions import PERMISSIONS_CHECK
from bot.store import Store, run_checkpoints
from bot.strategy import BookSnapshot, OrderHandle, Params, PreparedOrder, Strategy
from bot.strategy.context import EngineContext
from bot.strategy.desk import Desk
from bot.strategy.runner import StrategyRunner

__all__ = ["STAGES", "DaemonPath"]

STAGES: Final = ("parse", "book", "strategy", "risk", "engine", "sign", "send")
_NOW = time.perf_counter_ns
_UNLIMITED: Final = CounterLimits(1e15, 1e15)
_AmendOrderFrame = Callable[[Order, Instrument, int | None, int | None, str, int], bytes]
"""``ws_requests.amend_order_frame``'s signature: the order entry's amend frame builder."""


class BuyerParams(Params):
    qty: Decimal = Decimal("0.0001")
    under_bid: Decimal = Decimal("0.95")


class EveryFrameBuyer(Strategy[BuyerParams]):
    """Places a post-only buy at 95 % of the best bid on every book message, through a
    ``PreparedOrder`` made at start, its price in the pair's units (the book's ints):
    ``floor_price(inst, best_bid × under_bid)``, with no ``Decimal`` on the tick."""

    def on_start(self) -> None:
        (symbol,) = self.ctx.symbols
        self.buy = PreparedOrder(self.ctx, symbol, "buy", self.params.qty, post_only=True)
        self.ratio = self.params.under_bid.as_integer_ratio()

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        view = book.view
        if not view.bids or not view.valid:
            return
        num, den = self.ratio
        units = view.bids[0][0] * num // den  # floored: on or under the price
        self.buy.place_units(units - units % self.buy.price_increment_units)


class EveryFrameAmender(Strategy[BuyerParams]):
    """Keeps one post-only buy resting at 95 % of the best bid and amends it in place on
    every book message: placed (``PreparedOrder.place_units``, as ``EveryFrameBuyer``)
    when it has no quote or its quote is done; amended (``ctx.amend``) when the quote is
    live (acknowledged, no amend or cancel in flight); left alone otherwise. The amend's
    price is the target, ``floor_price(inst, best_bid × under_bid)`` in the pair's units,
    or one tick under it when the quote already sits there: every amend moves the price,
    and the quote stays post-only, far from the touch."""

    def on_start(self) -> None:
        (symbol,) = self.ctx.symbols
        self.buy = PreparedOrder(self.ctx, symbol, "buy", self.params.qty, post_only=True)
        self.ratio = self.params.under_bid.as_integer_ratio()
        self.quote: OrderHandle | None = None

    def target_units(self, best_bid: int) -> int:
        """``floor_price(inst, best_bid × under_bid)``, in the pair's units."""
        num, den = self.ratio
        units = best_bid * num // den  # floored: on or under the price
        return units - units % self.buy.price_increment_units

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        view = book.view
        if not view.bids or not view.valid:
            return
        quote, units = self.quote, self.target_units(view.bids[0][0])
        if quote is None or quote.is_done:
            self.quote = self.buy.place_units(units)
        elif quote.is_live and quote.order.order_id is not None:
            if quote.order.price == units:  # already there: one tick under, so it moves
                units -= self.buy.price_increment_units
            self.ctx.amend(quote, price=from_scaled(units, self.buy.price_precision))


def _nothing() -> None:
    pass


def limits() -> RiskLimits:
    """Every limit set, none reached by the bench."""
    return RiskLimits(
        max_order_qty=Decimal("1"),
        max_order_notional=Decimal(100_000),
        max_position={"BTC": Decimal(100)},
        max_open_orders=100_000,
        price_band_pct=Decimal(10),
        max_orders_per_minute=1_000_000,
        daily_loss_limit=Decimal(10_000),
    )


class _TimedRisk:
    """The stage's ``RiskGate``, with ``check`` stamped (everything else passed through)."""

    def __init__(self, gate: RiskGate, probe: Probe) -> None:
        self._gate, self._probe = gate, probe
        self.rejected = 0

    def check(self, *args: Any, **kwargs: Any) -> RiskDecision:
        self._probe.risk_in = _NOW()
        decision = self._gate.check(*args, **kwargs)
        self._probe.risk_out = _NOW()
        self.rejected += not decision.accepted
        return decision

    def accept_place(self, *args: Any) -> bool:
        """``check`` on a place's values (``PreTrade.accepts_place``), stamped alike."""
        self._probe.risk_in = _NOW()
        accepted = self._gate.accept_place(*args)
        self._probe.risk_out = _NOW()
        return accepted

    def accept_amend(self, *args: Any) -> bool:
        """``check`` of an amend on its values (``PreTrade.accepts_amend``), stamped alike."""
        self._probe.risk_in = _NOW()
        accepted = self._gate.accept_amend(*args)
        self._probe.risk_out = _NOW()
        return accepted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gate, name)


class _TimedRest(KrakenRestClient):
    """The REST client, with ``add_order``'s entry stamped and its outcomes counted."""

    probe: Probe
    placed = 0
    refused = 0

    async def add_order(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if not self.probe.sent_in:
            self.probe.sent_in = _NOW()
        try:
            reply = await super().add_order(*args, **kwargs)
        except ExchangeError:
            self.refused += 1
            raise
        self.placed += bool(reply.get("txid"))
        return reply


class _TimedWsEntry(WsOrderEntry):
    """WebSocket order entry, with ``add_order``'s entry stamped and its outcomes counted,
    and the amends acknowledged counted (a refused one raises: the desk counts it)."""

    probe: Probe
    placed = 0
    refused = 0
    amends_acked = 0  # amend_order answered with no error, written at submit or later

    async def add_order(self, order: Any, instrument: Instrument) -> str:
        if not self.probe.sent_in:
            self.probe.sent_in = _NOW()
        try:
            order_id = await super().add_order(order, instrument)
        except ExchangeError:
            self.refused += 1
            raise
        self.placed += 1
        return order_id

    async def added(self, ticket: WriteTicket) -> str:
        try:
            order_id = await super().added(ticket)
        except ExchangeError:
            self.refused += 1
            raise
        self.placed += 1
        return order_id

    async def amend_order(
        self,
        order: Order,
        instrument: Instrument,
        *,
        qty: int | None,
        price: int | None,
        order_age_s: float,
    ) -> None:
        await super().amend_order(order, instrument, qty=qty, price=price, order_age_s=order_age_s)
        self.amends_acked += 1

    async def amended(self, ticket: WriteTicket) -> None:
        await super().amended(ticket)
        self.amends_acked += 1


class _TimedFrames:
    """The order entry's ``add_order`` frame builder, with ``post`` stamped when it starts
    (and ``sent_in`` with it, for a place written at ``submit``) and ``written`` when the
    frame is built, just before it is handed to websockets: the one probe on the path
    after the risk gate's (the link itself is the private feed, unwrapped)."""

    def __init__(self, frames: AddOrderFrames, probe: Probe) -> None:
        self._frames, self._probe = frames, probe
        self.built = 0  # add_order frames built (each one is written)

    def __call__(self, order: Any, instrument: Instrument, token: str, req_id: int) -> bytes:
        probe = self._probe
        if not probe.post:
            probe.post = _NOW()
            if not probe.sent_in:  # written at submit: no probe before this one on the path
                probe.sent_in = probe.post
        frame = self._frames(order, instrument, token, req_id)
        if not probe.written:
            probe.written = _NOW()
        self.built += 1
        return frame


class _TimedAmendFrames:
    """The order entry's ``amend_order`` frame builder (``ws_requests.amend_order_frame``),
    stamped as ``_TimedFrames`` stamps the place's: ``post`` (and ``sent_in``, no probe
    before this one on the amend's path after the risk gate's) when it starts, ``written``
    when the frame is built; ``built`` counts the frames (each one is written)."""

    def __init__(self, frames: _AmendOrderFrame, probe: Probe) -> None:
        self._frames, self._probe = frames, probe
        self.built = 0

    def __call__(  # noqa: PLR0917 (positional: ``amend_order_frame``'s own call)
        self,
        order: Order,
        instrument: Instrument,
        qty: int | None,
        price: int | None,
        token: str,
        req_id: int,
    ) -> bytes:
        probe = self._probe
        if not probe.post:
            probe.post = _NOW()
            if not probe.sent_in:
                probe.sent_in = probe.post
        frame = self._frames(order, instrument, qty, price, token, req_id)
        if not probe.written:
            probe.written = _NOW()
        self.built += 1
        return frame


def _trace(conn: Http1Connection, probe: Probe) -> None:
    """Stamp ``post`` when the client hands a request to the dedicated connection and
    ``written`` just before its write: the points aiohttp's are taken at."""
    request = conn.request

    def stamp_written() -> None:
        if not probe.written:  # the first request after ``arm``: the order's
            probe.written = _NOW()

    async def timed(*args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if not probe.post:
            probe.post = _NOW()
        return await request(*args, **kwargs)

    conn.on_write = stamp_written
    conn.request = timed  # type: ignore[method-assign]


class DaemonPath:
    """One contender: the daemon's pipeline, ``dedicated`` connection or aiohttp's; with
    ``amend`` (WebSocket order entry only), its strategy amends one resting quote on every
    frame (``EveryFrameAmender``) and its samples are the amends."""

    stages: tuple[str, ...] = STAGES

    def __init__(
        self,
        config: Mapping[str, Any],
        session: Any,
        probe: Probe,
        *,
        dedicated: bool = True,
        account: str = "krakenbot",
        order_entry: str = "rest",
        amend: bool = False,
    ) -> None:
        from bot.sim.pairs import default_instruments

        if amend and order_entry != "websocket":
            raise ValueError("the amend contender is timed on the WebSocket order entry only")
        self.name = account
        # aiohttp's session writes the request after the handler returned (its own task);
        # the dedicated connection and the WebSocket write it inside the handler.
        self.writes_inside = dedicated or order_entry == "websocket"
        self.inst = inst = default_instruments((SYMBOL,))[SYMBOL]
        self.probe = probe
        clock = SystemClock()
        self._tmp = tempfile.TemporaryDirectory()
        self.store = Store.open(Path(self._tmp.name) / "bench.sqlite")
        key, secret = config["keys"][account]
        rest = self.rest = _TimedRest(
            config["rest_url"],
            clock=clock,
            api_key=key,
            api_secret=secret,
            session=cast(aiohttp.ClientSession, session),
            store=self.store,
            tier=Tier.PRO,
            rest_counter=RestCounter(Tier.PRO, limits=_UNLIMITED),
            trading_counter=TradingCounter(Tier.PRO, limits=_UNLIMITED),
            dedicated=dedicated,
        )
        rest.probe = probe
        if rest.connection is not None:
            _trace(rest.connection, probe)
        table = InstrumentTable([inst])
        self.parser = Parser(table)
        self.book = Book(inst, DEPTH)
        reads = KrakenRestVenue(rest, table)
        self.orders: _TimedRest | _TimedWsEntry = rest

        def on_private(event: object) -> None:  # as Daemon._on_private
            self.engine.on_private(event)
            gate.notify()

        self.private = PrivateFeed(
            config["ws_private_url"], TokenKeeper(reads, clock), on_private, clock=clock
        )
        venue: Venue = reads
        self.places: _TimedFrames | None = None
        self.amends: _TimedAmendFrames | None = None
        if order_entry == "websocket":  # venue.order_entry: websocket, as wiring builds it
            entry = self.orders = _TimedWsEntry(self.private, rest.trading_counter, clock)
            entry.probe = probe
            self.places = _TimedFrames(entry._add_order_frame, probe)
            entry._add_order_frame = cast(AddOrderFrames, self.places)
            if amend:
                self.amends = _TimedAmendFrames(entry._amend_order_frame, probe)
                entry._amend_order_frame = self.amends
            venue = KrakenWsVenue(reads, entry)
        positions = PositionBook(clock)
        self.risk = _TimedRisk(RiskGate(clock, positions, limits(), {self.name: limits()}), probe)
        risk = cast(RiskGate, self.risk)
        books = {inst.symbol: self.book}
        self.desk = desk = Desk(
            risk=risk, positions=positions, instruments=table, books=lambda: books, clock=clock
        )
        # The daemon's gate (``Daemon._serve_with``): every standard check and the
        # permissions, the executions subscription and the dead man's switch (a real
        # ``DeadmanSwitch``, armed at ``start``) followed as their owners change, and the
        # books' probe over the set of valid symbols (``valid_books``, kept as
        # ``MarketFrames`` keeps it, ``books_changed`` called as it calls its hook),
        # followed once ``start`` saw the rest open (the book comes with each block's
        # subscription).
        self.gate = gate = ReadinessGate(
            [c for c in STANDARD_CHECKS if c != BOOKS_VALID], clock=clock
        )
        gate.add(PERMISSIONS_CHECK)
        gate.set(INSTRUMENTS_LOADED)
        gate.set(PERMISSIONS_CHECK)
        self.valid_books: set[str] = set()
        self.books_changed: Callable[[], None] = _nothing  # the gate's, once it follows them
        pretrade = PreTrade(
            gate, risk=risk, mids=desk.marks.live,
            room=RateRoom.of(venue, clock),  # as the daemon: the counter read directly
            exchange_status=lambda: "online", on_transitions=desk.router.apply_transitions,
        )  # fmt: skip
        pretrade.follow_status()  # as the daemon follows the feed's (constant here)
        self.engine = ExecutionEngine(
            venue, self.store, table, clock, readiness=gate, pretrade=pretrade,
            spawn=desk.tasks.spawn, on_order=desk.router.on_order,
            on_fill=desk.router.on_fill, on_refused=desk.router.on_refused,
        )  # fmt: skip
        # The executions feed, as the daemon runs it: it drives the orders' state, and while
        # it is live the engine does not confirm each write by QueryOrders.
        self.private.on_change = gate.follow(
            PRIVATE_SUBSCRIBED, functools.partial(getattr, self.private, "subscribed")
        )
        self.deadman = DeadmanSwitch(
            venue, clock, timeout_s=60, refresh_s=20,
            on_lapse=lambda: self.engine.request_reconcile("deadman lapse"),
            hold_reads=rest.hold_reads,
        )  # fmt: skip
        self.deadman.on_change = gate.follow(
            DEADMAN_ARMED, functools.partial(getattr, self.deadman, "armed"),
            until=self.deadman.lapses_at,
        )  # fmt: skip
        ctx = EngineContext(self.engine, desk, self.name, (inst.symbol,))
        desk.add_context(ctx)
        kind = EveryFrameAmender if amend else EveryFrameBuyer
        strategy = kind(ctx, BuyerParams())
        self.runner = StrategyRunner(strategy, timers=ctx.timers, clock=clock, max_errors=1)
        self.desk.add_runner(self.runner)
        self.mismatches = 0
        self._engine_task: asyncio.Task[None] | None = None
        self._private_task: asyncio.Task[None] | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._deadman_task: asyncio.Task[None] | None = None
        self._clock = clock

    async def start(self) -> None:
        """Run the engine (its startup reconciliation opens the gate), open the desk."""
        # As the daemon: a block and a spare on record, the spare replaced after the tick.
        self.engine.prepare_ids([self.name], later=run_soon)
        self._engine_task = asyncio.create_task(self.engine.run())
        self._private_task = asyncio.create_task(self.private.run())
        self._checkpoint_task = asyncio.create_task(run_checkpoints(self.store, self._clock))
        async with asyncio.timeout(10):
            await self.deadman.arm()  # as ``Daemon._deadman``: armed, then kept armed
        self._deadman_task = asyncio.create_task(self.deadman.run())
        async with asyncio.timeout(10):
            await self.engine.readiness.wait()  # reconciled, the executions subscribed, armed
        books = functools.partial(frozenset((self.inst.symbol,)).issubset, self.valid_books)
        self.books_changed = self.gate.follow(BOOKS_VALID, books)
        self.desk.tasks.spawn_task = asyncio.get_running_loop().create_task
        self.runner.start()
        await self.rest.warm()

    async def stop(self) -> None:
        self.desk.accepting = False
        try:
            async with asyncio.timeout(5):
                await self.deadman.disarm()
        except (ExchangeError, TimeoutError):
            pass  # the simulator goes with the run
        running = (self._deadman_task, self._private_task, self._engine_task, self._checkpoint_task)
        tasks = [t for t in running if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # raises nothing: they were cancelled
        await self.rest.close()
        self.store.close()
        self._tmp.cleanup()

    def prepare(self, n: int) -> None:
        pass

    async def block(self, ws_url: str, samples: Samples, frames: int, warmup: int) -> None:
        parser, book, desk, runner = self.parser, self.book, self.desk, self.runner
        books, probe, rest, symbol = {self.inst.symbol: book}, self.probe, self.orders, SYMBOL
        # The amend contender's samples are its amend ticks: one amend frame built in the
        # tick and no place's (its quote is placed on the snapshot, never a sample). The
        # frames are counted after each tick's answer, outside the timed window.
        amends, places = self.amends, self.places
        amends_seen = amends.built if amends is not None else 0
        places_seen = places.built if places is not None else 0
        counts_before, placed_at_start = self._amend_counts(), rest.placed
        seen = 0
        async with book_socket(ws_url) as ws:
            async for raw in ws:
                wall, t_recv = time.time_ns(), _NOW()
                runs_before = GC_RUNS.started
                events = parse_into(parser, raw, books)  # the feed's path: decoded into the book
                t_parsed = _NOW()
                for event in events:
                    if type(event) is not BookApplied:
                        continue
                    if event.mismatch is not None:
                        self.mismatches += 1
                        if symbol in self.valid_books:  # as ``MarketFrames`` loses it
                            self.valid_books.discard(symbol)
                            self.books_changed()
                        continue
                    if event.snapshot and symbol not in self.valid_books:
                        self.valid_books.add(symbol)  # as ``MarketFrames``: BookValid
                        self.books_changed()
                    desk.marks.mark(symbol, book)  # what Daemon._on_market does
                    view = book.view()
                    t_booked = _NOW()
                    probe.arm()
                    placed_before = rest.placed
                    runner.book(view)  # the order is written before this returns (eager)
                    t_done = _NOW()
                    runs = GC_RUNS.started - runs_before  # collections inside the tick
                    gc_ticks.after_tick()  # the collection due, as route_market runs it
                    await desk.tasks.drain()  # the order's answer: one in flight at a time
                    timed = True  # a place contender's tick: timed when its order was written
                    if amends is not None and places is not None:
                        timed = amends.built == amends_seen + 1 and places.built == places_seen
                        amends_seen, places_seen = amends.built, places.built
                    if event.snapshot:
                        continue
                    if seen >= warmup and probe.written and timed:
                        if amends is None:
                            samples.placed += rest.placed - placed_before
                        samples.gc_in_tick += runs
                        samples.add(
                            probe.written - t_recv,
                            parse=t_parsed - t_recv,
                            book=t_booked - t_parsed,
                            strategy=probe.risk_in - t_booked,
                            risk=probe.risk_out - probe.risk_in,
                            engine=probe.sent_in - probe.risk_out,
                            sign=probe.post - probe.sent_in,
                            send=probe.written - probe.post,
                        )
                        samples.ages.append(wall - frame_time_ns(raw))
                        if self.writes_inside:
                            samples.after.append(t_done - probe.written)
                    seen += 1
                if seen >= warmup + frames:
                    break
        samples.refused += rest.refused
        rest.refused = 0
        if amends is not None:  # the block's one place, its amends: what CancelAll must match
            samples.placed += rest.placed - placed_at_start
            tally = samples.amends if samples.amends is not None else {}
            for key, now, before in zip(
                ("sent", "acked", "refused"), self._amend_counts(), counts_before, strict=True
            ):
                tally[key] = tally.get(key, 0) + now - before
            samples.amends = tally

    def _amend_counts(self) -> tuple[int, int, int]:
        """Amend frames built, amends acknowledged, and amends refused (the desk's count,
        every source: the pre-trade stage, risk, the exchange, the engine)."""
        if self.amends is None:
            return 0, 0, 0
        acked = cast(_TimedWsEntry, self.orders).amends_acked
        refused = sum(
            n for (_, _, action, _), n in self.desk.refusals.counts().items() if action == "amend"
        )
        return self.amends.built, acked, refused

    async def cancel_all(self) -> int:
        """Kraken's CancelAll through the engine (untimed); it reconciles after."""
        return await self.engine.cancel_all()
