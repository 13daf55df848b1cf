"""The recording's index: which files hold which symbols over which times.

``DIR/index.jsonl`` gets one JSON line per closed file, appended when the file is closed::

    {"file": "kraken-20240101T13Z-000.jsonl.gz", "first_ns": ..., "last_ns": ...,
     "first": "2024-01-01T13:00:00.012Z", "last": "2024-01-01T13:59:59.981Z",
     "frames": 181234, "gaps": 0, "bytes": 5123456, "symbols": ["BTC/USD", "ETH/USD"],
     "status": "complete"}

``status`` is ``complete`` (closed by rotation or shutdown), ``disk error`` (closed early
because a write failed: it holds every line before the failure), or ``recovered`` (found
without an entry after a crash, and indexed by reading it whole, ``truncated`` if its end
was cut short). Append-only lines survive a crash: at worst the last file lacks its line,
and ``recover`` (run when the recorder starts) adds it.

This module owns the index entries and their file; it writes nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from bot.core.log import get_logger
from bot.kraken.capture import CaptureFrame, CaptureGap, CaptureReader

__all__ = ["INDEX_NAME", "FileEntry", "iso_ns", "read_index", "recover"]

INDEX_NAME: Final = "index.jsonl"
FILE_RE: Final = re.compile(r"[A-Za-z0-9_.-]+-\d{8}T\d{2}Z-\d{3,}\.jsonl\.gz")
_SYMBOL: Final = re.compile(rb'"channel":"(?:book|trade|ticker)".{0,200}?"symbol":"([^"\\]{1,64})"')

log = get_logger(component="record")


def iso_ns(ns: int | None) -> str | None:
    """``ns`` since the epoch as an RFC 3339 UTC time to the millisecond."""
    if ns is None:
        return None
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns // 1_000_000 % 1000:03d}Z"


@dataclass(slots=True)
class FileEntry:
    """One file of the recording, as the index lists it."""

    file: str
    first_ns: int | None = None
    last_ns: int | None = None
    frames: int = 0
    gaps: int = 0
    size: int = 0  # compressed bytes ("bytes" in the index)
    symbols: set[str] = field(default_factory=set)
    status: str = "complete"

    def note(self, recv_ns: int) -> None:
        if self.first_ns is None:
            self.first_ns = recv_ns
        self.last_ns = recv_ns

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "first": iso_ns(self.first_ns),
            "last": iso_ns(self.last_ns),
            "frames": self.frames,
            "gaps": self.gaps,
            "bytes": self.size,
            "symbols": sorted(self.symbols),
            "status": self.status,
        }

    def line(self) -> bytes:
        return orjson.dumps(self.as_dict()) + b"\n"


def symbols_of(raw: bytes) -> list[str]:
    """The symbols a book, trade or ticker frame names (a cheap look, no decode)."""
    return [m.decode() for m in _SYMBOL.findall(raw[:400])]


def read_index(out_dir: Path) -> list[dict[str, Any]]:
    """The index's entries, oldest first (a line that is not JSON is skipped)."""
    path = out_dir / INDEX_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in data.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            out.append(entry)
    return out


def scan(path: Path) -> FileEntry:
    """An entry for a file read whole (``recovered``, or ``truncated``)."""
    reader = CaptureReader([path])
    entry = FileEntry(path.name, status="recovered", size=path.stat().st_size)
    for item in reader:
        if item.recv_ns is not None:
            entry.note(item.recv_ns)
        if type(item) is CaptureGap:
            entry.gaps += 1
        elif type(item) is CaptureFrame:
            entry.frames += 1
            entry.symbols.update(symbols_of(item.raw))
    if reader.truncated:
        entry.status = "truncated"
    return entry


def recover(out_dir: Path) -> list[FileEntry]:
    """Index every recording file in ``out_dir`` that the index lacks (after a crash)."""
    known = {e["file"] for e in read_index(out_dir)}
    found = sorted(p for p in out_dir.iterdir() if FILE_RE.fullmatch(p.name))
    added = []
    for path in found:
        if path.name in known:
            continue
        try:
            entry = scan(path)
            with (out_dir / INDEX_NAME).open("ab") as index:
                index.write(entry.line())
        except OSError as exc:  # unreadable, or no room: the recording goes on without it
            log.error("record_recover_failed", file=path.name, error=exc.strerror or str(exc))
            continue
        log.warning("record_file_recovered", file=path.name, status=entry.status)
        added.append(entry)
    return added
