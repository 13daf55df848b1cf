"""bot.core.log: JSON lines on stderr, console in a terminal, ISO UTC stamps, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import structlog
from pydantic import BaseModel

from bot.core.errors import ConfigError
from bot.core.log import (
    Secret,
    configure_logging,
    get_logger,
    is_sensitive_key,
    redact,
    register_secret,
    reset_logging,
    scrub_text,
)


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()
    structlog.contextvars.clear_contextvars()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_iso_utc_timestamps_and_level_filter() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    log = get_logger()
    log.debug("hidden")
    log.info("order_placed", cl_ord_id="abc", price=Decimal("101.50"), qty=3)
    (event,) = lines(stream)
    assert event["event"] == "order_placed"
    assert event["level"] == "info"
    assert event["cl_ord_id"] == "abc"
    assert event["price"] == "101.50"  # exact numbers are logged as strings
    assert event["qty"] == 3
    stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)


def test_auto_format_is_json_off_a_terminal_and_console_on_one() -> None:
    plain = io.StringIO()
    configure_logging("info", "auto", stream=plain)
    get_logger().info("hello", symbol="BTC/USD")
    assert json.loads(plain.getvalue())["symbol"] == "BTC/USD"
    tty = TtyStream()
    configure_logging("info", "auto", stream=tty)
    get_logger().info("hello", symbol="BTC/USD")
    text = tty.getvalue()
    assert "hello" in text and "symbol" in text and "BTC/USD" in text
    assert not text.lstrip().startswith("{")


def test_console_format_on_request() -> None:
    stream = io.StringIO()
    configure_logging("debug", "console", stream=stream)
    get_logger().debug("tick", n=1)
    assert "tick" in stream.getvalue() and not stream.getvalue().startswith("{")


def test_logs_go_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    get_logger().info("started")
    logging.getLogger("aiohttp.client").warning("library says %s", "hi")
    captured = capsys.readouterr()
    assert captured.out == ""
    events = [json.loads(line) for line in captured.err.splitlines()]
    assert [e["event"] for e in events] == ["started", "library says hi"]
    assert events[1]["logger"] == "aiohttp.client" and events[1]["level"] == "warning"


def test_contextvars_are_merged() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.contextvars.bind_contextvars(conn="public", symbol="ETH/USD")
    get_logger(component="feed").info("subscribed")
    (event,) = lines(stream)
    assert (event["conn"], event["symbol"], event["component"]) == ("public", "ETH/USD", "feed")


@pytest.mark.parametrize(
    "key",
    ["api_key", "API-Key", "apiKey", "secret", "api_secret", "ws_token", "token", "signature",
     "API-Sign", "password", "otp", "Authorization"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", ["event", "symbol", "price", "cl_ord_id", "nonce", "order_id"])
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_redaction_of_keys_nested_and_in_lists() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    get_logger().info(
        "request",
        api_key="AAAA-key-value",
        headers={"API-Key": "BBBB", "API-Sign": "CCCC", "Content-Type": "x"},
        frames=[{"token": "DDDD", "symbol": "BTC/USD"}],
        otp=123456,
        expires=None,
    )
    text = stream.getvalue()
    for leaked in ("AAAA-key-value", "BBBB", "CCCC", "DDDD", "123456"):
        assert leaked not in text
    (event,) = lines(stream)
    assert event["api_key"] == "***"
    assert event["headers"] == {"API-Key": "***", "API-Sign": "***", "Content-Type": "x"}
    assert event["frames"] == [{"token": "***", "symbol": "BTC/USD"}]
    assert event["otp"] == "***"
    assert event["expires"] is None


def test_registered_secret_is_scrubbed_everywhere() -> None:
    secret = "s3cr3t/value+with=chars"
    register_secret(secret)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    log = get_logger()
    log.info(f"posting with {secret}", body={"note": f"x{secret}y"}, items=[secret])
    try:
        raise ValueError(f"bad signature for {secret}")
    except ValueError:
        log.exception("request_failed")
    logging.getLogger("websockets").error("closed: %s", secret)
    log.info("encoded", url="https://x/?k=s3cr3t%2Fvalue%2Bwith%3Dchars")
    text = stream.getvalue()
    assert secret not in text
    assert "s3cr3t%2Fvalue%2Bwith%3Dchars" not in text
    events = lines(stream)
    assert events[0]["event"] == "posting with ***"
    assert events[0]["body"] == {"note": "x***y"}
    assert "ValueError: bad signature for ***" in events[1]["exception"]
    assert events[2]["event"] == "closed: ***"


def test_secret_wrapper_logs_as_stars_and_registers_itself() -> None:
    secret = Secret("wrapped-secret-value-42")
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    get_logger().info("loaded", credential=secret, note="leak: wrapped-secret-value-42")
    (event,) = lines(stream)
    assert event["credential"] == "***"
    assert event["note"] == "leak: ***"


def test_secret_serializes_as_stars_in_pydantic_models() -> None:
    class Holder(BaseModel):
        key: Secret

    holder = Holder(key=Secret("pydantic-held-secret"))
    assert holder.model_dump(mode="json") == {"key": "***"}
    assert "pydantic-held-secret" not in repr(holder)
    with pytest.raises(ValueError, match="instance of Secret"):
        Holder(key="plain-string")


def test_redact_and_scrub_helpers() -> None:
    register_secret("helper-secret-1")
    assert scrub_text("a helper-secret-1 b") == "a *** b"
    assert redact({"nested": {"password": "p", "ok": ("helper-secret-1", 2)}}) == {
        "nested": {"password": "***", "ok": ["***", 2]}
    }
    register_secret("abc")  # too short to scrub without mangling ordinary text
    assert scrub_text("abc") == "abc"


def test_bad_level_or_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"log\.level"):
        configure_logging("loud", "json")
    with pytest.raises(ConfigError, match=r"log\.format"):
        configure_logging("info", "xml")


def test_reconfigure_changes_level_for_existing_loggers() -> None:
    stream = io.StringIO()
    log = get_logger()
    configure_logging("warning", "json", stream=stream)
    log.info("dropped")
    configure_logging("debug", "json", stream=stream)
    log.debug("kept")
    assert [e["event"] for e in lines(stream)] == ["kept"]


def test_a_logger_already_used_follows_reconfiguration_and_capture() -> None:
    first, second = io.StringIO(), io.StringIO()
    log = get_logger(component="engine")
    configure_logging("info", "json", stream=first)
    log.info("one", api_key="k-123456")  # bound now, under this configuration
    log.info("two")
    configure_logging("info", "json", stream=second)  # a new stream: bound again
    log.info("three")
    assert [e["event"] for e in lines(first)] == ["one", "two"]
    assert lines(first)[0]["api_key"] == "***" and lines(first)[0]["component"] == "engine"
    assert [e["event"] for e in lines(second)] == ["three"]
    with structlog.testing.capture_logs() as captured:  # changes processors in place
        log.info("four", qty=1)
        log.debug("filtered")
    assert captured == [{"event": "four", "qty": 1, "component": "engine", "log_level": "info"}]
    log.info("five")
    assert [e["event"] for e in lines(second)] == ["three", "five"]
    reset_logging()
    with structlog.testing.capture_logs() as captured:
        log.debug("after a reset: structlog's defaults again")
    assert [e["event"] for e in captured] == ["after a reset: structlog's defaults again"]
