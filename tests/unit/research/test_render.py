"""The three renderings: the terminal summary, report.json, and the self-contained HTML."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import plotly.graph_objects as go
import pytest

from bot.execution.orders import OrderState
from bot.research.charts import equity_figures, figure_ids, symbol_figure
from bot.research.figures import Report, build_report
from bot.research.html import render_html
from bot.research.record import Mark, RunRecord
from bot.research.report_json import FORMAT, report_to_dict, report_to_json
from bot.research.terminal import render_summary, table
from tests.unit.research.helpers import BTC, ETHBTC, T0, UNIT, S, order, traded

D = Decimal
FAKE_PLOTLY = "/* plotly.js stand-in */"


@pytest.fixture(scope="module")
def report() -> Report:
    o1, f1 = traded(BTC, "buy", "0.5", "30000.0", ts=T0, fee="1.5", strategy="mm")
    o2, f2 = traded(BTC, "sell", "0.2", "30100.0", ts=T0 + 60 * S, fee="0.6", strategy="mm")
    o3, f3 = traded(BTC, "sell", "0.1", "30050.0", ts=T0 + 90 * S, strategy="grid",
                    liquidity="t")  # fmt: skip
    o4, f4 = traded(ETHBTC, "buy", "2", "0.05000", ts=T0 + 30 * S, fee="0.0001", strategy="mm")
    resting = order(BTC, "buy", "0.1", "29900.0", state=OrderState.NEW, created=T0 + 10 * S)
    return build_report(
        RunRecord("paper run <test>", [o1, o2, o3, o4, resting], [f1, f2, f3, f4],
                  meta={"mode": "paper"}, end_ns=T0 + 120 * S)
    )  # fmt: skip


def test_table_aligns_columns() -> None:
    assert table(["name", "n"], [["a", "1"], ["long name", "100"]]) == [
        "name         n",
        "a            1",
        "long name  100",
    ]


def test_terminal_summary_reads_as_in_the_readme(report: Report) -> None:
    text = render_summary(report)
    lines = text.splitlines()
    assert lines[0] == "krakenbot report: paper run <test>"
    assert lines[1] == "window   2023-11-14 22:13:20 to 2023-11-14 22:15:20 UTC (2m 0s)"
    assert "mode     paper" in lines
    assert any(re.match(r"mm BTC/USD +-?[\d,.]+ +[\d,.-]+", line) for line in lines)
    money = next(line for line in lines if line.startswith("USD "))
    assert money.split() == ["USD", "PnL", "realised", "unrealised", "fees", "volume",
                             "max", "DD", "Sharpe", "Sortino"]  # fmt: skip
    total = next(line for line in lines if line.startswith("total USD"))
    # realised 0.2 * 100 - 1.5 * 0.2/0.5 ... the fees: 1.5 + 0.6 = 2.10
    assert "2.10" in total.split()
    assert (
        "note: Sharpe and Sortino n/a: only 2 one-minute returns (30 needed) (mm ETH/BTC," in text
    )
    assert text.endswith("\n")


def test_json_carries_every_figure_exactly(report: Report) -> None:
    doc = json.loads(report_to_json(report))
    assert doc["format"] == FORMAT
    assert doc["window"]["start"] == "2023-11-14T22:13:20.000000000Z"
    assert doc["meta"] == {"mode": "paper"}
    rows = {(r["scope"], r["strategy"], r["symbol"], r["quote"]): r for r in doc["figures"]}
    mm = rows[("line", "mm", "BTC/USD", "USD")]
    assert D(mm["fees"]) == D("2.1")
    assert D(mm["realised"]) == D("20") - D("2.1")  # 0.2 * (30100 - 30000), less fees
    assert D(mm["inventory"]) == D("0.3")
    assert (
        mm["orders"] == 3 and mm["fills"] == 2 and mm["orders_by_state"] == {"filled": 2, "new": 1}
    )
    assert mm["sharpe"] is None and "30 needed" in mm["sharpe_note"]
    assert rows[("total", None, None, "BTC")]["fees"] == "0.0001"
    figure_keys = set(mm)
    for name in ("pnl", "realised", "unrealised", "fees", "volume_quote", "orders", "fills",
                 "fill_ratio", "maker_share", "max_drawdown", "sharpe", "sortino", "inventory",
                 "exposure_max", "exposure_mean", "time_in_market"):  # fmt: skip
        assert name in figure_keys
    assert not any("E" in v for r in doc["figures"] for v in r.values() if isinstance(v, str)
                   and v[:1].isdigit())  # fixed point, never 1E+2  # fmt: skip
    assert report_to_dict(report) == doc


def test_every_chart_is_a_valid_plotly_figure(report: Report) -> None:
    figures = [f for q in report.currencies() for _, f in equity_figures(report, q)]
    figures += [symbol_figure(report, s)[1] for s in ("BTC/USD", "ETH/BTC")]
    for figure in figures:
        go.Figure(figure)  # raises on any property Plotly does not know
        assert figure["data"], figure["layout"]["title"]
    price = symbol_figure(report, "BTC/USD")[1]
    names = [t["name"] for t in price["data"]]
    assert names[0] == "price (fill prices)"
    assert {"mm bid", "buys", "sells", "inventory mm", "inventory grid", "inventory net"} <= set(
        names
    )
    assert figure_ids(report) == ["equity-BTC", "drawdown-BTC", "exposure-BTC", "equity-USD",
                                  "drawdown-USD", "exposure-USD", "symbol-BTC_USD",
                                  "symbol-ETH_BTC"]  # fmt: skip


def test_html_is_self_contained_deterministic_and_escaped(report: Report) -> None:
    page = render_html(report, plotly_js=FAKE_PLOTLY)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert FAKE_PLOTLY in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)  # nothing fetched
    assert "paper run &lt;test&gt;" in page and "<test>" not in page
    for div_id in figure_ids(report):
        assert f'id="{div_id}"' in page
    assert render_html(report, plotly_js=FAKE_PLOTLY) == page


def test_html_inlines_the_real_plotly_js(report: Report) -> None:
    from plotly.offline import get_plotlyjs

    page = render_html(report)
    assert get_plotlyjs() in page


def test_a_marked_run_draws_marks_not_fills() -> None:
    o, f = traded(UNIT, "buy", "1", "100", ts=T0)
    record = RunRecord("t", [o], [f], marks={"XYZ/USD": [Mark(T0 + S, D(101))]})
    _, figure = symbol_figure(build_report(record), "XYZ/USD")
    assert figure["data"][0]["name"] == "price (marks)"
    assert figure["data"][0]["y"] == [101.0]  # from the first mark on, not the fill at 100


def test_an_empty_report_renders_everywhere() -> None:
    report = build_report(RunRecord("empty"))
    assert "No orders or fills in this window." in render_summary(report)
    assert "No orders or fills in this window." in render_html(report, plotly_js=FAKE_PLOTLY)
    assert json.loads(report_to_json(report))["figures"] == []


def test_names_cannot_break_out_of_the_page_script() -> None:
    evil = "</script><script>alert(1)</script>"
    o, f = traded(UNIT, "buy", "1", "100", ts=T0, strategy=evil)
    page = render_html(build_report(RunRecord(evil, [o], [f])), plotly_js=FAKE_PLOTLY)
    assert page.count("</script>") == 2  # the plotly.js element and the drawing script
    assert "alert(1)" in page  # the name is there, escaped
