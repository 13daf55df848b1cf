"""Which changes between two pictures become messages, and what they say."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.config import NotifyConfig
from bot.core.log import Secret
from bot.execution.orders import OrderState
from bot.service.notify.notice import notice
from bot.service.notify.payloads import DISCORD_MAX, request_for
from bot.service.notify.rules import NoticeRules
from bot.service.observe import Observation
from tests.unit.service.helpers import ETH, T0, S, fill, order, picture, strategy


def rules(**settings: Any) -> NoticeRules:
    return NoticeRules(NotifyConfig(**settings), "krakenbot paper")


def kinds(found: list[Any]) -> list[str]:
    return [n.kind for n in found]


def test_the_first_picture_is_the_baseline() -> None:
    r = rules()
    halted = picture(risk_state="halted", metrics={"task_restarts": [(("feed",), 3.0)]},
                     open_orders=(order(1, state=OrderState.UNKNOWN),))  # fmt: skip
    assert r.step(Observation(T0, False, False, (), {})) == []  # starting: nothing to compare
    assert r.step(halted) == []  # already so when the daemon started: not news


def test_risk_state_changes_are_told_with_their_urgency() -> None:
    r = rules()
    r.step(picture())
    (halt,) = r.step(picture(risk_state="halted"))
    assert halt.kind == "risk_state" and halt.level == "critical"
    assert halt.text == (
        "krakenbot paper: risk state active → HALTED: no new orders, open ones canceled"
    )
    (back,) = r.step(picture(risk_state="active"))
    assert back.level == "info" and "→ ACTIVE" in back.text
    assert r.step(picture(risk_state="reducing"))[0].level == "warning"


def test_a_strategy_halted_by_errors_and_a_paused_one() -> None:
    r = rules()
    r.step(picture(strategies=[strategy("mm"), strategy("grid")]))
    found = r.step(picture(strategies=[
        strategy("mm", state="halted", halt_reason="10 handler errors"),
        strategy("grid", risk_state="halted"),
    ]))  # fmt: skip
    assert kinds(found) == ["strategy_halted", "strategy_risk"]
    assert found[0].level == "critical" and "mm HALTED: 10 handler errors" in found[0].text
    assert found[1].fields == {"strategy": "grid", "to": "halted"}
    # When the whole bot halts, every strategy's state in force changes: one message only.
    r.step(picture(strategies=[strategy("grid")]))
    found = r.step(picture(risk_state="halted", strategies=[strategy("grid", risk_state="halted")]))
    assert kinds(found) == ["risk_state"]


def test_the_switch_lapsing_or_disarmed_is_critical() -> None:
    r = rules()
    r.step(picture(metrics={"deadman_lapses": [((), 0.0)], "deadman_armed": [((), 1.0)]}))
    found = r.step(picture(metrics={"deadman_lapses": [((), 1.0)], "deadman_armed": [((), 0.0)]}))
    assert kinds(found) == ["switch_lapse", "switch_disarmed"]
    assert {n.level for n in found} == {"critical"}


def test_unknown_and_lost_orders_and_restarted_tasks() -> None:
    r = rules()
    r.step(picture(metrics={"orders_finished": [(("lost",), 1.0)],
                            "task_restarts": [(("feed",), 1.0), (("engine",), 0.0)]}))  # fmt: skip
    unknown = order(9, "sell", state=OrderState.UNKNOWN, inst=ETH, price="2000.00")
    found = r.step(picture(
        open_orders=(unknown,),
        metrics={"orders_finished": [(("lost",), 3.0)],
                 "task_restarts": [(("feed",), 1.0), (("engine",), 1.0)]},
    ))  # fmt: skip
    assert kinds(found) == ["order_unknown", "order_lost", "task_restarted"]
    assert f"order {unknown.cl_ord_id} (mm sell ETH/USD): fate unknown" in found[0].text
    assert "2 orders LOST" in found[1].text and found[1].level == "critical"
    assert found[2].fields == {"task": "engine"}
    assert r.step(picture(open_orders=(unknown,), metrics={"orders_finished": [(("lost",), 3.0)],
        "task_restarts": [(("feed",), 1.0), (("engine",), 1.0)]})) == []  # fmt: skip


def test_fills_one_by_one() -> None:
    r = rules(fills="each")
    r.step(picture())
    (told,) = r.step(picture(new_fills=[fill(1, "sell", "30001.5", "0.02", fee="0.15")]))
    assert told.kind == "fill" and told.level == "info"
    assert told.text == (
        "krakenbot paper: fill: mm sell 0.02000000 BTC/USD @ 30001.5 (maker, fee 0.15 USD)"
    )


def test_fills_batched_into_one_summary_per_window_and_flushed_at_stop() -> None:
    r = rules(fills="batch", fills_every_s=60)
    r.step(picture())
    assert r.step(picture(at_ns=T0 + S, new_fills=[fill(1, "buy", "30000.0", "0.01")])) == []
    more = [fill(2, "buy", "30010.0", "0.03"), fill(3, "sell", "30020.0", "0.01")]
    assert r.step(picture(at_ns=T0 + 30 * S, new_fills=more)) == []
    (summary,) = r.step(picture(at_ns=T0 + 61 * S))
    assert summary.kind == "fills" and summary.fields == {"count": "3"}
    assert summary.text == (
        "krakenbot paper: 3 fills: BTC/USD buy 0.04000000 in 2 at avg 30007.5;"
        " BTC/USD sell 0.01000000 in 1 at avg 30020.0"
    )
    assert r.step(picture(at_ns=T0 + 200 * S)) == []  # nothing new
    r.step(picture(at_ns=T0 + 201 * S, new_fills=[fill(4)]))
    (last,) = r.flush(T0 + 202 * S)
    assert "1 fill:" in last.text and r.flush(T0 + 203 * S) == []


def test_fills_off() -> None:
    r = rules(fills="off")
    r.step(picture())
    assert r.step(picture(new_fills=[fill(1)])) == []


# --------------------------------------------------------------------------- notices, payloads


def test_a_notice_never_carries_a_registered_secret_and_is_cut_to_length() -> None:
    secret = Secret("a-webhook-secret-0123")
    item = notice("x", "warning", f"failed with {secret.reveal()} " + "y" * 5000, T0,
                  {"why": secret.reveal()})  # fmt: skip
    assert "a-webhook-secret" not in item.text and item.fields == {"why": "***"}
    assert len(item.text) == 3500 and item.text.endswith("…")


@pytest.mark.parametrize(
    ("fmt", "key"), [("slack", "text"), ("mattermost", "text"), ("discord", "content")]
)
def test_chat_webhooks_get_their_shape(fmt: str, key: str) -> None:
    from bot.config import NotifierConfig

    hook = NotifierConfig(kind="webhook", format=fmt, url=Secret("https://hooks.example/T0/B1"))
    item = notice("risk_state", "critical", "krakenbot paper: risk state → HALTED", T0)
    request = request_for(hook, item)
    assert request.url == "https://hooks.example/T0/B1"
    assert request.body == {key: "🚨 krakenbot paper: risk state → HALTED"}
    long = request_for(hook, replace(item, text="z" * 3000)).body[key]
    assert len(long) == (DISCORD_MAX if fmt == "discord" else len("🚨 ") + 3000)


def test_the_json_webhook_and_telegrams_bot_api() -> None:
    from bot.config import NotifierConfig

    item = notice("fills", "info", "2 fills", T0, {"count": 2})
    hook = NotifierConfig(kind="webhook", format="json", url=Secret("http://127.0.0.1:9/in"))
    assert request_for(hook, item).body == {
        "source": "krakenbot", "kind": "fills", "level": "info", "text": "2 fills",
        "time": "2027-01-15 08:00:00 UTC", "fields": {"count": "2"},
    }  # fmt: skip
    bot = NotifierConfig(kind="telegram", token=Secret("123456:ABC-secret-token"),
                         chat_id="-1001", api_url="http://127.0.0.1:9/")  # fmt: skip
    request = request_for(bot, item)
    assert request.url == "http://127.0.0.1:9/bot123456:ABC-secret-token/sendMessage"
    assert request.body == {"chat_id": "-1001", "text": "ℹ️ 2 fills",
                            "disable_web_page_preview": True}  # fmt: skip
