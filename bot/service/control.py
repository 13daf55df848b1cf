"""What the control API does to the running daemon: halt, resume, cancel all, pause or
resume a strategy, reload the params. No HTTP here (``bot.service.control_api`` serves it).

Each action goes through the daemon's own machinery, so it behaves as the same thing done
any other way would:

* **halt** is the risk gate's HALTED for the whole bot (reason ``operator``): every open
  order is canceled and no place or amend passes until **resume** (back to ACTIVE; a
  daily-loss halt resumed by a human does not halt again that day, as the risk gate says);
* **pause** a strategy is the same for that strategy alone: its orders canceled, its new
  ones refused with reason ``halted``. Its handlers keep running (it sees its cancels), so
  **resume** needs nothing else. A strategy its runner halted after errors cannot be
  resumed: that needs a restart;
* **cancel-all** asks every strategy's context to cancel its open orders now (strategies
  still trading may quote again: halt first to stop them);
* **reload** is SIGHUP's path: every strategy's params validated from the config file and
  applied, or none.

Every action is idempotent (halting a halted bot changes nothing and says so) and returns
an ``Outcome``: an HTTP status, a short result and details for the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from bot.execution.risk import RiskGate, TradingState, Transition

__all__ = ["ACTIONS", "Controls", "DeskControl", "Outcome"]

ACTIONS: Final = ("halt", "resume", "cancel-all", "pause", "resume-strategy", "reload")
OPERATOR: Final = "operator"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    result: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 300


class CanCancel(Protocol):
    def cancel_all(self, symbol: str | None = None) -> int: ...


class RunnerState(Protocol):
    @property
    def halted(self) -> bool: ...


class TransitionSink(Protocol):
    """Logs a risk state change and cancels the orders of a scope that must stop (the
    desk's router, ``bot.strategy.router.Router``)."""

    def apply_transitions(self, transitions: tuple[Transition, ...]) -> None: ...


class DeskControl(Protocol):
    """What the actions use of the desk (``bot.strategy.desk.Desk``)."""

    @property
    def risk(self) -> RiskGate: ...
    @property
    def contexts(self) -> Mapping[str, CanCancel]: ...
    @property
    def runners(self) -> Mapping[str, RunnerState]: ...
    @property
    def router(self) -> TransitionSink: ...


_NOT_RUNNING: Final = Outcome(503, "the daemon is not trading yet (starting or stopping)")


class Controls:
    """The actions on ``desk()`` (None while the daemon starts); ``reload()`` returns the
    problems that rejected a reload (empty: applied)."""

    def __init__(
        self, desk: Callable[[], DeskControl | None], reload: Callable[[], list[str]]
    ) -> None:
        self._desk, self._reload = desk, reload

    def halt(self, detail: str = "") -> Outcome:
        desk = self._desk()
        if desk is None:
            return _NOT_RUNNING
        if desk.risk.state is TradingState.HALTED:
            return Outcome(200, "already halted", {"risk": "halted"})
        desk.router.apply_transitions((desk.risk.halt(OPERATOR, detail or "halted from the API"),))
        return Outcome(200, "halted: open orders are being canceled", {"risk": "halted"})

    def resume(self) -> Outcome:
        desk = self._desk()
        if desk is None:
            return _NOT_RUNNING
        if desk.risk.state is TradingState.ACTIVE:
            return Outcome(200, "already active", {"risk": "active"})
        desk.router.apply_transitions((desk.risk.resume(OPERATOR, "resumed from the API"),))
        return Outcome(200, "resumed: trading is active", {"risk": "active"})

    def cancel_all(self) -> Outcome:
        desk = self._desk()
        if desk is None:
            return _NOT_RUNNING
        sent = {name: ctx.cancel_all() for name, ctx in desk.contexts.items()}
        total = sum(sent.values())
        return Outcome(200, f"{total} cancel{'s' if total != 1 else ''} sent", {"sent": sent})

    def pause(self, strategy: str) -> Outcome:
        desk, found = self._strategy(strategy)
        if desk is None:
            return found
        if desk.risk.own_state(strategy) is TradingState.HALTED:
            return Outcome(200, f"{strategy} already paused", {"risk": "halted"})
        t = desk.risk.halt(OPERATOR, f"{strategy} paused from the API", strategy=strategy)
        desk.router.apply_transitions((t,))
        return Outcome(200, f"{strategy} paused: its orders are being canceled", {"risk": "halted"})

    def resume_strategy(self, strategy: str) -> Outcome:
        desk, found = self._strategy(strategy)
        if desk is None:
            return found
        t = desk.risk.resume(OPERATOR, f"{strategy} resumed from the API", strategy=strategy)
        if t.from_state is t.to_state:
            return Outcome(200, f"{strategy} already active", {"risk": str(t.to_state)})
        desk.router.apply_transitions((t,))
        in_force = desk.risk.strategy_state(strategy)
        return Outcome(200, f"{strategy} resumed (risk state in force: {in_force})",
                       {"risk": str(in_force)})  # fmt: skip

    def reload(self) -> Outcome:
        if self._desk() is None:
            return _NOT_RUNNING
        problems = self._reload()
        if problems:
            return Outcome(422, "reload rejected: nothing applied", {"problems": problems})
        return Outcome(200, "params reloaded")

    def _strategy(self, strategy: str) -> tuple[DeskControl | None, Outcome]:
        desk = self._desk()
        if desk is None:
            return None, _NOT_RUNNING
        runner = desk.runners.get(strategy)
        if runner is None:
            return None, Outcome(404, f"no strategy named {strategy!r}")
        if runner.halted:
            why = f"{strategy} was halted after handler errors: fix it and restart the daemon"
            return None, Outcome(409, why)
        return desk, Outcome(200, "")
