"""The live dashboard in a real browser, served by the daemon itself (``krakenbot run`` as a
subprocess, paper mode on the bundled simulator, the HTTP server on a free port).

The page must load with no console error and no request leaving the daemon's origin,
show every section with real figures (formatted at the instrument's precision), draw the
charts, and keep updating them from the live stream as fills arrive. With a control token
configured the control buttons appear, ask for the token and act; without one they never
appear. Every wait is bounded.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import default_config_path
from tests.browser.conftest import OpenPage
from tests.e2e.conftest import Proc, python_env, start

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

TOKEN_ENV = "KRAKENBOT_TEST_CONTROL_TOKEN"
TOKEN = "a-long-random-control-token-for-tests-0123456789"
WAIT_MS = 45_000

CHARTS = """() => Object.fromEntries([...document.querySelectorAll('#charts div.chart')].map(
  div => [div.id, {
    traces: (div.data || []).map(t => ({name: t.name, points: (t.x || []).length})),
    svg: div.querySelectorAll('svg.main-svg').length,
    lines: [...div.querySelectorAll('.scatterlayer path.js-line')]
        .filter(p => (p.getAttribute('d') || '').length > 10).length,
    markers: div.querySelectorAll('.scatterlayer path.point').length,
  }]))"""


@dataclass
class Served:
    proc: Proc
    url: str


def _config(tmp: Path, control: bool) -> Path:
    text = default_config_path().read_text()
    text = text.replace("port: 8080", "port: 0")
    text = text.replace("path: data/paper.db", f"path: {tmp / 'paper.db'}")
    if control:
        text = text.replace("  port: 0\n", f"  port: 0\n  control_token_env: {TOKEN_ENV}\n")
    path = tmp / "deploy.yaml"
    path.write_text(text)
    return path


def _serve(tmp: Path, *, control: bool) -> Iterator[Served]:
    config = _config(tmp, control)
    env = python_env(**({TOKEN_ENV: TOKEN} if control else {}))
    proc = start(
        [sys.executable, "-m", "bot", "--log-format", "json", "run", "--config", str(config)],
        cwd=tmp, env=env, name="daemon",
    )  # fmt: skip
    try:
        proc.logs.wait_for("daemon_ready", 30)
        port = proc.logs.events("http_listening")[0]["port"]
        yield Served(proc, f"http://127.0.0.1:{port}/")
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("read-only"), control=False)


@pytest.fixture(scope="module")
def controlled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("controlled"), control=True)


def _settle(page: Any) -> None:
    page.wait_for_function("() => document.body.dataset.charts !== undefined", timeout=WAIT_MS)
    assert page.evaluate("document.body.dataset.charts") == "drawn"
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) > 0", timeout=WAIT_MS)


def _rows(page: Any, section: str) -> list[list[str]]:
    return page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} tbody tr`)].map(
            tr => [...tr.querySelectorAll('td')].map(td => td.textContent))""",
        section,
    )


def _header(page: Any, section: str) -> list[str]:
    return page.evaluate(
        "(id) => [...document.querySelectorAll(`#${id} thead th`)].map(th => th.textContent)",
        section,
    )


def _column(page: Any, section: str, name: str) -> list[str]:
    index = _header(page, section).index(name)
    return [row[index] for row in _rows(page, section)]


def _fill_markers(page: Any, chart: str) -> int:
    traces = page.evaluate(CHARTS)[chart]["traces"]
    return sum(t["points"] for t in traces if t["name"] in ("buy fills", "sell fills"))


def test_the_dashboard_shows_every_section_with_real_figures(
    read_only: Served, open_page: OpenPage
) -> None:
    probe = open_page(read_only.url, same_origin=True)
    page = probe.page
    _settle(page)
    assert page.title() == "krakenbot"
    assert page.locator("#mode").inner_text() == "paper"
    assert page.locator("#risk").inner_text() == "ACTIVE"
    assert page.locator("#ready").inner_text() == "READY"
    page.wait_for_function(
        "() => document.querySelectorAll('#fills tbody tr').length > 0", timeout=WAIT_MS
    )
    card = page.locator('#money .card[data-quote="USD"]').inner_text()
    assert "PnL today" in card and "equity" in card
    assert re.search(r"equity\s+\d{1,3}(,\d{3})*\.\d{2}\b", card), card  # USD: 2 places
    # Prices at each pair's precision (the simulator's BTC/USD: 1 decimal, ETH/USD: 2),
    # sizes at the lot's (8), ages counted.
    page.wait_for_function(
        "() => document.querySelectorAll('#orders tbody tr').length > 0", timeout=WAIT_MS
    )
    for row in _rows(page, "orders"):
        cells = dict(zip(_header(page, "orders"), row, strict=True))
        decimals = {"BTC/USD": 1, "ETH/USD": 2}[cells["symbol"]]
        assert re.fullmatch(rf"\d+\.\d{{{decimals}}}", cells["price"]), cells
        assert re.fullmatch(r"\d+\.\d{8}", cells["size"]), cells
        assert re.fullmatch(r"[+-]?\d+\.\d+", cells["to mid"]), cells
        assert re.fullmatch(r"\d+ (s|min \d+ s)", cells["age"]), cells
    fill = dict(zip(_header(page, "fills"), _rows(page, "fills")[0], strict=True))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fill["time (UTC)"])
    assert fill["strategy"] == "mm" and fill["side"] in ("buy", "sell")
    assert set(_column(page, "balances", "asset")) >= {"USD", "BTC", "ETH"}
    assert _column(page, "strategies", "strategy") == ["mm"]
    assert _column(page, "strategies", "state") == ["running"]
    positions = _rows(page, "positions")
    assert positions and {r[1] for r in positions} <= {"BTC/USD", "ETH/USD"}
    assert set(_column(page, "readiness", "ok")) == {"yes"}
    assert _column(page, "feeds", "connected") == ["yes", "yes"]
    assert _column(page, "books", "valid") == ["yes", "yes"]
    assert _column(page, "switch", "armed") == ["yes"]
    assert page.locator("#controls").is_hidden()  # no token: no control at all
    assert page.locator("button[data-action]").count() == 0 or all(
        not b.is_visible() for b in page.locator("button[data-action]").all()
    )
    assert probe.problems() == []


