"""Pair metadata and exact numbers.

Inside krakenbot a price or a quantity is an ``int`` scaled by its instrument's precision:
BTC/USD has ``price_precision`` 1 and ``qty_precision`` 8, so 29430.2 is ``294302`` and
0.001 BTC is ``100000``. Scaled integers are exact, fast to compare and hash, and make
Kraken's book checksum plain integer formatting (``str(n)`` is the price with its dot
removed and leading zeros stripped).

Kraken prints JSON numbers with the instrument's full precision. A JSON parser hands them
over as ``float``: the float is only a carrier of the decimal Kraken printed, and
``to_scaled`` converts it exactly the moment it arrives. A double carries any decimal of up
to 15 significant digits exactly; a value whose scaled int reaches 2**50 (16 digits) may
not survive the trip, so ``to_scaled`` raises ``PrecisionLost`` and the caller re-decodes
the frame with an exact (text-preserving) decoder.

This module owns: the ``Instrument`` record, parsing it from the WS v2 ``instrument``
channel and from REST ``AssetPairs`` (KRAKEN.md §5.8, §8.4), the mapping between the two
naming schemes, and the conversions between Kraken's numbers, ``Decimal`` and scaled ints.
It does no I/O.

Names. REST and WS v1 name assets with Kraken's legacy codes (``XXBT``, ``XXDG``, ``ZUSD``;
``wsname`` ``XBT/USD``, ``XDG/USD``); WS v2 names them ``BTC``, ``DOGE``, ``USD`` (``BTC/USD``,
``DOGE/USD``). ``ws_names_for_rest_pairs`` maps each REST pair to its WS v2 symbol through the
assets, never by rewriting text: each REST asset code gets its display name from the pairs'
own ``wsname`` (``XXDG`` is the ``XDG`` of ``XDG/USD``); a name the WS v2 instrument channel
lists as an asset is kept, otherwise Kraken's documented alias for it is used
(``V2_ASSET_ALIASES``: ``XBT`` is ``BTC``, ``XDG`` is ``DOGE``) if the channel lists that;
the pair is the WS v2 pair of those two assets, if there is one. ``merge_rest_names`` then
gives each WS v2 instrument (precisions and minimums from the instrument channel) the REST
names order entry uses (``rest_name``, ``altname``, ``wsname``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from bot.core.errors import ProtocolError

__all__ = [
    "MAX_PRECISION",
    "V2_ASSET_ALIASES",
    "Instrument",
    "InstrumentTable",
    "PrecisionLost",
    "format_scaled",
    "from_scaled",
    "instrument_from_asset_pair",
    "instrument_from_ws",
    "instruments_from_asset_pairs",
    "instruments_from_ws_frame",
    "merge_rest_names",
    "to_scaled",
    "ws_names_for_rest_pairs",
]

MAX_PRECISION: Final = 18
_SCALES: Final[tuple[float, ...]] = tuple(10.0**p for p in range(MAX_PRECISION + 1))
_INT_SCALES: Final[tuple[int, ...]] = tuple(10**p for p in range(MAX_PRECISION + 1))
# Below 2**50 the product value*10**p is within 0.25 of the exact scaled integer, so
# round() recovers it, and distinct decimals at one precision are distinct doubles.
_FAST_LIMIT: Final = 2**50


class PrecisionLost(ProtocolError):
    """A float cannot carry this decimal exactly: decode the frame exactly and retry."""


def _scaled_decimal(value: Decimal, precision: int) -> int:
    # Integer arithmetic on the digits: exact at any size (no 28-digit context rounding).
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ProtocolError(f"not a finite number: {value}")
    coefficient = int("".join(map(str, digits))) if digits else 0
    shift = exponent + precision
    n: int
    if shift >= 0:
        n = coefficient * int(10**shift)
    else:
        n, rest = divmod(coefficient, int(10**-shift))
        if rest:
            raise ProtocolError(f"{value} has more than {precision} decimals")
    return -n if sign else n


def to_scaled(value: float | int | str | Decimal, precision: int) -> int:
    """Kraken's number as an int scaled by ``10**precision``, exactly or not at all.

    Accepts what a JSON parser produces (``float``/``int``), the strings Kraken's REST API
    prints (``"0.00010000"``) and ``Decimal``. A value with more decimals than
    ``precision`` is a ``ProtocolError``; a float too large to carry its decimal is
    ``PrecisionLost``.
    """
    kind = type(value)
    if kind is float:
        f: float = value  # type: ignore[assignment]
        x = f * _SCALES[precision]
        if not math.isfinite(x):
            raise ProtocolError(f"not a finite number: {f!r}")
        n = round(x)
        # int / int is correctly rounded: equality proves the decimal n/10**p is the one
        # this float carries (and below 2**50 no other decimal at this precision is).
        if -_FAST_LIMIT < n < _FAST_LIMIT and n / _INT_SCALES[precision] == f:
            return n
        if abs(n) >= _FAST_LIMIT:
            # 16+ significant digits at this precision: a double may have rounded them.
            raise PrecisionLost(f"{f!r} at precision {precision} needs more digits than a float")
        raise ProtocolError(f"{f!r} has more than {precision} decimals")
    if isinstance(value, int) and kind is not bool:
        return value * _INT_SCALES[precision]
    if kind is bool:
        raise ProtocolError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return _scaled_decimal(value, precision)
    if isinstance(value, str):
        try:
            return _scaled_decimal(Decimal(value), precision)
        except InvalidOperation:
            raise ProtocolError(f"expected a number, got {value!r}") from None
    raise ProtocolError(f"expected a number, got {value!r}")


def from_scaled(n: int, precision: int) -> Decimal:
    """The exact ``Decimal`` for a scaled int (``from_scaled(294302, 1) == Decimal("29430.2")``)."""
    return Decimal(n).scaleb(-precision)


def format_scaled(n: int, precision: int) -> str:
    """Kraken's fixed-point text for a scaled int: ``format_scaled(100000, 8) == "0.00100000"``."""
    if precision == 0:
        return str(n)
    sign = "-" if n < 0 else ""
    digits = str(abs(n)).rjust(precision + 1, "0")
    return f"{sign}{digits[:-precision]}.{digits[-precision:]}"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One spot pair. Increments and minimums are scaled ints; ``cost_min`` is in quote units.

    ``symbol`` is the WS v2 name (``BTC/USD``); ``rest_name`` is the REST key
    (``XXBTZUSD``), ``altname`` the short REST name (``XBTUSD``) and ``wsname`` the WS v1
    name (``XBT/USD``) when known.
    """

    symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    price_increment: int = 1
    qty_increment: int = 1
    qty_min: int = 0
    cost_min: Decimal = Decimal(0)
    cost_precision: int = 5
    status: str = "online"
    altname: str = ""
    rest_name: str = ""
    # REST's ``wsname``, the WS v1 name (``XDG/USD``) when known: one more name to find the
    # pair by, not part of what the pair is (two records of one pair compare equal).
    wsname: str = field(default="", compare=False)

    def price(self, value: float | int | str | Decimal) -> int:
        """A price as received (or typed) to its scaled int."""
        return to_scaled(value, self.price_precision)

    def qty(self, value: float | int | str | Decimal) -> int:
        """A quantity as received (or typed) to its scaled int."""
        return to_scaled(value, self.qty_precision)

    def price_decimal(self, n: int) -> Decimal:
        return from_scaled(n, self.price_precision)

    def qty_decimal(self, n: int) -> Decimal:
        return from_scaled(n, self.qty_precision)

    def price_text(self, n: int) -> str:
        return format_scaled(n, self.price_precision)

    def qty_text(self, n: int) -> str:
        return format_scaled(n, self.qty_precision)

    def cost(self, price: int, qty: int) -> Decimal:
        """Exact quote-currency cost of ``qty`` at ``price``."""
        return from_scaled(price * qty, self.price_precision + self.qty_precision)


def _require(raw: Mapping[str, Any], key: str, where: str) -> Any:
    try:
        return raw[key]
    except KeyError:
        raise ProtocolError(f"{where}: missing {key!r}") from None


def _precision(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = _require(raw, key, where)
    if type(value) is not int or not 0 <= value <= MAX_PRECISION:
        raise ProtocolError(f"{where}: {key} must be an int in 0..{MAX_PRECISION}, got {value!r}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ProtocolError(f"{where}: expected a number, got {value!r}")
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ProtocolError(f"{where}: expected a number, got {value!r}") from None


def instrument_from_ws(raw: Mapping[str, Any]) -> Instrument:
    """One pair of a WS v2 ``instrument`` frame (``data.pairs[i]``)."""
    symbol = _require(raw, "symbol", "instrument pair")
    if not isinstance(symbol, str):
        raise ProtocolError(f"instrument pair: symbol must be a string, got {symbol!r}")
    where = f"instrument {symbol}"
    pp = _precision(raw, "price_precision", where)
    qp = _precision(raw, "qty_precision", where)
    price_inc = raw.get("price_increment", raw.get("tick_size"))
    return Instrument(
        symbol=symbol,
        base=str(raw.get("base", symbol.split("/")[0])),
        quote=str(raw.get("quote", symbol.split("/")[-1])),
        price_precision=pp,
        qty_precision=qp,
        price_increment=to_scaled(price_inc, pp) if price_inc is not None else 1,
        qty_increment=to_scaled(raw["qty_increment"], qp) if "qty_increment" in raw else 1,
        qty_min=to_scaled(raw["qty_min"], qp) if "qty_min" in raw else 0,
        cost_min=_decimal(raw.get("cost_min", 0), where),
        cost_precision=int(raw.get("cost_precision", 5)),
        status=str(raw.get("status", "online")),
    )


def instruments_from_ws_frame(frame: Mapping[str, Any]) -> list[Instrument]:
    """Every pair of a WS v2 ``instrument`` snapshot or update frame."""
    if frame.get("channel") != "instrument":
        raise ProtocolError("not an instrument frame")
    data = frame.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("pairs", []), list):
        raise ProtocolError("instrument frame: data.pairs must be a list")
    return [instrument_from_ws(pair) for pair in data.get("pairs", [])]


V2_ASSET_ALIASES: Final[Mapping[str, str]] = {"XBT": "BTC", "XDG": "DOGE"}
"""WS v1 / REST asset names that WS v2 spells otherwise: Kraken's own alias table ("Asset
Name, Symbol, Alias: Bitcoin XBT BTC; Doge XDG DOGE", https://www.kraken.com/features/
websocket-api). Only a fallback: the WS v2 instrument channel's assets decide."""


