"""Delivering notices to local HTTP servers standing in for a webhook and for Telegram's
Bot API: the shapes they receive, retries, 429s, refusals, full queues, the rate limit and
the drain at shutdown. Backoffs and rate-limit waits run on a fake clock; every wait on
the network is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import NotifierConfig, NotifyConfig
from bot.core.clock import FakeClock
from bot.core.log import Secret
from bot.service.notify.notice import Notice, notice
from bot.service.notify.sender import Bucket, Notifier
from tests.loopback.local_server import local_server
from tests.loopback.waiting import until

pytestmark = pytest.mark.timeout(30)
T0 = 1_800_000_000_000_000_000
BOT_TOKEN = "123456789:AAH-test-token-never-to-be-seen"

Reply = Callable[[web.Request], web.Response]


class Server:
    """Records every request; ``replies`` (consumed in order) decide the answers, then 200."""

    def __init__(self, *replies: Reply) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.replies = list(replies)
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self.receive)
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.json()))
        if self.replies:
            return self.replies.pop(0)(request)
        return web.json_response({"ok": True})


def status(code: int, **headers: str) -> Reply:
    return lambda _: web.Response(status=code, headers=headers)


def telegram_429(retry_after: int) -> Reply:
    body = {"ok": False, "error_code": 429, "description": "Too Many Requests",
            "parameters": {"retry_after": retry_after}}  # fmt: skip
    return lambda _: web.json_response(body, status=429)


@asynccontextmanager
async def listening(server: Server) -> AsyncIterator[str]:
    async with local_server(server.app) as url:
        server.url = url
        yield url


@asynccontextmanager
async def delivering(notifier: Notifier) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(notifier.run(session))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait((task,))


def item(text: str = "risk state active → HALTED", level: Any = "critical") -> Notice:
    return notice("risk_state", level, f"krakenbot paper: {text}", T0)


def hook(url: str, fmt: Any = "slack", name: str = "ops", **kw: Any) -> NotifierConfig:
    return NotifierConfig(kind="webhook", name=name, format=fmt, url=Secret(url), **kw)


def telegram(url: str) -> NotifierConfig:
    return NotifierConfig(kind="telegram", name="tg", token=Secret(BOT_TOKEN), chat_id="-1001",
                          api_url=url)  # fmt: skip


def counts(notifier: Notifier) -> dict[tuple[str, ...], float]:
    return {(s.name, *s.labels): s.value for s in notifier.samples()}


async def test_a_webhook_and_telegram_get_their_shapes() -> None:
    server = Server()
    async with listening(server) as url:
        settings = NotifyConfig(notifiers=(hook(url + "/hooks/abc", "discord"), telegram(url)))
        notifier = Notifier(settings, FakeClock())
        async with delivering(notifier):
            notifier.publish(item())
            await until(lambda: len(server.requests) == 2, "both deliveries")
    by_path = dict(server.requests)
    assert by_path["/hooks/abc"] == {"content": "🚨 krakenbot paper: risk state active → HALTED"}
    assert by_path[f"/bot{BOT_TOKEN}/sendMessage"] == {
        "chat_id": "-1001", "text": "🚨 krakenbot paper: risk state active → HALTED",
        "disable_web_page_preview": True,
    }  # fmt: skip
    assert counts(notifier)[("notify_sent", "ops")] == 1 == counts(notifier)[("notify_sent", "tg")]


async def test_failures_are_retried_with_backoff_and_429s_wait_as_told() -> None:
    server = Server(status(500), status(503), telegram_429(7))
    clock = FakeClock()
    async with listening(server) as url:
        notifier = Notifier(NotifyConfig(notifiers=(telegram(url),), attempts=5), clock,
                            random=lambda: 0.0)  # fmt: skip
        async with delivering(notifier):
            notifier.publish(item())
            await until(lambda: len(server.requests) == 1, "the first attempt")
            assert notifier.pending() == 1
            clock.advance(1.0)  # the backoff: 1 s, then 2 s
            await until(lambda: len(server.requests) == 2, "the second attempt")
            clock.advance(2.0)
            await until(lambda: len(server.requests) == 3, "the third attempt (429)")
            await asyncio.sleep(0.05)
            clock.advance(4.0)  # the backoff says 4 s; Telegram said 7
            await asyncio.sleep(0.05)
            assert len(server.requests) == 3
            clock.advance(3.0)
            await until(lambda: len(server.requests) == 4, "the attempt after retry_after")
            await until(lambda: notifier.pending() == 0, "delivered")
    assert counts(notifier)[("notify_sent", "tg")] == 1
    assert not any(name == "notify_dropped" for name, *_ in counts(notifier))


async def test_a_refusal_is_not_retried_and_exhausted_attempts_are_dropped() -> None:
    server = Server(status(400), status(500), status(500))
    clock = FakeClock(auto_advance=True)
    async with listening(server) as url:
        notifier = Notifier(NotifyConfig(notifiers=(hook(url + "/h"),), attempts=2), clock)
        async with delivering(notifier):
            notifier.publish(item("first"))
            notifier.publish(item("second"))
            notifier.publish(item("third"))
            await until(lambda: notifier.pending() == 0, "every notice handled")
            await until(lambda: counts(notifier).get(("notify_sent", "ops")) == 1, "the third")
    assert [body["text"] for _, body in server.requests] == [
        "🚨 krakenbot paper: first", "🚨 krakenbot paper: second", "🚨 krakenbot paper: second",
        "🚨 krakenbot paper: third",
    ]  # fmt: skip
    found = counts(notifier)
    assert found[("notify_dropped", "ops", "rejected")] == 1  # a 400: never again
    assert found[("notify_dropped", "ops", "failed")] == 1  # two 500s: attempts used up


async def test_publish_never_waits_a_full_queue_drops_and_levels_filter() -> None:
    hang = asyncio.Event()

    async def stuck(_: web.Request) -> web.Response:
        await hang.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/h", stuck)
    async with local_server(app) as base:
        url = base + "/h"
        settings = NotifyConfig(
            notifiers=(hook(url), hook(url, min_level="critical", name="pager")),
            queue_size=2, timeout_s=60,
        )  # fmt: skip
        notifier = Notifier(settings, FakeClock())
        try:
            async with delivering(notifier):
                for k in range(5):  # the endpoint hangs: these return at once all the same
                    notifier.publish(item(f"n{k}", level="info"))
                notifier.publish(item("page me", level="critical"))
                found = counts(notifier)
                assert found[("notify_queued", "ops")] == 2
                assert found[("notify_dropped", "ops", "queue_full")] == 4
                assert found[("notify_queued", "pager")] == 1  # only the critical one
        finally:
            hang.set()  # the server's handler ends: the server can close


async def test_the_drain_delivers_what_it_can_and_counts_the_rest_unsent() -> None:
    server = Server()
    clock = FakeClock()
    async with listening(server) as url:
        settings = NotifyConfig(notifiers=(hook(url + "/h"),), max_per_minute=2)
        notifier = Notifier(settings, clock)
        async with delivering(notifier):
            for k in range(4):
                notifier.publish(item(f"n{k}"))
            drained = asyncio.ensure_future(notifier.drain(5.0))
            await until(lambda: len(server.requests) == 2, "the two the rate allows")
            clock.advance(5.0)  # the rate limit's next token is 30 s away: past the deadline
            assert await asyncio.wait_for(drained, 5) is False
    assert counts(notifier)[("notify_dropped", "ops", "unsent")] == 2
    assert notifier.pending() == 0


def test_the_bucket_refills_evenly() -> None:
    bucket = Bucket(2, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)
    assert bucket.wait_s(0.0) == 30.0
    assert bucket.wait_s(15.0) == 15.0
    assert bucket.wait_s(30.0) == 0.0
    assert bucket.wait_s(1000.0) == 0.0 and bucket._tokens == 2  # never above capacity
