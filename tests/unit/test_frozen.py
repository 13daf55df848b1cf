"""``maker``: the fast constructor gives the very object the dataclass's own would."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.frozen import maker
from bot.market.book import BookView
from bot.strategy.api import BookSnapshot, InstrumentInfo
from tests.unit.test_book import BTC


@dataclasses.dataclass(frozen=True, slots=True)
class Three:
    a: int
    b: str
    c: tuple[int, ...]


def test_the_made_object_equals_hashes_and_stays_frozen_as_the_constructed_one() -> None:
    args = ("BTC/USD", True, "2023-07-30T15:29:58Z", 1, ((1000, 5),), ((1010, 7),))
    made, built = maker(BookView)(*args), BookView(*args)
    assert type(made) is BookView and made == built and hash(made) == hash(built)
    assert repr(made) == repr(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.valid = False  # type: ignore[misc]
    snapshot = maker(BookSnapshot)(made, InstrumentInfo.of(BTC))
    assert snapshot == BookSnapshot(built, InstrumentInfo.of(BTC))
    three = maker(Three)(1, "x", (2,))  # the general shape (no unrolled maker for 3 fields)
    assert three == Three(1, "x", (2,))
    with pytest.raises(TypeError, match="takes 3 fields, got 2"):
        maker(Three)(1, "x")


def test_a_class_maker_would_build_wrongly_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    for cls in (NoSlots, NotFrozen):
        with pytest.raises(TypeError, match="not a frozen, slotted dataclass"):
            maker(cls)
    with pytest.raises(TypeError, match="__post_init__"):
        maker(Checked)
