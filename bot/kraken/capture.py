"""The recorder's file format: JSON lines of received frames and gap markers, plain or gzip.

One line per received WebSocket message, the frame embedded verbatim (its bytes exactly as
Kraken sent them, so Kraken's number text survives) and written last, so a reader can
slice it out without decoding and re-encoding it::

    {"recv_ns":1700000000123456789,"conn":"public","frame":{...the frame as received...}}

and one line per gap, where the recorder knows frames were missed (a dropped or silent
connection, a checksum mismatch, a full disk)::

    {"recv_ns":1700000000123456789,"gap":{"reason":"disconnected","symbols":null}}

A gap marker means: the books named in ``symbols`` (every book when null) are invalid from
this line until their next snapshot. ``recv_ns`` is the wall-clock receive time in
nanoseconds since the epoch. Lines in another key order (or bare frames, as other tools
capture them) are read too, through a full JSON decode.

Files may be gzip-compressed (told by their first two bytes, not their name), made of many
gzip members; a file whose last member was cut short (a crash, a full disk) is read up to
its last whole line, and ``CaptureReader.truncated`` says so.

This module owns the line format and reading it (``parse_line``, ``read_capture``); writing
files is the recorder's (``bot.research.recorder``), replaying them ``bot.research.replay``'s.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import orjson

from bot.core.log import get_logger

__all__ = [
    "CaptureFrame",
    "CaptureGap",
    "CaptureItem",
    "CaptureReader",
    "frame_line",
    "gap_line",
    "open_capture",
    "parse_line",
    "read_capture",
]

log = get_logger(component="capture")

GZIP_MAGIC: Final = b"\x1f\x8b"
_PREFIX: Final = re.compile(rb'\{"recv_ns":(\d{1,20}),"conn":"([a-z]{1,16})","frame":')
_CONNS: Final = {b"public": "public", b"private": "private"}


@dataclass(frozen=True, slots=True)
class CaptureFrame:
    """One received message: ``raw`` is the frame's bytes as received."""

    raw: bytes
    recv_ns: int | None = None
    conn: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureGap:
    """Frames were missed here: ``symbols``' books (every book if None) are invalid until
    their next snapshot."""

    reason: str
    symbols: tuple[str, ...] | None = None
    recv_ns: int | None = None


CaptureItem = CaptureFrame | CaptureGap


def frame_line(recv_ns: int, raw: str | bytes, conn: str = "public") -> bytes:
    """The line for one received message (``raw`` embedded verbatim, whitespace at its
    ends stripped so the line stays one line)."""
    data = raw.encode() if isinstance(raw, str) else raw
    return b'{"recv_ns":%d,"conn":"%s","frame":%s}\n' % (recv_ns, conn.encode(), data.strip())


def gap_line(recv_ns: int, reason: str, symbols: Iterable[str] | None = None) -> bytes:
    """The gap marker line (``symbols`` None: every book)."""
    named = None if symbols is None else sorted(symbols)
    gap = {"reason": reason, "symbols": named}
    return orjson.dumps({"recv_ns": recv_ns, "gap": gap}) + b"\n"


def parse_line(line: bytes) -> CaptureItem | None:
    """A capture line as a frame or a gap; None for a blank line. A line in no known
    shape comes back as a frame of its own bytes (the frames path counts it unparsed)."""
    line = line.strip()
    if not line:
        return None
    match = _PREFIX.match(line)
    if match is not None and line.endswith(b"}"):
        conn = _CONNS.get(match.group(2), match.group(2).decode())
        return CaptureFrame(line[match.end() : -1], int(match.group(1)), conn)
    if not line.startswith(b"{") or (b'"frame"' not in line[:200] and b'"gap"' not in line[:64]):
        return CaptureFrame(line)
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return CaptureFrame(line)
    if not isinstance(obj, dict) or "recv_ns" not in obj:
        return CaptureFrame(line)
    recv_ns = obj["recv_ns"] if type(obj["recv_ns"]) is int else None
    if "frame" in obj:
        conn = obj.get("conn")
        return CaptureFrame(
            orjson.dumps(obj["frame"]), recv_ns, conn if type(conn) is str else None
        )
    gap = obj.get("gap")
    if isinstance(gap, dict):
        symbols = gap.get("symbols")
        named = tuple(s for s in symbols if type(s) is str) if isinstance(symbols, list) else None
        return CaptureGap(str(gap.get("reason") or "gap"), named, recv_ns)
    return CaptureFrame(line)


def open_capture(path: Path) -> BinaryIO:
    """``path`` opened for reading lines: through gzip when it starts as gzip does."""
    stream = path.open("rb")
    try:
        head = stream.read(2)
        stream.seek(0)
    except OSError:
        stream.close()
        raise
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


class CaptureReader:
    """The lines of capture files, in order, as ``CaptureItem``s.

    A gzip file cut short ends at its last whole line: ``truncated`` lists such files (a
    warning is logged). Any other read error propagates (``OSError``).
    """

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = list(paths)
        self.truncated: list[Path] = []

    def __iter__(self) -> Iterator[CaptureItem]:
        for path in self.paths:
            yield from self._items(path)

    def lines(self, path: Path) -> Iterator[bytes]:
        """One file's lines (a cut-short gzip tail dropped, noted in ``truncated``)."""
        stream = open_capture(path)
        with stream:
            try:
                yield from stream
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                self.truncated.append(path)
                log.warning("capture_truncated", path=str(path), error=str(exc))

    def _items(self, path: Path) -> Iterator[CaptureItem]:
        for line in self.lines(path):
            item = parse_line(line)
            if item is not None:
                yield item


def read_capture(paths: Iterable[Path]) -> Iterator[CaptureItem]:
    """Every item of ``paths``, in order (see ``CaptureReader``)."""
    return iter(CaptureReader(paths))