def _strip_legacy(code: str) -> str:
    # Kraken's REST asset codes carry an X (crypto) or Z (fiat) prefix on 4-letter codes.
    if len(code) == 4 and code[0] in "XZ":
        code = code[1:]
    return V2_ASSET_ALIASES.get(code, code)


def _v2_symbol(wsname: str) -> str:
    """A WS v1 pair name in WS v2's asset names, asset by asset (``XDG/XBT`` → ``DOGE/BTC``)."""
    base, sep, quote = wsname.partition("/")
    if not sep:
        return wsname
    return f"{V2_ASSET_ALIASES.get(base, base)}/{V2_ASSET_ALIASES.get(quote, quote)}"


def instrument_from_asset_pair(rest_name: str, raw: Mapping[str, Any]) -> Instrument:
    """One entry of REST ``AssetPairs`` (``result[rest_name]``)."""
    where = f"AssetPairs {rest_name}"
    pp = _precision(raw, "pair_decimals", where)
    qp = _precision(raw, "lot_decimals", where)
    wsname = raw.get("wsname")
    base = _strip_legacy(str(_require(raw, "base", where)))
    quote = _strip_legacy(str(_require(raw, "quote", where)))
    # WS v2 names BTC and DOGE where v1 and REST say XBT and XDG (asset by asset). Where the
    # WS v2 instrument channel is at hand, ``merge_rest_names`` maps through it instead.
    symbol = f"{base}/{quote}" if wsname is None else _v2_symbol(str(wsname))
    tick = raw.get("tick_size")
    return Instrument(
        symbol=symbol,
        base=base,
        quote=quote,
        price_precision=pp,
        qty_precision=qp,
        price_increment=to_scaled(tick, pp) if tick is not None else 1,
        qty_increment=1,
        qty_min=to_scaled(raw["ordermin"], qp) if "ordermin" in raw else 0,
        cost_min=_decimal(raw.get("costmin", 0), where),
        cost_precision=int(raw.get("cost_decimals", 5)),
        status=str(raw.get("status", "online")),
        altname=str(raw.get("altname", "")),
        rest_name=rest_name,
        wsname="" if wsname is None else str(wsname),
    )


