"""Frames in, books and events out: the one path from a received WS v2 message to the books.

Two layers, both pure (no I/O, no clock: a receive time is passed in, never read):

- ``parse_into(parser, raw, books)``, the fused parse-and-apply. A book item whose symbol has
  a ``Book`` in ``books`` is applied to it in place and comes back as a ``BookApplied(book,
  snapshot, mismatch)`` (``mismatch`` is what ``Book.apply`` returns) instead of a
  ``BookFrame``; every other frame comes back as ``Parser.parse`` returns it. A one-item
  update whose envelope has the usual shape (``checksum`` a u32, ``timestamp`` a string)
  goes from the decoded dict straight into the book, with no ``BookFrame`` and no tuples:
  in the book's C core (``bot.market.book.c_fused_update``) when it is built, else in
  ``_parse_into_py``, the same path in Python and the reference the C code is tested
  against. With the C core, such an update in the strict form Kraken writes (its keys,
  plain numbers, no escapes: ``_bookcore_wire.c``) is read from the text itself,
  with no JSON decoder and no object per key or number (``c_raw_update``); it declines
  anything else, the book untouched, and the frame is decoded as above. Every other
  shape (snapshots, several items, no timestamp, malformed frames) takes the parser's
  ordinary path and its ``BookFrame``s are then applied, so both ways end in the same book
  state and the same checksum results. A number the fast path cannot prove
  exact makes it decode the frame exactly (``Parser.parse_exact``) and apply that frame
  (applying a message's levels twice is harmless). A frame whose levels turn out malformed
  after the book applied some of them raises ``ProtocolError`` and invalidates that book;
  an envelope fault raises before the book is touched. ``books`` is trusted to map each
  symbol to its own book.
- ``MarketFrames``, the books' life around it, shared by the live feed, ``krakenbot
  replay``, the recorder's checks and the backtester: ``push(raw, recv_ns)`` decodes one
  message, keeps one ``Book`` per symbol and tells its ``sink`` what happened, in order:

  =========================  =======================================================
  event                      when
  =========================  =======================================================
  ``BookValid``              a symbol's book verified a fresh snapshot
  ``BookUpdated``            a frame was applied and verified (``book`` is live: read
                             it in the callback, or keep ``book.view()``)
  ``BookInvalid``            a valid book stopped being trustworthy (``checksum
                             mismatch``, ``bad frame``, ``instrument changed``, or the
                             caller's reason in ``invalidate_all`` / ``invalidate``: a
                             recorded gap marker)
  other parser events        ``TradeFrame``, ``Ticker``, ``InstrumentFrame``,
                             ``Status``, acks, ``Unparsed`` (a book frame of a symbol
                             with no book is counted, not passed on; heartbeats are
                             dropped; a ``Pong`` goes to ``control`` only)
  =========================  =======================================================

  ``BookValid`` and ``BookInvalid`` alternate per symbol, starting with ``BookValid``: which
  symbols the sink was told are valid is kept here. A book that needs a fresh snapshot
  (a checksum mismatch, a frame that could not be parsed for it, a precision change) is
  handed to ``on_resync(symbol, reason, again)``: the live feed resubscribes it, a replay
  counts it. A book frame that cannot be parsed is never silently skipped: the book it
  names (or, if it names none that can be read, every book) is invalidated and resynced;
  a frame that is not even JSON is judged by its text. A ``book`` subscribe ack with a
  ``depth`` sets that symbol's depth (a replay learns it from the stream). ``stats``
  counts book frames, checksum failures, ignored updates and the receive time of each
  book's last frame.

  The signature is the backtester's and the recorder's too: ``push`` takes each recorded
  frame with the time it was received and needs no clock; the recorder checks checksums
  as it writes by reading ``on_resync`` (every mismatch and bad frame, with its reason).

This module does not own sockets, subscriptions or reconnects (``bot.market.feed``), the
wire format (``bot.kraken.protocol``) or the book's rules (``bot.market.book``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Final

import orjson

from bot.core.errors import ProtocolError
from bot.core.log import get_logger
from bot.kraken.codec import Pong, Raw, SubscribeAck, UnsubscribeAck, excerpt
from bot.kraken.instruments import Instrument, InstrumentTable, PrecisionLost
from bot.kraken.protocol import (
    CHECKSUM_MAX,
    SHAPE_FAULTS,
    BookFrame,
    Event,
    Heartbeat,
    InstrumentFrame,
    Parser,
    Status,
    Unparsed,
    malformed,
)
from bot.market.book import (
    Book,
    BookApplied,
    BookMismatch,
    c_bind_parse,
    c_fused_update,
    c_parse_into,
    c_raw_update,
)

__all__ = [
    "BookInvalid",
    "BookUpdated",
    "BookValid",
    "FrameStats",
    "MarketEvent",
    "MarketFrames",
    "parse_into",
    "parse_into_safe",
]

log = get_logger(component="frames")

_orjson_loads: Final = orjson.loads
_JSONDecodeError: Final = orjson.JSONDecodeError
_c_fused_update: Final = c_fused_update  # None without the C core
_c_raw_update: Final = c_raw_update  # likewise
_c_parse_into: Final = c_parse_into  # likewise
_LOG_EVERY: Final = 100  # after the first few, log one bad frame in this many
# A frame that is not even JSON may still be a book frame: its text says so.
_BOOK_CHANNEL: Final = re.compile(rb'"channel"\s*:\s*"book"')
_SYMBOL: Final = re.compile(rb'"symbol"\s*:\s*"([^"\\]{1,64})"')


# ------------------------------------------------------------------- the fused path


def _book_of(msg: Any, books: Mapping[str, Book]) -> Book:
    """The book the C core's ``fused_update`` applied ``msg`` to (it read these keys)."""
    return books[msg["data"][0]["symbol"]]


