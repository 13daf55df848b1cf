"""Kraken WebSocket v2 frames in, typed frozen events out (pure: no I/O, no clock).

``Parser(instruments).parse(raw)`` turns one received message into a list of events:

=====================  ======================================================
frame                  event(s)
=====================  ======================================================
``book``               one ``BookFrame`` per data item
``trade``              ``TradeFrame`` holding every ``Trade`` of the message
``ticker``             one ``Ticker`` per data item
``instrument``         ``InstrumentFrame`` (and the parser's table is updated)
``executions``         ``ExecutionsFrame`` holding sparse ``ExecutionReport``s
``status``             one ``Status`` per data item
``heartbeat``          ``Heartbeat``
``pong``               ``Pong``
``subscribe`` ack      ``SubscribeAck`` (``UnsubscribeAck`` likewise)
any other method       ``MethodResponse`` (typed ``result`` for the order methods)
=====================  ======================================================

Numbers (KRAKEN.md §5.1, §5.4). Prices and quantities of book, trade and ticker frames
become ints scaled by the symbol's instrument precisions the moment they arrive, so a
frame for a symbol the parser has no instrument for is an ``UnknownInstrument`` error
naming the symbol. Book and trade frames are decoded with orjson and converted from
float exactly; a float that cannot be proven to be the decimal Kraken printed (17
digits, or more decimals than the precision) raises ``PrecisionLost`` inside, and that one
frame is decoded again with the exact decoder, whose ``Decimal`` decides. Numbers that are
not at an instrument precision (ticker ``vwap``/``change``/``change_pct``, every number of
an execution report, method results) are exact ``Decimal``, decoded from the text. A
string where a number belongs is an error: v2 sends JSON numbers.

Execution reports keep ``Decimal`` for every quantity and price, even when the symbol is
known: updates are sparse (most carry no ``symbol``), ``avg_price`` and costs are not at
the pair's precision, and a field whose type depended on the frame would push an
``isinstance`` into every consumer. The order tracker, which knows each order's
instrument, converts with ``instrument.qty(report.cum_qty)`` (exact or an error).

The book. This module knows the wire, not the book: a ``book`` item becomes a
``BookFrame`` (scaled ints in wire order, Kraken's checksum, its timestamp) and nothing here
applies it. ``bot.market.frames`` is the path from a received message to the books (the
fused parse-and-apply, in the book's C core when it is built); it reuses ``parse_decoded``
(``parse`` of a message already decoded by orjson) and ``parse_exact`` (the exact decoder)
for every frame its fast path does not take.

Bad frames. Anything that is not JSON, not an object, of an unknown channel or method, or
of an unexpected shape raises ``ProtocolError`` (never anything else, whatever the
input). ``parse_safe`` returns ``[Unparsed(error, excerpt)]`` instead, so a driver can log,
count and go on. WS v2 errors are strings; a failed ack or response keeps Kraken's text
in ``error`` and ``exception()`` maps it through ``bot.core.errors.error_from_kraken``.

This module owns the meaning of the channel frames and the dispatch of every frame. It
builds ``BookFrame`` but not the book; it imports nothing from ``bot.market``. ``codec``
holds the JSON codec, the typed field readers, the request builders and the response
events (``Pong``, the acks, ``MethodResponse``), which are re-exported here so that
consumers import events from one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, NamedTuple

import orjson

from bot.core.errors import ProtocolError
from bot.kraken.codec import (
    AddOrderResult,
    AmendOrderResult,
    CancelAfterResult,
    CancelAllResult,
    CancelOrderResult,
    MethodResponse,
    OrderResult,
    Pong,
    Raw,
    SubscribeAck,
    UnsubscribeAck,
    as_object,
    data_objects,
    decimal_of,
    excerpt,
    is_snapshot,
    loads_exact,
    opt_bool,
    opt_decimal,
    opt_int,
    opt_str,
    req_str,
    response_from,
)
from bot.kraken.instruments import (
    MAX_PRECISION,
    Instrument,
    InstrumentTable,
    PrecisionLost,
    instruments_from_ws_frame,
    to_scaled,
)

__all__ = [
    "CHECKSUM_MAX",
    "SHAPE_FAULTS",
    "AddOrderResult",
    "AmendOrderResult",
    "BookFrame",
    "CancelAfterResult",
    "CancelAllResult",
    "CancelOrderResult",
    "Event",
    "ExecutionReport",
    "ExecutionsFrame",
    "Fee",
    "Heartbeat",
    "InstrumentFrame",
    "MethodResponse",
    "OrderResult",
    "Parser",
    "Pong",
    "Status",
    "SubscribeAck",
    "Ticker",
    "Trade",
    "TradeFrame",
    "UnknownInstrument",
    "Unparsed",
    "UnsubscribeAck",
    "malformed",
]


class UnknownInstrument(ProtocolError):
    """A frame names a symbol the parser has no instrument (precisions) for."""

    def __init__(self, symbol: object) -> None:
        self.symbol = symbol
        super().__init__(f"no instrument for symbol {symbol!r}: load instruments first")


# ------------------------------------------------------------------------------ events


class BookFrame(NamedTuple):
    """One WS v2 ``book`` message for one symbol, prices and quantities scaled to ints.

    Immutable like the other events, but a ``NamedTuple`` rather than a frozen dataclass:
    it is built once per book frame on the two-step path, and a tuple is built in a third
    of the time a frozen dataclass's ``__init__`` takes.
    """

    symbol: str
    snapshot: bool  # True for type == "snapshot"
    bids: tuple[tuple[int, int], ...]  # (price, qty) in wire order
    asks: tuple[tuple[int, int], ...]
    checksum: int  # Kraken's CRC32, unsigned
    timestamp: str


@dataclass(frozen=True, slots=True)
class Status:
    """``status`` channel: pushed on connect and when the engine's state changes."""

    system: str  # online | cancel_only | post_only | limit_only | maintenance
    api_version: str = ""
    connection_id: int | None = None
    version: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``{"channel": "heartbeat"}``: about once a second when nothing else is sent."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade; ``side`` and ``ord_type`` are the taker's."""

    symbol: str
    side: str
    price: int  # scaled by price_precision
    qty: int  # scaled by qty_precision
    ord_type: str
    trade_id: int
    timestamp: str


