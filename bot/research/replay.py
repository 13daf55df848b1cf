"""``krakenbot replay``: a recorded stream through the live feed's own path, checksums verified.

Every frame goes through ``bot.market.frames.MarketFrames.push``, exactly what the live feed
(and the backtester) run on each message: the fused parse-and-apply in the book's C core,
the same checks, the same invalidation of a book that missed an update. A book starts at the
first book frame of a symbol with precisions.

Input is JSON Lines in either of two formats (they may even be mixed):

- a bare frame per line, exactly as received from Kraken's WS v2 (``{"channel": ...}``);
- the recorder format, one object per line with the receive time in nanoseconds::

      {"recv_ns": 1700000000123456789, "conn": "public", "frame": {...frame as received...}}

  ``conn`` is optional (``public`` or ``private``); the frame is embedded verbatim as a
  JSON value, so Kraken's number text survives the round trip. ``recv_ns`` goes to
  ``push`` with its frame.

The recorder (``krakenbot record``) also writes gap markers,
``{"recv_ns": ..., "gap": {"reason": "disconnected", "symbols": null}}``: the books named
(every book when null) are invalid from there until their next snapshot, exactly as the
live feed's books are after a drop (``bot.kraken.capture`` defines both lines). Files may be
gzip-compressed (told by their first bytes) and several may be given, or a directory of a
recording (its ``*.jsonl.gz`` files in name order, which is time order); a gzip file cut
short (a crash) is read to its last whole line.

Precisions come from ``instrument`` frames in the stream or from ``--instruments`` (a file
holding one instrument snapshot frame). The depth comes from the book subscribe ack in the
stream, else ``--depth``, else 10. One JSON report goes to stdout; logs go to stderr.

Exit status: 0 when every checksum matched, 1 when any mismatched, 2 for unusable input
(missing file, no line that is JSON, a book frame for a symbol with no precisions).
``skipped_after_mismatch`` counts updates a book ignored while it waited for a snapshot
(after a mismatch or a gap); ``gaps`` counts gap markers, ``truncated`` the files cut short.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from bot.core.errors import ProtocolError
from bot.kraken.capture import CaptureFrame, CaptureGap, CaptureItem, CaptureReader, parse_line
from bot.kraken.instruments import InstrumentTable, instruments_from_ws_frame
from bot.kraken.protocol import Event, UnknownInstrument, Unparsed
from bot.market.book import Book
from bot.market.frames import BookUpdated, MarketEvent, MarketFrames

__all__ = ["ReplayInputError", "ReplayReport", "replay_items", "replay_lines", "run_replay"]

log = structlog.get_logger("replay")


class ReplayInputError(ProtocolError):
    """The input cannot be replayed at all (exit status 2)."""


@dataclass(slots=True)
class _SymbolStats:
    book_frames: int = 0
    mismatches: int = 0
    skipped: int = 0


@dataclass(slots=True)
class ReplayReport:
    """What a replay found; ``as_dict`` is the JSON printed on stdout."""

    frames: int = 0
    book_frames: int = 0
    checksums_verified: int = 0
    checksum_mismatches: int = 0
    unparsed: int = 0
    skipped_after_mismatch: int = 0
    gaps: int = 0
    truncated: list[str] = field(default_factory=list)
    symbols: dict[str, _SymbolStats] = field(default_factory=dict)
    books: dict[str, Book] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        symbols: dict[str, Any] = {}
        for symbol, stats in sorted(self.symbols.items()):
            book = self.books.get(symbol)
            bid = book.best_bid() if book is not None and book.valid else None
            ask = book.best_ask() if book is not None and book.valid else None
            inst = book.instrument if book is not None else None
            symbols[symbol] = {
                "book_frames": stats.book_frames,
                "mismatches": stats.mismatches,
                "skipped_after_mismatch": stats.skipped,
                "depth": book.depth if book is not None else None,
                "best_bid": inst.price_text(bid[0]) if inst and bid else None,
                "best_ask": inst.price_text(ask[0]) if inst and ask else None,
            }
        return {
            "frames": self.frames,
            "book_frames": self.book_frames,
            "checksums_verified": self.checksums_verified,
            "checksum_mismatches": self.checksum_mismatches,
            "unparsed": self.unparsed,
            "skipped_after_mismatch": self.skipped_after_mismatch,
            "gaps": self.gaps,
            "truncated": self.truncated,
            "symbols": symbols,
        }


def replay_lines(
    lines: Iterable[bytes], instruments: InstrumentTable, depth: int | None
) -> ReplayReport:
    """Replay lines; raises ``ReplayInputError`` when the input is unusable."""
    items = (item for item in map(parse_line, lines) if item is not None)
    return replay_items(items, instruments, depth)


def replay_items(
    items: Iterable[CaptureItem], instruments: InstrumentTable, depth: int | None
) -> ReplayReport:
    """Replay frames and gap markers; raises ``ReplayInputError`` when the input is
    unusable."""
    report = ReplayReport()

    def sink(event: MarketEvent) -> None:
        if type(event) is BookUpdated:
            report.checksums_verified += 1

    def control(event: Event) -> None:
        if type(event) is not Unparsed:
            return
        if isinstance(event.error, UnknownInstrument):
            symbol = event.error.symbol
            raise ReplayInputError(f"no precisions for symbol {symbol!r}") from event.error
        report.unparsed += 1
        log.warning("frame_unparsed", frame=report.frames, reason=event.reason)

    market = MarketFrames(instruments, sink, depth=depth or 10, control=control, auto_books=True)
    push = market.push
    for item in items:
        if type(item) is CaptureFrame:
            report.frames += 1
            push(item.raw, item.recv_ns)
        elif type(item) is CaptureGap:
            report.gaps += 1
            market.invalidate(item.symbols, f"gap: {item.reason}")
    if report.frames and report.unparsed == report.frames:
        raise ReplayInputError("no line of the input is a Kraken WebSocket frame")
    stats = market.stats
    report.books = dict(market.books)
    report.book_frames = sum(stats.book_frames_by_symbol[s] for s in report.books)
    report.checksum_mismatches = sum(stats.checksum_failures.values())
    report.skipped_after_mismatch = sum(stats.ignored.values())
    for symbol in report.books:
        report.symbols[symbol] = _SymbolStats(
            book_frames=stats.book_frames_by_symbol.get(symbol, 0),
            mismatches=stats.checksum_failures.get(symbol, 0),
            skipped=stats.ignored.get(symbol, 0),
        )
    return report


def load_instruments_file(path: Path) -> InstrumentTable:
    """Instruments from a file holding one WS v2 ``instrument`` snapshot frame."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ReplayInputError(f"cannot read instruments file {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ReplayInputError(f"instruments file {path} is not JSON: {exc}") from exc
    try:
        return InstrumentTable(instruments_from_ws_frame(data))
    except ProtocolError as exc:
        raise ReplayInputError(f"instruments file {path}: {exc}") from exc


def capture_paths(given: Iterable[str]) -> list[Path]:
    """Files as given; a directory stands for its recording files in name order."""
    paths: list[Path] = []
    for text in given:
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p
                for p in path.glob("*.jsonl*")
                if p.is_file() and p.name != "index.jsonl"  # the recorder's index
            )
            if not found:
                raise ReplayInputError(f"{path}: no recording files (*.jsonl, *.jsonl.gz)")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise ReplayInputError(f"cannot read {path}: No such file")
    return paths


def _read(reader: CaptureReader) -> Iterator[CaptureItem]:
    try:
        yield from reader
    except OSError as exc:
        raise ReplayInputError(f"cannot read: {exc.strerror or exc}") from exc


def run_replay(args: argparse.Namespace) -> int:
    """The ``krakenbot replay`` subcommand: report on stdout, status 0, 1 or 2."""
    given = [args.file] if isinstance(args.file, str) else list(args.file)
    try:
        instruments = (
            load_instruments_file(Path(args.instruments)) if args.instruments else InstrumentTable()
        )
        paths = capture_paths(given)
        reader = CaptureReader(paths)
        report = replay_items(_read(reader), instruments, args.depth)
        report.truncated = [str(p) for p in reader.truncated]
    except ReplayInputError as exc:
        log.error("replay_unusable_input", reason=str(exc))
        print(f"krakenbot replay: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    return 1 if report.checksum_mismatches else 0
