"""The simulator's order-entry REST methods, from Kraken's parameters to Kraken's answers.

``AddOrder``, ``AddOrderBatch``, ``AmendOrder``, ``EditOrder``, ``CancelOrder``,
``CancelOrderBatch``, ``CancelAll`` and ``CancelAllOrdersAfter`` (KRAKEN.md §3.1, §8).
Parameters are read as Kraken documents them (``pair`` by altname, REST name or WS
symbol; ``volume``/``price`` as decimal text; ``oflags`` a comma list of ``post``, ``fcib``,
``fciq``, ``nompp``; ``timeinforce`` GTC, IOC, FOK or GTD with ``expiretm`` as a unix time or
``+<seconds>``; ``cl_ord_id`` or ``userref``; ``validate``; ``deadline`` in RFC3339) and
turned into the engine's ``OrderRequest``; what the engine cannot do (stop and iceberg
orders, relative prices, leverage, conditional close, ``viqc``, ``starttm``) is refused
with ``EGeneral:Invalid arguments:<name>``.

The venue does the rest: the engine-running check, the trading counter, the exchange call
and its publication on the bus. This module owns the parameter reading and the answers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from bot.core.errors import ExchangeError, ProtocolError, RejectedError, TransientError
from bot.kraken.instruments import Instrument, to_scaled
from bot.sim.error_table import price_decimals
from bot.sim.matching import OrderRequest, OrderState
from bot.sim.rest_common import Params, invalid
from bot.sim.rest_format import order_text
from bot.sim.venue import SimVenue

__all__ = [
    "TRADING_METHODS",
    "add_order",
    "add_order_batch",
    "amend_order",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "parse_order",
]

_NS: Final = 1_000_000_000
_KNOWN_FLAGS: Final = frozenset({"post", "fcib", "fciq", "nompp", "viqc"})
_UNSUPPORTED: Final = ("price2", "displayvol", "reduce_only", "close")


def _instrument(venue: SimVenue, name: str) -> Instrument:
    inst = venue.instruments.lookup(name)
    if inst is None:
        raise RejectedError("EQuery:Unknown asset pair", name)
    return inst


def _price(text: str, inst: Instrument, name: str) -> int:
    """A price: more decimals than the pair's is Kraken's ``EOrder:Invalid price:...``."""
    try:
        exponent = Decimal(text).as_tuple().exponent
    except InvalidOperation:
        exponent = 0
    if isinstance(exponent, int) and -exponent > inst.price_precision:
        raise price_decimals(inst)
    return _scaled(text, inst.price_precision, name)


def _scaled(text: str, precision: int, name: str) -> int:
    if text[:1] in "+-#" or text.endswith("%"):
        raise invalid(name, "relative prices are not supported by the simulator")
    try:
        return to_scaled(text, precision)
    except ProtocolError as exc:
        raise invalid(name, str(exc)) from exc


def _unix_ns(text: str, name: str, now_ns: int) -> int | None:
    """``0`` (none), ``+<seconds>`` (relative) or a unix time in seconds."""
    try:
        value = Decimal(text.lstrip("+"))
    except InvalidOperation as exc:
        raise invalid(name) from exc
    if not value.is_finite() or value < 0:
        raise invalid(name)
    if text.startswith("+"):
        return now_ns + int(value.scaleb(9))
    return None if value == 0 else int(value.scaleb(9))


def _check_deadline(params: Params, now_ns: int) -> None:
    text = params.text("deadline")
    if text is None:
        return
    try:
        deadline = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid("deadline") from exc
    if deadline.tzinfo is None:
        raise invalid("deadline", "needs a time zone")
    if int(deadline.timestamp() * _NS) < now_ns:
        raise TransientError("EService:Deadline elapsed", text)


def _flags(params: Params) -> set[str]:
    text = params.text("oflags")
    flags = {f.strip() for f in text.split(",")} if text else set()
    if not flags <= _KNOWN_FLAGS or {"fcib", "fciq"} <= flags:
        raise invalid("oflags")
    if "viqc" in flags:
        raise invalid("oflags", "viqc is not supported by the simulator")
    return flags


def parse_order(
    venue: SimVenue, params: Params, now_ns: int, inst: Instrument | None = None
) -> tuple[Instrument, OrderRequest]:
    """Kraken's AddOrder parameters (or one AddOrderBatch entry) as an ``OrderRequest``."""
    if inst is None:
        inst = _instrument(venue, params.required("pair"))
    side = params.required("type")
    ord_type = params.required("ordertype")
    if ord_type not in ("limit", "market"):
        raise invalid("ordertype", f"{ord_type} orders are not supported by the simulator")
    for name in _UNSUPPORTED:
        value = params.raw[name] if name in params else None
        if str(value).lower() not in ("", "0", "false", "none"):
            raise invalid(name.split("[")[0], "not supported by the simulator")
    leverage = params.text("leverage")
    if leverage not in (None, "none"):
        raise invalid("leverage", "margin is not supported by the simulator")
    if params.text("starttm") not in (None, "0"):
        raise invalid("starttm", "scheduled orders are not supported by the simulator")
    qty = _scaled(params.required("volume"), inst.qty_precision, "volume")
    price = None
    if ord_type == "limit":
        price = _price(params.required("price"), inst, "price")
    flags = _flags(params)
    tif = (params.text("timeinforce") or "GTC").upper()
    expire_text = params.text("expiretm")
    expire_at = _unix_ns(expire_text, "expiretm", now_ns) if expire_text is not None else None
    userref = params.integer("userref")
    cl_ord_id = params.text("cl_ord_id")
    if userref is not None and cl_ord_id is not None:
        raise invalid("cl_ord_id", "cl_ord_id and userref are mutually exclusive")
    req = OrderRequest(
        symbol=inst.symbol,
        side=side,
        ord_type=ord_type,
        qty=qty,
        price=price,
        time_in_force=tif,
        expire_at=expire_at,
        post_only="post" in flags,
        # Kraken's defaults: fee in base when selling, in quote when buying (``fcib``,
        # ``fciq``; KRAKEN.md §8.1).
        fee_in_base="fcib" in flags or (side == "sell" and "fciq" not in flags),
        cl_ord_id=cl_ord_id,
        userref=userref,
        stptype=params.text("stptype") or "cancel-newest",
        validate=params.flag("validate"),
    )
    return inst, req


