"""``write_atomic``: the new file whole, or the old one whole, and no temporary left."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.files import write_atomic

OLD = "old report\n" * 1000


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_write_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text(OLD, encoding="utf-8")
    write_atomic(target, "new ✓\n")
    assert target.read_text(encoding="utf-8") == "new ✓\n"
    write_atomic(tmp_path / "fresh.html", "<p>")  # a file that did not exist
    assert (tmp_path / "fresh.html").read_text(encoding="utf-8") == "<p>"
    assert _leftovers(tmp_path) == []


def test_a_write_interrupted_leaves_the_old_file_whole_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text(OLD, encoding="utf-8")
    broken = "x" * 100_000 + "\ud800"  # a lone surrogate: UTF-8 cannot encode it
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, broken)
    assert target.read_text(encoding="utf-8") == OLD
    assert _leftovers(tmp_path) == []


def test_a_missing_directory_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "gone" / "report.json", "x")
    assert list(tmp_path.iterdir()) == []
