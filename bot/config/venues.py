"""Which venue each strategy trades, and a deployment split into its venues' parts.

A strategy says its venue with ``venue: spot | futures | both``; without it, a config with a
``futures:`` section is a Kraken Futures one (every strategy trades Futures) and any other
is spot, as before the key existed. A config with ``futures:`` and at least one enabled
``venue: spot`` or ``venue: both`` strategy trades BOTH venues in one process
(``bot.service.both_daemon``): ``spot_part`` and ``futures_part`` are then the two
one-venue configs its sides run on. A ``venue: both`` strategy is one instance on both
venues: ``split_symbols`` splits its symbols by venue (a Futures contract's name, else a
spot pair), and each part carries it with its own venue's symbols only, so each side
subscribes them and applies its risk limits (the instance itself is ``BothDaemon``'s).

Each venue keeps its own key pair (``credentials`` / ``futures.credentials``) and its own
store: ``store.path`` is spot's; Futures' is ``futures.store_path``, by default
``DEFAULT_FUTURES_STORE_PATHS[mode]`` beside spot's default (a Futures-only config keeps
``store.path``, as before). ``venue_checks`` refuses, each at its line: a ``venue: futures``
or ``both`` strategy without a ``futures:`` section, a symbol not on its strategy's venue,
a ``both`` strategy without a symbol on each venue, and both venues sharing one store
file. This module owns those rules and nothing else.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final, Literal

from bot.config.futures_schema import FUTURES_SYMBOL_RE
from bot.config.reader import Reader
from bot.config.schema import DEFAULT_STORE_PATHS, Config, StoreConfig, StrategyConfig

__all__ = [
    "DEFAULT_FUTURES_STORE_PATHS",
    "VENUES",
    "StrategyVenue",
    "Venue",
    "futures_part",
    "futures_store_path",
    "is_both",
    "on_futures",
    "split_symbols",
    "spot_part",
    "venue_checks",
    "venue_of",
]

Venue = Literal["spot", "futures"]
StrategyVenue = Literal["spot", "futures", "both"]
VENUES: Final[tuple[Venue, ...]] = ("spot", "futures")
DEFAULT_FUTURES_STORE_PATHS: Final = {
    "paper": Path("data/futures-paper.db"),
    "live": Path("data/futures-live.db"),
}
"""The Futures side's store when ``futures.store_path`` is not set in a two-venue config."""
_FUTURES_RE: Final = re.compile(FUTURES_SYMBOL_RE)


def venue_of(config: Config, strategy: StrategyConfig) -> StrategyVenue:
    """``strategy.venue``, else Futures in a config with ``futures:``, else spot."""
    if strategy.venue is not None:
        return strategy.venue
    return "futures" if config.futures is not None else "spot"


def on_futures(symbol: str) -> bool:
    """Whether ``symbol`` names a Kraken Futures contract (else it is a spot pair)."""
    return _FUTURES_RE.fullmatch(symbol) is not None


