"""The recorder's files: rotation by hour and size with no line lost, a full disk survived
(through an injected file object that fails as a full disk does), cut-short files read to
their last whole line, the index, and replay's reading of gap markers."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path
from typing import BinaryIO

import orjson
from structlog.testing import capture_logs

from bench.book_stream import BTC_USD, StreamSpec, generate_frames
from bot.config import load_config_text
from bot.kraken.capture import (
    CaptureFrame,
    CaptureGap,
    CaptureReader,
    frame_line,
    gap_line,
    parse_line,
)
from bot.kraken.instruments import InstrumentTable
from bot.research.recorder.files import HOUR_NS, RotatingWriter
from bot.research.recorder.index import read_index, recover
from bot.research.replay import replay_lines
from bot.service.simulator import build_venue
from bot.sim.replay_source import ReplayMarket

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
FRAME = b'{"channel":"heartbeat"}'


def book_frame(n: int) -> bytes:
    return b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","n":%d}]}' % n


def items(paths: list[Path]) -> list[CaptureFrame | CaptureGap]:
    return list(CaptureReader(paths))


def files(out: Path) -> list[Path]:
    return sorted(out.glob("*.jsonl.gz"))


class FullDisk:
    """A file that takes ``room`` bytes, then writes half of what it is given and raises
    ENOSPC, as a real write on a full disk can. ``room = None``: no limit."""

    def __init__(self, stream: BinaryIO, disk: dict[str, int | None]) -> None:
        self._stream = stream
        self._disk = disk

    def write(self, data: bytes) -> int:
        room = self._disk["room"]
        if room is not None and len(data) > room:
            self._stream.write(data[: len(data) // 2])
            self._disk["room"] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        if room is not None:
            self._disk["room"] = room - len(data)
        return self._stream.write(data)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def truncate(self, size: int) -> int:
        return self._stream.truncate(size)

    def close(self) -> None:
        self._stream.close()


def full_disk_opener(disk: dict[str, int | None]):  # type: ignore[no-untyped-def]
    def opener(path: Path) -> BinaryIO:
        if disk["room"] == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return FullDisk(path.open("xb"), disk)  # type: ignore[return-value]

    return opener


# ------------------------------------------------------------------ format


def test_frame_lines_embed_the_frame_verbatim_and_read_back_without_a_decode() -> None:
    raw = b'{"channel":"book","data":[{"price":50000.10,"qty":0.00000001}]}'
    line = frame_line(T0, raw)
    assert line == b'{"recv_ns":%d,"conn":"public","frame":%s}\n' % (T0, raw)
    item = parse_line(line)
    assert item == CaptureFrame(raw, T0, "public")  # "50000.10" survives, byte for byte
    assert orjson.loads(line)["frame"]["data"][0]["qty"] == 0.00000001


def test_gap_lines_and_other_shapes_parse() -> None:
    assert parse_line(gap_line(T0, "disconnected")) == CaptureGap("disconnected", None, T0)
    assert parse_line(gap_line(T0, "checksum mismatch", ["ETH/USD", "BTC/USD"])) == CaptureGap(
        "checksum mismatch", ("BTC/USD", "ETH/USD"), T0
    )
    other_order = b'{"frame":{"channel":"heartbeat"},"recv_ns":5}'
    assert parse_line(other_order) == CaptureFrame(FRAME, 5, None)
    assert parse_line(FRAME) == CaptureFrame(FRAME)
    assert parse_line(b"  \n") is None


# ------------------------------------------------------------------ rotation


def test_a_new_utc_hour_starts_a_new_file(tmp_path: Path) -> None:
    hour_end = (T0 // HOUR_NS + 1) * HOUR_NS
    writer = RotatingWriter(tmp_path)
    for stamp in (hour_end - 2, hour_end - 1, hour_end, hour_end + 1):
        writer.write_frame(stamp, FRAME)
    writer.close()
    first, second = files(tmp_path)
    assert (first.name, second.name) == (
        "kraken-20231114T22Z-000.jsonl.gz",
        "kraken-20231114T23Z-000.jsonl.gz",
    )
    assert [i.recv_ns for i in items([first])] == [hour_end - 2, hour_end - 1]
    assert [i.recv_ns for i in items([second])] == [hour_end, hour_end + 1]


def test_size_rotation_loses_and_splits_no_line(tmp_path: Path) -> None:
    opened: list[int] = []
    writer = RotatingWriter(tmp_path, max_bytes=600, flush_bytes=300)
    writer.on_new_file = opened.append
    for n in range(400):
        writer.write_frame(T0 + n, book_frame(n))
        if n % 7 == 0:
            writer.flush()
    writer.close()
    paths = files(tmp_path)
    assert len(paths) == writer.stats.files == len(opened) > 5
    got = items(paths)
    assert [i.raw for i in got if type(i) is CaptureFrame] == [book_frame(n) for n in range(400)]
    index = read_index(tmp_path)
    assert [e["file"] for e in index] == [p.name for p in paths]
    assert sum(e["frames"] for e in index) == 400
    assert all(e["symbols"] == ["BTC/USD"] and e["status"] == "complete" for e in index)
    assert index[0]["first_ns"] == T0 and index[-1]["last_ns"] == T0 + 399
    assert index[0]["first"] == "2023-11-14T22:13:20.000Z"


def test_each_file_is_gzip_of_whole_members(tmp_path: Path) -> None:
    writer = RotatingWriter(tmp_path, flush_bytes=100)
    for n in range(20):
        writer.write_frame(T0 + n, book_frame(n))
    writer.close()
    (path,) = files(tmp_path)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert len(lines) == 20 and writer.stats.bytes == path.stat().st_size


# ------------------------------------------------------------------ a full disk


def test_a_full_disk_is_survived_with_a_clear_error_and_a_gap(tmp_path: Path) -> None:
    disk: dict[str, int | None] = {"room": None}
    writer = RotatingWriter(tmp_path, flush_bytes=10**9, retry_after_s=5.0)
    writer._opener = full_disk_opener(disk)
    for n in range(10):
        writer.write_frame(T0 + n, book_frame(n))
    writer.flush()  # one whole member on disk
    disk["room"] = 10  # the disk fills up
    for n in range(10, 20):
        writer.write_frame(T0 + n, book_frame(n))
    with capture_logs() as logs:
        writer.flush()  # half a member written, then ENOSPC
    (error,) = [e for e in logs if e["event"] == "record_disk_error"]
    assert error["error"] == "No space left on device" and error["errno"] == errno.ENOSPC
    assert str(tmp_path) in error["path"]
    stats = writer.stats
    assert (stats.disk_errors, stats.writing, stats.dropped) == (1, False, 10)
    # Writing is failing: lines are dropped and counted, until the retry is due.
    assert not writer.write_frame(T0 + 20, book_frame(20))
    writer.tick(100.0)  # the first tick after the failure starts the wait
    writer.tick(104.0)
    assert not writer.write_frame(T0 + 21, book_frame(21))
    assert stats.dropped == 12
    disk["room"] = None  # room again
    writer.tick(105.5)
    assert writer.write_frame(T0 + 22, book_frame(22))
    writer.close()
    assert stats.writing and stats.disk_errors == 1

    first, second = files(tmp_path)
    reader = CaptureReader([first, second])
    got = list(reader)
    assert reader.truncated == []  # the half-written member was cut off: both files valid
    frames = [i.raw for i in got if type(i) is CaptureFrame]
    assert frames == [book_frame(n) for n in (*range(10), 22)]
    gap = got[10]
    assert gap == CaptureGap("disk error", None, T0 + 22)  # the new file begins with it
    index = read_index(tmp_path)
    assert [e["status"] for e in index] == ["disk error", "complete"]
    assert [e["frames"] for e in index] == [10, 1]  # what each file holds
    assert (stats.frames, stats.gaps, stats.disk_gaps) == (11, 1, 1)


def test_a_disk_full_when_opening_a_file_is_retried(tmp_path: Path) -> None:
    disk: dict[str, int | None] = {"room": 0}
    writer = RotatingWriter(tmp_path, retry_after_s=1.0)
    writer._opener = full_disk_opener(disk)
    assert not writer.write_frame(T0, FRAME)
    assert writer.stats.disk_errors == 1 and files(tmp_path) == []
    disk["room"] = None
    writer.tick(0.0)
    writer.tick(1.0)
    assert writer.write_frame(T0 + 1, FRAME)
    writer.close()
    got = items(files(tmp_path))
    assert got == [CaptureGap("disk error", None, T0 + 1), CaptureFrame(FRAME, T0 + 1, "public")]


# ------------------------------------------------------------------ crash leftovers


def test_a_cut_short_file_reads_to_its_last_whole_line_and_is_indexed(tmp_path: Path) -> None:
    writer = RotatingWriter(tmp_path, flush_bytes=200)
    for n in range(30):
        writer.write_frame(T0 + n, book_frame(n))
    writer.flush()
    (path,) = files(tmp_path)
    whole = path.read_bytes()
    writer._file = None  # a crash: no close, no index line
    path.write_bytes(whole[:-40])  # the last member cut short
    reader = CaptureReader([path])
    got = list(reader)
    assert reader.truncated == [path]
    assert 0 < len(got) < 30
    assert [i.raw for i in got] == [book_frame(n) for n in range(len(got))]
    (entry,) = recover(tmp_path)
    assert entry.status == "truncated" and entry.frames == len(got)
    assert read_index(tmp_path)[0]["file"] == path.name
    assert recover(tmp_path) == []  # indexed once


# ------------------------------------------------------------------ replay and gaps


def _stream(n: int) -> list[bytes]:
    return list(generate_frames(StreamSpec(frames=n, seed=3)))


def test_replay_treats_a_gap_marker_as_books_invalid_until_the_next_snapshot() -> None:
    frames = _stream(12)
    table = InstrumentTable([BTC_USD])
    lines = [frame_line(T0 + i, f) for i, f in enumerate(frames[:5])]
    # Frames 5 and 6 were missed: a gap marker stands where they would have been.
    lines.append(gap_line(T0 + 5, "disconnected"))
    lines += [frame_line(T0 + 7 + i, f) for i, f in enumerate(frames[7:])]
    report = replay_lines(iter(lines), table, 10)
    assert report.gaps == 1
    assert report.checksum_mismatches == 0  # without the marker, frame 7 would mismatch
    assert report.skipped_after_mismatch == 5  # waiting for a snapshot that never came
    assert report.checksums_verified == 5

    unmarked = [line for line in lines if b'"gap"' not in line]
    assert replay_lines(iter(unmarked), table, 10).checksum_mismatches >= 1


def test_replay_of_a_gap_for_another_symbol_leaves_this_book_alone() -> None:
    frames = _stream(6)
    lines = [frame_line(T0 + i, f) for i, f in enumerate(frames)]
    lines.insert(3, gap_line(T0 + 3, "checksum mismatch", ["ETH/USD"]))
    report = replay_lines(iter(lines), InstrumentTable([BTC_USD]), 10)
    assert (report.gaps, report.checksums_verified, report.skipped_after_mismatch) == (1, 6, 0)


def test_the_simulator_replays_a_recording_file(tmp_path: Path) -> None:
    """``sim.source: replay:FILE`` takes the recorder's gzip files, gap markers and all."""
    frames = _stream(20)
    writer = RotatingWriter(tmp_path, flush_bytes=500)
    for i, frame in enumerate(frames):
        writer.write_frame(T0 + i, frame)
        if i == 10:
            writer.write_gap(T0 + i, "disconnected")
    writer.close()
    (path,) = files(tmp_path)
    market = ReplayMarket.from_file(path, InstrumentTable([BTC_USD]))
    assert market.remaining == 20
    config = load_config_text(f"sim: {{source: 'replay:{path}'}}\n")
    venue, _ = build_venue(config)
    assert list(venue.instruments) == ["BTC/USD"]


def test_a_leftover_that_cannot_be_read_does_not_stop_the_recorder(tmp_path: Path) -> None:
    (tmp_path / "kraken-20240101T00Z-000.jsonl.gz").mkdir()  # named like one, unreadable
    with capture_logs() as logs:
        assert recover(tmp_path) == []
    assert [e["event"] for e in logs] == ["record_recover_failed"]
