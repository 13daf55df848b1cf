"""``StrategyRunner.book``, the hot path written out, against ``_call``, the safe call it
inlines: the same handler calls, timings, error counts, halts, log lines and cancels,
whatever the handler does (returns, raises, is async, returns something else, takes time).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.market.book import BookView
from bot.strategy import BookSnapshot, Params, Strategy
from bot.strategy import runner as runner_module
from bot.strategy.runner import StrategyRunner
from bot.strategy.testing import FakeContext


class Awaitable:
    def __await__(self) -> Any:
        yield None


class Scripted(Strategy[Params]):
    """``on_book`` does what the next step of ``script`` says, and records what it got."""

    def __init__(self, ctx: Any, params: Params) -> None:
        super().__init__(ctx, params)
        self.script: list[int] = []
        self.seen: list[tuple[str, BookSnapshot]] = []

    def on_book(self, symbol: str, book: BookSnapshot) -> Any:
        self.seen.append((symbol, book))
        step = self.script.pop(0) if self.script else 0
        assert isinstance(self.ctx, FakeContext)
        self.ctx.clock.advance(step * 0.02)  # 0.06 and more: a slow handler
        if step == 1:
            raise ValueError("bad book")
        if step == 2:
            return asyncio.sleep(0)  # a coroutine: an async handler
        if step == 3:
            return 7  # not awaitable: ignored
        if step == 4:
            return Awaitable()  # awaitable, not a coroutine
        return None


class ReferenceRunner(StrategyRunner):
    """``book`` as it was before it was written out: through ``running`` and ``_call``."""

    def book(self, view: BookView) -> None:
        if self.running and view.symbol in self._symbols:
            snapshot = BookSnapshot(view, self.ctx.instrument(view.symbol))
            self._call("on_book", self.strategy.on_book, view.symbol, snapshot)


def make(cls: type[StrategyRunner], max_errors: int) -> tuple[StrategyRunner, list[Any]]:
    clock = FakeClock()
    ctx = FakeContext("s", ["BTC/USD"], clock=clock)
    observed: list[Any] = []
    runner = cls(
        Scripted(ctx, Params()),
        timers=ctx.timers,
        clock=clock,
        max_errors=max_errors,
        observe=lambda h, s: observed.append((h, s)),
        on_halt=lambda r: observed.append(("halted", r.halt_reason)),
    )
    return runner, observed


VIEWS = [
    BookView("BTC/USD", True, "t", 1, ((10, 1),), ((12, 1),)),
    BookView("BTC/USD", False, "t", 1, (), ()),
    BookView("ETH/USD", True, "t", 2, ((10, 1),), ()),  # not the strategy's
]


@settings(max_examples=200, deadline=None)
@given(
    max_errors=st.integers(0, 4),
    steps=st.lists(
        st.tuples(st.integers(0, 8), st.integers(0, 2), st.integers(0, 25)), max_size=20
    ),
)
def test_book_does_what_the_safe_call_does(
    max_errors: int, steps: list[tuple[int, int, int]]
) -> None:
    runs = []
    for cls in (StrategyRunner, ReferenceRunner):
        runner, observed = make(cls, max_errors)
        strategy = runner.strategy
        assert isinstance(strategy, Scripted)
        strategy.script = [step for step, _, _ in steps]
        with capture_logs() as logs:
            for i, (_, view, stop_at) in enumerate(steps):
                if i == 1:
                    runner.start()  # the first one comes before the start: dropped
                if stop_at == 0:
                    runner.stop()
                runner.book(VIEWS[view])
        ctx = runner.ctx
        assert isinstance(ctx, FakeContext)
        runs.append(
            (
                runner.state,
                runner.errors,
                runner.halt_reason,
                runner.stats["on_book"],
                observed,
                [(s, b.view, b.instrument) for s, b in strategy.seen],
                [{k: v for k, v in e.items() if k != "exc_info"} for e in logs],
                ctx.clock.monotonic(),
            )
        )
    assert runs[0] == runs[1]


def test_an_error_in_book_halts_at_max_errors_as_before() -> None:
    runner, observed = make(StrategyRunner, 2)
    strategy = runner.strategy
    assert isinstance(strategy, Scripted)
    strategy.script = [1, 2, 0]
    runner.start()
    with capture_logs() as logs:
        for _ in range(3):
            runner.book(VIEWS[0])
    assert runner.halted and runner.errors == 2 and len(strategy.seen) == 2
    assert [e["event"] for e in logs][:2] == ["strategy_handler_error"] * 2
    assert observed[-1] == ("halted", "2 handler errors (max_errors 2)")


@given(view=st.sampled_from(VIEWS), symbol=st.sampled_from(["BTC/USD", "ETH/USD"]))
def test_the_snapshot_is_the_one_its_constructor_makes(view: BookView, symbol: str) -> None:
    info = FakeContext("s", [symbol]).instrument(symbol)
    made = runner_module._snapshot(view, info)
    want = BookSnapshot(view, info)
    assert type(made) is BookSnapshot and made == want and hash(made) == hash(want)
    assert made.view is view and made.instrument is info and repr(made) == repr(want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.view = view  # type: ignore[misc]
    with pytest.raises(TypeError):
        runner_module._snapshot(view)
