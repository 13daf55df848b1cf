"""The browser tier: pages a person reads, opened in the system's headless Chromium.

Playwright (from PyPI) drives Debian's ``chromium`` package (``/usr/bin/chromium``, or
``$KRAKENBOT_CHROMIUM``); it never downloads a browser of its own. Chromium starts with a
fresh user-data directory and the flags below: no sandbox (CI runs as root), no GPU, no
QUIC, no first-run, background networking, component updates or sync, so it talks to
nothing but the pages a test opens. Every request a page makes other than ``file:`` and
``data:`` (and, for a page a server on loopback serves, that server's own origin:
``open_page(url, same_origin=True)``) is refused and counted as an error: a page that works
here works offline.

``open_page(url)`` opens a page and records its console errors, uncaught page errors and
refused requests; a test that leaves any fails at teardown, whatever it asserted.

No browser (or no Playwright): the tier is skipped with the reason, unless
``KRAKENBOT_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes it fail instead. Tests
take no screenshots; nothing is written into the repository.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOAD_TIMEOUT_MS = 30_000


def chromium_path() -> str | None:
    """``$KRAKENBOT_CHROMIUM`` if set (and nothing else then), else the system Chromium."""
    given = os.environ.get("KRAKENBOT_CHROMIUM")
    for candidate in [given] if given else ["/usr/bin/chromium", "chromium"]:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def unavailable(reason: str) -> None:
    """Skip the tier, or (with KRAKENBOT_REQUIRE_BROWSER=1) fail it."""
    if os.environ.get("KRAKENBOT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tier required (KRAKENBOT_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(f"browser tier skipped: {reason} (install Debian's chromium package)")


@dataclass
class PageProbe:
    """A page and everything it complained about."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return list(self.errors)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (fresh profile) per test module."""
    executable = chromium_path()
    if executable is None:
        where = os.environ.get("KRAKENBOT_CHROMIUM") or "/usr/bin/chromium"
        unavailable(f"no Chromium at {where}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


OpenPage = Callable[..., PageProbe]


@pytest.fixture
def open_page(browser_context: Any) -> Iterator[OpenPage]:
    """``open_page(url, same_origin=False)``: the loaded page; the test fails on any console
    or page error. ``same_origin``: the page's own loopback server may be asked too."""
    probes: list[PageProbe] = []
    allowed: list[str] = ["file:", "data:"]

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(tuple(allowed)):
            route.continue_()
        else:
            for probe in probes:
                probe.errors.append(f"request refused (the page must work offline): {url}")
            route.abort()

    def open_url(url: str, same_origin: bool = False) -> PageProbe:
        if same_origin:
            parts = urllib.parse.urlsplit(url)
            assert parts.hostname in ("127.0.0.1", "localhost", "::1"), url
            allowed.append(f"{parts.scheme}://{parts.netloc}/")
        page = browser_context.new_page()
        probe = PageProbe(page)
        probes.append(probe)
        page.route("**/*", route)
        page.on(
            "console",
            lambda m: (
                probe.errors.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "assert")
                else None
            ),
        )
        page.on("pageerror", lambda exc: probe.errors.append(f"page error: {exc}"))
        page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT_MS)
        return probe

    yield open_url
    problems = [p for probe in probes for p in probe.problems()]
    for probe in probes:
        probe.page.close()
    if problems:
        pytest.fail("the page reported errors:\n" + "\n".join(problems))


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
