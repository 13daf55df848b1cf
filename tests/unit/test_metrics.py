"""bot.service.metrics: the family table, pushed counters, scrape-time sources, the exposition.

Sources are fed by the real components (a Feed that never connects, a DeadmanSwitch armed
through a fake ``CancelAfterApi``, a REST client that sends nothing, the risk gate, the
position book, a strategy runner from the test harness), so a renamed attribute fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import MarketConfig
from bot.core.clock import FakeClock
from bot.core.histogram import Histogram
from bot.core.log import Secret, is_sensitive_key
from bot.core.supervisor import Supervisor
from bot.execution.deadman import DeadmanSwitch
from bot.execution.orders import Fill, OrderState, new_order
from bot.execution.pnl import PositionBook
from bot.execution.private_feed import PrivateFeed
from bot.execution.rest_answers import cancel_after
from bot.execution.risk import RiskGate
from bot.execution.venue import CancelAfter
from bot.kraken.instruments import Instrument
from bot.kraken.rest import KrakenRestClient
from bot.market.feed import Feed
from bot.service.metrics import (
    FAMILIES,
    MAX_CUSTOM_SERIES,
    HistogramSample,
    Metrics,
    Sample,
    deadman_source,
    feed_source,
    orders_source,
    positions_source,
    private_feed_source,
    rest_source,
    risk_source,
    runners_source,
    supervisor_source,
)
from bot.strategy import BookSnapshot, Params, Strategy, StrategyError
from bot.strategy.testing import StrategyHarness
from tests.unit.risk_commands import place_cmd

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def exposition(metrics: Metrics) -> Values:
    """Every sample of ``/metrics``, parsed by prometheus_client's own parser."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: Values = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def value(values: Values, family: str, /, **labels: str) -> float:
    return values[f"krakenbot_{family}", tuple(sorted(labels.items()))]


def fill(qty: int = 50_000_000, fee: str = "0.5") -> Fill:
    return Fill(
        exec_id="E1",
        trade_id="T1",
        cl_ord_id="c1",
        order_id="O1",
        symbol="BTC/USD",
        side="buy",
        price=300_000,
        qty=qty,
        price_precision=1,
        qty_precision=8,
        cost=Decimal("15000"),
        fee=Decimal(fee),
        fee_asset="USD",
        liquidity="m",
        ts_ns=0,
    )


# --------------------------------------------------------------------------- the table


def test_the_table_names_each_family_once_and_no_label_looks_secret() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for family in FAMILIES:
        assert family.kind in ("counter", "gauge", "histogram")
        assert not family.name.endswith("_total")
        assert not any(is_sensitive_key(label) for label in family.labels), family


def test_uses_its_own_registry_so_two_instances_coexist() -> None:
    first, second = Metrics(), Metrics()
    first.rejection("exchange", "mm", "place", "EOrder:Insufficient funds")
    assert prometheus_client.REGISTRY.get_sample_value("krakenbot_rejections_total") is None
    reason = "EOrder:Insufficient funds"
    assert value(exposition(first), "rejections_total", source="exchange", strategy="mm",
                 action="place", reason=reason) == 1  # fmt: skip
    assert ("krakenbot_rejections_total", ()) not in exposition(second)


# --------------------------------------------------------------------------- pushed


def test_fills_rejections_and_finished_orders_are_counted() -> None:
    metrics = Metrics(process=False)
    metrics.fill(fill(), "mm")
    metrics.fill(fill(qty=25_000_000, fee="0"), "mm")
    metrics.rejection("exchange", "mm", "place", "EOrder:Insufficient funds")
    metrics.order_finished(OrderState.FILLED)
    metrics.order_finished("canceled")
    metrics.order_finished(OrderState.CANCELED)
    v = exposition(metrics)
    assert value(v, "fills_total", strategy="mm", symbol="BTC/USD", side="buy", liquidity="m") == 2
    assert value(v, "fill_volume_total", strategy="mm", symbol="BTC/USD", side="buy") == 0.75
    assert value(v, "fill_fees_total", strategy="mm", asset="USD") == 0.5
    assert value(v, "orders_finished_total", state="canceled") == 2
    assert value(v, "orders_finished_total", state="filled") == 1


