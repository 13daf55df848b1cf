"""The local L2 order book of one symbol, verified against Kraken's CRC32 on every message.

This module owns ``Book`` (snapshot, in-order updates, truncation to the subscribed depth,
checksum verification, and the read-only views a strategy needs), ``BookView`` (an
immutable copy of the top of a book), ``BookMismatch`` and ``BookApplied`` (one message
applied in place, for ``bot.market.frames``). ``BookFrame`` (one message in scaled ints) is
the protocol's (``bot.kraken.protocol``), which knows nothing of the book. It is pure:
no I/O, no clock, no logging. What to do about a mismatch (unsubscribe, resubscribe,
count, log) is the feed's business.

Rules (KRAKEN.md §5.3, §5.4):

- A snapshot replaces the book. An update applies its levels in wire order, asks then
  bids: a ``qty`` of 0 deletes the level, anything else sets it, so several updates to
  one level in one message end at the last one.
- After every message each side is cut to the subscribed ``depth``: Kraken sends no
  delete for a level pushed out of scope.
- Every message, the snapshot included, carries a checksum of the top 10 levels, and every
  one is verified. A mismatch returns a ``BookMismatch`` and leaves the book invalid
  (``valid`` is False) until the next snapshot; updates to an invalid book are ignored
  (``apply`` returns None and counts them in ``ignored``). A new book is invalid until its
  first snapshot.

Two ways in, one set of rules, written once in Python (``_update_levels``) and once in C.
``apply(frame)`` takes a ``BookFrame``. The fused path, ``apply_wire_update(bids, asks,
checksum, timestamp)``, takes the level lists of one update exactly as orjson decoded them
(``[{"price": 29430.2, "qty": 0.5}, …]``) and converts each number inline, so a frame goes
from JSON to the book with no tuple or ``BookFrame`` in between;
``bot.market.frames.parse_into`` is its caller. Its conversion is the
protocol's exactness test, restricted: a float ``f`` becomes ``n = round(f·10**p)`` only if
``0 < f`` (``0 <= f`` for a qty), ``f·10**p`` is below 2**49 and ``n / 10**p == f``, which
holds exactly when ``f`` was parsed from the decimal ``n·10**-p`` (``bot.kraken.protocol``
gives the proof); a positive int is scaled exactly. Anything else, a float that carries
more decimals than the precision included, raises ``PrecisionLost`` and the caller decodes
the frame exactly and applies the resulting ``BookFrame``: no number is ever accepted on
the strength of the checksum alone. The book uses its own instrument's precisions.

State. Each side is a sorted list of prices (bids negated, so both sides ascend from the
best level), a dict price -> qty, and a list of the checksum fragments
``b"%d%d" % (price, qty)`` of its top 10 levels, kept in step with the list. A quantity
change is a dict store (plus a fragment when the level is in the top 10); an insert or a
delete is one ``bisect`` and one list operation; truncation pops the worst levels. The CRC
is recomputed only for a side whose top 10 changed: the asks' CRC is cached (``_a_crc``)
and the bids' fragments continue it, so a deep update in a depth-1000 book costs no
checksum work and a change to the bids only costs the bids' part.

Two cores, one state. The C extension ``bot.market._bookcore`` (``_bookcore.c``, built by
``setup.py``) holds that state in ``BookCore``, the base class of ``Book``, and runs the
fused path in C: ``apply_wire_update`` and, for ``frames.parse_into``, the whole common
shape from the decoded message on (``c_fused_update``) or, in its strict form, from the
received text (``c_raw_update``). The Python methods below read and
write the same members, so snapshots, ``apply`` and the views are shared code. When the
extension is not built, or ``KRAKENBOT_PURE_BOOK=1`` is in the environment at import,
``Book`` sits on ``_PureState`` (the same member names in ``__slots__``) and the fused path
is ``_apply_wire_update_py``, the reference the C code is tested against. ``CORE`` says
which one runs ("c" or "python").

Speed is measured by ``krakenbot bench book``; the figures, with their machine, are in the
docs/contributors/book.md (*Speed*).
"""

from __future__ import annotations

import os
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from fractions import Fraction
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, NoReturn

from bot.core.errors import ChecksumMismatch, ConfigError, ProtocolError
from bot.core.frozen import maker
from bot.kraken.checksum import CHECKSUM_LEVELS
from bot.kraken.instruments import Instrument, PrecisionLost, from_scaled
from bot.kraken.protocol import BookFrame

