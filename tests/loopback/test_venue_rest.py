"""The venue port's Kraken REST implementation (bot.execution.venue_rest) against the
simulator, over real signed REST on 127.0.0.1: every member of the port, the engine's own
``Order`` out and the port's values in, errors by remedy.

The venue runs on a ``FakeClock(auto_advance=True)`` with no synthetic market: only our
orders and a taker's are on the book, so fills happen when a test makes them."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.errors import InsufficientFunds, OrderStateUnknown, RejectedError
from bot.execution.orders import Order, new_order
from bot.execution.venue import Venue
from bot.execution.venue_rest import KrakenRestVenue
from bot.kraken.rest import KrakenRestClient, RetryPolicy
from bot.sim.faults import FaultKind, FaultSpec
from tests.loopback.conftest import SimFactory, SimHandle

D = Decimal
pytestmark = pytest.mark.timeout(60)


async def venue_on(sim_factory: SimFactory, **kwargs: Any) -> tuple[SimHandle, KrakenRestVenue]:
    sim = await sim_factory(clock=FakeClock(auto_advance=True), market=None, **kwargs)
    rest = KrakenRestClient(
        sim.base_url, clock=sim.clock, api_key=sim.api_key, api_secret=sim.api_secret,
        session=sim.session, retry=RetryPolicy(max_attempts=1), rng=random.Random(3),
        tier="starter",
    )  # fmt: skip
    return sim, KrakenRestVenue(rest, sim.venue.instruments)


def bid(sim: SimHandle, price: str, qty: str = "0.01", **fields: Any) -> Order:
    inst = sim.venue.instruments["BTC/USD"]
    cid = fields.pop("cl_ord_id", f"{random.getrandbits(128):032x}")
    return new_order(
        cl_ord_id=cid, instrument=inst, side="buy", order_type="limit", qty=inst.qty(qty),
        price=inst.price(price), strategy="s", now_ns=sim.clock.time_ns(), **fields,
    )  # fmt: skip


async def test_orders_in_and_out_through_the_port(sim_factory: SimFactory) -> None:
    sim, venue = await venue_on(sim_factory)
    assert isinstance(venue, Venue)
    inst = sim.venue.instruments["BTC/USD"]
    order = bid(sim, "50000", post_only=True)
    txid = await venue.place(order, inst)
    (on_sim,) = sim.venue.exchange.open_orders(sim.account)
    assert on_sim.txid == txid and on_sim.price == inst.price("50000")
    [shown] = await venue.open_orders()
    assert (shown.order_id, shown.cl_ord_id, shown.status) == (txid, order.cl_ord_id, "open")
    assert (shown.symbol, shown.qty, shown.limit_price) == ("BTC/USD", D("0.01"), D("50000.0"))
    assert [x.order_id for x in await venue.open_orders(cl_ord_id=order.cl_ord_id)] == [txid]
    acked = replace(order, order_id=txid)
    await venue.amend(acked, inst, qty=inst.qty("0.02"), price=inst.price("49000"), order_age_s=60)
    (on_sim,) = sim.venue.exchange.open_orders(sim.account)
    assert (on_sim.price, on_sim.qty) == (inst.price("49000"), inst.qty("0.02"))
    await venue.cancel(acked, inst, order_age_s=60)
    assert sim.venue.exchange.open_orders(sim.account) == []
    page = await venue.closed_orders(cl_ord_id=order.cl_ord_id)
    assert [(x.order_id, x.status) for x in page.orders] == [(txid, "canceled")]


async def test_a_post_only_orders_new_price_is_refused_if_it_would_take(
    sim_factory: SimFactory,
) -> None:
    """AmendOrder's ``post_only`` defaults to false on Kraken: the venue sends it with
    every new price of a post-only order, so a price that would take is refused, not
    filled as a taker."""
    sim, venue = await venue_on(sim_factory)
    inst = sim.venue.instruments["BTC/USD"]
    creds = sim.venue.add_account("maker")
    ask = await sim.client_for(creds.api_key, creds.api_secret).private(
        "AddOrder", pair="XBTUSD", type="sell", ordertype="limit", price="50000", volume="0.01"
    )
    assert ask.error == []
    order = bid(sim, "49000", post_only=True)
    acked = replace(order, order_id=await venue.place(order, inst))
    with pytest.raises(RejectedError) as info:
        await venue.amend(acked, inst, qty=None, price=inst.price("50000"), order_age_s=60)
    assert info.value.code == "EOrder:Post only order"
    (on_sim,) = sim.venue.exchange.open_orders(sim.account)
    assert (on_sim.price, on_sim.filled) == (inst.price("49000"), 0)
    await venue.amend(acked, inst, qty=inst.qty("0.02"), price=None, order_age_s=60)
    (on_sim,) = sim.venue.exchange.open_orders(sim.account)
    assert on_sim.qty == inst.qty("0.02")  # a qty-only amend needs no flag


@pytest.mark.parametrize("post_only", [True, False])
async def test_a_sell_pays_its_fee_in_quote_so_the_base_balance_follows_the_fills(
    sim_factory: SimFactory, post_only: bool
) -> None:
    """Kraken's default for a sell is the fee in base (``fcib``); every order asks for it
    in quote (``fciq``), so the base balance moves by the fills alone."""
    sim, venue = await venue_on(sim_factory)
    inst = sim.venue.instruments["BTC/USD"]
    before = sim.venue.exchange.balances(sim.account)["BTC"]
    sell = replace(bid(sim, "60000", post_only=post_only), side="sell")
    await venue.place(sell, inst)
    creds = sim.venue.add_account("taker")
    reply = await sim.client_for(creds.api_key, creds.api_secret).private(
        "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01"
    )
    assert reply.error == []
    (fill,) = sim.venue.exchange.trades(sim.account)
    assert fill.side == "sell" and fill.fee > 0 and fill.fee_asset == "USD"
    assert sim.venue.exchange.balances(sim.account)["BTC"] == before - D("0.01")


async def test_an_order_whose_txid_is_unknown_is_named_by_its_cl_ord_id(
    sim_factory: SimFactory,
) -> None:
    sim, venue = await venue_on(sim_factory)
    inst = sim.venue.instruments["BTC/USD"]
    order = bid(sim, "50000")
    await venue.place(order, inst)  # its txid not kept: as after a lost answer
    await venue.cancel(order, inst, order_age_s=60)
    assert sim.venue.exchange.open_orders(sim.account) == []


async def test_queries_leave_out_an_unknown_id_and_read_in_pages(
    sim_factory: SimFactory,
) -> None:
    sim, venue = await venue_on(sim_factory)
    inst = sim.venue.instruments["BTC/USD"]
    txids = [await venue.place(bid(sim, f"{50000 + n}"), inst) for n in range(3)]
    found = await venue.query_orders([txids[0], "OUNKNO-WNXXX-XXXXXX", txids[2]])
    assert sorted(x.order_id for x in found) == sorted([txids[0], txids[2]])
    assert await venue.cancel_all([inst]) == 3
    first = await venue.closed_orders(start_s=0, offset=0)
    assert first.count == 3 and {x.order_id for x in first.orders} == set(txids)
    assert (await venue.closed_orders(start_s=0, offset=3)).orders == ()


async def test_fills_balances_token_switch_and_room(sim_factory: SimFactory) -> None:
    sim, venue = await venue_on(sim_factory)
    inst = sim.venue.instruments["BTC/USD"]
    txid = await venue.place(bid(sim, "60000"), inst)
    creds = sim.venue.add_account("taker")
    reply = await sim.client_for(creds.api_key, creds.api_secret).private(
        "AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.01"
    )
    assert reply.error == []
    page = await venue.trades(start_s=0)
    [trade] = page.trades
    assert (page.count, trade.order_id, trade.qty, trade.price) == (
        1,
        txid,
        D("0.01"),
        D("60000.0"),
    )
    balances = await venue.balances()
    assert balances["BTC"] > 0 and "XXBT" not in balances  # plain asset names
    token = await venue.ws_token()
    assert token.token and token.token not in repr(token)
    armed = await venue.cancel_after(60)
    assert armed.delay_s == 60 and armed.trigger_time
    assert (await venue.cancel_after(0)).delay_s is None
    assert 0 < venue.trading_headroom("BTC/USD") < math.inf and venue.rest_headroom() > 0


async def test_errors_come_by_remedy(sim_factory: SimFactory) -> None:
    sim, venue = await venue_on(sim_factory, balances={"USD": "1"})
    inst = sim.venue.instruments["BTC/USD"]
    with pytest.raises(InsufficientFunds):
        await venue.place(bid(sim, "50000"), inst)
    sim.venue.faults.schedule(FaultSpec(kind=FaultKind.LOSE_RESPONSE, endpoint="AddOrder"))
    with pytest.raises(OrderStateUnknown):
        await venue.place(bid(sim, "60.0"), inst)  # 0.6 USD: within the balance
    gone = bid(sim, "1.0", cl_ord_id="f" * 32)
    with pytest.raises(RejectedError):
        await venue.cancel(gone, inst, order_age_s=60)
