"""Risk-adjusted figures of an equity curve, on a stated sampling: Sharpe and Sortino.

This module owns the sampling rule and the two ratios, so every report states them the
same way:

* **Sampling.** The report's window is cut into whole buckets of one minute, one hour or one
  day, counted from the window's start; the equity (realised + unrealised PnL) at each
  bucket's end is the last value before it (carried forward through quiet buckets); a
  partial last bucket is left out. A return is the change of equity over one bucket, in the
  quote currency. ``auto`` picks the coarsest bucket that gives at least ``MIN_RETURNS``
  returns (a day's buckets first, then hours, then minutes).
* **Ratios.** Risk-free rate 0. Sharpe = mean / sample standard deviation (n − 1) of the
  returns; Sortino = mean / downside deviation, sqrt(Σ min(r, 0)² / n) over all n returns
  (target 0). Both are annualised by sqrt(buckets per year) for a market that trades
  24/7/365: ×sqrt(525600) for minutes, ×sqrt(8760) for hours, ×sqrt(365) for days.
  Returns are PnL amounts, not percentages: a ratio of mean to deviation does not change
  when every return is divided by the same capital, so this equals the ratio of returns on
  any fixed capital.
* **Too few, or undefined.** Fewer than ``MIN_RETURNS`` returns, no variation, or no
  losing bucket give no number but a ``Ratio`` whose ``note`` says why.

Pure ``Decimal`` arithmetic (28 significant digits, then rounded to 4 decimals).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

from bot.research.record import BadInput

__all__ = [
    "MIN_RETURNS",
    "SAMPLINGS",
    "Ratio",
    "Sampling",
    "choose_sampling",
    "sharpe",
    "sortino",
]

MIN_RETURNS: Final = 30
NS_PER_MINUTE: Final = 60 * 1_000_000_000
_CTX: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
_PLACES: Final = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Sampling:
    """One bucket size and how many such buckets a 24/7 year has."""

    name: str  # "1m" | "1h" | "1d"
    words: str  # "one-minute"
    bucket_ns: int
    per_year: int

    def describe(self) -> str:
        return (
            f"equity change per {self.words} bucket, annualised ×√{self.per_year} "
            f"(24/7 market), risk-free rate 0"
        )


SAMPLINGS: Final[dict[str, Sampling]] = {
    "1m": Sampling("1m", "one-minute", NS_PER_MINUTE, 365 * 24 * 60),
    "1h": Sampling("1h", "one-hour", 60 * NS_PER_MINUTE, 365 * 24),
    "1d": Sampling("1d", "one-day", 24 * 60 * NS_PER_MINUTE, 365),
}


def choose_sampling(span_ns: int, requested: str = "auto") -> Sampling:
    """``requested`` by name, or (``auto``) the coarsest giving ``MIN_RETURNS`` returns
    over ``span_ns`` (minutes when none does: the ratios then say there are too few)."""
    if requested != "auto":
        try:
            return SAMPLINGS[requested]
        except KeyError:
            names = ", ".join(["auto", *SAMPLINGS])
            raise BadInput(f"sampling {requested!r}: expected one of {names}") from None
    for name in ("1d", "1h", "1m"):
        if span_ns // SAMPLINGS[name].bucket_ns >= MIN_RETURNS:
            return SAMPLINGS[name]
    return SAMPLINGS["1m"]


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio, or ``None`` with the reason in ``note``."""

    value: Decimal | None
    note: str = ""

    def text(self) -> str:
        return "n/a" if self.value is None else f"{self.value:.2f}"


def _checked(returns: Sequence[Decimal], sampling: Sampling) -> Ratio | None:
    if len(returns) < MIN_RETURNS:
        n = len(returns)
        plural = "" if n == 1 else "s"
        return Ratio(None, f"only {n} {sampling.words} return{plural} ({MIN_RETURNS} needed)")
    return None


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _CTX.add(total, value)
    return total


def _mean(returns: Sequence[Decimal]) -> Decimal:
    return _CTX.divide(_sum(returns), Decimal(len(returns)))


def _annualised(mean: Decimal, deviation: Decimal, sampling: Sampling) -> Decimal:
    scale = _CTX.sqrt(Decimal(sampling.per_year))
    return _CTX.multiply(_CTX.divide(mean, deviation), scale).quantize(_PLACES, context=_CTX)


def sharpe(returns: Sequence[Decimal], sampling: Sampling) -> Ratio:
    """Annualised Sharpe ratio of per-bucket returns (see the module's rules)."""
    if (short := _checked(returns, sampling)) is not None:
        return short
    mean = _mean(returns)
    squares = _sum(_CTX.power(_CTX.subtract(r, mean), 2) for r in returns)
    deviation = _CTX.sqrt(_CTX.divide(squares, Decimal(len(returns) - 1)))
    if deviation == 0:
        return Ratio(None, "every return is the same: no variation to divide by")
    return Ratio(_annualised(mean, deviation, sampling))


def sortino(returns: Sequence[Decimal], sampling: Sampling) -> Ratio:
    """Annualised Sortino ratio of per-bucket returns, target 0 (see the module's rules)."""
    if (short := _checked(returns, sampling)) is not None:
        return short
    squares = _sum(_CTX.power(r, 2) for r in returns if r < 0)
    if squares == 0:
        return Ratio(None, "no losing bucket: the downside deviation is 0")
    deviation = _CTX.sqrt(_CTX.divide(squares, Decimal(len(returns))))
    return Ratio(_annualised(_mean(returns), deviation, sampling))
