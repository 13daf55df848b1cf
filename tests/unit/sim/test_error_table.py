"""The simulator's error table (``bot.sim.error_table``) covers every error string the
simulator can send, and docs/contributors/simulator/server.md prints it."""

from __future__ import annotations

import re
from pathlib import Path

from bot.sim.error_table import ERRORS, markdown_table

ROOT = Path(__file__).resolve().parents[3]
KRAKEN_STYLE = re.compile(r'"(E[A-Z][A-Za-z]+:[^"{]*)')
WS_STYLE = re.compile(r'ERR_[A-Z_]+: Final = "([^"E][^"]*)"')


def covered(code: str) -> bool:
    codes = {e.code for e in ERRORS}
    if code in codes:
        return True
    if code.startswith("EGeneral:Invalid arguments:"):
        return "EGeneral:Invalid arguments:<name>" in codes
    if code.startswith("EOrder:Invalid price:"):
        return any(c.startswith("EOrder:Invalid price:") for c in codes)
    return False


def test_every_string_the_simulator_sends_is_in_the_table() -> None:
    found: set[str] = set()
    for path in sorted((ROOT / "bot" / "sim").glob("*.py")):
        text = path.read_text()
        found.update(KRAKEN_STYLE.findall(text))
        found.update(WS_STYLE.findall(text))
    assert len(found) > 25
    assert sorted(code for code in found if not covered(code)) == []
    assert "Currency pair not supported" in (ROOT / "bot/sim/ws_public.py").read_text()


def test_each_row_has_a_source_or_says_unconfirmed() -> None:
    assert len({e.code for e in ERRORS}) == len(ERRORS)
    table = markdown_table()
    assert table.count("**unconfirmed**") == sum(1 for e in ERRORS if e.source is None)


def test_the_simulator_page_prints_the_table() -> None:
    assert markdown_table() in (ROOT / "docs/contributors/simulator/server.md").read_text()
