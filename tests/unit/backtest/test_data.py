"""A recording directory as ``krakenbot record`` leaves it: files in name order, the index
skipped, the instrument snapshot at the head of the data giving the precisions."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from bot.backtest.data import BadData, Frame, data_paths, open_data
from bot.backtest.run import BacktestSpec, _instruments
from bot.kraken.instruments import InstrumentTable
from tests.unit.backtest.helpers import DATA, capture_frames, recorder_lines

INSTRUMENTS = DATA / "kraken-data-recorder_instrument_snapshot.json"


def _recording(tmp_path: Path) -> Path:
    rec = tmp_path / "rec"
    rec.mkdir()
    lines = recorder_lines(capture_frames())
    first_ns = int(lines[0].split(b",")[0].split(b":")[1])
    snapshot = orjson.dumps(orjson.loads(INSTRUMENTS.read_bytes()))  # one line
    head = b'{"recv_ns":%d,"conn":"public","frame":%s}' % (first_ns - 1, snapshot)
    first, second = [head, *lines[:300]], lines[300:]
    (rec / "kraken-20230730T15Z-000.jsonl.gz").write_bytes(gzip.compress(b"\n".join(first)))
    (rec / "kraken-20230730T15Z-001.jsonl.gz").write_bytes(gzip.compress(b"\n".join(second)))
    (rec / "index.jsonl").write_text('{"file": "kraken-20230730T15Z-000.jsonl.gz"}\n')
    return rec


def test_a_directory_is_its_files_in_order_and_its_items_in_time_order(tmp_path: Path) -> None:
    rec = _recording(tmp_path)
    paths = data_paths([rec])
    assert [p.name for p in paths] == [
        "kraken-20230730T15Z-000.jsonl.gz", "kraken-20230730T15Z-001.jsonl.gz"
    ]  # fmt: skip
    items = list(open_data(paths, InstrumentTable(), ("BTC/USD",)))
    assert len(items) == 511 and all(type(i) is Frame for i in items)
    times = [i.at_ns for i in items]
    assert times == sorted(times)


def test_the_precisions_come_from_the_datas_instrument_snapshot(tmp_path: Path) -> None:
    rec = _recording(tmp_path)
    spec = BacktestSpec(config=tmp_path / "unused.yaml", data=(rec,))
    table = _instruments(spec, data_paths([rec]), ("BTC/USD", "MATIC/USD"))
    assert (table["BTC/USD"].price_precision, table["BTC/USD"].qty_precision) == (1, 8)
    assert table["MATIC/USD"].price_precision == 4  # not in the simulator's pair table


def test_missing_or_empty_data_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadData, match="no such file or directory"):
        data_paths([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadData, match="no recording files"):
        data_paths([tmp_path / "empty"])
