"""Kraken Futures contracts from ``GET /derivatives/api/v3/instruments``, as exact numbers.

https://docs.kraken.com/api/docs/futures-api/trading/get-instruments lists, per contract,
``tickSize``, ``contractSize``, ``contractValueTradePrecision`` (how many decimals a size
may have; negative: sizes are multiples of ``10**-p``, e.g. ``-3`` for PF_PEPEUSD),
``maxPositionSize`` and the margin schedule ``marginLevels`` (``retailMarginLevels`` for
retail clients): each level starts at a number of ``contracts`` (inverse futures) or of
``numNonContractUnits`` (quote-currency notional, multi-collateral futures) and gives the
``initialMargin`` and ``maintenanceMargin`` fractions from there up.

As on spot (``bot.kraken.instruments``), prices and sizes are ints scaled by the
contract's precisions: ``price_precision`` is the number of decimals of the tick
(PF_XBTUSD's tick 0.5 gives precision 1 and ``price_increment`` 5), ``qty_precision`` is
``max(contractValueTradePrecision, 0)`` and ``qty_increment`` the size step in those units.
Kraken prints JSON numbers; they are read exactly (``Decimal``) and never through floats.

This module owns ``FuturesInstrument``, its parsing and the margin arithmetic on it; it
does no I/O. Symbols are upper-cased: Kraken echoes them in lower case in places
(``pi_xbtusd`` in order events) and the table finds either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from bot.core.errors import ProtocolError
from bot.kraken.codec import as_object, decimal_of
from bot.kraken.instruments import MAX_PRECISION, format_scaled, from_scaled, to_scaled

__all__ = [
    "LINEAR_TYPES",
    "FuturesInstrument",
    "FuturesInstrumentTable",
    "MarginLevel",
    "instrument_from_json",
    "instruments_from_response",
]

LINEAR_TYPES: Final = frozenset({"flexible_futures", "futures_vanilla"})
_MAX_QTY_EXPONENT: Final = 18


@dataclass(frozen=True, slots=True)
class MarginLevel:
    """One step of a margin schedule: from ``start`` (``unit``) up, these fractions."""

    start: Decimal
    unit: Literal["contracts", "notional"]
    initial: Decimal
    maintenance: Decimal


@dataclass(frozen=True, slots=True)
class FuturesInstrument:
    """One Futures contract. Increments and the maximum position are scaled ints."""

    symbol: str
    kind: str
    base: str
    quote: str
    tick_size: Decimal
    price_precision: int
    price_increment: int
    contract_size: Decimal
    contract_value_precision: int
    qty_precision: int
    qty_increment: int
    max_position: int | None = None
    margin_levels: tuple[MarginLevel, ...] = ()
    retail_margin_levels: tuple[MarginLevel, ...] = ()
    tradeable: bool = True
    post_only: bool = False
    funding_rate_coefficient: Decimal | None = None
    max_relative_funding_rate: Decimal | None = None
    last_trading_time: str | None = None

    # -- numbers ---------------------------------------------------------------------
    def price(self, value: int | str | Decimal) -> int:
        """A price as received (or typed) to its scaled int (a ProtocolError if off-grid
        in decimals; the tick is checked by ``on_tick``)."""
        return to_scaled(value, self.price_precision)

    def qty(self, value: int | str | Decimal) -> int:
        """A size in contracts to its scaled int."""
        return to_scaled(value, self.qty_precision)

    def price_decimal(self, n: int) -> Decimal:
        return from_scaled(n, self.price_precision)

    def qty_decimal(self, n: int) -> Decimal:
        return from_scaled(n, self.qty_precision)

    def price_text(self, n: int) -> str:
        return format_scaled(n, self.price_precision)

    def qty_text(self, n: int) -> str:
        return format_scaled(n, self.qty_precision)

    def on_tick(self, price: int) -> bool:
        return price > 0 and price % self.price_increment == 0

    def on_lot(self, qty: int) -> bool:
        return qty > 0 and qty % self.qty_increment == 0

    # -- value and margin ------------------------------------------------------------
    @property
    def linear(self) -> bool:
        """Multi-collateral and vanilla futures are linear (value in the quote currency);
        inverse futures (``futures_inverse``) are valued in the base currency."""
        return self.kind in LINEAR_TYPES

    @property
    def perpetual(self) -> bool:
        return self.last_trading_time is None

    def value(self, qty: int, price: int) -> Decimal:
        """The exact value of ``qty`` contracts at ``price``: quote units for a linear
        contract (``qty * contractSize * price``), base units for an inverse one
        (``qty * contractSize / price``, which may not terminate: rounded to 28 digits)."""
        size = self.qty_decimal(abs(qty)) * self.contract_size
        if self.linear:
            return size * self.price_decimal(price)
        return size / self.price_decimal(price)

    def margin_level(self, qty: int, price: int, *, retail: bool = False) -> MarginLevel:
        """The schedule's step for a position of ``qty`` contracts at ``price``."""
        levels = self.retail_margin_levels if retail and self.retail_margin_levels else None
        levels = levels or self.margin_levels
        if not levels:
            raise ProtocolError(f"{self.symbol}: no margin schedule")
        chosen = levels[0]
        for level in levels:
            size = (
                self.qty_decimal(abs(qty)) if level.unit == "contracts" else self.value(qty, price)
            )
            if size >= level.start:
                chosen = level
        return chosen

    def initial_margin(self, qty: int, price: int, *, retail: bool = False) -> Decimal:
        """Initial margin of ``qty`` contracts at ``price``, in the value's currency."""
        return self.value(qty, price) * self.margin_level(qty, price, retail=retail).initial

    def maintenance_margin(self, qty: int, price: int, *, retail: bool = False) -> Decimal:
        level = self.margin_level(qty, price, retail=retail)
        return self.value(qty, price) * level.maintenance


