"""Order entry at the simulated venue: the checks Kraken makes around its matching engine.

``OrderEntry`` is the part of ``SimVenue`` (a mixin) that REST and WebSocket order methods
share: the engine must be running (else ``EService:Unavailable``), the system status must
let the request in (``cancel_only``: cancels only, ``EService:Market in cancel_only mode``;
``post_only``: post-only limit orders only; ``limit_only``: no market order), each request
is charged on the account's per-pair trading counter as Kraken counts it (KRAKEN.md §2.2:
add +1, amend +1 and cancel by the order's age since it was placed or last amended, batch
+n/2, cancel-all +1 per pair with orders, dead-man's switch +1 account-wide), else
``EOrder:Rate limit exceeded``; then the exchange call runs through ``execute``, which
publishes its ``Result`` on the bus. It also keeps the dead-man's switch timers
(``cancel_all_after``): when one fires, all the account's orders are cancelled and the
timer stays off until it is armed again.

This module owns those rules and their state; the venue owns everything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

import structlog

from bot.core.clock import Clock
from bot.core.errors import ExchangeError, RateLimitError, RejectedError, TransientError
from bot.kraken.instruments import InstrumentTable
from bot.sim.bus import Bus
from bot.sim.exchange import Exchange
from bot.sim.limits import NO_PAIR, Cost, TradingCounter
from bot.sim.matching import OrderRequest, OrderState, Result
from bot.sim.rest_format import rfc3339

__all__ = [
    "CANCEL_ONLY",
    "ERR_CANCEL_ONLY",
    "ERR_LIMIT_ONLY",
    "ERR_ORDER_RATE",
    "ERR_POST_ONLY",
    "ERR_UNAVAILABLE",
    "LIMIT_ONLY",
    "MAINTENANCE",
    "MAX_CANCEL_AFTER_S",
    "ONLINE",
    "POST_ONLY",
    "REASON_DEADMAN",
    "SYSTEM_STATUSES",
    "OrderEntry",
]

log = structlog.get_logger("sim.venue")

ERR_UNAVAILABLE: Final = "EService:Unavailable"
ERR_ORDER_RATE: Final = "EOrder:Rate limit exceeded"
ERR_CANCEL_ONLY: Final = "EService:Market in cancel_only mode"
ERR_POST_ONLY: Final = "EService:Market in post_only mode"
ERR_LIMIT_ONLY: Final = "EService:Market in limit_only mode"
ONLINE: Final = "online"
MAINTENANCE: Final = "maintenance"
CANCEL_ONLY: Final = "cancel_only"
POST_ONLY: Final = "post_only"
LIMIT_ONLY: Final = "limit_only"
SYSTEM_STATUSES: Final = (ONLINE, MAINTENANCE, CANCEL_ONLY, POST_ONLY, LIMIT_ONLY)
"""Kraken's system states (SystemStatus, the WS v2 ``status`` channel)."""
REASON_DEADMAN: Final = "Dead man's switch"
REASON_EDIT: Final = "Order replaced"
MAX_CANCEL_AFTER_S: Final = 86400


