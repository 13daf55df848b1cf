"""The error tree and Kraken's error-string table (KRAKEN.md §1.5)."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import bot
from bot.core import errors
from bot.core.errors import (
    AuthError,
    BotError,
    ExchangeError,
    InsufficientFunds,
    LockoutError,
    NonceError,
    RateLimitError,
    RejectedError,
    TokenError,
    TransientError,
    error_from_kraken,
)


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("EGeneral:Invalid arguments", RejectedError),
        ("EGeneral:Invalid arguments:ordertype", RejectedError),
        ("EGeneral:Invalid arguments:Index unavailable", RejectedError),
        ("EOrder:Insufficient funds", InsufficientFunds),
        ("EOrder:Order minimum not met", RejectedError),
        ("EOrder:Cost minimum not met", RejectedError),
        ("EOrder:Tick size check failed", RejectedError),
        ("EOrder:Reduce only:Non-PC", RejectedError),
        ("EService:Unavailable", TransientError),
        ("EService:Busy", TransientError),
        ("EService:Deadline elapsed", TransientError),
        ("EGeneral:Internal error:12345", TransientError),
        ("EAPI:Rate limit exceeded", RateLimitError),
        ("EOrder:Rate limit exceeded", RateLimitError),
        ("EService: Throttled: 1700000000", RateLimitError),
        ("EAPI:Invalid key", AuthError),
        ("EAPI:Invalid signature", AuthError),
        ("EAPI:Invalid nonce", NonceError),
        ("EAPI:Invalid token", TokenError),
        ("ESession:Invalid session", TokenError),
        ("EGeneral:Temporary lockout", LockoutError),
        ("Currency pair not supported BTC/XYZ", RejectedError),
        ("Subscription name invalid", RejectedError),
    ],
)
def test_known_strings_map_to_their_remedy(message: str, cls: type[ExchangeError]) -> None:
    err = error_from_kraken(message)
    assert type(err) is cls
    assert err.code == message.strip()


def test_unknown_string_is_a_generic_exchange_error_not_data() -> None:
    err = error_from_kraken("EWeird:Something new")
    assert type(err) is ExchangeError
    assert isinstance(err, BotError)
    assert not isinstance(err, (TransientError, RejectedError, RateLimitError, AuthError))


def test_prefix_of_a_known_string_does_not_match_a_longer_unknown_category() -> None:
    # "EOrder" alone is not a known string: an unknown EOrder error stays generic.
    assert type(error_from_kraken("EOrder:Something else")) is ExchangeError


def test_tree_is_printed_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if name[0].isupper():
            assert name in doc, name


def test_checksum_mismatch_carries_its_numbers() -> None:
    err = errors.ChecksumMismatch("BTC/USD", 1, 2)
    assert (err.symbol, err.expected, err.computed) == ("BTC/USD", 1, 2)
    assert isinstance(err, errors.ProtocolError)


def printed_tree(doc: str) -> set[tuple[str, str]]:
    """``(class, parent)`` for every branch of the tree drawn in ``doc`` (continuation lines,
    which carry no branch, are skipped)."""
    lines = doc[doc.index("    BotError\n") :].split("\n\n", maxsplit=1)[0].splitlines()[1:]
    pairs, stack = set(), ["BotError"]
    for line in lines:
        match = re.match(r"^ {4}([│ ]*)[├└]── (\w+)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 4
        del stack[depth + 1 :]
        pairs.add((match.group(2), stack[depth]))
        stack.append(match.group(2))
    return pairs


def defined_tree() -> set[tuple[str, str]]:
    """``(class, parent)`` for every subclass of ``BotError`` defined anywhere in ``bot/``."""
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        if info.name != "bot.__main__":
            importlib.import_module(info.name)
    pairs, todo = set(), [BotError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("bot."):
                pairs.add((sub.__name__, cls.__name__))
                todo.append(sub)
    return pairs


def test_every_bot_error_in_bot_is_in_the_printed_tree_under_its_parent() -> None:
    defined, printed = defined_tree(), printed_tree(errors.__doc__ or "")
    assert len(defined) > 20
    assert defined - printed == set(), "defined but not printed in bot/core/errors.py"
    assert printed - defined == set(), "printed but not defined (or under another parent)"
