"""bot.cli: check-config as a real subprocess, exit statuses, lazy dispatch to subcommands."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.errors import ConfigError, RiskError
from bot.core.log import reset_logging

REPO = Path(__file__).resolve().parents[2]
KEY = "cli-test-key-AAAAAAAAAAAAAAAAAAAAAAAA"
SECRET = "Y2xpLXRlc3Qtc2VjcmV0LUJCQkJCQkJCQkJCQg=="
BAD_CONFIG = f"""\
mode: live
venue:
  tier: gold
credentials:
  api_key: {KEY}
  api_secret_env: KB_CLI_TEST_UNSET
market:
  depht: 10
risk:
  max_order_notional: abc
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()  # in-process `main` configures logging for its subcommand


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KRAKEN", "KRAKENBOT"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(BAD_CONFIG)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    err = result.stderr
    assert "Traceback" not in err
    for expected in (
        f"{path}:3: venue.tier: Input should be 'starter', 'intermediate' or 'pro' (got 'gold')",
        f"{path}:5: credentials.api_key: a literal secret is not allowed",
        f"{path}:6: credentials.api_secret_env: environment variable KB_CLI_TEST_UNSET is not set",
        f"{path}:8: market.depht: unknown key",
        f"{path}:10: risk.max_order_notional: Input should be a valid decimal (got 'abc')",
        f"{path}: 5 problems",
    ):
        assert expected in err, err
    assert KEY not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("mode: paper\n  oops: [\n", ":2: YAML syntax error"),
        ("", ": the file is empty"),
        ("- a\n- b\n", ":1: the top level must be a mapping"),
    ],
)
def test_check_config_unreadable_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}{expected}" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_missing_file() -> None:
    result = run_cli("check-config", "no/such/config.yaml")
    assert result.returncode == 2
    assert "no/such/config.yaml: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_ok_for_the_shipped_default() -> None:
    result = run_cli("check-config", "config/default.yaml")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_check_config_without_file_uses_env_then_default(tmp_path: Path) -> None:
    assert run_cli("check-config").stdout == "ok\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: demo\n")
    result = run_cli("check-config", env={"KRAKENBOT_CONFIG": str(bad)})
    assert result.returncode == 2
    assert f"{bad}:1: mode: Input should be 'paper' or 'live'" in result.stderr