def instruments_from_asset_pairs(result: Mapping[str, Any]) -> list[Instrument]:
    """Every pair of an ``AssetPairs`` result (the object inside ``{"error":[],"result":…}``)."""
    # Dark-pool pairs ("XXBTZUSD.d") share base and quote with the real pair: skip them.
    return [
        instrument_from_asset_pair(name, raw)
        for name, raw in result.items()
        if not name.endswith(".d")
    ]


def _rest_asset_names(asset_pairs: Mapping[str, Any]) -> dict[str, str]:
    """Each REST asset code (``XXDG``) with its name in the pairs' ``wsname`` (``XDG``)."""
    names: dict[str, str] = {}
    for raw in asset_pairs.values():
        wsname = raw.get("wsname") if isinstance(raw, Mapping) else None
        if not isinstance(wsname, str) or wsname.count("/") != 1:
            continue
        base_name, quote_name = wsname.split("/")
        for code, name in ((raw.get("base"), base_name), (raw.get("quote"), quote_name)):
            if isinstance(code, str) and code and name:
                names.setdefault(code, name)
    return names


def ws_names_for_rest_pairs(
    asset_pairs: Mapping[str, Any], ws_pairs: Iterable[Instrument]
) -> dict[str, str]:
    """REST pair key (``XDGUSD``) → WS v2 symbol (``DOGE/USD``), for each REST pair that
    has a WS v2 pair (the module docstring says how). ``asset_pairs`` is the ``AssetPairs``
    result; ``ws_pairs`` the WS v2 instrument channel's pairs."""
    ws = {(inst.base, inst.quote): inst.symbol for inst in ws_pairs}
    assets = {asset for pair in ws for asset in pair}
    names = _rest_asset_names(asset_pairs)

    def v2(code: object) -> str | None:
        name = names.get(code) if isinstance(code, str) else None
        if name is None:
            return None
        if name in assets:
            return name
        alias = V2_ASSET_ALIASES.get(name)
        return alias if alias in assets else None

    mapping: dict[str, str] = {}
    for key, raw in asset_pairs.items():
        if key.endswith(".d") or not isinstance(raw, Mapping):
            continue  # dark-pool pairs share their assets with the real one
        base, quote = v2(raw.get("base")), v2(raw.get("quote"))
        symbol = ws.get((base, quote)) if base is not None and quote is not None else None
        if symbol is not None:
            mapping[key] = symbol
    return mapping


