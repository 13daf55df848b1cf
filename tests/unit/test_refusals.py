"""bot.strategy.refusals: every refusal counted by source and reason, each kind logged once per
interval with the count of its repeats."""

from __future__ import annotations

from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.core.log import get_logger
from bot.strategy.refusals import Refusals


def make(every_s: float = 5.0) -> tuple[FakeClock, Refusals, list[tuple[str, ...]]]:
    clock = FakeClock()
    pushed: list[tuple[str, ...]] = []
    refusals = Refusals(
        clock, get_logger(component="desk"), every_s=every_s,
        on_count=lambda *key: pushed.append(key),
    )  # fmt: skip
    return clock, refusals, pushed


def test_a_storm_is_counted_in_full_and_logged_once_per_interval_with_its_count() -> None:
    clock, refusals, pushed = make()
    with capture_logs() as logs:
        for i in range(537):  # the holdback's refusals of one short run
            refusals.refuse("place", "desk", "rate_limit", strategy="mm", symbol="BTC/USD",
                            cl_ord_id=f"c{i}")  # fmt: skip
            clock.advance(0.001)
        for _ in range(39):  # a second of amend refusals by the risk gate
            refusals.refuse("amend", "risk", "max_position", strategy="mm", symbol="BTC/USD")
        assert refusals.total() == 576 and len(pushed) == 576
        assert refusals.counts() == {
            ("desk", "mm", "place", "rate_limit"): 537,
            ("risk", "mm", "amend", "max_position"): 39,
        }
        assert pushed[0] == ("desk", "mm", "place", "rate_limit")
        assert [(e["event"], e["suppressed"]) for e in logs] == [
            ("order_rejected", 0),
            ("amend_rejected", 0),
        ]
        assert logs[0]["cl_ord_id"] == "c0" and logs[0]["strategy"] == "mm"
        refusals.flush()  # inside the interval: nothing yet
        assert len(logs) == 2
        clock.advance(5.0)
        refusals.flush()  # the repeats nobody reported: one line each, with the count
        summary = [(e["event"], e["action"], e["reason"], e["count"]) for e in logs[2:]]
        assert summary == [
            ("refusals_suppressed", "place", "rate_limit", 536),
            ("refusals_suppressed", "amend", "max_position", 38),
        ]
        refusals.flush()
        assert len(logs) == 4  # said once
        refusals.refuse("place", "desk", "rate_limit", strategy="mm", symbol="BTC/USD")
        assert (logs[-1]["event"], logs[-1]["suppressed"]) == ("order_rejected", 0)


def test_a_repeat_after_the_interval_is_logged_with_the_repeats_before_it() -> None:
    clock, refusals, _ = make(every_s=1.0)
    with capture_logs() as logs:
        for _ in range(3):
            refusals.refuse("cancel", "exchange", "EOrder:Unknown order", strategy="g")
        clock.advance(1.0)
        refusals.refuse("cancel", "exchange", "EOrder:Unknown order", strategy="g")
        # Another strategy, symbol, source or reason is a line of its own.
        refusals.refuse("cancel", "exchange", "EOrder:Unknown order", strategy="h")
        refusals.refuse("cancel", "engine", "unavailable", strategy="g")
    assert [(e["event"], e["strategy"], e["source"], e["suppressed"]) for e in logs] == [
        ("cancel_rejected", "g", "exchange", 0),
        ("cancel_rejected", "g", "exchange", 2),
        ("cancel_rejected", "h", "exchange", 0),
        ("cancel_rejected", "g", "engine", 0),
    ]
    assert refusals.total(source="exchange") == 5 and refusals.total(reason="unavailable") == 1
