"""A backtest's market data: recorder files and Kraken's trade-history CSV, as one timed stream.

``open_data(paths, instruments, symbols)`` reads each path by what it holds and merges
them by time (``heapq.merge``; each source is in time order already):

- **Recorder files** (``krakenbot record``: ``{"recv_ns","conn","frame"}`` JSON lines,
  plain or gzip, a directory of them in name order, gap markers; bare WS v2 frames too):
  each frame comes at its ``recv_ns``, else at its own ``timestamp``, else at the last
  known time (a snapshot carries none: it takes the time of the frame after it). Gap
  markers come as ``Gap`` items at their time.
- **Kraken's trade history CSV** (``*.csv``: the "time and sales" files Kraken publishes
  per pair, one trade a line, ``timestamp,price,volume``, the timestamp in Unix seconds,
  no header): each line becomes a WS v2 ``trade`` frame (the live channel's shape), so a
  trade reaches the strategies and the fill rule by the same path as a recorded one. The
  file names its pair (``XBTUSD.csv``, ``BTC-USD.csv``...), else the deployment's only
  symbol is meant. The files carry no taker side: it is inferred by the tick rule (a
  price above the last is a buy, below a sell, the same price keeps the last side).

Bad input (a missing file, a CSV line that is not three numbers, a pair that is not
configured) raises ``BadData`` naming the file and line. Pure: reading only, no clock.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

import orjson

from bot.core.errors import ConfigError
from bot.core.frozen import maker
from bot.kraken.capture import CaptureFrame, CaptureGap, CaptureReader
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.sim.ws_common import rfc3339

__all__ = ["BadData", "Frame", "Gap", "Item", "data_paths", "open_data", "trade_only_symbols"]

_NS: Final = 1_000_000_000
_TIMESTAMP: Final = re.compile(rb'"timestamp":"([0-9T:.\-]+Z)"')


class BadData(ConfigError):
    """The data given to a backtest cannot be read: the user must fix the command."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One WS v2 message received at ``at_ns``."""

    at_ns: int
    raw: bytes


_frame: Final = maker(Frame)


@dataclass(frozen=True, slots=True)
class Gap:
    """Frames were missed at ``at_ns``: ``symbols``' books (every book if None) are invalid."""

    at_ns: int
    reason: str
    symbols: tuple[str, ...] | None


Item = Frame | Gap


def data_paths(given: Iterable[str | Path]) -> list[Path]:
    """Files as given; a directory stands for its recording files (and CSVs) in name order."""
    paths: list[Path] = []
    for text in given:
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.name != "index.jsonl" and _is_data(p.name)
            )
            if not found:
                raise BadData(f"{path}: no recording files (*.jsonl, *.jsonl.gz, *.csv)")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise BadData(f"--data {path}: no such file or directory")
    return paths


def _is_data(name: str) -> bool:
    return ".jsonl" in name or name.endswith((".csv", ".json"))


def open_data(
    paths: Sequence[Path], instruments: InstrumentTable, symbols: Sequence[str]
) -> Iterator[Item]:
    """Every item of ``paths`` in time order (see the module docstring)."""
    captures = [p for p in paths if not _is_csv(p)]
    streams: list[Iterator[Item]] = []
    if captures:
        streams.append(_timed(CaptureReader(captures)))
    for path in paths:
        if _is_csv(path):
            inst = _csv_instrument(path, instruments, symbols)
            streams.append(_csv_frames(path, inst))
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda item: item.at_ns)


def trade_only_symbols(
    paths: Sequence[Path], instruments: InstrumentTable, symbols: Sequence[str]
) -> frozenset[str]:
    """The symbols fed by trade CSVs alone (no recorder file in ``paths``): no book."""
    if any(not _is_csv(p) for p in paths):
        return frozenset()
    return frozenset(_csv_instrument(p, instruments, symbols).symbol for p in paths)


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz"))


# -- recorder files ---------------------------------------------------------------------


