"""The report's charts as Plotly figures (plain dicts: ``{"data": [...], "layout": {...}}``).

Per quote currency: the equity curve (realised + unrealised PnL of every row of the
summary, the total in bold), the drawdown below the running peak (the total, filled), and
the exposure. Per symbol: its price (marks, or fill prices) with the strategies' fills
(buys ▲ green, sells ▼ red; hover for size, fee and liquidity) and quotes (dotted best bid
and ask), and below it, on the same time axis, the inventory of each strategy (and their
net, when several trade it).

Figures are built as JSON-ready dicts rather than ``plotly.graph_objects``: nothing here
needs Plotly's Python side, and the dicts are typed and cheap. The tests check every figure
against Plotly's schema (``plotly.graph_objects.Figure(fig)`` rejects an unknown property).
Times are UTC strings with milliseconds; a missing value is ``None`` (a gap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from bot.research.chart_points import FillMarker
from bot.research.figures import Report, Scope
from bot.research.fmt import quantity, scope_label, strategy_name
from bot.research.series import Points

__all__ = ["equity_figures", "figure_ids", "symbol_figure"]

Figure = dict[str, Any]
BUY: Final = "#1a9850"
SELL: Final = "#d73027"
PRICE: Final = "#4d4d4d"
_HEIGHT: Final = 360
_SYMBOL_HEIGHT: Final = 520


def _time(ts_ns: int) -> str:
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{ns // 1_000_000:03d}"


def _y(values: Sequence[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def _line(points: Points, name: str, **extra: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": [_time(t) for t in points.x],
        "y": _y(points.y),
        "line": {"shape": "hv", "width": 1.5},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(trace.get(key), dict):
            trace[key] = {**trace[key], **value}
        else:
            trace[key] = value
    return trace


def _layout(title: str, y_title: str, height: int = _HEIGHT) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "height": height,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.15},
        "xaxis": {"type": "date", "title": {"text": "UTC"}},
        "yaxis": {"title": {"text": y_title}, "zeroline": True},
    }


def _scope_width(scope: Scope) -> float:
    return 3.0 if scope.kind == "total" else 1.5


def figure_ids(report: Report) -> list[str]:
    """The ids of every chart, in page order (the HTML's ``div`` ids)."""
    ids = []
    for quote in report.currencies():
        ids += [f"equity-{quote}", f"drawdown-{quote}", f"exposure-{quote}"]
    ids += [f"symbol-{symbol}" for symbol in _traded_symbols(report)]
    return [_safe_id(i) for i in ids]


def _safe_id(text: str) -> str:
    return "".join(c if c.isalnum() or c == "-" else "_" for c in text)


def _traded_symbols(report: Report) -> list[str]:
    return sorted({f.scope.symbol for f in report.lines() if f.scope.symbol is not None})


def equity_figures(report: Report, quote: str) -> list[tuple[str, Figure]]:
    """Equity, drawdown and exposure of one quote currency: ``(div id, figure)``."""
    scopes = [f.scope for f in report.figures if f.scope.quote == quote]
    charts = report.charts
    equity = [
        _line(charts.equity[s], scope_label(s), line={"width": _scope_width(s)})
        for s in scopes
        if s in charts.equity
    ]
    total = Scope(quote, None, None)
    drawdown = [
        _line(charts.drawdown[s], scope_label(s), line={"width": _scope_width(s)},
              **({"fill": "tozeroy"} if s == total else {}))
        for s in scopes
        if s in charts.drawdown
    ]  # fmt: skip
    exposure = [
        _line(charts.exposure[s], scope_label(s), line={"width": _scope_width(s)})
        for s in scopes
        if s in charts.exposure
    ]
    return [
        (_safe_id(f"equity-{quote}"), {
            "data": equity,
            "layout": _layout(f"Equity: realised + unrealised PnL ({quote})", quote),
        }),
        (_safe_id(f"drawdown-{quote}"), {
            "data": drawdown,
            "layout": _layout(f"Drawdown below the running peak ({quote})", quote),
        }),
        (_safe_id(f"exposure-{quote}"), {
            "data": exposure,
            "layout": _layout(f"Exposure: |position| × mark ({quote})", quote),
        }),
    ]  # fmt: skip


def _marker_text(m: FillMarker, base: str, quote: str) -> str:
    what = f"{m.side} {quantity(m.qty)} {base} @ {quantity(m.price)} {quote}"
    if m.count > 1:
        return f"{m.count} fills: {what} (volume-weighted)<br>{strategy_name(m.strategy)}"
    liquidity = {"m": "maker", "t": "taker"}.get(m.liquidity, m.liquidity or "?")
    fee = f"fee {quantity(m.fee)} {m.fee_asset}" if m.fee else "no fee"
    return f"{what}<br>{strategy_name(m.strategy)} · {liquidity} · {fee}<br>{_time(m.ts_ns)}"


def _fill_traces(report: Report, symbol: str) -> list[dict[str, Any]]:
    inst = report.instruments[symbol]
    markers = report.charts.fills.get(symbol, ())
    aggregated = report.charts.fills_aggregated.get(symbol, False)
    traces = []
    for side, colour, shape in (("buy", BUY, "triangle-up"), ("sell", SELL, "triangle-down")):
        chosen = [m for m in markers if m.side == side]
        if not chosen:
            continue
        traces.append({
            "type": "scatter",
            "mode": "markers",
            "name": f"{side}s" + (" (aggregated)" if aggregated else ""),
            "x": [_time(m.ts_ns) for m in chosen],
            "y": [float(m.price) for m in chosen],
            "text": [_marker_text(m, inst.base, inst.quote) for m in chosen],
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"color": colour, "symbol": shape, "size": 10,
                       "line": {"color": "#ffffff", "width": 1}},
        })  # fmt: skip
    return traces


