"""A market source that replays a recorded Kraken WS v2 capture into the simulator's books.

Input is the replay format of ``bot/research/replay.py``: JSON lines, each a bare WS v2 frame or a
recorder line ``{"recv_ns": ..., "frame": {...}}``, in a plain or gzip file (``krakenbot
record``'s files; its gap markers are skipped: the next snapshot resets the levels).
Only ``book`` frames are used: each
recorded level becomes one resting order of the market account (``MarketAdd``), a changed
quantity amends it in place (``MarketAmend``), a quantity of 0 cancels it
(``MarketCancel``), and a snapshot replaces the symbol's levels. After every frame each
side is cut to the recorded depth (the snapshot's level count), as a Kraken client
truncates its book, so levels that scrolled out of the subscription never linger.

Timing: frames are replayed in capture order, each due ``recv_ns`` (else its
``timestamp``, else the previous frame's time) minus the first frame's time after the
first ``step``; the venue's ``speed`` scales that (``venue.ScaledSource``). The replay
ends with the capture: the books stay as they were last. Trades in the capture are not
replayed (the book frames already carry their effect); a user order therefore trades only
against the replayed levels it crosses.

This module owns the capture-to-actions translation; it never touches a book.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from bot.core.errors import ProtocolError
from bot.kraken.capture import CaptureReader
from bot.kraken.instruments import Instrument, InstrumentTable
from bot.sim.market_data import MarketAction, MarketAdd, MarketAmend, MarketCancel

__all__ = ["ReplayMarket", "capture_symbols"]

log = structlog.get_logger("sim.replay")


@dataclass(frozen=True, slots=True)
class _Frame:
    at_ns: int
    symbol: str
    snapshot: bool
    levels: tuple[tuple[str, int, int], ...]  # (side "buy"/"sell", price, qty)


def _frames_of(line: bytes) -> tuple[int | None, list[dict[str, Any]]]:
    line = line.strip()
    if not line:
        return None, []
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, []
    recv_ns: int | None = None
    if isinstance(obj, dict) and "frame" in obj and "recv_ns" in obj:
        recv_ns = obj["recv_ns"] if type(obj["recv_ns"]) is int else None
        obj = obj["frame"]
    if not isinstance(obj, dict) or obj.get("channel") != "book":
        return recv_ns, []
    data = obj.get("data")
    if obj.get("type") not in ("snapshot", "update") or not isinstance(data, list):
        return recv_ns, []
    for entry in data:
        if isinstance(entry, dict):
            entry["_snapshot"] = obj["type"] == "snapshot"
    return recv_ns, [e for e in data if isinstance(e, dict)]


def _stamp_ns(entry: dict[str, Any]) -> int | None:
    text = entry.get("timestamp")
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def capture_symbols(lines: Iterable[bytes]) -> list[str]:
    """The symbols with book frames in a capture, in order of first appearance."""
    seen: dict[str, None] = {}
    for line in lines:
        for entry in _frames_of(line)[1]:
            if isinstance(entry.get("symbol"), str):
                seen[entry["symbol"]] = None
    return list(seen)


def _levels(inst: Instrument, entry: dict[str, Any]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for key, side in (("bids", "buy"), ("asks", "sell")):
        for level in entry.get(key) or ():
            try:
                out.append((side, inst.price(level["price"]), inst.qty(level["qty"])))
            except (ProtocolError, KeyError, TypeError):
                log.warning("replay_level_skipped", symbol=inst.symbol, level=repr(level)[:80])
    return tuple(out)


class ReplayMarket:
    """A ``MarketSource`` replaying recorded book frames (see the module docstring)."""

    def __init__(self, frames: Iterable[_Frame]) -> None:
        self._frames = list(frames)  # in capture order: times only decide when each is due
        self._next = 0
        self._origin: tuple[int, int] | None = None  # (first step's now, first frame's time)
        self._levels: dict[str, dict[tuple[str, int], list[int]]] = {}  # -> [ref, qty]
        self._refs: dict[int, tuple[str, str, int]] = {}
        self._depth: dict[str, int] = {}
        self._next_ref = 0
        self._out: list[MarketAction] = []

    @classmethod
    def from_lines(cls, lines: Iterable[bytes], instruments: InstrumentTable) -> ReplayMarket:
        found: list[tuple[int | None, str, bool, tuple[tuple[str, int, int], ...]]] = []
        for line in lines:
            recv_ns, entries = _frames_of(line)
            for entry in entries:
                inst = instruments.lookup(str(entry.get("symbol")))
                if inst is None:
                    continue
                at = recv_ns if recv_ns is not None else _stamp_ns(entry)
                found.append((at, inst.symbol, entry["_snapshot"], _levels(inst, entry)))
        # A frame without a time (a snapshot often has none) takes the previous frame's;
        # leading ones take the first known time.
        known = [at for at, _, _, _ in found if at is not None]
        last = known[0] if known else 0
        frames = []
        for at, symbol, snapshot, levels in found:
            last = at if at is not None else last
            frames.append(_Frame(last, symbol, snapshot, levels))
        return cls(frames)

    @classmethod
    def from_file(cls, path: Path, instruments: InstrumentTable) -> ReplayMarket:
        """A capture file, plain or gzip (a recorder's; a cut-short tail is dropped)."""
        return cls.from_lines(CaptureReader([path]).lines(path), instruments)

    @property
    def remaining(self) -> int:
        """Frames not replayed yet."""
        return len(self._frames) - self._next

    # -- MarketSource ---------------------------------------------------------------------
    def step(self, now_ns: int) -> list[MarketAction]:
        self._out = []
        if self._next >= len(self._frames):
            return self._out
        if self._origin is None:
            self._origin = (now_ns, self._frames[0].at_ns)
        start, first = self._origin
        while self._next < len(self._frames):
            frame = self._frames[self._next]
            if frame.at_ns - first > now_ns - start:
                break
            self._next += 1
            self._apply(frame)
        return self._out

    def on_fill(self, symbol: str, ref: int, remaining: int) -> None:
        entry = self._refs.get(ref)
        if entry is None:
            return
        sym, side, price = entry
        if remaining <= 0:
            del self._refs[ref]
            self._levels[sym].pop((side, price), None)
        else:
            self._levels[sym][(side, price)][1] = remaining

    # -- translation ---------------------------------------------------------------------
    def _apply(self, frame: _Frame) -> None:
        levels = self._levels.setdefault(frame.symbol, {})
        if frame.snapshot:
            for key in list(levels):
                self._cancel(frame.symbol, levels, key)
            sides = [side for side, _, _ in frame.levels]
            self._depth[frame.symbol] = max(sides.count("buy"), sides.count("sell"), 1)
        # Removals first, so a level that replaces a removed one never crosses it.
        for side, price, qty in sorted(frame.levels, key=lambda level: level[2] != 0):
            key = (side, price)
            entry = levels.get(key)
            if qty == 0:
                if entry is not None:
                    self._cancel(frame.symbol, levels, key)
            elif entry is None:
                self._add(frame.symbol, levels, side, price, qty)
            elif entry[1] != qty:
                entry[1] = qty
                self._out.append(MarketAmend(frame.symbol, entry[0], qty))
        self._truncate(frame.symbol, levels)

    def _truncate(self, symbol: str, levels: dict[tuple[str, int], list[int]]) -> None:
        depth = self._depth.get(symbol)
        if depth is None:
            return
        for side in ("buy", "sell"):
            prices = sorted((p for s, p in levels if s == side), reverse=side == "buy")
            for price in prices[depth:]:
                self._cancel(symbol, levels, (side, price))

    def _add(
        self, symbol: str, levels: dict[tuple[str, int], list[int]], side: str, price: int, qty: int
    ) -> None:
        self._next_ref += 1
        ref = self._next_ref
        levels[(side, price)] = [ref, qty]
        self._refs[ref] = (symbol, side, price)
        self._out.append(MarketAdd(symbol, ref, side, price, qty))

    def _cancel(
        self, symbol: str, levels: dict[tuple[str, int], list[int]], key: tuple[str, int]
    ) -> None:
        ref, _ = levels.pop(key)
        self._refs.pop(ref, None)
        self._out.append(MarketCancel(symbol, ref))
