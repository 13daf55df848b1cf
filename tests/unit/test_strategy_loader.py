"""bot.strategy.loader: the three ways to name a strategy, and every loading error, located.

Users' strategy files are written into ``tmp_path`` (outside the package) and loaded by
path; entry points come from a real ``.dist-info`` put on ``sys.path``.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import StrategyConfig, load_config, load_config_text
from bot.core.errors import ConfigError
from bot.strategy import Strategy
from bot.strategy.loader import (
    BUNDLED,
    ENTRY_POINT_GROUP,
    available_strategies,
    load_strategies,
    load_strategy,
    resolve_class,
)
from bot.strategy.testing import FakeContext, StrategyHarness
from strategies.ema_cross import EmaCross
from strategies.grid import GridTrader
from strategies.market_maker import MarketMaker, MarketMakerParams

REPO = Path(__file__).resolve().parents[2]
D = Decimal

STRATEGY_FILE = """
from __future__ import annotations

from decimal import Decimal

from bot.strategy import BookSnapshot, Params, Strategy


class MakerParams(Params):
    size: Decimal
    levels: int = 1


class Maker(Strategy[MakerParams]):
    def on_book(self, symbol: str, book: BookSnapshot) -> None:
        self.ctx.count("books")
"""


@pytest.fixture(autouse=True)
def _forget_imported_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if not name.startswith(("bot", "strategies", "pydantic", "importlib")):
            del sys.modules[name]


def strategy_config(spec: str, params: str = "{size: 0.01}") -> StrategyConfig:
    text = (
        "strategies:\n"
        "  - name: s\n"
        f"    class: '{spec}'\n"
        "    symbols: [BTC/USD]\n"
        f"    params: {params}\n"
    )
    return load_config_text(text, "deploy.yaml", {}).strategies[0]


def class_problem(spec: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_strategy(strategy_config(spec))
    (problem,) = info.value.problems
    prefix = "deploy.yaml:3: strategies[0].class: "
    assert problem.startswith(prefix), problem
    return problem.removeprefix(prefix)


# --------------------------------------------------------------------------- the three forms


def test_module_form_and_the_shipped_default_config() -> None:
    config = load_config(REPO / "config" / "default.yaml", env={})
    (mm,) = load_strategies(config.strategies)
    assert mm.cls is MarketMaker and mm.name == "mm" and mm.symbols == ("BTC/USD", "ETH/USD")
    assert mm.params == MarketMakerParams(spread_bps=D(2), size=D("0.01"), max_inventory=D("0.1"))
    ctx = FakeContext("mm", mm.symbols)
    strategy = mm.create(ctx)
    assert (
        isinstance(strategy, MarketMaker) and strategy.ctx is ctx and strategy.params is mm.params
    )


def test_bundled_short_names_resolve_before_any_registration() -> None:
    assert resolve_class("market_maker") is MarketMaker
    assert resolve_class("grid") is GridTrader
    assert resolve_class("ema_cross") is EmaCross
    assert set(BUNDLED) <= set(available_strategies())
    loaded = load_strategy(strategy_config("grid", "{size: 0.01, levels: 2}"))
    assert loaded.cls is GridTrader and loaded.params.levels == 2  # type: ignore[attr-defined]


def test_file_form_by_absolute_and_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "my-strategies" / "maker.py"
    path.parent.mkdir()
    path.write_text(STRATEGY_FILE)
    absolute = load_strategy(strategy_config(f"{path}:Maker", "{size: 0.5, levels: 3}"))
    assert absolute.cls.__name__ == "Maker" and issubclass(absolute.cls, Strategy)
    assert absolute.params.size == D("0.5") and absolute.params.levels == 3  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)
    relative = load_strategy(strategy_config("my-strategies/maker.py:Maker"))
    assert relative.cls is absolute.cls  # one file, imported once
    h = StrategyHarness(relative.cls, relative.params)
    h.quote("30000", "30010")
    assert h.ctx.counters == {("books", None): 1}


def test_entry_points_are_found_and_win_over_bundled_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ep_strategies_mod.py").write_text(STRATEGY_FILE)
    dist = tmp_path / "krakenbot_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: krakenbot-test-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "my_maker = ep_strategies_mod:Maker\n"
        "grid = ep_strategies_mod:Maker\n"
        "broken = ep_strategies_missing_mod:Maker\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_strategy(strategy_config("my_maker"))
    assert loaded.cls.__module__ == "ep_strategies_mod" and loaded.cls.__name__ == "Maker"
    assert resolve_class("grid") is loaded.cls  # an installed entry point wins
    assert available_strategies()["my_maker"] == "ep_strategies_mod:Maker"
    assert class_problem("broken") == (
        "entry point 'broken' (ep_strategies_missing_mod:Maker) failed to load: "
        "ModuleNotFoundError: No module named 'ep_strategies_missing_mod'"
    )


def test_the_documented_example_loads_and_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (REPO / "docs/users/strategies.md").read_text()

    def block(marker: str) -> str:
        found = re.search(
            rf"<!-- {marker}:start -->\n```python\n(.*?)```\n<!-- {marker}:end -->", doc, re.S
        )
        assert found, marker
        return found.group(1)

    (tmp_path / "dip_buyer.py").write_text(block("example"))
    loaded = load_strategy(
        strategy_config(f"{tmp_path}/dip_buyer.py:DipBuyer", "{size: 0.01, max_fills: 1}")
    )
    h = StrategyHarness(loaded.cls, loaded.params)
    h.quote("30000", "30010")
    (bid,) = h.open_orders(side="buy")
    assert bid.price == D("29929.9") and h.placed()[0].post_only
    h.book_invalid()
    assert bid.state == "canceled"
    h.quote("30000", "30010")
    (bid,) = h.open_orders(side="buy")
    h.fill(bid)
    h.quote("30000", "30010")
    assert h.open_orders() == [] and h.advance(60) == 1
    # ... the page's config entry for it, from the working directory ...
    yaml_block = re.search(r"<!-- example-config:start -->\n```yaml\n(.*?)```", doc, re.S)
    assert yaml_block
    monkeypatch.chdir(tmp_path)
    (entry,) = load_config_text(yaml_block.group(1), "deploy.yaml", {}).strategies
    (from_yaml,) = load_strategies([entry])
    assert from_yaml.cls is loaded.cls and from_yaml.params.offset_bps == 30  # type: ignore[attr-defined]
    # ... and the harness example of the same page, against that file.
    (tmp_path / "test_dip_doc.py").write_text(block("harness-example"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import test_dip_doc  # type: ignore[import-not-found]

    test_dip_doc.test_bids_under_the_mid_and_follows_the_book()


# --------------------------------------------------------------------------- errors


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_module_errors() -> None:
    assert class_problem("nosuch_mod_xyz:Maker") == (
        "no module named 'nosuch_mod_xyz' (is it installed, or on PYTHONPATH?)"
    )
    assert class_problem("strategies.nosuch:Maker") == (
        "no module named 'strategies.nosuch' (is it installed, or on PYTHONPATH?)"
    )
    assert class_problem("strategies.market_maker:MarketMakr") == (
        "module 'strategies.market_maker' has no class 'MarketMakr' (did you mean 'MarketMaker'?)"
    )
    assert class_problem("strategies.market_maker:Zzz") == (
        "module 'strategies.market_maker' has no class 'Zzz' (it defines MarketMaker)"
    )
    assert class_problem("bot.strategy:floor_price") == (
        "'bot.strategy:floor_price' is a function, not a subclass of bot.strategy.Strategy"
    )
    assert class_problem("bot.strategy:Params") == (
        "'bot.strategy:Params' is a class, not a subclass of bot.strategy.Strategy"
    )


def test_module_import_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "needs_dep_mod.py", "import nosuch_dependency_q\n")
    write(tmp_path, "raises_mod.py", "raise RuntimeError('no config for me')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert class_problem("needs_dep_mod:Maker") == (
        "importing module 'needs_dep_mod' failed: No module named 'nosuch_dependency_q'"
    )
    assert class_problem("raises_mod:Maker") == (
        "importing module 'raises_mod' failed: RuntimeError: no config for me"
    )


def test_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.py"
    assert class_problem(f"{missing}:Maker") == f"no such file '{missing}'"
    monkeypatch.chdir(tmp_path)
    assert class_problem("./nope.py:Maker") == f"no such file './nope.py' (relative to {tmp_path})"
    syntax = write(tmp_path, "syntax.py", "x = 1\ndef broken(:\n")
    assert class_problem(f"{syntax}:Maker") == (
        f"importing file '{syntax}' failed: SyntaxError: invalid syntax (line 2)"
    )
    raising = write(tmp_path, "raising.py", "1 / 0\n")
    assert class_problem(f"{raising}:Maker") == (
        f"importing file '{raising}' failed: ZeroDivisionError: division by zero"
    )
    ok = write(tmp_path, "ok.py", STRATEGY_FILE)
    assert class_problem(f"{ok}:Makr") == f"file '{ok}' has no class 'Makr' (did you mean 'Maker'?)"
    assert class_problem(f"{ok}:MakerParams") == (
        f"'{ok}:MakerParams' is a class, not a subclass of bot.strategy.Strategy"
    )


def test_class_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.py",
        """
        from pydantic import BaseModel
        from bot.strategy import Strategy

        class Async(Strategy):
            async def on_book(self, symbol, book):
                pass

        class Plain(BaseModel):
            size: int = 1

        class WrongParams(Strategy[Plain]):
            pass

        class Fails(Strategy):
            def __init__(self, ctx, params):
                raise ValueError("needs an API key")
        """,
    )
    assert class_problem(f"{path}:Async") == (
        "Async.on_book is async: handlers must be plain 'def' "
        "(they run on the event loop and must return quickly)"
    )
    assert class_problem(f"{path}:WrongParams").startswith(
        "WrongParams's params class <class 'krakenbot_file_rules_"
    )
    assert class_problem(f"{path}:WrongParams").endswith(
        ".Plain'> must subclass bot.strategy.Params"
    )
    loaded = load_strategy(strategy_config(f"{path}:Fails", "{}"))
    with pytest.raises(ConfigError) as info:
        loaded.create(FakeContext("s", ["BTC/USD"]))
    (problem,) = info.value.problems
    assert problem.startswith("deploy.yaml:3: strategies[0].class: krakenbot_file_rules_")
    assert problem.endswith(".Fails() failed: ValueError: needs an API key")


def test_unknown_short_name_suggests_the_close_one() -> None:
    problem = class_problem("market_makr")
    assert problem.startswith(
        "unknown strategy 'market_makr': not in the 'krakenbot.strategies' entry points nor "
        "bundled (did you mean 'market_maker'? known: basis, ema_cross, grid, market_maker"
    )
    assert problem.endswith("; or use 'module:Class' / 'file.py:Class')")


def test_params_errors_name_the_file_line() -> None:
    text = (
        "strategies:\n"
        "  - name: mm\n"
        "    class: market_maker\n"
        "    symbols: [BTC/USD]\n"
        "    params:\n"
        "      spread_bps: wide\n"
        "      sise: 0.1\n"
        "      max_inventory: -1\n"
        "  - name: disabled\n"
        "    class: nosuch_mod_xyz:Off\n"
        "    symbols: [BTC/USD]\n"
        "    enabled: false\n"
        "  - name: ema\n"
        "    class: ema_cross\n"
        "    symbols: [BTC/USD]\n"
        "    params: {size: 1, max_position: 2, fast: 30}\n"
        "  - name: gone\n"
        "    class: strategies.gone:Gone\n"
        "    symbols: [BTC/USD]\n"
    )
    config = load_config_text(text, "deploy.yaml", {})
    with pytest.raises(ConfigError) as info:
        load_strategies(config.strategies)
    assert info.value.problems == [
        "deploy.yaml:5: strategies[0].params.size: missing required key",
        "deploy.yaml:6: strategies[0].params.spread_bps: Input should be a valid decimal"
        " (got 'wide')",
        "deploy.yaml:7: strategies[0].params.sise: unknown key (did you mean 'size'?)",
        "deploy.yaml:8: strategies[0].params.max_inventory: Input should be greater than 0"
        " (got '-1')",
        "deploy.yaml:16: strategies[2].params: fast (30) must be less than slow (26)"
        " (got a mapping)",
        "deploy.yaml:18: strategies[3].class: no module named 'strategies.gone'"
        " (is it installed, or on PYTHONPATH?)",
    ]


def test_reloaded_params_are_checked_like_at_load() -> None:
    loaded = load_strategy(
        strategy_config("market_maker", "{spread_bps: 20, size: 1, max_inventory: 2}")
    )
    assert loaded.check_params(
        {"spread_bps": 10, "size": "0.5", "max_inventory": 1}, "x"
    ).size == D("0.5")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"x\.size: Input should be greater than 0"):
        loaded.check_params({"spread_bps": 10, "size": 0, "max_inventory": 1}, "x")


def test_a_config_without_a_source_map_still_names_the_key() -> None:
    config = StrategyConfig.model_validate(
        {"name": "solo", "class": "nosuch_mod_xyz:C", "symbols": ["BTC/USD"]}
    )
    with pytest.raises(ConfigError) as info:
        load_strategy(config)
    assert info.value.problems == [
        "strategies.solo.class: no module named 'nosuch_mod_xyz'"
        " (is it installed, or on PYTHONPATH?)"
    ]