def test_handler_latency_histogram_is_cumulative() -> None:
    metrics = Metrics(process=False, buckets=(0.001, 0.01))
    observe = metrics.handler_observer("mm")
    for seconds in (0.0005, 0.001, 0.005, 0.5):
        observe("on_book", seconds)
    v = exposition(metrics)
    labels = {"strategy": "mm", "handler": "on_book"}
    assert value(v, "strategy_handler_seconds_bucket", le="0.001", **labels) == 2
    assert value(v, "strategy_handler_seconds_bucket", le="0.01", **labels) == 3
    assert value(v, "strategy_handler_seconds_bucket", le="+Inf", **labels) == 4
    assert value(v, "strategy_handler_seconds_count", **labels) == 4
    assert value(v, "strategy_handler_seconds_sum", **labels) == pytest.approx(0.5065)
    calls, total = metrics.handler_latency()["mm", "on_book"]
    assert calls == 4 and total == pytest.approx(0.5065)


def test_custom_strategy_metrics_are_labelled_with_strategy_name_and_symbol() -> None:
    metrics = Metrics(process=False)
    metrics.strategy_gauge("mm", "spread_bps", Decimal("3.25"), "BTC/USD")
    metrics.strategy_gauge("mm", "spread_bps", 4.5, "BTC/USD")
    metrics.strategy_count("mm", "requotes", 2)
    metrics.strategy_count("mm", "requotes")
    v = exposition(metrics)
    assert value(v, "strategy_metric", strategy="mm", name="spread_bps", symbol="BTC/USD") == 4.5
    assert value(v, "strategy_counter_total", strategy="mm", name="requotes", symbol="") == 3


@pytest.mark.parametrize("name", ["Bad-Name", "9lives", "", "api_key", "ws_token"])
def test_custom_metric_names_are_checked(name: str) -> None:
    with pytest.raises(StrategyError):
        Metrics(process=False).strategy_gauge("mm", name, 1)


def test_a_counter_never_goes_down_and_custom_series_are_capped() -> None:
    metrics = Metrics(process=False)
    with pytest.raises(StrategyError):
        metrics.strategy_count("mm", "x", -1)
    for i in range(MAX_CUSTOM_SERIES + 5):
        metrics.strategy_gauge("mm", f"g{i}", i)
    metrics.strategy_gauge("other", "g0", 1)
    custom = [s for s in metrics.samples() if s.name == "strategy_metric"]
    assert sum(s.labels[0] == "mm" for s in custom) == MAX_CUSTOM_SERIES
    assert sum(s.labels[0] == "other" for s in custom) == 1


# --------------------------------------------------------------------------- sources


def test_a_failing_source_or_a_bad_sample_is_counted_and_the_rest_still_served() -> None:
    metrics = Metrics(process=False)

    def broken() -> Iterable[Sample]:
        raise ZeroDivisionError("a component bug")

    metrics.add_source(broken)
    metrics.add_source(lambda: [Sample("no_such_family", 1), Sample("orders", 1)])
    metrics.add_source(lambda: [Sample("rest_headroom", 12.0)])
    v = exposition(metrics)
    assert value(v, "metrics_source_errors_total") == 3
    assert value(v, "rest_headroom") == 12
    metrics.remove_source(broken)
    assert value(exposition(metrics), "metrics_source_errors_total") == 5  # 3 + the 2 bad


def test_a_source_serves_its_own_histogram_and_a_misplaced_one_is_counted() -> None:
    metrics = Metrics(process=False)
    hist = Histogram((0.001, 0.01))
    for seconds in (0.0005, 0.002, 3.0):
        hist.observe(seconds)
    metrics.add_source(lambda: [HistogramSample("ws_order_ack_seconds", ("add_order",), hist)])
    metrics.add_source(
        lambda: [
            HistogramSample("rest_headroom", (), hist),  # a gauge's name
            HistogramSample("ws_order_ack_seconds", (), hist),  # its label missing
            Sample("ws_order_ack_seconds", 1, ("add_order",)),  # a histogram as a value
        ]
    )
    v = exposition(metrics)
    labels = {"method": "add_order"}
    assert value(v, "ws_order_ack_seconds_bucket", le="0.001", **labels) == 1
    assert value(v, "ws_order_ack_seconds_bucket", le="0.01", **labels) == 2
    assert value(v, "ws_order_ack_seconds_bucket", le="+Inf", **labels) == 3
    assert value(v, "ws_order_ack_seconds_count", **labels) == 3
    assert value(v, "ws_order_ack_seconds_sum", **labels) == pytest.approx(3.0025)
    assert value(v, "metrics_source_errors_total") == 3
    assert all(s.name != "ws_order_ack_seconds" for s in metrics.samples())


