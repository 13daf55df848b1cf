"""The WebSocket order entry's ``/metrics`` families, driven by the simulator's faults.

Each scenario runs the real ``KrakenWsVenue`` on the simulator over loopback (the harness of
``test_venue_ws``), injects a fault as Kraken would produce it, and reads the families the
way Prometheus does: ``Metrics.render()`` with ``ws_orders_source``, parsed by
prometheus_client's own parser. Only the test's own orders exist (no market), so every
count is exact.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.clock import FakeClock
from bot.core.errors import InsufficientFunds, OrderStateUnknown
from bot.service.metrics import Metrics, ws_orders_source
from tests.loopback.conftest import SimFactory
from tests.loopback.test_venue_ws import Harness, harness, until

pytestmark = pytest.mark.timeout(60)
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(h: Harness) -> Scrape:
    metrics = Metrics(process=False)
    metrics.add_source(ws_orders_source(h.venue))
    out: Scrape = {}
    for family in text_string_to_metric_families(metrics.render()[0].decode()):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def get(values: Scrape, name: str, /, **labels: str) -> float:
    return values.get((f"krakenbot_{name}", tuple(sorted(labels.items()))), 0.0)


def requests(values: Scrape, outcome: str, method: str = "add_order", error: str = "") -> float:
    return get(values, "ws_order_requests_total", method=method, outcome=outcome, error=error)


async def test_answers_are_counted_by_method_and_outcome(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        await h.venue.place(h.bid("50000"), h.inst)
        with pytest.raises(InsufficientFunds):
            await h.venue.place(h.bid("50000", qty="1000"), h.inst)
        await h.sim.venue.faults.inject(kind="ws_order_error", endpoint="add_order")
        with pytest.raises(OrderStateUnknown):  # EService:Unavailable: the order may exist
            await h.venue.place(h.bid("49000"), h.inst)
        await h.venue.cancel_all([h.inst])
        got = scrape(h)
        assert requests(got, "ok") == 1 and requests(got, "unknown") == 1
        assert requests(got, "refused", error="InsufficientFunds") == 1
        assert requests(got, "lost") == requests(got, "timeout") == 0
        assert requests(got, "ok", method="cancel_all") == 1
        # Every answered request has its ack latency (the lost ones have none).
        assert get(got, "ws_order_ack_seconds_count", method="add_order") == 3
        assert get(got, "ws_order_ack_seconds_bucket", method="add_order", le="+Inf") == 3
        assert get(got, "ws_order_ack_seconds_count", method="cancel_all") == 1
        assert get(got, "order_entry_path", path="websocket") == 1
        assert get(got, "order_entry_path", path="rest") == 0
        assert get(got, "ws_order_token_refusals_total") == 0
        assert get(got, "order_entry_fallbacks_total", reason="socket_down") == 0


async def test_a_refused_token_is_counted_with_the_fallback_and_the_return(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(
            kind="ws_order_error", endpoint="add_order", error="EAPI:Invalid token"
        )
        await h.venue.place(h.bid("50000"), h.inst)  # sent again over REST
        got = scrape(h)
        assert get(got, "ws_order_token_refusals_total") == 1
        assert requests(got, "refused", error="TokenError") == 1
        assert get(got, "order_entry_fallbacks_total", reason="token_refused") == 1
        assert get(got, "order_entry_returns_total") == 0
        await until(lambda: h.keeper.stats.minted == 2 and h.entry.ready, "a fresh token")
        await h.venue.place(h.bid("49000"), h.inst)
        got = scrape(h)
        assert get(got, "order_entry_returns_total") == 1 and requests(got, "ok") == 1
        assert h.rest.writes == ["place"]


async def test_a_lost_answer_is_counted_lost(sim_factory: SimFactory) -> None:
    async with harness(sim_factory) as h:
        await h.sim.venue.faults.inject(kind="ws_lose_ack", endpoint="add_order")
        with pytest.raises(OrderStateUnknown):
            await h.venue.place(h.bid("50000"), h.inst)
        got = scrape(h)
        assert requests(got, "lost") == 1 and requests(got, "ok") == 0
        assert get(got, "ws_order_ack_seconds_count", method="add_order") == 0


async def test_ack_latency_timeouts_and_late_answers(sim_factory: SimFactory) -> None:
    sim_clock, clock = FakeClock(), FakeClock()
    async with harness(sim_factory, sim_clock=sim_clock, clock=clock, ack_timeout_s=2.0) as h:
        # Answered 0.3 s (our clock) after it left: the 0.5 bucket, not the 0.25 one.
        await h.sim.venue.faults.inject(kind="ws_order_delay", endpoint="add_order", delay_s=1)
        place = asyncio.create_task(h.venue.place(h.bid("49000"), h.inst))
        await until(lambda: len(h.on_sim()) == 1, "the order on the simulator")
        clock.advance(0.3)
        sim_clock.advance(1.0)
        await place
        got = scrape(h)
        assert get(got, "ws_order_ack_seconds_bucket", method="add_order", le="0.25") == 0
        assert get(got, "ws_order_ack_seconds_bucket", method="add_order", le="0.5") == 1
        assert get(got, "ws_order_ack_seconds_sum", method="add_order") == pytest.approx(0.3)
        # Not answered within ack_timeout_s: timeout; its answer, when it comes, is late.
        await h.sim.venue.faults.inject(kind="ws_order_delay", endpoint="add_order", delay_s=5)
        place = asyncio.create_task(h.venue.place(h.bid("48000"), h.inst))
        await until(lambda: len(h.on_sim()) == 2, "the second order on the simulator")
        clock.advance(2.0)
        with pytest.raises(OrderStateUnknown):
            await place
        got = scrape(h)
        assert requests(got, "timeout") == 1 and get(got, "ws_order_late_answers_total") == 0
        sim_clock.advance(5.0)
        await until(lambda: h.entry.stats.late_answers == 1, "the late answer")
        got = scrape(h)
        assert get(got, "ws_order_late_answers_total") == 1 and requests(got, "ok") == 1
        assert get(got, "ws_order_ack_seconds_count", method="add_order") == 1


async def test_the_path_gauge_and_the_switches_follow_the_socket(
    sim_factory: SimFactory,
) -> None:
    async with harness(sim_factory) as h:
        await h.venue.place(h.bid("50000"), h.inst)
        h.keeper.open.clear()  # the next connection waits for its token
        await h.sim.venue.faults.inject(kind="ws_drop", conn_kind="private")
        await until(lambda: not h.entry.ready, "the link down")
        got = scrape(h)
        assert get(got, "order_entry_path", path="rest") == 1
        assert get(got, "order_entry_path", path="websocket") == 0
        await h.venue.place(h.bid("49000"), h.inst)  # over REST
        await h.venue.place(h.bid("48000"), h.inst)  # still REST: one switch, counted once
        assert get(scrape(h), "order_entry_fallbacks_total", reason="socket_down") == 1
        h.keeper.open.set()
        await until(lambda: h.entry.ready, "the link back")
        await h.venue.place(h.bid("47000"), h.inst)
        got = scrape(h)
        assert get(got, "order_entry_path", path="websocket") == 1
        assert get(got, "order_entry_returns_total") == 1
        assert get(got, "order_entry_fallbacks_total", reason="socket_down") == 1
        assert requests(got, "ok") == 2 and h.rest.writes == ["place", "place"]
