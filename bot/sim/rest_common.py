"""What every simulator REST handler shares: parameters, Kraken's envelope, REST faults.

Kraken answers ``{"error": [], "result": {...}}`` with HTTP 200, and ``{"error": ["<code>"]}``
(no ``result``) when it refuses; anything else (a 5xx page, a dropped connection) means the
request did not reach the exchange properly, and that is what the REST faults produce.

Parameters come as a form body (Kraken's default), a JSON body (``Content-Type:
application/json``) or, for public GET calls, the query string. ``Params`` reads them
either way: form values are text, JSON values may be strings, integers, booleans, lists or
objects (JSON numbers are parsed as ``Decimal``, never ``float``). Form bodies may nest with
brackets (``orders[0][price]=...``), as AddOrderBatch needs. A bad value raises
``EGeneral:Invalid arguments:<name>``.

This module owns those helpers; the methods themselves live in ``rest_public``,
``rest_private`` and ``rest_trading``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson
import structlog
from aiohttp import web

from bot.core.errors import RejectedError
from bot.sim.faults import Fault, FaultKind, FaultSpec
from bot.sim.venue import SimVenue

__all__ = [
    "ERR_UNKNOWN_METHOD",
    "Params",
    "dumps",
    "error_response",
    "invalid",
    "lose_response",
    "ok_response",
    "parse_body",
    "rest_faults",
]

log = structlog.get_logger("sim.rest")

ERR_UNKNOWN_METHOD: Final = "EGeneral:Unknown method"
_JSON: Final = "application/json"
_BRACKETS: Final = re.compile(r"\[([^\[\]]*)\]")
_INT: Final = re.compile(r"[+-]?[0-9]+")
_STATUS_TEXT: Final = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def invalid(name: str, detail: str = "") -> RejectedError:
    return RejectedError(f"EGeneral:Invalid arguments:{name}", detail)


def _decimal(obj: Any) -> Any:
    if isinstance(obj, Decimal) and obj.is_finite():
        # Exactly the digits given: a time quantized to 0.0001 keeps its four decimals.
        return orjson.Fragment(format(obj, "f").encode())
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    """Compact JSON; a ``Decimal`` is a JSON number written with exactly its own digits."""
    return orjson.dumps(obj, default=_decimal)


def ok_response(result: Any) -> web.Response:
    return web.Response(body=dumps({"error": [], "result": result}), content_type=_JSON)


def error_response(code: str) -> web.Response:
    return web.Response(body=dumps({"error": [code]}), content_type=_JSON)


# ---------------------------------------------------------------------- parameters
def _set_nested(out: dict[str, Any], key: str, value: str) -> None:
    head, _, rest = key.partition("[")
    if not rest or not head:
        out[key] = value
        return
    parts = [head, *_BRACKETS.findall("[" + rest)]
    node: Any = out
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = int(part) if part.isdigit() else len(node)
            while len(node) <= index:
                node.append({})
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if last:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict | list):
                child = [] if parts[i + 1].isdigit() or parts[i + 1] == "" else {}
                node[part] = child
            node = child


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The parameters of a request body (JSON object or form, see the module docstring)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == _JSON or media.endswith("+json"):
        if not body.strip():
            return {}
        try:
            parsed = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RejectedError("EGeneral:Invalid arguments", "body is not JSON") from exc
        if not isinstance(parsed, dict):
            raise RejectedError("EGeneral:Invalid arguments", "body is not a JSON object")
        return parsed
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedError("EGeneral:Invalid arguments", "body is not UTF-8") from exc
    return form_params(parse_qsl(text, keep_blank_values=True))


def form_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        _set_nested(out, key, value)
    return out


class Params:
    """Typed reads of one request's parameters (form text or JSON values)."""

    __slots__ = ("caller", "raw")

    def __init__(self, raw: Mapping[str, Any], *, caller: str = "") -> None:
        self.raw = raw
        self.caller = caller
        """The API key of a private call (empty for public calls)."""

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string parameter (a JSON number is taken as its text); empty means absent."""
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise invalid(name, "missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise invalid(name)
        return value if isinstance(value, str) else str(value)

    def required(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if type(value) is int:
            return value
        if isinstance(value, str) and _INT.fullmatch(value):
            return int(value)
        raise invalid(name)

    def flag(self, name: str) -> bool:
        """A boolean: JSON ``true``/``false`` or the text ``true``/``false`` (``1``/``0``)."""
        value = self.raw.get(name)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
            return value.lower() in ("true", "1")
        raise invalid(name)

    def ids(self, name: str) -> list[str]:
        """A comma-separated list (or a JSON list of strings)."""
        value = self.raw.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, list):
            if not all(isinstance(v, str) and v for v in value):
                raise invalid(name)
            return list(value)
        if not isinstance(value, str):
            raise invalid(name)
        parts = [p.strip() for p in value.split(",")]
        if any(not p for p in parts):
            raise invalid(name)
        return parts


# ---------------------------------------------------------------------- faults
async def rest_faults(venue: SimVenue, method: str, *, private: bool) -> web.Response | None:
    """Apply a pending delay, then a pending failure, to this request (None: go on)."""
    faults = venue.faults
    delay = faults.take(FaultKind.REST_DELAY, method, private=private)
    if delay is not None:
        await asyncio.sleep(delay.spec.delay_s)
    fail = faults.take(FaultKind.REST_ERROR, method, private=private)
    if fail is None:
        return None
    status = fail.spec.status
    if status is not None:
        reason = _STATUS_TEXT.get(status, "Server Error")
        return web.Response(
            status=status,
            text=f"<html><body><h1>{status} {reason}</h1></body></html>",
            content_type="text/html",
        )
    return error_response(fail.spec.error or "EService:Unavailable")


async def lose_response(request: web.Request, fault: Fault[FaultSpec], method: str) -> web.Response:
    """The request was executed; make sure its answer never reaches the client."""
    log.warning("response_lost", fault=fault.id, endpoint=method, mode=fault.spec.mode)
    transport = request.transport
    if fault.spec.mode == "hang" and transport is not None:
        try:
            await asyncio.sleep(fault.spec.hold_s)
        finally:
            transport.abort()
    elif transport is not None:
        transport.abort()
    # Nothing reaches the client: the transport is gone before this is written.
    return web.Response(status=500)
