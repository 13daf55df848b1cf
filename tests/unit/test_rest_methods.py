"""``RestMethods.add_order``: the engine's shape (an ``Instrument`` and scaled ints) is built
on a short path; it must send exactly what the general path sends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.kraken.instruments import Instrument
from bot.kraken.ratelimit import TradingCounter
from bot.kraken.rest_methods import RestMethods, TradingCharge
from bot.kraken.signer import FormFields, encode_form
from bot.sim.pairs import default_instruments

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
BTC: Instrument = default_instruments(("BTC/USD",))["BTC/USD"]
ETH: Instrument = default_instruments(("ETH/USD",))["ETH/USD"]


class _Capture(RestMethods):
    """Records what each call would send: method, parameters in order, charges."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, object]], tuple[TradingCharge, ...]]] = []
        self.params: list[Mapping[str, object] | None] = []

    async def private(
        self,
        method: str,
        params: Mapping[str, object] | None = None,
        *,
        trading: Sequence[TradingCharge] = (),
        body_format: Any = None,
    ) -> dict[str, Any]:
        present = [(k, v) for k, v in (params or {}).items() if v is not None]
        self.calls.append((method, present, tuple(trading)))
        self.params.append(params)
        return {}


def _sent(**kwargs: Any) -> tuple[str, list[tuple[str, object]], tuple[TradingCharge, ...]]:
    return _capture(**kwargs).calls[0]


def _capture(**kwargs: Any) -> _Capture:
    client = _Capture()
    asyncio.run(client.add_order(**kwargs))
    return client


@given(
    st.fixed_dictionaries(
        {
            "pair": st.sampled_from([BTC, ETH]),
            "side": st.sampled_from(["buy", "sell"]),
            "ordertype": st.sampled_from(["limit", "market"]),
            "volume": st.integers(min_value=1, max_value=10**14),
            "price": st.none() | st.integers(min_value=1, max_value=10**12),
            "cl_ord_id": st.none() | st.uuids().map(str),
            "oflags": st.none() | st.sampled_from(["", "post", "post,fciq"]),
            "timeinforce": st.none() | st.sampled_from(["IOC", "GTD"]),
        }
    )
)
def test_the_engine_shape_sends_what_the_general_path_sends(args: dict[str, Any]) -> None:
    captured = _capture(**args)
    fast = captured.calls[0]
    general = _sent(**args, extra={})  # any extra takes the general path
    assert fast == general
    # Its body is made along with the fields: exactly what encode_form makes of them.
    (form,) = captured.params
    assert form is not None
    # Unreserved but for a "," (written %2C, as quote_plus writes it: "post,fciq").
    plain = all(_UNRESERVED.fullmatch(str(v).replace(",", "")) for v in form.values())
    assert (type(form) is FormFields) is plain
    if type(form) is FormFields:
        assert b"nonce=7&" + form.encoded == encode_form({"nonce": 7, **form})
    method, params, charges = fast
    assert method == "AddOrder"
    inst = args["pair"]
    assert params[0] == ("pair", inst.altname or inst.rest_name or inst.symbol)
    assert charges == ((inst.symbol, TradingCounter.add_cost()),)


def test_a_value_that_needs_quoting_is_left_to_encode_form() -> None:
    # Kraken takes up to 18 printable characters as a cl_ord_id: "&", "=" and " " included.
    for cid in ("a b", "x&y=z", "100%"):
        captured = _capture(pair=BTC, side="buy", ordertype="limit", volume=1, cl_ord_id=cid)
        (params,) = captured.params
        assert type(params) is dict and params["cl_ord_id"] == cid
    assert FormFields.of({"a": "1", "b": "2"}, "a=1&b=2") is not None
    assert FormFields.of({"a": "1&b=2"}, "a=1&b=2") is None  # one field, two parts
    assert FormFields.of({"a": "x y"}, "a=x y") is None
    assert FormFields.of({"a": "p,q"}, "a=p%2Cq") is not None  # quote_plus's ","
    assert FormFields.of({"a": "p%2Cq"}, "a=p%2Cq") is None  # the text "%2C" needs "%252C"
    assert FormFields.of({"a": "p,q", "b": "r"}, "a=p%2Cq&b=s") is None  # not the fields'


def test_trades_history_asks_for_each_taker_match_apart() -> None:
    """Kraken's ``consolidate_taker`` defaults to true (one trade per taker order's
    matches); the executions feed reports each match by its own ``exec_id``, so the
    history is asked for them apart, and the ids agree (reconcile counts a fill once by id)."""
    client = _Capture()
    asyncio.run(client.trades_history(start=5))
    assert client.calls == [("TradesHistory", [("start", 5), ("consolidate_taker", False)], ())]


def test_other_shapes_take_the_general_path_and_its_checks() -> None:
    _, params, _ = _sent(pair=BTC, side="buy", ordertype="limit", volume=1, price=2, userref=7)
    assert ("userref", 7) in params
    _, params, _ = _sent(pair=BTC, side="buy", ordertype="limit", volume=1, oflags=["post"])
    assert ("oflags", "post") in params
    with pytest.raises(TypeError, match="scaled int with an Instrument"):
        _sent(pair=BTC, side="buy", ordertype="limit", volume=1.5)
    with pytest.raises(TypeError, match="mutually exclusive"):
        _sent(pair=BTC, side="buy", ordertype="limit", volume=1, cl_ord_id="a", userref=1)