def _descr(inst: Instrument, req: OrderRequest) -> dict[str, str]:
    return {"order": order_text(inst, req.side, req.ord_type, req.qty, req.price)}


def add_order(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    now = venue.now_ns()
    _check_deadline(params, now)
    inst, req = parse_order(venue, params, now)
    result = venue.place_order(account, req)
    if req.validate or result.order is None:
        return {"descr": _descr(inst, req)}
    return {"descr": _descr(inst, req), "txid": [result.order.txid]}


def add_order_batch(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    now = venue.now_ns()
    _check_deadline(params, now)
    inst = _instrument(venue, params.required("pair"))
    raw_orders = params.raw.get("orders")
    if isinstance(raw_orders, dict):  # a form body's orders[0][...] keys
        raw_orders = [raw_orders[k] for k in sorted(raw_orders, key=_index)]
    if not isinstance(raw_orders, list) or not 2 <= len(raw_orders) <= 15:
        raise invalid("orders", "a batch holds 2 to 15 orders")
    validate = params.flag("validate")
    parsed: list[tuple[Instrument, OrderRequest]] = []
    for raw in raw_orders:
        if not isinstance(raw, dict):
            raise invalid("orders")
        if "pair" in raw and _instrument(venue, str(raw["pair"])).symbol != inst.symbol:
            raise invalid("pair", "all orders in a batch are on one pair")
        parsed.append(parse_order(venue, Params(raw), now, inst))
    results = venue.place_batch(account, inst.symbol, [r for _, r in parsed], validate=validate)
    out: list[dict[str, Any]] = []
    for (pinst, req), res in zip(parsed, results, strict=True):
        if isinstance(res, ExchangeError):
            out.append({"error": res.code})
        elif validate or res.order is None:
            out.append({"descr": _descr(pinst, req)})
        else:
            out.append({"txid": res.order.txid, "descr": _descr(pinst, req)})
    return {"orders": out}


def _index(key: str) -> int:
    return int(key) if key.isdigit() else 1 << 30


def amend_order(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    now = venue.now_ns()
    _check_deadline(params, now)
    for name in ("display_qty", "trigger_price"):
        if params.text(name) is not None:
            raise invalid(name, "not supported by the simulator")
    txid = params.text("txid")
    cl_ord_id = params.text("cl_ord_id")
    if (txid is None) == (cl_ord_id is None):
        raise invalid("txid", "give exactly one of txid and cl_ord_id")
    if txid is not None:
        order = venue.exchange.order(account, txid)
    else:
        assert cl_ord_id is not None
        order = venue.exchange.order_by_cl_ord_id(account, cl_ord_id)
    if order is None or order.status not in ("pending", "open"):
        raise RejectedError("EOrder:Unknown order", txid or cl_ord_id or "")
    inst = venue.instruments[order.symbol]
    qty_text = params.text("order_qty")
    price_text = params.text("limit_price")
    venue.amend_order(
        account,
        txid=txid,
        cl_ord_id=cl_ord_id,
        order_qty=_scaled(qty_text, inst.qty_precision, "order_qty") if qty_text else None,
        limit_price=_price(price_text, inst, "limit_price") if price_text else None,
        post_only=params.flag("post_only"),
    )
    return {"amend_id": venue.new_id("T")}


def cancel_order(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    raw_txid = params.raw.get("txid")
    cl_ord_id = params.text("cl_ord_id")
    txid: str | None = None
    userref: int | None = None
    if type(raw_txid) is int or (isinstance(raw_txid, str) and raw_txid.lstrip("-").isdigit()):
        userref = int(raw_txid)  # Kraken's txid parameter takes a userref too
    else:
        txid = params.text("txid")
    if (txid is not None) + (userref is not None) + (cl_ord_id is not None) != 1:
        raise invalid("txid", "give one of txid (or userref) and cl_ord_id")
    result = venue.cancel_order(account, txid=txid, cl_ord_id=cl_ord_id, userref=userref)
    return {"count": result.count, "pending": False}


def edit_order(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    """EditOrder: Kraken's cancel-and-replace (prefer AmendOrder). ``txid`` (a txid or a
    userref), ``pair``, and the new ``volume``, ``price``, ``oflags`` (``post``) or
    ``userref``; ``cl_ord_id`` is refused, as Kraken's EditOrder does not support it."""
    now = venue.now_ns()
    _check_deadline(params, now)
    for name in ("price2", "cl_ord_id"):
        if params.text(name) is not None:
            raise invalid(name, "not supported by EditOrder on the simulator")
    inst = _instrument(venue, params.required("pair"))
    target = params.required("txid")
    if target.lstrip("-").isdigit():
        found = [o for o in venue.exchange.open_orders(account) if o.userref == int(target)]
        order = found[0] if len(found) == 1 else None
    else:
        order = venue.exchange.order(account, target)
    if order is None or order.status not in ("pending", "open"):
        raise RejectedError("EOrder:Unknown order", target)
    if order.symbol != inst.symbol:
        raise invalid("pair", "not the order's pair")
    qty_text = params.text("volume")
    price_text = params.text("price")
    flags = _flags(params) if params.text("oflags") is not None else None
    validate = params.flag("validate")
    _, placed = venue.edit_order(
        account,
        order,
        qty=_scaled(qty_text, inst.qty_precision, "volume") if qty_text else None,
        price=_price(price_text, inst, "price") if price_text else None,
        post_only=None if flags is None else "post" in flags,
        userref=params.integer("userref"),
        validate=validate,
    )
    new = placed.order
    qty = new.qty if new is not None else order.qty
    price = new.price if new is not None else order.price
    out: dict[str, Any] = {
        "descr": {"order": order_text(inst, order.side, order.ord_type, qty, price)},
        "volume": inst.qty_text(qty),
        "price": inst.price_text(price) if price is not None else "0",
        "price2": "0",
        "orders_cancelled": 0 if validate else 1,
        "status": "ok",
    }
    if new is not None:
        out["txid"] = new.txid
        out["originaltxid"] = order.txid
    return out


def cancel_order_batch(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    """CancelOrderBatch: ``orders`` (txids or userrefs) and/or ``cl_ord_ids``, at most 50
    in all. Ids that match no open order of the account are skipped; ``count`` tells."""
    orders = params.raw.get("orders") or []
    cl_ord_ids = params.raw.get("cl_ord_ids") or []
    if isinstance(orders, dict):  # form: orders[0]=...
        orders = [orders[k] for k in sorted(orders, key=_index)]
    if isinstance(cl_ord_ids, dict):
        cl_ord_ids = [cl_ord_ids[k] for k in sorted(cl_ord_ids, key=_index)]
    if not isinstance(orders, list) or not isinstance(cl_ord_ids, list):
        raise invalid("orders")
    if not orders and not cl_ord_ids:
        raise invalid("orders", "missing")
    if len(orders) + len(cl_ord_ids) > 50:
        raise invalid("orders", "at most 50 ids")
    open_orders = venue.exchange.open_orders(account)
    chosen: dict[str, OrderState] = {}
    for ref in orders:
        if not isinstance(ref, str | int) or isinstance(ref, bool):
            raise invalid("orders")
        text = str(ref)
        if text.lstrip("-").isdigit():
            chosen.update({o.txid: o for o in open_orders if o.userref == int(text)})
        else:
            chosen.update({o.txid: o for o in open_orders if o.txid == text})
    for ref in cl_ord_ids:
        if not isinstance(ref, str):
            raise invalid("cl_ord_ids")
        chosen.update({o.txid: o for o in open_orders if o.cl_ord_id == ref})
    return {"count": venue.cancel_batch(account, list(chosen.values()))}


def cancel_all(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    return {"count": venue.cancel_all(account).count}


def cancel_all_orders_after(venue: SimVenue, account: str, params: Params) -> dict[str, Any]:
    timeout = params.integer("timeout")
    if timeout is None:
        raise invalid("timeout", "missing")
    current, trigger = venue.cancel_all_after(account, timeout)
    return {"currentTime": current, "triggerTime": trigger}


TRADING_METHODS: Final = {
    "AddOrder": add_order,
    "AddOrderBatch": add_order_batch,
    "AmendOrder": amend_order,
    "CancelOrder": cancel_order,
    "CancelAll": cancel_all,
    "CancelAllOrdersAfter": cancel_all_orders_after,
    "CancelOrderBatch": cancel_order_batch,
    "EditOrder": edit_order,
}
