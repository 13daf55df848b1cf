"""check-config runs every check ``run`` runs before it starts (``bot.service.preflight``).

Each case below is a deployment ``run`` refuses. ``check-config`` must refuse it too, with
exit status 2 and a message naming the problem (no traceback), and ``run`` must refuse it
the same way before anything starts. The strategy cases import real files and modules
written into ``tmp_path``; the parser cases are the inputs that used to crash it.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.log import reset_logging

GOOD_STRATEGY = """\
from bot.strategy import Params, Strategy


class Quoter(Strategy[Params]):
    pass
"""
RAISES = 'raise RuntimeError("kaboom")\n'
NOT_A_STRATEGY = "class Quoter:\n    pass\n"
KEY = "preflight-test-key-AAAAAAAAAAAAAAAAAA"


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """``run`` configures logging and installs signal handlers: put both back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    reset_logging()
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def deployment(strategy_class: str, params: str = "{}", *, head: str = "mode: paper") -> str:
    return f"""\
{head}
http:
  port: 0
strategies:
  - name: s1
    class: {strategy_class}
    symbols: [BTC/USD]
    params: {params}
"""


def module_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    """A fresh importable module with ``body``: its name (unique per call)."""
    name = f"kb_preflight_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def file_named(tmp_path: Path, body: str) -> Path:
    path = tmp_path / f"strategy_{uuid.uuid4().hex[:12]}.py"
    path.write_text(body)
    return path


def two_venues(spot_venue: str = "spot", spot_symbol: str = "BTC/USD", tail: str = "") -> str:
    """Spot and Futures in one deployment (``bot.config.venues``)."""
    return f"""\
mode: paper
http:
  port: 0
futures:
  symbols: [PF_XBTUSD]
strategies:
  - name: s1
    class: market_maker
    venue: {spot_venue}
    symbols: [{spot_symbol}]
    params: {{spread_bps: 2, size: 0.01}}
  - name: s2
    class: market_maker
    symbols: [PF_XBTUSD]
    params: {{spread_bps: 2, size: 0.01}}
{tail}"""


Case = Callable[[Path, pytest.MonkeyPatch], tuple[str, str]]
"""(tmp_path, monkeypatch) -> (the YAML text, a piece of the message expected)."""

CASES: dict[str, Case] = {
    "missing module": lambda t, m: (
        deployment("kb_preflight_no_such_module:Quoter"),
        "no module named 'kb_preflight_no_such_module'",
    ),
    "missing file": lambda t, m: (
        deployment(f"{t / 'absent.py'}:Quoter"),
        f"no such file '{t / 'absent.py'}'",
    ),
    "module raises on import": lambda t, m: (
        deployment(module_named(t, m, RAISES) + ":Quoter"),
        "failed: RuntimeError: kaboom",
    ),
    "file raises on import": lambda t, m: (
        deployment(f"{file_named(t, 'import nosuch_dependency_zz')}:Quoter"),
        "failed: ModuleNotFoundError: No module named 'nosuch_dependency_zz'",
    ),
    "module exits on import": lambda t, m: (
        deployment(f"{module_named(t, m, 'import sys; sys.exit(0)')}:Quoter"),
        "failed: it called sys.exit(0)",
    ),
    "file exits on import": lambda t, m: (
        deployment(f"{file_named(t, 'raise SystemExit(3)')}:Quoter"),
        "failed: it called sys.exit(3)",
    ),
    "not a Strategy": lambda t, m: (
        deployment(f"{file_named(t, NOT_A_STRATEGY)}:Quoter"),
        "is a class, not a subclass of bot.strategy.Strategy",
    ),
    "missing class": lambda t, m: (
        deployment(f"{file_named(t, GOOD_STRATEGY)}:Quotr"),
        "has no class 'Quotr' (did you mean 'Quoter'?)",
    ),
    "bad params": lambda t, m: (
        deployment("market_maker", "{spread_bps: lots, size: 0.01}"),
        "strategies[0].params.spread_bps:",
    ),
    "unknown params": lambda t, m: (
        deployment("market_maker", "{spread_bps: 2, size: 0.01, sprad_bps: 3}"),
        "strategies[0].params.sprad_bps: unknown key",
    ),
    "secret not base64": lambda t, m: (
        deployment(
            "market_maker",
            head=(
                "mode: live\ncredentials:\n  api_key_env: KB_PF_KEY\n"
                "  api_secret_env: KB_PF_SECRET_NOT_B64"
            ),
        ),
        "credentials.api_secret_env: the API secret in $KB_PF_SECRET_NOT_B64 is not valid base64",
    ),
    "a 5001-digit integer": lambda t, m: (
        deployment("market_maker", head=f"mode: paper\nsim:\n  seed: {'9' * 5001}"),
        ":3: sim.seed: number too long (5001 characters)",
    ),
    "5000-deep nesting": lambda t, m: (
        deployment("market_maker", head="mode: paper\nx: " + "[" * 5000 + "]" * 5000),
        ": nested too deeply",
    ),
    "an absurd limit": lambda t, m: (
        deployment("market_maker", head="mode: paper\nrisk:\n  max_order_notional: 1e999999999"),
        ":3: risk.max_order_notional: Input should be less than or equal to 1000000000000000",
    ),
    "a bad venue": lambda t, m: (
        two_venues("margin"),
        ":9: strategies[0].venue: Input should be 'spot', 'futures' or 'both'",
    ),
    "a symbol on the wrong venue": lambda t, m: (
        two_venues(spot_symbol="PF_ETHUSD"),
        ":10: strategies[0].symbols[0]: 'PF_ETHUSD' is a Kraken Futures contract, not traded",
    ),
    "two venues sharing a store": lambda t, m: (
        two_venues(tail="store:\n  path: data/futures-paper.db\n"),
        ":17: store.path: spot and Futures share the store 'data/futures-paper.db'",
    ),
    "a limit with absurd precision": lambda t, m: (
        deployment("market_maker", head="mode: paper\nrisk:\n  max_order_qty: 1e-999999999"),
        ":3: risk.max_order_qty: Decimal input should have no more than 18 decimal places",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_check_config_refuses_what_run_refuses(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KB_PF_KEY", KEY)
    monkeypatch.setenv("KB_PF_SECRET_NOT_B64", "this is no base64!")
    monkeypatch.chdir(tmp_path)  # a store or a log written by mistake lands here
    text, expected = CASES[case](tmp_path, monkeypatch)
    path = tmp_path / "deploy.yaml"
    path.write_text(text)

    assert main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in err, err
    assert "Traceback" not in err
    assert "this is no base64" not in err  # never the secret

    assert main(["run", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert expected in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_check_config_ok_means_the_strategies_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = file_named(tmp_path, GOOD_STRATEGY)
    path = tmp_path / "deploy.yaml"
    path.write_text(deployment(f"{strategy}:Quoter"))
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_a_strategy_that_exits_in_its_constructor_is_an_error(tmp_path: Path) -> None:
    """Not at import but when the daemon builds it: a ConfigError, never a silent exit."""
    from bot.config import load_config
    from bot.core.errors import ConfigError
    from bot.strategy.loader import load_strategies

    body = GOOD_STRATEGY + "\n    def __init__(self, ctx, params):\n        raise SystemExit(0)\n"
    path = tmp_path / "deploy.yaml"
    path.write_text(deployment(f"{file_named(tmp_path, body)}:Quoter"))
    (loaded,) = load_strategies(load_config(path).strategies)
    with pytest.raises(ConfigError, match=r"Quoter\(\) failed: SystemExit"):
        loaded.create(None)  # type: ignore[arg-type]
