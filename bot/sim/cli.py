"""``krakenbot sim``: the Kraken-compatible simulator as a standalone server.

``krakenbot sim [--config FILE] [--host H] [--port N] [--source synthetic|replay:FILE]
[--seed N]`` reads the config's ``sim`` section (the flags override it), starts the server
and prints one JSON line on stdout::

    {"rest": "http://127.0.0.1:40321", "ws_public": "ws://127.0.0.1:40321/v2",
     "ws_private": "ws://127.0.0.1:40321/v2-auth", "admin": "http://127.0.0.1:40321/admin",
     "api_key": "...", "api_secret": "...", "admin_token": "..."}

It then serves until SIGINT or SIGTERM and exits 0. With ``replay:FILE`` the pairs are
those with book frames in the capture (and in ``sim.symbols``, if it names any). The
account's key pair is generated at start, unless the config (in paper mode) has
``credentials``: then those are used and ``api_secret`` is printed as null (the user has
it; it is never echoed). Rate limits follow ``venue.tier``. Logs go to stderr.

This module owns the command; the server is ``server``'s, the venue ``venue``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import orjson
import structlog

from bot.config import Config, load_config
from bot.errors import ConfigError
from bot.kraken.instruments import InstrumentTable
from bot.sim.market_data import MarketSource
from bot.sim.pairs import PAIRS, default_instruments
from bot.sim.replay_source import ReplayMarket, capture_symbols
from bot.sim.server import SimServer
from bot.sim.venue import DEFAULT_ACCOUNT, SimVenue

__all__ = ["build_venue", "main_sim"]

log = structlog.get_logger("sim.cli")


def _replay(path: Path, symbols: tuple[str, ...]) -> tuple[MarketSource, InstrumentTable]:
    try:
        with path.open("rb") as stream:
            found = capture_symbols(stream)
    except OSError as exc:
        raise ConfigError(f"sim.source: cannot read {path}: {exc.strerror or exc}") from None
    shipped = {inst.symbol for inst in PAIRS}
    wanted = tuple(s for s in found if s in shipped and (not symbols or s in symbols))
    if not wanted:
        raise ConfigError(f"sim.source: {path} has no book frames for a pair the simulator knows")
    instruments = default_instruments(wanted)
    return ReplayMarket.from_file(path, instruments), instruments


def build_venue(
    config: Config, *, source: str | None = None, seed: int | None = None
) -> tuple[SimVenue, bool]:
    """The venue ``krakenbot sim`` serves, and whether its secret was generated."""
    sim = config.sim
    source = source or sim.source
    seed = sim.seed if seed is None else seed
    symbols = tuple(sim.symbols)
    market: MarketSource | str
    if source == "synthetic":
        market, instruments = "synthetic", default_instruments(symbols or None)
    elif source.startswith("replay:") and len(source) > len("replay:"):
        market, instruments = _replay(Path(source.removeprefix("replay:")), symbols)
    else:
        raise ConfigError(f"--source: expected 'synthetic' or 'replay:PATH', got {source!r}")
    unknown = [s for s in symbols if s not in instruments] if source == "synthetic" else []
    if unknown:
        raise ConfigError(f"sim.symbols: the simulator has no pair {', '.join(unknown)}")
    venue = SimVenue(
        instruments=instruments,
        seed=seed,
        market=market,  # type: ignore[arg-type]
        speed=sim.speed,
        tier=config.venue.tier,
    )
    creds = config.credentials if config.mode == "paper" else None
    if creds is not None:
        venue.add_account(
            DEFAULT_ACCOUNT,
            sim.balances,
            api_key=creds.api_key.reveal(),
            api_secret=creds.api_secret.reveal(),
        )
        return venue, False
    venue.add_account(DEFAULT_ACCOUNT, sim.balances)
    return venue, True


async def _serve(venue: SimVenue, host: str, port: int, show_secret: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await SimServer.start(venue, host, port, pump=False)
    except OSError as exc:
        raise ConfigError(f"sim: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sys.stdout.write(orjson.dumps(server.info(secret=show_secret)).decode() + "\n")
        sys.stdout.flush()
        async with asyncio.TaskGroup() as tasks:
            pump = tasks.create_task(venue.run(), name="sim-pump")
            await stop.wait()
            log.info("sim_stopping")
            pump.cancel()
    finally:
        await server.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def main_sim(args: argparse.Namespace) -> int:
    """The ``krakenbot sim`` subcommand (exit 0 after SIGINT/SIGTERM)."""
    config = load_config(args.config)
    venue, generated = build_venue(config, source=args.source, seed=args.seed)
    host = args.host or config.sim.host
    port = config.sim.port if args.port is None else args.port
    return asyncio.run(_serve(venue, host, port, generated))
