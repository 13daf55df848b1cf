"""A pure rig for the backtest's fill model: book and trade frames (real checksums) pushed
through ``BacktestMarket`` into the simulator's exchange, orders placed on the account.

No event loop: ``push`` is synchronous; the fills are read from the exchange, where the
fill rule put them (the venue's reports to the engine are scheduled on the clock's agenda,
not run here)."""

from __future__ import annotations

from decimal import Decimal

import orjson

from bot.backtest.clock import SimClock
from bot.backtest.data import Frame, Gap
from bot.backtest.fees import fees_for_volume
from bot.backtest.market import BacktestMarket
from bot.backtest.venue import ACCOUNT, BacktestVenue
from bot.kraken.checksum import book_checksum
from bot.kraken.instruments import InstrumentTable
from bot.sim.exchange import Exchange
from bot.sim.live_source import LiveMarket
from bot.sim.matching import Fill, OrderRequest, OrderState
from bot.sim.pairs import default_instruments
from bot.sim.ws_common import rfc3339

TABLE: InstrumentTable = default_instruments(("BTC/USD",))
BTC = TABLE["BTC/USD"]
T0 = 1_700_000_000_000_000_000


def px(text: str) -> int:
    return BTC.price(text)


def qty(text: str) -> int:
    return BTC.qty(text)


class Rig:
    def __init__(self, *, fee_volume_usd: Decimal = Decimal(0), latency_ns: int = 0) -> None:
        self.clock = SimClock(T0)
        self.live = LiveMarket(TABLE)
        fees = fees_for_volume(fee_volume_usd)
        self.exchange = Exchange(TABLE.values(), seed=1, fees=fees, market=self.live)
        self.live.attach(self.exchange)
        self.exchange.deposit(ACCOUNT, "USD", 1_000_000)
        self.exchange.deposit(ACCOUNT, "BTC", 100)
        self.exchange.accounts.set_fees(ACCOUNT, fees)
        self.venue = BacktestVenue(self.exchange, TABLE, self.clock, latency_ns=latency_ns)
        self.market = BacktestMarket(TABLE, self.live, self.venue, self.clock, depth=10)
        self.venue.on_arrival = self.market.sync
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.trade_id = 0

    # -- the market ----------------------------------------------------------------------

    def snapshot(self, bids: dict[str, str], asks: dict[str, str]) -> None:
        self.bids = {px(p): qty(q) for p, q in bids.items()}
        self.asks = {px(p): qty(q) for p, q in asks.items()}
        self._book("snapshot", self.bids, self.asks)

    def update(
        self, *, bids: dict[str, str] | None = None, asks: dict[str, str] | None = None
    ) -> None:
        changed_bids = {px(p): qty(q) for p, q in (bids or {}).items()}
        changed_asks = {px(p): qty(q) for p, q in (asks or {}).items()}
        for side, changes in ((self.bids, changed_bids), (self.asks, changed_asks)):
            for p, q in changes.items():
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
        self._book("update", changed_bids, changed_asks)

    def trade(self, side: str, price: str, size: str) -> None:
        self.trade_id += 1
        item = {
            "symbol": "BTC/USD", "side": side, "price": _num(price), "qty": _num(size),
            "ord_type": "limit", "trade_id": self.trade_id, "timestamp": rfc3339(self.now),
        }  # fmt: skip
        self._push({"channel": "trade", "type": "update", "data": [item]})

    def gap(self) -> None:
        self.market.push(Gap(self.now, "disconnected", None))

    @property
    def now(self) -> int:
        return self.clock.time_ns()

    # -- the account ---------------------------------------------------------------------

    def limit(self, side: str, price: str, size: str, *, post_only: bool = False) -> OrderState:
        req = OrderRequest(
            symbol="BTC/USD", side=side, ord_type="limit", qty=qty(size), price=px(price),
            post_only=post_only,
        )  # fmt: skip
        self.market.sync("BTC/USD")  # as the venue does when a write arrives
        result = self.exchange.add_order(ACCOUNT, req, self.now)
        self.venue.publish(result)
        assert result.order is not None
        return result.order

    def market_order(self, side: str, size: str) -> OrderState:
        req = OrderRequest(symbol="BTC/USD", side=side, ord_type="market", qty=qty(size))
        self.market.sync("BTC/USD")
        result = self.exchange.add_order(ACCOUNT, req, self.now)
        assert result.order is not None
        return result.order

    def cancel(self, order: OrderState) -> None:
        self.exchange.cancel_order(ACCOUNT, self.now, txid=order.txid)

    def fills(self) -> list[Fill]:
        return self.exchange.trades(ACCOUNT)

    def filled(self, order: OrderState) -> Decimal:
        state = self.exchange.order(ACCOUNT, order.txid)
        assert state is not None
        return BTC.qty_decimal(state.filled)

    # -- internals -----------------------------------------------------------------------

    def _book(self, kind: str, bids: dict[int, int], asks: dict[int, int]) -> None:
        top_asks = sorted(self.asks.items())[:10]
        top_bids = sorted(self.bids.items(), reverse=True)[:10]
        checksum = book_checksum(top_asks, top_bids)
        levels = lambda side: [  # noqa: E731
            {"price": _num(BTC.price_text(p)), "qty": _num(BTC.qty_text(q))} for p, q in side
        ]
        item = {
            "symbol": "BTC/USD",
            "bids": levels(sorted(bids.items(), reverse=True)),
            "asks": levels(sorted(asks.items())),
            "checksum": checksum,
            "timestamp": rfc3339(self.now),
        }
        self._push({"channel": "book", "type": kind, "data": [item]})

    def _push(self, frame: dict[str, object]) -> None:
        self.clock.move_to(self.now + 1_000_000)  # each frame a millisecond after the last
        self.market.push(Frame(self.now, orjson.dumps(frame)))


def _num(text: str) -> object:
    """A JSON number written exactly as its text (no float in the frame)."""
    return orjson.Fragment(text.encode())