def split_symbols(symbols: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """A two-venue strategy's symbols by venue, in their order."""
    return {
        "spot": tuple(s for s in symbols if not on_futures(s)),
        "futures": tuple(s for s in symbols if on_futures(s)),
    }


def is_both(config: Config) -> bool:
    """A ``futures:`` section and at least one enabled spot or two-venue strategy."""
    return config.futures is not None and any(
        s.enabled and venue_of(config, s) in ("spot", "both") for s in config.strategies
    )


def _part(config: Config, venue: Venue) -> tuple[StrategyConfig, ...]:
    """``venue``'s strategies; a two-venue one narrowed to that venue's symbols."""
    mine: list[StrategyConfig] = []
    for s in config.strategies:
        if venue_of(config, s) == venue:
            mine.append(s)
        elif venue_of(config, s) == "both":
            mine.append(s.model_copy(update={"symbols": split_symbols(s.symbols)[venue]}))
    return tuple(mine)


def futures_store_path(config: Config) -> Path:
    """The Futures side's store: ``futures.store_path``; unset, ``store.path`` in a
    Futures-only config and ``DEFAULT_FUTURES_STORE_PATHS[mode]`` in a two-venue one."""
    assert config.futures is not None
    if config.futures.store_path is not None:
        return config.futures.store_path
    if is_both(config):
        return DEFAULT_FUTURES_STORE_PATHS[config.mode]
    return config.store.path


def spot_part(config: Config) -> Config:
    """The spot side of a two-venue config: no ``futures:``, its spot strategies (a
    two-venue strategy with its spot symbols, its ``venue`` still ``both``)."""
    mine = _part(config, "spot")
    return config.model_copy(update={"futures": None, "strategies": mine})


def futures_part(config: Config) -> Config:
    """The Futures side of a two-venue config: its Futures strategies (a two-venue one
    with its contracts), its own store."""
    mine = _part(config, "futures")
    store = StoreConfig(path=futures_store_path(config))
    market = config.market.model_copy(update={"symbols": ()})  # market.symbols: spot's
    return config.model_copy(update={"strategies": mine, "store": store, "market": market})


# --------------------------------------------------------------------------- raw checks


def venue_checks(reader: Reader, data: dict[str, Any]) -> None:
    """The venue rules on the raw data (so they sit beside type errors, each at its line)."""
    has_futures = isinstance(data.get("futures"), dict)
    strategies = data.get("strategies")
    spot_strategies = 0
    for index, strategy in enumerate(strategies if isinstance(strategies, list) else []):
        if not isinstance(strategy, dict):
            continue
        venue = strategy.get("venue")
        if venue is None:
            venue = "futures" if has_futures else "spot"
        elif venue in ("futures", "both") and not has_futures:
            message = f"{venue!r} needs a futures: section (its URLs, keys and simulator)"
            reader.problem(("strategies", index, "venue"), message)
        if venue not in (*VENUES, "both"):
            continue  # the schema names the bad value
        if venue != "futures" and strategy.get("enabled", True) is not False:
            spot_strategies += 1
        symbols = strategy.get("symbols")
        if venue == "both":
            _both_symbols(reader, index, symbols)
            continue
        for pos, symbol in enumerate(symbols if isinstance(symbols, list) else []):
            if not isinstance(symbol, str):
                continue
            futures_symbol = _FUTURES_RE.fullmatch(symbol) is not None
            if futures_symbol != (venue == "futures"):
                what = "a Kraken Futures contract" if futures_symbol else "a spot pair"
                message = f"{symbol!r} is {what}, not traded on this strategy's venue ({venue})"
                reader.problem(("strategies", index, "symbols", pos), message)
    if has_futures and spot_strategies:
        _distinct_stores(reader, data)


def _both_symbols(reader: Reader, index: int, symbols: object) -> None:
    """A two-venue strategy trades at least one spot pair and one Futures contract."""
    names = tuple(s for s in symbols if isinstance(s, str)) if isinstance(symbols, list) else ()
    if not names:
        return  # the schema names a missing or empty list
    split = split_symbols(names)
    missing = [v for v in VENUES if not split[v]]
    if missing:
        what = {"spot": "a spot pair (BTC/USD)", "futures": "a Futures contract (PF_XBTUSD)"}
        message = (
            f"venue: both needs {what[missing[0]]} among its symbols; a strategy on one "
            f"venue says venue: {VENUES[1 - VENUES.index(missing[0])]}"
        )
        reader.problem(("strategies", index, "symbols"), message)


def _distinct_stores(reader: Reader, data: dict[str, Any]) -> None:
    """Two venues, two store files: a store is stamped with one venue and key."""
    mode = data.get("mode", "paper")
    store, futures = data.get("store"), data["futures"]
    spot = store.get("path") if isinstance(store, dict) else None
    theirs = futures.get("store_path")
    if spot is None:
        spot = DEFAULT_STORE_PATHS.get(mode) if isinstance(mode, str) else None
    if theirs is None:
        theirs = DEFAULT_FUTURES_STORE_PATHS.get(mode) if isinstance(mode, str) else None
    if not isinstance(spot, str | Path) or not isinstance(theirs, str | Path):
        return
    if os.path.normpath(spot) == os.path.normpath(theirs):
        at = ("futures", "store_path") if "store_path" in futures else ("store", "path")
        message = f"spot and Futures share the store {str(spot)!r}: give each venue its own file"
        reader.problem(at, message)
