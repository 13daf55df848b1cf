"""The simulator page's table of Kraken's WebSocket v2 channels and methods agrees with
what the simulator serves.

docs/contributors/simulator/websocket.md lists every Kraken WS v2 channel and method, its
page in Kraken's docs, the endpoint(s) serving it and whether the simulator serves it. What
is served is read from the names that gate the simulator's dispatch: each endpoint's
subscribable channels (``CHANNELS``, ``level3``'s ``CHANNEL``), the private endpoint's
``ORDER_METHODS`` and what every connection answers (``EVERY_CONNECTION``). A channel or
method added to the simulator without a row, a row claiming one it does not serve, or a
row naming the wrong endpoint would each let the page lie to a user.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.sim import ws_level3, ws_private, ws_public
from bot.sim.ws_common import EVERY_CONNECTION
from bot.sim.ws_orders import ORDER_METHODS

PAGE = Path(__file__).resolve().parents[3] / "docs/contributors/simulator/websocket.md"
ENDPOINTS = ("public", "private", "level3")


def served() -> dict[str, set[str]]:
    """Channel or method -> the endpoints serving it, from the simulator's own names."""
    by_endpoint = {
        "public": {*ws_public.CHANNELS, *EVERY_CONNECTION},
        "private": {*ws_private.CHANNELS, *ORDER_METHODS, *EVERY_CONNECTION},
        "level3": {ws_level3.CHANNEL, *EVERY_CONNECTION},
    }
    out: dict[str, set[str]] = {}
    for endpoint, names in by_endpoint.items():
        for name in names:
            out.setdefault(name, set()).add(endpoint)
    return out


def rows() -> dict[str, tuple[str, set[str], str]]:
    """Name -> (its page, the endpoints the row names, the simulator's column)."""
    text = PAGE.read_text()
    start = text.index("Every Kraken WS v2 channel and method")
    lines = text[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| Channel / method"))
    table: dict[str, tuple[str, set[str], str]] = {}
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a row that is not name | page | endpoint | simulator: {line}"
        names_cell, pages_cell, endpoint_cell, simulator = cells
        names = re.findall(r"`([a-z0-9_]+)`", names_cell)
        pages = [p.strip() for p in pages_cell.split(",") if p.strip()]
        assert names and len(pages) == len(names), f"one page per name: {line}"
        where = set(ENDPOINTS) if endpoint_cell == "every" else set(endpoint_cell.split(" and "))
        assert where <= set(ENDPOINTS), f"unknown endpoint {endpoint_cell!r}: {line}"
        for name, page in zip(names, pages, strict=True):
            assert name not in table, f"{name} has two rows"
            table[name] = (page, where, simulator)
    return table


def test_everything_the_simulator_serves_has_a_supported_row_with_its_page() -> None:
    table = rows()
    missing = set(served()) - set(table)
    assert missing == set(), f"served but missing from the page: {sorted(missing)}"
    for name in served():
        page, _where, simulator = table[name]
        assert page and simulator.startswith("supported"), (name, page, simulator)


def test_a_row_says_supported_only_for_what_the_simulator_serves() -> None:
    claimed = {n for n, (_page, _where, sim) in rows().items() if sim.startswith("supported")}
    over = claimed - set(served())
    assert over == set(), f"the page claims what the simulator does not serve: {sorted(over)}"


def test_each_supported_row_names_the_endpoints_that_serve_it() -> None:
    table, serving = rows(), served()
    named = {n: table[n][1] for n in serving if n in table}  # a missing row: the test above
    wrong = {n: (named[n], where) for n, where in serving.items() if named.get(n, where) != where}
    assert wrong == {}, f"name: (the page's endpoints, the simulator's): {wrong}"
