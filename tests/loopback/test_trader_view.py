"""The trader's view on the whole daemon in-process (paper mode, the simulator on 127.0.0.1):
the control API's every endpoint, with and without a token, replays, a read-only
deployment, and the notifications a webhook receives.

A quiet grid strategy (levels 2 % away from the mid) keeps orders open that nothing but a
cancel removes: what a control call did, or did not, do is read from the simulator's book.
A local aiohttp server stands in for the webhook. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from bot.config import load_config
from bot.core.clock import SystemClock
from bot.core.errors import AuthError
from bot.core.log import Secret
from bot.core.supervisor import Supervisor
from bot.execution.readiness import ReadinessGate
from bot.execution.risk import TradingState
from bot.service.control_api import NONCE_HEADER, ROUTES, TIME_HEADER
from bot.service.daemon import Daemon
from bot.service.metrics import Metrics
from bot.service.view import TraderView
from bot.sim.venue import DEFAULT_ACCOUNT
from bot.strategy.loader import load_strategies
from tests.loopback.local_server import local_server

pytestmark = pytest.mark.timeout(90)
Events = list[MutableMapping[str, Any]]
TOKEN = "0f4c6d2e8a9b1c3d5e7f90a1b2c3d4e5"
HOOK = "/hooks/T000/B000/not-a-real-secret-path"


def deploy_yaml(
    tmp: Path, *, token: bool = False, host: str = "127.0.0.1", notify: str = ""
) -> Path:
    control = "  control_token_env: TEST_CONTROL_TOKEN\n" if token else ""
    text = f"""
mode: paper
market: {{symbols: [BTC/USD]}}
sim: {{seed: 3, balances: {{USD: 100000, BTC: 5}}}}
store: {{path: {tmp / "bot.db"}}}
deadman: {{timeout_s: 60}}
http:
  host: {host}
  port: 0
{control}{notify}
strategies:
  - name: grid
    class: grid
    symbols: [BTC/USD]
    params: {{size: 0.001, levels: 2, spacing_bps: 200}}
