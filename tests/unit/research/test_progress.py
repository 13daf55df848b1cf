"""Progress: a bar on a terminal, log lines elsewhere, paced by an injected clock."""

from __future__ import annotations

import io

from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.research.progress import LogProgress, TerminalProgress, progress_for


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_redraws_in_place_at_most_every_interval() -> None:
    clock, out = FakeClock(), io.StringIO()
    bar = TerminalProgress(out, clock, every_s=0.5)
    bar.start("report", 200)
    bar.advance(50)  # no time has passed: nothing drawn yet
    assert out.getvalue() == ""
    clock.advance(0.5)
    bar.advance(50)
    assert out.getvalue() == "\rreport [###############...............]  50.0% 100/200 0.5s"
    clock.advance(1.0)
    bar.finish()
    assert out.getvalue().endswith(
        "\rreport [##############################] 100.0% 200/200 1.5s\n"
    )


def test_an_unknown_total_shows_a_count() -> None:
    clock = FakeClock()
    bar = TerminalProgress(io.StringIO(), clock)
    bar.start("frames", None)
    bar.advance(1234)
    assert bar.line(2.0) == "frames 1,234 2.0s"


def test_log_lines_every_interval_and_one_at_the_end() -> None:
    clock = FakeClock()
    with capture_logs() as logs:
        progress = LogProgress(clock, every_s=10)
        progress.start("report", 1000)
        for _ in range(10):
            clock.advance(3)
            progress.advance(100)
        progress.finish()
    events = [(e["event"], e.get("done"), e.get("pct")) for e in logs]
    assert events == [
        ("progress", 400, 40.0),  # 12 s after the start
        ("progress", 800, 80.0),  # 24 s: 10 s after the last line, at the next advance
        ("progress_done", 1000, 100.0),  # 30 s
    ]


def test_progress_for_picks_the_bar_only_on_a_terminal() -> None:
    clock = FakeClock()
    assert isinstance(progress_for(Tty(), clock), TerminalProgress)
    assert isinstance(progress_for(io.StringIO(), clock), LogProgress)