def merge_rest_names(
    asset_pairs: Mapping[str, Any], ws_pairs: Iterable[Instrument]
) -> list[Instrument]:
    """The WS v2 instruments that have a REST pair, each with that pair's REST names.

    Names, precisions, increments, minimums and status come from the WS v2 instrument
    channel (what the books and the order checks must match); ``rest_name``, ``altname``
    and ``wsname`` from ``AssetPairs`` (what REST order entry and reconciliation read).
    """
    by_symbol = {inst.symbol: inst for inst in ws_pairs}
    merged: list[Instrument] = []
    for key, symbol in ws_names_for_rest_pairs(asset_pairs, by_symbol.values()).items():
        raw = asset_pairs[key]
        wsname = raw.get("wsname")
        merged.append(
            replace(
                by_symbol[symbol],
                rest_name=key,
                altname=str(raw.get("altname", "")),
                wsname="" if wsname is None else str(wsname),
            )
        )
    return merged


class InstrumentTable(Mapping[str, Instrument]):
    """Instruments by WS v2 symbol, also found by REST name, altname and WS v1 name.

    An instrument updated without REST names (from the WS v2 instrument channel) keeps
    those the table already knew for its symbol: a precision change must not cost REST
    order entry its pair name.
    """

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        self._aliases: dict[str, str] = {}
        self.by_symbol: Callable[[str], Instrument | None] = self._by_symbol.get
        """The instrument of a WS v2 symbol, exactly (no other name; None if unknown): what
        ``lookup`` finds first, read with no Python call (on every order's path)."""
        self.update(instruments)

    def update(self, instruments: Iterable[Instrument]) -> None:
        for new in instruments:
            known = self._by_symbol.get(new.symbol)
            inst = new
            if known is not None and not (new.rest_name or new.altname or new.wsname):
                inst = replace(
                    new, rest_name=known.rest_name, altname=known.altname, wsname=known.wsname
                )
            self._by_symbol[inst.symbol] = inst
            for alias in (inst.rest_name, inst.altname, inst.wsname, inst.symbol.replace("/", "")):
                if alias:
                    self._aliases[alias] = inst.symbol

    def lookup(self, name: str) -> Instrument | None:
        """By WS symbol, REST name, altname or WS v1 name."""
        inst = self._by_symbol.get(name)
        if inst is None and name in self._aliases:
            inst = self._by_symbol.get(self._aliases[name])
        return inst

    def __getitem__(self, symbol: str) -> Instrument:
        inst = self.lookup(symbol)
        if inst is None:
            raise KeyError(symbol)
        return inst

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_symbol)

    def __len__(self) -> int:
        return len(self._by_symbol)
