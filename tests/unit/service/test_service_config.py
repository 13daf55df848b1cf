"""The trader's view's settings and the small read-only pieces it added: the control token
and the notifiers in the config, the readiness metrics, the store's last fills."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import MIN_TOKEN_CHARS, Config, load_config_text
from bot.core.errors import ConfigError
from bot.core.log import scrub_text
from bot.execution.readiness import ReadinessGate
from bot.service.metrics import FAMILIES, Metrics, readiness_source
from bot.store import Store
from tests.unit.service.helpers import T0, fill

TOKEN = "t" * MIN_TOKEN_CHARS


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "deploy.yaml", env or {})
    return caught.value.problems


def test_the_control_api_is_off_unless_a_token_variable_is_named() -> None:
    assert Config().http.control_token is None and not Config().http.control_enabled
    config = load_config_text("http:\n  control_token_env: CTL\n", env={"CTL": TOKEN})
    assert config.http.control_enabled and config.http.control_token is not None
    assert config.http.control_token.reveal() == TOKEN
    assert TOKEN not in repr(config) and scrub_text(f"x {TOKEN} y") == "x *** y"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("http:\n  control_token_env: CTL\n", {},
         "deploy.yaml:2: http.control_token_env: environment variable CTL is not set"),
        ("http:\n  control_token_env: CTL\n", {"CTL": "short"},
         "deploy.yaml:2: http.control_token_env: $CTL is shorter than 16 characters"),
        ("http:\n  control_token: hunter2hunter2hunter2\n", {},
         "deploy.yaml:2: http.control_token: a literal secret is not allowed in the config"),
    ],
)  # fmt: skip
def test_a_bad_control_token_is_a_located_config_error(
    text: str, env: dict[str, str], expected: str
) -> None:
    found = problems(text, env)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "hunter2" not in found[0] and "short" not in found[0].split(":", 3)[-1][:12]


def test_notifiers_resolve_their_secrets_and_check_their_keys() -> None:
    text = """notify:
  fills: each
  notifiers:
    - kind: webhook
      format: discord
      url_env: HOOK
    - kind: telegram
      token_env: BOT
      chat_id: -100123
      min_level: warning
"""
    config = load_config_text(text, env={"HOOK": "https://discord.example/api/x", "BOT": "1:ab"})
    hook, bot = config.notify.notifiers
    assert hook.url is not None and hook.url.reveal() == "https://discord.example/api/x"
    assert bot.chat_id == "-100123" and bot.token is not None and bot.label(1) == "telegram-2"
    assert config.notify.fills == "each" and config.notify.queue_size == 100
    bad = """notify:
  notifiers:
    - kind: webhook
      url_env: HOOK
      chat_id: 5
    - kind: telegram
      token_env: BOT
    - kind: webhook
    - kind: pigeon
"""
    found = problems(bad, {"HOOK": "ftp://nope-secret", "BOT": "1:ab"})
    assert "deploy.yaml:4: notify.notifiers[0].url_env: $HOOK is not an http(s):// URL" in found
    assert "deploy.yaml:5: notify.notifiers[0].chat_id: only for kind telegram" in found
    assert "deploy.yaml:6: notify.notifiers[1]: chat_id: required for kind telegram" in found
    assert any(p.startswith("deploy.yaml:8: notify.notifiers[2]: url_env: required") for p in found)
    assert any("notifiers[3].kind" in p for p in found)
    assert not any("nope-secret" in p for p in found)


def test_readiness_is_exported_for_alerts() -> None:
    gate = ReadinessGate(["books", "deadman"])
    metrics = Metrics(process=False)
    metrics.add_source(readiness_source(gate))
    snap = metrics.snapshot()
    assert snap["ready"] == [((), 0.0)]
    assert dict(snap["readiness_check"]) == {("books",): 0.0, ("deadman",): 0.0}
    gate.set("books")
    gate.set("deadman")
    assert metrics.snapshot()["ready"] == [((), 1.0)]
    names = {f.name for f in FAMILIES}
    assert {"ready", "readiness_check", "notify_sent", "notify_dropped", "notify_queued",
            "control_calls", "dashboard_streams"} <= names  # fmt: skip


def test_the_store_gives_its_last_fills_oldest_first(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "bot.db")
    try:
        for k in range(5):
            store.record_fill(fill(k, ts_ns=T0 + (k % 3)))  # two share a timestamp
        # By time: EXEC-0 and -3 at T0, -1 and -4 at T0 + 1, -2 at T0 + 2.
        assert [f.exec_id for f in store.recent_fills(3)] == ["EXEC-1", "EXEC-4", "EXEC-2"]
        assert store.recent_fills(0) == []
        assert [f.exec_id for f in store.recent_fills(10)] == [
            f.exec_id for f in store.fills_since(0)
        ]
    finally:
        store.close()
