"""End to end: ``krakenbot run`` with an API key that lacks a permission, against
``krakenbot sim`` as another process. The key is made through the simulator's admin API
(``POST /admin/keys``) with every permission but "WebSocket interface": the daemon must
exit 2 before it trades, naming the permission, instead of asking for a token forever.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import SimProc, SpawnDaemon, live_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_a_key_without_websocket_exits_2_naming_it(
    tmp_path: Path, sim: SimProc, spawn_daemon: SpawnDaemon
) -> None:
    everything = [
        "query_funds",
        "query_open_orders",
        "query_closed_orders",
        "create_orders",
        "cancel_orders",
    ]  # fmt: skip  (all the daemon needs but "websocket")
    made = sim.admin("POST", "/keys", {"account": "trader", "permissions": everything})
    assert "websocket" not in made["permissions"]
    keyed = SimProc(
        sim.proc, {**sim.info, "api_key": made["api_key"], "api_secret": made["api_secret"]}
    )
    daemon = spawn_daemon(live_config(sim, tmp_path), sim=keyed)
    assert daemon.proc.wait(30) == 2
    text = daemon.logs.text()
    assert 'krakenbot: the API key lacks the permission "WebSocket interface - On"' in text
    assert "GetWebSocketsToken answered EGeneral:Permission denied" in text
    fatal = daemon.logs.events("fatal_error")
    assert fatal and fatal[0]["kind"] == "ConfigError"
    done = daemon.logs.events("shutdown_complete")
    assert done and done[-1]["exit_code"] == 2
    assert not daemon.logs.events("order_placed") and not daemon.logs.events("daemon_ready")
    assert made["api_key"] not in text and made["api_secret"] not in text
    assert "Traceback" not in text
    sim.daemon_gone = True
    assert sim.open_orders() == {}  # nothing placed on the exchange
