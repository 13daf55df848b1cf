"""One strategy on both venues: ``venue: both`` split by venue (``bot.config.venues``),
its errors at key and line, and ``TwoVenueContext`` routing each call to the venue's own
context (two harness ``FakeContext`` s, given through the constructor)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import load_config, load_config_text
from bot.config.venues import futures_part, is_both, spot_part
from bot.core.clock import FakeClock
from bot.core.errors import ConfigError
from bot.execution.commands import CancelOrder, PlaceOrder
from bot.execution.orders import OrderState, transition
from bot.kraken.instruments import Instrument
from bot.service.both_daemon import BothDaemon
from bot.service.joint_view import merge
from bot.service.observe import Observation, Pnl, StrategyView
from bot.strategy import InvalidIntent, Params, PreparedOrder, Strategy
from bot.strategy.loader import load_strategies
from bot.strategy.runner import StrategyRunner
from bot.strategy.testing import DEFAULT_INSTRUMENTS, FakeContext
from bot.strategy.two_venue import TwoVenueContext
from tests.unit.test_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
PERP = Instrument(
    "PF_XBTUSD", "XBT", "USD", price_precision=1, qty_precision=4,
    price_increment=5, qty_increment=1, qty_min=1,
)  # fmt: skip


def config(symbols: str = "[BTC/USD, PF_XBTUSD]", futures: bool = True) -> str:
    return (
        "mode: paper\n"
        + ("futures:\n  symbols: [PF_XBTUSD]\n" if futures else "")
        + "strategies:\n  - name: basis\n    class: strategies.basis:BasisHedge\n"
        + f"    venue: both\n    symbols: {symbols}\n"
        + "    params: {size: 0.001, max_inventory: 0.01}\n"
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "deploy.yaml", {})
    return info.value.problems


def test_a_two_venue_strategy_is_split_into_each_sides_config() -> None:
    loaded = load_config_text(config(), "deploy.yaml", {})
    assert is_both(loaded)
    spot, futures = spot_part(loaded), futures_part(loaded)
    assert [(s.name, s.symbols) for s in spot.strategies] == [("basis", ("BTC/USD",))]
    assert [(s.name, s.symbols) for s in futures.strategies] == [("basis", ("PF_XBTUSD",))]
    assert spot.symbols == ("BTC/USD",)
    shipped = load_config(REPO / "config" / "basis.paper.yaml", env={})
    assert is_both(shipped) and shipped.strategies[0].venue == "both"


def test_a_two_venue_strategy_without_one_venues_symbol_names_key_and_line() -> None:
    (problem,) = problems(config("[BTC/USD]"))
    assert problem.startswith("deploy.yaml:8: strategies[0].symbols:"), problem
    assert "venue: both needs a Futures contract" in problem
    (problem,) = problems(config("[PF_XBTUSD, PF_ETHUSD]"))
    assert "needs a spot pair" in problem and ":8:" in problem


def test_venue_both_without_a_futures_section_names_key_and_line() -> None:
    found = problems(config(futures=False))
    assert any(
        p.startswith("deploy.yaml:5: strategies[0].venue: 'both' needs a futures: section")
        for p in found
    ), found


def contexts() -> tuple[TwoVenueContext, FakeContext, FakeContext]:
    clock = FakeClock()
    spot = FakeContext("basis", ("BTC/USD",), DEFAULT_INSTRUMENTS, clock=clock,
                       balances={"USD": 1000})  # fmt: skip
    perp = FakeContext("basis", ("PF_XBTUSD",), (PERP,), clock=clock, seed=1)
    ctx = TwoVenueContext("basis", {"spot": ("BTC/USD",), "futures": ("PF_XBTUSD",)}, clock)
    up = {"spot": True, "futures": True}
    ctx.attach("spot", spot, lambda: up["spot"])
    ctx.attach("futures", perp, lambda: up["futures"])
    return ctx, spot, perp


def test_every_call_goes_to_the_venue_of_its_symbol_or_order() -> None:
    ctx, spot, perp = contexts()
    assert ctx.symbols == ("BTC/USD", "PF_XBTUSD")
    bid = ctx.place("BTC/USD", "buy", Decimal("0.01"), Decimal(30000))
    hedge = ctx.place("PF_XBTUSD", "sell", Decimal("0.01"), order_type="market")
    assert [type(c) for c in spot.commands] == [PlaceOrder]
    assert [c.symbol for c in perp.commands] == ["PF_XBTUSD"]
    assert ctx.order(bid.cl_ord_id) is bid and ctx.order(hedge.cl_ord_id) is hedge
    assert ctx.open_orders() == (bid, hedge) and ctx.open_orders("PF_XBTUSD") == (hedge,)
    assert ctx.instrument("PF_XBTUSD").price_increment == Decimal("0.5")
    assert ctx.balance("USD") == Decimal(1000)  # spot's account
    assert ctx.cancel(hedge) and type(perp.commands[-1]) is CancelOrder
    assert len(spot.commands) == 1  # nothing of Futures' reached spot
    assert ctx.cancel_all() == 1 and type(spot.commands[-1]) is CancelOrder
    with pytest.raises(InvalidIntent):
        ctx.place("ETH/USD", "buy", Decimal(1), Decimal(1))


def test_a_batch_spans_both_venues_and_each_venue_gets_its_own() -> None:
    ctx, spot, perp = contexts()
    with ctx.batch():
        ctx.place("BTC/USD", "buy", Decimal("0.01"), Decimal(30000))
        ctx.place("PF_XBTUSD", "sell", Decimal("0.01"), order_type="market")
    assert [len(b) for b in spot.batches] == [1] and [len(b) for b in perp.batches] == [1]


def test_venue_readiness_is_each_venues_own() -> None:
    ctx = TwoVenueContext("x", {"spot": ("BTC/USD",), "futures": ("PF_XBTUSD",)}, FakeClock())
    assert not ctx.venue_ready("futures")  # not attached yet: not ready
    up = {"futures": False}
    ctx.attach("futures", FakeContext("x", ("PF_XBTUSD",), (PERP,)), lambda: up["futures"])
    assert not ctx.venue_ready("futures")
    up["futures"] = True
    assert ctx.venue_ready("futures") and not ctx.venue_ready("spot")


def test_check_config_agrees_exit_2_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(config("[BTC/USD]"))
    result = run_cli("check-config", str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}:8: strategies[0].symbols: venue: both needs a Futures contract" in result.stderr
    path.write_text(config())
    assert run_cli("check-config", str(path)).returncode == 0


def test_a_reload_gives_the_two_venue_strategy_its_new_params_all_or_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "basis.yaml"
    text = (REPO / "config" / "basis.paper.yaml").read_text()
    path.write_text(text)
    loaded = load_config(path, env={})
    daemon = BothDaemon(loaded, load_strategies(loaded.strategies), config_path=path)
    (one,) = daemon.both.all
    path.write_text(text.replace("spread_bps: 2", "spread_bps: 7"))
    assert daemon.reload_params() == []
    assert one.loaded.params.spread_bps == Decimal(7)  # type: ignore[attr-defined]
    path.write_text(text.replace("spread_bps: 2", "spread_bps: -1"))
    (problem,) = daemon.reload_params()
    assert "spread_bps" in problem
    assert one.loaded.params.spread_bps == Decimal(7)  # type: ignore[attr-defined]


def test_the_dashboard_shows_a_two_venue_strategy_once_with_its_pnl_of_both_venues() -> None:
    def picture(realised: str) -> Observation:
        row = StrategyView("basis", "running", "", 0, 3, "active")
        return Observation(
            at_ns=1, running=True, ready=True, failing=(), metrics={}, strategies=(row,),
            strategy_pnl={("basis", "USD"): Pnl(Decimal(realised), Decimal(1), Decimal(0))},
        )  # fmt: skip

    merged = merge(
        {"spot": picture("2"), "futures": picture("-0.5")},
        at_ns=9, ready=True, failing=(), face={},
    )  # fmt: skip
    assert [s.name for s in merged.strategies] == ["basis"]
    assert merged.strategy_pnl == {("basis", "USD"): Pnl(Decimal("1.5"), Decimal(2), Decimal(0))}


class _PlacesThenFails(Strategy[Params]):
    def on_start(self) -> None:
        self.ctx.place("BTC/USD", "buy", Decimal("0.01"), Decimal(30000))
        self.ctx.place("PF_XBTUSD", "sell", Decimal("0.01"), Decimal(30000))

    def on_timer(self, name: str) -> None:
        raise ValueError("a bug")


def test_max_errors_halts_the_one_instance_and_cancels_its_orders_on_both_venues() -> None:
    ctx, spot, perp = contexts()
    runner = StrategyRunner(
        _PlacesThenFails(ctx, Params()), timers=ctx.timers, clock=spot.clock, max_errors=1
    )
    runner.start()
    for fake in (spot, perp):  # both acknowledged by their venue
        (handle,) = fake.handles.values()
        handle.update(transition(handle.order, OrderState.NEW, now_ns=1, order_id="O1"))
    ctx.set_timer("t", 0)
    runner.fire_timers()
    assert runner.halted
    assert [type(c) for c in spot.commands] == [PlaceOrder, CancelOrder]
    assert [type(c) for c in perp.commands] == [PlaceOrder, CancelOrder]


def test_a_prepared_order_on_a_two_venue_context_places_on_its_symbols_venue() -> None:
    ctx, spot, perp = contexts()
    bid = PreparedOrder(ctx, "BTC/USD", "buy", Decimal("0.01"), post_only=True)
    ask = PreparedOrder(ctx, "PF_XBTUSD", "sell", Decimal(1))
    on_spot = bid.place(Decimal(30000))
    on_perp = ask.place(Decimal("30000.5"))
    assert [c.symbol for c in spot.commands] == ["BTC/USD"]
    assert [c.symbol for c in perp.commands] == ["PF_XBTUSD"]
    assert ctx.order(on_spot.cl_ord_id) is on_spot and ctx.order(on_perp.cl_ord_id) is on_perp
    with ctx.batch():
        bid.place(Decimal(29999))
        ask.place(Decimal(30001))
    assert [len(b) for b in spot.batches] == [1] and [len(b) for b in perp.batches] == [1]
