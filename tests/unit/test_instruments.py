"""Instruments and exact numbers (bot/kraken/instruments.py; KRAKEN.md §5.8, §8.4).

Uses the real captures in ../shared/data/kraken/: the WS v2 instrument snapshot of
kraken-data-recorder and the REST AssetPairs response recorded by cryptofeed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import ProtocolError
from bot.kraken.instruments import (
    MAX_PRECISION,
    V2_ASSET_ALIASES,
    Instrument,
    InstrumentTable,
    PrecisionLost,
    format_scaled,
    from_scaled,
    instrument_from_asset_pair,
    instrument_from_ws,
    instruments_from_asset_pairs,
    instruments_from_ws_frame,
    merge_rest_names,
    to_scaled,
    ws_names_for_rest_pairs,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/kraken"
LIMIT = 2**50


@pytest.fixture(scope="module")
def ws_frame() -> dict[str, Any]:
    with (DATA / "kraken-data-recorder_instrument_snapshot.json").open() as f:
        frame: dict[str, Any] = json.load(f)
    return frame


@pytest.fixture(scope="module")
def asset_pairs() -> dict[str, Any]:
    # Lines look like ``https://api.kraken.com/0/public/AssetPairs -> 1618678132.358447: {json}``.
    with (DATA / "cryptofeed_KRAKEN.0").open() as f:
        for line in f:
            if line.startswith("https://api.kraken.com/0/public/AssetPairs -> "):
                _, body = line.split(": ", 1)
                response: dict[str, Any] = json.loads(body)
                assert response["error"] == []
                result: dict[str, Any] = response["result"]
                return result
    raise AssertionError("no AssetPairs line in the capture")


# ----------------------------------------------------------------------------- to_scaled


@pytest.mark.parametrize("precision", range(11))
def test_every_precision_converts_the_smallest_and_a_typical_value(precision: int) -> None:
    tiny = Decimal(1).scaleb(-precision)  # one unit: 1, 0.1, …, 0.0000000001
    for value in (float(tiny), str(tiny), tiny):
        assert to_scaled(value, precision) == 1
    text = "123." + "9876543210"[:precision] if precision else "123"
    expected = int(text.replace(".", ""))
    for value in (float(text), text, Decimal(text)):
        assert to_scaled(value, precision) == expected
    assert to_scaled(29430, precision) == 29430 * 10**precision  # JSON ints stay ints


@given(
    n=st.integers(min_value=-(LIMIT - 1), max_value=LIMIT - 1),
    precision=st.integers(min_value=0, max_value=10),
)
def test_any_decimal_below_2_to_the_50_survives_a_float(n: int, precision: int) -> None:
    text = format_scaled(n, precision)
    assert to_scaled(float(text), precision) == n
    assert to_scaled(text, precision) == n
    assert to_scaled(Decimal(text), precision) == n
    assert from_scaled(n, precision) == Decimal(text)


@given(
    n=st.integers(min_value=LIMIT, max_value=10**27),  # up to 28 digits: see the xfail below
    precision=st.integers(min_value=0, max_value=10),
)
def test_huge_quantities_are_exact_from_text_and_precision_lost_from_float(
    n: int, precision: int
) -> None:
    text = format_scaled(n, precision)
    assert to_scaled(text, precision) == n
    assert to_scaled(Decimal(text), precision) == n
    with pytest.raises(PrecisionLost):
        to_scaled(float(text), precision)


def test_precision_lost_is_a_protocol_error_and_starts_at_2_to_the_50() -> None:
    assert issubclass(PrecisionLost, ProtocolError)
    assert to_scaled(float(LIMIT - 1), 0) == LIMIT - 1
    with pytest.raises(PrecisionLost):
        to_scaled(float(LIMIT), 0)
    # 17 significant digits: 2**53 + 1 has no float at all.
    with pytest.raises(PrecisionLost):
        to_scaled(90071992.54740993, 8)
    assert to_scaled("90071992.54740993", 8) == 2**53 + 1


def test_tiny_values() -> None:
    assert to_scaled(1e-8, 8) == 1
    assert to_scaled(0.00000048, 8) == 48  # str(float) would say 4.8e-07
    assert to_scaled(1e-10, 10) == 1
    assert to_scaled(0.0, 8) == 0
    assert to_scaled(-0.0, 8) == 0
    with pytest.raises(ProtocolError):
        to_scaled(1e-9, 8)
    with pytest.raises(ProtocolError):
        to_scaled("5e-324", 8)


@pytest.mark.parametrize("value", [5e-324, 1e-16])
def test_tiny_floats_below_the_precision_are_rejected(value: float) -> None:
    with pytest.raises(ProtocolError):
        to_scaled(value, 8)


def test_decimals_beyond_28_digits_are_exact_or_rejected() -> None:
    text = "10000000000000000000000000001"  # 29 digits
    with contextlib.suppress(ProtocolError):
        assert to_scaled(text, 0) == int(text)


@pytest.mark.parametrize(
    ("value", "precision"),
    [
        (0.123, 2),
        ("0.123", 2),
        (Decimal("0.123"), 2),
        (29430.25, 1),
        ("1.000000001", 8),
        (0.123456789, 8),
        (123456.123456789, 8),
    ],
)
def test_more_decimals_than_the_precision_is_rejected(value: Any, precision: int) -> None:
    with pytest.raises(ProtocolError) as info:
        to_scaled(value, precision)
    assert not isinstance(info.value, PrecisionLost)


def test_more_decimals_than_the_precision_is_rejected_near_2_to_the_50() -> None:
    with pytest.raises(ProtocolError):
        to_scaled(600000.123456789, 8)  # 15 digits, 9 decimals


@pytest.mark.parametrize(
    "value",
    [True, False, None, [], {}, "abc", "", "1e", float("nan"), float("inf"), Decimal("NaN")],
)
def test_non_numbers_are_rejected(value: Any) -> None:
    with pytest.raises(ProtocolError):
        to_scaled(value, 2)


def test_signs_and_ints() -> None:
    assert to_scaled(-1.5, 1) == -15
    assert to_scaled("-0.01", 2) == -1
    assert to_scaled(7, 0) == 7
    assert to_scaled(10**20, 8) == 10**28  # ints are exact at any size
    assert to_scaled(Decimal("1E+2"), 2) == 10000
    assert to_scaled(" 1.5 ", 1) == 15  # Decimal() accepts surrounding spaces


@given(
    n=st.integers(min_value=-(10**20), max_value=10**20),
    precision=st.integers(min_value=0, max_value=MAX_PRECISION),
)
def test_format_scaled_is_kraken_fixed_point_text(n: int, precision: int) -> None:
    text = format_scaled(n, precision)
    assert Decimal(text) == from_scaled(n, precision)
    if precision:
        assert len(text.split(".")[1]) == precision
    else:
        assert "." not in text
    assert to_scaled(text, precision) == n


def test_format_scaled_examples() -> None:
    assert format_scaled(100000, 8) == "0.00100000"
    assert format_scaled(294302, 1) == "29430.2"
    assert format_scaled(-5, 2) == "-0.05"
    assert format_scaled(42, 0) == "42"


# ------------------------------------------------------------------- WS instrument frame


def test_ws_snapshot_parses_every_pair(ws_frame: dict[str, Any]) -> None:
    instruments = instruments_from_ws_frame(ws_frame)
    assert len(instruments) == len(ws_frame["data"]["pairs"]) == 683
    table = InstrumentTable(instruments)
    assert len(table) == 683
    # KRAKEN.md §5.8 recorded values.
    btc = table["BTC/USD"]
    assert (btc.price_precision, btc.qty_precision) == (1, 8)
    assert btc.price_increment == 1  # 0.1 at precision 1
    assert btc.qty_increment == 1  # 1e-08 at precision 8
    assert btc.qty_min == 10_000  # 0.0001 BTC
    assert btc.cost_min == Decimal("0.5")
    assert (btc.base, btc.quote, btc.status) == ("BTC", "USD", "online")
    for symbol, pp in (("ETH/USD", 2), ("MATIC/USD", 4), ("ALGO/USD", 5)):
        assert (table[symbol].price_precision, table[symbol].qty_precision) == (pp, 8)


def test_ws_snapshot_values_match_the_raw_numbers(ws_frame: dict[str, Any]) -> None:
    for raw, inst in zip(
        ws_frame["data"]["pairs"], instruments_from_ws_frame(ws_frame), strict=True
    ):
        assert inst.symbol == raw["symbol"]
        assert inst.price_decimal(inst.price_increment) == Decimal(repr(raw["price_increment"]))
        assert inst.qty_decimal(inst.qty_increment) == Decimal(repr(raw["qty_increment"]))
        assert inst.qty_decimal(inst.qty_min) == Decimal(repr(raw["qty_min"]))
        assert 0 <= inst.price_precision <= 10


def test_ws_frame_shape_errors() -> None:
    with pytest.raises(ProtocolError):
        instruments_from_ws_frame({"channel": "book"})
    with pytest.raises(ProtocolError):
        instruments_from_ws_frame({"channel": "instrument", "data": []})
    with pytest.raises(ProtocolError):
        instruments_from_ws_frame({"channel": "instrument", "data": {"pairs": {}}})
    good = {"symbol": "X/Y", "price_precision": 2, "qty_precision": 8}
    assert instrument_from_ws(good).symbol == "X/Y"
    for key, bad in (
        ("price_precision", None),
        ("price_precision", True),
        ("price_precision", -1),
        ("qty_precision", MAX_PRECISION + 1),
        ("qty_precision", 2.0),
        ("symbol", 5),
    ):
        with pytest.raises(ProtocolError):
            instrument_from_ws({**good, key: bad})
    with pytest.raises(ProtocolError):
        instrument_from_ws({"symbol": "X/Y", "qty_precision": 8})
    with pytest.raises(ProtocolError):  # an increment finer than the precision
        instrument_from_ws({**good, "price_increment": 0.001})


# ------------------------------------------------------------------- REST AssetPairs


def test_asset_pairs_capture(asset_pairs: dict[str, Any]) -> None:
    instruments = instruments_from_asset_pairs(asset_pairs)
    dark_pool = [name for name in asset_pairs if name.endswith(".d")]
    assert len(asset_pairs) == 304
    assert len(instruments) == 304 - len(dark_pool) == 293
    by_rest = {inst.rest_name: inst for inst in instruments}
    btc = by_rest["XXBTZUSD"]
    assert btc.symbol == "BTC/USD"  # wsname XBT/USD, renamed as in WS v2
    assert (btc.base, btc.quote, btc.altname) == ("BTC", "USD", "XBTUSD")
    assert (btc.price_precision, btc.qty_precision) == (1, 8)
    assert btc.qty_min == 20_000  # ordermin "0.0002"
    eth = by_rest["XETHZEUR"]
    assert (eth.symbol, eth.base, eth.quote) == ("ETH/EUR", "ETH", "EUR")
    for name, raw in asset_pairs.items():
        if name in dark_pool:
            continue
        inst = by_rest[name]
        assert inst.price_precision == raw["pair_decimals"]
        assert inst.qty_precision == raw["lot_decimals"]
        if "ordermin" in raw:
            assert inst.qty_decimal(inst.qty_min) == Decimal(raw["ordermin"])


def test_table_finds_a_pair_by_rest_name_altname_and_symbol(asset_pairs: dict[str, Any]) -> None:
    table = InstrumentTable(
        instrument_from_asset_pair(name, raw)
        for name, raw in asset_pairs.items()
        if "wsname" in raw
    )
    assert table.lookup("XXBTZUSD") is table["BTC/USD"]
    assert table.lookup("XBTUSD") is table["BTC/USD"]
    assert table.lookup("BTCUSD") is table["BTC/USD"]
    assert table.lookup("DOGE/MARS") is None
    with pytest.raises(KeyError):
        table["DOGE/MARS"]
    assert "BTC/USD" in table


@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["BTC/USD", "ETH/USD", "BTCUSD", "PF_XBTUSD"]),
                st.sampled_from(["", "XXBTZUSD", "ETHUSD", "BTC/USD"]),
                st.integers(0, 5),
            ),
            max_size=4,
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["BTC/USD", "ETH/USD", "BTCUSD", "PF_XBTUSD", "XXBTZUSD", "ETHUSD", "X"]),
)
def test_by_symbol_is_what_lookup_finds_first_through_every_update(
    updates: list[list[tuple[str, str, int]]], name: str
) -> None:
    """``by_symbol`` (the symbol dict's own ``get``, bound once) is never stale: after any
    updates it finds what ``lookup`` finds for a symbol the table holds, and nothing else."""
    table = InstrumentTable()
    for batch in updates:
        table.update(
            Instrument(symbol, "B", "Q", pp, 4, rest_name=rest) for symbol, rest, pp in batch
        )
        for symbol in table:
            assert table.by_symbol(symbol) is table.lookup(symbol)
        found = table.by_symbol(name)
        assert found is None or found is table.lookup(name)
        assert (found is not None) == (name in list(table))


def test_dark_pool_pairs_do_not_replace_the_real_pair(asset_pairs: dict[str, Any]) -> None:
    table = InstrumentTable(instruments_from_asset_pairs(asset_pairs))
    assert table["BTC/USD"].price_precision == 1
    assert table["BTC/USD"].rest_name == "XXBTZUSD"


def test_rest_and_ws_captures_agree_on_most_precisions(
    ws_frame: dict[str, Any], asset_pairs: dict[str, Any]
) -> None:
    # Two years apart (2021 REST, 2023 WS): most pairs kept their precisions.
    ws = InstrumentTable(instruments_from_ws_frame(ws_frame))
    rest = [
        instrument_from_asset_pair(name, raw)
        for name, raw in asset_pairs.items()
        if "wsname" in raw
    ]
    both = [(r, ws[r.symbol]) for r in rest if r.symbol in ws]
    assert len(both) > 250
    same = sum(
        (r.price_precision, r.qty_precision) == (w.price_precision, w.qty_precision)
        for r, w in both
    )
    assert same / len(both) > 0.9


# Pairs of the 2021 REST capture that the later WS v2 snapshot no longer lists (delisted in
# between): no WS v2 name exists for them, under any spelling of their assets.
DELISTED: frozenset[str] = frozenset(
    {"AAVEAUD", "ATOMAUD", "BALETH", "COMPETH", "DOTAUD", "FILAUD", "GNOETH", "GRTAUD"}
    | {"GRTETH", "KEEPETH", "KSMAUD", "OXTETH", "SNXAUD", "SNXGBP", "STORJETH", "TBTCETH"}
    | {"XREPXETH", "XXLMZAUD", "YFIAUD", "YFIETH", "YFIGBP"}
)


def test_every_rest_pair_in_both_captures_maps_to_its_ws_v2_name_doge_included(
    ws_frame: dict[str, Any], asset_pairs: dict[str, Any]
) -> None:
    """REST says XDG/USD (wsname), WS v2 says DOGE/USD: mapped through the assets, and so
    is every pair the two captures share."""
    ws = instruments_from_ws_frame(ws_frame)
    mapping = ws_names_for_rest_pairs(asset_pairs, ws)
    real = {name for name in asset_pairs if not name.endswith(".d")}
    assert set(mapping) == real - DELISTED and len(mapping) == 293 - 21
    ws_symbols = {inst.symbol for inst in ws}
    assert set(mapping.values()) <= ws_symbols
    assert len(set(mapping.values())) == len(mapping)  # one WS pair per REST pair
    assert mapping["XDGUSD"] == "DOGE/USD" and asset_pairs["XDGUSD"]["wsname"] == "XDG/USD"
    assert mapping["XDGEUR"] == "DOGE/EUR" and mapping["XDGUSDT"] == "DOGE/USDT"
    assert mapping["XXDGXXBT"] == "DOGE/BTC"  # both assets renamed
    assert mapping["XXBTZUSD"] == "BTC/USD" and mapping["XETHZEUR"] == "ETH/EUR"
    assert mapping["XXLMZUSD"] == "XLM/USD"  # an X-prefixed code that keeps its name
    # Each mapped pair trades the same assets on both sides.
    by_symbol = {inst.symbol: inst for inst in ws}
    for name, symbol in mapping.items():
        base, _, quote = asset_pairs[name]["wsname"].partition("/")
        inst = by_symbol[symbol]
        assert (V2_ASSET_ALIASES.get(base, base), V2_ASSET_ALIASES.get(quote, quote)) == (
            inst.base,
            inst.quote,
        )


def test_merged_instruments_take_ws_precisions_and_rest_names(
    ws_frame: dict[str, Any], asset_pairs: dict[str, Any]
) -> None:
    ws = instruments_from_ws_frame(ws_frame)
    table = InstrumentTable(merge_rest_names(asset_pairs, ws))
    doge = table["DOGE/USD"]
    ws_doge = next(inst for inst in ws if inst.symbol == "DOGE/USD")
    assert (doge.price_precision, doge.qty_precision, doge.qty_min) == (
        ws_doge.price_precision,
        ws_doge.qty_precision,
        ws_doge.qty_min,
    )
    assert (doge.rest_name, doge.altname, doge.wsname) == ("XDGUSD", "XDGUSD", "XDG/USD")
    # Whatever name a user or a REST answer gives, it is the one pair.
    for name in ("DOGE/USD", "XDG/USD", "XDGUSD", "DOGEUSD"):
        assert table.lookup(name) is doge
    # A later instrument update (WS v2 only: no REST names) keeps the REST names.
    table.update([replace(ws_doge, price_precision=ws_doge.price_precision + 1)])
    assert table["DOGE/USD"].rest_name == "XDGUSD" and table.lookup("XDGUSD") is not None
    assert table["DOGE/USD"].price_precision == ws_doge.price_precision + 1


def test_rest_only_names_rename_assets_not_text() -> None:
    # Without the WS v2 channel (a REST-only table) the symbol is still WS v2's, asset by
    # asset: XDG is DOGE, XBT is BTC, and no other text is touched.
    for wsname, symbol in (
        ("XDG/USD", "DOGE/USD"),
        ("XDG/XBT", "DOGE/BTC"),
        ("XBT/USD", "BTC/USD"),
        ("WBTC/USD", "WBTC/USD"),
    ):
        raw = {"wsname": wsname, "base": "X", "quote": "Y", "pair_decimals": 1}
        assert instrument_from_asset_pair("K", {**raw, "lot_decimals": 8}).symbol == symbol


def test_asset_pair_errors() -> None:
    good = {"base": "XXBT", "quote": "ZUSD", "pair_decimals": 1, "lot_decimals": 8}
    assert instrument_from_asset_pair("XXBTZUSD", good).symbol == "BTC/USD"
    for key in ("base", "pair_decimals", "lot_decimals"):
        with pytest.raises(ProtocolError):
            instrument_from_asset_pair("XXBTZUSD", {k: v for k, v in good.items() if k != key})
    with pytest.raises(ProtocolError):
        instrument_from_asset_pair("XXBTZUSD", {**good, "ordermin": "0.000000001"})


def test_instrument_helpers() -> None:
    inst = Instrument("BTC/USD", "BTC", "USD", price_precision=1, qty_precision=8)
    assert inst.price("29430.2") == 294302
    assert inst.qty(0.001) == 100_000
    assert inst.price_text(294302) == "29430.2"
    assert inst.qty_text(100_000) == "0.00100000"
    assert inst.cost(294302, 100_000) == Decimal("29.4302")