def _into(events: list[Event], books: Mapping[str, Book]) -> list[Event | BookApplied]:
    """Apply each ``BookFrame`` that has a book in ``books``; pass the rest through."""
    out: list[Event | BookApplied] = []
    for event in events:
        if type(event) is BookFrame:
            book = books.get(event.symbol)
            if book is not None:
                out.append(BookApplied(book, event.snapshot, book.apply(event)))
                continue
        out.append(event)
    return out


def _exact_into(
    parser: Parser, raw: Raw, book: Book, books: Mapping[str, Book]
) -> list[Event | BookApplied]:
    """The fast path gave up on a number: decode exactly and apply the frame again.

    The book may hold part of the message already; applying all of it again ends in the
    same state (each level at its last value). If the exact decoder refuses the frame,
    the book has lost a message: it is invalidated.
    """
    try:
        events = parser.parse_exact(raw)
    except ProtocolError:
        book.invalidate()
        raise
    return _into(events, books)


def _decode_into(parser: Parser, raw: Raw, books: Mapping[str, Book]) -> list[Event | BookApplied]:
    """``parse_into`` with the C core, once ``_bookcore.raw_update`` declined the text:
    decoded, then the common shape (exactly the one ``_parse_into_py`` takes) applied
    whole by the C core, anything else by the parser."""
    try:
        msg = _orjson_loads(raw)
    except _JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc}): {excerpt(raw)}") from None
    try:
        applied = _c_fused_update(msg, books)  # type: ignore[misc]  # bound only with it
    except PrecisionLost:
        return _exact_into(parser, raw, _book_of(msg, books), books)
    except SHAPE_FAULTS as exc:
        _book_of(msg, books).invalidate()
        raise malformed("book", exc, raw) from None
    if applied is not None:
        return applied
    return _into(parser.parse_decoded(msg, raw), books)