def test_the_charts_draw_and_update_after_fills(read_only: Served, open_page: OpenPage) -> None:
    page = open_page(read_only.url, same_origin=True).page
    _settle(page)
    drawn = page.evaluate(CHARTS)
    assert set(drawn) == {"chart-money-USD", "chart-symbol-BTC_USD", "chart-symbol-ETH_USD"}
    for chart in drawn.values():
        assert chart["svg"] > 0 and chart["lines"] > 0, chart
    mids = {t["name"]: t["points"] for t in drawn["chart-symbol-BTC_USD"]["traces"]}
    assert mids["mid"] > 0 and mids["inventory"] == mids["mid"]
    fills = {c: _fill_markers(page, c) for c in ("chart-symbol-BTC_USD", "chart-symbol-ETH_USD")}
    points = mids["mid"]
    # New fills arrive over the stream and land on the charts, without reloading the page.
    page.wait_for_function(
        f"""() => {{
            const n = (id) => (document.getElementById(id).data || [])
                .filter(t => t.name.endsWith(' fills'))
                .reduce((s, t) => s + t.x.length, 0);
            return n('chart-symbol-BTC_USD') + n('chart-symbol-ETH_USD') > {sum(fills.values())};
        }}""",
        timeout=WAIT_MS,
    )
    after = page.evaluate(CHARTS)
    grown = {t["name"]: t["points"] for t in after["chart-symbol-BTC_USD"]["traces"]}
    assert grown["mid"] > points
    assert sum(c["markers"] for c in after.values()) > 0  # markers on the canvas
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_control_buttons_ask_for_the_token_then_halt_and_resume(
    controlled: Served, open_page: OpenPage
) -> None:
    probe = open_page(controlled.url, same_origin=True)
    page = probe.page
    _settle(page)
    assert page.locator("#controls").is_visible()
    page.on("dialog", lambda dialog: dialog.accept())  # "Halt trading?"
    page.locator("#btn-halt").click()
    page.locator("#token-input").fill("not-the-token-at-all-0000")
    page.locator("#token-ok").click()
    page.wait_for_function(
        "() => document.getElementById('control-result').textContent.includes('401')",
        timeout=WAIT_MS,
    )
    assert page.locator("#risk").inner_text() == "ACTIVE"
    expected = [e for e in probe.errors if "status of 401 (Unauthorized)" in e]
    assert len(expected) == 1, probe.errors  # Chromium reports the refused call: seen
    probe.errors.remove(expected[0])
    page.locator("#btn-halt").click()
    page.locator("#token-input").fill(TOKEN)
    page.locator("#token-ok").click()
    page.wait_for_function(
        "() => document.getElementById('risk').textContent === 'HALTED'", timeout=WAIT_MS
    )
    assert "halted" in page.locator("#control-result").inner_text()
    page.wait_for_function(
        "() => document.querySelectorAll('#orders tbody tr').length === 0", timeout=WAIT_MS
    )
    page.locator("#btn-resume").click()  # the token is remembered for this tab
    page.wait_for_function(
        "() => document.getElementById('risk').textContent === 'ACTIVE'", timeout=WAIT_MS
    )
    page.locator('button[data-action="strategies/mm/pause"]').click()
    page.wait_for_function(
        """() => [...document.querySelectorAll('#strategies tbody tr td')]
            .some(td => td.textContent === 'halted')""",
        timeout=WAIT_MS,
    )
    page.locator('button[data-action="strategies/mm/resume"]').click()
    page.wait_for_function(
        "() => document.getElementById('control-result').textContent.includes('mm resumed')",
        timeout=WAIT_MS,
    )
    halted = controlled.proc.logs.wait_for("control_call", 5, where=lambda r: r["action"] == "halt")
    assert halted[0]["status"] == 200
    refused = controlled.proc.logs.events("control_refused")
    assert [r["reason"] for r in refused] == ["wrong_token"]
    assert TOKEN not in controlled.proc.logs.text()  # never in a log line