"""
    path = tmp / "deploy.yaml"
    path.write_text(text)
    return path


async def until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(path: Path, env: dict[str, str] | None = None) -> AsyncIterator[Daemon]:
    config = load_config(path, env=env or {})
    daemon = Daemon(config, load_strategies(config.strategies), config_path=path)
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(30):
            await asyncio.wait(
                [task, asyncio.ensure_future(daemon.wait_started())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        if task.done():
            task.result()
        yield daemon
    finally:
        if not task.done():
            daemon.request_stop("test")
            async with asyncio.timeout(20):
                await task


def sim_orders(daemon: Daemon) -> set[str]:
    return {o.cl_ord_id for o in daemon.sim.venue.exchange.open_orders(DEFAULT_ACCOUNT)}


def base_url(daemon: Daemon) -> str:
    assert daemon.http is not None and daemon.http.port is not None
    return f"http://127.0.0.1:{daemon.http.port}"


def signed(token: str | None = TOKEN, nonce: str | None = None) -> dict[str, str]:
    out = {TIME_HEADER: str(time.time_ns() // 1_000_000), NONCE_HEADER: nonce or uuid.uuid4().hex}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


async def post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with session.post(url, headers=headers) as reply:
        return reply.status, await reply.json()


def paths(name: str = "grid") -> list[str]:
    return [path.replace("{name}", name) for _, path in ROUTES]


# --------------------------------------------------------------------------- read-only


async def test_a_deployment_without_a_token_exposes_nothing_that_changes_state(
    tmp_path: Path,
) -> None:
    """Bound to every address (0.0.0.0), no token: every route, every method, changes nothing."""
    with capture_logs() as events:
        async with running(deploy_yaml(tmp_path, host="0.0.0.0")) as daemon:
            await until(lambda: len(sim_orders(daemon)) == 4, "the grid's four orders")
            before = sim_orders(daemon)
            assert daemon.http is not None
            routes = {r.resource.canonical for r in daemon.http.app.router.routes()
                      if r.resource is not None}  # fmt: skip
            assert set(paths("{name}")) <= routes
            statuses: dict[tuple[str, str], int] = {}
            async with aiohttp.ClientSession() as session:
                for route in sorted(routes):
                    url = base_url(daemon) + route.replace("{name}", "grid")
                    for method in ("POST", "PUT", "PATCH", "DELETE"):
                        for headers in ({}, signed(), signed(token="anything-at-all-here")):
                            async with session.request(method, url, headers=headers) as reply:
                                statuses[route, method] = reply.status
                                await reply.read()
            assert daemon.desk is not None
            assert daemon.desk.risk.state is TradingState.ACTIVE
            assert daemon.desk.risk.strategy_state("grid") is TradingState.ACTIVE
            assert sim_orders(daemon) == before  # not one canceled
            assert daemon.runners["grid"].running
    for (route, method), status in statuses.items():
        if route.startswith("/api/") and method == "POST" and route in paths("{name}"):
            assert status == 403, (route, method)
        else:
            assert status in (404, 405), (route, method, status)
    logged = {e["event"] for e in events}
    assert "control_call" not in logged and "reload_applied" not in logged
    refused = [e for e in events if e["event"] == "control_refused"]
    assert {e["reason"] for e in refused} == {"disabled"} and len(refused) == 3 * len(ROUTES)


# --------------------------------------------------------------------------- with a token


async def test_every_endpoint_with_a_token_and_refused_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONTROL_TOKEN", TOKEN)  # a reload reads the config again
    path = deploy_yaml(tmp_path, token=True)
    with capture_logs() as events:
        async with (
            running(path, env={"TEST_CONTROL_TOKEN": TOKEN}) as daemon,
            aiohttp.ClientSession() as session,
        ):
            url = base_url(daemon)
            await until(lambda: len(sim_orders(daemon)) == 4, "the grid's four orders")
            before = sim_orders(daemon)
            for route in paths():  # no token, a wrong one: 401 and nothing done
                assert (await post(session, url + route, signed(None)))[0] == 401
                wrong = await post(session, url + route, signed("x" * 32))
                assert wrong[0] == 401 and "wrong token" in wrong[1]["error"]
            assert sim_orders(daemon) == before
            assert daemon.desk is not None
            risk = daemon.desk.risk
            assert (await post(session, url + "/api/strategies/nope/pause", signed()))[0] == 404

            status, body = await post(session, url + "/api/strategies/grid/pause", signed())
            assert status == 200 and body["risk"] == "halted"
            await until(lambda: not sim_orders(daemon), "the paused grid's orders canceled")
            assert risk.strategy_state("grid") is TradingState.HALTED
            status, body = await post(session, url + "/api/strategies/grid/resume", signed())
            assert status == 200 and risk.strategy_state("grid") is TradingState.ACTIVE

            assert (await post(session, url + "/api/cancel-all", signed()))[0] == 200
            halt = signed()
            status, body = await post(session, url + "/api/halt", halt)
            assert status == 200 and body == {
                "ok": True, "action": "halt", "risk": "halted",
                "result": "halted: open orders are being canceled",
            }  # fmt: skip
            assert risk.state is TradingState.HALTED
            await until(lambda: not sim_orders(daemon), "every order canceled")
            assert (await post(session, url + "/api/resume", signed()))[0] == 200
            assert risk.state is TradingState.ACTIVE
            # The same halt request again (captured, replayed): refused, and still ACTIVE.
            status, body = await post(session, url + "/api/halt", halt)
            assert status == 409 and "replay" in body["error"]
            assert risk.state is TradingState.ACTIVE

            assert (await post(session, url + "/api/reload", signed()))[0] == 200
            path.write_text(path.read_text().replace("levels: 2", "levels: 999"))
            status, body = await post(session, url + "/api/reload", signed())
            assert status == 422 and any("levels" in p for p in body["problems"])
    calls = [(e["action"], e["status"]) for e in events if e["event"] == "control_call"]
    assert calls == [
        ("pause", 404), ("pause", 200), ("resume-strategy", 200), ("cancel-all", 200),
        ("halt", 200), ("resume", 200), ("reload", 200), ("reload", 422),
    ]  # fmt: skip
    refused = [e["reason"] for e in events if e["event"] == "control_refused"]
    assert refused == ["no_token", "wrong_token"] * len(ROUTES) + ["replay"]
    assert not any(TOKEN in str(e) for e in events)


# --------------------------------------------------------------------------- notifications


class Hook:
    """A local webhook: records each JSON body; answers 500 to the first ``fail`` posts."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail
        self.app = web.Application()
        self.app.router.add_post(HOOK, self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500)
        self.bodies.append(await request.json())
        return web.Response(text="ok")

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]


