"""What the backtest tests share: the real v2 capture as a recorder-style file, and configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "kraken"
V2_CAPTURE = DATA / "python-kraken-sdk_orderbook-v2.json"

MM_CONFIG = """\
mode: paper
market:
  symbols: [BTC/USD]
  book_depth: 10
sim:
  balances: {USD: 100000, BTC: 1}
risk:
  max_order_notional: 5000
  max_position: {BTC: 2}
  max_open_orders: 20
  price_band_pct: 5
  max_orders_per_minute: 1000
  daily_loss_limit: 1000
strategies:
  - name: mm
    class: strategies.market_maker:MarketMaker
    symbols: [BTC/USD]
    params:
      spread_bps: 1
      size: 0.01
      max_inventory: 0.1
      requote_bps: 0.5
"""


def capture_frames() -> list[dict[str, Any]]:
    doc = orjson.loads(V2_CAPTURE.read_bytes())
    return [doc["init"], *doc["updates"]]


def write_capture(path: Path, frames: list[dict[str, Any]] | None = None) -> Path:
    """The capture as bare WS v2 frames, one a line (times from the frames' own stamps)."""
    frames = capture_frames() if frames is None else frames
    path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in frames))
    return path


def write_config(path: Path, text: str = MM_CONFIG) -> Path:
    path.write_text(text)
    return path


def recorder_lines(frames: list[dict[str, Any]]) -> list[bytes]:
    """The frames as recorder lines, each at its own timestamp (a snapshot, which has none,
    at the next frame's)."""
    from bot.backtest.data import _frame_time

    raws = [orjson.dumps(f) for f in frames]
    times = [_frame_time(r) for r in raws]
    out: list[bytes] = []
    for i, raw in enumerate(raws):
        at = next(t for t in times[i:] if t is not None)
        out.append(b'{"recv_ns":%d,"conn":"public","frame":%s}' % (at, raw))
    return out


def gap_line(at_ns: int) -> bytes:
    return b'{"recv_ns":%d,"gap":{"reason":"disconnected","symbols":null}}' % at_ns


def write_synthetic(path: Path, frames: int, seed: int = 42) -> Path:
    """``bench.book_stream``'s moving BTC/USD book (correct checksums), one frame a line."""
    from bench.book_stream import StreamSpec, generate_frames

    path.write_bytes(b"".join(f + b"\n" for f in generate_frames(StreamSpec(frames, seed=seed))))
    return path
