"""Order entry on the simulator's private WebSocket v2: the trading methods.

``cancel_all_orders_after`` (``currentTime``/``triggerTime`` from the venue's dead-man's
switch), ``add_order``, ``amend_order``, ``edit_order``, ``cancel_order``, ``cancel_all``,
``batch_add`` and ``batch_cancel`` go through the venue's order entry: the same checks,
errors, trading counter and system status as REST (pages under
https://docs.kraken.com/api/docs/websocket-v2/). A connection's own ``add_order`` and
``batch_add`` answers are sent before the execution reports they caused. Quantities and
prices are read exactly (``codec.loads_exact``) and scaled by the pair's precisions; a
price with too many decimals gets REST's ``EOrder:Invalid price`` error.

Faults (``bot.sim.faults``, matched on the method as ``endpoint``), as REST's: a
``ws_order_error`` refuses the request with its ``error`` before anything is done; a
``ws_order_delay`` executes it at once and sends its answer (and the frames it caused)
``delay_s`` later on the venue's clock; a ``ws_lose_ack`` executes it and drops the
connection before the answer leaves.

This module owns the methods (``OrderMethods``, a base of ``ws_private.PrivateSession``);
the checks are the venue's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any, Final

from bot.core.errors import ExchangeError, ProtocolError
from bot.kraken.codec import loads_exact
from bot.kraken.instruments import Instrument, to_scaled
from bot.sim.error_table import price_decimals
from bot.sim.faults import FaultKind
from bot.sim.matching import OrderRequest, OrderState
from bot.sim.ws_auth import ERR_ARGS, AuthSession

__all__ = ["ORDER_METHODS", "OrderMethods"]

ORDER_METHODS: Final = (
    "cancel_all_orders_after",
    "add_order",
    "amend_order",
    "cancel_order",
    "cancel_all",
    "batch_add",
    "batch_cancel",
    "edit_order",
)
_EXACT: Final = frozenset({"add_order", "amend_order", "batch_add", "edit_order"})
_TIF: Final = {"gtc": "GTC", "gtd": "GTD", "ioc": "IOC", "fok": "FOK"}
_STP: Final = {
    "cancel_newest": "cancel-newest",
    "cancel_oldest": "cancel-oldest",
    "cancel_both": "cancel-both",
}


class OrderMethods(AuthSession):
    """The order methods of an authenticated connection (see the module docstring)."""

    _delayed: set[asyncio.Task[None]] | None = None

    def order_method(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> None:
        """Answer one of ``ORDER_METHODS`` (``raw``: the request's text), faults applied."""
        faults = self.venue.faults
        refuse = faults.take(FaultKind.WS_ORDER_ERROR, method, private=True)
        if refuse is not None:
            self.fail(method, refuse.spec.error or "EService:Unavailable", req_id, time_in)
            return
        delay = faults.take(FaultKind.WS_ORDER_DELAY, method, private=True)
        lose = faults.take(FaultKind.WS_LOSE_ACK, method, private=True)
        queue = self._queue
        mark = len(queue)
        self._answer(method, params, req_id, time_in, raw)
        if lose is not None:  # executed; the answer never leaves
            self.closed = True
            queue.clear()
            self._abort()
            return
        if delay is not None:
            frames = [queue.pop() for _ in range(len(queue) - mark)][::-1]
            self._send_later(frames, delay.spec.delay_s)

    def _send_later(self, frames: list[bytes], delay_s: float) -> None:
        async def later() -> None:
            await self.clock.sleep(delay_s)
            for frame in frames:
                self.send(frame)

        if self._delayed is None:
            self._delayed = set()
        task = asyncio.get_running_loop().create_task(later())
        self._delayed.add(task)
        task.add_done_callback(self._delayed.discard)

    def cancel_delayed(self) -> None:
        """The connection ended: answers still held back are never sent."""
        for task in list(self._delayed or ()):
            task.cancel()

    def _answer(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str, raw: str
    ) -> None:
        if method in _EXACT:
            # Quantities and prices must arrive exactly: decode the request's text again.
            try:
                params = loads_exact(raw).get("params", {})
            except ProtocolError:
                self.fail(method, ERR_ARGS, req_id, time_in)
                return
        handler = {
            "cancel_all_orders_after": self._cancel_after,
            "add_order": self._add_order,
            "amend_order": self._amend_order,
            "cancel_order": self._cancel_order,
            "cancel_all": self._cancel_all,
            "batch_add": self._batch_add,
            "batch_cancel": self._batch_cancel,
            "edit_order": self._edit_order,
        }[method]
        handler(params, req_id, time_in)

    def _cancel_after(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "cancel_all_orders_after"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        timeout = params.get("timeout")
        if type(timeout) is not int:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        try:
            current, trigger = self.venue.cancel_all_after(account, timeout)
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        self.ack(method, {"currentTime": current, "triggerTime": trigger}, req_id, time_in)

    def _add_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "add_order"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        try:
            req = self._order_request(params)
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        # Reports the order causes on this connection follow the answer, as Kraken's do.
        held: list[bytes] = []
        self._held = held
        try:
            result = self.venue.place_order(account, req)
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            result = None
        finally:
            self._held = None
        if result is not None:
            out: dict[str, Any] = {"order_id": result.order.txid if result.order else ""}
            if req.cl_ord_id is not None:
                out["cl_ord_id"] = req.cl_ord_id
            if req.userref is not None:
                out["order_userref"] = req.userref
            self.ack(method, out, req_id, time_in)
        for frame in held:
            self.send(frame)

    def _amend_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "amend_order"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        order_id = params.get("order_id")
        cl_ord_id = params.get("cl_ord_id")
        if (order_id is None) == (cl_ord_id is None):
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        found = (
            self.venue.exchange.order(account, order_id)
            if type(order_id) is str
            else self.venue.exchange.order_by_cl_ord_id(account, str(cl_ord_id))
        )
        if found is None:
            self.fail(method, "EOrder:Unknown order", req_id, time_in)
            return
        inst = self.venue.instruments[found.symbol]
        try:
            qty = params.get("order_qty")
            price = params.get("limit_price")
            new_qty = None if qty is None else _scaled(qty, inst.qty_precision, "order_qty")
            new_price = None if price is None else _ws_price(price, inst)
            result = self.venue.amend_order(
                account,
                txid=order_id if type(order_id) is str else None,
                cl_ord_id=cl_ord_id if type(cl_ord_id) is str else None,
                order_qty=new_qty,
                limit_price=new_price,
                post_only=params.get("post_only") is True,
            )
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        out: dict[str, Any] = {"amend_id": self.venue.new_id("T")}
        if result.order is not None:
            out["order_id"] = result.order.txid
            if result.order.cl_ord_id is not None:
                out["cl_ord_id"] = result.order.cl_ord_id
        self.ack(method, out, req_id, time_in)

    def _cancel_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "cancel_order"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        given = [
            (key, params[key])
            for key in ("order_id", "cl_ord_id", "order_userref")
            if params.get(key) is not None
        ]
        if len(given) != 1 or type(given[0][1]) is not list or not given[0][1]:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        key, values = given[0]
        for value in values:
            result: dict[str, Any] = {key: value}
            try:
                if key == "order_id":
                    self.venue.cancel_order(account, txid=str(value))
                elif key == "cl_ord_id":
                    self.venue.cancel_order(account, cl_ord_id=str(value))
                elif type(value) is int:
                    self.venue.cancel_order(account, userref=value)
                else:
                    self.fail(method, ERR_ARGS, req_id, time_in, result=result)
                    continue
            except ExchangeError as exc:
                self.fail(method, exc.code, req_id, time_in, result=result)
                continue
            self.ack(method, result, req_id, time_in)

    def _batch_add(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        """``batch_add``: 2-15 orders on one ``symbol``, validated as a whole, as AddOrderBatch."""
        method = "batch_add"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        orders = params.get("orders")
        symbol = params.get("symbol")
        if type(orders) is not list or not 2 <= len(orders) <= 15 or type(symbol) is not str:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        try:
            reqs = [self._order_request({**o, "symbol": symbol}) for o in orders]
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except (ExchangeError, TypeError) as exc:
            code = exc.code if isinstance(exc, ExchangeError) else ERR_ARGS
            self.fail(method, code, req_id, time_in)
            return
        held: list[bytes] = []
        self._held = held
        try:
            results = self.venue.place_batch(
                account, reqs[0].symbol, reqs, validate=params.get("validate") is True
            )
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            results = None
        finally:
            self._held = None
        if results is not None:
            out: list[dict[str, Any]] = []
            for req, res in zip(reqs, results, strict=True):
                if isinstance(res, ExchangeError):
                    out.append({"error": res.code})
                    continue
                entry: dict[str, Any] = {"order_id": res.order.txid if res.order else ""}
                if req.cl_ord_id is not None:
                    entry["cl_ord_id"] = req.cl_ord_id
                if req.userref is not None:
                    entry["order_userref"] = req.userref
                out.append(entry)
            self.ack_list(method, out, req_id, time_in)
        for frame in held:
            self.send(frame)

    def _batch_cancel(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        """``batch_cancel``: ``orders`` (order ids or userrefs, required: "array of string
        required" in Kraken's docs) and ``cl_ord_id`` (an optional list), 2-50 in all, as
        CancelOrderBatch (unknown ids are skipped; ``count`` tells)."""
        method = "batch_cancel"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        refs = params.get("orders")
        cl_ids = params.get("cl_ord_id") or []
        if not refs or type(refs) is not list:
            self.fail(method, f"{ERR_ARGS}:orders", req_id, time_in)
            return
        if type(cl_ids) is not list or not 2 <= len(refs) + len(cl_ids) <= 50:
            self.fail(method, ERR_ARGS, req_id, time_in)
            return
        chosen: dict[str, OrderState] = {}
        for order in self.venue.exchange.open_orders(account):
            if (
                order.txid in refs
                or (order.userref is not None and order.userref in refs)
                or (order.cl_ord_id is not None and order.cl_ord_id in cl_ids)
            ):
                chosen[order.txid] = order
        try:
            count = self.venue.cancel_batch(account, list(chosen.values()))
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        self.ack(method, {"count": count}, req_id, time_in)

    def _edit_order(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        """``edit_order``: cancel-and-replace, as REST EditOrder (a new order id)."""
        method = "edit_order"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        order_id = params.get("order_id")
        symbol = params.get("symbol")
        found = self.venue.exchange.order(account, order_id) if type(order_id) is str else None
        if found is None or found.status not in ("pending", "open"):
            self.fail(method, "EOrder:Unknown order", req_id, time_in)
            return
        if symbol != found.symbol:
            self.fail(method, f"{ERR_ARGS}:symbol", req_id, time_in)
            return
        inst = self.venue.instruments[found.symbol]
        qty, price, userref = (params.get(k) for k in ("order_qty", "limit_price", "order_userref"))
        if userref is not None and type(userref) is not int:
            self.fail(method, f"{ERR_ARGS}:order_userref", req_id, time_in)
            return
        try:
            _, placed = self.venue.edit_order(
                account,
                found,
                qty=None if qty is None else _scaled(qty, inst.qty_precision, "order_qty"),
                price=None if price is None else _ws_price(price, inst),
                post_only=params.get("post_only")
                if type(params.get("post_only")) is bool
                else None,
                userref=userref,
                validate=params.get("validate") is True,
            )
        except ProtocolError as exc:
            self.fail(method, str(exc), req_id, time_in)
            return
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        out = {"order_id": placed.order.txid if placed.order else "", "original_order_id": order_id}
        self.ack(method, out, req_id, time_in)

    def _cancel_all(self, params: dict[str, Any], req_id: int | None, time_in: str) -> None:
        method = "cancel_all"
        account = self.account_of(method, params, req_id, time_in)
        if account is None:
            return
        try:
            result = self.venue.cancel_all(account)
        except ExchangeError as exc:
            self.fail(method, exc.code, req_id, time_in)
            return
        self.ack(method, {"count": result.count}, req_id, time_in)

    def _order_request(self, params: dict[str, Any]) -> OrderRequest:
        symbol = params.get("symbol")
        inst = self.venue.instruments.lookup(symbol) if type(symbol) is str else None
        if inst is None or inst.symbol != symbol:
            raise ProtocolError("EQuery:Unknown asset pair")
        qty = params.get("order_qty")
        price = params.get("limit_price")
        tif = params.get("time_in_force", "gtc")
        expire = params.get("expire_time")
        cl_ord_id = params.get("cl_ord_id")
        userref = params.get("order_userref")
        scaled_qty = _scaled(qty, inst.qty_precision, "order_qty")
        scaled_price = None if price is None else _ws_price(price, inst)
        expire_at = None
        if expire is not None:
            try:
                expire_at = int(dt.datetime.fromisoformat(str(expire)).timestamp()) * 10**9
            except ValueError:
                raise ProtocolError(f"{ERR_ARGS}:expire_time") from None
        if type(tif) is not str or tif.lower() not in _TIF:
            raise ProtocolError(f"{ERR_ARGS}:time_in_force")
        if cl_ord_id is not None and type(cl_ord_id) is not str:
            raise ProtocolError(f"{ERR_ARGS}:cl_ord_id")
        if userref is not None and type(userref) is not int:
            raise ProtocolError(f"{ERR_ARGS}:order_userref")
        stp = _STP.get(str(params.get("stp_type", "cancel_newest")))
        if stp is None:
            raise ProtocolError(f"{ERR_ARGS}:stp_type")
        return OrderRequest(
            symbol=inst.symbol,
            side=str(params.get("side")),
            ord_type=str(params.get("order_type")),
            qty=scaled_qty,
            price=scaled_price,
            time_in_force=_TIF[tif.lower()],
            expire_at=expire_at,
            post_only=params.get("post_only") is True,
            fee_in_base=_fee_in_base(params),
            cl_ord_id=cl_ord_id,
            userref=userref,
            stptype=stp,
            validate=params.get("validate") is True,
        )


def _ws_price(value: Any, inst: Instrument) -> int:
    """``limit_price``, with REST's error for too many decimals."""
    if isinstance(value, Decimal) and value.is_finite():
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > inst.price_precision:
            raise price_decimals(inst)
    return _scaled(value, inst.price_precision, "limit_price")


def _scaled(value: Any, precision: int, name: str) -> int:
    """A request's number as a scaled int, or Kraken's argument error naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ProtocolError(f"{ERR_ARGS}:{name}")
    try:
        return to_scaled(value, precision)
    except ProtocolError:
        raise ProtocolError(f"{ERR_ARGS}:{name}") from None


def _fee_in_base(params: dict[str, Any]) -> bool:
    """``fee_preference``: ``base`` or ``quote``; unset, Kraken's default: "quote is the
    default for buy orders, base is the default for sell orders" (KRAKEN.md §8.3)."""
    preference: object = params.get("fee_preference")
    if preference is None:
        return params.get("side") == "sell"
    if preference not in ("base", "quote"):
        raise ProtocolError(f"{ERR_ARGS}:fee_preference")
    return preference == "base"
