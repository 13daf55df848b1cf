"""Parity: the same strategy on the same real capture, once in paper mode (the daemon and
the simulator replaying the capture in real time, ``sim.source: replay:PATH``, over real
sockets) and once through ``run_backtest``, makes the same orders and the same fills.

Tolerance: timing only. Times are compared from the capture's start, in capture time
(the paper run's wall-clock times multiplied by ``sim.speed``): each order and fill of the
paper run lands within ``TOLERANCE_NS`` of the backtest's (the simulator's pump steps the
replay every 50 ms of wall time and the daemon's round trips take real milliseconds; the
backtest's latency is 1 ms each way).

The probe strategy decides on book states only, never on how many frames it saw or on a
timer (the paper venue's pump conflates frames; its clock is the host's, not the
capture's), and it reads only the best ask, which its own orders never change (the paper
venue's public book shows the paper account's orders, the recording does not: see
docs/backtest.md, "Parity"). It places, on its first book, a post-only bid 1.0 below the
best ask and an IOC buy of 0.0001 at the best ask; each time the best ask changes, an IOC
buy at the new ask and an amend of its bid to 1.0 below it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from bot.backtest import BacktestSpec, run_backtest
from bot.config import load_config
from bot.research.store_reader import read_store
from bot.service.daemon import Daemon
from bot.strategy import BookSnapshot, OrderHandle, Params, Strategy
from bot.strategy.loader import load_strategies
from tests.unit.backtest.helpers import capture_frames, recorder_lines

pytestmark = pytest.mark.timeout(120)

SPEED = 2.0
LEAD_IN_NS = 16_000_000_000  # the snapshot, 16 s of capture time before the first update
UNTIL_NS = 20_000_000_000  # the capture's first 20 s: its first change of best ask
TOLERANCE_NS = 1_000_000_000
STEP = Decimal("1.0")
SIZE = Decimal("0.0001")

CONFIG = """\
mode: paper
market: {{symbols: [BTC/USD], book_depth: 10}}
sim:
  source: replay:{capture}
  speed: {speed}
  balances: {{USD: 100000, BTC: 1}}
store: {{path: {store}}}
http: {{host: 127.0.0.1, port: 0}}
risk: {{max_order_notional: 10000, price_band_pct: 5, max_orders_per_minute: 600}}
strategies:
  - name: probe
    class: {module}:ParityProbe
    symbols: [BTC/USD]
"""


class ParityProbe(Strategy[Params]):
    """See the module docstring."""

    def on_start(self) -> None:
        self.ask: Decimal | None = None
        self.bid: OrderHandle | None = None

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        best = book.best_ask()
        if best is None or best.price == self.ask:
            return
        first, self.ask = self.ask is None, best.price
        self.ctx.place(symbol, "buy", SIZE, best.price, time_in_force="IOC")
        if first:
            self.bid = self.ctx.place(symbol, "buy", SIZE, best.price - STEP, post_only=True)
        elif self.bid is not None:
            self.ctx.amend(self.bid, price=best.price - STEP)

    def on_stop(self) -> None:
        self.ctx.cancel_all()


def _capture(path: Path) -> tuple[Path, int]:
    """The capture's first ``UNTIL_NS`` as recorder lines, after a lead-in: its snapshot
    repeated ``LEAD_IN_NS`` earlier (time for the paper daemon to connect)."""
    lines = recorder_lines(capture_frames())
    start = orjson.loads(lines[0])["recv_ns"]
    kept = [ln for ln in lines if orjson.loads(ln)["recv_ns"] < start + UNTIL_NS]
    snapshot = orjson.loads(lines[0])["frame"]
    lead = b'{"recv_ns":%d,"conn":"public","frame":%s}' % (
        start - LEAD_IN_NS,
        orjson.dumps(snapshot),
    )
    path.write_bytes(b"\n".join([lead, *kept]) + b"\n")
    return path, start - LEAD_IN_NS


def _events(store: Path, origin_ns: int, scale: float) -> tuple[list[tuple[object, ...]], ...]:
    """Orders (side, type, price, qty, state, post-only, created) and fills (side, price,
    qty, liquidity, at), in order, times in capture ns from ``origin_ns``."""
    snapshot = read_store(store)

    def at(ns: int) -> int:
        return round((ns - origin_ns) * scale)

    orders = sorted(snapshot.orders, key=lambda o: (o.created_ns, o.cl_ord_id))
    fills = sorted(snapshot.fills, key=lambda f: (f.ts_ns, f.exec_id))
    return (
        [(o.side, o.time_in_force, o.price, o.qty, o.state.value, o.post_only, at(o.created_ns))
         for o in orders],
        [(f.side, f.price, f.qty, f.liquidity, at(f.ts_ns)) for f in fills],
    )  # fmt: skip


def _same_within(paper: list[tuple[object, ...]], backtest: list[tuple[object, ...]]) -> None:
    assert [e[:-1] for e in paper] == [e[:-1] for e in backtest]
    for p, b in zip(paper, backtest, strict=True):
        assert abs(int(p[-1]) - int(b[-1])) <= TOLERANCE_NS, (p, b)  # type: ignore[call-overload]


async def test_paper_mode_and_the_backtest_make_the_same_orders_and_fills(
    tmp_path: Path,
) -> None:
    capture, origin = _capture(tmp_path / "capture.jsonl")
    text = CONFIG.format(capture=capture, speed=SPEED, store=tmp_path / "paper.db",
                         module=__name__)  # fmt: skip
    config_path = tmp_path / "deploy.yaml"
    config_path.write_text(text)

    # Paper: the daemon against the simulator replaying the capture in real time.
    config = load_config(config_path)
    daemon = Daemon(config, load_strategies(config.strategies))
    task = asyncio.create_task(daemon.run())
    async with asyncio.timeout(60):
        await daemon.wait_started()
        ready_ns = daemon.clock.time_ns()
        replay = daemon.sim.venue.market.inner  # ScaledSource around the ReplayMarket
        while replay.remaining:  # noqa: ASYNC110 (the simulator's pump drains it)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the last frame's orders come back
    daemon.request_stop("test")
    async with asyncio.timeout(30):
        await task
    assert daemon.exit_code == 0
    paper_origin = replay._origin[0]  # the wall time the replay's first frame was due
    # A precondition, not a result: the paper daemon was trading before the first update.
    assert ready_ns < paper_origin + LEAD_IN_NS / SPEED, "lead-in too short for this load"
    paper = _events(tmp_path / "paper.db", paper_origin, SPEED)

    # Backtest: the same file, the same strategy, in simulated time.
    result = await asyncio.to_thread(
        run_backtest,
        BacktestSpec(config=config_path, data=(capture,), latency_ms=1.0,
                     store_path=tmp_path / "backtest.db"),
    )  # fmt: skip
    backtest = _events(result.store_path, origin, 1.0)

    orders, fills = backtest
    # The probe did trade: two IOC buys filled at the best ask (at the start, at the first
    # change of ask), its bid amended to 1.0 below the new ask, cancelled at the stop.
    assert [(o[1], o[4]) for o in orders] == [("IOC", "filled"), ("GTC", "canceled"),
                                              ("IOC", "filled")]  # fmt: skip
    assert orders[1][2] == orders[2][2] - 10  # amended: 1.0 below the second ask
    assert [(f[1], f[3]) for f in fills] == [(orders[0][2], "t"), (orders[2][2], "t")]
    _same_within(paper[0], orders)
    _same_within(paper[1], fills)
