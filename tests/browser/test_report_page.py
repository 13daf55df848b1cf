"""The HTML report in a real browser: it renders, every chart draws points, nothing errs."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.core.log import reset_logging
from bot.research.figures import build_report
from bot.research.html import render_html
from bot.research.record import Mark, RunRecord
from tests.browser.conftest import OpenPage, file_url
from tests.unit.research.helpers import BTC, T0, S, traded, write_paper_store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHARTS_DRAWN = """() => [...document.querySelectorAll('div.chart')].map(div => ({
    id: div.id,
    plotted: div.classList.contains('js-plotly-plot'),
    traces: (div.data || []).length,
    points: (div.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0),
    lines: [...div.querySelectorAll('.scatterlayer path.js-line')]
        .filter(p => (p.getAttribute('d') || '').length > 10).length,
    markers: div.querySelectorAll('.scatterlayer path.point').length,
    svg: div.querySelectorAll('svg.main-svg').length,
}))"""
SETTLED = "() => document.body.dataset.charts !== undefined"


def charts(probe: Any) -> dict[str, dict[str, Any]]:
    """Every chart's drawing, once the page says its charts are drawn (or failed)."""
    probe.page.wait_for_function(SETTLED, timeout=30_000)
    assert probe.page.evaluate("document.body.dataset.charts") == "drawn", probe.errors
    return {c["id"]: c for c in probe.page.evaluate(CHARTS_DRAWN)}


def test_the_report_of_a_paper_store_renders_with_every_chart_drawn(
    tmp_path: Path, open_page: OpenPage
) -> None:
    write_paper_store(tmp_path / "krakenbot.db").close()
    try:
        assert main(["--log-format", "json", "report", "--store", str(tmp_path / "krakenbot.db"),
                     "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    finally:
        reset_logging()
    probe = open_page(file_url(tmp_path / "out" / "report.html"))
    page = probe.page
    assert page.title().startswith("krakenbot report: paper run from store")
    drawn = charts(probe)
    assert set(drawn) == {"equity-USD", "drawdown-USD", "exposure-USD", "symbol-BTC_USD",
                          "symbol-ETH_USD"}  # fmt: skip
    for chart in drawn.values():
        assert chart["plotted"] and chart["svg"] > 0, chart
        assert chart["traces"] > 0 and chart["points"] > 0, chart
        assert chart["lines"] + chart["markers"] > 0, chart  # something is on the canvas
    assert drawn["symbol-BTC_USD"]["markers"] >= 4  # its four fills
    assert drawn["equity-USD"]["lines"] >= 3  # mm's two lines... and the total
    first_row = page.locator("table.figures tbody tr").first.inner_text()
    assert "BTC/USD" in first_row
    assert page.locator("text=total USD").count() >= 2  # both tables


def test_a_long_run_with_thousands_of_fills_renders(tmp_path: Path, open_page: OpenPage) -> None:
    rnd = random.Random(7)
    orders, fills, marks, price = [], [], [], 30000.0
    for k in range(20_000):
        price = max(1000.0, price + rnd.gauss(0, 3))
        marks.append(Mark(T0 + k * S, Decimal(f"{price:.1f}")))
        if k % 8 == 0:
            side = "buy" if rnd.random() < 0.5 else "sell"
            o, f = traded(BTC, side, "0.001", f"{price:.1f}", ts=T0 + k * S, fee="0.01",
                          strategy=rnd.choice(["mm", "grid"]))  # fmt: skip
            orders.append(o)
            fills.append(f)
    report = build_report(RunRecord("long", orders, fills, marks={"BTC/USD": marks}))
    assert report.charts.fills_aggregated["BTC/USD"]
    (tmp_path / "long.html").write_text(render_html(report))
    drawn = charts(open_page(file_url(tmp_path / "long.html")))
    for chart in drawn.values():
        assert chart["points"] > 0 and chart["lines"] + chart["markers"] > 0, chart
        assert chart["points"] < 50_000, chart  # decimated: the page stays light


def test_an_empty_report_renders_and_says_so(tmp_path: Path, open_page: OpenPage) -> None:
    (tmp_path / "empty.html").write_text(render_html(build_report(RunRecord("nothing yet"))))
    probe = open_page(file_url(tmp_path / "empty.html"))
    assert probe.page.locator("text=No orders or fills in this window.").count() == 1
    assert charts(probe) == {}


def test_the_harness_catches_console_errors_page_errors_and_requests(
    tmp_path: Path, open_page: OpenPage
) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title>"
        '<link rel="stylesheet" href="http://127.0.0.1:9/missing.css"></head><body>'
        "<script>console.error('boom');</script><script>throw new Error('late');</script>"
        "</body></html>"
    )
    probe = open_page(file_url(bad))
    found = "\n".join(probe.errors)
    assert "console.error: boom" in found
    assert "page error: " in found and "late" in found
    assert "request refused (the page must work offline): http://127.0.0.1:9/missing.css" in found
    probe.errors.clear()  # seen: this test expects them
