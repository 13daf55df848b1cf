"""``krakenbot record``: the command, its HTTP face, and its life from start to SIGTERM.

``krakenbot record --symbols BTC/USD,ETH/USD [--channels book,trade,ticker,instrument]
[--depth 10] --out DIR [--url URL | --config FILE] [--max-mb N] [--http HOST:PORT|off]``

The URL is ``--url``, else the config's ``venue.ws_public_url`` (Kraken's by default);
symbols are ``--symbols``, else the config's. The ``instrument`` channel is always
recorded (replay needs its precisions). It serves ``/healthz``, ``/readyz`` and ``/metrics``
like the daemon (``bot.service.http.HttpServer``): ``/readyz`` is open while the feed is connected,
every book verified and the disk writable. It records until SIGTERM or SIGINT, then
closes the current file whole (its last buffer flushed, its index line written) and exits
0. A bad argument or an output directory it cannot write exits 2 with the reason.

This module owns the command and ``recorder_source`` (its metrics); the recording itself
is ``bot.research.recorder``'s (``recorder`` and ``files``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from bot.config import Config, HttpConfig, MarketConfig, load_config
from bot.core.clock import Clock, SystemClock
from bot.core.errors import BotError, ConfigError
from bot.core.log import get_logger
from bot.execution.readiness import ReadinessGate
from bot.net.ws import check_url
from bot.research.recorder.args import CHANNELS
from bot.research.recorder.files import RotatingWriter
from bot.research.recorder.index import recover
from bot.research.recorder.recorder import Recorder
from bot.service.http import HttpServer
from bot.service.metrics import Metrics, Sample, Source, feed_source

__all__ = ["http_server", "main_record", "recorder_source", "run_recorder"]

log = get_logger(component="record")

FLUSH_EVERY_S: Final = 1.0


def recorder_source(recorder: Recorder) -> Source:
    """The recorder's counters: lines, bytes, files, gaps by reason, disk errors."""

    def read() -> Iterator[Sample]:
        w = recorder.writer.stats
        yield Sample("record_frames", w.frames)
        yield Sample("record_bytes", w.bytes)
        yield Sample("record_files", w.files)
        yield Sample("record_disk_errors", w.disk_errors)
        yield Sample("record_dropped_lines", w.dropped)
        yield Sample("record_writing", 1.0 if w.writing else 0.0)
        gaps = dict(recorder.stats.gaps)
        if w.disk_gaps:
            gaps["disk error"] = w.disk_gaps
        for reason, n in gaps.items():
            yield Sample("record_gaps", n, (reason,))

    return read


def _parse_list(text: str, what: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise ConfigError(f"--{what}: give at least one")
    return items


def _http_config(given: str | None, config: Config | None) -> HttpConfig:
    if given is None:
        return config.http if config is not None else HttpConfig()
    if given == "off":
        return HttpConfig(enabled=False)
    host, _, port = given.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--http: expected HOST:PORT or 'off', got {given!r}")
    return HttpConfig(host=host.strip("[]"), port=int(port))


def _market(args: argparse.Namespace, config: Config | None) -> MarketConfig:
    symbols = _parse_list(args.symbols, "symbols") if args.symbols else ()
    if not symbols and config is not None:
        symbols = config.symbols
    if not symbols:
        raise ConfigError("--symbols: which symbols to record (e.g. BTC/USD,ETH/USD)")
    channels = _parse_list(args.channels, "channels")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ConfigError(f"--channels: unknown {', '.join(unknown)} (of {', '.join(CHANNELS)})")
    feed_channels = tuple(c for c in channels if c != "instrument")
    base = config.market if config is not None else MarketConfig()
    try:
        return MarketConfig(
            symbols=symbols,
            book_depth=args.depth,
            channels=feed_channels,
            stale_after_s=base.stale_after_s,
            ping_interval_s=base.ping_interval_s,
        )
    except ValueError as exc:
        raise ConfigError(f"--symbols: {exc}") from None


def _out_dir(text: str) -> Path:
    """The output directory, made if missing, proven writable."""
    out = Path(text)
    probe = out / f".krakenbot-record-probe-{uuid.uuid4().hex}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out: cannot write to {out}: {exc.strerror or exc}") from None
    return out


async def _flush_every(writer: RotatingWriter, clock: Clock, interval_s: float) -> None:
    while True:
        await clock.sleep(interval_s)
        writer.flush()
        writer.tick(clock.monotonic())


def http_server(recorder: Recorder, http: HttpConfig, clock: Clock | None = None) -> HttpServer:
    """The daemon's HTTP face for the recorder: its metrics, and a readiness gate open
    while the feed is connected, every book verified and the disk writable."""
    clock = clock if clock is not None else SystemClock()
    metrics = Metrics()
    metrics.add_source(feed_source(recorder.feed, "record"))
    metrics.add_source(recorder_source(recorder))
    gate = ReadinessGate(clock=clock)
    gate.add("connected", lambda: recorder.feed.connected)
    gate.add("books", lambda: recorder.books_valid)
    gate.add("disk", lambda: recorder.writer.stats.writing)
    return HttpServer(http, metrics, gate, lambda: {"command": "record"}, clock)


async def run_recorder(
    recorder: Recorder,
    server: HttpServer,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    flush_every_s: float = FLUSH_EVERY_S,
) -> None:
    """Record, serve ``server`` (``http_server``) and flush every second until ``stop`` is
    set; then close the writer (also when cancelled)."""
    clock = clock if clock is not None else SystemClock()
    try:
        await _run_all(recorder, server, stop, clock, flush_every_s)
    except ExceptionGroup as group:  # a task failed: say why as the error it is
        first = group.exceptions[0]
        if isinstance(first, BotError):
            raise first from None
        raise
    finally:
        recorder.writer.close()
        w = recorder.writer.stats
        log.info("record_stopped", frames=w.frames, files=w.files, bytes=w.bytes, gaps=w.gaps)


async def _run_all(
    recorder: Recorder, server: HttpServer, stop: asyncio.Event, clock: Clock, flush_s: float
) -> None:
    async with asyncio.TaskGroup() as tasks:
        jobs = [
            tasks.create_task(recorder.run(), name="record-feed"),
            tasks.create_task(server.run(), name="record-http"),
            tasks.create_task(_flush_every(recorder.writer, clock, flush_s), name="record-flush"),
        ]
        await stop.wait()
        log.info("record_stopping")
        for job in jobs:
            job.cancel()


async def _amain(recorder: Recorder, http: HttpConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_recorder(recorder, http_server(recorder, http), stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
    return 0


def main_record(args: argparse.Namespace) -> int:
    """The ``krakenbot record`` subcommand (exit 0 after SIGTERM/SIGINT)."""
    config = load_config(Path(args.record_config)) if args.record_config else None
    url = args.url or (config.venue.ws_public_url if config is not None else None)
    url = url or "wss://ws.kraken.com/v2"
    check_url(url, "--url" if args.url else "venue.ws_public_url")
    market = _market(args, config)
    http = _http_config(args.http, config)
    if args.max_mb <= 0:
        raise ConfigError("--max-mb: must be positive")
    out = _out_dir(args.out)
    recover(out)
    writer = RotatingWriter(out, max_bytes=int(args.max_mb * 2**20))
    recorder = Recorder(url, market, writer)
    log.info(
        "record_started",
        url=url,
        symbols=list(market.symbols),
        channels=[*market.channels, "instrument"],
        depth=market.book_depth,
        out=str(out),
    )
    return asyncio.run(_amain(recorder, http))
