"""The ``level3`` channel's pure core (``bot.sim.level3``): the checksum pinned by Kraken's
guide (https://docs.kraken.com/api/docs/guides/spot-ws-l3-v2), and the frames checked by a
client written here from the level3 page and the guide alone: it applies each snapshot and
update (``add`` appends to the level, ``modify`` changes a quantity in place, ``delete``
removes, then the book is truncated to the depth) and must hold exactly the exchange's best
N levels, order by order, with the checksum the frame carries."""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.sim.level3 import l3_checksum, l3_checksum_text, l3_order_id
from bot.sim.market_data import MarketAdd, MarketAmend, MarketCancel, MarketTake
from bot.sim.matching import OrderRequest
from bot.sim.venue import SimVenue
from bot.sim.ws_level3 import level3_hub

# The guide's worked example: the asks (low to high) and bids (high to low) of its BTC/USD
# book, each level's orders in queue order, with the numbers exactly as the guide prints
# them (some with fewer than 8 decimals), and the checksum the guide gives for them.
GUIDE_ASKS = [
    [("44939.5", "4.52308393"), ("44939.5", "0.00111261"), ("44939.5", "0.00100000"),
     ("44939.5", "0.01000000")],
    [("44950.0", "1.0334926")],
    [("44953.0", "0.64537")],
    [("44955.0", "0.250000")],
    [("44959.6", "0.35630000"), ("44959.6", "0.35630000")],
    [("44960.1", "3.38072")],
    [("44960.2", "0.88967575")],
    [("44967.0", "3.14392283")],
    [("44978.5", "0.6778960")],
    [("44979.2", "0.35630000")],
]  # fmt: skip
GUIDE_BIDS = [
    [("44939.4", q) for q in ("0.88968699", "0.45210000", "0.10000000", "0.14296323",
                              "0.25000000", "0.10292988", "0.33880000", "1.28140860")],
    [("44937.1", "0.3346877")],
    [("44934.7", "0.35630000")],
    [("44930.2", q) for q in ("0.22734299", "0.1000000", "0.5550000", "0.70000000",
                              "0.15000000")],
    [("44928.0", "0.105240")],
    [("44919.6", "0.33870000")],
    [("44919.5", "0.7610000")],
    [("44912.0", "0.35630000")],
    [("44909.7", "0.6690000")],
    [("44901.9", "0.88982")],
]  # fmt: skip
GUIDE_CHECKSUM = 1063832831


def test_the_checksum_is_the_guides_worked_example() -> None:
    # The guide's steps: "44939.5" -> "449395", "4.52308393" -> "452308393",
    # "0.88968699" -> "88968699"; asks first, then bids.
    text = l3_checksum_text(GUIDE_ASKS, GUIDE_BIDS)
    assert text.startswith("449395452308393449395111261")
    assert text[text.index("4493948896") :].startswith("449394" + "88968699")
    assert l3_checksum(GUIDE_ASKS, GUIDE_BIDS) == GUIDE_CHECKSUM
    # Queue order counts: swapping two orders of one level changes the checksum.
    swapped = [GUIDE_ASKS[0][::-1], *GUIDE_ASKS[1:]]
    assert l3_checksum(swapped, GUIDE_BIDS) != GUIDE_CHECKSUM


def test_market_orders_get_krakens_id_shape_and_user_ids_stay() -> None:
    assert l3_order_id("OABCDE-FGHIJ-KLMNOP") == "OABCDE-FGHIJ-KLMNOP"
    ids = {l3_order_id(f"M{n}") for n in (1, 35, 36, 10**12)}
    assert len(ids) == 4
    for order_id in ids:
        head, mid, tail = order_id.split("-")
        assert (len(head), len(mid), len(tail)) == (6, 5, 6) and head.startswith("O")