@dataclass(frozen=True, slots=True)
class TradeFrame:
    snapshot: bool
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class Ticker:
    """Top of book and 24 h statistics. Prices and quantities scaled, statistics exact.

    ``last``, ``low`` and ``high`` are optional in Kraken's schema (a pair with no trade in
    24 h has none): None when absent or null.
    """

    symbol: str
    snapshot: bool
    bid: int
    bid_qty: int
    ask: int
    ask_qty: int
    last: int | None
    volume: int  # 24 h, scaled by qty_precision
    vwap: Decimal  # 24 h; more decimals than the price precision
    low: int | None
    high: int | None
    change: Decimal
    change_pct: Decimal
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class InstrumentFrame:
    """Pairs from the ``instrument`` channel, already added to the parser's table."""

    snapshot: bool
    instruments: tuple[Instrument, ...]


@dataclass(frozen=True, slots=True)
class Fee:
    asset: str
    qty: Decimal


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One entry of the ``executions`` channel. Updates are sparse: absent fields are None.

    Every number is an exact ``Decimal`` (see the module docstring for why not scaled).
    """

    exec_type: str | None = None
    order_id: str | None = None
    cl_ord_id: str | None = None
    order_userref: int | None = None
    order_status: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    time_in_force: str | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    timestamp: str | None = None
    reason: str | None = None
    amended: bool | None = None
    exec_id: str | None = None
    trade_id: int | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    cost: Decimal | None = None
    liquidity_ind: str | None = None  # "m" maker, "t" taker
    fees: tuple[Fee, ...] | None = None
    fee_usd_equiv: Decimal | None = None
    fee_ccy_pref: str | None = None
    ratecount: Decimal | None = None  # the pair's trading rate counter (``ratecounter``)


@dataclass(frozen=True, slots=True)
class ExecutionsFrame:
    snapshot: bool
    sequence: int | None
    reports: tuple[ExecutionReport, ...]


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A frame ``parse_safe`` could not use: log it, count it, go on."""

    error: ProtocolError
    excerpt: str

    @property
    def reason(self) -> str:
        return str(self.error)


