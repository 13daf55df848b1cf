"""The report as one self-contained HTML file: summary tables, then the charts.

The page carries everything it needs: the CSS, the figures' data, and plotly.js itself,
inlined from the ``plotly`` Python package (``plotly.offline.get_plotlyjs``, the same file
Plotly's own offline HTML embeds), so it opens offline, from a mail attachment or an
air-gapped machine, with no CDN. That costs about 4.7 MB per file. Nothing in it depends
on when it was made, so the same run gives the same bytes.

Layout: a header (what run, which window, how positions are valued, the ratios' sampling),
per quote currency the money and activity tables (the terminal summary's, as HTML) and the
equity, drawdown and exposure charts, then one chart per traded symbol (price with fills
and quotes, inventory below), then notes and the definitions of every figure. When every
chart is drawn the body gets ``data-charts="drawn"`` (``"failed"`` if one could not be).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bot.research.charts import Figure, equity_figures, symbol_figure
from bot.research.figures import Report
from bot.research.fmt import duration, money_places, utc
from bot.research.terminal import activity_rows, money_rows, notes

__all__ = ["ACTIVITY_HEADERS", "MONEY_HEADERS", "draw_script", "render_html"]

MONEY_HEADERS: Final = (
    "", "PnL", "realised", "unrealised", "fees", "volume", "max DD", "Sharpe", "Sortino",
)  # fmt: skip
ACTIVITY_HEADERS: Final = (
    "", "orders", "fills", "fill ratio", "maker", "inventory", "max exposure",
    "mean exposure", "in market",
)  # fmt: skip
_PLOT_CONFIG: Final = {"responsive": True, "displaylogo": False}

_CSS: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 12px 0; }
dl.run dt { color: #59636e; }
dl.run dd { margin: 0; }
table.figures { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
table.figures th, table.figures td { padding: 4px 10px; text-align: right; white-space: nowrap; }
table.figures th:first-child, table.figures td:first-child { text-align: left; }
table.figures thead th { border-bottom: 2px solid #d0d7de; }
table.figures tr.total td { font-weight: 600; border-top: 1px solid #d0d7de; }
td.neg { color: #cf222e; } td.pos { color: #1a7f37; }
.chart { min-height: 360px; margin: 8px 0 24px; }
.notes li, .definitions li { margin: 2px 0; }
details.definitions summary { cursor: pointer; font-weight: 600; }
"""

