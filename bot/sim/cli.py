"""``krakenbot sim``: the Kraken-compatible simulator as a standalone server.

``krakenbot sim [--config FILE] [--host H] [--port N] [--source synthetic|replay:FILE]
[--seed N] [--keys FILE]`` reads the config's ``sim`` section (the flags override it),
starts the server and prints one JSON line on stdout::

    {"rest": "http://127.0.0.1:40321", "ws_public": "ws://127.0.0.1:40321/v2",
     "ws_private": "ws://127.0.0.1:40322/v2", "admin": "http://127.0.0.1:40321/admin",
     "api_key": "...", "api_secret": "...", "admin_token": "..."}

It then serves until SIGINT or SIGTERM and exits 0. With ``replay:FILE`` the pairs are
those with book frames in the capture (and in ``sim.symbols``, if it names any). The
account's key pair is generated at start, unless the config (in paper mode) has
``credentials``: then those are used and ``api_secret`` is printed as null (the user has
it; it is never echoed). Rate limits follow ``venue.tier``. Logs go to stderr.

``--keys FILE`` (YAML or JSON) lists extra API keys, each ``{"account", "permissions",
"nonce_window", "api_key", "api_secret", "balances"}`` (``keys.KeySpec``; an account it
names that does not exist is opened with ``balances``). The JSON line then has ``"keys"``:
each key's account, pair (a secret given in the file is printed as null), permissions.

This module owns the command; the server is ``server``'s, the venue ``venue``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import structlog

from bot.config import Config, load_config
from bot.errors import ConfigError, ExchangeError
from bot.kraken.instruments import InstrumentTable
from bot.market.capture import CaptureReader
from bot.sim.keys import KeySpec, load_key_specs
from bot.sim.live_source import LiveMarket
from bot.sim.market_data import MarketSource
from bot.sim.pairs import PAIRS, default_instruments
from bot.sim.replay_source import ReplayMarket, capture_symbols
from bot.sim.server import SimServer
from bot.sim.venue import DEFAULT_ACCOUNT, SimVenue

__all__ = ["build_venue", "main_sim"]

log = structlog.get_logger("sim.cli")


def _replay(path: Path, symbols: tuple[str, ...]) -> tuple[MarketSource, InstrumentTable]:
    try:
        found = capture_symbols(CaptureReader([path]).lines(path))
    except OSError as exc:
        raise ConfigError(f"sim.source: cannot read {path}: {exc.strerror or exc}") from None
    shipped = {inst.symbol for inst in PAIRS}
    wanted = tuple(s for s in found if s in shipped and (not symbols or s in symbols))
    if not wanted:
        raise ConfigError(f"sim.source: {path} has no book frames for a pair the simulator knows")
    instruments = default_instruments(wanted)
    return ReplayMarket.from_file(path, instruments), instruments


def build_venue(
    config: Config,
    *,
    source: str | None = None,
    seed: int | None = None,
    keys: Sequence[KeySpec] = (),
) -> tuple[SimVenue, bool]:
    """The venue ``krakenbot sim`` serves, and whether its secret was generated. ``keys``
    are created after the default account (``--keys``)."""
    sim = config.sim
    source = source or sim.source
    seed = sim.seed if seed is None else seed
    symbols = tuple(sim.symbols)
    market: MarketSource | str
    if source == "synthetic":
        market, instruments = "synthetic", default_instruments(symbols or None)
    elif source.startswith("replay:") and len(source) > len("replay:"):
        market, instruments = _replay(Path(source.removeprefix("replay:")), symbols)
    elif source == "live":  # paper trading on live prices: a Kraken client feeds it
        from bot.paper_live import live_market  # never loaded by the simulator otherwise

        market, instruments = live_market(config)
    else:
        raise ConfigError(
            f"--source: expected 'synthetic', 'live' or 'replay:PATH', got {source!r}"
        )
    unknown = [s for s in symbols if s not in instruments] if source == "synthetic" else []
    if unknown:
        raise ConfigError(f"sim.symbols: the simulator has no pair {', '.join(unknown)}")
    venue = SimVenue(
        instruments=instruments,
        seed=seed,
        market=market,  # type: ignore[arg-type]
        speed=1.0 if source == "live" else sim.speed,  # live prices run in real time
        tier=config.venue.tier,
    )
    if isinstance(market, LiveMarket):
        from bot.paper_live import attach_live

        attach_live(venue, market, config)
    creds = config.credentials if config.mode == "paper" else None
    if creds is not None:
        venue.add_account(
            DEFAULT_ACCOUNT,
            sim.balances,
            api_key=creds.api_key.reveal(),
            api_secret=creds.api_secret.reveal(),
        )
        _add_keys(venue, keys)
        return venue, False
    venue.add_account(DEFAULT_ACCOUNT, sim.balances)
    _add_keys(venue, keys)
    return venue, True


def _add_keys(venue: SimVenue, keys: Sequence[KeySpec]) -> None:
    try:
        venue.add_keys(keys)
    except ExchangeError as exc:
        raise ConfigError(f"--keys: {exc}") from None


def _key_lines(venue: SimVenue, specs: Sequence[KeySpec]) -> list[dict[str, object]]:
    """What the JSON line says of the ``--keys`` keys (a secret the file gave: null)."""
    given = {s.api_key for s in specs if s.api_secret is not None and s.api_key is not None}
    extra = [
        key
        for account in venue.accounts()
        for key in venue.keys_of(account)[1 if account == DEFAULT_ACCOUNT else 0 :]
    ]
    return [
        {
            "account": key.account,
            "api_key": key.api_key,
            "api_secret": None if key.api_key in given else key.api_secret,
            "permissions": sorted(p.value for p in key.permissions),
            "nonce_window": key.nonce_window,
        }
        for key in extra
    ]


async def _serve(
    venue: SimVenue, host: str, port: int, show_secret: bool, specs: Sequence[KeySpec] = ()
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await SimServer.start(venue, host, port, pump=False)
    except OSError as exc:
        raise ConfigError(f"sim: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        info = server.info(secret=show_secret)
        if specs:
            info["keys"] = _key_lines(venue, specs)
        sys.stdout.write(orjson.dumps(info).decode() + "\n")
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
    keys_file = getattr(args, "keys", None)
    specs = load_key_specs(Path(keys_file)) if keys_file else []
    venue, generated = build_venue(config, source=args.source, seed=args.seed, keys=specs)
    host = args.host or config.sim.host
    port = config.sim.port if args.port is None else args.port
    return asyncio.run(_serve(venue, host, port, generated, specs))
