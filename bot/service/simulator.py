"""``krakenbot sim``: the Kraken-compatible simulator as a standalone server.

``krakenbot sim [--config FILE] [--host H] [--port N] [--source synthetic|replay:FILE]
[--seed N] [--keys FILE] [--futures]`` reads the config's ``sim`` section (the flags override it),
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
names that does not exist is opened with ``balances``). The config's ``sim.keys`` list
declares keys the same way, except that a secret comes from ``api_secret_env`` (the
environment variable holding it), never from the file itself. The JSON line then has
``"keys"``: each key's account, pair (a secret the user gave is printed as null),
permissions.

``--futures`` serves the Kraken Futures simulator instead (``futures.cli.serve``): its
three contracts, ``sim.seed``, ``sim.balances``' USD as collateral, ``sim.host`` and
``sim.port`` (the flags override them); it prints the Futures JSON line (``"venue":
"futures"``, ``rest``, ``ws``, ``admin``, the key pair, the admin token). ``--keys`` and a
replay ``--source`` do not apply to it (exit 2).

This module owns the command: reading a ``Config`` into a venue is composition, the service
layer's (``bot.sim`` takes plain parameters and never imports the config, nor the live
source's Kraken client, ``bot.service.paper_live``). The servers are ``bot.sim.server``'s and
``bot.sim.futures.server``'s, the venues ``bot.sim.venue``'s and ``bot.sim.futures.venue``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from bot.config import Config, SimConfig, load_config
from bot.core.errors import ConfigError, ExchangeError
from bot.kraken.capture import CaptureReader
from bot.kraken.instruments import InstrumentTable
from bot.sim.futures import cli as futures_cli
from bot.sim.futures.venue import DEFAULT_BALANCE as FUTURES_BALANCE
from bot.sim.futures.venue import FuturesVenue
from bot.sim.keys import KeySpec, load_key_specs
from bot.sim.live_source import LiveMarket
from bot.sim.market_data import MarketSource
from bot.sim.pairs import PAIRS, default_instruments
from bot.sim.replay_source import ReplayMarket, capture_symbols
from bot.sim.server import SimServer
from bot.sim.serving import serve_until_signal
from bot.sim.venue import DEFAULT_ACCOUNT, SimVenue

__all__ = ["build_futures_venue", "build_venue", "config_key_specs", "main_sim"]

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


def config_key_specs(sim: SimConfig, env: Mapping[str, str] | None = None) -> list[KeySpec]:
    """The keys ``sim.keys`` declares (``KeySpec`` fields, as in a ``--keys`` file). A secret
    never goes in the config file: ``api_secret_env`` names the environment variable that
    holds it (without one the secret is generated), and a literal ``api_secret`` is refused."""
    env = os.environ if env is None else env
    specs = []
    for i, entry in enumerate(sim.keys):
        where = f"sim.keys[{i}]"
        raw = dict(entry)
        if "api_secret" in raw:
            raise ConfigError(
                f"{where}.api_secret: a literal secret is not allowed in the config file: name"
                " an environment variable with api_secret_env (or use --keys FILE)"
            )
        var = raw.pop("api_secret_env", None)
        if var is not None:
            if not isinstance(var, str) or not var:
                raise ConfigError(f"{where}.api_secret_env: the name of an environment variable")
            secret = env.get(var)
            if not secret:
                raise ConfigError(f"{where}.api_secret_env: environment variable {var} is not set")
            raw["api_secret"] = secret
        try:
            specs.append(KeySpec.from_dict(raw))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return specs


def build_venue(
    config: Config,
    *,
    source: str | None = None,
    seed: int | None = None,
    keys: Sequence[KeySpec] = (),
) -> tuple[SimVenue, bool]:
    """The venue ``krakenbot sim`` serves, and whether its secret was generated. The keys
    of ``sim.keys`` and then ``keys`` (``--keys``) are created after the default account."""
    sim = config.sim
    keys = [*config_key_specs(sim), *keys]
    source = source or sim.source
    seed = sim.seed if seed is None else seed
    symbols = tuple(sim.symbols)
    market: MarketSource | str
    if source == "synthetic":
        market, instruments = "synthetic", default_instruments(symbols or None)
    elif source.startswith("replay:") and len(source) > len("replay:"):
        market, instruments = _replay(Path(source.removeprefix("replay:")), symbols)
    elif source == "live":  # paper trading on live prices: a Kraken client feeds it
        from bot.service.paper_live import live_market  # a Kraken client: only for live

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
        from bot.service.paper_live import attach_live

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
        raise ConfigError(f"sim.keys / --keys: {exc}") from None


def _key_lines(venue: SimVenue, specs: Sequence[KeySpec]) -> list[dict[str, object]]:
    """What the JSON line says of the ``--keys`` keys (a secret the file gave: null)."""
    given = {s.api_secret for s in specs if s.api_secret is not None}  # never echoed
    extra = [
        key
        for account in venue.accounts()
        for key in venue.keys_of(account)[1 if account == DEFAULT_ACCOUNT else 0 :]
    ]
    return [
        {
            "account": key.account,
            "api_key": key.api_key,
            "api_secret": None if key.api_secret in given else key.api_secret,
            "permissions": sorted(p.value for p in key.permissions),
            "nonce_window": key.nonce_window,
        }
        for key in extra
    ]


async def _serve(
    venue: SimVenue, host: str, port: int, show_secret: bool, specs: Sequence[KeySpec] = ()
) -> int:
    def info(server: SimServer) -> dict[str, object]:
        line = server.info(secret=show_secret)
        if specs:
            line["keys"] = _key_lines(venue, specs)
        return line

    return await serve_until_signal(
        lambda: SimServer.start(venue, host, port, pump=False),
        info,
        where=f"sim: cannot listen on {host}:{port}",
    )


def build_futures_venue(config: Config, *, seed: int | None = None) -> tuple[FuturesVenue, bool]:
    """The venue ``krakenbot sim --futures`` serves, and whether its secret was generated:
    the Futures simulator's three contracts, ``sim.seed``, and ``sim.balances``' USD as the
    account's collateral (100,000 without one). The key pair is generated unless
    ``KRAKENBOT_FUTURES_SIM_API_KEY``/``_SECRET`` give it, as for ``python -m
    bot.sim.futures``."""
    options = futures_cli.parse_args([])
    options.seed = config.sim.seed if seed is None else seed
    options.balance = config.sim.balances.get("USD", FUTURES_BALANCE)
    return futures_cli.build_venue(options)


def _main_futures(config: Config, args: argparse.Namespace) -> int:
    if getattr(args, "keys", None):
        raise ConfigError("--keys: spot keys; the Futures simulator has one account and key")
    if config.sim.keys:
        log.warning("sim_keys_ignored", reason="the Futures simulator has one account and key")
    if (args.source or config.sim.source) != "synthetic":
        raise ConfigError("--source: the Futures simulator's market is synthetic only")
    venue, generated = build_futures_venue(config, seed=args.seed)
    host = args.host or config.sim.host
    port = config.sim.port if args.port is None else args.port
    return asyncio.run(futures_cli.serve(venue, host, port, generated))


def main_sim(args: argparse.Namespace) -> int:
    """The ``krakenbot sim`` subcommand (exit 0 after SIGINT/SIGTERM)."""
    config = load_config(args.config)
    if getattr(args, "futures", False):
        return _main_futures(config, args)
    keys_file = getattr(args, "keys", None)
    specs = load_key_specs(Path(keys_file)) if keys_file else []
    venue, generated = build_venue(config, source=args.source, seed=args.seed, keys=specs)
    host = args.host or config.sim.host
    port = config.sim.port if args.port is None else args.port
    declared = [*config_key_specs(config.sim), *specs]
    return asyncio.run(_serve(venue, host, port, generated, declared))
