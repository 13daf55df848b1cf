"""bot.config: schema defaults, located errors for every kind of bad input, env, secrets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.config import (
    Config,
    RiskConfig,
    Secret,
    default_config_path,
    load_config,
    load_config_text,
    validate_params,
)
from bot.core.errors import ConfigError
from bot.core.log import scrub_text

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "kKeyAbCdEfGh1234567890+/secretish=="
SECRET_SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtdmFsdWU="
LIVE_ENV = {"KRAKEN_API_KEY": SECRET_KEY, "KRAKEN_API_SECRET": SECRET_SECRET}
CREDS = "credentials: {api_key_env: KRAKEN_API_KEY, api_secret_env: KRAKEN_API_SECRET}\n"


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "deploy.yaml", env or {})
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def one_problem(text: str, env: dict[str, str] | None = None) -> str:
    found = problems(text, env)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- good configs


def test_empty_mapping_gives_kraken_defaults() -> None:
    config = load_config_text("{}\n", "x.yaml", {})
    assert config == Config()
    assert config.mode == "paper"
    assert config.venue.rest_url == "https://api.kraken.com"
    assert config.venue.ws_public_url == "wss://ws.kraken.com/v2"
    assert config.venue.ws_private_url == "wss://ws-auth.kraken.com/v2"
    assert config.venue.tier == "starter"
    assert config.market.book_depth == 10
    assert config.market.channels == ("book", "trade", "ticker")
    assert config.market.stale_after_s == 5.0
    assert config.store.path == Path("data/paper.db")
    assert config.deadman.timeout_s == 60
    assert config.deadman.refresh_interval_s == 15.0
    assert config.shutdown.cancel_orders is True
    assert config.shutdown.grace_s == 10.0
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8080)
    assert (config.log.level, config.log.format) == ("info", "auto")
    assert config.credentials is None
    assert config.strategies == ()


def test_shipped_default_config_loads() -> None:
    path = REPO / "config" / "default.yaml"
    config = load_config(path, env={})
    assert config.mode == "paper"
    assert config.sim.source == "synthetic"
    assert config.market.symbols == ("BTC/USD", "ETH/USD")
    (mm,) = config.strategies
    assert mm.class_ == "strategies.market_maker:MarketMaker"
    assert mm.symbols == ("BTC/USD", "ETH/USD")
    assert set(mm.params) >= {"spread_bps", "size", "max_inventory"}
    assert config.source_map is not None and config.source_map.source == str(path)


def test_default_config_path_is_the_shipped_file() -> None:
    assert default_config_path() == REPO / "config" / "default.yaml"


def test_live_example_loads_with_keys_from_the_environment() -> None:
    config = load_config(REPO / "config" / "live.example.yaml", env=LIVE_ENV)
    assert config.mode == "live"
    assert config.venue.tier == "starter"
    assert config.deadman.timeout_s == 60
    assert config.credentials is not None
    assert config.credentials.api_key.reveal() == SECRET_KEY
    assert config.credentials.api_secret.reveal() == SECRET_SECRET
    assert SECRET_KEY not in repr(config) and SECRET_SECRET not in repr(config)
    assert SECRET_KEY not in str(config.model_dump())
    assert config.risk.max_order_qty == Decimal("0.01")
    assert config.store.path == Path("data/live.db")  # ${KRAKENBOT_DATA:-data}


def test_each_mode_has_its_own_default_store() -> None:
    """Paper and live never share a store by default (issue 10 item 9)."""
    live = load_config_text("mode: live\nstore:\n" + CREDS, "x.yaml", LIVE_ENV)
    assert live.store.path == Path("data/live.db")
    assert load_config_text("mode: paper\n", "x.yaml", {}).store.path == Path("data/paper.db")
    assert Config(mode="live").store.path == Path("data/live.db")
    chosen = load_config_text("mode: live\nstore: {path: my.db}\n" + CREDS, "x.yaml", LIVE_ENV)
    assert chosen.store.path == Path("my.db")
    shipped = {
        name: load_config(REPO / "config" / name, env=LIVE_ENV).store.path
        for name in ("default.yaml", "live.example.yaml")
    }
    assert shipped == {
        "default.yaml": Path("data/paper.db"),
        "live.example.yaml": Path("data/live.db"),
    }


def test_decimals_are_exact_and_sections_may_be_empty() -> None:
    config = load_config_text(
        "risk:\n  max_order_qty: 0.1\n  max_position: {BTC: 1_000.5}\nshutdown:\nlog:\n",
        "x.yaml",
        {},
    )
    assert config.risk.max_order_qty == Decimal("0.1")
    assert config.risk.max_position == {"BTC": Decimal("1000.5")}
    assert config.shutdown == Config().shutdown


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValidationError):
        config.mode = "live"  # type: ignore[misc]


def test_yaml_merge_keys_and_anchors() -> None:
    text = (
        "market: {symbols: [BTC/USD, ETH/USD]}\n"
        "x-base: &base\n"  # unknown key: anchors must live inside known keys
        "  max_errors: 3\n"
    )
    assert "deploy.yaml:2: x-base: unknown key" in one_problem(text)
    text = (
        "strategies:\n"
        "  - &mm {name: a, class: 'm:C', symbols: [BTC/USD], max_errors: 3}\n"
        "  - {<<: *mm, name: b}\n"
    )
    config = load_config_text(text, "x.yaml", {})
    assert [s.name for s in config.strategies] == ["a", "b"]
    assert config.strategies[1].max_errors == 3


def test_symbols_union_and_risk_overrides() -> None:
    text = (
        "risk: {max_open_orders: 10, max_order_qty: 1, max_position: {BTC: 2, ETH: 5}}\n"
        "strategies:\n"
        "  - {name: a, class: 'm:C', symbols: [btc/usd, ETH/USD],\n"
        "     risk: {max_open_orders: 2, max_position: {BTC: 1}}}\n"
        "  - {name: b, class: 'm:C', symbols: [ETH/USD, XRP/USD]}\n"
    )
    config = load_config_text(text, "x.yaml", {})
    assert config.symbols == ("BTC/USD", "ETH/USD", "XRP/USD")
    merged = config.strategy_risk(config.strategies[0])
    assert merged.max_open_orders == 2
    assert merged.max_order_qty == Decimal(1)
    assert merged.max_position == {"BTC": Decimal(1), "ETH": Decimal(5)}
    assert config.strategy_risk(config.strategies[1]) == config.risk
    assert RiskConfig().merged(RiskConfig()) == RiskConfig()


# --------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mode: paper\nmarket:\n  depht: 10\n", "deploy.yaml:3: market.depht: unknown key"),
        ("market:\n  symbol: [BTC/USD]\n", "market.symbol: unknown key (did you mean 'symbols'?)"),
        ("moed: live\n", "deploy.yaml:1: moed: unknown key (did you mean 'mode'?)"),
        (
            "risk:\n  max_order_notional: abc\n",
            "deploy.yaml:2: risk.max_order_notional: Input should be a valid decimal (got 'abc')",
        ),
        ("http:\n  port: '8080'\n", "deploy.yaml:2: http.port: Input should be a valid integer"),
        ("http: {port: true}\n", "http.port: Input should be a valid integer (got 'true')"),
        ("http: {port: 70000}\n", "http.port: Input should be less than or equal to 65535"),
        (
            "shutdown: {cancel_orders: 'no'}\n",
            "shutdown.cancel_orders: Input should be a valid boolean",
        ),
        ("market: {stale_after_s: '5'}\n", "market.stale_after_s: Input should be a number"),
        ("mode: demo\n", "deploy.yaml:1: mode: Input should be 'paper' or 'live' (got 'demo')"),
        ("venue: {tier: gold}\n", "venue.tier: Input should be 'starter', 'intermediate' or 'pro'"),
        (
            "venue:\n  order_entry: fix\n",
            "deploy.yaml:2: venue.order_entry: Input should be 'websocket' or 'rest' (got 'fix')",
        ),
        (
            "market: {book_depth: 20}\n",
            "market.book_depth: Input should be 10, 25, 100, 500 or 1000",
        ),
        ("market: {channels: [book, ohlc]}\n", "market.channels[1]: Input should be 'book'"),
        ("market: {symbols: [BTCUSD]}\n", "market.symbols[0]: expected BASE/QUOTE like 'BTC/USD'"),
        ("log: {format: xml}\n", "log.format: Input should be 'auto', 'json' or 'console'"),
        ("deadman: {timeout_s: 86400}\n", "deadman.timeout_s: Input should be less than or equal"),
        ("deadman: {timeout_s: 0}\n", "deadman.timeout_s: Input should be greater than or equal"),
        ("deadman: {timeout_s: 60, refresh_s: 60}\n", "deadman.refresh_s: must be less than"),
        ("venue: {rest_url: 'ftp://x'}\n", "venue.rest_url: expected an http(s):// URL"),
        ("venue: {ws_public_url: 'https://x'}\n", "venue.ws_public_url: expected a ws(s):// URL"),
        ("sim: {source: random}\n", "sim.source: expected 'synthetic', 'live' or 'replay:PATH'"),
        ("sim: {upstream_url: 'https://x'}\n", "sim.upstream_url: expected a ws(s):// URL"),
        ("sim: {balances: {USD: -1}}\n", "sim.balances.USD: Input should be greater than or equal"),
        ("risk: {max_open_orders: 0}\n", "risk.max_open_orders: Input should be greater than 0"),
        ("market: 5\n", "deploy.yaml:1: market: Input should be a valid dictionary"),
        ("strategies: {a: 1}\n", "strategies: Input should be a valid tuple (got a mapping)"),
        (
            "strategies:\n  - class: 'm:C'\n    symbols: [BTC/USD]\n",
            "deploy.yaml:2: strategies[0].name: missing required key",
        ),
        (
            "strategies:\n  - {name: a, class: 'not a class', symbols: [BTC/USD]}\n",
            "strategies[0].class: expected 'package.module:Class'",
        ),
        (
            "strategies:\n  - {name: a, class: 'm:C', symbols: []}\n",
            "strategies[0].symbols: Tuple should have at least 1 item",
        ),
        (
            "market: {symbols: [BTC/USD]}\nstrategies:\n"
            "  - {name: a, class: 'm:C', symbols: [XRP/USD]}\n",
            "deploy.yaml:3: strategies[0].symbols[0]: 'XRP/USD' is not in market.symbols",
        ),
        ("mode: live\n", "deploy.yaml:1: credentials: required in live mode"),
        ("mode: paper\nmode: live\n", "deploy.yaml:2: mode: duplicate key (first at line 1)"),
        (
            "http:\n  port: ${PORT}\n",
            "deploy.yaml:2: http.port: environment variable PORT is not set",
        ),
        ("http:\n  host: '${1X}'\n", "deploy.yaml:2: http.host: invalid reference '${1X}'"),
        ("http:\n  host: 'a${X'\n", "deploy.yaml:2: http.host: invalid reference '${X'"),
        ("http: {host: !!python/name:os.system x}\n", "http.host: cannot read value"),
    ],
)
def test_bad_config_names_key_and_line(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found
    assert all(p.startswith("deploy.yaml") for p in found)


def test_every_problem_is_collected_in_line_order() -> None:
    text = (
        "mode: live\n"  # 1: live without credentials
        "venue: {tier: gold}\n"  # 2
        "market:\n"
        "  depht: 10\n"  # 4
        "http: {port: '${NOPE}'}\n"  # 5
        "risk: {max_order_notional: abc}\n"  # 6
        "strategies:\n"
        "  - {name: a, class: 'm:C', symbols: [BTC/USD]}\n"
        "  - {name: a, class: 'm:C', symbols: [BTC/USD], extra: 1}\n"  # 9: duplicate, unknown
    )
    found = problems(text)
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
    assert len(found) == 7, found
    for needle in (
        "credentials: required",
        "venue.tier",
        "market.depht",
        "NOPE is not set",
        "risk.max_order_notional",
        "duplicate strategy name 'a' (first at line 8)",
        "strategies[1].extra: unknown key",
    ):
        assert any(needle in p for p in found), needle


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mode: paper\n  bad: indent\n", "deploy.yaml:2: YAML syntax error"),
        ("market: [BTC/USD\n", "deploy.yaml:2: YAML syntax error"),
        ("a: 1\n---\nb: 2\n", "deploy.yaml:2: YAML syntax error"),
        ("", "deploy.yaml: the file is empty"),
        ("# only a comment\n", "deploy.yaml: the file is empty"),
        ("- mode: paper\n", "deploy.yaml:1: the top level must be a mapping, not a list"),
        ("paper\n", "deploy.yaml:1: the top level must be a mapping, not a single value"),
    ],
)
def test_unreadable_documents(text: str, expected: str) -> None:
    assert one_problem(text).startswith(expected)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"mode: p\xe4per\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


# --------------------------------------------------------------------------- environment


def test_env_substitution_types_and_defaults() -> None:
    text = (
        "http:\n"
        "  port: ${PORT}\n"  # unquoted: takes the type its value spells
        "  host: ${HOST:-0.0.0.0}\n"
        "venue:\n"
        "  rest_url: 'https://${REST_HOST}/x$$y'\n"  # partial, quoted, $$ escape
        "store: {path: '${DIR:-data}/bot.db'}\n"
    )
    env = {"PORT": "9090", "REST_HOST": "example.test", "DIR": ""}
    config = load_config_text(text, "x.yaml", env)
    assert config.http.port == 9090
    assert config.http.host == "0.0.0.0"
    assert config.venue.rest_url == "https://example.test/x$y"
    assert config.store.path == Path("data/bot.db")  # empty counts as unset for :-


def test_one_reference_takes_its_values_type_but_text_around_it_makes_a_string() -> None:
    env = {"PORT": "9090"}
    assert load_config_text("http: {port: '${PORT}'}\n", "x.yaml", env).http.port == 9090
    assert load_config_text("http: {port: '${P:-81}'}\n", "x.yaml", env).http.port == 81
    found = one_problem("http:\n  port: '${PORT}0'\n", env)
    assert found == "deploy.yaml:2: http.port: Input should be a valid integer (from ${PORT})"


def test_env_values_are_not_echoed_in_errors() -> None:
    found = one_problem("http: {port: '${KRAKEN_API_SECRET}'}\n", LIVE_ENV)
    assert "from ${KRAKEN_API_SECRET}" in found
    assert SECRET_SECRET not in found


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_TEST_PORT", "7070")
    assert load_config_text("http:\n  port: ${KB_TEST_PORT}\n").http.port == 7070


# --------------------------------------------------------------------------- secrets


def test_secret_wrapper_never_prints() -> None:
    secret = Secret("hunter2-hunter2")
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == "hunter2-hunter2"
    assert secret == Secret("hunter2-hunter2") and secret != Secret("other")
    assert bool(secret) and not Secret("")


def test_secrets_from_files(tmp_path: Path) -> None:
    key, sec = tmp_path / "key", tmp_path / "secret"
    key.write_text(SECRET_KEY + "\n")
    sec.write_text(SECRET_SECRET)
    text = f"credentials: {{api_key_file: '{key}', api_secret_file: '{sec}'}}\n"
    config = load_config_text(text, "x.yaml", {})
    assert config.credentials is not None
    assert config.credentials.api_key.reveal() == SECRET_KEY
    assert config.credentials.api_secret.reveal() == SECRET_SECRET
    assert config.credentials.api_key_file == key


def test_secret_problems(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    text = f"credentials:\n  api_key_file: '{tmp_path / 'missing'}'\n  api_secret_file: '{empty}'\n"
    found = problems(text)
    assert "deploy.yaml:2: credentials.api_key_file: cannot read" in found[0]
    assert "No such file" in found[0]
    assert "deploy.yaml:3: credentials.api_secret_file:" in found[1] and "is empty" in found[1]
    found = problems(
        "credentials: {api_key_env: A, api_key_file: f, api_secret_env: B}\n", {"B": "bbbbbbbb"}
    )
    assert any("set either api_key_env or api_key_file, not both" in p for p in found)
    found = problems("credentials: {api_key_env: A}\n", {"A": "aaaaaa"})
    assert found == [
        "deploy.yaml:1: credentials: api_secret: missing (set api_secret_env or api_secret_file)"
    ]
    found = problems("credentials: {api_key_env: A, api_secret_env: B}\n", {"A": "", "B": "x" * 8})
    assert found == ["deploy.yaml:1: credentials.api_key_env: environment variable A is empty"]


def test_literal_secrets_are_rejected_without_echo() -> None:
    text = (
        "credentials:\n"
        f"  api_key: {SECRET_KEY}\n"
        f"  api_secret: '{SECRET_SECRET}'\n"
        f"  password: {SECRET_SECRET}\n"
    )
    found = problems(text)
    assert len(found) == 3
    assert found[0].startswith(
        "deploy.yaml:2: credentials.api_key: a literal secret is not allowed"
    )
    assert "api_key_env" in found[0]
    assert found[1].startswith("deploy.yaml:3: credentials.api_secret: a literal secret")
    assert found[2].startswith("deploy.yaml:4: credentials.password: a literal secret")
    assert not any(SECRET_KEY in p or SECRET_SECRET in p for p in found)


def test_pasted_key_in_env_slot_is_not_echoed() -> None:
    found = one_problem(
        f"credentials: {{api_key_env: '{SECRET_KEY}', api_secret_env: B}}\n", {"B": "bbbbbbbb"}
    )
    assert "credentials.api_key_env: expected an environment variable name" in found
    assert SECRET_KEY not in found


def test_whole_env_reference_is_a_secret_source_but_a_default_is_literal() -> None:
    text = "credentials:\n  api_key: ${KRAKEN_API_KEY}\n  api_secret: ${KRAKEN_API_SECRET}\n"
    config = load_config_text(text, "x.yaml", LIVE_ENV)
    assert config.credentials is not None
    assert config.credentials.api_key.reveal() == SECRET_KEY
    found = problems(
        "credentials:\n  api_key: ${K:-literal-value}\n  api_secret_env: S\n", {"S": "s" * 8}
    )
    assert found == [
        "deploy.yaml:2: credentials.api_key: a literal secret is not allowed in the config file:"
        " name an environment variable with api_key_env (or a file with api_key_file) instead"
    ]


def test_loaded_secrets_are_scrubbed_from_logs() -> None:
    env = {"KRAKEN_API_KEY": "fresh-key-0123456789", "KRAKEN_API_SECRET": "ZnJlc2gtOTg3NjU="}
    load_config_text(CREDS, "x.yaml", env)
    assert scrub_text("boom ZnJlc2gtOTg3NjU= boom") == "boom *** boom"


def test_secret_values_never_reach_error_messages() -> None:
    text = CREDS + "mode: live\nhttp: {port: x}\ncredentials2: 1\n"
    found = problems(text, LIVE_ENV)
    assert len(found) == 2
    assert not any(SECRET_KEY in p or SECRET_SECRET in p for p in found)


# --------------------------------------------------------------------------- strategy params


class MarketMakerParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    spread_bps: int
    size: Decimal
    max_inventory: Decimal = Decimal(1)


def test_validate_params_success_keeps_decimals_exact() -> None:
    config = load_config(REPO / "config" / "default.yaml", env={})
    strategy = config.strategies[0]
    params = validate_params(MarketMakerParams, strategy.params, strategy.where)
    assert params.size == Decimal("0.01")
    assert params.max_inventory == Decimal("0.1")


def test_validate_params_errors_are_located() -> None:
    text = (
        "strategies:\n"
        "  - name: mm\n"
        "    class: 'm:C'\n"
        "    symbols: [BTC/USD]\n"
        "    params:\n"
        "      spread_bps: wide\n"
        "      sise: 0.1\n"
    )
    config = load_config_text(text, "deploy.yaml", {})
    strategy = config.strategies[0]
    with pytest.raises(ConfigError) as info:
        validate_params(MarketMakerParams, strategy.params, strategy.where)
    assert info.value.problems == [
        "deploy.yaml:5: strategies[0].params.size: missing required key",
        "deploy.yaml:6: strategies[0].params.spread_bps: Input should be a valid integer,"
        " unable to parse string as an integer (got 'wide')",
        "deploy.yaml:7: strategies[0].params.sise: unknown key (did you mean 'size'?)",
    ]
    with pytest.raises(ConfigError) as info:
        validate_params(MarketMakerParams, {"size": "x", "spread_bps": 1}, "my.params")
    assert info.value.problems == ["my.params.size: Input should be a valid decimal"]


def test_sim_source_live_takes_an_upstream_url_kraken_by_default() -> None:
    config = load_config_text("sim: {source: live}\n")
    assert (config.sim.source, config.sim.upstream_url) == ("live", "wss://ws.kraken.com/v2")
    assert config.sim.replay_path is None
    other = load_config_text("sim: {source: live, upstream_url: 'ws://127.0.0.1:4000/v2'}\n")
    assert other.sim.upstream_url == "ws://127.0.0.1:4000/v2"
    assert load_config_text("sim: {source: 'replay:x.jsonl'}\n").sim.replay_path == Path("x.jsonl")
