"""Logging: structlog set up once, one event per line on stderr, secrets redacted.

This module owns the processor chain, the secret registry and the ``Secret`` wrapper.
``configure_logging`` renders JSON lines (or a console view when the stream is a terminal
and the format is ``auto``), stamps ISO-8601 UTC times, merges contextvars bound per task,
and routes the standard library's loggers (aiohttp, websockets, asyncio) through the same
chain. Redaction runs
last before rendering, on every event:

* values under keys that look secret (``api_key``, ``secret``, ``token``, ``signature``,
  ``password``, ``API-Sign``, ``otp``, ...; any case, nested dicts too) become ``"***"``;
* every string containing a value registered with ``register_secret`` has it replaced by
  ``"***"``, so a secret that leaks into an exception message is still masked;
* any other object is logged as its ``str``, masked the same way (a ``Secret`` is ``***``).

It never writes to stdout: stdout belongs to commands' output.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final, TextIO, cast

import orjson
import structlog
from pydantic_core import core_schema
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bot.core.errors import ConfigError

__all__ = [
    "REDACTED",
    "Secret",
    "configure_logging",
    "get_logger",
    "is_sensitive_key",
    "redact",
    "redact_processor",
    "register_secret",
    "reset_logging",
    "scrub_text",
]

REDACTED: Final = "***"

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_FORMATS: Final = ("auto", "json", "console")
_SENSITIVE_WORDS: Final = frozenset(
    {
        "key",
        "apikey",
        "secret",
        "token",
        "signature",
        "sign",
        "apisign",
        "password",
        "passwd",
        "passphrase",
        "otp",
        "authorization",
        "cookie",
    }
)
_STRUCTURAL_KEYS: Final = frozenset({"event", "level", "timestamp", "logger", "exception"})
_MIN_SECRET_LEN: Final = 4
_MAX_DEPTH: Final = 12


class _State:
    """The process-wide registry of secrets and the stdlib handler we installed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: set[str] = set()
        self.pattern: re.Pattern[str] | None = None
        self.stdlib_handler: logging.Handler | None = None
        self.generation = 0  # bumped by every (re)configuration: loggers bind again


_state = _State()


# --------------------------------------------------------------------------- redaction


