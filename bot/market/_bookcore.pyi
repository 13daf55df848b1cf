"""Typed stub of the C core of the order book (``bot/market/_bookcore.c`` documents it)."""

from collections.abc import Mapping
from typing import Any

from bot.market.book import BookApplied

class BookCore:
    """A book's mutable state; ``bot.market.book.Book`` subclasses it."""

    _ap: list[int]
    _aq: dict[int, int]
    _at: list[bytes]
    _bp: list[int]
    _bq: dict[int, int]
    _bt: list[bytes]
    _a_crc: int
    _crc: int
    _scales: tuple[float, float, int, int, float, float]
    _updated: BookApplied
    _valid: bool
    depth: int
    ignored: int
    mismatches: int
    timestamp: str

    def view(self, n: int = 10) -> Any: ...

def apply_update(
    book: BookCore, bids: Any, asks: Any, checksum: int, timestamp: str, /
) -> BookApplied: ...
def fused_update(msg: Any, books: Mapping[str, BookCore], /) -> list[BookApplied] | None: ...
def bind_parse(decode_into: Any, /) -> None: ...
def parse_into(parser: Any, raw: Any, books: Mapping[str, BookCore], /) -> list[Any]: ...
def raw_update(raw: Any, books: Mapping[str, BookCore], /) -> list[BookApplied] | None: ...

_Levels = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]

def bind_view(book_class: type[Any], view_class: type[Any], fallback: Any, /) -> None: ...
def slot_maker(cls: type[Any], fields: tuple[str, ...], /) -> Any: ...
def levels(book: BookCore, n: int, prev: _Levels | None = None, /) -> _Levels: ...
def crc32(data: bytes, value: int = 0, /) -> int: ...