def _frame_time(raw: bytes) -> int | None:
    found = _TIMESTAMP.search(raw)
    if found is None:
        return None
    try:
        when = datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(when.timestamp()) * _NS + when.microsecond * 1000


def _timed(items: Iterable[CaptureFrame | CaptureGap]) -> Iterator[Item]:
    """Each capture item at its time; items with none wait for the next known time."""
    last: int | None = None
    waiting: list[CaptureFrame | CaptureGap] = []
    for item in items:
        at = item.recv_ns
        if at is not None and not waiting and last is not None:  # the recorder's lines
            if at > last:  # noqa: PLR1730 (a max() call costs more, per frame)
                last = at  # never back in time
            if type(item) is CaptureFrame:
                yield _frame(last, item.raw)  # Frame(...), for less: once per line
            else:
                yield _item(item, last)
            continue
        if at is None and type(item) is CaptureFrame:
            at = _frame_time(item.raw)
        if at is None and last is None:
            waiting.append(item)
            continue
        if at is not None:
            last = at if last is None else max(last, at)
        assert last is not None
        for early in waiting:
            yield _item(early, last)
        waiting.clear()
        yield _item(item, last)
    for early in waiting:  # no time anywhere: the epoch's
        yield _item(early, 0)


def _item(item: CaptureFrame | CaptureGap, at_ns: int) -> Item:
    if type(item) is CaptureGap:
        return Gap(at_ns, item.reason, item.symbols)
    assert type(item) is CaptureFrame
    return Frame(at_ns, item.raw)


# -- Kraken's trade history CSV ---------------------------------------------------------


def _csv_instrument(path: Path, instruments: InstrumentTable, symbols: Sequence[str]) -> Instrument:
    stem = path.name.split(".")[0]
    for name in (stem, stem.replace("-", "/"), stem.replace("_", "/")):
        inst = instruments.lookup(name)
        if inst is not None and inst.symbol in symbols:
            return inst
    if len(symbols) == 1:
        return instruments[symbols[0]]
    raise BadData(f"{path}: no configured symbol is named {stem!r}: name the file by its pair")


def _csv_frames(path: Path, inst: Instrument) -> Iterator[Frame]:
    last_price: Decimal | None = None
    side = "buy"
    trade_id = 0
    try:
        reader = CaptureReader([path])
        lines = reader.lines(path)
        for number, line in enumerate(lines, 1):
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            row = _row(text)
            if row is None:
                if number == 1:
                    continue  # a header line
                raise BadData(f"{path}:{number}: not timestamp,price,volume: {text[:80]!r}")
            ts, price, qty = row
            if last_price is not None and price != last_price:
                side = "buy" if price > last_price else "sell"
            last_price = price
            trade_id += 1
            at_ns = int(ts * _NS)
            yield Frame(at_ns, _trade_frame(inst, side, price, qty, trade_id=trade_id, at_ns=at_ns))
    except OSError as exc:
        raise BadData(f"cannot read {path}: {exc.strerror or exc}") from exc


def _row(text: str) -> tuple[Decimal, Decimal, Decimal] | None:
    parts = text.split(",")
    if len(parts) != 3:
        return None
    try:
        ts, price, qty = (Decimal(p) for p in parts)
    except InvalidOperation:
        return None
    if not (ts.is_finite() and price.is_finite() and qty.is_finite()):
        return None
    return ts, price, qty


def _trade_frame(
    inst: Instrument, side: str, price: Decimal, qty: Decimal, *, trade_id: int, at_ns: int
) -> bytes:
    """A WS v2 ``trade`` update (numbers as JSON numbers at the pair's precisions)."""
    symbol = orjson.dumps(inst.symbol).decode()
    text = (
        f'{{"channel":"trade","type":"update","data":[{{"symbol":{symbol},"side":"{side}",'
        f'"price":{inst.price_text(inst.price(price))},"qty":{inst.qty_text(inst.qty(qty))},'
        f'"ord_type":"limit","trade_id":{trade_id},"timestamp":"{rfc3339(at_ns)}"}}]}}'
    )
    return text.encode()
