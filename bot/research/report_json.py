"""The report as JSON: every figure, exact, for programs (``report.json``).

Money, quantities and ratios are decimal *strings* (exact: a JSON number would pass through
a float in most readers); counts are integers; a figure that cannot be computed is ``null``
with the reason beside it (``sharpe_note``); times are integer nanoseconds since the epoch
with an ISO-8601 UTC twin. Nothing depends on when the report was made (no generation time),
so the same run gives the same bytes. ``FORMAT`` is bumped when a field changes meaning.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from bot.research.figures import Figures, Report
from bot.research.stats import MIN_RETURNS

__all__ = ["FORMAT", "iso_time", "report_to_dict", "report_to_json"]

FORMAT: Final = "krakenbot.report/1"


def _d(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"  # fixed point: never "0E-9"


def iso_time(ts_ns: int | None) -> str | None:
    """``2023-11-14T22:13:20.000000000Z``: UTC, to the nanosecond."""
    if ts_ns is None:
        return None
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns:09d}Z"


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "scope": f.scope.kind,
        "quote": f.scope.quote,
        "strategy": f.scope.strategy,
        "symbol": f.scope.symbol,
        "symbols": list(f.symbols),
        "base": f.base,
        "pnl": _d(f.pnl),
        "realised": _d(f.realised),
        "unrealised": _d(f.unrealised),
        "fees": _d(f.fees),
        "other_fees": {asset: f"{amount:f}" for asset, amount in f.other_fees},
        "volume_base": _d(f.volume_base),
        "volume_quote": _d(f.volume_quote),
        "orders": f.orders,
        "orders_by_state": dict(f.orders_by_state),
        "fills": f.fills,
        "maker_fills": f.maker_fills,
        "fill_ratio": _d(f.fill_ratio),
        "qty_fill_ratio": _d(f.qty_fill_ratio),
        "maker_share": _d(f.maker_share),
        "max_drawdown": _d(f.max_drawdown),
        "max_drawdown_peak_ns": f.drawdown_peak_ns,
        "max_drawdown_peak": iso_time(f.drawdown_peak_ns),
        "max_drawdown_trough_ns": f.drawdown_trough_ns,
        "max_drawdown_trough": iso_time(f.drawdown_trough_ns),
        "returns": f.returns,
        "sharpe": _d(f.sharpe.value),
        "sharpe_note": f.sharpe.note or None,
        "sortino": _d(f.sortino.value),
        "sortino_note": f.sortino.note or None,
        "inventory": _d(f.inventory),
        "inventory_max_long": _d(f.inventory_max_long),
        "inventory_max_short": _d(f.inventory_max_short),
        "exposure": _d(f.exposure),
        "exposure_max": _d(f.exposure_max),
        "exposure_mean": _d(f.exposure_mean),
        "time_in_market": _d(f.time_in_market),
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    s = report.sampling
    return {
        "format": FORMAT,
        "label": report.label,
        "meta": dict(sorted(report.meta.items())),
        "window": {
            "start_ns": report.start_ns,
            "start": iso_time(report.start_ns),
            "end_ns": report.end_ns,
            "end": iso_time(report.end_ns),
        },
        "sampling": {
            "bucket": s.name,
            "bucket_ns": s.bucket_ns,
            "buckets_per_year": s.per_year,
            "min_returns": MIN_RETURNS,
            "rule": s.describe(),
        },
        "valued_at": dict(sorted(report.valued_at.items())),
        "quotes_from": report.quotes_from,
        "instruments": {
            symbol: {
                "base": inst.base,
                "quote": inst.quote,
                "price_precision": inst.price_precision,
                "qty_precision": inst.qty_precision,
            }
            for symbol, inst in sorted(report.instruments.items())
        },
        "figures": [_figures(f) for f in report.figures],
    }


def report_to_json(report: Report) -> str:
    """``report_to_dict`` as indented JSON text, ending with a newline."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"
