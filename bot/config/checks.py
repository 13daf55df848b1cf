"""Checks that span keys (live mode needs each traded venue's credentials, the switch
refreshes before it expires, unique strategy names, spot strategies' symbols within
``market.symbols``, and the venue rules of ``bot.config.venues``).

They read the raw data, so they run beside the schema's type errors and all are reported
together, each at its line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.config.reader import Reader
from bot.config.venues import on_futures, venue_checks

__all__ = ["cross_checks"]


def cross_checks(reader: Reader, data: dict[str, Any]) -> None:
    """Checks that span keys; they read the raw data, so they run beside type errors."""
    futures = data.get("futures")
    live = data.get("mode") == "live"
    if live and isinstance(futures, dict) and futures.get("credentials") is None:
        message = "credentials: required in live mode (api_key_env and api_secret_env)"
        reader.problem(("futures",), message, key=True)
    spot = not isinstance(futures, dict) or _trades_spot(data)
    if live and spot and data.get("credentials") is None:
        reader.problem_at(
            reader.smap.line_of(("mode",)) or 0,
            ("credentials",),
            "required in live mode (api_key_env and api_secret_env, or *_file)",
        )
    deadman = _dict(data.get("deadman"))
    timeout, refresh = deadman.get("timeout_s", 60), deadman.get("refresh_s")
    if _is_number(timeout) and _is_number(refresh) and refresh >= timeout:
        reader.problem(("deadman", "refresh_s"), f"must be less than timeout_s ({timeout})")
    listed = _dict(data.get("market")).get("symbols")
    allowed = {str(s).upper() for s in listed} if isinstance(listed, list) else set()
    strategies = data.get("strategies")
    first: dict[str, int] = {}
    for index, strategy in enumerate(strategies if isinstance(strategies, list) else []):
        name, symbols = _dict(strategy).get("name"), _dict(strategy).get("symbols")
        if isinstance(name, str) and name in first:
            line = reader.smap.line_of(("strategies", first[name], "name"))
            message = f"duplicate strategy name {name!r} (first at line {line})"
            reader.problem(("strategies", index, "name"), message)
        elif isinstance(name, str):
            first[name] = index
        venue = _venue(data, strategy)  # market.symbols: spot's subscriptions
        spot = venue in ("spot", "both")
        for pos, symbol in enumerate(
            symbols if spot and allowed and isinstance(symbols, list) else []
        ):
            if venue == "both" and isinstance(symbol, str) and on_futures(symbol):
                continue  # a two-venue strategy's contract: futures.symbols' business
            if isinstance(symbol, str) and symbol.upper() not in allowed:
                message = f"{symbol!r} is not in market.symbols"
                reader.problem(("strategies", index, "symbols", pos), message)
    venue_checks(reader, data)


def _venue(data: dict[str, Any], strategy: Any) -> object:
    venue = _dict(strategy).get("venue")
    if venue is None:
        return "futures" if isinstance(data.get("futures"), dict) else "spot"
    return venue


def _trades_spot(data: dict[str, Any]) -> bool:
    """Whether a config with ``futures:`` also trades spot (a spot strategy enabled)."""
    strategies = data.get("strategies")
    return any(
        _venue(data, s) in ("spot", "both") and _dict(s).get("enabled", True) is not False
        for s in (strategies if isinstance(strategies, list) else [])
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
