"""What a report is built from: one run's orders, fills, and optionally marks and quotes.

This module owns ``RunRecord``, the hand-off between whatever ran (a paper or live daemon,
read back from its store; a backtest, straight from its engine) and the report core
(``bot.research.figures``). It uses the daemon's own ``Order`` and ``Fill`` values, so a
backtest hands over exactly what its engine produced. It also decides two questions every
reader of a record asks the same way:

* **Whose fill is it?** The order's strategy (by ``cl_ord_id``); else the strategy of the
  recorded id block the ``cl_ord_id`` comes from (``bot.execution.ids``); else ``""``
  (unowned: an order placed by hand or by another program on the same account).
* **Which instrument?** The record's own ``instruments`` when given; else one built from
  the symbol (``BASE/QUOTE``, Kraken's WS v2 names) and the highest precisions its orders
  and fills carry. A fill stored at a lower precision (Kraken changed the pair) is scaled
  up exactly (``rescale``), never rounded.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from bot.core.errors import ConfigError
from bot.execution.orders import Fill, Order
from bot.kraken.instruments import Instrument

__all__ = [
    "UNOWNED",
    "BadInput",
    "Mark",
    "QuoteSample",
    "RunRecord",
    "instruments_of",
    "rescale",
    "split_symbol",
]

UNOWNED: Final = ""
"""The strategy name of fills and orders no strategy owns."""
_PREFIX_HEX: Final = 24  # the id-block prefix of a cl_ord_id (bot.execution.ids)


class BadInput(ConfigError):
    """A report's input is unusable (missing file, not a store, bad time, bad record): the
    human must fix the command; ``krakenbot`` exits with status 2."""


@dataclass(frozen=True, slots=True)
class Mark:
    """The value of one unit of a symbol at one instant (a backtest's mid, for example)."""

    ts_ns: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class QuoteSample:
    """A strategy's best resting bid and ask on one symbol from ``ts_ns`` on (``None``:
    no order on that side)."""

    ts_ns: int
    bid: Decimal | None
    ask: Decimal | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run, as the report reads it.

    ``fills`` and ``orders`` in any order (the report sorts them). ``owners`` maps id-block
    prefixes to strategies (``Store.id_blocks``). ``marks`` per symbol, oldest first: when a
    symbol has none, its fills' prices are its marks. ``quotes`` per ``(strategy, symbol)``,
    oldest first: when absent, they are derived from the limit orders' lives. ``since_ns``
    starts the report's window (positions held then are carried in); ``end_ns`` ends it
    (default: the last event). ``label`` and ``meta`` are shown as given.
    """

    label: str
    orders: Sequence[Order] = ()
    fills: Sequence[Fill] = ()
    owners: Mapping[str, str] = field(default_factory=dict)
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    marks: Mapping[str, Sequence[Mark]] = field(default_factory=dict)
    quotes: Mapping[tuple[str, str], Sequence[QuoteSample]] = field(default_factory=dict)
    since_ns: int | None = None
    end_ns: int | None = None
    meta: Mapping[str, str] = field(default_factory=dict)

    def strategy_of(self, fill: Fill, orders: Mapping[str, Order]) -> str:
        """The strategy a fill belongs to (``UNOWNED`` if none): see the module's rules."""
        order = orders.get(fill.cl_ord_id)
        if order is not None:
            return order.strategy
        return self.owners.get(fill.cl_ord_id[:_PREFIX_HEX], UNOWNED)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC/USD"`` → ``("BTC", "USD")``; anything else is bad input."""
    base, slash, quote = symbol.partition("/")
    if not slash or not base or not quote or "/" in quote:
        raise BadInput(f"symbol {symbol!r} is not BASE/QUOTE: pass its instrument")
    return base, quote


def instruments_of(
    orders: Iterable[Order], fills: Iterable[Fill], given: Mapping[str, Instrument]
) -> dict[str, Instrument]:
    """An instrument for every symbol traded or ordered: ``given`` first, else derived."""
    precisions: dict[str, tuple[int, int]] = {}
    items: list[Order | Fill] = [*orders, *fills]
    for item in items:
        if item.symbol in given:
            continue
        pp, qp = precisions.get(item.symbol, (0, 0))
        precisions[item.symbol] = (
            max(pp, item.price_precision),
            max(qp, item.qty_precision),
        )
    out = dict(given)
    for symbol, (pp, qp) in precisions.items():
        base, quote = split_symbol(symbol)
        out[symbol] = Instrument(symbol, base, quote, price_precision=pp, qty_precision=qp)
    return out


def rescale(fill: Fill, inst: Instrument) -> tuple[int, int]:
    """The fill's ``(qty, price)`` as scaled ints of ``inst`` (exact, or ``BadInput``)."""
    dq = inst.qty_precision - fill.qty_precision
    dp = inst.price_precision - fill.price_precision
    if dq < 0 or dp < 0:
        raise BadInput(
            f"fill {fill.exec_id}: {fill.symbol} at precisions ({fill.price_precision}, "
            f"{fill.qty_precision}), more than its instrument's ({inst.price_precision}, "
            f"{inst.qty_precision})"
        )
    return fill.qty * 10**dq, fill.price * 10**dp