__all__ = ["Book", "BookApplied", "BookMismatch", "BookView", "Level", "Side"]

Level = tuple[int, int]
"""A price level: ``(price, qty)``, both ints scaled by the instrument's precisions."""

Side = Literal["bid", "ask"]

_TOP: Final = CHECKSUM_LEVELS
# Microprice is a ratio; it is rounded once, to this many significant digits.
_MICRO_CTX: Final = Context(prec=34)
_crc32: Final = zlib.crc32
_round: Final = float.__round__  # round() without the builtin's dispatch
# The fused path takes a float only below 2**49 once scaled (the exactness proof needs
# 2**50, as in ``bot.kraken.protocol``); anything larger goes to the exact decoder.
_FAST_LIMIT: Final = 2.0**49

_WireScales = tuple[float, float, int, int, float, float]


def _load_core() -> ModuleType | None:
    """The C core, unless ``KRAKENBOT_PURE_BOOK`` is set (to anything but 0) or it is not
    built. Read once, at import: a process runs one core."""
    if os.environ.get("KRAKENBOT_PURE_BOOK", "") not in ("", "0"):
        return None
    try:
        import bot.market._bookcore
    except ImportError:
        return None
    return bot.market._bookcore


_core: Final = _load_core()
CORE: Final[Literal["c", "python"]] = "python" if _core is None else "c"
"""Which core runs the fused path in this process: the C extension or pure Python."""


def _decode_exactly(what: str, value: object) -> NoReturn:
    raise PrecisionLost(f"book {what} {value!r}: not provably exact here, decode exactly")


def _not_a_list(what: str, value: object) -> NoReturn:
    raise TypeError(f"book {what} must be a list, got {value!r}")


def _wire_scales(instrument: Instrument) -> _WireScales:
    """10**price_p and 10**qty_p as floats and ints, and the largest fast price and qty."""
    price_scale = 10.0**instrument.price_precision
    qty_scale = 10.0**instrument.qty_precision
    return (
        price_scale,
        qty_scale,
        10**instrument.price_precision,
        10**instrument.qty_precision,
        _FAST_LIMIT / price_scale,
        _FAST_LIMIT / qty_scale,
    )


@dataclass(frozen=True, slots=True)
class BookMismatch:
    """The book's CRC32 after a message differs from the one Kraken sent with it."""

    symbol: str
    expected: int
    computed: int

    def error(self) -> ChecksumMismatch:
        """The same fact as a ``ProtocolError``, for callers that raise."""
        return ChecksumMismatch(self.symbol, self.expected, self.computed)


def _mid(bid: int, ask: int, precision: int) -> Decimal:
    # (bid + ask) / 2 is (bid + ask) * 5 at one more decimal: exact, no division.
    return from_scaled((bid + ask) * 5, precision + 1)


def _microprice(bid: Level, ask: Level, precision: int) -> Fraction:
    (bp, bq), (ap, aq) = bid, ask
    return Fraction(bp * aq + ap * bq, (aq + bq) * 10**precision)


def _fraction_to_decimal(value: Fraction) -> Decimal:
    return _MICRO_CTX.divide(Decimal(value.numerator), Decimal(value.denominator))


class _PureState:
    """A book's mutable state for the pure-Python core.

    The same members as the C core's ``BookCore`` (``_bookcore.c`` documents each), so
    ``Book``'s Python methods run unchanged on either.
    """

    __slots__ = (
        "_a_crc",
        "_ap",
        "_aq",
        "_at",
        "_bp",
        "_bq",
        "_bt",
        "_crc",
        "_scales",
        "_updated",
        "_valid",
        "depth",
        "ignored",
        "mismatches",
        "timestamp",
    )

    _ap: list[int]  # ask prices, ascending
    _aq: dict[int, int]  # ask price -> qty
    _at: list[bytes]  # checksum fragments of the top 10 asks
    _bp: list[int]  # bid prices negated, ascending (best bid first)
    _bq: dict[int, int]  # negated bid price -> qty
    _bt: list[bytes]
    _a_crc: int  # CRC32 of b"".join(_at), where the bids' CRC continues
    _crc: int  # CRC32 of the top 10 asks then bids: the book's checksum
    _scales: _WireScales
    _updated: BookApplied
    _valid: bool
    depth: int
    ignored: int
    mismatches: int
    timestamp: str