def test_check_config_live_example_needs_its_env_vars() -> None:
    result = run_cli(
        "check-config",
        "config/live.example.yaml",
        env={"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": SECRET},
    )
    assert (result.returncode, result.stdout) == (0, "ok\n")
    result = run_cli("check-config", "config/live.example.yaml")
    assert result.returncode == 2
    assert "credentials.api_key_env: environment variable KRAKEN_API_KEY is not set" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("run", "sim", "replay", "record", "backtest", "check-config", "bench"):
        assert command in result.stdout
    assert main(["--version"]) == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["run", "--bogus"]) == 2
    assert main(["replay", "x.ws", "--depth", "7"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_backtest_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--out", "x"]) == 2  # --data is required
    assert "usage:" in capsys.readouterr().err
    missing = str(tmp_path / "nothing.jsonl")
    assert main(["backtest", "--data", missing, "--out", str(tmp_path / "o")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_record_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--symbols", "BTC/USD"]) == 2  # --out is required
    assert main(["record", "--out", "x", "--url", "ws://h/v2", "--config", "c.yaml"]) == 2
    assert main(["record", "--out", "x", "--depth", "7"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_record_refuses_a_bad_url_or_symbol_list_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "rec")
    assert main(["record", "--symbols", "BTC/USD", "--out", out, "--url", "wss://h:x/v2"]) == 2
    assert "--url: not a usable WebSocket URL" in capsys.readouterr().err
    assert main(["record", "--symbols", ",", "--out", out, "--url", "ws://127.0.0.1:9/v2"]) == 2
    assert "--symbols: give at least one" in capsys.readouterr().err
    bad = ["record", "--symbols", "BTC/USD", "--channels", "book,ohlc", "--out", out]
    assert main(bad) == 2
    assert "--channels: unknown ohlc" in capsys.readouterr().err
    assert main(["record", "--symbols", "BTCUSD", "--out", out]) == 2
    assert "--symbols:" in capsys.readouterr().err


# Dispatch: the subcommands' modules belong to others; a stand-in module placed in
# sys.modules under the public dispatch name exercises the CLI's side of the contract.


def install(
    monkeypatch: pytest.MonkeyPatch, name: str, **functions: object
) -> list[argparse.Namespace]:
    calls: list[argparse.Namespace] = []
    module = types.ModuleType(name)
    for attr, behaviour in functions.items():

        def target(args: argparse.Namespace, behaviour: object = behaviour) -> int:
            calls.append(args)
            if isinstance(behaviour, BaseException):
                raise behaviour
            assert isinstance(behaviour, int)
            return behaviour

        setattr(module, attr, target)
    monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_run_dispatches_with_a_resolved_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = install(monkeypatch, "bot.service.run_command", main_run=0)
    monkeypatch.delenv("KRAKENBOT_CONFIG", raising=False)
    assert main(["run"]) == 0
    assert main(["--log-level", "debug", "run", "--config", "my.yaml"]) == 0
    first, second = calls
    assert first.config == REPO / "config" / "default.yaml"
    assert (first.log_level, first.log_format) == (None, None)
    assert second.config == Path("my.yaml") and second.log_level == "debug"
    monkeypatch.setenv("KRAKENBOT_CONFIG", "from-env.yaml")
    assert main(["run"]) == 0
    assert calls[2].config == Path("from-env.yaml")


def test_other_subcommands_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = install(monkeypatch, "bot.service.simulator", main_sim=0)
    replay = install(monkeypatch, "bot.research.replay", run_replay=3)
    bench = install(monkeypatch, "bench.runner", main_bench=0)
    assert main(["sim", "--port", "0", "--seed", "7", "--source", "synthetic"]) == 0
    assert main(["replay", "cap.ws", "--instruments", "i.json", "--depth", "25"]) == 3
    assert main(["bench", "book"]) == 0
    (s,), (r,), (b,) = sim, replay, bench
    assert (s.port, s.seed, s.source, s.host) == (0, 7, "synthetic", None)
    assert (r.file, r.instruments, r.depth) == (["cap.ws"], "i.json", 25)
    assert b.suite == "book"
    record = install(monkeypatch, "bot.service.recorder", main_record=0)
    argv = ["record", "--symbols", "BTC/USD", "--out", "d", "--url", "ws://127.0.0.1:1/v2"]
    assert main([*argv, "--depth", "25", "--http", "off"]) == 0
    (rec,) = record
    assert (rec.symbols, rec.out, rec.url, rec.depth, rec.http) == (
        "BTC/USD",
        "d",
        "ws://127.0.0.1:1/v2",
        25,
        "off",
    )
    assert rec.record_config is None  # not resolved to the daemon's default config


def test_missing_module_or_function_is_not_available_yet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "bot.service.run_command", None)  # import fails: not built yet
    assert main(["run"]) == 2
    assert "krakenbot run: not available yet" in capsys.readouterr().err
    install(monkeypatch, "bot.service.run_command")  # module without main_run
    assert main(["run"]) == 2
    assert "not available yet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("raised", "status", "message"),
    [
        (ConfigError(["a.yaml:1: mode: bad", "a.yaml:2: x: bad"]), 2, "a.yaml:2: x: bad"),
        (RiskError("halted", "daily loss limit"), 1, "halted: daily loss limit"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_errors_from_subcommands_map_to_exit_statuses(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    status: int,
    message: str,
) -> None:
    install(monkeypatch, "bot.service.run_command", main_run=raised)
    assert main(["run"]) == status
    assert message in capsys.readouterr().err


def test_error_messages_are_scrubbed_of_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.core.log import register_secret

    register_secret("cli-leaky-secret-123")
    install(
        monkeypatch,
        "bot.service.run_command",
        main_run=RiskError("bad", "key cli-leaky-secret-123"),
    )
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "cli-leaky-secret-123" not in err and "key ***" in err


def test_bench_rate_hz_is_parsed_and_refused_when_not_a_rate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = install(monkeypatch, "bench.runner", main_bench=0)
    assert main(["bench", "tick", "--rate-hz", "50"]) == 0
    assert main(["bench", "tick"]) == 0
    assert [b.rate_hz for b in bench] == [50.0, None]
    for bad in ("0", "-1", "nan", "inf", "fast"):
        assert main(["bench", "tick", "--rate-hz", bad]) == 2
        assert "--rate-hz" in capsys.readouterr().err
    assert len(bench) == 2  # none of those ran


def test_bench_hands_the_rate_to_the_tick_suite_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import runner

    seen: list[dict[str, object]] = []

    def tick(**kwargs: object) -> dict[str, object]:
        seen.append(kwargs)
        return {"ran": True}

    module = types.ModuleType("fake_tick")
    module.run = tick  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_tick", module)
    monkeypatch.setitem(runner.SUITES, "tick", ("fake_tick", "run"))
    assert runner.main_bench(argparse.Namespace(suite="tick", rate_hz=50.0)) == 0
    assert runner.main_bench(argparse.Namespace(suite="tick", rate_hz=None)) == 0
    assert seen == [{"rate_hz": 50.0}, {}]
    assert '"ran": true' in capsys.readouterr().out
    assert runner.main_bench(argparse.Namespace(suite="book", rate_hz=50.0)) == 2
    assert runner.main_bench(argparse.Namespace(suite="all", rate_hz=50.0)) == 2
    assert "tick suite only" in capsys.readouterr().err
    assert len(seen) == 2
