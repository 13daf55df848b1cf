"""Market maker: two-sided quotes around the microprice, skewed against inventory.

Load it as ``class: market_maker`` (or ``strategies.market_maker:MarketMaker``). On every
book it computes one bid and one ask around the microprice (the size-weighted mid):

- **spread**: the bid is ``spread_bps / 2`` below the centre, the ask as far above, rounded
  outwards to the tick and never crossing the book (they are post-only by default);
- **size**: each quote is ``size`` (base units), cut so that a fill cannot take the
  strategy's position past ``max_inventory`` either way; at the limit that side is pulled;
- **inventory skew**: the centre moves against the position, by up to ``skew_bps`` at
  ``max_inventory``: long, both quotes drop (sell sooner, buy later), short, they rise;
- **both sides at once**: new quotes (and pulls) of both sides go in one venue call
  (``ctx.batch()``: Kraken's AddOrderBatch, half the rate counter of two AddOrders);
- **amend, not cancel-and-replace**: a live quote is amended in place (keeping its queue
  priority) when its target price moves more than ``requote_bps`` or its size changes;
  quotes not yet acknowledged, or with an amend in flight, are left alone until they are;
- **back off on refusals**: a quote the risk gate or the exchange rejects is not placed
  again on that side for ``reject_backoff_s``, doubling on each further refusal up to
  ``reject_backoff_max_s`` and reset once a quote goes live (so a lack of funds does not
  turn into an AddOrder per book update);
- **pull on danger**: both quotes are canceled when the book is invalid (a feed gap or
  checksum mismatch), and when the mid moved more than ``vol_limit_bps`` (high to low)
  within ``vol_window_s``; quoting resumes ``vol_cooldown_s`` after the spike, once the
  window no longer holds such a move.

Metrics: ``inventory`` (gauge per symbol), ``quotes_placed``, ``quotes_amended``,
``quotes_pulled`` (counters). It cancels its quotes in ``on_stop``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Literal

from pydantic import Field

from bot.strategy import (
    BookSnapshot,
    FillEvent,
    InstrumentInfo,
    OrderHandle,
    OrderState,
    Params,
    PreparedOrder,
    Strategy,
    ceil_price,
    floor_price,
    floor_qty,
)

__all__ = ["MarketMaker", "MarketMakerParams"]

_BPS = Decimal(10_000)


class MarketMakerParams(Params):
    spread_bps: Decimal = Field(gt=0, description="bid-to-ask width around the centre")
    size: Decimal = Field(gt=0, description="base quantity per quote")
    max_inventory: Decimal = Field(gt=0, description="largest position either way")
    skew_bps: Decimal = Field(default=Decimal(10), ge=0, description="centre shift at the limit")
    requote_bps: Decimal = Field(default=Decimal(2), ge=0, description="amend past this move")
    vol_window_s: float = Field(default=5.0, gt=0)
    vol_limit_bps: Decimal = Field(default=Decimal(50), gt=0)
    vol_cooldown_s: float = Field(default=10.0, ge=0)
    post_only: bool = True
    reject_backoff_s: float = Field(default=1.0, gt=0, description="wait after a refusal")
    reject_backoff_max_s: float = Field(default=60.0, gt=0)


Quote = tuple[Decimal, Decimal]  # price, qty


class MarketMaker(Strategy[MarketMakerParams]):
    def on_start(self) -> None:
        self.quotes: dict[tuple[str, str], OrderHandle] = {}
        # The window's candidates for its low and its high (monotonic deques, oldest first).
        self.lows: dict[str, deque[tuple[float, Decimal]]] = {s: deque() for s in self.ctx.symbols}
        self.highs: dict[str, deque[tuple[float, Decimal]]] = {s: deque() for s in self.ctx.symbols}
        self.paused_until: dict[str, float] = {}
        self.invalid: set[str] = set()
        self.retry_at: dict[tuple[str, str], float] = {}
        self.retry_delay: dict[tuple[str, str], float] = {}
        self.held: dict[tuple[str, str], tuple[object, Quote, MarketMakerParams]] = {}
        self.known_targets: dict[str, tuple[object, tuple[Quote | None, Quote | None]]] = {}
        # Each side's order, prepared once per quantity (bot.strategy.prepared): a new
        # quote's fixed parts are not checked again on every placement.
        self.prepared: dict[tuple[str, str], PreparedOrder] = {}

    # -- events ---------------------------------------------------------------------------

    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        if not book.valid:
            self.pull(symbol, "book_invalid")
            return
        self.invalid.discard(symbol)
        mid = book.mid()
        if mid is None:
            self.pull(symbol, "one_sided_book")
            return
        now = self.ctx.monotonic()
        if self.volatile(symbol, now, mid):
            self.paused_until[symbol] = now + self.params.vol_cooldown_s
            self.pull(symbol, "volatility")
            return
        if now < self.paused_until.get(symbol, 0.0):
            return
        self.requote(symbol, book)

    def on_book_invalid(self, symbol: str) -> None:
        self.invalid.add(symbol)
        self.pull(symbol, "book_invalid")

    def on_book_valid(self, symbol: str) -> None:
        self.invalid.discard(symbol)  # quotes come back with the next book

    def on_fill(self, order: OrderHandle, fill: FillEvent) -> None:
        symbol = order.symbol
        self.ctx.metric("inventory", self.ctx.position(symbol), symbol=symbol)
        book = self.ctx.book(symbol)
        paused = self.ctx.monotonic() < self.paused_until.get(symbol, 0.0)
        if book is not None and book.valid and symbol not in self.invalid and not paused:
            self.requote(symbol, book)  # the skew moved with the inventory

    def on_order(self, order: OrderHandle) -> None:
        key = (order.symbol, order.side)
        if order.state is OrderState.REJECTED and self.quotes.get(key) is order:
            del self.quotes[key]
            self.back_off(key, self.ctx.monotonic(), order.reason)

    def on_stop(self) -> None:
        self.ctx.cancel_all()

    # -- logic --------------------------------------------------------------------------

    def volatile(self, symbol: str, now: float, mid: Decimal) -> bool:
        """Record ``mid``; True if the mids within the window span more than the limit.

        The window's low and high are kept as they change (a mid that a later, lower one
        can never outlast as the low is dropped at once; so for the high): constant time
        per book, however many books the window holds."""
        lows, highs = self.lows[symbol], self.highs[symbol]
        while lows and lows[-1][1] >= mid:
            lows.pop()
        lows.append((now, mid))
        while highs and highs[-1][1] <= mid:
            highs.pop()
        highs.append((now, mid))
        cutoff = now - self.params.vol_window_s
        while lows[0][0] < cutoff:
            lows.popleft()
        while highs[0][0] < cutoff:
            highs.popleft()
        low, high = lows[0][1], highs[0][1]
        return (high - low) / low * _BPS > self.params.vol_limit_bps

    def targets(self, symbol: str, book: BookSnapshot) -> tuple[Quote | None, Quote | None]:
        """The bid and the ask this book and the inventory call for (None: no quote).

        They depend only on the params, the instrument, the best bid and ask and the
        inventory (its exact Decimal, exponent included), so the last answer per symbol is
        kept and made again only when one of those changed: most books change a deeper
        level only."""
        p, inst, view = self.params, self.ctx.instrument(symbol), book.view
        inventory = self.ctx.position(symbol)
        key = (p, inst, view.price_precision, view.bids[:1], view.asks[:1], str(inventory))
        known = self.known_targets.get(symbol)
        if known is not None and known[0] == key:
            return known[1]
        answer = self._targets(p, inst, book, inventory)
        self.known_targets[symbol] = (key, answer)
        return answer

    def _targets(
        self, p: MarketMakerParams, inst: InstrumentInfo, book: BookSnapshot, inventory: Decimal
    ) -> tuple[Quote | None, Quote | None]:
        micro, best_bid, best_ask = book.microprice(), book.best_bid(), book.best_ask()
        if micro is None or best_bid is None or best_ask is None:
            return None, None
        ratio = max(min(inventory / p.max_inventory, Decimal(1)), Decimal(-1))
        centre = micro * (1 - p.skew_bps / _BPS * ratio)
        half = p.spread_bps / 2 / _BPS
        tick = inst.price_increment
        bid = min(floor_price(inst, centre * (1 - half)), best_ask.price - tick)
        ask = max(ceil_price(inst, centre * (1 + half)), best_bid.price + tick)
        least = max(inst.qty_min, inst.qty_increment)
        bid_qty = floor_qty(inst, min(p.size, p.max_inventory - inventory))
        ask_qty = floor_qty(inst, min(p.size, p.max_inventory + inventory))
        return (
            (bid, bid_qty) if bid_qty >= least and bid > 0 else None,
            (ask, ask_qty) if ask_qty >= least else None,
        )

    def requote(self, symbol: str, book: BookSnapshot) -> None:
        bid, ask = self.targets(symbol, book)
        with self.ctx.batch():  # new quotes on both sides: one venue call
            self.quote(symbol, "buy", bid)
            self.quote(symbol, "sell", ask)

    def quote(self, symbol: str, side: Literal["buy", "sell"], target: Quote | None) -> None:
        """Bring one side's quote to ``target``: place, amend, cancel, or wait."""
        key = (symbol, side)
        order = self.quotes.get(key)
        now = self.ctx.monotonic()
        if order is not None and order.is_done:
            del self.quotes[key]
            order = None
        if target is None:
            if order is not None:
                self.ctx.cancel(order)
            return
        price, qty = target
        if order is None:
            if now < self.retry_at.get(key, 0.0):
                return
            self.quotes[key] = self.order_for(symbol, side, qty).place(price)
            self.ctx.count("quotes_placed", symbol=symbol)
            return
        if not order.is_live or order.price is None:
            return  # not acknowledged yet, or a cancel or amend in flight: wait for it
        self.retry_delay.pop(key, None)
        record, params = order.order, self.params
        held = self.held.get(key)  # this very order state already matched this target
        if held is not None and held[0] is record and held[1] == target and held[2] is params:
            return
        moved = abs(order.price - price) / price * _BPS > params.requote_bps
        resized = order.remaining != qty
        if not (moved or resized):
            self.held[key] = (record, target, params)
        else:
            new_price = price if moved else None
            new_qty = order.filled + qty if resized else None
            if self.ctx.amend(order, price=new_price, qty=new_qty):
                self.ctx.count("quotes_amended", symbol=symbol)

    def order_for(self, symbol: str, side: Literal["buy", "sell"], qty: Decimal) -> PreparedOrder:
        """One side's order prepared for ``qty`` (made again when the quantity, to its last
        digit, or ``post_only`` changed): its ``place`` is ``ctx.place``'s."""
        key, post_only = (symbol, side), self.params.post_only
        prepared = self.prepared.get(key)
        if (
            prepared is None
            or prepared.post_only != post_only
            or prepared.qty.as_tuple() != qty.as_tuple()
        ):
            prepared = PreparedOrder(self.ctx, symbol, side, qty, post_only=post_only)
            self.prepared[key] = prepared
        return prepared

    def back_off(self, key: tuple[str, str], now: float, reason: str) -> None:
        """A quote was refused: wait before placing that side again, longer each time."""
        delay = self.retry_delay.get(key)
        p = self.params
        delay = p.reject_backoff_s if delay is None else min(delay * 2, p.reject_backoff_max_s)
        self.retry_delay[key] = delay
        self.retry_at[key] = now + delay
        self.log.warning("quote_rejected", symbol=key[0], side=key[1], reason=reason, retry_s=delay)

    def pull(self, symbol: str, why: str) -> None:
        """Cancel both quotes of ``symbol``."""
        pulled = 0
        with self.ctx.batch():  # both cancels in one venue call
            for side in ("buy", "sell"):
                order = self.quotes.get((symbol, side))
                if order is not None and self.ctx.cancel(order):
                    pulled += 1
        if pulled:
            self.ctx.count("quotes_pulled", pulled, symbol=symbol)
            self.log.info("quotes_pulled", symbol=symbol, reason=why)
