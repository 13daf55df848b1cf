"""``krakenbot record`` against the simulator on 127.0.0.1: drops, silence, a corrupt
checksum and rotations, then every recorded file replayed through ``krakenbot replay``'s
path. Every wait is bounded (``WAIT_S``); nothing sleeps to pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bot.config import HttpConfig, MarketConfig
from bot.core.backoff import Backoff, BackoffPolicy
from bot.kraken.capture import CaptureFrame, CaptureGap, CaptureReader
from bot.kraken.instruments import InstrumentTable
from bot.research.recorder.files import RotatingWriter
from bot.research.recorder.index import read_index
from bot.research.recorder.recorder import Recorder
from bot.research.replay import ReplayReport, replay_items
from bot.service.recorder import http_server, run_recorder
from tests.loopback.conftest import SimHandle
from tests.loopback.waiting import until

WAIT_S = 10.0
SYMBOLS = ("BTC/USD", "ETH/USD")


def market(**overrides: Any) -> MarketConfig:
    settings: dict[str, Any] = {
        "symbols": SYMBOLS,
        "book_depth": 10,
        "channels": ("book", "trade", "ticker"),
        "stale_after_s": 0.5,
        "ping_interval_s": 0.1,
    }
    settings.update(overrides)
    return MarketConfig(**settings)


def make_recorder(url: str, out: Path, **writer_kw: Any) -> Recorder:
    writer = RotatingWriter(out, **writer_kw)
    return Recorder(
        url,
        market(),
        writer,
        backoff=Backoff(BackoffPolicy(initial_s=0.01, max_s=0.05)),
        resync_backoff=BackoffPolicy(initial_s=0.01, max_s=0.05),
    )


@asynccontextmanager
async def recording(recorder: Recorder) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(recorder.run())
        try:
            yield
        finally:
            task.cancel()
    recorder.writer.close()


def recorded(out: Path) -> list[Path]:
    return sorted(out.glob("*.jsonl.gz"))


def replay(paths: list[Path]) -> ReplayReport:
    return replay_items(CaptureReader(paths), InstrumentTable(), None)


def gaps_in(paths: list[Path]) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(g.reason, g.symbols) for g in CaptureReader(paths) if type(g) is CaptureGap]


async def test_records_through_drop_silence_and_corrupt_checksum_and_replays_whole(
    sim: SimHandle, tmp_path: Path
) -> None:
    recorder = make_recorder(sim.ws_public_url, tmp_path, max_bytes=8_000, flush_bytes=2_000)
    feed, faults = recorder.feed, sim.venue.faults

    def valid() -> bool:
        return recorder.books_valid and set(feed.books) == set(SYMBOLS)

    async with recording(recorder):
        await until(valid, "books valid")
        await faults.inject(kind="ws_drop", conn_kind="public")
        await until(lambda: feed.stats.connects == 2 and valid(), "a reconnect after the drop")
        await faults.inject(kind="ws_silence", conn_kind="public", hold_s=5.0)
        await until(lambda: feed.stats.connects == 3 and valid(), "a reconnect after silence")
        await faults.inject(kind="ws_corrupt_checksum", conn_kind="public", symbol="BTC/USD")
        await until(lambda: bool(feed.stats.checksum_failures), "the corrupt checksum")
        await until(valid, "BTC/USD resynced")
        files_then = recorder.writer.stats.files
        await until(lambda: recorder.writer.stats.files >= files_then + 2, "two more rotations")

    stats = recorder.writer.stats
    paths = recorded(tmp_path)
    assert len(paths) == stats.files >= 3
    # Every frame received was written, in order, across the rotations (the extra lines are
    # the instrument snapshot carried to the head of each file after the first).
    frames = [item for item in CaptureReader(paths) if type(item) is CaptureFrame]
    carried = len(paths) - 1
    assert len(frames) == stats.frames == feed.stats.frames + carried
    stamps = [f.recv_ns for f in frames]
    assert stamps == sorted(stamps)
    assert stats.dropped == stats.disk_errors == 0

    # The gaps the recorder saw are in the files, where they happened.
    gaps = gaps_in(paths)
    assert gaps.count(("disconnected", None)) == 2
    assert ("checksum mismatch", ("BTC/USD",)) in gaps
    assert recorder.stats.gaps == {"disconnected": 2, "checksum mismatch": 1}

    # krakenbot replay's path verifies every checksum of the whole recording; it finds the
    # one corrupt frame the recorder counted, and nothing else.
    report = replay(paths)
    assert report.checksum_mismatches == 1 == feed.stats.checksum_failures["BTC/USD"]
    assert report.unparsed == 0
    assert report.checksums_verified == report.book_frames - 1 - report.skipped_after_mismatch
    assert report.checksums_verified > 20

    # Each file replays on its own: it begins with the instrument snapshot and (after a
    # rotation) a fresh book snapshot, so none of its frames is a mismatch it did not hold.
    for path in paths[1:-1]:  # a whole file (the last one may end as it begins)
        snapshots = {
            s
            for item in CaptureReader([path])
            if type(item) is CaptureFrame and b'"type":"snapshot"' in item.raw[:40]
            for s in SYMBOLS
            if f'"symbol":"{s}"'.encode() in item.raw[:120]
        }
        assert snapshots == set(SYMBOLS), path.name
    for path in paths:
        alone = replay([path])
        assert alone.unparsed == 0
        assert alone.checksum_mismatches == (1 if alone.checksum_mismatches else 0)
    assert sum(replay([p]).checksum_mismatches for p in paths) == 1

    # The index lists every file with its symbols and time range.
    index = read_index(tmp_path)
    assert [e["file"] for e in index] == [p.name for p in paths]
    assert all(e["status"] == "complete" and e["frames"] > 0 for e in index)
    assert all(set(e["symbols"]) <= set(SYMBOLS) for e in index)
    assert set().union(*(e["symbols"] for e in index)) == set(SYMBOLS)
    assert all(e["first_ns"] <= e["last_ns"] for e in index)
    assert sum(e["frames"] for e in index) == stats.frames
    assert sum(e["gaps"] for e in index) == len(gaps)


async def test_metrics_and_health_are_served_while_recording(
    sim: SimHandle, tmp_path: Path
) -> None:
    recorder = make_recorder(sim.ws_public_url, tmp_path)
    stop = asyncio.Event()
    server = http_server(recorder, HttpConfig(host="127.0.0.1", port=0))
    task = asyncio.create_task(run_recorder(recorder, server, stop, flush_every_s=0.05))
    try:
        await until(lambda: recorder.books_valid, "books valid")
        await until(lambda: recorder.writer.stats.bytes > 0, "a flush")
        await sim.venue.faults.inject(kind="ws_drop", conn_kind="public")
        await until(lambda: recorder.feed.stats.reconnects == 1, "a reconnect")
        await until(lambda: recorder.books_valid, "books valid again")
        await until(lambda: server.port is not None, "the HTTP server")
        port = server.port
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            async with session.get(f"{base}/healthz") as health:
                assert health.status == 200
            async with session.get(f"{base}/readyz") as ready:
                body = orjson.loads(await ready.read())
                assert ready.status == 200, body
                assert set(body["checks"]) == {"connected", "books", "disk"}
            async with session.get(f"{base}/metrics") as page:
                text = await page.text()
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
    values = _metric_values(text)
    assert values["krakenbot_record_frames_total"] > 0
    assert values["krakenbot_record_bytes_total"] > 0
    assert values["krakenbot_record_files_total"] == 1
    assert values['krakenbot_record_gaps_total{reason="disconnected"}'] == 1
    assert values["krakenbot_record_disk_errors_total"] == 0
    assert values["krakenbot_record_writing"] == 1
    assert values['krakenbot_feed_reconnects_total{feed="record"}'] == 1
    assert values['krakenbot_book_checksum_failures_total{symbol="BTC/USD"}'] == 0
    assert 'krakenbot_feed_frame_age_seconds{feed="record"}' in values
    # Stopped: the file is closed whole and indexed.
    (entry,) = read_index(tmp_path)
    assert entry["status"] == "complete"
    assert replay(recorded(tmp_path)).checksum_mismatches == 0


def _metric_values(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@pytest.mark.parametrize("channels", [("book",), ("trade", "ticker")])
async def test_a_recording_of_some_channels_still_carries_instruments(
    sim: SimHandle, tmp_path: Path, channels: tuple[str, ...]
) -> None:
    writer = RotatingWriter(tmp_path)
    recorder = Recorder(sim.ws_public_url, market(channels=channels), writer)
    async with recording(recorder):
        await until(lambda: recorder.feed.connected and recorder.books_valid, "ready")
        await until(lambda: writer.stats.frames > 50, "frames")
    report = replay(recorded(tmp_path))
    assert report.checksum_mismatches == report.unparsed == 0
    frames = [i.raw for i in CaptureReader(recorded(tmp_path)) if type(i) is CaptureFrame]
    assert any(b'"channel":"instrument"' in raw[:40] for raw in frames)
    if "book" in channels:
        assert report.checksums_verified > 10
    else:
        assert report.book_frames == 0
        assert any(b'"channel":"trade"' in raw[:40] for raw in frames)
