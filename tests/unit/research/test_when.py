"""--since: durations back from now, ISO dates and times (UTC unless told), epoch seconds."""

from __future__ import annotations

import pytest

from bot.research.record import BadInput
from bot.research.when import parse_time

NOW = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z
S = 10**9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - 90 * S),
        ("30m", NOW - 1800 * S),
        ("12h", NOW - 12 * 3600 * S),
        ("7d", NOW - 7 * 86400 * S),
        ("2w", NOW - 14 * 86400 * S),
        ("2024-05-01", NOW - 12 * 3600 * S),
        ("2024-05-01T12:00", NOW),
        ("2024-05-01 12:00:00.5", NOW + S // 2),
        ("2024-05-01T12:00:00Z", NOW),
        ("2024-05-01T14:00:00+02:00", NOW),
        ("@1714564800", NOW),
        ("@1714564800.25", NOW + S // 4),
        (" 30m ", NOW - 1800 * S),
    ],
)
def test_accepted_forms(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "30", "1714564800", "2024-13-01", "3x",
                                  "2024-05-01T25:00", "-5m"])  # fmt: skip
def test_anything_else_is_bad_input_naming_the_forms(text: str) -> None:
    with pytest.raises(BadInput, match=r"--since .*not a time; use 30m, 12h or 7d ago"):
        parse_time(text, NOW)


def test_a_time_without_a_zone_is_utc_whatever_the_host_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert parse_time("2024-05-01T12:00", NOW) == NOW
        assert parse_time("2024-05-01", NOW) == NOW - 12 * 3600 * S
    finally:
        monkeypatch.undo()
        time.tzset()
