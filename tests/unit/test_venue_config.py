"""A strategy's venue (``venue: spot | futures``) and a two-venue config split into its
sides (``bot.config.venues``): defaults as before the key, errors by key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, load_config_text
from bot.config.venues import futures_part, futures_store_path, is_both, spot_part, venue_of
from bot.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MM = "class: strategies.market_maker:MarketMaker"


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "deploy.yaml", env or {})
    return info.value.problems


def both(extra: str = "", spot_extra: str = "") -> str:
    return (
        "mode: paper\n"
        f"futures:\n  symbols: [PF_XBTUSD]\n{extra}"
        "strategies:\n"
        f"  - name: spot-mm\n    {MM}\n    venue: spot\n    symbols: [BTC/USD]\n{spot_extra}"
        f"  - name: perp-mm\n    {MM}\n    symbols: [PF_XBTUSD]\n"
    )


def test_without_the_key_the_venue_follows_the_config_as_before() -> None:
    spot = load_config(REPO / "config" / "default.yaml", env={})
    futures = load_config(REPO / "config" / "futures.paper.yaml", env={})
    assert [venue_of(spot, s) for s in spot.strategies] == ["spot"] * len(spot.strategies)
    assert [venue_of(futures, s) for s in futures.strategies] == ["futures"]
    assert not is_both(spot) and not is_both(futures)
    # A Futures-only config keeps store.path for its store, as before.
    assert futures_store_path(futures) == Path("data/futures-paper.db") == futures.store.path


def test_a_spot_strategy_beside_futures_makes_a_two_venue_config_split_in_two() -> None:
    config = load_config_text(both(), "deploy.yaml", {})
    assert is_both(config)
    spot, futures = spot_part(config), futures_part(config)
    assert spot.futures is None and [s.name for s in spot.strategies] == ["spot-mm"]
    assert spot.symbols == ("BTC/USD",) and spot.store.path == Path("data/paper.db")
    assert futures.futures is not None and [s.name for s in futures.strategies] == ["perp-mm"]
    assert futures.store.path == Path("data/futures-paper.db")  # its own default
    assert spot.source_map is config.source_map  # errors still name the file's lines


def test_the_futures_store_path_is_the_futures_sides_store() -> None:
    config = load_config_text(both("  store_path: /tmp/x/perp.db\n"), "deploy.yaml", {})
    assert futures_part(config).store.path == Path("/tmp/x/perp.db")


def test_the_shipped_two_venue_config_loads_without_keys() -> None:
    config = load_config(REPO / "config" / "both.paper.yaml", env={})
    assert is_both(config) and config.mode == "paper"
    assert {venue_of(config, s) for s in config.strategies} == {"spot", "futures"}
    assert spot_part(config).store.path != futures_part(config).store.path


def test_the_live_two_venue_example_needs_both_key_pairs() -> None:
    found = problems((REPO / "config" / "both.live.example.yaml").read_text())
    assert any("KRAKEN_API_KEY is not set" in p for p in found), found
    assert any("KRAKEN_FUTURES_API_KEY is not set" in p for p in found), found


def test_live_two_venues_without_spot_credentials_is_named() -> None:
    text = (
        both()
        .replace("mode: paper", "mode: live")
        .replace(
            "  symbols: [PF_XBTUSD]\n",
            "  symbols: [PF_XBTUSD]\n  credentials:\n    api_key_env: K\n    api_secret_env: S\n",
            1,
        )
    )
    (problem,) = problems(text, {"K": "k" * 20, "S": "c2VjcmV0"})
    assert problem.startswith("deploy.yaml:1") and "credentials: required in live mode" in problem


def test_a_bad_venue_value_names_key_and_line() -> None:
    found = problems(both().replace("venue: spot", "venue: margin"))
    assert any(p.startswith("deploy.yaml:7: strategies[0].venue") for p in found), found


def test_a_misspelled_venue_key_names_key_and_line() -> None:
    found = problems(both().replace("venue: spot", "venu: spot"))
    assert found[0] == "deploy.yaml:7: strategies[0].venu: unknown key (did you mean 'venue'?)"


@pytest.mark.parametrize(
    ("old", "new", "line", "said"),
    [
        ("[BTC/USD]", "[PF_ETHUSD]", 8, "'PF_ETHUSD' is a Kraken Futures contract"),
        ("[PF_XBTUSD]", "[ETH/USD]", 11, "'ETH/USD' is a spot pair"),
    ],
)
def test_a_symbol_on_the_wrong_venue_names_key_and_line(
    old: str, new: str, line: int, said: str
) -> None:
    head, _, tail = both().rpartition(old)  # the strategy's, not futures.symbols
    found = problems(head + new + tail)
    assert any(p.startswith(f"deploy.yaml:{line}") and said in p for p in found), found


def test_a_futures_strategy_without_a_futures_section_is_refused() -> None:
    text = f"strategies:\n  - name: x\n    {MM}\n    venue: futures\n    symbols: [PF_XBTUSD]\n"
    (problem,) = problems(text)
    assert problem.startswith("deploy.yaml:4") and "needs a futures: section" in problem


@pytest.mark.parametrize(
    ("extra", "store", "line"),
    [
        ("  store_path: data/shared.db\n", "store:\n  path: ./data/shared.db\n", 4),
        ("", "store:\n  path: data/futures-paper.db\n", 13),
    ],
)
def test_both_venues_sharing_a_store_is_refused(extra: str, store: str, line: int) -> None:
    (problem,) = problems(both(extra) + store)
    assert problem.startswith(f"deploy.yaml:{line}"), problem
    assert "share the store" in problem


def test_market_symbols_limit_only_spot_strategies() -> None:
    config = load_config_text(both() + "market:\n  symbols: [BTC/USD]\n", "deploy.yaml", {})
    assert spot_part(config).symbols == ("BTC/USD",)
