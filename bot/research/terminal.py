"""The report as a terminal summary: a header and two tables per quote currency.

``render_summary(report)`` returns plain text (no colours, fixed-width columns), the same on
a terminal, in a pipe and in a log file. The first table is money (PnL, realised,
unrealised, fees, volume, max drawdown, Sharpe, Sortino), the second activity and risk
(orders, fills, fill ratio, maker share, inventory, exposure, time in market). A figure
that cannot be computed reads ``n/a``, and the notes under the tables say why.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.research.figures import Figures, Report
from bot.research.fmt import (
    duration,
    money,
    money_places,
    pct,
    quantity,
    scope_label,
    utc,
)

__all__ = ["activity_rows", "money_rows", "notes", "render_summary", "table"]


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, align: str | None = None
) -> list[str]:
    """Columns padded to their widest cell; ``align`` has an ``l`` or ``r`` per column
    (default: the first left, the others right, as numbers read)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.ljust(w) if align[i] == "l" else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _inventory(f: Figures) -> str:
    if f.inventory is None:
        return ""
    return f"{quantity(f.inventory)} {f.base}"


def money_rows(figures: Sequence[Figures], places: int) -> list[list[str]]:
    return [
        [
            scope_label(f.scope),
            money(f.pnl, places),
            money(f.realised, places),
            money(f.unrealised, places),
            money(f.fees, places),
            money(f.volume_quote, places),
            money(f.max_drawdown, places),
            f.sharpe.text(),
            f.sortino.text(),
        ]
        for f in figures
    ]


def activity_rows(figures: Sequence[Figures], places: int) -> list[list[str]]:
    return [
        [
            scope_label(f.scope),
            str(f.orders),
            str(f.fills),
            pct(f.fill_ratio),
            pct(f.maker_share),
            _inventory(f),
            money(f.exposure_max, places),
            money(f.exposure_mean, places),
            pct(f.time_in_market),
        ]
        for f in figures
    ]


def notes(report: Report) -> list[str]:
    """Why a ratio reads n/a (one note per reason, naming the ratios and rows), and fees
    paid in other assets."""
    why: dict[str, tuple[list[str], list[str]]] = {}
    fees: list[str] = []
    for f in report.figures:
        for name, ratio in (("Sharpe", f.sharpe), ("Sortino", f.sortino)):
            if ratio.value is None and ratio.note:
                names, rows = why.setdefault(ratio.note, ([], []))
                if name not in names:
                    names.append(name)
                if (row := scope_label(f.scope)) not in rows:
                    rows.append(row)
        for asset, amount in f.other_fees:
            fees.append(f"fees in {asset} ({scope_label(f.scope)}): {quantity(amount)}")
    ratios = [
        f"{' and '.join(names)} n/a: {note} ({', '.join(rows)})"
        for note, (names, rows) in why.items()
    ]
    return ratios + fees


def render_summary(report: Report) -> str:
    """The whole summary, ending with a newline."""
    span = report.end_ns - report.start_ns
    valued = sorted(set(report.valued_at.values()))
    out = [
        f"krakenbot report: {report.label}",
        f"window   {utc(report.start_ns)} to {utc(report.end_ns)} UTC ({duration(span)})",
    ]
    for key, value in sorted(report.meta.items()):
        out.append(f"{key:<8} {value}")
    out.append(f"valued   open positions at {' and '.join(valued) or 'fill prices'}")
    out.append(f"ratios   Sharpe, Sortino: {report.sampling.describe()}")
    if not report.figures:
        out += ["", "No orders or fills in this window."]
        return "\n".join(out) + "\n"
    for quote in report.currencies():
        figures = [f for f in report.figures if f.scope.quote == quote]
        places = money_places(report, quote)
        out.append("")
        out += table(
            [quote, "PnL", "realised", "unrealised", "fees", "volume", "max DD", "Sharpe",
             "Sortino"],
            money_rows(figures, places),
        )  # fmt: skip
        out.append("")
        out += table(
            ["activity", "orders", "fills", "fill ratio", "maker", "inventory", "max exposure",
             "mean exposure", "in market"],
            activity_rows(figures, places),
        )  # fmt: skip
    listed = notes(report)
    if listed:
        out.append("")
        out += [f"note: {n}" for n in listed]
    return "\n".join(out) + "\n"
