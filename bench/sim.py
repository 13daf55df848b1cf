"""``krakenbot bench sim``: the simulator's two figures, from one command.

- book frames/s the server sustains to one subscriber (``bench.sim_ws``);
- AddOrder→ack round-trip latency on loopback (``bench.sim_rest``).
"""

from __future__ import annotations

from typing import Any

from bench.sim_rest import run_sim_rest_bench
from bench.sim_ws import run_sim_ws_bench

__all__ = ["run_sim_bench"]


def run_sim_bench() -> dict[str, Any]:
    return {"ws_book_stream": run_sim_ws_bench(), "rest_add_order": run_sim_rest_bench()}
