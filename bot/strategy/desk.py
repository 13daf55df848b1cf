"""The desk: the strategy side of the daemon, composed of small parts, one per concept.

One ``Desk`` per daemon holds what the strategies share:

- ``tasks`` (``bot.strategy.tasks.OrderTasks``): where commands run, the daemon's group;
- ``handles`` (``bot.strategy.handles.HandleIndex``): one ``OrderHandle`` per order;
- ``marks`` (``bot.strategy.marks.Marks``): each book's mid, the positions' marks;
- ``pnl`` (``bot.strategy.pnl_lines.PnlLines``): the ``pnl`` log lines;
- ``router`` (``bot.strategy.router.Router``): the engine's callbacks, to handles and runners;
- ``refusals`` (``bot.strategy.refusals.Refusals``): every refused command, counted;
- the strategies' runners and contexts (``bot.strategy.context.EngineContext``, one
  each, built on the desk and the engine), the account's balances (polled by the daemon),
  and ``accepting`` (False once the daemon stops: places and amends are refused
  ``shutting_down``).

The daemon builds the desk first, then the engine with the router's callbacks and the
tasks' ``spawn`` (nothing is assigned to the engine afterwards), then one context per
strategy. The rate room and the risk check are the pre-trade stage's, in the engine
(``bot.execution.pretrade``). The desk owns no socket and no task of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from bot.core.clock import Clock
from bot.core.log import get_logger
from bot.execution.orders import Order
from bot.execution.pnl import PositionBook
from bot.execution.risk import RiskGate
from bot.kraken.instruments import InstrumentTable
from bot.market.book import Book
from bot.strategy import Context, OrderHandle
from bot.strategy.handles import HandleIndex
from bot.strategy.marks import Marks
from bot.strategy.pnl_lines import PnlLines
from bot.strategy.refusals import Refusals
from bot.strategy.router import DeskMetrics, Router
from bot.strategy.runner import StrategyRunner
from bot.strategy.tasks import OrderTasks

__all__ = ["Desk"]

log = get_logger(component="desk")


class Desk:
    """See the module docstring. ``books`` reads the public feed's books."""

    def __init__(
        self,
        *,
        risk: RiskGate,
        positions: PositionBook,
        instruments: InstrumentTable,
        books: Callable[[], Mapping[str, Book]],
        clock: Clock,
        metrics: DeskMetrics | None = None,
        refusals: Refusals | None = None,
    ) -> None:
        self.risk, self.positions, self.instruments = risk, positions, instruments
        self.clock, self.metrics = clock, metrics
        self.refusals = refusals or Refusals(
            clock, log, on_count=None if metrics is None else metrics.rejection
        )
        self.runners: dict[str, StrategyRunner] = {}
        self.contexts: dict[str, Context] = {}
        self.balances: dict[str, Decimal] = {}
        self.accepting = True
        self.tasks = OrderTasks()
        self.handles = HandleIndex()
        self.marks = Marks(books, positions)
        self.pnl = PnlLines(positions, log, lambda: self.runners)
        self.router = Router(
            handles=self.handles, runners=self.runners, contexts=self.contexts,
            positions=positions, risk=risk, instruments=instruments, refusals=self.refusals,
            pnl=self.pnl, clock=clock, log=log, metrics=metrics,
        )  # fmt: skip

    def add_context(self, ctx: Context) -> None:
        """A strategy's context (``EngineContext``): its orders are canceled through it
        when a risk halt stops its scope."""
        self.contexts[ctx.name] = ctx

    def add_runner(self, runner: StrategyRunner) -> None:
        self.runners[runner.name] = runner

    def adopt(self, orders: Iterable[Order]) -> list[OrderHandle]:
        """Handles for the engine's open orders (from the store, after reconciliation)."""
        return [self.handles.update(order) for order in orders]

    def periodic(self) -> None:
        """Every few seconds: the loss limits against the latest marks, then ``pnl`` lines,
        and the counts of refusals whose repeats were not logged yet."""
        self.router.apply_transitions(self.risk.evaluate())
        self.pnl.log()
        self.refusals.flush()
