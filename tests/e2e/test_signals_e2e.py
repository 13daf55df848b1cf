"""Signals at the edges of ``krakenbot run``'s life, with a real subprocess and real signals.

Before the event loop's handlers exist and after they are gone, a signal used to take its
default action: the process ended by signal, with no log line. Those windows are
milliseconds wide, so each test opens one deterministically with the test hook of
``bot.service.signals`` (``KRAKENBOT_TEST_HOLD=POINT:FILE``: the daemon logs ``test_hold`` at POINT
and waits there until FILE exists), sends its signals while the daemon waits, then lets it
go on and checks the exit status and the log.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Proc, python_env, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def spawn(tmp_path: Path, procs: list[Proc], point: str) -> tuple[Proc, Path]:
    """The shipped paper deployment (HTTP on any port, store in ``tmp_path``), held at
    ``point`` until the returned file exists."""
    text = (REPO / "config" / "default.yaml").read_text()
    for old, new in (("port: 8080", "port: 0"), ("path: data/paper.db", "path: paper.db")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config = tmp_path / "deploy.yaml"
    config.write_text(text)
    release = tmp_path / "release"
    proc = start(
        [sys.executable, "-m", "bot", "--log-format", "json", "run", "--config", str(config)],
        cwd=tmp_path, env=python_env(KRAKENBOT_TEST_HOLD=f"{point}:{release}"), name="daemon",
    )  # fmt: skip
    procs.append(proc)
    proc.logs.wait_for("test_hold", 30, where=lambda r: r.get("point") == point)
    return proc, release


def test_sigterm_during_start_up_stops_it_cleanly(tmp_path: Path, procs: list[Proc]) -> None:
    proc, release = spawn(tmp_path, procs, "startup")
    proc.signal(signal.SIGTERM)
    proc.logs.wait_for("signal_received", 10, where=lambda r: r.get("signal") == "SIGTERM")
    release.touch()
    assert proc.wait(30) == 0
    stop = proc.logs.events("shutdown_requested")
    assert stop and stop[0]["reason"] == "SIGTERM"
    done = proc.logs.events("shutdown_complete")
    assert done and done[-1]["exit_code"] == 0
    assert not proc.logs.events("daemon_ready")  # it never traded
    assert "Traceback" not in proc.logs.text()


def test_a_second_sigterm_during_start_up_exits_130_at_once(
    tmp_path: Path, procs: list[Proc]
) -> None:
    """As while running (the documented 130), and without waiting for start-up to go on:
    the daemon is still held when it exits, so a stuck start can be interrupted."""
    proc, _release = spawn(tmp_path, procs, "startup")
    proc.signal(signal.SIGTERM)
    proc.logs.wait_for("signal_received", 10)
    proc.signal(signal.SIGINT)
    assert proc.wait(30) == 130
    assert "a second stop signal during start-up: exiting at once (130)" in proc.logs.text()
    assert not proc.logs.events("daemon_ready")


def test_sighup_during_start_up_is_ignored_and_it_starts(tmp_path: Path, procs: list[Proc]) -> None:
    proc, release = spawn(tmp_path, procs, "startup")
    proc.signal(signal.SIGHUP)
    proc.logs.wait_for("signal_received", 10, where=lambda r: r.get("signal") == "SIGHUP")
    release.touch()
    proc.logs.wait_for("daemon_ready", 30)
    assert proc.logs.events("reload_ignored")
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_signals_after_shutdown_completed_keep_the_exit_status(
    tmp_path: Path, procs: list[Proc]
) -> None:
    text = (REPO / "config" / "default.yaml").read_text()
    assert "port: 8080" in text
    release = tmp_path / "release"
    config = tmp_path / "deploy.yaml"
    config.write_text(text.replace("port: 8080", "port: 0"))
    proc = start(
        [sys.executable, "-m", "bot", "--log-format", "json", "run", "--config", str(config)],
        cwd=tmp_path, env=python_env(KRAKENBOT_TEST_HOLD=f"exit:{release}"), name="daemon",
    )  # fmt: skip
    procs.append(proc)
    proc.logs.wait_for("daemon_ready", 30)
    proc.signal(signal.SIGTERM)
    done = proc.logs.wait_for("shutdown_complete", 30)
    assert done[0]["exit_code"] == 0
    proc.logs.wait_for("test_hold", 10, where=lambda r: r.get("point") == "exit")
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        mark = proc.logs.mark()
        proc.signal(sig)
        ignored = proc.logs.wait_for("signal_ignored", 10, since=mark)
        assert ignored[0]["signal"] == sig.name
    release.touch()
    assert proc.wait(30) == 0  # the status the run ended with, not death by signal
    assert "Traceback" not in proc.logs.text()