def test_feed_source_reports_frames_lag_reconnects_and_books() -> None:
    clock = FakeClock()
    feed = Feed(
        "ws://127.0.0.1:1/v2", MarketConfig(symbols=("BTC/USD",)), lambda e: None, clock=clock
    )
    metrics = Metrics(process=False)
    metrics.add_source(feed_source(feed))
    v = exposition(metrics)
    assert value(v, "feed_connected", feed="public") == 0
    assert ("krakenbot_feed_frame_age_seconds", (("feed", "public"),)) not in v  # no frame yet
    stats = feed.stats
    stats.frames, stats.book_frames, stats.reconnects, stats.unparsed = 120, 100, 2, 1
    stats.checksum_failures["BTC/USD"] = 3
    stats.last_frame_at = clock.monotonic()
    stats.ping_rtt_s = 0.004
    clock.advance(1.5)
    v = exposition(metrics)
    assert value(v, "feed_frames_total", feed="public") == 120
    assert value(v, "feed_book_frames_total", feed="public") == 100
    assert value(v, "feed_reconnects_total", feed="public") == 2
    assert value(v, "feed_unparsed_frames_total", feed="public") == 1
    assert value(v, "feed_frame_age_seconds", feed="public") == 1.5
    assert value(v, "feed_ping_rtt_seconds", feed="public") == 0.004
    assert value(v, "book_checksum_failures_total", symbol="BTC/USD") == 3


class _NoTokens:
    async def fresh(self) -> str:
        raise AssertionError("never connects in this test")


def test_private_feed_source() -> None:
    clock = FakeClock()
    feed = PrivateFeed("ws://127.0.0.1:1/v2", _NoTokens(), lambda e: None, clock=clock)
    feed.stats.frames, feed.stats.reconnects, feed.stats.sequence_gaps = 7, 1, 2
    metrics = Metrics(process=False)
    metrics.add_source(private_feed_source(feed))
    v = exposition(metrics)
    assert value(v, "private_feed_subscribed") == 0
    assert value(v, "feed_frames_total", feed="private") == 7
    assert value(v, "feed_reconnects_total", feed="private") == 1
    assert value(v, "private_feed_sequence_gaps_total") == 2


class _Kraken:
    """``CancelAfterApi``: Kraken's answer for a 60 s timer, read as the REST venue does."""

    async def cancel_after(self, timeout_s: int) -> CancelAfter:
        return cancel_after(
            {"currentTime": "2024-01-01T00:00:00Z", "triggerTime": "2024-01-01T00:01:00Z"}
        )


async def test_deadman_source_counts_down_to_the_trigger() -> None:
    clock = FakeClock()
    switch = DeadmanSwitch(_Kraken(), clock, timeout_s=60)
    metrics = Metrics(process=False)
    metrics.add_source(deadman_source(switch))
    v = exposition(metrics)
    assert value(v, "deadman_armed") == 0
    assert ("krakenbot_deadman_seconds_to_trigger", ()) not in v
    await switch.arm()
    clock.advance(10)
    v = exposition(metrics)
    assert value(v, "deadman_armed") == 1
    assert value(v, "deadman_seconds_to_trigger") == 50
    assert value(v, "deadman_refreshes_total") == 1


def test_rest_source_reports_rest_and_per_pair_headroom() -> None:
    clock = FakeClock()
    rest = KrakenRestClient("http://127.0.0.1:1", clock=clock)
    full = rest.rest_headroom()
    rest.rest_counter.charge(2, clock.monotonic())
    rest.trading_counter.charge("BTC/USD", 3, clock.monotonic())
    rest.rest_counter.refused(1, clock.monotonic())
    rest.rest_counter.refused(1, clock.monotonic())
    metrics = Metrics(process=False)
    metrics.add_source(rest_source(rest))
    v = exposition(metrics)
    assert value(v, "rest_headroom") == rest.rest_headroom() <= 0  # full after the refusals
    assert value(v, "rest_refusals_total") == 2
    assert value(v, "trading_headroom", pair="BTC/USD") == rest.trading_headroom("BTC/USD")
    assert full == 15