# ---------------------------------------------------------------------------- parsing


def _decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal:
    if key not in raw:
        raise ProtocolError(f"{where}: missing {key!r}")
    return decimal_of(raw[key], f"{where}: {key}")


def _opt_decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = raw.get(key)
    return None if value is None else decimal_of(value, f"{where}: {key}")


def _precision_of(tick: Decimal, where: str) -> tuple[int, int]:
    """(price_precision, price_increment) for a tick size."""
    if tick <= 0:
        raise ProtocolError(f"{where}: tickSize must be positive, got {tick}")
    exponent = tick.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite: decimal_of refuses the rest
    precision = max(-exponent, 0)
    if precision > MAX_PRECISION:
        raise ProtocolError(f"{where}: tickSize {tick} has more than {MAX_PRECISION} decimals")
    return precision, to_scaled(tick, precision)


def _qty_grid(raw: Mapping[str, Any], where: str) -> tuple[int, int, int]:
    """(contract_value_precision, qty_precision, qty_increment)."""
    value = raw.get("contractValueTradePrecision", 0)
    cvtp = decimal_of(value, f"{where}: contractValueTradePrecision")
    if cvtp != cvtp.to_integral_value() or not -_MAX_QTY_EXPONENT <= cvtp <= MAX_PRECISION:
        raise ProtocolError(f"{where}: contractValueTradePrecision {cvtp} is not a usable int")
    p = int(cvtp)
    return p, max(p, 0), 10 ** max(-p, 0)


def _levels(raw: Any, where: str) -> tuple[MarginLevel, ...]:
    if raw is None:
        return ()
    if type(raw) is not list:
        raise ProtocolError(f"{where}: margin levels must be a list")
    levels: list[MarginLevel] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        level = as_object(item, at)
        if level.get("numNonContractUnits") is not None:
            start, unit = _decimal(level, "numNonContractUnits", at), "notional"
        elif level.get("contracts") is not None:
            start, unit = _decimal(level, "contracts", at), "contracts"
        else:
            start, unit = Decimal(0), "notional" if levels else "contracts"
        initial = _decimal(level, "initialMargin", at)
        maintenance = _decimal(level, "maintenanceMargin", at)
        if not (0 <= maintenance <= initial) or start < 0:
            raise ProtocolError(f"{at}: margin fractions out of order")
        levels.append(MarginLevel(start, unit, initial, maintenance))  # type: ignore[arg-type]
    return tuple(sorted(levels, key=lambda lv: lv.start))