def _parse_into_py(
    parser: Parser, raw: Raw, books: Mapping[str, Book]
) -> list[Event | BookApplied]:
    """``parse_into`` in pure Python: the fallback, and the reference the C core's
    ``fused_update`` is tested against (it must take and refuse the same shapes)."""
    try:
        msg = _orjson_loads(raw)
    except _JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc}): {excerpt(raw)}") from None
    book: Book | None = None
    try:  # the common shape, read with no checks that a failing subscript makes
        if msg["channel"] == "book" and msg["type"] == "update":
            (item,) = msg["data"]
            checksum = item["checksum"]
            timestamp = item["timestamp"]
            if type(checksum) is int and 0 <= checksum <= CHECKSUM_MAX and type(timestamp) is str:
                bids = item["bids"]
                asks = item["asks"]
                book = books[item["symbol"]]
    except SHAPE_FAULTS:
        book = None  # any other shape: the ordinary path decides (or names the fault)
    if book is None:
        return _into(parser.parse_decoded(msg, raw), books)
    try:
        return [book._apply_wire_update_py(bids, asks, checksum, timestamp)]
    except PrecisionLost:
        return _exact_into(parser, raw, book, books)
    except SHAPE_FAULTS as exc:
        book.invalidate()
        raise malformed("book", exc, raw) from None


def _parse_into_c(parser: Parser, raw: Raw, books: Mapping[str, Book]) -> list[Event | BookApplied]:
    """``parse_into`` with the C core, in Python: the strict form from the text
    (``_bookcore.raw_update``), else ``_decode_into``. ``_bookcore.parse_into`` is the
    same in C, with no Python frame for the first case: the one ``parse_into`` runs."""
    applied = _c_raw_update(raw, books)  # type: ignore[misc]  # bound only with it
    if applied is not None:
        return applied
    return _decode_into(parser, raw, books)


parse_into: Final[Callable[[Parser, Raw, Mapping[str, Book]], list[Event | BookApplied]]] = (
    _parse_into_py if _c_parse_into is None else _c_parse_into
)
"""``parser.parse(raw)`` with every book item that has a ``Book`` in ``books`` applied to it
(see the module docstring). Raises ``ProtocolError`` and nothing else."""
if c_bind_parse is not None:
    c_bind_parse(_decode_into)  # what the C core's parse_into calls when raw_update declines


def parse_into_safe(
    parser: Parser, raw: Raw, books: Mapping[str, Book]
) -> list[Event | BookApplied]:
    """Like ``parse_into``, but a bad frame becomes ``[Unparsed(error, excerpt)]``."""
    try:
        return parse_into(parser, raw, books)
    except ProtocolError as exc:
        return [Unparsed(exc, excerpt(raw))]


# ------------------------------------------------------------------- books and events


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """A frame was applied and the book verified; ``book`` is the live object."""

    symbol: str
    book: Book
    snapshot: bool


@dataclass(frozen=True, slots=True)
class BookInvalid:
    symbol: str
    reason: str  # "disconnected" | "checksum mismatch" | "bad frame" | "instrument changed"


@dataclass(frozen=True, slots=True)
class BookValid:
    symbol: str


MarketEvent = Event | BookUpdated | BookInvalid | BookValid
MarketSink = Callable[[MarketEvent], None]
Resync = Callable[[str, str, bool], None]
"""``on_resync(symbol, reason, again)``: the book needs a fresh snapshot; ``again``: it
already did and has not verified one since (a feed waits longer before asking again)."""

# Events the owner of the connection acts on (``control``), besides passing them on.
_CONTROL: Final[frozenset[type]] = frozenset(
    {SubscribeAck, UnsubscribeAck, InstrumentFrame, Status}
)


@dataclass
class FrameStats:
    """What ``MarketFrames`` counted (a plain dataclass: a feed's stats extend it)."""

    book_frames: int = 0
    book_frames_by_symbol: dict[str, int] = field(default_factory=dict)
    checksum_failures: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    """Updates a book ignored while it waited for a snapshot, by symbol."""
    last_recv_ns: dict[str, int] = field(default_factory=dict)
    """The receive time (as passed to ``push``) of each symbol's last book frame."""


def _same_precisions(a: Instrument, b: Instrument) -> bool:
    return a.price_precision == b.price_precision and a.qty_precision == b.qty_precision


