"""Typed field readers for Kraken Futures JSON (REST answers and WS v1 frames).

Each reader takes one field of a decoded object and checks its JSON type; a wrong or
missing required field is a ``ProtocolError`` naming the field and where it was read.
Numbers come from ``bot.kraken.codec.loads_exact`` (``int`` or ``Decimal``) and leave as
exact ``Decimal``; a ``float`` from a fast decoder is accepted only where it provably
carries the printed decimal (``decimal_of``).

This module owns nothing but these small checks; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bot.core.errors import ProtocolError
from bot.kraken.codec import as_object, decimal_of, opt_bool, opt_str, req_str

__all__ = [
    "as_object",
    "list_of_objects",
    "opt_bool",
    "opt_decimal",
    "opt_str",
    "req_bool",
    "req_decimal",
    "req_int",
    "req_str",
]


def req_decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal:
    if key not in raw or raw[key] is None:
        raise ProtocolError(f"{where}: missing {key!r}")
    value = raw[key]
    if type(value) is bool:
        raise ProtocolError(f"{where}: {key} must be a number, got {value!r}")
    return decimal_of(value, f"{where}: {key}")


def opt_decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is bool:
        raise ProtocolError(f"{where}: {key} must be a number, got {value!r}")
    return decimal_of(value, f"{where}: {key}")


def req_int(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if type(value) is not int:
        raise ProtocolError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def req_bool(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key)
    if type(value) is not bool:
        raise ProtocolError(f"{where}: {key} must be a boolean, got {value!r}")
    return value


def list_of_objects(raw: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = raw.get(key)
    if type(value) is not list:
        raise ProtocolError(f"{where}: {key} must be a list, got {type(value).__name__}")
    return [as_object(item, f"{where}: {key}[{i}]") for i, item in enumerate(value)]