_DEFINITIONS: Final = (
    ("PnL", "realised + unrealised over the window, in the quote currency (never converted)"),
    ("realised", "closed trades by average cost, fees included"),
    ("unrealised", "open positions at the last mark minus their cost: end minus start"),
    ("fees", "in the quote currency; a fee in the base asset at the fill price"),
    ("volume", "Σ quantity × price of the window's fills"),
    ("max DD", "largest fall of the equity curve below an earlier peak"),
    ("Sharpe, Sortino", "see the sampling above; n/a when there are too few returns"),
    ("orders", "created in the window; fills: executions in the window"),
    ("fill ratio", "orders with a fill ÷ orders that reached the book"),
    ("maker", "maker fills' volume ÷ all fills' volume"),
    ("inventory", "net position at the end, in the base asset"),
    ("exposure", "|net position| × mark, summed over symbols: the maximum and the time-weighted"
                 " mean over the window"),
    ("in market", "share of the window with any position open"),
)  # fmt: skip


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _cell(text: str, signed: bool) -> str:
    classes = ""
    if signed and text.startswith("-"):
        classes = ' class="neg"'
    elif signed and any(c in "123456789" for c in text):
        classes = ' class="pos"'
    return f"<td{classes}>{_e(text)}</td>"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    kinds: Sequence[str],
    signed: Sequence[int] = (),
) -> str:
    """An HTML table; the ``signed`` columns are coloured by sign (PnL)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row, kind in zip(rows, kinds, strict=True):
        cells = "".join(_cell(text, i in signed) for i, text in enumerate(row))
        body.append(f'<tr class="{kind}">{cells}</tr>')
    return (
        f'<table class="figures"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _chart(div_id: str, figure: Figure, figures: dict[str, Figure]) -> str:
    figures[div_id] = figure
    return f'<div class="chart" id="{_e(div_id)}"></div>'


def _script_json(value: Any) -> str:
    # Inside <script>: "</" would end the element; U+2028/9 end a JS line in old parsers.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def draw_script(figures: Mapping[str, Any]) -> str:
    """The script that draws ``figures`` (div id → Plotly figure) and then sets
    ``<body data-charts="drawn">`` (``"failed"`` if one could not be drawn): what a test,
    or a screenshot tool, waits for."""
    return (
        f"const FIGURES = {_script_json(figures)};\n"
        f"const CONFIG = {_script_json(_PLOT_CONFIG)};\n"
        "const failed = (err) => { document.body.dataset.charts = 'failed'; throw err; };\n"
        "try {\n"
        "  Promise.all(Object.entries(FIGURES).map(\n"
        "    ([id, fig]) => Plotly.newPlot(id, fig.data, fig.layout, CONFIG)\n"
        "  )).then(() => { document.body.dataset.charts = 'drawn'; }, failed);\n"
        "} catch (err) { failed(err); }\n"
    )


def render_html(report: Report, plotly_js: str | None = None) -> str:
    """The whole page. ``plotly_js`` defaults to the ``plotly`` package's bundled file."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    span = report.end_ns - report.start_ns
    valued = ", ".join(f"{s}: {how}" for s, how in sorted(report.valued_at.items()))
    run = [
        ("run", report.label),
        ("window", f"{utc(report.start_ns)} to {utc(report.end_ns)} UTC ({duration(span)})"),
        *sorted(report.meta.items()),
        ("valued at", valued or "n/a"),
        ("quotes from", report.quotes_from),
        ("Sharpe, Sortino", report.sampling.describe()),
    ]
    parts = [
        '<header><h1>krakenbot report</h1><dl class="run">',
        *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in run),
        "</dl></header>",
    ]
    figures: dict[str, Figure] = {}
    if not report.figures:
        parts.append("<p>No orders or fills in this window.</p>")
    for quote in report.currencies():
        rows = [f for f in report.figures if f.scope.quote == quote]
        kinds = [f.scope.kind for f in rows]
        places = money_places(report, quote)
        parts.append(f'<section class="currency"><h2>{_e(quote)}</h2>')
        money = money_rows(rows, places)
        parts.append(_table((quote, *MONEY_HEADERS[1:]), money, kinds, signed=(1, 2, 3)))
        parts.append(_table(ACTIVITY_HEADERS, activity_rows(rows, places), kinds))
        for div_id, figure in equity_figures(report, quote):
            parts.append(_chart(div_id, figure, figures))
        parts.append("</section>")
    symbols = sorted({f.scope.symbol for f in report.lines() if f.scope.symbol})
    if symbols:
        parts.append('<section class="symbols"><h2>Symbols</h2>')
        for symbol in symbols:
            div_id, figure = symbol_figure(report, symbol)
            parts.append(_chart(div_id, figure, figures))
        parts.append("</section>")
    listed = notes(report)
    if listed:
        parts.append('<section class="notes"><h2>Notes</h2><ul>')
        parts += [f"<li>{_e(n)}</li>" for n in listed]
        parts.append("</ul></section>")
    parts.append('<details class="definitions"><summary>Definitions</summary><ul>')
    parts += [f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in _DEFINITIONS]
    parts.append("</ul></details>")
    # <body data-charts="drawn"> once every chart is drawn, "failed" if one could not be:
    # what a test (or a screenshot tool) waits for.
    draw = draw_script(figures)
    title = _e(f"krakenbot report: {report.label}")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n"
        f"<script>{plotly_js}</script>\n</head>\n<body>\n"
        + "\n".join(parts)
        + f"\n<script>\n{draw}</script>\n</body>\n</html>\n"
    )
