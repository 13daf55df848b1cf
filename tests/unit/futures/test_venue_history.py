"""``FuturesRestVenue.trades`` over a hand-written REST fake: the fee of a recovered trade
in the quote currency (a linear contract's as Kraken charged it, an inverse contract's,
charged in its base currency, at the execution's price), and the merge with ``fills``."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from bot.core.clock import FakeClock
from bot.execution.venue_futures import FuturesRestVenue
from bot.futures import history as h
from bot.futures import queries as q
from bot.futures.instruments import FuturesInstrument, FuturesInstrumentTable
from bot.futures.times import rfc3339_ms

from .conftest import xbt

T0 = 1_700_000_000_000  # ms


def inverse() -> FuturesInstrument:
    return dataclasses.replace(
        xbt(), symbol="PI_XBTUSD", kind="futures_inverse", qty_precision=0,
        contract_value_precision=0,
    )  # fmt: skip


class HistoryRest:
    """``fills`` and ``executions`` as given; what ``executions`` was asked is kept."""

    def __init__(self, fills: tuple[q.Fill, ...], history: tuple[h.Execution, ...]) -> None:
        self._fills, self._history = fills, history
        self.asked: list[int | None] = []

    async def fills(self) -> tuple[q.Fill, ...]:
        return self._fills

    async def executions(self, *, since_ms: int | None, max_pages: int) -> h.ExecutionHistory:
        self.asked.append(since_ms)
        return h.ExecutionHistory(self._history, 1, False)


def execution(exec_id: str, symbol: str, fee: str, price: str, ms: int) -> h.Execution:
    return h.Execution(
        exec_id, f"o-{exec_id}", None, symbol, "buy", Decimal(2), Decimal(price), ms, "t",
        Decimal(fee), "IoC", None,
    )  # fmt: skip


async def test_recovered_trades_carry_their_fee_in_the_quote_currency() -> None:
    rest = HistoryRest(
        (),
        (
            execution("lin", "PF_XBTUSD", "0.0520", "65000", T0 + 2),
            execution("inv", "pi_xbtusd", "0.00000004", "50000", T0 + 1),
        ),
    )
    table = FuturesInstrumentTable([xbt(), inverse()])
    venue = FuturesRestVenue(rest, table, FakeClock())  # type: ignore[arg-type]
    page = await venue.trades(start_s=T0 // 1000)
    assert rest.asked == [T0]
    assert [(t.exec_id, t.fee, t.maker) for t in page.trades] == [
        ("lin", Decimal("0.0520"), False),  # USD as charged
        ("inv", Decimal("0.00200000"), False),  # 0.00000004 XBT at 50000 USD
    ]
    assert page.count == 2


async def test_a_fill_the_history_lacks_is_a_trade_with_no_fee() -> None:
    fill = q.Fill(
        "f-new", "o-new", "c-1", "PF_XBTUSD", "sell", Decimal(1), Decimal(65010),
        rfc3339_ms(T0 + 5), "maker",
    )  # fmt: skip
    rest = HistoryRest((fill,), (execution("old", "PF_XBTUSD", "0.01", "65000", T0),))
    venue = FuturesRestVenue(rest, FuturesInstrumentTable([xbt()]), FakeClock())  # type: ignore[arg-type]
    trades = (await venue.trades(start_s=T0 // 1000)).trades
    assert [(t.exec_id, t.fee, t.maker, t.ts_ns) for t in trades] == [
        ("f-new", Decimal(0), True, (T0 + 5) * 1_000_000),
        ("old", Decimal("0.01"), False, T0 * 1_000_000),
    ]
