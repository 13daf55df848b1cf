"""The pieces of a two-venue deployment that need no socket: which daemon ``run`` picks,
how the venues' strategies and stores are shared out, the joint readiness and a SIGHUP
reload of both venues' params (``bot.service.both_daemon``, ``bot.service.joint``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.config import Config, load_config, load_config_text
from bot.core.clock import FakeClock
from bot.execution.readiness import ReadinessGate
from bot.kraken.instruments import Instrument
from bot.service.both_daemon import BothDaemon
from bot.service.daemon import Daemon
from bot.service.futures_daemon import FuturesDaemon
from bot.service.joint import JointGate
from bot.service.joint_view import merge
from bot.service.observe import Observation, Pnl, StrategyView
from bot.service.run_command import daemon_class
from bot.strategy.loader import load_strategies

REPO = Path(__file__).resolve().parents[2]


def test_run_picks_the_daemon_for_the_config() -> None:
    def config(name: str) -> Config:
        return load_config(REPO / "config" / name, env={})

    assert daemon_class(config("default.yaml")) is Daemon
    assert daemon_class(config("futures.paper.yaml")) is FuturesDaemon
    assert daemon_class(config("both.paper.yaml")) is BothDaemon


def test_each_side_gets_its_venues_strategies_and_store() -> None:
    config = load_config(REPO / "config" / "both.paper.yaml", env={})
    daemon = BothDaemon(config, load_strategies(config.strategies), clock=FakeClock())
    assert [x.name for x in daemon.spot.loaded] == ["mm-spot"]
    assert [x.name for x in daemon.futures.loaded] == ["mm-perp"]
    assert daemon.spot.config.store.path == Path("data/paper.db")
    assert daemon.futures.config.store.path == Path("data/futures-paper.db")
    assert not daemon.spot.serve_http and not daemon.futures.serve_http
    assert daemon.spot.metrics is not daemon.futures.metrics is not daemon.metrics
    # Each venue's notices say which venue they are about.
    assert daemon.spot.view.rules.label == "krakenbot paper spot"
    assert daemon.futures.view.rules.label == "krakenbot paper futures"
    assert Daemon(config).view.rules.label == "krakenbot paper"  # a one-venue daemon's


def test_the_joint_gate_names_each_venues_checks_and_opens_only_with_both() -> None:
    clock = FakeClock()
    spot, futures = ReadinessGate(clock=clock), ReadinessGate(clock=clock)
    joint = JointGate({"spot": spot, "futures": futures}, clock=clock)
    # A venue that has declared nothing yet has not started: never ready before it.
    assert not joint.is_open
    assert joint.failing() == ("spot.starting", "futures.starting")
    spot.add("books")
    futures.add("deadman")
    assert joint.failing() == ("spot.books", "futures.deadman")
    spot.set("books")
    assert not joint.is_open and joint.failing() == ("futures.deadman",)
    snap = joint.snapshot()
    assert snap["ready"] is False
    assert snap["checks"]["spot.books"] == {"ok": True, "detail": ""}
    assert snap["checks"]["futures.deadman"]["ok"] is False
    futures.set("deadman")
    assert joint.is_open and joint.snapshot()["ready"] is True
    assert joint.passes(["spot.books"]) and not joint.passes(["spot.nope"])
    futures.clear("deadman", "switch lapsed")
    assert joint.snapshot()["checks"]["futures.deadman"]["detail"] == "switch lapsed"


def test_sighup_reloads_each_venues_params_from_the_one_file(tmp_path: Path) -> None:
    text = (REPO / "config" / "both.paper.yaml").read_text()
    path = tmp_path / "both.yaml"
    path.write_text(text)
    config = load_config_text(text, str(path), {})
    daemon = BothDaemon(
        config, load_strategies(config.strategies), config_path=path, clock=FakeClock()
    )
    assert daemon.reload_params() == []  # the same file: nothing refused, on either side
    changed = text.replace("size: 0.01                 # contracts", "size: 0.02  # contracts")
    assert changed != text
    path.write_text(changed)
    assert daemon.reload() is True
    (perp,) = daemon.futures.loaded
    assert str(perp.params.size) == "0.02"  # type: ignore[attr-defined]
    (spot,) = daemon.spot.loaded
    assert str(spot.params.size) == "0.01"  # type: ignore[attr-defined]
    path.write_text(changed.replace("spread_bps: 2", "spread_bps: lots", 1))
    problems = daemon.reload_params()
    assert problems and all("spread_bps" in p for p in problems)


def test_the_dashboards_picture_sums_pnl_and_keeps_each_venues_assets_apart() -> None:
    def picture(balances: dict[str, str], realised: str, **more: object) -> Observation:
        return Observation(
            at_ns=1, running=True, ready=True, failing=(), metrics={"ready": [((), 1.0)]},
            pnl={"USD": Pnl(Decimal(realised), Decimal(1), Decimal(0))},
            balances={a: Decimal(v) for a, v in balances.items()}, balances_at_ns=5,
            **more,  # type: ignore[arg-type]
        )  # fmt: skip

    def row(name: str, risk_state: str) -> StrategyView:
        return StrategyView(name, "running", "", 0, 3, risk_state)

    spot_pair = Instrument("BTC/USD", "BTC", "USD", 1, 8)
    perp = Instrument("PF_XBTUSD", "XBT", "USD", 1, 4)
    merged = merge(
        {
            "spot": picture({"USD": "100"}, "2", risk_state="active",
                            instruments={"BTC/USD": spot_pair},
                            strategies=(row("both", "active"), row("spot_only", "active"))),
            "futures": picture({"USD": "50"}, "-0.5", risk_state="halted",
                               instruments={"PF_XBTUSD": perp},
                               strategies=(row("both", "halted"), row("perp", "reducing"))),
        },
        at_ns=9, ready=False, failing=("futures.books",), face={"loop_lag_seconds": [((), 0.0)]},
    )  # fmt: skip
    assert merged.pnl == {"USD": Pnl(Decimal("1.5"), Decimal(2), Decimal(0))}
    assert merged.balances == {"USD": Decimal(100), "futures:USD": Decimal(50)}
    assert merged.instruments["BTC/USD"] == spot_pair  # spot's as it is
    assert (merged.instruments["PF_XBTUSD"].base, merged.instruments["PF_XBTUSD"].quote) == (
        "futures:XBT", "futures:USD",
    )  # fmt: skip
    assert merged.risk_state == "spot: active, futures: halted"
    # A ``venue: both`` strategy is one row, with each venue's risk state for it.
    assert [(r.name, r.risk_state) for r in merged.strategies] == [
        ("both", "spot: active, futures: halted"), ("spot_only", "active"), ("perp", "reducing"),
    ]  # fmt: skip
    assert merged.failing == ("futures.books",) and not merged.ready
    assert (
        merged.metrics["ready"] == [((), 1.0), ((), 1.0)] and "loop_lag_seconds" in merged.metrics
    )