class L3Client:
    """A level3 client from the page and the guide: exact numbers, checksum per message."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, list[list[Any]]]] = {"bids": {}, "asks": {}}
        self.mismatches = 0
        self.messages = 0
        self.events: dict[str, int] = {"add": 0, "modify": 0, "delete": 0, "requeued": 0}

    def apply(self, frame: bytes) -> None:
        msg = json.loads(frame, parse_float=Decimal)
        assert msg["channel"] == "level3" and msg["type"] in ("snapshot", "update")
        (data,) = msg["data"]
        for key in ("bids", "asks"):
            side = self.sides[key]
            if msg["type"] == "snapshot":
                side.clear()
                for o in data[key]:
                    assert set(o) == {"order_id", "limit_price", "order_qty", "timestamp"}
                    side.setdefault(o["limit_price"], []).append([o["order_id"], o["order_qty"]])
                continue
            deleted = set()
            for e in data[key]:
                self.events[e["event"]] += 1
                if e["event"] == "delete":
                    deleted.add(e["order_id"])
                elif e["event"] == "add" and e["order_id"] in deleted:
                    self.events["requeued"] += 1  # lost its place: deleted, then added back
                level = side.setdefault(e["limit_price"], [])
                if e["event"] == "add":
                    assert all(o[0] != e["order_id"] for o in level)
                    level.append([e["order_id"], e["order_qty"]])
                elif e["event"] == "modify":
                    (found,) = [o for o in level if o[0] == e["order_id"]]
                    found[1] = e["order_qty"]
                else:
                    assert e["event"] == "delete" and "order_qty" not in e
                    before = len(level)
                    level[:] = [o for o in level if o[0] != e["order_id"]]
                    assert len(level) == before - 1
                if not level:
                    del side[e["limit_price"]]
            best = sorted(side, reverse=key == "bids")
            for price in best[self.depth :]:
                del side[price]
        self.messages += 1
        if self.checksum() != data["checksum"]:
            self.mismatches += 1

    def checksum(self) -> int:
        def digits(n: Decimal) -> str:
            return str(n).replace(".", "").lstrip("0")

        text = ""
        for key in ("asks", "bids"):
            side = self.sides[key]
            for price in sorted(side, reverse=key == "bids")[:10]:
                text += "".join(digits(price) + digits(qty) for _, qty in side[price])
        return zlib.crc32(text.encode())

    def view(self, scale: int) -> dict[str, list[tuple[int, list[tuple[str, int]]]]]:
        out = {}
        for key in ("bids", "asks"):
            side = self.sides[key]
            out[key] = [
                (int(p.scaleb(scale[0])), [(o, int(q.scaleb(scale[1]))) for o, q in side[p]])
                for p in sorted(side, reverse=key == "bids")
            ]
        return out


class Frames:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_book(self, symbol: str, frame: bytes, checksum: int) -> None:
        assert b'"checksum":%d,' % checksum in frame
        self.frames.append(frame)


def live_view(venue: SimVenue, symbol: str, depth: int) -> dict[str, Any]:
    book = venue.exchange.book(symbol)
    return {
        key: [
            (price, [(l3_order_id(o.txid), o.qty - o.filled) for o in book.queue(side, price)])
            for price, _ in book.depth(side, depth)
        ]
        for key, side in (("bids", "bid"), ("asks", "ask"))
    }


@pytest.mark.parametrize(("seed", "depth"), [(1, 10), (2, 10), (3, 100), (4, 10)])
def test_a_client_applying_the_frames_holds_the_exchanges_book(seed: int, depth: int) -> None:
    clock = FakeClock()
    venue = SimVenue(clock=clock, seed=seed, market=None, rate_limits=False)
    venue.add_account("trader")
    inst = venue.instruments["BTC/USD"]
    rng = random.Random(seed)
    mid, tick = 650_000, inst.price_increment
    refs: list[int] = []
    # A book deep enough that levels scroll in and out of the window.
    seed_actions = []
    for ref in range(1, 2 * depth + 30):
        side = "buy" if ref % 2 else "sell"
        offset = (ref // 2 + 1) * tick * 2
        price = mid - offset if side == "buy" else mid + offset
        seed_actions.append(MarketAdd("BTC/USD", ref, side, price, rng.randint(1, 9) * 10**5))
        refs.append(ref)
    venue.execute(lambda: venue.exchange.apply_market(seed_actions, clock.time_ns()))
    hub = level3_hub(venue)
    sink = Frames()
    snapshot, _ = hub.subscribe(sink, 1, "BTC/USD", depth)
    client = L3Client(depth)
    client.apply(snapshot)
    user_orders: list[str] = []
    next_ref = 1000
    for _ in range(400):
        clock.advance(0.01)
        roll = rng.random()
        now = clock.time_ns()
        if roll < 0.3:
            next_ref += 1
            side = rng.choice(["buy", "sell"])
            offset = rng.randint(1, 2 * depth) * tick
            price = mid - offset if side == "buy" else mid + offset
            action: Any = MarketAdd("BTC/USD", next_ref, side, price, rng.randint(1, 9) * 10**5)
            refs.append(next_ref)
        elif roll < 0.45 and refs:
            action = MarketCancel("BTC/USD", rng.choice(refs))
        elif roll < 0.6 and refs:
            ref = rng.choice(refs)
            new_price = None if rng.random() < 0.5 else mid + rng.randint(-depth, depth) * tick
            action = MarketAmend("BTC/USD", ref, rng.randint(1, 9) * 10**5, new_price)
        elif roll < 0.7:
            action = MarketTake("BTC/USD", rng.choice(["buy", "sell"]), rng.randint(1, 20) * 10**5)
        else:
            action = None
        if action is not None:
            venue.execute(lambda a=action, t=now: venue.exchange.apply_market([a], t))
        elif rng.random() < 0.5 or not user_orders:  # a user order, resting
            side = rng.choice(["buy", "sell"])
            price = mid - rng.randint(3, depth) * tick
            if side == "sell":
                price = mid + rng.randint(3, depth) * tick
            req = OrderRequest("BTC/USD", side, "limit", 100_000, price, post_only=True)
            result = venue.place_order("trader", req)
            if result.order is not None and result.order.status == "open":
                user_orders.append(result.order.txid)
        else:  # amend one: a smaller size keeps its place, a larger one loses it
            txid = rng.choice(user_orders)
            order = venue.exchange.order("trader", txid)
            if order is not None and order.status == "open":
                qty = rng.choice([50_000, 200_000, 300_000])
                venue.amend_order("trader", txid=txid, order_qty=qty)
        for frame in sink.frames:
            client.apply(frame)
        sink.frames.clear()
        assert client.view((inst.price_precision, inst.qty_precision)) == live_view(
            venue, "BTC/USD", depth
        )
    assert client.mismatches == 0 and client.messages > 150
    assert min(client.events.values()) > 0, client.events
