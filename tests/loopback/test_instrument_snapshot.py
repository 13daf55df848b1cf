"""``fetch_instrument_snapshot``: the WS v2 names the daemon maps REST pairs onto, from the
simulator's instrument channel; and what it raises when none comes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.core.errors import ConfigError, TransientError
from bot.kraken.instruments import InstrumentTable, merge_rest_names
from bot.market.instrument_snapshot import fetch_instrument_snapshot
from tests.loopback.conftest import SimHandle


async def test_the_simulators_snapshot_maps_its_rest_pairs_doge_included(sim: SimHandle) -> None:
    pairs = await fetch_instrument_snapshot(sim.ws_public_url, timeout_s=5.0)
    symbols = {inst.symbol for inst in pairs}
    assert {"BTC/USD", "DOGE/USD"} <= symbols
    reply = await sim.client.public("AssetPairs")
    table = InstrumentTable(merge_rest_names(reply.result, pairs))
    assert table.lookup("XBTUSD") is table["BTC/USD"]
    assert table.lookup("XDGUSD") is table["DOGE/USD"]
    assert set(table) == symbols  # every pair the simulator lists has its REST pair


@pytest.fixture
async def mute_url() -> AsyncIterator[str]:
    """A WebSocket that accepts and then says nothing, ever."""

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v2"


async def test_no_snapshot_in_time_is_transient_and_a_bad_url_is_a_config_error(
    mute_url: str,
) -> None:
    with pytest.raises(TransientError, match="no instrument snapshot"):
        await fetch_instrument_snapshot(mute_url, timeout_s=0.3)
    with pytest.raises(ConfigError, match="ws_public_url"):
        await fetch_instrument_snapshot("not a url", timeout_s=5.0)
