"""The tier's contract with CI: without a browser it skips, unless it is required."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ONE_TEST = "tests/browser/test_report_page.py::test_an_empty_report_renders_and_says_so"


def run_tier(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KRAKENBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", ONE_TEST],
        cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_no_browser_skips_with_the_reason() -> None:
    result = run_tier(KRAKENBOT_CHROMIUM="/nonexistent/chromium")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "browser tier skipped: no Chromium at /nonexistent/chromium" in result.stdout


def test_no_browser_fails_when_the_tier_is_required() -> None:
    result = run_tier(KRAKENBOT_CHROMIUM="/nonexistent/chromium", KRAKENBOT_REQUIRE_BROWSER="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "browser tier required (KRAKENBOT_REQUIRE_BROWSER=1) but no Chromium" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
