"""``WsOrderStats`` as ``WsOrderEntry`` fills it, on a hand-written ``OrderLink``: the
outcomes the simulator cannot easily produce (a connection closing under the send) and
what a request that never left leaves uncounted."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import InsufficientFunds, OrderStateUnknown
from bot.execution.orders import Order, new_order
from bot.execution.venue_ws import OrderLinkDown, WsOrderEntry
from bot.execution.ws_order_stats import MethodStats
from bot.kraken.instruments import Instrument
from bot.kraken.protocol import MethodResponse
from bot.kraken.ratelimit import TradingCounter
from bot.net.ws import ConnectionLost

BTC = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)


class Link:
    """An order link that is up (or not) and whose sends fail with the connection."""

    def __init__(self, *, ready: bool = True, send: str = "lose") -> None:
        self.order_ready, self.send = ready, send

    def attach_orders(
        self, on_answer: Callable[[MethodResponse], None], on_lost: Callable[[str], None]
    ) -> None:
        self.on_lost = on_lost

    async def send_order(self, build: Callable[[str], bytes]) -> bool:
        build("token")
        if self.send == "lose":
            raise ConnectionLost("closed under the send")
        return False  # nothing sent


def order() -> Order:
    return new_order(
        cl_ord_id="0" * 32, instrument=BTC, side="buy", order_type="limit",
        qty=100_000, price=500_000, strategy="s", now_ns=0,
    )  # fmt: skip


async def test_a_connection_closing_under_the_send_is_counted_lost_without_latency() -> None:
    entry = WsOrderEntry(Link(), TradingCounter("pro"), FakeClock())
    with pytest.raises(OrderStateUnknown):
        await entry.add_order(order(), BTC)
    stats = entry.stats.methods["add_order"]
    assert (stats.lost, stats.ok, stats.timeouts, stats.ack.count) == (1, 0, 0, 0)


@pytest.mark.parametrize("link", [Link(ready=False), Link(send="nothing")])
async def test_a_request_that_never_left_is_not_counted(link: Link) -> None:
    entry = WsOrderEntry(link, TradingCounter("pro"), FakeClock())
    with pytest.raises(OrderLinkDown):  # the venue sends it over REST (a fallback)
        await entry.add_order(order(), BTC)
    assert entry.stats.methods.get("add_order", MethodStats()).outcomes() == [
        ("ok", "", 0), ("unknown", "", 0), ("lost", "", 0), ("timeout", "", 0),
    ]  # fmt: skip


def test_answers_with_an_error_are_refused_by_class_or_unknown() -> None:
    stats = MethodStats()
    stats.answered_with(InsufficientFunds("EOrder:Insufficient funds", "AddOrder"))
    stats.answered_with(InsufficientFunds("EOrder:Insufficient funds", "AddOrder"))
    stats.answered_with(OrderStateUnknown("EService:Unavailable", "AddOrder"))
    assert stats.outcomes() == [
        ("ok", "", 0), ("unknown", "", 1), ("lost", "", 0), ("timeout", "", 0),
        ("refused", "InsufficientFunds", 2),
    ]  # fmt: skip
