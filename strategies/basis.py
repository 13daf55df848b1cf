"""Basis hedge: quote spot, hedge every spot fill on the perpetual (one strategy, both venues).

Run it with ``venue: both`` and two symbols, a spot pair and its perpetual (``class:
basis``, or ``strategies.basis:BasisHedge``; ``config/basis.paper.yaml``). It rests a bid
and an ask of ``size`` on ``spot`` at ``spread_bps`` around the mid (post-only, amended as
the mid moves; only the side that reduces the spot inventory past ``max_inventory``). Each
spot fill leaves the pair's net exposure (spot position plus perpetual position, one
contract being one unit of the base) off zero: it is hedged at once by a market order on
``perp`` for that amount (rounded down to the contract's lot), one hedge in flight at a
time (counted until its fills have all arrived: on Futures an order may show FILLED before
its fill). A hedge refused (``rate_limit``, ``not_ready``...) is tried again on the timer.
Quotes are amended only when the wanted price moved more than ``requote_bps``, and at
most once every ``requote_every_s`` (the venue's rate counters are shared with the hedge).

Both legs or none: it opens new basis (rests spot quotes) only while BOTH venues are ready
(``ctx.venue_ready``), both books are valid and the exposure is hedged. When the Futures
venue goes down it cancels its spot quotes at once, so no new spot fill can come unhedged;
a fill that raced the cancel is hedged when Futures is back (checked every
``hedge_every_s`` and on every book). When spot goes down its quotes there are Kraken's to
cancel (the dead-man's switch) and it opens nothing until spot is back.

Metrics: ``basis_exposure`` (gauge: spot + perpetual position, base units),
``basis_hedges`` (counter).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from bot.strategy import (
    BookSnapshot,
    FillEvent,
    OrderHandle,
    OrderState,
    Params,
    Side,
    Strategy,
    StrategyError,
    ceil_price,
    floor_price,
    floor_qty,
)

__all__ = ["BasisHedge", "BasisParams"]


class BasisParams(Params):
    spot: str = Field(default="BTC/USD", description="the spot pair quoted")
    perp: str = Field(default="PF_XBTUSD", description="the perpetual that hedges it")
    size: Decimal = Field(gt=0, description="base quantity per spot quote")
    spread_bps: Decimal = Field(default=Decimal(5), gt=0, description="quote distance from mid")
    max_inventory: Decimal = Field(gt=0, description="spot position beyond which one side rests")
    requote_bps: Decimal = Field(default=Decimal(1), ge=0, description="amend past this move")
    requote_every_s: float = Field(default=0.5, ge=0, description="least time between amends")
    hedge_every_s: float = Field(default=1.0, gt=0, description="re-check of the exposure")


class BasisHedge(Strategy[BasisParams]):
    def on_start(self) -> None:
        p = self.params
        for symbol in (p.spot, p.perp):
            if symbol not in self.ctx.symbols:
                raise StrategyError(f"{symbol!r} is not one of the strategy's symbols")
        self.quotes: dict[Side, OrderHandle] = {}
        self.hedge: OrderHandle | None = None
        self.hedge_seen = Decimal(0)  # the hedge's fills received (in the position already)
        self.amended_at = float("-inf")
        self.ctx.set_timer("hedge", p.hedge_every_s, repeat=True)

    # -- the state ------------------------------------------------------------------------

    def exposure(self) -> Decimal:
        """Spot position plus perpetual position, with the hedge in flight counted done."""
        p, ctx = self.params, self.ctx
        net = ctx.position(p.spot) + ctx.position(p.perp)
        hedge = self.hedge
        if hedge is not None:
            coming = (hedge.qty if hedge.is_open else hedge.filled) - self.hedge_seen
            net += coming if hedge.side == "buy" else -coming
        return net

    def hedged(self) -> bool:
        return abs(self.exposure()) < self.ctx.instrument(self.params.perp).qty_min

    def can_open(self) -> bool:
        """Both venues ready, both books valid, the exposure hedged: new basis may open."""
        p, ctx = self.params, self.ctx
        books = (ctx.book(p.spot), ctx.book(p.perp))
        return (
            ctx.venue_ready("spot")
            and ctx.venue_ready("futures")
            and all(b is not None and b.valid for b in books)
            and self.hedged()
        )

    # -- handlers -------------------------------------------------------------------------

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        if self.can_open():
            self.requote()
        else:
            self.pull()

    def on_timer(self, name: str) -> None:
        self.rehedge()
        if not self.can_open():
            self.pull()

    def on_book_invalid(self, symbol: str) -> None:
        self.pull()

    def on_fill(self, order: OrderHandle, fill: FillEvent) -> None:
        hedge = self.hedge
        if hedge is not None and order.cl_ord_id == hedge.cl_ord_id:
            self.hedge_seen += fill.qty
            self.settled()
        if fill.symbol == self.params.spot:
            self.rehedge()
        self.ctx.metric("basis_exposure", self.exposure())

    def on_order(self, order: OrderHandle) -> None:
        if order.is_done:
            hedge = self.hedge
            mine = hedge is not None and order.cl_ord_id == hedge.cl_ord_id
            # a hedge partly filled, then cancelled, leaves exposure; refused: the timer
            if mine and self.settled() and order.state != OrderState.REJECTED:
                self.rehedge()
            for side, quote in list(self.quotes.items()):
                if quote.cl_ord_id == order.cl_ord_id:
                    del self.quotes[side]

    # -- actions --------------------------------------------------------------------------

    def settled(self) -> bool:
        """The hedge done and all its fills in the position: none in flight any more."""
        hedge = self.hedge
        if hedge is not None and hedge.is_done and self.hedge_seen >= hedge.filled:
            self.hedge, self.hedge_seen = None, Decimal(0)
        return self.hedge is None

    def rehedge(self) -> None:
        """A market order on the perpetual for the unhedged exposure (one at a time)."""
        p, ctx = self.params, self.ctx
        if not self.settled() or not ctx.venue_ready("futures"):
            return
        net = self.exposure()
        qty = floor_qty(ctx.instrument(p.perp), abs(net))
        if qty < ctx.instrument(p.perp).qty_min:
            return
        side: Side = "sell" if net > 0 else "buy"
        self.hedge = ctx.place(p.perp, side, qty, order_type="market")
        ctx.count("basis_hedges", symbol=p.perp)
        self.log.info("basis_hedge", side=side, qty=str(qty), exposure=str(net))

    def requote(self) -> None:
        p, ctx = self.params, self.ctx
        book = ctx.book(p.spot)
        mid = None if book is None else book.mid()
        if mid is None:
            return
        inst = ctx.instrument(p.spot)
        off = mid * p.spread_bps / 10_000
        inventory = ctx.position(p.spot)
        wanted: dict[Side, Decimal] = {}
        if inventory < p.max_inventory:
            wanted["buy"] = floor_price(inst, mid - off)
        if inventory > -p.max_inventory:
            wanted["sell"] = ceil_price(inst, mid + off)
        may_amend = ctx.monotonic() - self.amended_at >= p.requote_every_s
        for side, quote in list(self.quotes.items()):
            if side not in wanted:
                ctx.cancel(quote)
            elif may_amend and quote.is_live and self.moved(quote.price, wanted[side]):
                ctx.amend(quote, price=wanted[side])
                self.amended_at = ctx.monotonic()
        for side, price in wanted.items():
            if side not in self.quotes:
                self.quotes[side] = ctx.place(p.spot, side, p.size, price, post_only=True)

    def moved(self, price: Decimal | None, wanted: Decimal) -> bool:
        return price is None or abs(price - wanted) > wanted * self.params.requote_bps / 10_000

    def pull(self) -> None:
        """Cancel the spot quotes: no new basis opens."""
        for quote in self.quotes.values():
            self.ctx.cancel(quote)
