"""``WsOrderStats`` as ``WsOrderEntry`` fills it, on a hand-written ``OrderLink``: the
outcomes the simulator cannot easily produce (a connection closing under the send) and
what a request that never left leaves uncounted."""

from __future__ import annotations

import asyncio
import json
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


class WritingLink(Link):
    """An order link whose write at once (``write_order``) builds the frame with its token
    and then writes it (``write="ok"``), refuses it after building it (``"raise"``: the
    transport's error, the request may have left) or cannot write now (``"later"``)."""

    def __init__(self, write: str) -> None:
        super().__init__()
        self.write = write
        self.frames: list[bytes] = []

    def attach_orders(
        self, on_answer: Callable[[MethodResponse], None], on_lost: Callable[[str], None]
    ) -> None:
        self.on_answer, self.on_lost = on_answer, on_lost

    def write_order(self, build: Callable[[str], bytes]) -> bool:
        if self.write == "later":
            return False
        self.frames.append(build("token"))
        if self.write == "raise":
            raise ConnectionLost("write failed: broken pipe")
        return True


async def test_a_place_written_now_is_answered_by_the_req_id_of_its_frame() -> None:
    link, clock = WritingLink("ok"), FakeClock()
    counter = TradingCounter("pro")
    entry = WsOrderEntry(link, counter, clock)
    ticket = entry.add_order_now(order(), BTC)
    assert ticket is not None and ticket.written and ticket.error is None
    (frame,) = link.frames
    sent = json.loads(frame)
    assert (sent["method"], sent["params"]["token"]) == ("add_order", "token")
    assert entry.in_flight == 1  # opened after the write, before anything can answer
    assert counter.value("BTC/USD", clock.monotonic()) == 1.0  # charged once
    answer = asyncio.ensure_future(entry.added(ticket))
    await asyncio.sleep(0)
    link.on_answer(MethodResponse("add_order", True, sent["req_id"], raw_result={"order_id": "O1"}))
    assert await answer == "O1"
    assert entry.in_flight == 0
    assert entry.stats.methods["add_order"].ok == 1


async def test_a_place_whose_write_the_transport_refuses_is_unknown_and_not_waited_for() -> None:
    link, clock = WritingLink("raise"), FakeClock()
    counter = TradingCounter("pro")
    entry = WsOrderEntry(link, counter, clock)
    ticket = entry.add_order_now(order(), BTC)
    assert ticket is not None and ticket.error is not None and len(link.frames) == 1
    assert entry.in_flight == 0  # nothing waits for an answer that may never come
    with pytest.raises(OrderStateUnknown, match="Connection lost"):
        await entry.added(ticket)  # looked up by the engine, never resent
    assert link.frames == [link.frames[0]]  # not sent again
    stats = entry.stats.methods["add_order"]
    assert (stats.lost, stats.ok, stats.ack.count) == (1, 0, 0)
    assert counter.value("BTC/USD", clock.monotonic()) == 1.0  # it may have left: charged


async def test_a_place_that_cannot_be_written_now_is_sent_by_added_with_a_fresh_req_id() -> None:
    link = WritingLink("later")
    entry = WsOrderEntry(link, TradingCounter("pro"), FakeClock())
    first = entry.add_order_now(order(), BTC)
    second = entry.add_order_now(order(), BTC)
    assert first is not None and second is not None
    assert not first.written and first.error is None and link.frames == []
    assert entry.in_flight == 2  # both opened, each with its own req_id
    with pytest.raises(OrderStateUnknown, match="Connection lost"):
        await entry.added(first)  # sent by ``send_order``: the link loses it under the send
    assert entry.in_flight == 1