class MarketFrames:
    """Frames in, books and events out (see the module docstring).

    ``instruments`` gives the precisions (an ``instrument`` frame in the stream updates it);
    ``depth`` is the book depth of a symbol no ``book`` ack has named. ``control(event)``
    sees, before ``sink`` does, what the owner of a connection acts on: acks,
    ``InstrumentFrame``, ``Status``, ``Pong`` (which only it sees) and ``Unparsed``. With
    ``auto_books`` a book frame for any symbol with an instrument starts a book (a replay);
    without it only ``track``-ed symbols have books (a feed).
    """

    def __init__(
        self,
        instruments: InstrumentTable,
        sink: MarketSink,
        *,
        depth: int = 10,
        control: Callable[[Event], None] | None = None,
        on_resync: Resync | None = None,
        auto_books: bool = False,
        stats: FrameStats | None = None,
    ) -> None:
        self.parser = Parser(instruments)
        self.depth = depth
        self.stats = stats if stats is not None else FrameStats()
        self._sink = sink
        self._control = control
        self._on_resync = on_resync
        self._auto_books = auto_books
        self._books: dict[str, Book] = {}
        self._valid: set[str] = set()  # symbols whose last event was BookValid
        self._on_change: Callable[[], None] | None = None  # after each change of ``_valid``
        self._resyncing: set[str] = set()  # resync asked, no snapshot verified since
        self._depths: dict[str, int] = {}  # from book subscribe acks
        # One BookUpdated per book for its verified updates (immutable, so reused).
        self._updated: dict[str, BookUpdated] = {}

    # -- what others read ----------------------------------------------------------------

    @property
    def books(self) -> Mapping[str, Book]:
        """The books by symbol (read-only; a book may be replaced)."""
        return MappingProxyType(self._books)

    @property
    def instruments(self) -> InstrumentTable:
        return self.parser.instruments

    def is_valid(self, symbol: str) -> bool:
        """Whether the sink was last told ``BookValid`` for ``symbol``."""
        return symbol in self._valid

    def valid_probe(self, symbols: Iterable[str]) -> Callable[[], bool]:
        """A readiness probe: whether every one of ``symbols`` (WS names) is valid as the
        sink was told (``is_valid``). It reads the live set of valid symbols in one C call
        (``frozenset.issubset``), with no Python frame and no loop over the books: the
        gate reads it on every order, whatever the number of symbols."""
        return partial(frozenset(symbols).issubset, self._valid)

    def follow_valid(self, on_change: Callable[[], None] | None) -> None:
        """``on_change()`` after every change of the valid books (what ``valid_probe``
        reads), so a readiness gate can follow the probe (``ReadinessGate.follow``)."""
        self._on_change = on_change

    # -- books ---------------------------------------------------------------------------

    def track(self, symbol: str) -> Book | None:
        """The book of ``symbol`` (its WS name or an alias), made if new; None without an
        instrument. A book whose instrument changed precision is replaced by a new one,
        which waits for its snapshot. Books are keyed as frames name the symbol."""
        inst = self.parser.instruments.lookup(symbol)
        if inst is None:
            return None
        symbol = inst.symbol
        book = self._books.get(symbol)
        if book is not None and _same_precisions(book.instrument, inst):
            book.instrument = inst  # the rest (names, minimums, status) may have changed
            return book
        if book is not None:
            self._lose(symbol, "instrument changed")
        book = self._books[symbol] = Book(inst, self._depths.get(symbol, self.depth))
        return book

    def invalidate_all(self, reason: str | None) -> None:
        """Every book waits for a snapshot (a connection was lost). ``BookInvalid(reason)``
        for each valid one, or no event at all with ``reason`` None (shutting down)."""
        for symbol, book in self._books.items():
            book.invalidate()
            if reason is not None and symbol in self._valid:
                self._sink(BookInvalid(symbol, reason))
        self._valid.clear()
        self._changed()

    def invalidate(self, symbols: Iterable[str] | None, reason: str) -> None:
        """The named books (every book if None) wait for a snapshot: a recorded gap.
        ``BookInvalid(reason)`` for each that was valid; no resync is asked (a recording
        brings its own snapshots)."""
        if symbols is None:
            self.invalidate_all(reason)
            return
        for symbol in symbols:
            if symbol in self._books:
                self._lose(symbol, reason)

    # -- frames in -----------------------------------------------------------------------

    def push(self, raw: Raw, recv_ns: int | None = None) -> None:
        """One received message: books updated, events to the sink, in order.

        ``recv_ns`` is when it was received (the recorder's stamp, a backtest's clock), kept
        per book in ``stats.last_recv_ns``; the live feed passes None.
        """
        sink = self._sink
        try:
            events = parse_into(self.parser, raw, self._books)
        except ProtocolError as exc:
            events = [Unparsed(exc, excerpt(raw))]
        for event in events:
            kind = type(event)
            if kind is BookApplied:  # the hot path first; the object is reused
                book, snapshot, mismatch = event  # type: ignore[misc]
                if mismatch is None and not snapshot and book._valid:
                    # An update applied to a valid book and verified: counted (``_count``)
                    # and passed on here, with no call between the feed and the sink.
                    symbol = book.symbol
                    stats = self.stats
                    stats.book_frames += 1
                    by_symbol = stats.book_frames_by_symbol
                    by_symbol[symbol] = by_symbol.get(symbol, 0) + 1
                    if recv_ns is not None:
                        stats.last_recv_ns[symbol] = recv_ns
                    updated = self._updated.get(symbol)
                    if updated is None or updated.book is not book:
                        updated = self._updated[symbol] = BookUpdated(symbol, book, False)
                    sink(updated)
                else:
                    self._on_book(book, snapshot, mismatch, recv_ns)
            elif kind is BookFrame:  # a symbol with no book here
                self._on_unbooked(event, recv_ns)  # type: ignore[arg-type]
            elif kind is Unparsed:
                if self._control is not None:
                    self._control(event)  # type: ignore[arg-type]
                sink(event)  # type: ignore[arg-type]
                self._on_bad_frame(raw)
            elif kind in _CONTROL:
                self._on_control(event)  # type: ignore[arg-type]
            elif kind is Pong:
                if self._control is not None:
                    self._control(event)  # type: ignore[arg-type]
            elif kind is not Heartbeat:
                sink(event)  # type: ignore[arg-type]

    def _count(self, symbol: str, recv_ns: int | None) -> None:
        stats = self.stats
        stats.book_frames += 1
        by_symbol = stats.book_frames_by_symbol
        by_symbol[symbol] = by_symbol.get(symbol, 0) + 1
        if recv_ns is not None:
            stats.last_recv_ns[symbol] = recv_ns

    def _on_book(
        self, book: Book, snapshot: bool, mismatch: BookMismatch | None, recv_ns: int | None
    ) -> None:
        """One frame applied to ``book`` (``BookApplied``'s fields)."""
        symbol = book.symbol
        self._count(symbol, recv_ns)
        if mismatch is not None:
            self._on_mismatch(mismatch, recv_ns)
            return
        if snapshot:  # verified: the book is valid from here
            if symbol not in self._valid:
                self._valid.add(symbol)
                self._changed()
                self._resyncing.discard(symbol)
                log.info("book_valid", symbol=symbol)
                self._sink(BookValid(symbol))
        elif not book.valid:  # an update while waiting for a snapshot: ignored by the book
            ignored = self.stats.ignored
            ignored[symbol] = ignored.get(symbol, 0) + 1
            return
        self._sink(BookUpdated(symbol, book, snapshot))

    def _on_unbooked(self, frame: BookFrame, recv_ns: int | None) -> None:
        book = self.track(frame.symbol) if self._auto_books else None
        if book is not None:
            self._on_book(book, frame.snapshot, book.apply(frame), recv_ns)
            return
        self._count(frame.symbol, None)  # not ours: counted, not passed on

    def _on_mismatch(self, mismatch: BookMismatch, recv_ns: int | None) -> None:
        symbol = mismatch.symbol
        failures = self.stats.checksum_failures
        failures[symbol] = failures.get(symbol, 0) + 1
        log.warning(
            "checksum_mismatch",
            symbol=symbol,
            expected=mismatch.expected,
            computed=mismatch.computed,
            recv_ns=recv_ns,
        )
        self._lose(symbol, "checksum mismatch")
        self._resync(symbol, "checksum mismatch")

    def _on_bad_frame(self, raw: Raw) -> None:
        """A frame that could not be parsed: any book it was for has missed an update."""
        broken = [s for s in self._valid if not self._books[s].valid]  # half-applied
        broken.extend(s for s in _book_symbols(raw, self._books) if s not in broken)
        for symbol in broken:
            self._books[symbol].invalidate()
            log.warning("book_broken_by_bad_frame", symbol=symbol)
            self._lose(symbol, "bad frame")
            self._resync(symbol, "bad frame")

    def _on_control(self, event: Event) -> None:
        control = self._control
        if type(event) is InstrumentFrame:
            self._sink(event)
            self._on_instruments(event)
            if control is not None:
                control(event)
            return
        if (
            type(event) is SubscribeAck
            and event.success
            and event.channel == "book"
            and event.symbol
            and event.depth
        ):
            self._on_depth(event.symbol, event.depth)
        if control is not None:
            control(event)
        self._sink(event)

    def _on_depth(self, symbol: str, depth: int) -> None:
        self._depths[symbol] = depth
        book = self._books.get(symbol)
        if book is not None and book.depth != depth:
            self._lose(symbol, "depth changed")
            self._books[symbol] = Book(book.instrument, depth)

    def _on_instruments(self, frame: InstrumentFrame) -> None:
        """Precision changes reach the books: such a book is replaced and resynced."""
        books = self._books
        for inst in frame.instruments:
            book = books.get(inst.symbol)
            if book is None:
                continue
            if _same_precisions(book.instrument, inst):
                book.instrument = self.parser.instruments[inst.symbol]
                continue
            log.warning(
                "instrument_precision_changed",
                symbol=inst.symbol,
                price_precision=inst.price_precision,
                qty_precision=inst.qty_precision,
            )
            self.track(inst.symbol)
            self._resync(inst.symbol, "instrument changed")

    def _lose(self, symbol: str, reason: str) -> None:
        """``symbol``'s book is no longer trustworthy: tell the sink if it was valid."""
        book = self._books.get(symbol)
        if book is not None:
            book.invalidate()
        if symbol in self._valid:
            self._valid.discard(symbol)
            self._changed()
            self._sink(BookInvalid(symbol, reason))

    def _changed(self) -> None:
        """The set of valid books changed (each place that writes it calls this)."""
        if self._on_change is not None:
            self._on_change()

    def _resync(self, symbol: str, reason: str) -> None:
        again = symbol in self._resyncing
        self._resyncing.add(symbol)
        if self._on_resync is not None:
            self._on_resync(symbol, reason, again)


def _book_symbols(raw: Raw, books: Mapping[str, Book]) -> list[str]:
    """The books a frame that could not be parsed was for: the symbols it names that have a
    book, or every book if it is a book frame naming none that can be read; [] if it is
    not a book frame. A frame that is not even JSON is judged by its text."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    try:
        msg = _orjson_loads(data)
    except _JSONDecodeError:
        if _BOOK_CHANNEL.search(data) is None:
            return []
        named = {m.decode("utf-8", "replace") for m in _SYMBOL.findall(data)}
    else:
        if type(msg) is not dict or msg.get("channel") != "book":
            return []
        items = msg.get("data")
        named = set()
        if type(items) is list:
            for item in items:
                symbol = item.get("symbol") if type(item) is dict else None
                if type(symbol) is str:
                    named.add(symbol)
    if not named:  # a book frame, but for which book cannot be read: any of them
        return list(books)
    return [s for s in books if s in named]
