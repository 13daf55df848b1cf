"""The control actions on a desk with a real risk gate, and the request guard's checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.core.clock import FakeClock
from bot.core.log import Secret
from bot.execution.pnl import PositionBook
from bot.execution.risk import RiskGate, TradingState, Transition
from bot.service.control import Controls
from bot.service.control_api import NONCE_HEADER, TIME_HEADER, RequestGuard
from tests.unit.service.helpers import T0

TOKEN = "0123456789abcdef0123456789abcdef"
MS = 1_000_000


@dataclass
class Ctx:
    open: int = 2
    calls: int = 0

    def cancel_all(self, symbol: str | None = None) -> int:
        self.calls += 1
        sent, self.open = self.open, 0
        return sent


@dataclass
class Runner:
    halted: bool = False


@dataclass
class Desk:
    risk: RiskGate
    contexts: dict[str, Ctx] = field(default_factory=lambda: {"mm": Ctx(), "grid": Ctx(1)})
    runners: dict[str, Runner] = field(default_factory=lambda: {"mm": Runner(), "grid": Runner()})
    applied: list[Transition] = field(default_factory=list)

    @property
    def router(self) -> Desk:  # the desk's router: applies transitions
        return self

    def apply_transitions(self, transitions: tuple[Transition, ...]) -> None:
        self.applied.extend(transitions)
        for t in transitions:  # as the real desk does: a halting scope's orders go
            if t.cancel_orders:
                for name, ctx in self.contexts.items():
                    if t.strategy in (None, name):
                        ctx.cancel_all()


def controls(problems: list[str] | None = None) -> tuple[Controls, Desk]:
    clock = FakeClock(T0)
    desk = Desk(RiskGate(clock, PositionBook(clock)))
    return Controls(lambda: desk, lambda: list(problems or [])), desk


def test_halt_cancels_everything_once_and_resume_reactivates() -> None:
    c, desk = controls()
    first = c.halt()
    assert first.status == 200 and desk.risk.state is TradingState.HALTED
    assert [(t.strategy, t.reason, t.cancel_orders) for t in desk.applied] == [
        (None, "operator", True)
    ]
    assert desk.contexts["mm"].calls == desk.contexts["grid"].calls == 1
    again = c.halt()
    assert again.result == "already halted" and len(desk.applied) == 1  # idempotent
    assert c.resume().status == 200 and desk.risk.state is TradingState.ACTIVE
    assert c.resume().result == "already active" and len(desk.applied) == 2


def test_cancel_all_asks_every_strategy_and_counts() -> None:
    c, desk = controls()
    outcome = c.cancel_all()
    assert outcome.result == "3 cancels sent" and outcome.details == {"sent": {"mm": 2, "grid": 1}}
    assert desk.risk.state is TradingState.ACTIVE  # trading goes on: halt stops it


def test_pause_and_resume_one_strategy() -> None:
    c, desk = controls()
    assert c.pause("mm").status == 200
    assert desk.risk.strategy_state("mm") is TradingState.HALTED
    assert desk.risk.strategy_state("grid") is TradingState.ACTIVE
    assert desk.contexts["mm"].calls == 1 and desk.contexts["grid"].calls == 0
    assert c.pause("mm").result == "mm already paused"
    resumed = c.resume_strategy("mm")
    assert resumed.status == 200 and desk.risk.strategy_state("mm") is TradingState.ACTIVE
    assert c.resume_strategy("mm").result == "mm already active"
    c.halt()  # the bot's halt still applies to a resumed strategy, and says so
    c.pause("grid")
    assert "in force: halted" in c.resume_strategy("grid").result


def test_unknown_or_halted_strategies_and_a_daemon_not_running() -> None:
    c, desk = controls()
    assert c.pause("nope").status == 404
    desk.runners["grid"].halted = True
    assert c.resume_strategy("grid").status == 409
    stopped = Controls(lambda: None, list)
    for outcome in (stopped.halt(), stopped.resume(), stopped.cancel_all(), stopped.reload(),
                    stopped.pause("mm")):  # fmt: skip
        assert outcome.status == 503


def test_reload_reports_its_problems() -> None:
    assert controls()[0].reload().status == 200
    rejected = controls(["deploy.yaml:9: strategies[0].params.size: bad"])[0].reload()
    assert rejected.status == 422 and rejected.details["problems"] == [
        "deploy.yaml:9: strategies[0].params.size: bad"
    ]


# --------------------------------------------------------------------------- the guard


def headers(token: str | None = TOKEN, nonce: str = "n" * 16, at_ns: int = T0) -> dict[str, str]:
    out = {TIME_HEADER: str(at_ns // MS), NONCE_HEADER: nonce}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


def test_without_a_token_configured_everything_is_refused() -> None:
    refusal = RequestGuard(None).check(headers(), T0)
    assert refusal is not None and (refusal.status, refusal.code) == (403, "disabled")


@pytest.mark.parametrize(
    ("given", "code"),
    [
        (None, "no_token"),
        ("", "no_token"),
        (TOKEN[:-1], "wrong_token"),  # a prefix
        (TOKEN + "0", "wrong_token"),  # longer
        (TOKEN.upper(), "wrong_token"),
    ],
)
def test_a_missing_or_wrong_token_is_401(given: str | None, code: str) -> None:
    refusal = RequestGuard(Secret(TOKEN)).check(headers(given), T0)
    assert refusal is not None and (refusal.status, refusal.code) == (401, code)


def test_basic_or_other_schemes_are_not_a_bearer_token() -> None:
    guard = RequestGuard(Secret(TOKEN))
    h = headers()
    h["Authorization"] = f"Basic {TOKEN}"
    refusal = guard.check(h, T0)
    assert refusal is not None and refusal.code == "no_token"
    h["Authorization"] = f"bearer {TOKEN}"  # the scheme is case-insensitive (RFC 7235)
    assert guard.check(h, T0) is None


def test_time_and_nonce_are_required_and_a_replay_is_refused() -> None:
    guard = RequestGuard(Secret(TOKEN), window_s=120)
    stale = guard.check(headers(at_ns=T0 - 121 * 10**9), T0)
    assert stale is not None and (stale.status, stale.code) == (400, "stale")
    future = guard.check(headers(at_ns=T0 + 121 * 10**9), T0)
    assert future is not None and future.code == "stale"
    no_time = headers()
    del no_time[TIME_HEADER]
    assert (guard.check(no_time, T0) or pytest.fail()).code == "no_time"
    assert (guard.check(headers(nonce="short"), T0) or pytest.fail()).code == "no_nonce"
    assert guard.check(headers(nonce="a" * 16), T0) is None
    replay = guard.check(headers(nonce="a" * 16), T0 + 10**9)
    assert replay is not None and (replay.status, replay.code) == (409, "replay")
    assert guard.check(headers(nonce="b" * 16), T0) is None  # a fresh nonce passes


def test_a_wrong_token_uses_no_nonce_and_nonces_are_forgotten_after_the_window() -> None:
    guard = RequestGuard(Secret(TOKEN), window_s=120)
    guard.check(headers("x" * 32, nonce="c" * 16), T0)
    assert guard.check(headers(nonce="c" * 16), T0) is None  # not burnt by the wrong token
    later = T0 + 241 * 10**9
    # Past twice the window the nonce is forgotten, and a request that old is stale anyway.
    assert (guard.check(headers(nonce="c" * 16), later) or pytest.fail()).code == "stale"
    assert guard.check(headers(nonce="c" * 16, at_ns=later), later) is None


def test_the_remembered_nonces_are_bounded() -> None:
    guard = RequestGuard(Secret(TOKEN), max_nonces=2)
    assert guard.check(headers(nonce="1" * 16), T0) is None
    assert guard.check(headers(nonce="2" * 16), T0) is None
    busy = guard.check(headers(nonce="3" * 16), T0)
    assert busy is not None and (busy.status, busy.code) == (429, "busy")