@asynccontextmanager
async def serving(hook: Hook) -> AsyncIterator[str]:
    async with local_server(hook.app) as base:
        yield base + HOOK


async def test_a_webhook_hears_start_fills_a_halt_and_the_stop(tmp_path: Path) -> None:
    hook = Hook(fail=1)  # the first delivery fails: retried
    notify = (
        "notify:\n  fills: each\n  notifiers:\n    - kind: webhook\n      name: ops\n"
        "      format: slack\n      url_env: TEST_HOOK_URL\n"
    )
    path = deploy_yaml(tmp_path, token=True, notify=notify)
    path.write_text(path.read_text().replace("spacing_bps: 200", "spacing_bps: 1"))  # fills
    async with serving(hook) as hook_url:
        env = {"TEST_CONTROL_TOKEN": TOKEN, "TEST_HOOK_URL": hook_url}
        with capture_logs() as events:
            async with running(path, env=env) as daemon, aiohttp.ClientSession() as session:
                await until(lambda: any("started and ready" in t for t in hook.texts()),
                            "the started message")  # fmt: skip
                await until(lambda: any(": fill: grid" in t for t in hook.texts()), "a fill")
                assert (await post(session, base_url(daemon) + "/api/halt", signed()))[0] == 200
                await until(lambda: any("→ HALTED" in t for t in hook.texts()), "the halt")
        texts = hook.texts()
        assert texts[-1] == "ℹ️ krakenbot paper: stopped cleanly: orders canceled, switch disarmed"
        assert texts[0].startswith("ℹ️ krakenbot paper: started and ready (strategies grid")
        assert any(t.startswith("🚨 krakenbot paper: risk state active → HALTED") for t in texts)
        assert not any(TOKEN in t or "not-a-real-secret" in t for t in texts)
        assert not any(HOOK in str(e) for e in events)  # the URL is scrubbed from every log


async def test_a_fatal_error_is_told_before_the_daemon_exits(tmp_path: Path) -> None:
    """The last words on the way out: the error (scrubbed), delivered within drain_s."""
    hook = Hook()
    secret = Secret("a-key-that-leaked-into-an-error")
    async with serving(hook) as hook_url:
        notify = "notify:\n  notifiers:\n    - kind: webhook\n      url_env: TEST_HOOK_URL\n"
        config = load_config(deploy_yaml(tmp_path, notify=notify), env={"TEST_HOOK_URL": hook_url})
        clock = SystemClock()
        view = TraderView(config, clock, Metrics(process=False), ReadinessGate())
        with pytest.raises(AuthError):
            async with (
                aiohttp.ClientSession() as session,
                view.serving(session, Supervisor(clock).keep, lambda: 1),
            ):
                raise AuthError(f"EAPI:Invalid key {secret.reveal()}")
    assert hook.texts() == ["🚨 krakenbot paper: STOPPED on an error: EAPI:Invalid key ***"]
