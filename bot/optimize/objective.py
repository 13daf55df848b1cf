"""What a trial is worth: one figure of the backtest's report, chosen by ``--objective``.

The figures are the report's own (``bot.research.figures``), read from the total line of
the run (every strategy and symbol of the deployment) in its one quote currency:

* ``pnl``: realised + unrealised, fees included, in the quote currency;
* ``sharpe`` / ``sortino``: as the report computes them (its sampling: one-minute equity
  changes on a short run, annualised); n/a with fewer than 30 returns;
* ``calmar``: ``pnl / max_drawdown`` over the window (not annualised: the windows of a
  walk-forward are too short for a yearly figure to mean anything); n/a without a drawdown.

Every objective is maximised. A figure that is n/a (too few returns, no drawdown, a
deployment quoting in several currencies) makes the trial infeasible, with the reason
kept beside it: it is never turned into a made-up number. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from bot.research.figures import Figures, Report

__all__ = ["OBJECTIVES", "Objective", "Score", "score", "summary"]

Objective = Literal["sharpe", "pnl", "sortino", "calmar"]
OBJECTIVES: Final[tuple[str, ...]] = get_args(Objective)


@dataclass(frozen=True, slots=True)
class Score:
    """The objective's value, or ``None`` and why."""

    value: float | None
    note: str = ""


_IDLE: Final = "no orders and no fills"


def _total(report: Report) -> Figures | str:
    totals = [f for f in report.figures if f.scope.kind == "total"]
    if not totals:
        return _IDLE
    if len(totals) > 1:
        quotes = ", ".join(f.scope.quote for f in totals)
        return f"the run trades in several quote currencies ({quotes}): no one total"
    return totals[0]


def score(report: Report, objective: Objective) -> Score:
    """``objective`` of ``report`` (see the module)."""
    total = _total(report)
    if total is _IDLE:
        return Score(0.0) if objective == "pnl" else Score(None, _IDLE)  # idle: no PnL
    if isinstance(total, str):
        return Score(None, total)
    if objective == "pnl":
        return Score(float(total.pnl))
    if objective in ("sharpe", "sortino"):
        ratio = total.sharpe if objective == "sharpe" else total.sortino
        return Score(None, ratio.note) if ratio.value is None else Score(float(ratio.value))
    if total.max_drawdown <= 0:
        return Score(None, "no drawdown: calmar is undefined")
    return Score(float(total.pnl / total.max_drawdown))


def summary(report: Report) -> dict[str, str]:
    """The total line's headline figures as text, for the trials table."""
    total = _total(report)
    if isinstance(total, str):
        return {"pnl": "0", "fills": "0", "orders": "0", "note": total}
    calmar = score(report, "calmar")
    return {
        "pnl": str(total.pnl),
        "fees": str(total.fees),
        "max_drawdown": str(total.max_drawdown),
        "sharpe": total.sharpe.text(),
        "sortino": total.sortino.text(),
        "calmar": "n/a" if calmar.value is None else f"{calmar.value:.2f}",
        "fills": str(total.fills),
        "orders": str(total.orders),
        "volume": str(total.volume_quote),
        "quote": total.scope.quote,
    }
