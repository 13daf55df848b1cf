"""The bundled basis hedge (``strategies/basis.py``) on the harness: it quotes spot only
while both venues are ready, hedges each spot fill on the perpetual, pulls its quotes when
Futures goes down and hedges what raced the pull once Futures is back."""

from __future__ import annotations

from decimal import Decimal

from bot.strategy.testing import DEFAULT_INSTRUMENTS, StrategyHarness
from strategies.basis import BasisHedge
from tests.unit.test_two_venue import PERP

PARAMS = {"size": "0.001", "max_inventory": "0.01", "spread_bps": 5}


def harness() -> StrategyHarness[BasisHedge]:
    h = StrategyHarness(
        BasisHedge, PARAMS, name="basis", symbols=("BTC/USD", "PF_XBTUSD"),
        instruments=(*DEFAULT_INSTRUMENTS, PERP),
    )  # fmt: skip
    h.book([("30000", "1")], [("30010", "1")], "PF_XBTUSD")
    h.book([("30000", "1")], [("30010", "1")], "BTC/USD")
    return h


def test_a_spot_fill_is_hedged_on_the_perpetual() -> None:
    h = harness()
    bid, ask = h.open_orders("BTC/USD", "buy")[0], h.open_orders("BTC/USD", "sell")[0]
    assert bid.price is not None and ask.price is not None and bid.price < ask.price
    h.clear_commands()
    h.fill(bid)
    (hedge,) = h.placed()
    assert (hedge.symbol, hedge.side, hedge.order.order_type) == ("PF_XBTUSD", "sell", "market")
    assert hedge.qty == Decimal("0.001")
    h.fill(hedge.cl_ord_id, price="30000")
    assert h.ctx.position("BTC/USD") + h.ctx.position("PF_XBTUSD") == 0
    h.advance(2)  # the timer finds nothing to hedge
    assert len(h.placed()) == 1


def test_futures_down_pulls_the_quotes_and_the_race_is_hedged_when_it_is_back() -> None:
    h = harness()
    h.ctx.ready["futures"] = False
    h.clear_commands()
    h.book([("30001", "1")], [("30011", "1")], "BTC/USD")
    assert {c.cl_ord_id for c in h.canceled()} == {o.cl_ord_id for o in h.ctx.handles.values()}
    assert h.open_orders("BTC/USD") == [] and h.placed() == []
    h.clear_commands()
    h.advance(3)
    h.book([("30001", "1")], [("30011", "1")], "BTC/USD")
    assert h.placed() == []  # nothing opened while Futures is down
    h.ctx.ready["futures"] = True
    h.book([("30001", "1")], [("30011", "1")], "BTC/USD")
    assert {c.side for c in h.placed()} == {"buy", "sell"}  # quotes again once it is back


def test_a_fill_while_futures_is_down_is_hedged_on_recovery() -> None:
    h = StrategyHarness(
        BasisHedge, PARAMS, name="basis", symbols=("BTC/USD", "PF_XBTUSD"),
        instruments=(*DEFAULT_INSTRUMENTS, PERP), auto_settle=False,
    )  # fmt: skip
    h.book([("30000", "1")], [("30010", "1")], "PF_XBTUSD")
    h.book([("30000", "1")], [("30010", "1")], "BTC/USD")
    h.settle()
    bid = h.open_orders("BTC/USD", "buy")[0]
    h.ctx.ready["futures"] = False
    h.fill(bid)  # a fill that came before the pull
    assert not [c for c in h.placed() if c.symbol == "PF_XBTUSD"]  # Futures refuses now
    h.ctx.ready["futures"] = True
    h.advance(1)  # the timer: Futures back, the exposure hedged
    (hedge,) = [c for c in h.placed() if c.symbol == "PF_XBTUSD"]
    assert (hedge.side, hedge.qty) == ("sell", Decimal("0.001"))
