"""The recording's files: rotation by UTC hour and size, gzip members, a full disk survived.

``RotatingWriter`` takes lines (``bot.kraken.capture``'s frame lines and gap markers) with
their receive time and writes them to ``DIR/<prefix>-<YYYYmmddTHH>Z-<seq>.jsonl.gz``:

* **Rotation.** A line whose UTC hour differs from the open file's, or that comes after the
  file reached ``max_bytes`` (compressed), goes to a new file. Rotation happens between two
  lines, inside one call: no line is lost or split. Each new file is announced to
  ``on_new_file`` (the recorder writes the instrument snapshot at its head and asks fresh
  book snapshots, so every file replays on its own).
* **Compression: gzip**, one gzip member per flush (a buffer of ``flush_bytes``, or the
  recorder's periodic ``flush``). gzip because it is in Python's standard library (no new
  dependency, no native build) and every tool reads it (``zcat | jq``); a member per flush
  because concatenated members are one valid gzip file, so a crash or a full disk loses at
  most the unflushed buffer and never makes the earlier lines unreadable.
* **A full disk** (any ``OSError`` on write, flush or open) is logged once with the reason,
  counted, and survived: the file is cut back to its last whole member and closed (it
  stays valid), lines are dropped (counted) while writing is failing, and after
  ``retry_after_s`` (on the caller's monotonic clock, through ``tick``) the next line
  opens a new file that begins with a gap marker (``disk error``), so a replay knows the
  books were invalid across the hole.

File objects come from ``opener(path)`` (default: create exclusively), injected so a test
can hand in one that fails like a full disk. Closing a file appends its entry to the index
(``bot.research.recorder.index``). Nothing here awaits or reads a clock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from bot.core.log import get_logger
from bot.kraken.capture import frame_line, gap_line
from bot.research.recorder.index import INDEX_NAME, FileEntry, symbols_of

__all__ = ["HOUR_NS", "Opener", "RotatingWriter", "WriterStats", "file_name"]

HOUR_NS: Final = 3_600_000_000_000
SUFFIX: Final = ".jsonl.gz"
_MAX_SEQ: Final = 10_000

Opener = Callable[[Path], BinaryIO]
log = get_logger(component="record")


def _create(path: Path) -> BinaryIO:
    return path.open("xb")


def file_name(prefix: str, recv_ns: int, seq: int) -> str:
    hour = datetime.fromtimestamp(recv_ns // 1_000_000_000, UTC).strftime("%Y%m%dT%H")
    return f"{prefix}-{hour}Z-{seq:03d}{SUFFIX}"


@dataclass
class WriterStats:
    """Counters for /metrics."""

    frames: int = 0  # frame lines written (flushed, or buffered to be)
    gaps: int = 0  # gap markers written (likewise)
    disk_gaps: int = 0  # of which the writer's own, after a disk error
    bytes: int = 0  # compressed bytes written to files
    raw_bytes: int = 0  # line bytes before compression
    files: int = 0  # files opened
    disk_errors: int = 0
    dropped: int = 0  # lines lost to a failing disk
    writing: bool = True  # False while writing is failing


class _Open:
    """The file being written."""

    __slots__ = ("entry", "good", "hour", "path", "stream")

    def __init__(self, path: Path, stream: BinaryIO, hour: int) -> None:
        self.path = path
        self.stream = stream
        self.hour = hour
        self.good = 0  # bytes of whole gzip members written
        self.entry = FileEntry(path.name)


class RotatingWriter:
    """Lines to rotating gzip files; see the module docstring."""

    def __init__(
        self,
        out_dir: Path,
        *,
        prefix: str = "kraken",
        max_bytes: int = 256 * 2**20,
        level: int = 6,
        flush_bytes: int = 256 * 2**10,
        retry_after_s: float = 5.0,
        opener: Opener | None = None,
        on_new_file: Callable[[int], None] | None = None,
    ) -> None:
        if max_bytes <= 0 or flush_bytes <= 0:
            raise ValueError("max_bytes and flush_bytes must be positive")
        self.out_dir = out_dir
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.level = level
        self.flush_bytes = flush_bytes
        self.retry_after_s = retry_after_s
        self.on_new_file = on_new_file
        self.stats = WriterStats()
        self._opener: Opener = opener if opener is not None else _create
        self._file: _Open | None = None
        self._buf: list[bytes] = []
        self._buffered = 0
        self._buffered_lines = 0
        self._buffered_kinds = [0, 0]  # frames, gaps in the buffer (unwritten if it fails)
        self._failed_at: float | None = None  # the first tick after writing failed
        self._retry_ok = False
        self._gap_due = False  # the next file starts with a disk-error gap marker
        self._closed = False
        self.last_error: str | None = None

    # -- what others read ----------------------------------------------------------------

    @property
    def current(self) -> Path | None:
        """The file being written, if any."""
        return self._file.path if self._file is not None else None

    # -- lines in ------------------------------------------------------------------------

    def write_frame(self, recv_ns: int, raw: str | bytes, conn: str = "public") -> bool:
        """One received message; False if it was dropped (writing is failing)."""
        line = frame_line(recv_ns, raw, conn)
        if not self._admit(recv_ns):
            self.stats.dropped += 1
            return False
        entry = self._entry()
        entry.frames += 1
        entry.symbols.update(symbols_of(raw if isinstance(raw, bytes) else raw.encode()))
        self.stats.frames += 1
        self._buffered_kinds[0] += 1
        self._append(line, recv_ns)
        return True

    def write_gap(self, recv_ns: int, reason: str, symbols: Iterable[str] | None = None) -> bool:
        """A gap marker; False if it was dropped (the disk-error marker covers it)."""
        if not self._admit(recv_ns):
            self.stats.dropped += 1
            return False
        self._entry().gaps += 1
        self.stats.gaps += 1
        self._buffered_kinds[1] += 1
        self._append(gap_line(recv_ns, reason, symbols), recv_ns)
        return True

    def flush(self) -> None:
        """Write the buffer as one gzip member (the recorder calls this every second)."""
        if self._file is None or not self._buf:
            return
        data = b"".join(self._buf)
        lines, (frames, gaps) = self._buffered_lines, self._buffered_kinds
        self._buf, self._buffered, self._buffered_lines = [], 0, 0
        self._buffered_kinds = [0, 0]
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)
        member = compressor.compress(data) + compressor.flush()
        f = self._file
        try:
            f.stream.write(member)
            f.stream.flush()
        except OSError as exc:  # the buffer's lines never reached the file
            self.stats.dropped += lines
            self.stats.frames -= frames
            self.stats.gaps -= gaps
            f.entry.frames -= frames
            f.entry.gaps -= gaps
            self._fail(exc)
            return
        f.good += len(member)
        f.entry.size = f.good
        self.stats.bytes += len(member)

    def tick(self, monotonic: float) -> None:
        """Called every second or so: after a failure, let writing be tried again once
        ``retry_after_s`` have passed (the first tick after the failure starts the wait)."""
        if self.stats.writing or self._retry_ok:
            return
        if self._failed_at is None:
            self._failed_at = monotonic
        elif monotonic - self._failed_at >= self.retry_after_s:
            self._retry_ok = True
            log.info("record_disk_retry")

    def close(self) -> None:
        """Flush and close the open file (its index line written); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._close_file("complete")

    # -- inside --------------------------------------------------------------------------

    def _admit(self, recv_ns: int) -> bool:
        """Whether a line can be written now (opening or rotating the file as needed)."""
        if self._closed:
            return False
        if not self.stats.writing:
            if not self._retry_ok:
                return False
            self.stats.writing, self._retry_ok, self._failed_at = True, False, None
            self._gap_due = True
        f = self._file
        hour = recv_ns // HOUR_NS
        if f is not None and (hour != f.hour or f.good >= self.max_bytes):
            self._close_file("complete")
            f = None
        if f is None:
            return self._open(recv_ns)
        return True

    def _entry(self) -> FileEntry:
        assert self._file is not None
        return self._file.entry

    def _append(self, line: bytes, recv_ns: int) -> None:
        f = self._file
        if f is None:  # opening failed inside the on_new_file callback
            self.stats.dropped += 1
            return
        f.entry.note(recv_ns)
        self._buf.append(line)
        self._buffered += len(line)
        self._buffered_lines += 1
        self.stats.raw_bytes += len(line)
        if self._buffered >= self.flush_bytes:
            self.flush()

    def _open(self, recv_ns: int) -> bool:
        stream: BinaryIO | None = None
        path = self.out_dir
        for seq in range(_MAX_SEQ):
            path = self.out_dir / file_name(self.prefix, recv_ns, seq)
            if path.exists():
                continue
            try:
                stream = self._opener(path)
            except FileExistsError:
                continue
            except OSError as exc:
                self._fail(exc, path)
                return False
            break
        if stream is None:
            self._fail(OSError(errno.EEXIST, "no free file name this hour"), path)
            return False
        self._file = _Open(path, stream, recv_ns // HOUR_NS)
        self.stats.files += 1
        log.info("record_file_opened", file=path.name)
        if self._gap_due:
            self._gap_due = False
            self._file.entry.gaps += 1
            self.stats.gaps += 1
            self.stats.disk_gaps += 1
            self._buffered_kinds[1] += 1
            self._append(gap_line(recv_ns, "disk error", None), recv_ns)
        if self.on_new_file is not None:
            self.on_new_file(recv_ns)
        return self._file is not None

    def _close_file(self, status: str) -> None:
        f = self._file
        if f is None:
            return
        self.flush()
        f = self._file
        if f is None:  # the last flush failed: _fail closed it
            return
        self._file = None
        try:
            f.stream.flush()
            os.fsync(f.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass  # an injected stream without a descriptor; a real fsync error shows on close
        try:
            f.stream.close()
        except OSError as exc:
            self._fail(exc, f.path)
            status = "disk error"
        f.entry.status = status
        self._index(f.entry)
        log.info("record_file_closed", file=f.path.name, frames=f.entry.frames, status=status)

    def _fail(self, exc: OSError, path: Path | None = None) -> None:
        """Writing failed: keep what was written whole, stop writing until ``tick``."""
        self.stats.disk_errors += 1
        self.stats.writing = False
        self._failed_at, self._retry_ok = None, False
        reason = exc.strerror or str(exc) or type(exc).__name__
        self.last_error = reason
        f, self._file = self._file, None
        where = (f.path if f is not None else path) or self.out_dir
        log.error("record_disk_error", path=str(where), error=reason, errno=exc.errno)
        self.stats.dropped += self._buffered_lines
        frames, gaps = self._buffered_kinds
        self.stats.frames -= frames
        self.stats.gaps -= gaps
        self._buf, self._buffered, self._buffered_lines = [], 0, 0
        self._buffered_kinds = [0, 0]
        if f is None:
            return
        f.entry.frames -= frames
        f.entry.gaps -= gaps
        with contextlib.suppress(OSError, ValueError, AttributeError):
            f.stream.truncate(f.good)  # cut a half-written member: the file stays valid
        with contextlib.suppress(OSError, ValueError):
            f.stream.close()
        f.entry.status = "disk error"
        self._index(f.entry)

    def _index(self, entry: FileEntry) -> None:
        try:
            with (self.out_dir / INDEX_NAME).open("ab") as index:
                index.write(entry.line())
        except OSError as exc:
            self.stats.disk_errors += 1
            log.error("record_index_error", file=entry.file, error=exc.strerror or str(exc))
