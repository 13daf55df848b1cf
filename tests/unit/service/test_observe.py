"""Pictures of the daemon: read through the components' public views, fills from the store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bot.core.clock import FakeClock
from bot.execution.orders import Fill, Order
from bot.execution.pnl import PositionBook
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import RiskGate
from bot.kraken.instruments import Instrument
from bot.service.joint_view import JointObserver, VenueView
from bot.service.metrics import Metrics
from bot.service.observe import RECENT_FILLS, Observer, Parts
from bot.store import Store
from bot.strategy.runner import HandlerStats, RunnerState
from tests.unit.service.helpers import BTC, ETH, T0, fill, order


@dataclass
class FakeDesk:
    positions: PositionBook
    risk: RiskGate
    balances: dict[str, Decimal] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)

    @property
    def marks(self) -> FakeDesk:  # the desk's marks: the mids
        return self

    def mids(self) -> dict[str, Decimal]:
        return {"BTC/USD": Decimal("30000.0")}


@dataclass
class FakeEngine:
    orders: dict[str, Order] = field(default_factory=dict)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    def order(self, cl_ord_id: str) -> Order | None:
        return self.orders.get(cl_ord_id)


@dataclass
class FakeRunner:
    name: str
    state: RunnerState = RunnerState.RUNNING
    halt_reason: str = ""
    errors: int = 0
    stats: dict[str, HandlerStats] = field(default_factory=dict)


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.clock = FakeClock(T0)
        self.gate = ReadinessGate(["books"])
        self.metrics = Metrics(process=False)
        book = PositionBook(self.clock)
        venue = {"BTC/USD": BTC, "ETH/USD": ETH, "XBT/EUR": BTC}  # every pair the venue lists
        self.desk = FakeDesk(book, RiskGate(self.clock, book), instruments=venue)
        self.engine = FakeEngine()
        self.store = Store.open(tmp / "bot.db")
        self.runners = [FakeRunner("mm", stats={"on_book": HandlerStats(calls=7)})]
        self.observer = Observer(self.clock, self.metrics, self.gate)

    def attach(self) -> None:
        self.observer.attach(
            Parts(self.desk, self.engine, self.store, self.runners_now, ("BTC/USD", "ETH/USD"))
        )

    def runners_now(self) -> Iterable[FakeRunner]:
        return self.runners

    def record(self, *fills: Fill) -> None:
        for f in fills:
            self.store.record_fill(f)


def test_before_attach_a_picture_is_readiness_and_metrics_only(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    obs = rig.observer.observe()
    assert not obs.running and not obs.ready and obs.failing == ("books",)
    assert "info" in obs.metrics and obs.open_orders == () and obs.fills == ()
    assert not rig.observer.attached


def test_a_picture_reads_strategies_orders_positions_and_only_the_traded_instruments(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.attach()
    rig.engine.orders = {o.cl_ord_id: o for o in (order(2, created_ns=T0 + 5), order(1))}
    rig.desk.positions.apply_fill("BTC/USD", BTC, "buy", BTC.qty("1"), BTC.price("29000.0"),
                                  strategy="mm")  # fmt: skip
    rig.desk.risk.halt("test", strategy="mm")
    obs = rig.observer.observe()
    assert obs.running and set(obs.instruments) == {"BTC/USD", "ETH/USD"}
    assert [o.cl_ord_id for o in obs.open_orders] == [f"{1:032x}", f"{2:032x}"]  # by age
    (mm,) = obs.strategies
    assert (mm.name, mm.state, mm.calls, mm.risk_state) == ("mm", "running", 7, "halted")
    assert obs.risk_state == "active"
    assert [p.symbol for p in obs.positions] == ["BTC/USD"] and obs.totals[0].qty == 1
    assert (
        obs.pnl["USD"].realised == 0 and obs.strategy_pnl["mm", "USD"].today == obs.pnl["USD"].today
    )


def test_fills_come_from_the_store_each_once_even_at_the_same_timestamp(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.record(fill(1, ts_ns=T0 - 10), fill(2, ts_ns=T0))
    rig.engine.orders = {f"{1:032x}": order(1, strategy="grid")}
    rig.store.save_order(order(2, strategy="mm"))  # the engine forgot it: the store knows
    rig.attach()
    first = rig.observer.observe()
    assert [f.fill.exec_id for f in first.fills] == ["EXEC-1", "EXEC-2"]
    assert first.new_fills == ()  # the record before: shown, never "new"
    rig.record(fill(3, ts_ns=T0))  # the same timestamp as the newest seen
    rig.record(fill(4, ts_ns=T0 + 5))
    second = rig.observer.observe()
    assert [f.fill.exec_id for f in second.new_fills] == ["EXEC-3", "EXEC-4"]
    assert [f.strategy for f in second.fills] == ["grid", "mm", "", ""]
    assert rig.observer.observe().new_fills == ()


def test_only_the_last_fills_are_kept(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.record(*(fill(k, ts_ns=T0 + k) for k in range(RECENT_FILLS + 5)))
    rig.attach()
    fills = rig.observer.observe().fills
    assert len(fills) == RECENT_FILLS and fills[-1].fill.exec_id == f"EXEC-{RECENT_FILLS + 4}"


def test_balances_are_stamped_when_the_poller_replaces_them(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.attach()
    assert rig.observer.observe().balances_at_ns is None  # not polled yet
    rig.desk.balances = {"USD": Decimal(10)}
    assert rig.observer.observe().balances_at_ns == T0
    rig.clock.advance(20)
    assert rig.observer.observe().balances_at_ns == T0  # the same poll
    rig.desk.balances = {"USD": Decimal(11)}
    assert rig.observer.observe().balances_at_ns == T0 + 20 * 1_000_000_000


def test_a_joint_picture_stops_reading_a_venue_once_it_detached_and_closed_its_store(
    tmp_path: Path,
) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "f").mkdir()
    spot, futures = Rig(tmp_path / "s"), Rig(tmp_path / "f")
    spot.attach()
    futures.attach()
    spot.record(fill(1))
    gate = ReadinessGate(["spot.books"])
    joint = JointObserver(
        spot.clock,
        Metrics(process=False),
        gate,
        {
            "spot": VenueView(spot.observer, spot.metrics, spot.gate),
            "futures": VenueView(futures.observer, futures.metrics, futures.gate),
        },
    )
    assert joint.observe().running and len(joint.observe().fills) == 1
    futures.observer.detach()  # what a stopping venue does before its store closes
    futures.store.close()
    obs = joint.observe()  # reads spot only: no closed store touched
    assert obs.running and [f.fill.exec_id for f in obs.fills] == [fill(1).exec_id]
