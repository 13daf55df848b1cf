"""Chart data: fill markers, the strategy's quotes as points, and the ``Charts`` bundle.

The report core (``bot.research.figures``) hands the renderers decimated points
(``bot.research.series.Decimator``) and fill markers. A price chart with tens of thousands
of fills is unreadable and slow in a browser, so past ``MAX_FILL_MARKERS`` fills on one
symbol they are drawn aggregated: one marker per chart slice, strategy and side, at the
volume-weighted price, with the count and total quantity (``aggregate_fills``). A quote
side with no order is ``nan`` (a gap in the line). Floats here are chart coordinates only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

from bot.research.record import QuoteSample
from bot.research.scope import Scope
from bot.research.series import Decimator, Points

__all__ = ["MAX_FILL_MARKERS", "Charts", "FillMarker", "aggregate_fills", "quote_points"]

MAX_FILL_MARKERS: Final = 2000
_ZERO: Final = Decimal(0)
_WIDE: Final = Context(prec=200, rounding=ROUND_HALF_EVEN)
_PRICE: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class FillMarker:
    """One fill on a price chart, or (``count`` > 1) the fills of one chart slice and side
    at their volume-weighted price."""

    ts_ns: int
    strategy: str
    side: str
    price: Decimal
    qty: Decimal
    count: int
    liquidity: str  # "m", "t", or "" for an aggregate
    fee: Decimal
    fee_asset: str


@dataclass(frozen=True, slots=True)
class Charts:
    """Decimated chart points (``bot.research.series.Decimator``)."""

    equity: Mapping[Scope, Points]
    drawdown: Mapping[Scope, Points]
    exposure: Mapping[Scope, Points]
    inventory: Mapping[Scope, Points]  # lines
    net_inventory: Mapping[str, Points]  # symbols that several strategies trade
    prices: Mapping[str, Points]
    fills: Mapping[str, tuple[FillMarker, ...]]
    fills_aggregated: Mapping[str, bool]
    quotes: Mapping[tuple[str, str], tuple[Points, Points]]  # (strategy, symbol) -> bid, ask


def aggregate_fills(
    markers: Sequence[FillMarker], start: int, end: int, buckets: int
) -> list[FillMarker]:
    """One marker per chart slice, strategy and side, at the volume-weighted price."""
    span = max(end - start, 1)
    groups: dict[tuple[int, str, str], list[FillMarker]] = {}
    for m in markers:
        k = min((m.ts_ns - start) * buckets // span, buckets - 1)
        groups.setdefault((k, m.strategy, m.side), []).append(m)
    out = []
    for (_, strategy, side), group in groups.items():
        qty = sum((m.qty for m in group), _ZERO)
        notional = sum((_WIDE.multiply(m.qty, m.price) for m in group), _ZERO)
        fees = {m.fee_asset for m in group if m.fee}
        out.append(
            FillMarker(
                ts_ns=group[len(group) // 2].ts_ns,
                strategy=strategy,
                side=side,
                price=_PRICE.divide(notional, qty),
                qty=qty,
                count=len(group),
                liquidity="",
                fee=sum((m.fee for m in group), _ZERO) if len(fees) == 1 else _ZERO,
                fee_asset=fees.pop() if len(fees) == 1 else "",
            )
        )
    out.sort(key=lambda m: (m.ts_ns, m.strategy, m.side))
    return out


def quote_points(
    samples: Sequence[QuoteSample], start: int, end: int, buckets: int
) -> tuple[Points, Points]:
    """Best bid and ask as step-line points over ``[start, end]`` (the sample in force at
    ``start`` is drawn from ``start``)."""
    bid, ask = Decimator(start, end, buckets), Decimator(start, end, buckets)
    before: QuoteSample | None = None
    nan = float("nan")
    for sample in samples:
        if sample.ts_ns > end:
            break
        if sample.ts_ns < start:
            before = sample
            continue
        if before is not None:
            bid.add(start, nan if before.bid is None else float(before.bid))
            ask.add(start, nan if before.ask is None else float(before.ask))
            before = None
        bid.add(sample.ts_ns, nan if sample.bid is None else float(sample.bid))
        ask.add(sample.ts_ns, nan if sample.ask is None else float(sample.ask))
    if before is not None:
        bid.add(start, nan if before.bid is None else float(before.bid))
        ask.add(start, nan if before.ask is None else float(before.ask))
    return bid.points(), ask.points()