if TYPE_CHECKING:
    _State = _PureState
else:
    _State = _PureState if _core is None else _core.BookCore


class Book(_State):
    """The L2 book of one instrument at one subscribed ``depth`` (10, 25, 100, 500, 1000).

    Feed it every ``BookFrame`` of its symbol with ``apply``, or the decoded levels of
    every update with ``apply_wire_update`` (the fused path, see the module docstring).
    All views read exact scaled ints (``Level``); ``mid`` and ``microprice`` are
    ``Decimal`` in price units. Views show the last state applied even while the book is
    invalid: check ``valid`` first.
    """

    __slots__ = ("_levels", "instrument", "symbol")  # the rest is the core's (``_State``)

    def __init__(self, instrument: Instrument, depth: int = 10) -> None:
        if depth < _TOP:
            raise ConfigError(f"book depth must be at least {_TOP} (the checksum's), got {depth}")
        self.instrument = instrument
        self.symbol = instrument.symbol
        self._levels: tuple[tuple[Level, ...], tuple[Level, ...]] | None = None
        """The C core's last copy for ``view``: its unchanged levels are reused."""
        self.depth = depth
        self.ignored = 0
        """Updates dropped because the book was invalid."""
        self.mismatches = 0
        """Messages whose checksum did not verify."""
        self.timestamp = ""
        """Kraken's timestamp of the last message applied."""
        self._ap = []
        self._aq = {}
        self._at = []
        self._bp = []
        self._bq = {}
        self._bt = []
        self._a_crc = 0
        self._crc = 0
        self._valid = False
        self._scales = _wire_scales(instrument)
        self._updated = BookApplied(self, False, None)
        self.reset()

    # -- state -------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """True from a verified snapshot until a mismatch, ``invalidate`` or ``reset``."""
        return self._valid

    @property
    def checksum(self) -> int:
        """The CRC32 of the current top 10 (what Kraken would send for this book)."""
        return self._crc

    def invalidate(self) -> None:
        """Distrust the book (e.g. the feed dropped): updates are ignored until a snapshot."""
        self._valid = False

    def reset(self) -> None:
        """Empty the book and invalidate it."""
        self._load((), ())
        self._valid = False
        self.timestamp = ""

    # -- the hot path ------------------------------------------------------------------

    def apply(self, frame: BookFrame) -> BookMismatch | None:
        """Apply one message and verify its checksum.

        Returns None when the message verified (or was an update ignored by an invalid
        book), or a ``BookMismatch``, after which the book is invalid until the next
        snapshot. A frame for another symbol raises ``ProtocolError``. An update goes
        through ``_update_levels``, the same function as the fused path's Python core.
        """
        if frame.symbol != self.symbol:
            raise ProtocolError(f"book {self.symbol} got a frame for {frame.symbol}")
        if frame.snapshot:
            crc = self._load(frame.asks, frame.bids)
        elif not self._valid:
            self.ignored += 1
            return None
        else:
            crc = _update_levels(self, frame.bids, frame.asks, False)
        self.timestamp = frame.timestamp
        if crc == frame.checksum:
            if frame.snapshot:
                self._valid = True
            return None
        self._valid = False
        self.mismatches += 1
        return BookMismatch(self.symbol, frame.checksum, crc)

    # The fused path: the same rules as ``apply``, reading the decoded JSON levels directly
    # and converting each number with the exactness rule inline (see the module docstring).
    def apply_wire_update(
        self, bids: list[Any], asks: list[Any], checksum: int, timestamp: str
    ) -> BookApplied:
        """Apply one WS v2 book *update* as decoded by orjson, and verify its checksum.

        Runs the C core when there is one (``CORE``), else ``_apply_wire_update_py``; both
        are documented there. The C core refuses a ``checksum`` that is not an int in
        0..2**32-1 or a ``timestamp`` that is not a str with ``TypeError``.
        """
        if _c_apply_update is not None:
            return _c_apply_update(self, bids, asks, checksum, timestamp)
        return self._apply_wire_update_py(bids, asks, checksum, timestamp)

    def _apply_wire_update_py(
        self, bids: list[Any], asks: list[Any], checksum: int, timestamp: str
    ) -> BookApplied:
        """Apply one WS v2 book *update* as decoded by orjson, and verify its checksum.

        ``bids`` and ``asks`` are the item's lists of ``{"price": p, "qty": q}`` objects,
        ``checksum`` an int in 0..2**32-1 and ``timestamp`` a string (the caller checks
        those two). Returns a ``BookApplied`` whose ``mismatch`` is what ``apply`` returns
        for the same message (the same object for every update that verified).

        A number this path cannot prove exact (and any price or qty that is not a
        positive, resp. non-negative, float or int) raises ``PrecisionLost``; a level list
        of the wrong shape raises ``TypeError`` or ``KeyError``. Either may come after
        some levels were applied: the book then brings its checksum caches in line with
        its levels before it raises, so that ``apply`` of the exactly decoded frame ends
        in the state the ordinary path would reach (applying a message's levels again is
        harmless: each level ends at its last value), and a caller that cannot apply the
        frame must ``invalidate`` the book.
        """
        if not self._valid:
            self.ignored += 1
            return self._updated
        crc = _update_levels(self, bids, asks, True)
        self.timestamp = timestamp
        if crc == checksum:
            return self._updated
        return self._mismatch(checksum)

    # -- helpers off the hot path ----------------------------------------------------------

    def _mismatch(self, checksum: int) -> BookApplied:
        """An update whose checksum did not verify (both cores call this): invalidate and
        count it, and report it."""
        self._valid = False
        self.mismatches += 1
        return BookApplied(self, False, BookMismatch(self.symbol, checksum, self._crc))

    def _recompute(self) -> int:
        """Bring the CRC caches in line with the fragment lists; return the CRC."""
        a_crc = self._a_crc = _crc32(b"".join(self._at))
        crc = self._crc = _crc32(b"".join(self._bt), a_crc)
        return crc

    def _load(self, asks: Iterable[Level], bids: Iterable[Level]) -> int:
        """Replace both sides (levels in wire order, qty 0 deletes) and return the CRC."""
        depth = self.depth
        aq: dict[int, int] = {}
        for p, q in asks:
            if q:
                aq[p] = q
            else:
                aq.pop(p, None)
        bq: dict[int, int] = {}
        for p, q in bids:
            if q:
                bq[-p] = q
            else:
                bq.pop(-p, None)
        ap = sorted(aq)
        bp = sorted(bq)
        for n in ap[depth:]:
            del aq[n]
        for n in bp[depth:]:
            del bq[n]
        del ap[depth:], bp[depth:]
        self._ap, self._aq, self._bp, self._bq = ap, aq, bp, bq
        self._at = [b"%d%d" % (n, aq[n]) for n in ap[:_TOP]]
        self._bt = [b"%d%d" % (-n, bq[n]) for n in bp[:_TOP]]
        return self._recompute()

    # -- views -------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        if self._bp:
            n = self._bp[0]
            return -n, self._bq[n]
        return None

    def best_ask(self) -> Level | None:
        if self._ap:
            p = self._ap[0]
            return p, self._aq[p]
        return None

    def spread(self) -> int | None:
        """Best ask minus best bid, in scaled price units (negative if crossed)."""
        if self._ap and self._bp:
            return self._ap[0] + self._bp[0]
        return None

    def top_prices(self) -> tuple[int, int] | None:
        """(best bid, best ask) as scaled prices, None while a side is empty: all that
        ``mid`` depends on, so a caller can tell cheaply whether the mid moved."""
        if self._ap and self._bp:
            return -self._bp[0], self._ap[0]
        return None

    def mid(self) -> Decimal | None:
        """(best bid + best ask) / 2 in price units, exact (one decimal past the price's)."""
        if self._ap and self._bp:
            return _mid(-self._bp[0], self._ap[0], self.instrument.price_precision)
        return None

    def microprice_fraction(self) -> Fraction | None:
        """(bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty) in price units, exact."""
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return _microprice(bid, ask, self.instrument.price_precision)

    def microprice(self) -> Decimal | None:
        """``microprice_fraction`` as a Decimal: exact when it terminates within 34
        significant digits, else correctly rounded (half even) to 34."""
        value = self.microprice_fraction()
        return None if value is None else _fraction_to_decimal(value)

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask (crossed or locked)."""
        return bool(self._ap and self._bp) and -self._bp[0] >= self._ap[0]

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids (all if None), highest price first."""
        bq = self._bq
        return [(-k, bq[k]) for k in (self._bp if n is None else self._bp[:n])]

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks (all if None), lowest price first."""
        aq = self._aq
        return [(p, aq[p]) for p in (self._ap if n is None else self._ap[:n])]

    def top(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        """``(bids, asks)``, the best ``n`` of each side, best first."""
        return self.bids(n), self.asks(n)

    def size_to_price(self, side: Side, price: int) -> int:
        """Total quantity on ``side`` at prices as good as ``price`` or better.

        Bids: at ``price`` or above; asks: at ``price`` or below. That is the size a
        taker selling down to (or buying up to) ``price`` could fill from this book.
        """
        if side == "ask":
            return sum(map(self._aq.__getitem__, self._ap[: bisect_right(self._ap, price)]))
        if side == "bid":
            return sum(map(self._bq.__getitem__, self._bp[: bisect_right(self._bp, -price)]))
        raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")

    def _view_py(self, n: int = 10) -> BookView:
        """``view`` in Python: the pure core's, the C core's for a negative ``n``, and the
        reference ``BookCore.view`` is tested against."""
        if _c_levels is not None and n >= 0:  # the C core's copy of both sides, in one call
            # Levels equal to the last copy's are its tuples: only the changed ones are new.
            bids, asks = self._levels = _c_levels(self, n, self._levels)
        else:
            bq, aq = self._bq, self._aq
            bids = tuple([(-k, bq[k]) for k in self._bp[:n]])
            asks = tuple([(p, aq[p]) for p in self._ap[:n]])
        return _book_view(  # BookView(...) at half the cost (one per book message)
            self.symbol, self._valid, self.timestamp, self.instrument.price_precision, bids, asks
        )

    if TYPE_CHECKING or _core is None:

        def view(self, n: int = 10) -> BookView:
            """An immutable copy of the best ``n`` levels a side, to hand to a strategy.

            With the C core this is ``BookCore.view``: the same copy, made in one C call
            with no Python frame (once per book message, before the strategies see it)."""
            return self._view_py(n)


# One function on purpose: both sides in one loop, with no helper call per side or level.
def _update_levels(book: Book, bids: Any, asks: Any, wire: bool) -> int:  # noqa: PLR0915
    """The update rule, once in Python (the C core is its twin): asks then bids, each
    level in wire order, then each side cut to ``depth``; returns the book's CRC after the
    message.

    ``Book.apply`` (``BookFrame`` levels: ``(price, qty)`` scaled ints) and the fused path's
    Python core (``Book._apply_wire_update_py``, ``wire=True``: orjson's ``{"price": p,
    "qty": q}`` objects, converted here with the exactness rule of the module docstring)
    both come here. A side's sort keys are its prices, negated for bids so both sides
    ascend from the best level; ``tops`` are the checksum fragments of its top 10. An error
    part-way (``PrecisionLost``, or a malformed level or side on the wire) leaves the levels
    applied so far and brings the CRC caches in line with them before it propagates. The
    CRC is recomputed only for a side whose top 10 changed; depth >= 10, so the cut to depth
    never touches the checksummed top 10.
    """
    a_top = b_top = False
    try:
        for levels, prices, qtys, tops, negate in (
            (asks, book._ap, book._aq, book._at, False),
            (bids, book._bp, book._bq, book._bt, True),
        ):
            if not levels:
                if wire and type(levels) is not list:
                    _not_a_list("bids" if negate else "asks", levels)
                continue
            changed = False
            ps, qs, pi, qi, plim, qlim = book._scales
            for level in levels:
                if wire:
                    p = level["price"]
                    q = level["qty"]
                    if type(p) is float and 0.0 < p < plim:
                        n = _round(p * ps)
                        if n / ps != p:
                            _decode_exactly("price", p)
                        p = n
                    elif type(p) is int and p > 0:
                        p *= pi
                    else:
                        _decode_exactly("price", p)
                    if type(q) is float and 0.0 <= q < qlim:
                        n = _round(q * qs)
                        if n / qs != q:
                            _decode_exactly("qty", q)
                        q = n
                    elif type(q) is int and q >= 0:
                        q *= qi
                    else:
                        _decode_exactly("qty", q)
                else:
                    p, q = level
                k = -p if negate else p
                if k in qtys:
                    if q:
                        qtys[k] = q
                        i = bisect_left(prices, k, 0, top := len(tops))
                        if i < top:
                            tops[i] = b"%d%d" % (p, q)
                            changed = True
                    else:
                        del qtys[k]
                        i = bisect_left(prices, k)
                        del prices[i]
                        if i < _TOP:
                            del tops[i]
                            if len(prices) >= _TOP:
                                n = prices[_TOP - 1]
                                tops.append(b"%d%d" % (-n if negate else n, qtys[n]))
                            changed = True
                elif q:
                    qtys[k] = q
                    i = bisect_left(prices, k)
                    prices.insert(i, k)
                    if i < _TOP:
                        tops.insert(i, b"%d%d" % (p, q))
                        if len(tops) > _TOP:
                            del tops[_TOP]
                        changed = True
            depth = book.depth
            while len(prices) > depth:  # Kraken sends no delete for these: cut to depth
                del qtys[prices.pop()]
            if changed:
                if negate:
                    b_top = True
                else:
                    a_top = True
    except BaseException:
        book._recompute()
        raise
    if a_top:
        a_crc = book._a_crc = _crc32(b"".join(book._at))
        book._crc = _crc32(b"".join(book._bt), a_crc)
    elif b_top:
        book._crc = _crc32(b"".join(book._bt), book._a_crc)
    return book._crc


class BookApplied(NamedTuple):
    """One book message applied to its ``Book`` in place (``bot.market.frames.parse_into``).

    ``mismatch`` is what ``Book.apply`` returns for the message: None when the checksum
    verified or the update was ignored by an invalid book (check ``book.valid``). The
    result of a verified update is one object per book, built once.
    """

    book: Book
    snapshot: bool
    mismatch: BookMismatch | None


_c_apply_update: Final[Callable[[Book, list[Any], list[Any], int, str], BookApplied] | None] = (
    None if _core is None else _core.apply_update
)
c_fused_update: Final[Callable[[Any, Mapping[str, Book]], list[Any] | None] | None] = (
    None if _core is None else _core.fused_update
)
"""The C core's ``frames.parse_into`` for the common shape (``_bookcore.fused_update``):
``[BookApplied]``, or None for a message of any other shape; None without the C core."""
c_raw_update: Final[Callable[[Any, Mapping[str, Book]], list[Any] | None] | None] = (
    None if _core is None else _core.raw_update
)
"""The C core's ``frames.parse_into`` for the common shape from the received text, with no
JSON decoder (``_bookcore.raw_update``): ``[BookApplied]``, or None, the book untouched, for
anything but a strict form of it; None without the C core."""
c_parse_into: Final[Callable[[Any, Any, Mapping[str, Book]], list[Any]] | None] = (
    None if _core is None else _core.parse_into
)
"""``frames.parse_into`` in C: ``c_raw_update``, else the decoding path ``c_bind_parse`` set
(``frames._decode_into``); None without the C core."""
c_bind_parse: Final[Callable[[Callable[..., list[Any]]], None] | None] = (
    None if _core is None else _core.bind_parse
)
c_slot_maker: Final[Callable[[type[Any], tuple[str, ...]], Callable[..., Any]] | None] = (
    None if _core is None else _core.slot_maker
)
"""``slot_maker(cls, fields)``: ``bot.core.frozen.maker(cls)`` in C (no Python frame per
object); None without the C core."""
_Levels = tuple[tuple[Level, ...], tuple[Level, ...]]
_c_levels: Final[Callable[[Book, int, _Levels | None], _Levels] | None] = (
    None if _core is None else _core.levels
)


@dataclass(frozen=True, slots=True)
class BookView:
    """The top of a book at one moment, immutable. Levels are scaled ints, best first."""

    symbol: str
    valid: bool
    timestamp: str
    price_precision: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None

    def spread(self) -> int | None:
        if self.bids and self.asks:
            return self.asks[0][0] - self.bids[0][0]
        return None

    def mid(self) -> Decimal | None:
        if self.bids and self.asks:
            return _mid(self.bids[0][0], self.asks[0][0], self.price_precision)
        return None

    def microprice(self) -> Decimal | None:
        if self.bids and self.asks:
            value = _microprice(self.bids[0], self.asks[0], self.price_precision)
            return _fraction_to_decimal(value)
        return None

    def is_crossed(self) -> bool:
        return bool(self.bids and self.asks) and self.bids[0][0] >= self.asks[0][0]


_book_view: Final = maker(BookView)
if _core is not None:  # where BookCore.view finds a Book's fields and sets a BookView's
    _core.bind_view(Book, BookView, Book._view_py)