async def test_supervisor_source_counts_restarts_by_task() -> None:
    supervisor = Supervisor(FakeClock(auto_advance=True))
    metrics = Metrics(process=False)
    metrics.add_source(supervisor_source(supervisor))
    runs = 0
    forever = asyncio.Event()

    async def returns_twice() -> None:
        nonlocal runs
        runs += 1
        if runs > 2:
            await forever.wait()

    async def steady() -> None:
        await forever.wait()

    tasks = [
        asyncio.create_task(supervisor.keep("feed", returns_twice)),
        asyncio.create_task(supervisor.keep("engine", steady)),
    ]
    async with asyncio.timeout(5):
        while runs < 3:  # noqa: ASYNC110 (the supervisor's restarts)
            await asyncio.sleep(0)
    v = exposition(metrics)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert value(v, "task_restarts_total", task="feed") == 2
    assert value(v, "task_restarts_total", task="engine") == 0


def test_risk_and_positions_sources() -> None:
    clock = FakeClock()
    book = PositionBook(clock)
    book.apply_fill("BTC/USD", BTC, "buy", 100_000_000, 300_000, strategy="mm")
    book.apply_fill("BTC/USD", BTC, "sell", 50_000_000, 310_000, strategy="mm")
    book.mark("BTC/USD", Decimal("32000"))
    risk = RiskGate(clock, book)
    risk.halt("test")
    assert not risk.check(place_cmd("mm", BTC, "buy", 1_000, 300_000)).accepted
    metrics = Metrics(process=False)
    metrics.add_source(risk_source(risk, ["mm"]))
    metrics.add_source(positions_source(book))
    v = exposition(metrics)
    assert value(v, "risk_state", state="halted") == 1
    assert value(v, "risk_state", state="active") == 0
    assert value(v, "strategy_risk_state", strategy="mm", state="halted") == 1
    assert not [k for k in v if k[0] == "krakenbot_rejections_total"]  # the desk counts them
    assert value(v, "strategy_position", strategy="mm", symbol="BTC/USD") == 0.5
    assert value(v, "strategy_realised_pnl", strategy="mm", quote="USD") == 500
    assert value(v, "strategy_unrealised_pnl", strategy="mm", quote="USD") == 1000
    assert value(v, "strategy_daily_pnl", strategy="mm", quote="USD") == 1500


class Flaky(Strategy[Params]):
    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        raise ValueError("boom")


def test_runners_source_reports_state_calls_and_errors() -> None:
    harness = StrategyHarness(Flaky, name="flaky", max_errors=2)
    harness.quote("30000", "30010")
    runners = [harness.runner]
    metrics = Metrics(process=False)
    metrics.add_source(runners_source(runners))
    v = exposition(metrics)
    assert value(v, "strategy_state", strategy="flaky", state="running") == 1
    assert value(v, "strategy_handler_errors_total", strategy="flaky", handler="on_book") == 1
    assert value(v, "strategy_handler_calls_total", strategy="flaky", handler="on_book") == 1
    harness.quote("30000", "30020")
    v = exposition(metrics)
    assert value(v, "strategy_state", strategy="flaky", state="halted") == 1
    assert value(v, "strategy_state", strategy="flaky", state="running") == 0


def test_orders_source_counts_every_state() -> None:
    order = new_order(
        cl_ord_id="aaaaaaaa-0000-4000-8000-000000000001",
        instrument=BTC,
        side="buy",
        order_type="limit",
        qty=1_000,
        price=300_000,
        strategy="mm",
        now_ns=0,
    )
    metrics = Metrics(process=False)
    metrics.add_source(orders_source(lambda: [order, order]))
    v = exposition(metrics)
    assert value(v, "orders", state="pending_new") == 2
    assert all(
        value(v, "orders", state=s.value) == 0 for s in OrderState if s.value != "pending_new"
    )


# --------------------------------------------------------------------------- secrets


def test_registered_secrets_never_reach_the_exposition() -> None:
    key, secret = "K" * 56, Secret("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==")
    clock = FakeClock()
    rest = KrakenRestClient("http://127.0.0.1:1", clock=clock, api_key=Secret(key),
                            api_secret=secret)  # fmt: skip
    metrics = Metrics()
    metrics.add_source(rest_source(rest))
    leaky = f"strategy-{secret.reveal()}"  # a label value that contains a secret
    metrics.strategy_gauge(leaky, "x", 1)
    metrics.rejection("exchange", "", "place", f"EGeneral:Invalid arguments {key}")
    body = metrics.render()[0].decode()
    assert key not in body and secret.reveal() not in body
    assert "strategy-***" in body
    assert all(secret.reveal() not in "".join(lab) for s in metrics.snapshot().values()
               for lab, _ in s)  # fmt: skip


def test_openmetrics_when_asked() -> None:
    body, content_type = Metrics(process=False).render("application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
