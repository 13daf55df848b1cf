"""The optimize report in a real browser: Optuna's plots drawn offline, the walk-forward
table with in-sample beside out-of-sample, no console errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.log import reset_logging
from tests.browser.conftest import OpenPage, file_url
from tests.browser.test_report_page import charts
from tests.unit.optimize.helpers import files

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_the_optimize_page_draws_every_plot(tmp_path: Path, open_page: OpenPage) -> None:
    config, space, data = files(tmp_path)
    out = tmp_path / "out"
    argv = ["--log-format", "json", "optimize", "-c", str(config), "--data", str(data),
            "--space", str(space), "--trials", "8", "--out", str(out)]  # fmt: skip
    # Playwright's sync API runs an event loop in this thread; each backtest runs its own.
    with ThreadPoolExecutor(1) as pool:
        try:
            assert pool.submit(main, argv).result() == 0
        finally:
            reset_logging()
    probe = open_page(file_url(out / "report.html"))
    page = probe.page
    assert page.title() == "krakenbot optimize: krakenbot"
    drawn = charts(probe)
    # history, importances, slice and contour of fold 0 (two parameters, eight trials)
    assert set(drawn) == {f"fold0-plot{i}" for i in range(4)}
    for chart in drawn.values():
        assert chart["plotted"] and chart["svg"] > 0, chart
        assert chart["traces"] > 0, chart
    headers = page.eval_on_selector_all("table.folds th", "ths => ths.map(t => t.textContent)")
    assert headers[-2:] == ["in-sample", "out-of-sample"]
    cells = page.eval_on_selector_all("table.folds td", "tds => tds.map(t => t.textContent)")
    assert cells[-2] != "n/a" and cells[-1] != "" and cells[-1] != "n/a"
    assert probe.problems() == []
