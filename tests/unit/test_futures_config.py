"""The ``futures:`` section (``bot.config.futures_schema``): loading, secrets, errors by line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import load_config, load_config_text
from bot.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
KEY = "fKeyAbCdEfGh1234567890+/futures=="
SECRET = "c2VjcmV0LWZ1dHVyZXMtc2VjcmV0LXZhbHVl"
ENV = {"KRAKEN_FUTURES_API_KEY": KEY, "KRAKEN_FUTURES_API_SECRET": SECRET}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "deploy.yaml", env or {})
    return info.value.problems


def test_the_paper_config_loads_without_keys() -> None:
    config = load_config(REPO / "config" / "futures.paper.yaml", env={})
    assert config.mode == "paper" and config.futures is not None
    assert config.futures.symbols == ("PF_XBTUSD",)
    assert config.futures.risk.max_contracts == {"PF_XBTUSD": Decimal(1)}
    assert config.futures.risk.min_liquidation_distance == Decimal("0.1")
    assert config.strategies[0].symbols == ("PF_XBTUSD",)
    assert config.store.path == Path("data/futures-paper.db")


def test_the_live_example_reads_the_futures_key_pair_from_the_environment() -> None:
    config = load_config(REPO / "config" / "futures.live.example.yaml", env=ENV)
    assert config.futures is not None and config.futures.credentials is not None
    assert config.futures.credentials.api_key.reveal() == KEY
    assert config.futures.credentials.api_secret.reveal() == SECRET
    assert KEY not in repr(config) and SECRET not in repr(config)
    assert config.credentials is None  # a Futures deployment needs no spot keys


def test_live_futures_needs_futures_credentials_named_at_its_line() -> None:
    text = "mode: live\nfutures:\n  symbols: [PF_XBTUSD]\n"
    (problem,) = problems(text)
    assert problem.startswith("deploy.yaml:2") and "credentials: required" in problem


def test_a_literal_futures_secret_is_refused_without_echoing_it() -> None:
    text = f"mode: live\nfutures:\n  credentials:\n    api_key: {KEY}\n    api_secret_env: S\n"
    found = "\n".join(problems(text, {"S": SECRET}))
    assert "deploy.yaml:4" in found and "literal secret" in found and KEY not in found


def test_a_missing_futures_env_variable_names_key_and_line() -> None:
    text = "mode: live\nfutures:\n  credentials:\n    api_key_env: NOPE\n    api_secret_env: S\n"
    found = problems(text, {"S": SECRET})
    assert any("deploy.yaml:4" in p and "NOPE is not set" in p for p in found), found


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("futures:\n  symbols: [XBTUSD]\n", "deploy.yaml:2", "Futures contract"),
        ("futures:\n  risk:\n    max_leverage: -1\n", "deploy.yaml:3", "max_leverage"),
        (
            "futures:\n  risk:\n    min_liquidation_distance: 1.5\n",
            "deploy.yaml:3",
            "min_liquidation",
        ),
        ("futures:\n  rest_url: ftp://x\n", "deploy.yaml:2", "rest_url"),
        ("futures:\n  leverage: 3\n", "deploy.yaml:2", "leverage"),
    ],
)
def test_bad_futures_values_name_key_and_line(text: str, where: str, what: str) -> None:
    (problem,) = problems(text)
    assert problem.startswith(where) and what in problem, problem


def test_strategies_may_name_futures_contracts() -> None:
    text = (
        "futures: {}\nstrategies:\n  - name: mm\n    class: market_maker\n"
        "    symbols: [pf_xbtusd, FF_XBTUSD_260327]\n"
    )
    config = load_config_text(text, "deploy.yaml", {})
    assert config.strategies[0].symbols == ("PF_XBTUSD", "FF_XBTUSD_260327")