Event = (
    BookFrame
    | TradeFrame
    | Ticker
    | InstrumentFrame
    | ExecutionsFrame
    | Status
    | Heartbeat
    | Pong
    | SubscribeAck
    | UnsubscribeAck
    | MethodResponse
    | Unparsed
)


_HEARTBEAT: Final = Heartbeat()


# --------------------------------------------------------------------------- the parser

_MAX_FAST: Final = 2**50  # see _levels
_SCALES: Final = tuple(float(10**p) for p in range(MAX_PRECISION + 1))  # all exact
# Fault types a malformed frame can raise from inside a handler (a list indexed by a
# string, a number where an object was expected, …); each becomes a ProtocolError.
SHAPE_FAULTS: Final = (
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    ArithmeticError,
    RecursionError,
)
_orjson_loads: Final = orjson.loads
_round: Final = float.__round__  # round() without the builtin's dispatch: half the cost
_JSONDecodeError: Final = orjson.JSONDecodeError
CHECKSUM_MAX: Final = 0xFFFFFFFF
_Scales = tuple[float, float, int, int]  # 10**price_p, 10**qty_p (as floats), the precisions


def _scaled(value: object, precision: int, what: str, minimum: int = 0) -> int:
    """A number as its scaled int, exactly, and at least ``minimum``; errors name ``what``.

    A float is converted by the exactness test described in ``_levels``; one that fails it
    raises ``PrecisionLost``, so the frame is decoded again exactly and the ``Decimal``
    decides (this makes "more decimals than the precision" an error at any magnitude).
    A string is refused (v2 sends JSON numbers); ints, Decimals and anything else go to
    ``to_scaled``.
    """
    if type(value) is float:
        scale = _SCALES[precision]
        n = _round(value * scale)
        if not (-_MAX_FAST < n < _MAX_FAST and n / scale == value):
            raise PrecisionLost(f"{what}: {value!r} is not exact as a float")
    elif type(value) is str:  # Kraken's v2 numbers are JSON numbers, never strings
        raise ProtocolError(f"{what}: expected a JSON number, got {value!r}")
    else:
        try:
            n = to_scaled(value, precision)  # type: ignore[arg-type]  # it checks the type
        except ProtocolError as exc:
            raise ProtocolError(f"{what}: {exc}") from None
    if n < minimum:
        raise ProtocolError(f"{what}: {value!r} is out of range")
    return n


def _levels(levels: list[Any], scales: _Scales) -> tuple[tuple[int, int], ...]:
    """Book levels ``[{"price": p, "qty": q}, …]`` to ``((price, qty), …)`` scaled.

    The exactness test for a float ``f``: ``n = round(f * 10**p)`` is the scaled int of
    the decimal Kraken printed if and only if ``n / 10**p == f``. Below 2**50, ``f * 10**p``
    lands within 0.25 of the exact scaled int, so ``round`` finds it; both operands of the
    division are exact (``10**p`` is, for p <= 22) and IEEE division rounds correctly, so
    the quotient is the double nearest to ``n·10**-p``, which is ``f`` exactly when ``f``
    was parsed from that decimal. A float that fails (too many digits, more decimals than
    the precision, out of range) raises ``PrecisionLost`` and the exact decoder decides.
    Other types go through ``_scaled``. A ``levels`` that is not a list of objects fails
    on a subscript (TypeError), which ``parse`` turns into a ``ProtocolError``.
    """
    price_scale, qty_scale, pp, qp = scales
    out: list[tuple[int, int]] = []
    for level in levels:
        p = level["price"]
        q = level["qty"]
        if type(p) is float:
            n = _round(p * price_scale)
            if not (0 < n < _MAX_FAST and n / price_scale == p):
                raise PrecisionLost(f"book price {p!r} is not exact as a float")
        else:
            n = _scaled(p, pp, "book price", 1)
        if type(q) is float:
            m = _round(q * qty_scale)
            if not (0 <= m < _MAX_FAST and m / qty_scale == q):
                raise PrecisionLost(f"book qty {q!r} is not exact as a float")
        else:
            m = _scaled(q, qp, "book qty")
        out.append((n, m))
    return tuple(out)


