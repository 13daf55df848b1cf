"""The simulator page's table of Kraken's REST methods agrees with what the simulator serves.

docs/contributors/simulator/server.md lists every Kraken Spot REST method, its page in
Kraken's docs, its permission and whether the simulator serves it. A method added to the
simulator without a row, a row saying "supported" for a method it does not serve, or a
private method served with no permission row would each let the page lie to a user.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.sim.keys import REST_PERMISSIONS
from bot.sim.rest_private import PRIVATE_METHODS
from bot.sim.rest_public import PUBLIC_METHODS

PAGE = Path(__file__).resolve().parents[3] / "docs/contributors/simulator/server.md"


def rows() -> dict[str, tuple[str, str, str]]:
    """Method -> (page slug, permission, the simulator's column), from the page's table."""
    text = PAGE.read_text()
    start = text.index("Every Kraken Spot REST method")
    table: dict[str, tuple[str, str, str]] = {}
    for line in text[start:].splitlines()[4:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a row that is not method | page | permission | simulator: {line}"
        names, page, permission, simulator = cells
        for name in re.findall(r"`([A-Za-z]+)`", names):
            table[name] = (page, permission, simulator)
    return table


def test_every_method_the_simulator_serves_has_a_supported_row_with_its_page() -> None:
    table = rows()
    served = set(PUBLIC_METHODS) | set(PRIVATE_METHODS)
    assert served - set(table) == set(), "served but missing from the page"
    for method in served:
        page, _permission, simulator = table[method]
        assert page and simulator.startswith("supported"), (method, simulator)


def test_a_row_says_supported_only_for_a_method_the_simulator_serves() -> None:
    served = set(PUBLIC_METHODS) | set(PRIVATE_METHODS)
    claimed = {m for m, (_p, _perm, sim) in rows().items() if sim.startswith("supported")}
    assert claimed - served == set(), "the page claims methods the simulator does not serve"


def test_public_rows_say_public_and_private_rows_name_a_permission() -> None:
    table = rows()
    for method in PUBLIC_METHODS:
        assert table[method][1] == "public", method
    for method in PRIVATE_METHODS:
        assert table[method][1] != "public" and REST_PERMISSIONS[method], method