def instrument_from_json(raw: Mapping[str, Any]) -> FuturesInstrument:
    """One entry of ``/instruments`` (``instruments[i]``), numbers decoded exactly."""
    symbol = raw.get("symbol")
    if type(symbol) is not str or not symbol:
        raise ProtocolError(f"instrument: symbol must be a string, got {symbol!r}")
    where = f"instrument {symbol}"
    tick = _decimal(raw, "tickSize", where)
    price_precision, price_increment = _precision_of(tick, where)
    cvtp, qty_precision, qty_increment = _qty_grid(raw, where)
    contract_size = _opt_decimal(raw, "contractSize", where) or Decimal(1)
    max_pos = _opt_decimal(raw, "maxPositionSize", where)
    pair = raw.get("pair")
    base, _, quote = pair.partition(":") if type(pair) is str else ("", "", "")
    kind = raw.get("type")
    tradeable = raw.get("tradeable", True)
    post_only = raw.get("postOnly", False)
    last_trading = raw.get("lastTradingTime")
    if type(tradeable) is not bool or type(post_only) is not bool:
        raise ProtocolError(f"{where}: tradeable and postOnly must be booleans")
    return FuturesInstrument(
        symbol=symbol.upper(),
        kind=kind if type(kind) is str else "flexible_futures",
        base=str(raw.get("base") or base),
        quote=str(raw.get("quote") or quote),
        tick_size=tick,
        price_precision=price_precision,
        price_increment=price_increment,
        contract_size=contract_size,
        contract_value_precision=cvtp,
        qty_precision=qty_precision,
        qty_increment=qty_increment,
        max_position=None if max_pos is None else to_scaled(max_pos, qty_precision),
        margin_levels=_levels(raw.get("marginLevels"), f"{where}: marginLevels"),
        retail_margin_levels=_levels(raw.get("retailMarginLevels"), f"{where}: retailMarginLevels"),
        tradeable=tradeable,
        post_only=post_only,
        funding_rate_coefficient=_opt_decimal(raw, "fundingRateCoefficient", where),
        max_relative_funding_rate=_opt_decimal(raw, "maxRelativeFundingRate", where),
        last_trading_time=last_trading if type(last_trading) is str else None,
    )


def instruments_from_response(body: Mapping[str, Any]) -> list[FuturesInstrument]:
    """Every tradable contract of an ``/instruments`` answer; index entries (no tick
    size: ``in_xbtusd``, ``rr_xbtusd``) are left out."""
    entries = body.get("instruments")
    if type(entries) is not list:
        raise ProtocolError("instruments: 'instruments' must be a list")
    out: list[FuturesInstrument] = []
    for i, entry in enumerate(entries):
        item = as_object(entry, f"instruments[{i}]")
        if item.get("tickSize") is None:
            continue
        out.append(instrument_from_json(item))
    return out


class FuturesInstrumentTable(Mapping[str, FuturesInstrument]):
    """Contracts by upper-case symbol; ``lookup`` accepts any case."""

    def __init__(self, instruments: Iterable[FuturesInstrument] = ()) -> None:
        self._by_symbol: dict[str, FuturesInstrument] = {}
        self.update(instruments)

    def update(self, instruments: Iterable[FuturesInstrument]) -> None:
        for inst in instruments:
            self._by_symbol[inst.symbol] = inst

    def lookup(self, symbol: str) -> FuturesInstrument | None:
        return self._by_symbol.get(symbol.upper())

    def __getitem__(self, symbol: str) -> FuturesInstrument:
        inst = self.lookup(symbol)
        if inst is None:
            raise KeyError(symbol)
        return inst

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_symbol)

    def __len__(self) -> int:
        return len(self._by_symbol)