def _not_levels(levels: object, symbol: str) -> ProtocolError:
    return ProtocolError(f"book {symbol}: levels must be a list, got {levels!r}")


class Parser:
    """Frames to events, converting numbers with the instruments' precisions.

    The parser keeps the precisions of the symbols it has met; an ``instrument`` frame
    updates both the table and that cache. A precision change made to the table from
    elsewhere must go through ``add_instruments`` to be seen.
    """

    def __init__(self, instruments: InstrumentTable | None = None) -> None:
        self._table = instruments if instruments is not None else InstrumentTable()
        self._scales: dict[str, _Scales] = {}
        self._channels: dict[str, Callable[[dict[str, Any]], list[Event]]] = {
            "book": self._book,
            "trade": self._trade,
            "ticker": self._ticker,
            "executions": self._executions,
            "instrument": self._instrument,
            "status": self._status,
            "heartbeat": self._heartbeat,
        }

    @property
    def instruments(self) -> InstrumentTable:
        return self._table

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Add or replace instruments (and forget cached precisions for them)."""
        added = tuple(instruments)
        self._table.update(added)
        for inst in added:
            self._scales.pop(inst.symbol, None)

    def parse(self, raw: Raw) -> list[Event]:
        """One received message as events; raises ``ProtocolError`` and nothing else."""
        try:
            msg = _orjson_loads(raw)
        except _JSONDecodeError as exc:
            raise ProtocolError(f"not JSON ({exc}): {excerpt(raw)}") from None
        return self.parse_decoded(msg, raw)

    def parse_safe(self, raw: Raw) -> list[Event]:
        """Like ``parse``, but a bad frame becomes ``[Unparsed(error, excerpt)]``."""
        try:
            return self.parse(raw)
        except ProtocolError as exc:
            return [Unparsed(exc, excerpt(raw))]

    def parse_decoded(self, msg: Any, raw: Raw) -> list[Event]:
        """``parse`` of a message already decoded by ``orjson.loads`` (``raw`` is its text,
        for the exact decoder and for errors). Raises ``ProtocolError`` and nothing else."""
        try:
            channel = msg.get("channel")  # AttributeError: not an object
        except AttributeError:
            raise ProtocolError(f"frame is not a JSON object: {excerpt(raw)}") from None
        if channel == "book":  # the hot path: no dispatch, no exact decode
            try:
                return self._book(msg)
            except PrecisionLost:
                return self.parse_exact(raw)
            except ProtocolError:
                raise
            except SHAPE_FAULTS as exc:
                raise malformed("book", exc, raw) from None
        if channel in ("ticker", "executions") or (channel is None and "method" in msg):
            # Frames that keep numbers as Decimal are decoded from the text directly.
            return self.parse_exact(raw)
        try:
            return self._dispatch(msg)
        except PrecisionLost:
            return self.parse_exact(raw)
        except ProtocolError:
            raise
        except SHAPE_FAULTS as exc:
            raise malformed(str(channel), exc, raw) from None

    def parse_exact(self, raw: Raw) -> list[Event]:
        """``parse`` with the exact decoder (numbers from their text): the fallback for a
        frame whose floats cannot be proven exact."""
        msg = loads_exact(raw)
        if type(msg) is not dict:
            raise ProtocolError(f"frame is not a JSON object: {excerpt(raw)}")
        try:
            return self._dispatch(msg)
        except ProtocolError:
            raise
        except SHAPE_FAULTS as exc:
            raise malformed(str(msg.get("channel", msg.get("method"))), exc, raw) from None

    def _dispatch(self, msg: dict[str, Any]) -> list[Event]:
        channel = msg.get("channel")
        if channel is not None:
            handler = self._channels.get(channel) if type(channel) is str else None
            if handler is None:
                raise ProtocolError(f"unknown channel {channel!r}")
            return handler(msg)
        return [response_from(msg)]

    # -- market data

    def _scales_for(self, symbol: Any) -> _Scales:
        scales = self._scales.get(symbol) if type(symbol) is str else None
        if scales is None:
            inst = self._table.lookup(symbol) if type(symbol) is str else None
            if inst is None:
                raise UnknownInstrument(symbol)
            pp, qp = inst.price_precision, inst.qty_precision
            scales = (_SCALES[pp], _SCALES[qp], pp, qp)
            self._scales[symbol] = scales
        return scales

    def _book(self, msg: dict[str, Any]) -> list[Event]:
        """Book frames: the hot path, kept to as few Python operations as it can be."""
        kind = msg["type"]
        if kind == "update":
            snapshot = False
        elif kind == "snapshot":
            snapshot = True
        else:
            raise ProtocolError(f"book: type must be 'snapshot' or 'update', got {kind!r}")
        frames: list[Event] = []
        # A data that is not a list of objects fails on a subscript below (TypeError), which
        # parse() turns into a ProtocolError: no time is spent on type checks up front.
        for item in msg["data"]:
            symbol = item["symbol"]
            try:
                scales = self._scales[symbol]
            except KeyError:
                scales = self._scales_for(symbol)
            # A side that is not a list fails in _levels on a subscript, or here if falsy.
            raw = item["bids"]
            if raw:
                bids = _levels(raw, scales)
            elif type(raw) is list:
                bids = ()
            else:
                raise _not_levels(raw, symbol)
            raw = item["asks"]
            if raw:
                asks = _levels(raw, scales)
            elif type(raw) is list:
                asks = ()
            else:
                raise _not_levels(raw, symbol)
            checksum = item["checksum"]
            timestamp = item.get("timestamp", "")  # absent on some real snapshots
            if type(checksum) is not int or not 0 <= checksum <= CHECKSUM_MAX:
                raise ProtocolError(f"book {symbol}: checksum must be a u32, got {checksum!r}")
            if type(timestamp) is not str:
                raise ProtocolError(f"book {symbol}: timestamp must be a string")
            frame = BookFrame(symbol, snapshot, bids, asks, checksum, timestamp)
            frames.append(frame)
        if not frames:
            raise ProtocolError("book: data must be a non-empty list")
        return frames

    def _trade(self, msg: dict[str, Any]) -> list[Event]:
        snapshot = is_snapshot(msg, "trade")
        trades: list[Trade] = []
        for item in data_objects(msg, "trade"):
            symbol = req_str(item, "symbol", "trade")
            where = f"trade {symbol}"
            _, _, pp, qp = self._scales_for(symbol)
            trade_id = item.get("trade_id")
            if type(trade_id) is not int:
                raise ProtocolError(f"{where}: trade_id must be an integer, got {trade_id!r}")
            trades.append(
                Trade(
                    symbol=symbol,
                    side=req_str(item, "side", where),
                    price=_scaled(item.get("price"), pp, f"{where}: price", 1),
                    qty=_scaled(item.get("qty"), qp, f"{where}: qty"),
                    ord_type=req_str(item, "ord_type", where),
                    trade_id=trade_id,
                    timestamp=req_str(item, "timestamp", where),
                )
            )
        return [TradeFrame(snapshot, tuple(trades))]

    def _ticker(self, msg: dict[str, Any]) -> list[Event]:
        snapshot = is_snapshot(msg, "ticker")
        events: list[Event] = []
        for item in data_objects(msg, "ticker"):
            symbol = req_str(item, "symbol", "ticker")
            events.append(_ticker(item, symbol, snapshot, self._scales_for(symbol)))
        return events

    def _instrument(self, msg: dict[str, Any]) -> list[Event]:
        snapshot = is_snapshot(msg, "instrument")
        instruments = instruments_from_ws_frame(msg)
        self.add_instruments(instruments)
        return [InstrumentFrame(snapshot, tuple(instruments))]

    def _status(self, msg: dict[str, Any]) -> list[Event]:
        return [
            Status(
                system=req_str(item, "system", "status"),
                api_version=opt_str(item, "api_version", "status") or "",
                connection_id=opt_int(item, "connection_id", "status"),
                version=opt_str(item, "version", "status") or "",
            )
            for item in data_objects(msg, "status")
        ]

    def _heartbeat(self, msg: dict[str, Any]) -> list[Event]:
        return [_HEARTBEAT]

    # -- private channel and responses

    def _executions(self, msg: dict[str, Any]) -> list[Event]:
        snapshot = is_snapshot(msg, "executions")
        sequence = opt_int(msg, "sequence", "executions")
        reports = tuple(_execution_report(item) for item in data_objects(msg, "executions"))
        return [ExecutionsFrame(snapshot, sequence, reports)]


def _ticker(item: dict[str, Any], symbol: str, snapshot: bool, scales: _Scales) -> Ticker:
    _, _, pp, qp = scales
    where = f"ticker {symbol}"

    def num(key: str, precision: int) -> int:
        return _scaled(item.get(key), precision, f"{where}: {key}")

    def opt_num(key: str, precision: int) -> int | None:
        value = item.get(key)
        return None if value is None else _scaled(value, precision, f"{where}: {key}")

    def dec(key: str) -> Decimal:
        return decimal_of(item.get(key), f"{where}: {key}")

    return Ticker(
        symbol=symbol,
        snapshot=snapshot,
        bid=num("bid", pp),
        bid_qty=num("bid_qty", qp),
        ask=num("ask", pp),
        ask_qty=num("ask_qty", qp),
        last=opt_num("last", pp),
        volume=num("volume", qp),
        vwap=dec("vwap"),
        low=opt_num("low", pp),
        high=opt_num("high", pp),
        change=dec("change"),
        change_pct=dec("change_pct"),
        timestamp=opt_str(item, "timestamp", where) or "",
    )


def malformed(where: str, exc: BaseException, raw: Raw) -> ProtocolError:
    detail = f"{type(exc).__name__}: {exc}"
    return ProtocolError(f"malformed {where} frame ({excerpt(detail, 120)}): {excerpt(raw)}")


def _fees(value: Any, where: str) -> tuple[Fee, ...] | None:
    if value is None:
        return None
    if type(value) is not list:
        raise ProtocolError(f"{where}: fees must be a list, got {value!r}")
    return tuple(
        Fee(
            asset=req_str(as_object(fee, where), "asset", where),
            qty=decimal_of(fee.get("qty"), f"{where}: fee qty"),
        )
        for fee in value
    )


# Each ExecutionReport field is read by the reader for its declared type.
_READERS: Final[dict[str, Callable[[Mapping[str, Any], str, str], Any]]] = {
    "str | None": opt_str,
    "int | None": opt_int,
    "bool | None": opt_bool,
    "Decimal | None": opt_decimal,
}
_REPORT_FIELDS: Final = tuple(
    (f.name, _READERS[str(f.type)]) for f in dataclasses.fields(ExecutionReport) if f.name != "fees"
)


def _execution_report(item: dict[str, Any]) -> ExecutionReport:
    where = f"executions {item.get('order_id')!r}"
    fields = {name: read(item, name, where) for name, read in _REPORT_FIELDS}
    return ExecutionReport(**fields, fees=_fees(item.get("fees"), where))
