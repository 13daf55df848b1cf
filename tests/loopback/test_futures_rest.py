"""The Futures REST client (``bot.futures.rest``) against the Futures simulator, over sockets.

The venue runs on a FakeClock without a pump; the client has its own FakeClock that
advances itself when the client sleeps (backoff, budget waits), so nothing waits on real
time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import (
    AuthError,
    InsufficientFunds,
    NonceError,
    OrderStateUnknown,
    RateLimitError,
    RejectedError,
)
from bot.futures.instruments import FuturesInstrument, FuturesInstrumentTable
from bot.futures.nonce_floor import MemoryNonceFloor
from bot.futures.orders import BatchCancel, BatchSend
from bot.futures.ratelimit import FuturesBudget
from bot.futures.rest import Backoff, FuturesRestClient
from bot.kraken.nonce import DEFAULT_RESERVE_NS
from bot.sim.futures.faults import FaultKind
from bot.sim.futures.server import FuturesSimServer
from bot.sim.futures.venue import FuturesVenue

S = "PF_XBTUSD"


@dataclass
class Rig:
    venue: FuturesVenue
    server: FuturesSimServer
    venue_clock: FakeClock
    client_clock: FakeClock
    client: FuturesRestClient
    inst: FuturesInstrument
    api_key: str
    api_secret: str

    def other_client(self, **kwargs: object) -> FuturesRestClient:
        fields: dict[str, object] = {
            "clock": self.client_clock,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
        }
        fields.update(kwargs)
        return FuturesRestClient(self.server.rest_url, **fields)  # type: ignore[arg-type]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    venue_clock = FakeClock()
    venue = FuturesVenue(clock=venue_clock, seed=5)
    creds = venue.add_account("trader")
    server = await FuturesSimServer.start(venue, pump=False)
    client_clock = FakeClock(auto_advance=True)
    client = FuturesRestClient(
        server.rest_url,
        clock=client_clock,
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        backoff=Backoff(max_attempts=3, base_delay_s=0.01),
    )
    try:
        table = FuturesInstrumentTable(await client.instruments())
        yield Rig(
            venue,
            server,
            venue_clock,
            client_clock,
            client,
            table[S],
            creds.api_key,
            creds.api_secret,
        )
    finally:
        await client.close()
        await server.close()


async def best(rig: Rig) -> tuple[int, int]:
    book = await rig.client.orderbook(S)
    return rig.inst.price(book.bids[0][0]), rig.inst.price(book.asks[0][0])


async def test_typed_calls_round_trip(rig: Rig) -> None:
    client, inst = rig.client, rig.inst
    bid, ask = await best(rig)
    placed = await client.send_order(
        inst,
        side="buy",
        order_type="lmt",
        size=inst.qty("0.01"),
        limit_price=bid - 100,
        cli_ord_id="rt-1",
    )
    assert placed.ok and placed.order_id is not None and placed.events[0].kind == "PLACE"
    (resting,) = await client.open_orders()
    assert resting.cli_ord_id == "rt-1" and resting.limit_price == inst.price_decimal(bid - 100)
    taken = await client.send_order(
        inst, side="buy", order_type="mkt", size=inst.qty("0.02"), cli_ord_id="rt-2"
    )
    assert [e.kind for e in taken.events] == ["EXECUTION"]
    (position,) = await client.open_positions()
    assert position.signed_size == Decimal("0.02")
    accounts = await client.accounts()
    assert accounts.flex is not None and accounts.flex.initial_margin > 0
    assert (await client.fills())[0].cli_ord_id == "rt-2"
    tickers = {t.symbol: t for t in await client.tickers()}
    assert tickers[S].last == inst.price_decimal(ask)
    edited = await client.edit_order(inst, cli_ord_id="rt-1", limit_price=bid - 105)
    assert edited.ok
    cancelled = await client.cancel_order(cli_ord_id="rt-1")
    assert cancelled.ok
    with pytest.raises(RejectedError) as info:
        await client.cancel_order(cli_ord_id="rt-1")
    assert info.value.code == "notFound"
    assert (await client.cancel_all_orders()).status == "noOrdersToCancel"


async def test_success_is_not_placed(rig: Rig) -> None:
    client, inst = rig.client, rig.inst
    _, ask = await best(rig)
    with pytest.raises(RejectedError) as info:
        await client.send_order(
            inst, side="buy", order_type="post", size=10, limit_price=ask, cli_ord_id="np-1"
        )
    assert info.value.code == "postWouldExecute" and "np-1" in info.value.detail
    unchecked = await client.send_order(
        inst,
        side="buy",
        order_type="post",
        size=10,
        limit_price=ask,
        cli_ord_id="np-2",
        check=False,
    )
    assert not unchecked.ok and unchecked.status == "postWouldExecute"
    with pytest.raises(InsufficientFunds):
        await client.send_order(
            inst,
            side="buy",
            order_type="lmt",
            size=inst.qty("400"),
            limit_price=ask - 1000,
            cli_ord_id="np-3",
        )


async def test_a_lost_sendorder_reply_is_unknown_then_resolved_without_a_duplicate(
    rig: Rig,
) -> None:
    client, inst = rig.client, rig.inst
    bid, _ = await best(rig)
    fault = await rig.venue.faults.inject(kind="lose_response", endpoint="sendorder")
    with pytest.raises(OrderStateUnknown):
        await client.send_order(
            inst,
            side="buy",
            order_type="lmt",
            size=10,
            limit_price=bid - 100,
            cli_ord_id="lost-1",
        )
    assert fault.fired == 1  # one request reached the venue: the client did not resend
    found = await client.lookup("lost-1")
    assert found.state == "open" and found.open_order is not None
    assert len(await client.open_orders()) == 1
    assert (await client.lookup("never-sent")).state == "absent"


async def test_a_5xx_on_sendorder_is_never_retried(rig: Rig) -> None:
    client, inst = rig.client, rig.inst
    bid, _ = await best(rig)
    await rig.venue.faults.inject(kind="rest_error", endpoint="sendorder", status=503)
    with pytest.raises(OrderStateUnknown) as info:
        await client.send_order(
            inst,
            side="buy",
            order_type="lmt",
            size=10,
            limit_price=bid - 100,
            cli_ord_id="five-1",
        )
    assert info.value.code == "EHTTP:Status 503"
    # A retry would have placed it (the fault was good for one request): nothing is open.
    assert (await client.lookup("five-1")).state == "absent"


async def test_kraken_unavailable_on_sendorder_is_unknown_and_on_reads_retried(rig: Rig) -> None:
    client, inst = rig.client, rig.inst
    await rig.venue.faults.inject(kind="rest_error", endpoint="sendorder", error="Server Error")
    with pytest.raises(OrderStateUnknown):
        await client.send_order(
            inst,
            side="buy",
            order_type="mkt",
            size=10,
            cli_ord_id="u-1",
        )
    read = await rig.venue.faults.inject(kind="rest_error", endpoint="openorders", status=502)
    assert await client.open_orders() == ()  # the second attempt succeeded
    assert read.fired == 1


async def test_a_lost_cancel_reply_is_retried_and_stays_unknown(rig: Rig) -> None:
    client, inst = rig.client, rig.inst
    bid, _ = await best(rig)
    await client.send_order(
        inst, side="buy", order_type="lmt", size=10, limit_price=bid - 100, cli_ord_id="c-1"
    )
    lost = await rig.venue.faults.inject(kind="lose_response", endpoint="cancelorder")
    with pytest.raises(OrderStateUnknown):
        await client.cancel_order(cli_ord_id="c-1")
    assert lost.fired == 1
    assert await client.open_orders() == ()  # the first attempt did cancel it


async def test_nonce_errors_are_retried_once(rig: Rig) -> None:
    client = rig.client
    fault = await rig.venue.faults.inject(kind="invalid_nonce", endpoint="accounts")
    assert (await client.accounts()).flex is not None
    assert fault.fired == 1
    await rig.venue.faults.inject(kind="invalid_nonce", endpoint="accounts", count=2)
    with pytest.raises(NonceError):
        await client.accounts()


async def test_nonces_survive_a_restart(rig: Rig) -> None:
    floor = MemoryNonceFloor()
    first = rig.other_client(nonce_floor=floor)
    await first.open_orders()
    await first.close()
    rig.client_clock.set_wall_ns(1)  # the clock is set far back; the floor holds
    second = rig.other_client(nonce_floor=floor)
    await second.open_orders()  # nonceBelowThreshold without the floor
    await second.close()
    assert floor.saved


class TaskNotingFloor(MemoryNonceFloor):
    """Notes for each saved mark whether it was saved inside a task (a request) or from a
    bare loop callback."""

    def __init__(self) -> None:
        super().__init__()
        self.in_task: list[bool] = []

    def save(self, mark: int) -> None:
        super().save(mark)
        self.in_task.append(asyncio.current_task() is not None)


async def test_the_nonce_mark_is_topped_up_by_the_loop_not_inside_the_request(rig: Rig) -> None:
    floor = TaskNotingFloor()
    client = rig.other_client(nonce_floor=floor)
    start = rig.client_clock.time_ns()
    await client.open_orders()  # no mark yet: saved inside the request
    for _ in range(2):
        rig.client_clock.advance(6.0)  # past half the 10 s reserve
        await client.open_orders()
    await client.close()
    ahead = [start + i * 6 * 10**9 + 1 + DEFAULT_RESERVE_NS for i in (1, 2)]
    assert floor.saved == [start + DEFAULT_RESERVE_NS, *ahead]
    assert floor.in_task == [True, False, False]


async def test_rate_limits_wait_locally_and_saturate_on_refusal(rig: Rig) -> None:
    small = rig.other_client(budget=FuturesBudget(budget=20, window_s=10))
    start = rig.client_clock.monotonic()
    for _ in range(3):  # 2 per call: the budget holds 10 calls, then waits
        await small.open_orders()
    assert rig.client_clock.monotonic() == start  # no wait yet
    for _ in range(10):
        await small.open_orders()
    assert rig.client_clock.monotonic() > start  # it waited instead of being refused
    await small.close()
    await rig.venue.faults.inject(kind=FaultKind.RATE_LIMIT, endpoint="fills")
    with pytest.raises(RateLimitError):
        await rig.client.fills()
    assert rig.client.budget.headroom(rig.client_clock.monotonic()) <= 0


async def test_bad_credentials_are_auth_errors(rig: Rig) -> None:
    wrong = rig.other_client(api_secret="A" * 86 + "==")
    with pytest.raises(AuthError) as info:
        await wrong.open_orders()
    assert info.value.code == "authenticationError"
    await wrong.close()
    keyless = FuturesRestClient(rig.server.rest_url, clock=rig.client_clock)
    with pytest.raises(AuthError):
        await keyless.open_orders()
    assert await keyless.tickers()  # public calls need no key
    await keyless.close()


async def test_batch_and_the_dead_mans_switch(rig: Rig) -> None:
    client, inst = rig.client, rig.inst
    bid, _ = await best(rig)
    results = await client.batch_order(
        [
            BatchSend("a", inst, "buy", "lmt", 10, "bt-1", limit_price=bid - 100),
            BatchSend("b", inst, "buy", "lmt", 10, "bt-2", limit_price=bid - 105),
            BatchCancel(cli_ord_id="bt-1"),
        ]
    )
    assert [(r.order_tag, r.status) for r in results] == [
        ("a", "placed"),
        ("b", "placed"),
        (None, "cancelled"),
    ]
    armed = await client.cancel_all_orders_after(60)
    assert armed.armed
    rig.venue_clock.advance(61)
    await rig.venue.step()
    assert await client.open_orders() == ()
    assert rig.venue.deadman_fired == [("trader", 1)]
    disarmed = await client.cancel_all_orders_after(0)
    assert not disarmed.armed


async def test_a_sendorder_timeout_is_unknown_and_not_resent(rig: Rig) -> None:
    """A bounded real wait: the simulator answers 0.3 s late, the client gives up at 0.05 s."""
    impatient = rig.other_client(timeout_s=0.05)
    delay = await rig.venue.faults.inject(kind="rest_delay", endpoint="sendorder", delay_s=0.3)
    with pytest.raises(OrderStateUnknown) as info:
        await impatient.send_order(
            rig.inst, side="buy", order_type="mkt", size=10, cli_ord_id="slow-1"
        )
    assert info.value.code == "EHTTP:Timeout"
    assert delay.fired == 1  # one attempt only
    await impatient.close()
