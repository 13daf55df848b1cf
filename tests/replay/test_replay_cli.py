"""``krakenbot replay`` as a real subprocess on the real v2 capture (KRAKEN.md §7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kraken"
V2_CAPTURE = DATA / "python-kraken-sdk_orderbook-v2.json"
INSTRUMENTS = DATA / "kraken-data-recorder_instrument_snapshot.json"


def _capture_frames() -> list[dict[str, Any]]:
    doc = orjson.loads(V2_CAPTURE.read_bytes())
    return [doc["init"], *doc["updates"]]


def _write_jsonl(path: Path, frames: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in frames))
    return path


def _replay(*args: str | Path) -> tuple[int, dict[str, Any] | None, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "replay", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, report, proc.stderr


def test_real_capture_verifies_every_checksum(tmp_path: Path) -> None:
    frames = _capture_frames()
    stream = _write_jsonl(tmp_path / "btc.jsonl", frames)
    code, report, _ = _replay(stream, "--instruments", INSTRUMENTS)
    assert code == 0
    assert report is not None
    assert report["frames"] == len(frames) == 510
    assert report["book_frames"] == 510
    assert report["checksums_verified"] == 510
    assert report["checksum_mismatches"] == 0
    assert report["unparsed"] == 0
    btc = report["symbols"]["BTC/USD"]
    assert btc["book_frames"] == 510
    assert btc["mismatches"] == 0
    # The last state of the capture's book, as strings at BTC/USD's precision.
    assert btc["best_bid"] is not None and btc["best_ask"] is not None
    assert float(btc["best_bid"]) < float(btc["best_ask"])
    assert len(btc["best_bid"].split(".")[1]) == 1


def test_corrupted_frame_is_a_mismatch_and_exit_1(tmp_path: Path) -> None:
    frames = _capture_frames()
    victim = frames[100]["data"][0]
    side = "bids" if victim["bids"] else "asks"
    victim[side][0]["qty"] = round(victim[side][0]["qty"] + 0.00000001, 8)
    stream = _write_jsonl(tmp_path / "bad.jsonl", frames)
    code, report, stderr = _replay(stream, "--instruments", INSTRUMENTS)
    assert code == 1
    assert report is not None
    assert report["checksum_mismatches"] == 1
    assert report["symbols"]["BTC/USD"]["mismatches"] == 1
    # The stream has no second snapshot: what follows is counted, not trusted.
    assert report["skipped_after_mismatch"] == 510 - 101
    assert report["checksums_verified"] == 100
    assert "checksum_mismatch" in stderr


def test_recorder_format_and_instrument_frame_in_stream(tmp_path: Path) -> None:
    instruments = orjson.loads(INSTRUMENTS.read_bytes())
    frames = [instruments, *_capture_frames()]
    lines = [
        {"recv_ns": 1_690_731_000_000_000_000 + i, "conn": "public", "frame": f}
        for i, f in enumerate(frames)
    ]
    stream = _write_jsonl(tmp_path / "rec.jsonl", lines)
    code, report, _ = _replay(stream)
    assert code == 0
    assert report is not None
    assert report["frames"] == 511
    assert report["checksums_verified"] == 510


def test_depth_comes_from_the_subscribe_ack(tmp_path: Path) -> None:
    ack = {
        "method": "subscribe",
        "result": {"channel": "book", "depth": 25, "snapshot": True, "symbol": "BTC/USD"},
        "success": True,
        "time_in": "2023-07-30T15:29:58.000000Z",
        "time_out": "2023-07-30T15:29:58.000100Z",
    }
    stream = _write_jsonl(tmp_path / "ack.jsonl", [ack, *_capture_frames()])
    code, report, _ = _replay(stream, "--instruments", INSTRUMENTS, "--depth", "10")
    assert report is not None
    assert report["symbols"]["BTC/USD"]["depth"] == 25
    # The capture was recorded at depth 10: kept at 25, its levels outlive their scope
    # and the checksums stop matching, which proves the ack's depth was used.
    assert code == 1


def test_depth_flag_is_used_without_an_ack(tmp_path: Path) -> None:
    stream = _write_jsonl(tmp_path / "d.jsonl", _capture_frames())
    code, report, _ = _replay(stream, "--instruments", INSTRUMENTS, "--depth", "25")
    assert report is not None
    assert report["symbols"]["BTC/USD"]["depth"] == 25
    assert code == 1


def test_bad_frames_are_counted_and_survived(tmp_path: Path) -> None:
    frames: list[Any] = _capture_frames()
    path = tmp_path / "mixed.jsonl"
    body = b"".join(orjson.dumps(f) + b"\n" for f in frames[:50])
    body += b"{not json\n" + orjson.dumps({"channel": "nope", "data": []}) + b"\n"
    body += b"".join(orjson.dumps(f) + b"\n" for f in frames[50:])
    path.write_bytes(body)
    code, report, stderr = _replay(path, "--instruments", INSTRUMENTS)
    assert code == 0
    assert report is not None
    assert report["unparsed"] == 2
    assert report["checksums_verified"] == 510
    assert "frame_unparsed" in stderr


def test_replay_takes_the_feeds_path_a_bad_book_frame_costs_its_book(tmp_path: Path) -> None:
    """The live feed's rule, replayed: a book frame that cannot be parsed means the book
    missed an update, so it waits for the next snapshot (the old two-step replay counted
    the frame and went on verifying a book that was no longer Kraken's)."""
    frames = _capture_frames()
    item = {"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": "x", "timestamp": "t"}
    bad = {"channel": "book", "type": "update", "data": [item]}
    stream = _write_jsonl(tmp_path / "b.jsonl", [*frames[:100], bad, *frames[100:], frames[0]])
    code, report, stderr = _replay(stream, "--instruments", INSTRUMENTS)
    assert code == 0
    assert report is not None
    assert report["unparsed"] == 1
    assert report["skipped_after_mismatch"] == 510 - 100  # every update until the snapshot
    assert report["checksums_verified"] == 100 + 1  # the last frame is the snapshot again
    assert report["symbols"]["BTC/USD"]["best_bid"] is not None
    assert "book_broken_by_bad_frame" in stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read"),
        (b"this is not json\nneither is this\n", "no line"),
        (
            b'{"channel":"book","type":"snapshot","data":[{"symbol":"FOO/BAR","bids":[],'
            b'"asks":[],"checksum":0,"timestamp":"x"}]}\n',
            "FOO/BAR",
        ),
    ],
)
def test_unusable_input_exits_2(tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = tmp_path / "in.jsonl"
    if content is not None:
        path.write_bytes(content)
    code, report, stderr = _replay(path)
    assert code == 2
    assert report is None
    assert needle in stderr
    assert "Traceback" not in stderr


def test_missing_instruments_file_exits_2(tmp_path: Path) -> None:
    stream = _write_jsonl(tmp_path / "btc.jsonl", _capture_frames()[:3])
    code, _, stderr = _replay(stream, "--instruments", tmp_path / "nope.json")
    assert code == 2
    assert "nope.json" in stderr