def symbol_figure(report: Report, symbol: str) -> tuple[str, Figure]:
    """Price with fills and quotes, and the inventory below it, of one symbol."""
    inst = report.instruments[symbol]
    charts = report.charts
    data: list[dict[str, Any]] = []
    if symbol in charts.prices:
        source = report.valued_at.get(symbol, "fill prices")
        data.append(_line(charts.prices[symbol], f"price ({source})",
                          line={"color": PRICE, "shape": "linear"}))  # fmt: skip
    for (strategy, quoted), (bid, ask) in sorted(charts.quotes.items()):
        if quoted != symbol:
            continue
        who = strategy_name(strategy)
        data.append(_line(bid, f"{who} bid", line={"color": BUY, "dash": "dot", "width": 1}))
        data.append(_line(ask, f"{who} ask", line={"color": SELL, "dash": "dot", "width": 1}))
    data += _fill_traces(report, symbol)
    for scope, points in sorted(charts.inventory.items(), key=lambda sp: sp[0].sort_key()):
        if scope.symbol == symbol:
            data.append(_line(points, f"inventory {strategy_name(scope.strategy)}",
                              xaxis="x2", yaxis="y2"))  # fmt: skip
    if symbol in charts.net_inventory:
        data.append(_line(charts.net_inventory[symbol], "inventory net", xaxis="x2", yaxis="y2",
                          line={"width": 3.0}))  # fmt: skip
    layout = _layout(f"{symbol}: price, fills and quotes; inventory", inst.quote, _SYMBOL_HEIGHT)
    layout["xaxis"] = {"type": "date", "anchor": "y", "matches": "x2", "showticklabels": False}
    layout["yaxis"] = {"domain": [0.36, 1.0], "title": {"text": f"price ({inst.quote})"}}
    layout["xaxis2"] = {"type": "date", "anchor": "y2", "title": {"text": "UTC"}}
    layout["yaxis2"] = {"domain": [0.0, 0.28], "title": {"text": f"inventory ({inst.base})"}}
    layout["legend"] = {"orientation": "h", "y": -0.12}
    return _safe_id(f"symbol-{symbol}"), {"data": data, "layout": layout}