def register_secret(value: str) -> None:
    """Mask ``value`` (and its URL-encoded form) in every log line from now on."""
    if len(value) < _MIN_SECRET_LEN:
        return  # too short to scrub without mangling ordinary text
    with _state.lock:
        _state.secrets.update(
            {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        )
        ordered = sorted(_state.secrets, key=len, reverse=True)
        _state.pattern = re.compile("|".join(re.escape(s) for s in ordered))


class Secret:
    """A secret string that prints as ``***``; ``reveal()`` is the only way to its value.

    Making one registers the value with ``register_secret``, so it is scrubbed from logs
    even where it escapes the wrapper (in an exception message, a URL, a response body).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        # Only Secret instances validate: a plain string never becomes a secret by accident.
        return core_schema.is_instance_schema(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(lambda _: REDACTED)
        )


def scrub_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _state.pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def is_sensitive_key(key: object) -> bool:
    """Whether a key names a secret: ``api_key``, ``apiKey``, ``API-Sign``, ``ws_token``..."""
    if not isinstance(key, str):
        return False
    known = _KEY_VERDICTS.get(key)
    if known is None:
        known = _sensitive_words(key)
        if len(_KEY_VERDICTS) < _KEY_VERDICTS_MAX:  # log keys are few; data keys are bounded
            _KEY_VERDICTS[key] = known
    return known


def _sensitive_words(key: str) -> bool:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    words = re.split(r"[^a-z0-9]+", spaced.lower())
    return any(word in _SENSITIVE_WORDS for word in words)


# Every log line checks each of its keys, and the keys repeat forever: the verdicts are
# kept (a key's verdict never changes), up to a bound.
_KEY_VERDICTS: dict[str, bool] = {}
_KEY_VERDICTS_MAX: Final = 4096


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` safe to log: secret keys masked, registered secrets scrubbed."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if _depth >= _MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {
            scrub_text(str(k)): (
                REDACTED if is_sensitive_key(k) and v is not None else redact(v, _depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth + 1) for v in value]
    return scrub_text(str(value))


def redact_processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The structlog processor: ``redact`` applied to every key of the event.

    On every log line, so the usual values (numbers, text) take a short way; each key's
    role (masked, passed through, redacted) is decided once and kept."""
    out: EventDict = {}
    pattern = _state.pattern
    roles = _KEY_ROLES
    for key, value in event_dict.items():
        role = roles.get(key)
        if role is None:
            role = _key_role(key)
        if role == _REDACT:
            kind = type(value)
            if kind is str:
                out[key] = value if pattern is None else pattern.sub(REDACTED, value)
            elif kind in _PLAIN:
                out[key] = value
            else:
                out[key] = redact(value)
        elif role == _MASK and value is not None:
            out[key] = REDACTED
        else:  # structlog's own plumbing (e.g. ``_record``), or a masked key set to None
            out[key] = value
    return out


_REDACT, _MASK, _PASS = 0, 1, 2
_PLAIN: Final = frozenset({int, float, bool, type(None)})
_KEY_ROLES: dict[str, int] = {}


def _key_role(key: str) -> int:
    if key not in _STRUCTURAL_KEYS and is_sensitive_key(key):
        role = _MASK
    elif key.startswith("_"):
        role = _PASS
    else:
        role = _REDACT
    if len(_KEY_ROLES) < _KEY_VERDICTS_MAX:  # log keys are few
        _KEY_ROLES[key] = role
    return role


# --------------------------------------------------------------------------- set-up


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (so test capture sees it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _json_dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog and the standard library's logging; safe to call again to change.

    ``fmt`` is ``json``, ``console`` or ``auto`` (console on a terminal, else JSON).
    ``stream`` defaults to the current ``sys.stderr``.
    """
    level_no = _LEVELS.get(level.lower()) if isinstance(level, str) else None
    if level_no is None:
        raise ConfigError(
            f"log.level: unknown level {level!r} (expected one of debug, info, "
            "warning, error, critical)"
        )
    if fmt not in _FORMATS:
        raise ConfigError(f"log.format: unknown format {fmt!r} (expected auto, json or console)")
    out: Any = _Stderr() if stream is None else stream
    console = fmt == "console" or (fmt == "auto" and _isatty(out))
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=_isatty(out))
        if console
        else structlog.processors.JSONRenderer(serializer=_json_dumps)
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        context_class=dict,
        # Not cached: configure_logging may run again (CLI defaults, then the config file's).
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    if _state.stdlib_handler is not None:
        root.removeHandler(_state.stdlib_handler)
    root.addHandler(handler)
    root.setLevel(level_no)
    _state.stdlib_handler = handler
    _state.generation += 1


def reset_logging() -> None:
    """Undo ``configure_logging``: structlog's defaults, our stdlib handler removed."""
    structlog.reset_defaults()
    if _state.stdlib_handler is not None:
        root = logging.getLogger()
        root.removeHandler(_state.stdlib_handler)
        root.setLevel(logging.WARNING)  # the standard library's default
        _state.stdlib_handler = None
    _state.generation += 1


def get_logger(**initial: Any) -> FilteringBoundLogger:
    """A structlog logger with ``initial`` bound, typed for mypy (see ``_Logger``)."""
    return cast(FilteringBoundLogger, _Logger(initial))


class _Logger:
    """structlog's lazy logger, bound once per configuration instead of on every call.

    ``structlog.get_logger`` returns a proxy that builds a new bound logger (factory,
    wrapper, context) for each log call unless ``cache_logger_on_first_use`` is set, and
    that setting would freeze each logger's first configuration for good, while
    ``configure_logging`` runs again (CLI defaults, then the config file's; a reload).
    This proxy keeps the bound logger until the next ``configure_logging`` or
    ``reset_logging``. ``structlog.testing.capture_logs`` changes the configured processor
    list in place, which a bound logger shares, so capturing works as before.
    """

    __slots__ = ("_bound", "_generation", "_initial")

    def __init__(self, initial: dict[str, Any]) -> None:
        self._initial = initial
        self._bound: Any = None
        self._generation = -1

    def __getattr__(self, name: str) -> Any:
        if self._generation != _state.generation:
            self._bound = structlog.get_logger(**self._initial).bind()
            self._generation = _state.generation
        return getattr(self._bound, name)