class OrderEntry:
    """Order entry, trading counters and dead-man timers (mixed into ``SimVenue``)."""

    clock: Clock
    exchange: Exchange
    instruments: InstrumentTable
    bus: Bus
    paused: bool
    mode: str  # the system status while the engine runs: online, cancel_only, post_only, ...
    rate_limits: bool
    _trading: dict[str, TradingCounter]
    _deadman: dict[str, tuple[float, int]]  # account -> (monotonic due, wall ns)
    _touched: dict[str, tuple[str, float]]  # txid -> (account, monotonic)

    def _init_order_entry(self) -> None:
        self._trading = {}
        self._deadman = {}
        self._touched = {}

    def now_ns(self) -> int:
        return self.clock.time_ns()

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def execute(self, fn: Callable[[], Result]) -> Result:
        """Run one exchange call and publish its ``Result`` (use it for every mutation)."""
        result = fn()
        self.bus.publish(result)
        return result

    # ------------------------------------------------------------------ order entry
    def _require_running(self) -> None:
        if self.paused:
            raise TransientError(ERR_UNAVAILABLE, "matching engine paused")

    def _require_new_order(self, req: OrderRequest) -> None:
        """What the system status lets in: nothing new in ``cancel_only``, post-only limit
        orders only in ``post_only``, no market order in ``limit_only``."""
        self._require_running()
        mode = self.mode
        if mode == CANCEL_ONLY:
            raise RejectedError(ERR_CANCEL_ONLY, "new orders are refused")
        if mode == POST_ONLY and not (req.ord_type == "limit" and req.post_only):
            raise RejectedError(ERR_POST_ONLY, "only post-only limit orders are accepted")
        if mode == LIMIT_ONLY and req.ord_type != "limit":
            raise RejectedError(ERR_LIMIT_ONLY, "only limit orders are accepted")

    def _require_amend(self, order: OrderState | None, limit_price: int | None) -> None:
        """An amend changes a resting order: refused in ``cancel_only``, and in ``post_only``
        when its new price would take liquidity."""
        self._require_running()
        if self.mode == CANCEL_ONLY:
            raise RejectedError(ERR_CANCEL_ONLY, "amends are refused")
        if self.mode == POST_ONLY and order is not None and limit_price is not None:
            side = "buy" if order.side == "buy" else "sell"
            if self.exchange.book(order.symbol).crosses(side, limit_price):
                raise RejectedError(ERR_POST_ONLY, "the amended price would take liquidity")

    def trading_allowed(self, account: str, pair: str | None, cost: Cost) -> str | None:
        """Charge ``cost`` on ``account``'s ``pair`` counter; None if it fits, else Kraken's
        error (the fixed part is charged either way, as Kraken does)."""
        if not self.rate_limits:
            return None
        key = self._pair_key(pair)
        ok = self._trading[account].try_charge(key, cost, self.monotonic())
        return None if ok else ERR_ORDER_RATE

    def _charge(self, account: str, pair: str | None, cost: Cost) -> None:
        error = self.trading_allowed(account, pair, cost)
        if error is not None:
            raise RateLimitError(error, pair or "account")

    def _pair_key(self, pair: str | None) -> str:
        if pair is None:
            return NO_PAIR
        inst = self.instruments.lookup(pair)
        return inst.symbol if inst is not None else pair

    def order_age_s(self, account: str, order: OrderState) -> float:
        """Seconds since ``order`` was placed or last amended (for cancel/amend penalties)."""
        touched = self._touched.get(order.txid)
        if touched is not None:
            return self.monotonic() - touched[1]
        return (self.now_ns() - order.opentm) / 1e9

    def _touch(self, account: str, result: Result) -> None:
        order = result.order
        if order is not None and order.status in ("pending", "open"):
            self._touched[order.txid] = (account, self.monotonic())

    def place_order(self, account: str, req: OrderRequest) -> Result:
        """AddOrder (REST or WS): running check, trading counter +1, then the exchange."""
        self._require_new_order(req)
        self._charge(account, req.symbol, TradingCounter.add())
        result = self.execute(lambda: self.exchange.add_order(account, req, self.now_ns()))
        self._touch(account, result)
        return result

    def place_batch(
        self, account: str, symbol: str, reqs: Sequence[OrderRequest], *, validate: bool = False
    ) -> list[Result | ExchangeError]:
        """AddOrderBatch: the whole batch is validated first (one bad order rejects it all),
        then each order is placed; an order that fails on placement reports its error."""
        for req in reqs:
            self._require_new_order(req)
        if self.rate_limits:
            cost = TradingCounter.batch_add(len(reqs))
            if not self._trading[account].try_charge(
                self._pair_key(symbol), cost, self.monotonic(), batch=True
            ):
                raise RateLimitError(ERR_ORDER_RATE, symbol)
        now = self.now_ns()

        def add(req: OrderRequest) -> Result:
            return self.execute(lambda: self.exchange.add_order(account, req, now))

        for req in reqs:
            add(dataclasses.replace(req, validate=True))
        if validate:
            return [Result() for _ in reqs]
        out: list[Result | ExchangeError] = []
        for req in reqs:
            try:
                result = add(req)
            except ExchangeError as exc:
                out.append(exc)
                continue
            self._touch(account, result)
            out.append(result)
        return out

    def amend_order(
        self,
        account: str,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        order_qty: int | None = None,
        limit_price: int | None = None,
        post_only: bool = False,
    ) -> Result:
        """AmendOrder: charged +1 plus the age penalty on the order's pair."""
        self._require_running()
        order = self._lookup_open(account, txid, cl_ord_id, "EOrder:Unknown order")
        self._require_amend(order, limit_price)
        if order is not None:
            age = self.order_age_s(account, order)
            self._charge(account, order.symbol, TradingCounter.amend(age))
        result = self.execute(
            lambda: self.exchange.amend_order(
                account,
                self.now_ns(),
                txid=txid,
                cl_ord_id=cl_ord_id,
                order_qty=order_qty,
                limit_price=limit_price,
                post_only=post_only,
            )
        )
        self._touch(account, result)
        return result

    def cancel_order(
        self,
        account: str,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        userref: int | None = None,
    ) -> Result:
        """CancelOrder: charged the age penalty of each order it cancels, per pair."""
        self._require_running()
        if userref is not None and txid is None and cl_ord_id is None:
            targets = [o for o in self.exchange.open_orders(account) if o.userref == userref]
        else:
            found = self._lookup_open(account, txid, cl_ord_id, "EOrder:Unknown order")
            targets = [found] if found is not None else []
        costs: dict[str, Cost] = {}
        for order in targets:
            cost = TradingCounter.cancel(self.order_age_s(account, order))
            costs[order.symbol] = costs.get(order.symbol, Cost()) + cost
        for symbol, cost in costs.items():
            self._charge(account, symbol, cost)
        result = self.execute(
            lambda: self.exchange.cancel_order(
                account, self.now_ns(), txid=txid, cl_ord_id=cl_ord_id, userref=userref
            )
        )
        for order in targets:
            self._touched.pop(order.txid, None)
        return result

    def edit_order(
        self,
        account: str,
        order: OrderState,
        *,
        qty: int | None = None,
        price: int | None = None,
        post_only: bool | None = None,
        userref: int | None = None,
        validate: bool = False,
    ) -> tuple[Result, Result]:
        """EditOrder (Kraken's cancel-and-replace): charged +1 plus the edit age penalty;
        the order is cancelled and a new one placed with the changes (a new txid, the back
        of the queue, no ``cl_ord_id``: Kraken's EditOrder does not carry it). Returns the
        cancel's and the new order's ``Result``. The new order is validated first, so a
        refused edit leaves the old order untouched."""
        req = OrderRequest(
            symbol=order.symbol,
            side=order.side,
            ord_type=order.ord_type,
            qty=order.qty if qty is None else qty,
            price=order.price if price is None else price,
            time_in_force=order.time_in_force,
            expire_at=order.expire_at,
            post_only=order.post_only if post_only is None else post_only,
            fee_in_base=order.fee_in_base,
            userref=order.userref if userref is None else userref,
            stptype=order.stptype,
            validate=True,
        )
        self._require_new_order(req)
        self._charge(account, order.symbol, TradingCounter.edit(self.order_age_s(account, order)))
        now = self.now_ns()
        self.execute(lambda: self.exchange.add_order(account, req, now))  # raises if refused
        if validate:
            return Result(), Result()
        cancelled = self.execute(
            lambda: self.exchange.cancel_order(account, now, txid=order.txid, reason=REASON_EDIT)
        )
        self._touched.pop(order.txid, None)
        placed = self.execute(
            lambda: self.exchange.add_order(account, dataclasses.replace(req, validate=False), now)
        )
        self._touch(account, placed)
        return cancelled, placed

    def cancel_batch(self, account: str, orders: Sequence[OrderState]) -> int:
        """CancelOrderBatch / WS ``batch_cancel``: charged the age penalty of every order on
        its pair, with Kraken's batch rule (accepted unless a counter is already full)."""
        self._require_running()
        costs: dict[str, Cost] = {}
        for order in orders:
            cost = TradingCounter.cancel(self.order_age_s(account, order))
            costs[order.symbol] = costs.get(order.symbol, Cost()) + cost
        if self.rate_limits:
            counter = self._trading[account]
            for symbol, cost in costs.items():
                key = self._pair_key(symbol)
                if not counter.try_charge(key, cost, self.monotonic(), batch=True):
                    raise RateLimitError(ERR_ORDER_RATE, symbol)
        now = self.now_ns()
        count = 0
        for order in orders:
            count += self.execute(
                partial(self.exchange.cancel_order, account, now, txid=order.txid)
            ).count
            self._touched.pop(order.txid, None)
        return count

    def cancel_all(self, account: str, reason: str | None = None) -> Result:
        """CancelAll: +1 on the trading counter of each pair that had orders (never refused)."""
        self._require_running()
        return self._cancel_all(account, reason)

    def _cancel_all(self, account: str, reason: str | None) -> Result:
        open_orders = self.exchange.open_orders(account)
        if self.rate_limits:
            counter = self._trading[account]
            for symbol in {o.symbol for o in open_orders}:
                counter.charge(symbol, TradingCounter.cancel_all(), self.monotonic())
        now = self.now_ns()
        if reason is None:
            result = self.execute(lambda: self.exchange.cancel_all(account, now))
        else:
            result = self.execute(lambda: self.exchange.cancel_all(account, now, reason))
        for order in open_orders:
            self._touched.pop(order.txid, None)
        return result

    def cancel_all_after(self, account: str, timeout_s: int) -> tuple[str, str]:
        """Arm (or with 0 disarm) ``account``'s dead-man's switch. Returns Kraken's
        ``(currentTime, triggerTime)`` in RFC3339; ``triggerTime`` is ``"0"`` when disarmed."""
        self._require_running()
        if isinstance(timeout_s, bool) or not 0 <= timeout_s < MAX_CANCEL_AFTER_S:
            raise RejectedError("EGeneral:Invalid arguments:timeout", str(timeout_s))
        if self.rate_limits:
            self._trading[account].charge(NO_PAIR, TradingCounter.cancel_after(), self.monotonic())
        now = self.now_ns()
        current = rfc3339(now)
        if timeout_s == 0:
            if self._deadman.pop(account, None) is not None:
                log.info("deadman_disarmed", account=account)
            return current, "0"
        trigger_ns = now + timeout_s * 1_000_000_000
        self._deadman[account] = (self.monotonic() + timeout_s, trigger_ns)
        return current, rfc3339(trigger_ns)

    def deadman_trigger(self, account: str) -> int | None:
        """When ``account``'s armed timer fires (wall ns), or None if disarmed."""
        armed = self._deadman.get(account)
        return armed[1] if armed is not None else None

    def _lookup_open(
        self, account: str, txid: str | None, cl_ord_id: str | None, missing: str
    ) -> OrderState | None:
        if txid is not None and cl_ord_id is None:
            order = self.exchange.order(account, txid)
        elif cl_ord_id is not None and txid is None:
            order = self.exchange.order_by_cl_ord_id(account, cl_ord_id)
        else:
            return None  # the exchange reports the argument error
        if order is None or order.status not in ("pending", "open"):
            raise RejectedError(missing, txid or cl_ord_id or "")
        return order

    def fire_deadman(self) -> None:
        """Cancel every order of each account whose timer is due; the timer stays off."""
        now = self.monotonic()
        for account, (due, _) in list(self._deadman.items()):
            if due <= now:
                del self._deadman[account]
                result = self._cancel_all(account, REASON_DEADMAN)
                log.warning("deadman_fired", account=account, cancelled=result.count)

    def prune_order_entry(self) -> None:
        """Forget the ages of closed orders and counters that decayed to zero."""
        for txid, (account, _) in list(self._touched.items()):
            order = self.exchange.order(account, txid)
            if order is None or order.status not in ("pending", "open"):
                del self._touched[txid]
        for counter in self._trading.values():
            counter.prune(self.monotonic())
