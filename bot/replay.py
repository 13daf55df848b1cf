"""``krakenbot replay``: a recorded stream through protocol → book, checksums verified.

Input is JSON Lines in either of two formats (they may even be mixed):

- a bare frame per line, exactly as received from Kraken's WS v2 (``{"channel": ...}``);
- the recorder format, one object per line with the receive time in nanoseconds::

      {"recv_ns": 1700000000123456789, "conn": "public", "frame": {...frame as received...}}

  ``conn`` is optional (``public`` or ``private``); the frame is embedded verbatim as a
  JSON value, so Kraken's number text survives the round trip.

Precisions come from ``instrument`` frames in the stream or from ``--instruments`` (a file
holding one instrument snapshot frame). The depth comes from the book subscribe ack in the
stream, else ``--depth``, else 10. One JSON report goes to stdout; logs go to stderr.

Exit status: 0 when every checksum matched, 1 when any mismatched, 2 for unusable input
(missing file, no line that is JSON, a book frame for a symbol with no precisions).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog

from bot.errors import ProtocolError
from bot.kraken.instruments import InstrumentTable, instruments_from_ws_frame
from bot.kraken.protocol import Parser, SubscribeAck, UnknownInstrument, Unparsed
from bot.market.book import Book, BookFrame

__all__ = ["ReplayInputError", "ReplayReport", "replay_lines", "run_replay"]

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
            "symbols": symbols,
        }


def _frame_bytes(line: bytes) -> bytes | None:
    """The frame on one line, or None for a blank line. Non-JSON lines pass through."""
    line = line.strip()
    if not line:
        return None
    if line.startswith(b'{"recv_ns"') or b'"frame"' in line[:200]:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return line
        if isinstance(obj, dict) and "frame" in obj and "recv_ns" in obj:
            return orjson.dumps(obj["frame"])
    return line


def replay_lines(
    lines: Iterator[bytes], instruments: InstrumentTable, depth: int | None
) -> ReplayReport:
    """Replay frames; raises ``ReplayInputError`` when the input is unusable."""
    parser = Parser(instruments)
    report = ReplayReport()
    acked_depth: dict[str, int] = {}
    json_lines = 0
    for line in lines:
        raw = _frame_bytes(line)
        if raw is None:
            continue
        report.frames += 1
        try:
            events = parser.parse(raw)
        except UnknownInstrument as exc:
            raise ReplayInputError(f"no precisions for symbol {exc.symbol!r}") from exc
        except ProtocolError as exc:
            events = [Unparsed(exc, raw[:120].decode("utf-8", "replace"))]
        for event in events:
            if type(event) is BookFrame:
                json_lines += 1
                _apply(report, event, acked_depth.get(event.symbol, depth or 10), parser)
            elif type(event) is Unparsed:
                report.unparsed += 1
                log.warning("frame_unparsed", frame=report.frames, reason=event.reason)
            else:
                json_lines += 1
                if (
                    type(event) is SubscribeAck
                    and event.channel == "book"
                    and event.success
                    and event.symbol
                    and event.depth
                ):
                    acked_depth[event.symbol] = event.depth
                    if event.symbol in report.books:
                        old = report.books[event.symbol]
                        report.books[event.symbol] = Book(old.instrument, event.depth)
    if report.frames and not json_lines:
        raise ReplayInputError("no line of the input is a Kraken WebSocket frame")
    return report


def _apply(report: ReplayReport, frame: BookFrame, depth: int, parser: Parser) -> None:
    book = report.books.get(frame.symbol)
    stats = report.symbols.setdefault(frame.symbol, _SymbolStats())
    if book is None:
        book = report.books[frame.symbol] = Book(parser.instruments[frame.symbol], depth)
    report.book_frames += 1
    stats.book_frames += 1
    if not frame.snapshot and not book.valid:
        # After a mismatch the book is untrustworthy until the next snapshot (a live
        # feed resubscribes here); these frames are counted, not verified.
        report.skipped_after_mismatch += 1
        stats.skipped += 1
        return
    mismatch = book.apply(frame)
    if mismatch is None:
        report.checksums_verified += 1
        return
    report.checksum_mismatches += 1
    stats.mismatches += 1
    log.warning(
        "checksum_mismatch",
        symbol=mismatch.symbol,
        expected=mismatch.expected,
        computed=mismatch.computed,
        frame=report.frames,
    )


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


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    yield from stream


def run_replay(args: argparse.Namespace) -> int:
    """The ``krakenbot replay`` subcommand: report on stdout, status 0, 1 or 2."""
    path = Path(args.file)
    try:
        instruments = (
            load_instruments_file(Path(args.instruments)) if args.instruments else InstrumentTable()
        )
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise ReplayInputError(f"cannot read {path}: {exc.strerror}") from exc
        with stream:
            report = replay_lines(_lines(stream), instruments, args.depth)
    except ReplayInputError as exc:
        log.error("replay_unusable_input", reason=str(exc))
        print(f"krakenbot replay: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    return 1 if report.checksum_mismatches else 0
