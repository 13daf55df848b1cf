"""The simulator is a second reading of Kraken's docs, not the client's code run twice: no
module of ``bot/sim`` may import the client's signer, rate limiter or book checksum, not
even through another module (DESIGN.md, "sim: its own signature, counter and checksum
code").

``make lint``'s import contract (``[tool.importlinter]`` in pyproject.toml) checks the
static imports; these tests load the modules, so they also see what a static reading
cannot (``bot.sim.server`` imports its WebSocket handlers by name), and the last one holds
the simulator to an allow-list: a new module of ``bot.kraken`` is not a wire format until
it is added here."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SIM = Path(__file__).resolve().parents[3] / "bot" / "sim"
FORBIDDEN = ("bot.kraken.signer", "bot.kraken.ratelimit", "bot.kraken.checksum")
# What the whole simulator (bot.sim and bot.sim.futures) may load of the rest of bot/.
ALLOWED = ("bot.core", "bot.kraken.instruments", "bot.kraken.codec", "bot.kraken.capture")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_sim_module_imports_the_clients_signer_limiter_or_checksum() -> None:
    modules = sorted(SIM.glob("*.py"))
    assert len(modules) > 20
    offenders = {p.name: sorted(n for n in imported(p) if n.startswith(FORBIDDEN)) for p in modules}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_whole_simulator_loads_none_of_them() -> None:
    names = [f"bot.sim.{p.stem}" for p in sorted(SIM.glob("*.py")) if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_whole_simulator_loads_only_the_core_and_krakens_wire_formats() -> None:
    root = SIM.parent.parent
    names = sorted(
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for p in SIM.rglob("*.py")
    )
    assert "bot.sim.futures.venue" in names
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bot.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(out.stdout)
    inside = ("bot.sim", "bot.kraken", *ALLOWED)  # bot.kraken: its (empty) package module
    outside = [m for m in loaded if not any(m == i or m.startswith(i + ".") for i in inside)]
    assert outside == []
