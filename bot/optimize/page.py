"""``report.html`` of a search: the walk-forward table, then Optuna's plots per fold.

Self-contained and offline like the backtest's report (``bot.research.html``): plotly.js
inlined from the ``plotly`` package, the figures' data as JSON in the page. The table
puts each fold's in-sample figure (its best trial, on the train window) beside its
out-of-sample one (the same params once on the test window) and flags the folds where
they diverge (``bot.optimize.results.diverges``). Then, per fold, Optuna's standard plots
(``optuna.visualization``): the optimisation history, the parameter importances
(Optuna's default evaluator; from two completed trials and two parameters on), a slice
plot, and a contour plot from two parameters on. A plot Optuna cannot draw is named with
the reason instead. ``<body data-charts="drawn">`` once all are drawn (``failed`` if one
could not be), for tests and screenshot tools.
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final

from optuna.trial import TrialState

from bot.optimize.results import FoldResult
from bot.optimize.trial import Loaded
from bot.research.fmt import utc
from bot.research.html import draw_script

__all__ = ["render_page"]

_CSS: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.run dt { color: #59636e; } dl.run dd { margin: 0; }
table.folds { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
table.folds th, table.folds td { padding: 4px 10px; text-align: right;
                                 border-bottom: 1px solid #eee; }
table.folds td.params { text-align: left; font-family: ui-monospace, monospace; font-size: 12px; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; margin: 8px 0; }
.chart { min-height: 380px; margin: 8px 0 24px; }
p.missing { color: #59636e; }
"""
_NEEDS_TWO: Final = "needs two completed trials and two parameters"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | None, note: str = "") -> str:
    if value is None:
        return f"n/a ({note})" if note else "n/a"
    return f"{value:.6g}"


def _plots(result: FoldResult) -> list[tuple[str, Callable[[Any], Any], str | None]]:
    """(title, Optuna's plot function, why it cannot be drawn or None) for each plot."""
    from optuna import visualization as vis

    complete = [t for t in result.trials if t.state is TrialState.COMPLETE]
    names = {n for t in complete for n in t.params}
    one = None if complete else "no completed trial"
    two = None if len(complete) >= 2 and len(names) >= 2 else _NEEDS_TWO
    return [
        ("Optimisation history", vis.plot_optimization_history, one),
        ("Parameter importances", vis.plot_param_importances, two),
        ("Slice", vis.plot_slice, one),
        ("Contour", vis.plot_contour, two),
    ]


def _table(results: Sequence[FoldResult]) -> str:
    head = ("fold", "train (in-sample)", "test (out-of-sample)", "trials", "best trial",
            "params", "in-sample", "out-of-sample")  # fmt: skip
    rows = []
    for r in results:
        states = [t.state.name.lower() for t in r.trials]
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "none"
        params = "<br>".join(
            _e(f"{name}.{k}: {v}") for name, ps in r.values.items() for k, v in ps.items()
        )
        cells = [
            str(r.fold.index),
            _e(f"{utc(r.fold.train.start_ns)} to {utc(r.fold.train.end_ns)}"),
            _e(f"{utc(r.fold.test.start_ns)} to {utc(r.fold.test.end_ns)}"),
            _e(counts),
            "none" if r.best is None else str(r.best.number),
            params or "n/a",
            _e(_num(r.in_sample)),
            _e(_num(r.out_of_sample, r.oos_note)),
        ]
        tds = "".join(
            f'<td class="params">{c}</td>' if i == 5 else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        rows.append(f"<tr>{tds}</tr>")
    ths = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (
        f'<table class="folds"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def render_page(loaded: Loaded, results: Sequence[FoldResult], plotly_js: str | None = None
                ) -> str:  # fmt: skip
    """The whole page. ``plotly_js`` defaults to the ``plotly`` package's bundled file."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    search = loaded.search
    run = [
        ("study", search.study),
        ("objective", f"{search.objective} (maximised; figures of the backtest's report)"),
        ("deployment", str(search.config)),
        ("data", ", ".join(str(p) for p in search.data)),
        ("space", str(search.space)),
        ("trials per fold", str(search.trials)),
        ("seed", str(search.seed)),
    ]
    parts = [
        '<header><h1>krakenbot optimize</h1><dl class="run">',
        *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in run),
        "</dl></header>",
        "<h2>Walk-forward: in-sample beside out-of-sample</h2>",
        "<p>Each fold's search saw only its train window; its best parameters were then run"
        " once on the test window that follows it.</p>",
        _table(results),
    ]
    parts += [
        f'<p class="warning">Fold {r.fold.index}: {_e(r.warning)}.</p>'
        for r in results
        if r.warning
    ]
    figures: dict[str, Any] = {}
    for r in results:
        parts.append(f"<h2>Fold {r.fold.index}</h2>")
        for i, (title, plot, cannot) in enumerate(_plots(r)):
            why = cannot
            if why is None:
                try:
                    with warnings.catch_warnings():  # "importances will be equal": shown as such
                        warnings.simplefilter("ignore", UserWarning)
                        figure = plot(r.study)
                    figures[f"fold{r.fold.index}-plot{i}"] = json.loads(figure.to_json())
                except (ValueError, RuntimeError) as exc:  # Optuna: cannot compute it
                    why = str(exc)
                else:
                    parts.append(f'<div class="chart" id="fold{r.fold.index}-plot{i}"></div>')
                    continue
            parts.append(f'<p class="missing">{_e(title)}: {_e(why)}.</p>')
    draw_js = draw_script(figures)
    title = _e(f"krakenbot optimize: {search.study}")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n"
        f"<script>{plotly_js}</script>\n</head>\n<body>\n"
        + "\n".join(parts)
        + f"\n<script>\n{draw_js}</script>\n</body>\n</html>\n"
    )
